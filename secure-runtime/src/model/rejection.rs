//! Refusals and their RFC 6750 / RFC 9457 rendering.

use std::{borrow::Cow, fmt};

use http::StatusCode;

use crate::model::{policy::AuthKinds, principal::CredentialKind};

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

/// Why a request was refused, so that a custom error body can tell the
/// cases apart (see [`AuthRejection::kind`]).
///
/// ```
/// use secure_runtime::{AuthRejection, RejectionKind};
/// let r = AuthRejection::insufficient_scope(&["notes:write"]);
/// assert!(matches!(r.kind(), RejectionKind::InsufficientScope(s) if s[..] == ["notes:write"]));
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum RejectionKind {
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
    /// An `Authorization` scheme the route does not accept (401, with the
    /// challenges of the accepted kinds): never silently treated as absent.
    UnsupportedScheme(AuthKinds),
    /// A presented credential failed verification (401).
    Invalid(CredentialKind, AuthKinds),
    /// 403 with `insufficient_scope`.
    InsufficientScope(Cow<'static, [&'static str]>),
    /// 403: an `any(...)`/`all(...)` requirement is not met; the text names
    /// what is missing (e.g. "role `admin` or permission `notes:delete-any`").
    Unmet(String),
    /// 403 for a role or permission.
    Forbidden,
    /// A `check` rule refused (403 or 404).
    Denied(StatusCode),
    /// 429, with the `RateLimit` header fields when known.
    RateLimited {
        /// Seconds until the next admission (`Retry-After`).
        retry_after_secs: u64,
        /// The `RateLimit` header fields, when the limiter reported them.
        status: Option<crate::model::rate::RateStatus>,
    },
}

impl AuthRejection {
    /// What kind of refusal this is, for custom error bodies.
    pub fn kind(&self) -> &RejectionKind {
        &self.kind
    }
    pub(crate) fn new(kind: RejectionKind) -> Self {
        AuthRejection { kind }
    }
    /// The 403 for a composed requirement the caller does not meet: the
    /// `insufficient_scope` answer when granting scopes alone would meet it,
    /// else a 403 whose detail names what is missing.
    pub fn unmet(unmet: &crate::model::rule::Unmet) -> Self {
        match unmet.insufficient_scope() {
            Some(scopes) => Self::new(RejectionKind::InsufficientScope(Cow::Owned(scopes))),
            None => Self::new(RejectionKind::Unmet(unmet.to_string())),
        }
    }
    /// The 403 for a caller lacking some of `scopes`.
    pub fn insufficient_scope(scopes: &'static [&'static str]) -> Self {
        Self::new(RejectionKind::InsufficientScope(Cow::Borrowed(scopes)))
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
        status: crate::model::rate::RateStatus,
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
    pub fn rate_status(&self) -> Option<crate::model::rate::RateStatus> {
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
            RejectionKind::Missing(_)
            | RejectionKind::Invalid(..)
            | RejectionKind::UnsupportedScheme(_) => StatusCode::UNAUTHORIZED,
            RejectionKind::InsufficientScope(_)
            | RejectionKind::Forbidden
            | RejectionKind::Unmet(_) => StatusCode::FORBIDDEN,
            RejectionKind::Denied(s) => *s,
            RejectionKind::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    pub(crate) fn detail(&self) -> &'static str {
        match &self.kind {
            RejectionKind::NotInstalled | RejectionKind::Misconfigured => {
                "The server could not process the request."
            }
            RejectionKind::Unavailable => "The service is temporarily unavailable.",
            RejectionKind::BadRequest => "The request's credentials are malformed.",
            RejectionKind::Missing(_) => "Authentication is required.",
            RejectionKind::Invalid(..) => "The presented credential is invalid or expired.",
            RejectionKind::UnsupportedScheme(_) => "The Authorization scheme is not accepted here.",
            RejectionKind::InsufficientScope(_) => {
                "The access token lacks a scope this operation requires."
            }
            RejectionKind::Forbidden | RejectionKind::Unmet(_) => {
                "The caller may not perform this operation."
            }
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
