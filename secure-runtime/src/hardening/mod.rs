//! Hardening middleware: security headers, CORS with startup validation,
//! request limits, problem+json for every error, request ids.

use std::{
    io,
    pin::Pin,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use poem::{
    http::{header, HeaderName, HeaderValue, StatusCode},
    middleware::CatchPanic,
    Body, Endpoint, Middleware, Request, Response, Result as PoemResult,
};
use tracing::Instrument;

mod cors;

use cors::CorsVerdict;
pub use cors::{CorsPolicy, CorsRules};

use crate::{web::middleware::client_ip, web::response::problem, AuthRejection, AUDIT_TARGET};

/// The request id of the current request (from a valid `X-Request-Id`, else
/// generated); echoed in the response and carried by every log event of the
/// request (as the `request_id` field of the `request` span).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestTraceId(pub String);

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The hardening layer: one line to turn on, right by default.
///
/// On every response — 404, 405, refusals and errors included:
/// `X-Content-Type-Options: nosniff`, `X-Frame-Options: DENY`,
/// `Referrer-Policy: no-referrer`, a `Content-Security-Policy` of
/// `default-src 'none'; frame-ancestors 'none'` (a Swagger-UI-compatible one
/// under the docs paths, `/docs` by default), `Strict-Transport-Security`
/// when configured, `Cache-Control: no-store` on responses to credentialed
/// requests, and `X-Request-Id`.
///
/// Limits: headers at most 16 KiB (431), body at most 1 MiB (413), 30 s per
/// request (503). Every error poem or the framework produces (404, 405, 400,
/// 413, panics) becomes an RFC 9457 `application/problem+json` body that says
/// nothing of internals; the details of server errors go to the log.
///
/// Install it inside `Security` (`.with(hardening).with(security)`): the
/// client IP on its log events is then the one `Security` resolves through
/// trusted proxies; outside it, the socket peer.
///
/// ```
/// use poem::{EndpointExt, Route};
/// use secure_runtime::{CorsPolicy, Hardening};
/// let hardening = Hardening::new()
///     .cors(CorsPolicy::new().allow_origins(["https://app.example.com"]).build().unwrap())
///     .hsts_secs(31_536_000)
///     .body_limit(64 * 1024);
/// let app = Route::new().with(hardening);
/// # let _ = app;
/// ```
#[derive(Clone)]
pub struct Hardening(Arc<HardeningInner>);

#[derive(Clone)]
struct HardeningInner {
    cors: Option<CorsRules>,
    body_limit: u64,
    header_limit: usize,
    timeout: Duration,
    hsts: Option<HeaderValue>,
    docs_paths: Vec<String>,
    api_csp: HeaderValue,
    docs_csp: HeaderValue,
}

impl Default for Hardening {
    fn default() -> Self {
        Self::new()
    }
}

impl Hardening {
    /// The defaults described above, without CORS (no cross-origin access).
    pub fn new() -> Self {
        Hardening(Arc::new(HardeningInner {
            cors: None,
            body_limit: 1024 * 1024,
            header_limit: 16 * 1024,
            timeout: Duration::from_secs(30),
            hsts: None,
            docs_paths: vec!["/docs".into()],
            api_csp: HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
            docs_csp: HeaderValue::from_static(
                "default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
            ),
        }))
    }

    fn map(self, f: impl FnOnce(&mut HardeningInner)) -> Self {
        let mut inner = (*self.0).clone();
        f(&mut inner);
        Hardening(Arc::new(inner))
    }

    /// Allows cross-origin requests by this policy.
    pub fn cors(self, cors: CorsRules) -> Self {
        self.map(|i| i.cors = Some(cors))
    }
    /// The largest request body in bytes (default 1 MiB).
    pub fn body_limit(self, bytes: u64) -> Self {
        self.map(|i| i.body_limit = bytes)
    }
    /// The largest total size of request headers in bytes (default 16 KiB).
    pub fn header_limit(self, bytes: usize) -> Self {
        self.map(|i| i.header_limit = bytes)
    }
    /// The longest a request may take (default 30 s).
    pub fn timeout(self, d: Duration) -> Self {
        self.map(|i| i.timeout = d)
    }
    /// Sends `Strict-Transport-Security: max-age=N; includeSubDomains`: turn it
    /// on when the service is only reached over HTTPS.
    pub fn hsts_secs(self, max_age: u64) -> Self {
        self.map(|i| {
            i.hsts = HeaderValue::from_str(&format!("max-age={max_age}; includeSubDomains")).ok()
        })
    }
    /// Paths (prefixes) served with the Swagger-UI-compatible CSP (default `/docs`).
    pub fn docs_paths<I: IntoIterator<Item = S>, S: Into<String>>(self, paths: I) -> Self {
        self.map(|i| i.docs_paths = paths.into_iter().map(Into::into).collect())
    }
}

impl<E: Endpoint + 'static> Middleware<E> for Hardening {
    type Output = HardeningEndpoint;

    fn transform(&self, ep: E) -> Self::Output {
        let inner = CatchPanic::new().with_handler(|_| {
            tracing::error!(target: AUDIT_TARGET, event = "panic", "a handler panicked; answered 500");
            problem(StatusCode::INTERNAL_SERVER_ERROR, "The server could not process the request.")
        });
        HardeningEndpoint {
            inner: poem::EndpointExt::boxed(poem::EndpointExt::map_to_response(
                inner.transform(ep),
            )),
            config: self.clone(),
        }
    }
}

/// The endpoint produced by `.with(Hardening::new())`.
pub struct HardeningEndpoint {
    inner: poem::endpoint::BoxEndpoint<'static, Response>,
    config: Hardening,
}

fn valid_request_id(v: &HeaderValue) -> Option<String> {
    let s = v.to_str().ok()?;
    let ok = !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
    ok.then(|| s.to_owned())
}

fn generic_detail(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "The request is malformed.",
        404 => "No resource matches the request.",
        405 => "The method is not allowed for this resource.",
        406 => "No acceptable representation.",
        408 => "The request took too long to arrive.",
        411 => "A Content-Length header is required.",
        413 => "The request body is too large.",
        415 => "The request's content type is not supported.",
        422 => "The request is well-formed but invalid.",
        431 => "The request headers are too large.",
        s if s >= 500 => "The server could not process the request.",
        _ => "The request could not be processed.",
    }
}

/// The request body, as it reaches the handler: frames pass through
/// unchanged; the end of the body is noted (so that a response knows whether
/// the connection still holds unread bytes).
struct Watched<B> {
    inner: B,
    finished: Arc<AtomicBool>,
}

impl<B: http_body::Body<Data = Bytes> + Unpin> http_body::Body for Watched<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, B::Error>>> {
        let frame = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(None) = frame {
            self.finished.store(true, Ordering::Relaxed);
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// `body`, refused past `limit` bytes (`http_body_util::Limited`): reading
/// further fails and sets `exceeded`.
fn limited(body: Body, limit: u64, exceeded: Arc<AtomicBool>, finished: Arc<AtomicBool>) -> Body {
    use http_body_util::BodyExt as _;
    let inner: BoxBody<Bytes, io::Error> = body.into();
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let capped = http_body_util::Limited::new(inner, limit).map_err(move |e| {
        if e.is::<http_body_util::LengthLimitError>() {
            exceeded.store(true, Ordering::Relaxed);
        }
        io::Error::other("request body too large or unreadable")
    });
    Body::from(BoxBody::new(Watched {
        inner: capped,
        finished,
    }))
}

impl Endpoint for HardeningEndpoint {
    type Output = Response;

    async fn call(&self, mut req: Request) -> PoemResult<Response> {
        let cfg = &self.config.0;
        let request_id = req
            .headers()
            .get(&REQUEST_ID)
            .and_then(valid_request_id)
            .or_else(|| crate::model::secrets::random_secret(12))
            .unwrap_or_else(|| "unavailable".to_owned());
        req.extensions_mut()
            .insert(RequestTraceId(request_id.clone()));
        // With `Security` installed outside, the client IP (through trusted
        // proxies) is known now; installed inside, `Security` records it in
        // this span when the request reaches it. Without one: the peer.
        let span = tracing::info_span!("request", request_id = %request_id, client_ip = tracing::field::Empty);
        let security_outside = req.extensions().get::<crate::Security>().is_some();
        if security_outside {
            let ip = client_ip(&req).map(|ip| ip.to_string()).unwrap_or_default();
            span.record("client_ip", tracing::field::display(&ip));
        }
        let pending = (!security_outside).then(|| {
            let slot = crate::web::middleware::ClientIpPending::new(client_ip(&req));
            req.extensions_mut().insert(slot.clone());
            slot
        });
        let credentialed = [header::AUTHORIZATION, header::COOKIE]
            .iter()
            .any(|h| req.headers().contains_key(h));
        let docs = cfg.docs_paths.iter().any(|p| {
            let path = req.uri().path();
            path == p
                || path
                    .strip_prefix(p.as_str())
                    .is_some_and(|rest| rest.starts_with('/'))
        });
        // A request refused before its body was read leaves the rest of the
        // body on an HTTP/1.1 connection, which the server then closes: say so
        // (`Connection: close`) so that clients do not reuse a dead connection.
        let has_body = req.headers().contains_key(header::TRANSFER_ENCODING)
            || req
                .headers()
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.trim() != "0");
        let http1 = req.version() <= poem::http::Version::HTTP_11;
        let unread_body: std::sync::Mutex<Option<Arc<AtomicBool>>> = std::sync::Mutex::new(None);
        let (preflight, allow_origin) = match cfg.cors.as_ref().map(|c| c.0.verdict(&req)) {
            Some(CorsVerdict::Preflight(r)) => (Some(r), None),
            Some(CorsVerdict::Allow(o)) => (None, Some(o)),
            Some(CorsVerdict::None) | None => (None, None),
        };

        let mut resp = async {
            let header_bytes: usize = req.headers().iter().map(|(n, v)| n.as_str().len() + v.len() + 4).sum();
            if header_bytes > cfg.header_limit {
                return problem(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, generic_detail(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE));
            }
            let declared = req
                .headers()
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            if declared.is_some_and(|n| n > cfg.body_limit) {
                return problem(StatusCode::PAYLOAD_TOO_LARGE, generic_detail(StatusCode::PAYLOAD_TOO_LARGE));
            }
            if let Some(r) = preflight {
                return r;
            }
            let exceeded = Arc::new(AtomicBool::new(false));
            let finished = Arc::new(AtomicBool::new(false));
            let body = req.take_body();
            req.set_body(limited(body, cfg.body_limit, exceeded.clone(), finished.clone()));
            *unread_body.lock().unwrap_or_else(|p| p.into_inner()) = Some(finished);
            let result = match tokio::time::timeout(cfg.timeout, self.inner.call(req)).await {
                Ok(r) => r,
                Err(_) => {
                    tracing::warn!(target: AUDIT_TARGET, event = "request_timeout");
                    return problem(StatusCode::SERVICE_UNAVAILABLE, "The request did not complete in time.");
                }
            };
            if exceeded.load(Ordering::Relaxed) {
                return problem(StatusCode::PAYLOAD_TOO_LARGE, generic_detail(StatusCode::PAYLOAD_TOO_LARGE));
            }
            match result {
                Ok(resp) => problem_if_bare(resp),
                Err(e) if e.is::<AuthRejection>() => e.into_response(),
                Err(e) => {
                    let status = e.status();
                    if status.is_server_error() {
                        // Server errors carry no request input: log their text.
                        tracing::error!(target: AUDIT_TARGET, event = "server_error", status = status.as_u16(), error = %e);
                    } else {
                        // Client errors may echo input (possibly secrets): log
                        // the status only.
                        tracing::info!(target: AUDIT_TARGET, event = "client_error", status = status.as_u16());
                    }
                    let mut r = problem(status, generic_detail(status));
                    if status == StatusCode::METHOD_NOT_ALLOWED {
                        if let Some(allow) = e.into_response().headers().get(header::ALLOW).cloned() {
                            r.headers_mut().insert(header::ALLOW, allow);
                        }
                    }
                    r
                }
            }
        }
        .instrument(span.clone())
        .await;
        if let Some(ip) = pending.and_then(|p| p.unrecorded()) {
            let ip = ip.map(|ip| ip.to_string()).unwrap_or_default();
            span.record("client_ip", tracing::field::display(&ip));
        }

        let body_left = match unread_body.into_inner().unwrap_or_else(|p| p.into_inner()) {
            Some(finished) => !finished.load(Ordering::Relaxed),
            None => true, // answered before the body was even wrapped
        };
        let h = resp.headers_mut();
        if has_body && http1 && body_left {
            h.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        h.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        h.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
        if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
            h.insert(
                header::CONTENT_SECURITY_POLICY,
                if docs {
                    cfg.docs_csp.clone()
                } else {
                    cfg.api_csp.clone()
                },
            );
        }
        if let Some(hsts) = &cfg.hsts {
            h.insert(header::STRICT_TRANSPORT_SECURITY, hsts.clone());
        }
        if credentialed && !h.contains_key(header::CACHE_CONTROL) {
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        }
        if let Ok(v) = HeaderValue::from_str(&request_id) {
            h.insert(REQUEST_ID, v);
        }
        if let (Some(c), Some(origin)) = (&cfg.cors, &allow_origin) {
            c.0.decorate(origin, h);
        }
        if cfg.cors.is_some()
            && !h
                .get_all(header::VARY)
                .iter()
                .any(|v| v.as_bytes().starts_with(b"Origin"))
        {
            h.append(header::VARY, HeaderValue::from_static("Origin"));
        }
        Ok(resp)
    }
}

/// An error response without a body (e.g. an `ApiResponse` variant with no
/// payload) gets a problem body, keeping its headers.
fn problem_if_bare(resp: Response) -> Response {
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error())
        || resp.headers().contains_key(header::CONTENT_TYPE)
    {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    if !body.is_empty() {
        return Response::from_parts(parts, body);
    }
    let mut p = problem(status, generic_detail(status));
    for (name, value) in parts.headers.iter() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            p.headers_mut().append(name.clone(), value.clone());
        }
    }
    p
}
