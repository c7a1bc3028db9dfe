//! Refusals and their RFC 6750 / RFC 9457 rendering.

use std::{borrow::Cow, fmt};

use poem::{
    error::ResponseError,
    http::{header, HeaderValue, StatusCode},
    Response,
};

use crate::{policy::AuthKinds, principal::CredentialKind};

/// What a `check` rule returns to refuse a caller.
///
/// `forbidden` answers 403; `not_found` answers 404 for object-level rules that
/// must not reveal whether someone else's object exists. The reason goes to the
/// log only, never to the client.
///
/// ```
/// use secure_runtime::Denied;
/// let d = Denied::not_found().because("note 7 belongs to bob");
/// assert_eq!(d.status(), poem::http::StatusCode::NOT_FOUND);
/// assert_eq!(d.reason(), "note 7 belongs to bob");
/// ```
#[derive(Debug, Clone)]
pub struct Denied {
    not_found: bool,
    reason: Cow<'static, str>,
}

impl Denied {
    /// 403 Forbidden.
    pub fn forbidden() -> Denied {
        Denied {
            not_found: false,
            reason: Cow::Borrowed("denied by check"),
        }
    }
    /// 404 Not Found.
    pub fn not_found() -> Denied {
        Denied {
            not_found: true,
            reason: Cow::Borrowed("denied by check"),
        }
    }
    /// Attaches a reason for the log (never sent to the client).
    pub fn because(mut self, reason: impl Into<Cow<'static, str>>) -> Denied {
        self.reason = reason.into();
        self
    }
    /// The status this refusal answers with.
    pub fn status(&self) -> StatusCode {
        if self.not_found {
            StatusCode::NOT_FOUND
        } else {
            StatusCode::FORBIDDEN
        }
    }
    /// The reason for the log.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

/// Why a request was refused before its handler ran.
///
/// It is a [`poem::error::ResponseError`]: the response carries the right
/// status, `WWW-Authenticate` / `Retry-After` headers and an
/// `application/problem+json` body that says nothing about the credential or
/// the library that refused it.
///
/// ```
/// use poem::error::ResponseError;
/// use secure_runtime::AuthRejection;
/// let r = AuthRejection::insufficient_scope(&["notes:write"]);
/// let resp = r.as_response();
/// assert_eq!(resp.status(), 403);
/// assert_eq!(
///     resp.headers()["www-authenticate"],
///     "Bearer error=\"insufficient_scope\", scope=\"notes:write\""
/// );
/// ```
#[derive(Debug, Clone)]
pub struct AuthRejection {
    kind: RejectionKind,
}

#[derive(Debug, Clone)]
pub(crate) enum RejectionKind {
    /// `Security` is not installed on the app (500).
    NotInstalled,
    /// A policy needs something the installed `Security` lacks (500).
    Misconfigured,
    /// A credential store could not be reached (503).
    Unavailable,
    /// Malformed credentials header (400).
    BadRequest,
    /// Nothing presented (401).
    Missing(AuthKinds),
    /// A presented credential failed verification (401).
    Invalid(CredentialKind, AuthKinds),
    /// 403 with `insufficient_scope`.
    InsufficientScope(&'static [&'static str]),
    /// 403 for a role or permission.
    Forbidden,
    /// A `check` rule refused (403 or 404).
    Denied(StatusCode),
    /// 429, with the `RateLimit` header fields when known.
    RateLimited {
        retry_after_secs: u64,
        status: Option<crate::rate::RateStatus>,
    },
}

impl AuthRejection {
    pub(crate) fn new(kind: RejectionKind) -> Self {
        AuthRejection { kind }
    }
    /// The 403 for a caller lacking some of `scopes`.
    pub fn insufficient_scope(scopes: &'static [&'static str]) -> Self {
        Self::new(RejectionKind::InsufficientScope(scopes))
    }
    /// The 401 for a caller that presented no credential.
    pub fn missing(kinds: AuthKinds) -> Self {
        Self::new(RejectionKind::Missing(kinds))
    }
    /// The 401 for a presented credential that failed verification.
    pub fn invalid(kind: CredentialKind, accepted: AuthKinds) -> Self {
        Self::new(RejectionKind::Invalid(kind, accepted))
    }
    /// The 429 with `Retry-After: secs`.
    pub fn rate_limited(retry_after_secs: u64) -> Self {
        Self::new(RejectionKind::RateLimited {
            retry_after_secs,
            status: None,
        })
    }
    /// The 429 with `Retry-After: secs` and the `RateLimit-Policy` /
    /// `RateLimit` header fields of `status`.
    pub(crate) fn rate_limited_with(
        retry_after_secs: u64,
        status: crate::rate::RateStatus,
    ) -> Self {
        Self::new(RejectionKind::RateLimited {
            retry_after_secs,
            status: Some(status),
        })
    }
    /// The 503 for a store that could not be reached.
    pub fn unavailable() -> Self {
        Self::new(RejectionKind::Unavailable)
    }
    /// The refusal of a `check` rule.
    pub fn denied(d: &Denied) -> Self {
        Self::new(RejectionKind::Denied(d.status()))
    }
    /// For a rate-limit refusal, `Retry-After` in whole seconds.
    pub fn retry_after_secs(&self) -> Option<u64> {
        match &self.kind {
            RejectionKind::RateLimited {
                retry_after_secs, ..
            } => Some(*retry_after_secs),
            _ => None,
        }
    }
    /// For a rate-limit refusal, what its `RateLimit-Policy` / `RateLimit`
    /// header fields report (to carry them onto a response built by hand;
    /// [`RateStatus::apply`](crate::RateStatus::apply) sets them).
    pub fn rate_status(&self) -> Option<crate::rate::RateStatus> {
        match &self.kind {
            RejectionKind::RateLimited { status, .. } => *status,
            _ => None,
        }
    }

    /// The HTTP status of the refusal.
    pub fn status(&self) -> StatusCode {
        match &self.kind {
            RejectionKind::NotInstalled | RejectionKind::Misconfigured => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
            RejectionKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            RejectionKind::BadRequest => StatusCode::BAD_REQUEST,
            RejectionKind::Missing(_) | RejectionKind::Invalid(..) => StatusCode::UNAUTHORIZED,
            RejectionKind::InsufficientScope(_) | RejectionKind::Forbidden => StatusCode::FORBIDDEN,
            RejectionKind::Denied(s) => *s,
            RejectionKind::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    fn detail(&self) -> &'static str {
        match &self.kind {
            RejectionKind::NotInstalled | RejectionKind::Misconfigured => {
                "The server could not process the request."
            }
            RejectionKind::Unavailable => "The service is temporarily unavailable.",
            RejectionKind::BadRequest => "The request's credentials are malformed.",
            RejectionKind::Missing(_) => "Authentication is required.",
            RejectionKind::Invalid(..) => "The presented credential is invalid or expired.",
            RejectionKind::InsufficientScope(_) => {
                "The access token lacks a scope this operation requires."
            }
            RejectionKind::Forbidden => "The caller may not perform this operation.",
            RejectionKind::Denied(s) if *s == StatusCode::NOT_FOUND => "Not found.",
            RejectionKind::Denied(_) => "The caller may not perform this operation.",
            RejectionKind::RateLimited { .. } => "Too many requests; retry later.",
        }
    }
}

impl fmt::Display for AuthRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.detail())
    }
}

impl std::error::Error for AuthRejection {}

/// Renders an RFC 9457 problem response.
pub fn problem(status: StatusCode, detail: &str) -> Response {
    let body = serde_json::json!({
        "type": "about:blank",
        "title": status.canonical_reason().unwrap_or("Error"),
        "status": status.as_u16(),
        "detail": detail,
    });
    Response::builder()
        .status(status)
        .content_type("application/problem+json")
        .body(body.to_string())
}

fn challenges(kinds: AuthKinds, bearer_error: Option<&str>) -> Vec<HeaderValue> {
    let mut out = Vec::new();
    if kinds.accepts_bearer() {
        let v = match bearer_error {
            Some(e) => format!("Bearer error=\"{e}\""),
            None => "Bearer".to_owned(),
        };
        out.extend(HeaderValue::from_str(&v).ok());
    }
    if kinds.accepts_basic() {
        out.push(HeaderValue::from_static(
            "Basic realm=\"api\", charset=\"UTF-8\"",
        ));
    }
    if kinds.accepts_api_key() {
        out.push(HeaderValue::from_static("ApiKey"));
    }
    out
}

impl ResponseError for AuthRejection {
    fn status(&self) -> StatusCode {
        AuthRejection::status(self)
    }

    fn as_response(&self) -> Response {
        let mut resp = problem(self.status(), self.detail());
        let headers = resp.headers_mut();
        match &self.kind {
            RejectionKind::Missing(kinds) => {
                for v in challenges(*kinds, None) {
                    headers.append(header::WWW_AUTHENTICATE, v);
                }
            }
            RejectionKind::Invalid(kind, kinds) => {
                let err = (*kind == CredentialKind::Bearer).then_some("invalid_token");
                for v in challenges(*kinds, err) {
                    headers.append(header::WWW_AUTHENTICATE, v);
                }
            }
            RejectionKind::BadRequest => {
                headers.append(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer error=\"invalid_request\""),
                );
            }
            RejectionKind::InsufficientScope(scopes) => {
                // Scope tokens are printable ASCII without `"` or `\` (checked at
                // compile time), so the value is always a valid header.
                let v = format!(
                    "Bearer error=\"insufficient_scope\", scope=\"{}\"",
                    scopes.join(" ")
                );
                if let Ok(v) = HeaderValue::from_str(&v) {
                    headers.append(header::WWW_AUTHENTICATE, v);
                }
            }
            RejectionKind::RateLimited {
                retry_after_secs,
                status,
            } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
                if let Some(status) = status {
                    status.apply(headers);
                }
            }
            _ => {}
        }
        resp
    }
}
