//! Extension points for credential kinds other than JWT bearer tokens, and for
//! token revocation. Stores (in memory, Redis) implement these traits.

use crate::{BoxFuture, Principal};

/// Why a presented credential did not authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialError {
    /// Unknown, wrong, expired or revoked: answered with 401.
    Invalid,
    /// The store could not be reached: answered with 503 (fail closed).
    Unavailable,
}

/// Verifies API keys presented in the configured header (`auth = api_key`).
///
/// ```
/// use secure_runtime::{ApiKeyVerifier, BoxFuture, CredentialError, CredentialKind, Principal};
///
/// struct OneKey;
/// impl ApiKeyVerifier for OneKey {
///     fn verify<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Principal, CredentialError>> {
///         Box::pin(async move {
///             // A real store compares a hash in constant time.
///             if key == "k1.secret" {
///                 Ok(Principal::builder(CredentialKind::ApiKey, "svc").scopes(["stats:read"]).key_id("k1").build())
///             } else {
///                 Err(CredentialError::Invalid)
///             }
///         })
///     }
/// }
/// ```
pub trait ApiKeyVerifier: Send + Sync + 'static {
    /// Verifies `key` and returns the principal it stands for.
    fn verify<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Principal, CredentialError>>;
}

/// Verifies HTTP Basic credentials (`auth = basic`).
pub trait BasicVerifier: Send + Sync + 'static {
    /// Verifies `username`/`password` and returns the principal.
    fn verify<'a>(
        &'a self,
        username: &'a str,
        password: &'a str,
    ) -> BoxFuture<'a, Result<Principal, CredentialError>>;
}

/// Answers whether an access token's `jti` was revoked (logout, theft).
pub trait RevocationList: Send + Sync + 'static {
    /// `Ok(true)` when revoked; `Err` when the store cannot be reached, which
    /// refuses the request (fail closed).
    fn is_revoked<'a>(&'a self, jti: &'a str) -> BoxFuture<'a, Result<bool, CredentialError>>;

    /// The same as [`is_revoked`](Self::is_revoked) for lists that answer
    /// without I/O (an in-memory set), so that the guard decides without a
    /// boxed future; `None` (the default): use `is_revoked`.
    fn is_revoked_now(&self, jti: &str) -> Option<Result<bool, CredentialError>> {
        let _ = jti;
        None
    }

    /// Whether the token `jti`, of the session `sid` when it names one, is
    /// revoked: the token itself or its whole session (logout and refresh
    /// reuse end every access token of the session at once). The default
    /// checks only `jti`.
    fn is_token_revoked<'a>(
        &'a self,
        jti: &'a str,
        sid: Option<&'a str>,
    ) -> BoxFuture<'a, Result<bool, CredentialError>> {
        let _ = sid;
        self.is_revoked(jti)
    }

    /// [`is_token_revoked`](Self::is_token_revoked) without I/O; `None`: ask
    /// `is_token_revoked`. The default: [`is_revoked_now`](Self::is_revoked_now).
    fn is_token_revoked_now(
        &self,
        jti: &str,
        sid: Option<&str>,
    ) -> Option<Result<bool, CredentialError>> {
        let _ = sid;
        self.is_revoked_now(jti)
    }
}
