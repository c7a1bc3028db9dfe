//! Random secrets and their storage form.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use sha2::{Digest, Sha256};

/// A random secret of `bytes` bytes, or `None` when the OS random source fails.
pub(crate) fn random_secret(bytes: usize) -> Option<String> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).ok()?;
    Some(URL_SAFE_NO_PAD.encode(buf))
}

/// SHA-256 of a high-entropy secret, base64url: how refresh tokens and API
/// key secrets are stored (a slow hash adds nothing to 256 random bits).
#[cfg_attr(not(feature = "issuer"), allow(dead_code))]
pub(crate) fn hash_secret(secret: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(secret.as_bytes()))
}

/// Constant-time equality of two stored hashes.
#[cfg_attr(not(feature = "issuer"), allow(dead_code))]
pub(crate) fn hashes_equal(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}
