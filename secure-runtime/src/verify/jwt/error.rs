//! Why a token was refused.

use std::fmt;

/// Why a token was refused; for logs and audit events only, never sent to the
/// client (every variant answers the same 401 `invalid_token`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    /// Not a JWT, bad base64/JSON, or a claim of the wrong type.
    Malformed,
    /// The header's `alg` is not the one bound to the key.
    Algorithm,
    /// The signature does not verify.
    Signature,
    /// `exp` is in the past (beyond the leeway) or missing.
    Expired,
    /// `nbf` is in the future.
    NotYetValid,
    /// `iss` missing or not the configured issuer.
    Issuer,
    /// `aud` missing or not the configured audience.
    Audience,
    /// `sub` missing.
    Subject,
    /// Header `typ` is not the required one (`at+jwt`).
    Type,
    /// The token's `jti` was revoked.
    Revoked,
    /// No key with the token's `kid` (or no `kid` where several keys exist).
    UnknownKey,
    /// The header lists `crit` extensions, none of which this verifier
    /// understands (RFC 7515 §4.1.11).
    Critical,
    /// `iat` missing (RFC 9068 §2.2 requires it), not a number, or in the
    /// future beyond the leeway.
    IssuedAt,
    /// An opaque token the introspection endpoint calls inactive (RFC 7662).
    Inactive,
}

impl std::error::Error for TokenError {}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            TokenError::Malformed => "malformed token",
            TokenError::Algorithm => "algorithm not allowed",
            TokenError::Signature => "bad signature",
            TokenError::Expired => "expired or missing exp",
            TokenError::NotYetValid => "not yet valid",
            TokenError::Issuer => "wrong or missing issuer",
            TokenError::Audience => "wrong or missing audience",
            TokenError::Subject => "missing subject",
            TokenError::Type => "wrong typ header",
            TokenError::Revoked => "revoked",
            TokenError::UnknownKey => "unknown key id",
            TokenError::Critical => "unsupported crit header",
            TokenError::IssuedAt => "missing or future iat",
            TokenError::Inactive => "inactive token",
        };
        f.write_str(s)
    }
}
