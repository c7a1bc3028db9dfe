//! What the token endpoints read and write: forms, token and error bodies,
//! and the documented answers. `Debug` never shows a password or a token.

use std::fmt;

use poem_openapi::{payload::Json, ApiResponse, Object};
use serde::Deserialize;

/// A token response body (RFC 6749 §5.1). Its `Debug` shows no token.
#[derive(Object, Clone, PartialEq, Eq)]
pub struct TokenBody {
    /// The access token (a JWT, RFC 9068).
    pub access_token: String,
    /// Always `bearer`.
    pub token_type: String,
    /// Lifetime of the access token in seconds.
    pub expires_in: u64,
    /// The opaque refresh token (rotated on every use).
    pub refresh_token: String,
    /// The granted scopes, space-separated.
    pub scope: String,
}

/// An OAuth2 error body (RFC 6749 §5.2).
#[derive(Object, Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    /// `invalid_request`, `invalid_grant`, `unsupported_grant_type` or `invalid_scope`.
    pub error: String,
    /// A human-readable explanation.
    pub error_description: String,
}

/// An RFC 9457 problem body.
#[derive(Object, Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// `about:blank`.
    #[oai(rename = "type")]
    pub ty: String,
    /// The status's reason phrase.
    pub title: String,
    /// The status code.
    pub status: u16,
    /// What happened.
    pub detail: String,
}

impl Problem {
    pub(super) fn new(status: u16, title: &str, detail: &str) -> Self {
        Problem {
            ty: "about:blank".into(),
            title: title.into(),
            status,
            detail: detail.into(),
        }
    }
}

pub(super) const NO_STORE: &str = "no-store";

/// The answers of the token endpoints. Its `Debug` shows the variant and
/// status only, never a token.
#[derive(ApiResponse)]
#[oai(bad_request_handler = "bad_form")]
pub enum TokenResponse {
    /// Tokens issued.
    #[oai(status = 200)]
    Ok(
        Json<TokenBody>,
        #[oai(header = "Cache-Control")] String,
        #[oai(header = "Pragma")] String,
    ),
    /// The request or the grant is invalid (one body for every failed login).
    #[oai(status = 400)]
    Invalid(Json<OAuthError>, #[oai(header = "Cache-Control")] String),
    /// Too many attempts.
    #[oai(status = 429, content_type = "application/problem+json")]
    TooMany(
        Json<Problem>,
        #[oai(header = "Retry-After")] u64,
        #[oai(header = "Cache-Control")] String,
        /// The limit that refused (draft-ietf-httpapi-ratelimit-headers).
        #[oai(header = "RateLimit-Policy")]
        Option<String>,
        /// The limit's state: no request left, and when it resets.
        #[oai(header = "RateLimit")]
        Option<String>,
    ),
    /// The credential stores or password hashing are saturated or unreachable.
    #[oai(status = 503, content_type = "application/problem+json")]
    Unavailable(Json<Problem>, #[oai(header = "Cache-Control")] String),
}

pub(super) fn bad_form(_err: poem::Error) -> TokenResponse {
    oauth_error(
        "invalid_request",
        "The request must be a form with the fields this grant requires.",
    )
}

pub(super) fn oauth_error(error: &str, description: &str) -> TokenResponse {
    TokenResponse::Invalid(
        Json(OAuthError {
            error: error.into(),
            error_description: description.into(),
        }),
        NO_STORE.into(),
    )
}

pub(super) fn invalid_grant() -> TokenResponse {
    oauth_error("invalid_grant", "The credentials are invalid.")
}

/// A refusal of the login limits as a documented token-endpoint answer.
pub(super) fn limited(e: &crate::AuthRejection) -> TokenResponse {
    let status = e.rate_status();
    let field =
        |v: Option<poem::http::HeaderValue>| v.and_then(|v| v.to_str().ok().map(str::to_owned));
    match e.retry_after_secs() {
        Some(secs) => TokenResponse::TooMany(
            Json(Problem::new(
                429,
                "Too Many Requests",
                "Too many attempts; retry later.",
            )),
            secs,
            NO_STORE.into(),
            status.and_then(|s| field(s.policy_header())),
            status.and_then(|s| field(s.limit_header())),
        ),
        None => unavailable(),
    }
}

pub(super) fn unavailable() -> TokenResponse {
    TokenResponse::Unavailable(
        Json(Problem::new(
            503,
            "Service Unavailable",
            "The service is temporarily unavailable.",
        )),
        NO_STORE.into(),
    )
}

/// The token request form (`application/x-www-form-urlencoded`). Its
/// `Debug` shows no password or token.
#[derive(Object, Deserialize)]
pub struct TokenForm {
    /// `password` or `refresh_token`.
    pub grant_type: String,
    /// For `password`.
    pub username: Option<String>,
    /// For `password`.
    #[oai(write_only)]
    pub password: Option<String>,
    /// Requested scopes, space-separated (optional).
    pub scope: Option<String>,
    /// For `refresh_token`.
    #[oai(write_only)]
    pub refresh_token: Option<String>,
}

/// The refresh form. Its `Debug` shows no token.
#[derive(Object, Deserialize)]
pub struct RefreshForm {
    /// The current refresh token.
    #[oai(write_only)]
    pub refresh_token: String,
    /// Optionally narrower scopes (never wider than the session's).
    pub scope: Option<String>,
}

impl fmt::Debug for TokenBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenBody")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TokenResponse::Ok(..) => "TokenResponse::Ok(200)",
            TokenResponse::Invalid(..) => "TokenResponse::Invalid(400)",
            TokenResponse::TooMany(..) => "TokenResponse::TooMany(429)",
            TokenResponse::Unavailable(..) => "TokenResponse::Unavailable(503)",
        })
    }
}

impl fmt::Debug for TokenForm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenForm")
            .field("grant_type", &self.grant_type)
            .field("username", &self.username)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for RefreshForm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefreshForm")
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_a_password_or_a_token() {
        let form = TokenForm {
            grant_type: "password".into(),
            username: Some("alice".into()),
            password: Some("hunter2-secret".into()),
            scope: None,
            refresh_token: Some("refresh-secret".into()),
        };
        let refresh = RefreshForm {
            refresh_token: "refresh-secret".into(),
            scope: Some("me".into()),
        };
        let body = TokenBody {
            access_token: "access-secret".into(),
            token_type: "bearer".into(),
            expires_in: 900,
            refresh_token: "refresh-secret".into(),
            scope: "me".into(),
        };
        let ok = TokenResponse::Ok(Json(body.clone()), NO_STORE.into(), "no-cache".into());
        for shown in [
            format!("{form:?}"),
            format!("{refresh:?}"),
            format!("{body:?}"),
            format!("{ok:?}"),
        ] {
            for secret in ["hunter2-secret", "refresh-secret", "access-secret"] {
                assert!(!shown.contains(secret), "{shown}");
            }
        }
        assert!(format!("{form:?}").contains("alice"));
    }
}
