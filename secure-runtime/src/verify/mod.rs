//! Layer 2, the verifiers: JWT (static keys, or a JWKS key source), and the
//! extension points of API keys, HTTP Basic and revocation lists. Each
//! verifier answers [`Answer::Ready`](crate::Answer::Ready) when it needs no
//! I/O.

pub(crate) mod credentials;
#[cfg(feature = "jwks")]
pub(crate) mod jwks;
pub(crate) mod jwt;
