//! Layer 6, the issuer (feature `issuer`): users and argon2 passwords, the
//! OAuth2 token endpoint, refresh sessions with rotation, and API-key
//! issuance. An app that only verifies tokens of an identity provider does
//! not compile it.

pub(crate) mod api_keys;
pub(crate) mod password;
pub(crate) mod sessions;
pub(crate) mod token_api;
pub(crate) mod token_wire;
pub mod tokens;
pub(crate) mod users;
