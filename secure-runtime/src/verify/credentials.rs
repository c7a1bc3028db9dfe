//! Extension points for credential kinds other than JWT bearer tokens, and for
//! token revocation. Stores (in memory, Redis) implement these traits.

use crate::{Answer, Principal};

/// Why a presented credential did not authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialError {
    /// Unknown, wrong, expired or revoked: answered with 401.
    Invalid,
    /// The store could not be reached: answered with 503 (fail closed).
    Unavailable,
}

impl std::fmt::Display for CredentialError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CredentialError::Invalid => "the credential is invalid",
            CredentialError::Unavailable => "the credential store is unavailable",
        })
    }
}

impl std::error::Error for CredentialError {}

/// Verifies API keys presented in the configured header (`auth = api_key`).
///
/// ```
/// use secure_runtime::{Answer, ApiKeyVerifier, CredentialError, CredentialKind, Principal};
///
/// struct OneKey;
/// impl ApiKeyVerifier for OneKey {
///     fn verify<'a>(&'a self, key: &'a str) -> Answer<'a, Result<Principal, CredentialError>> {
///         // In memory: answered at once. A real store compares a hash in
///         // constant time; a remote one returns `Answer::later(async { .. })`.
///         Answer::Ready(if key == "k1.secret" {
///             Ok(Principal::builder(CredentialKind::ApiKey, "svc").scopes(["stats:read"]).key_id("k1").build())
///         } else {
///             Err(CredentialError::Invalid)
///         })
///     }
/// }
/// ```
pub trait ApiKeyVerifier: Send + Sync + 'static {
    /// Verifies `key` and returns the principal it stands for.
    fn verify<'a>(&'a self, key: &'a str) -> Answer<'a, Result<Principal, CredentialError>>;
}

/// Verifies HTTP Basic credentials (`auth = basic`).
pub trait BasicVerifier: Send + Sync + 'static {
    /// Verifies `username`/`password` and returns the principal.
    fn verify<'a>(
        &'a self,
        username: &'a str,
        password: &'a str,
    ) -> Answer<'a, Result<Principal, CredentialError>>;
}

/// Answers whether an access token's `jti` was revoked (logout, theft).
pub trait RevocationList: Send + Sync + 'static {
    /// `Ok(true)` when revoked; `Err` when the store cannot be reached, which
    /// refuses the request (fail closed). An in-memory list answers
    /// [`Answer::Ready`], so the guard decides without a future.
    fn is_revoked<'a>(&'a self, jti: &'a str) -> Answer<'a, Result<bool, CredentialError>>;

    /// Whether the token `jti`, of the session `sid` when it names one, is
    /// revoked: the token itself or its whole session (logout and refresh
    /// reuse end every access token of the session at once). The default
    /// checks only `jti`.
    fn is_token_revoked<'a>(
        &'a self,
        jti: &'a str,
        sid: Option<&'a str>,
    ) -> Answer<'a, Result<bool, CredentialError>> {
        let _ = sid;
        self.is_revoked(jti)
    }
}
