//! Layer 2, the verifiers: JWT (static keys, or a JWKS key source), and the
//! extension points of API keys, HTTP Basic and revocation lists. For tokens
//! of an identity provider (feature `jwks`): discovery (`discovery`), the
//! https trust of its fetches (`trust`), opaque tokens (`introspection`); and
//! where roles, permissions and scopes are read in the claims (`claims`). Each
//! verifier answers [`Answer::Ready`](crate::Answer::Ready) when it needs no
//! I/O.

pub(crate) mod claims;
pub(crate) mod credentials;
#[cfg(feature = "jwks")]
pub(crate) mod discovery;
#[cfg(feature = "jwks")]
pub(crate) mod introspection;
#[cfg(feature = "jwks")]
pub(crate) mod jwks;
pub(crate) mod jwt;
#[cfg(feature = "jwks")]
pub(crate) mod trust;
