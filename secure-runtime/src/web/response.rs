//! How a refusal is answered over HTTP: RFC 6750 challenges and RFC 9457
//! problem details.

use poem::{
    error::ResponseError,
    http::{header, HeaderValue, StatusCode},
    Response,
};

use crate::model::{
    policy::AuthKinds,
    principal::CredentialKind,
    rejection::{AuthRejection, RejectionKind},
};

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
        let mut resp = match self.kind() {
            RejectionKind::Unmet(what) => problem(
                self.status(),
                &format!("The caller may not perform this operation: it needs {what}."),
            ),
            _ => problem(self.status(), self.detail()),
        };
        let headers = resp.headers_mut();
        match self.kind() {
            RejectionKind::Missing(kinds) | RejectionKind::UnsupportedScheme(kinds) => {
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
