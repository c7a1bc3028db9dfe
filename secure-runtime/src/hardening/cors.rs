//! Cross-origin resource sharing with an explicit allow-list, validated at
//! startup.

use std::{collections::HashSet, sync::Arc};

use poem::{
    http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode},
    Request, Response,
};

use crate::{web::response::problem, ConfigError};

/// A cross-origin policy with an explicit allow-list, validated when built.
///
/// ```
/// use secure_runtime::CorsPolicy;
/// let ok = CorsPolicy::new().allow_origins(["https://app.example.com"]).allow_credentials(true).build();
/// assert!(ok.is_ok());
/// // The CORS specification forbids credentials with a wildcard: refused at startup.
/// let bad = CorsPolicy::new().allow_origins(["*"]).allow_credentials(true).build();
/// assert!(bad.is_err());
/// ```
#[derive(Debug, Clone)]
pub struct CorsPolicy {
    origins: Vec<String>,
    methods: Vec<String>,
    headers: Vec<String>,
    expose: Vec<String>,
    credentials: bool,
    max_age_secs: u32,
}

impl Default for CorsPolicy {
    fn default() -> Self {
        Self::new()
    }
}

impl CorsPolicy {
    /// No origin allowed yet; methods GET, POST, PUT, PATCH, DELETE; request
    /// headers `Authorization`, `Content-Type`, `X-API-Key`, `X-Request-Id`;
    /// no credentials; preflights cached 10 minutes.
    pub fn new() -> Self {
        CorsPolicy {
            origins: Vec::new(),
            methods: ["GET", "POST", "PUT", "PATCH", "DELETE"]
                .map(String::from)
                .to_vec(),
            headers: ["authorization", "content-type", "x-api-key", "x-request-id"]
                .map(String::from)
                .to_vec(),
            expose: vec!["x-request-id".into(), "retry-after".into()],
            credentials: false,
            max_age_secs: 600,
        }
    }
    /// Allowed origins (`https://app.example.com`), or `*` (no credentials).
    pub fn allow_origins<I: IntoIterator<Item = S>, S: Into<String>>(mut self, origins: I) -> Self {
        self.origins = origins.into_iter().map(Into::into).collect();
        self
    }
    /// Allowed methods (or `*`, without credentials).
    pub fn allow_methods<I: IntoIterator<Item = S>, S: Into<String>>(mut self, methods: I) -> Self {
        self.methods = methods.into_iter().map(Into::into).collect();
        self
    }
    /// Allowed request headers (or `*`, without credentials).
    pub fn allow_headers<I: IntoIterator<Item = S>, S: Into<String>>(mut self, headers: I) -> Self {
        self.headers = headers.into_iter().map(Into::into).collect();
        self
    }
    /// Response headers scripts may read.
    pub fn expose_headers<I: IntoIterator<Item = S>, S: Into<String>>(
        mut self,
        headers: I,
    ) -> Self {
        self.expose = headers.into_iter().map(Into::into).collect();
        self
    }
    /// Whether credentials (cookies, HTTP auth) may be sent.
    pub fn allow_credentials(mut self, yes: bool) -> Self {
        self.credentials = yes;
        self
    }
    /// How long browsers may cache a preflight answer.
    pub fn max_age_secs(mut self, secs: u32) -> Self {
        self.max_age_secs = secs;
        self
    }

    /// Validates the policy: every origin a serialised origin
    /// (`scheme://host[:port]`), no wildcard together with credentials.
    pub fn build(self) -> Result<CorsRules, ConfigError> {
        let wildcard = |v: &[String]| v.iter().any(|s| s == "*");
        if self.credentials
            && (wildcard(&self.origins) || wildcard(&self.methods) || wildcard(&self.headers))
        {
            return Err(ConfigError::new(
                "CORS: allow_credentials cannot be combined with a wildcard origin, method or header (the CORS specification forbids it); list them explicitly",
            ));
        }
        let mut origins = HashSet::new();
        for o in &self.origins {
            if o == "*" {
                continue;
            }
            let uri: poem::http::Uri = o
                .parse()
                .map_err(|_| ConfigError::new(format!("CORS: `{o}` is not an origin")))?;
            let ok = matches!(uri.scheme_str(), Some("http" | "https"))
                && uri.host().is_some()
                && uri
                    .path_and_query()
                    .is_none_or(|p| p.as_str().is_empty() || p.as_str() == "/")
                && !o.ends_with('/');
            if !ok {
                return Err(ConfigError::new(format!(
                    "CORS: `{o}` is not an origin; write scheme://host[:port] with no path or trailing slash"
                )));
            }
            origins.insert(o.to_ascii_lowercase());
        }
        let methods = self
            .methods
            .iter()
            .map(|m| {
                if m == "*" {
                    Ok(None)
                } else {
                    Method::from_bytes(m.to_ascii_uppercase().as_bytes()).map(Some)
                }
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| ConfigError::new("CORS: invalid method"))?;
        let headers = self
            .headers
            .iter()
            .map(|h| {
                if h == "*" {
                    Ok(None)
                } else {
                    HeaderName::try_from(h.as_str()).map(Some)
                }
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| ConfigError::new("CORS: invalid header name"))?;
        let join = |v: &[String]| {
            v.iter()
                .map(|s| s.to_ascii_lowercase())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let hv = |s: String| {
            HeaderValue::from_str(&s).map_err(|_| ConfigError::new("CORS: invalid header value"))
        };
        Ok(CorsRules(Arc::new(CorsInner {
            any_origin: wildcard(&self.origins),
            origins,
            any_method: methods.iter().any(Option::is_none),
            methods: methods.into_iter().flatten().collect(),
            any_header: headers.iter().any(Option::is_none),
            headers: headers.into_iter().flatten().collect(),
            methods_value: hv(self
                .methods
                .iter()
                .map(|m| m.to_ascii_uppercase())
                .collect::<Vec<_>>()
                .join(", "))?,
            headers_value: hv(join(&self.headers))?,
            expose_value: (!self.expose.is_empty())
                .then(|| hv(join(&self.expose)))
                .transpose()?,
            credentials: self.credentials,
            max_age: HeaderValue::from(self.max_age_secs),
        })))
    }
}

/// A validated [`CorsPolicy`], ready for [`Hardening::cors`](crate::Hardening::cors).
#[derive(Clone)]
pub struct CorsRules(pub(super) Arc<CorsInner>);

pub(super) struct CorsInner {
    any_origin: bool,
    origins: HashSet<String>,
    any_method: bool,
    methods: HashSet<Method>,
    any_header: bool,
    headers: HashSet<HeaderName>,
    methods_value: HeaderValue,
    headers_value: HeaderValue,
    expose_value: Option<HeaderValue>,
    credentials: bool,
    max_age: HeaderValue,
}

pub(super) enum CorsVerdict {
    /// Not a cross-origin request, or an origin not allowed on an actual
    /// request: served without CORS headers (the browser withholds it).
    None,
    /// Answer this preflight.
    Preflight(Response),
    /// An allowed actual request: add these headers.
    Allow(HeaderValue),
}

impl CorsInner {
    fn origin_allowed(&self, origin: &str) -> bool {
        self.any_origin || self.origins.contains(&origin.to_ascii_lowercase())
    }

    pub(super) fn verdict(&self, req: &Request) -> CorsVerdict {
        let Some(origin) = req.headers().get(header::ORIGIN) else {
            return CorsVerdict::None;
        };
        let allowed = origin.to_str().is_ok_and(|o| self.origin_allowed(o));
        let preflight = req.method() == Method::OPTIONS
            && req
                .headers()
                .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
        if !preflight {
            return if allowed {
                CorsVerdict::Allow(origin.clone())
            } else {
                CorsVerdict::None
            };
        }
        let method_ok = req
            .headers()
            .get(header::ACCESS_CONTROL_REQUEST_METHOD)
            .and_then(|m| Method::from_bytes(m.as_bytes()).ok())
            .is_some_and(|m| self.any_method || self.methods.contains(&m));
        let headers_ok = req
            .headers()
            .get_all(header::ACCESS_CONTROL_REQUEST_HEADERS)
            .iter()
            .all(|v| {
                v.to_str().is_ok_and(|s| {
                    s.split(',')
                        .map(str::trim)
                        .filter(|h| !h.is_empty())
                        .all(|h| {
                            self.any_header
                                || HeaderName::try_from(h).is_ok_and(|h| self.headers.contains(&h))
                        })
                })
            });
        if !(allowed && method_ok && headers_ok) {
            let mut resp = problem(
                StatusCode::FORBIDDEN,
                "This cross-origin request is not allowed.",
            );
            resp.headers_mut()
                .insert(header::VARY, HeaderValue::from_static("Origin"));
            return CorsVerdict::Preflight(resp);
        }
        let mut resp = Response::builder().status(StatusCode::NO_CONTENT).finish();
        let h = resp.headers_mut();
        h.insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            self.allow_origin_value(origin),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            self.methods_value.clone(),
        );
        let requested = req
            .headers()
            .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
            .cloned();
        match (self.any_header, requested) {
            (true, Some(r)) => h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, r),
            _ => h.insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                self.headers_value.clone(),
            ),
        };
        h.insert(header::ACCESS_CONTROL_MAX_AGE, self.max_age.clone());
        if self.credentials {
            h.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
        h.insert(
            header::VARY,
            HeaderValue::from_static(
                "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
            ),
        );
        CorsVerdict::Preflight(resp)
    }

    fn allow_origin_value(&self, origin: &HeaderValue) -> HeaderValue {
        if self.any_origin && !self.credentials {
            HeaderValue::from_static("*")
        } else {
            origin.clone()
        }
    }

    pub(super) fn decorate(&self, origin: &HeaderValue, h: &mut HeaderMap) {
        h.insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            self.allow_origin_value(origin),
        );
        if self.credentials {
            h.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
        if let Some(e) = &self.expose_value {
            h.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, e.clone());
        }
    }
}
