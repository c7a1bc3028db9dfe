//! The [`Security`] middleware, the per-request state it installs, and the
//! guard that runs a policy's [`Decision`] for a handler.

use std::{
    net::IpAddr,
    task::{Context, Poll},
};

use poem::{
    http::{header, HeaderName},
    Endpoint, IntoResponse, Middleware, Request, Response, Result as PoemResult,
};

use crate::{
    decision::{rate::RateSlot, Credentials, Decision, Presented, Slots},
    model::{
        audit::AUDIT_TARGET,
        policy::{AuthKinds, Policy},
        principal::Principal,
        rejection::{AuthRejection, RejectionKind},
    },
    web::security::Security,
};

/// Per-request state installed by the [`Security`] middleware (beside the
/// `Security` itself): the decision records the principal here, extractors
/// read it once a policy admitted the request.
#[derive(Default, Clone)]
pub(crate) struct RequestAuth {
    pub(crate) slots: Slots,
}

impl<E: Endpoint> Middleware<E> for Security {
    type Output = SecurityEndpoint<E>;

    fn transform(&self, ep: E) -> Self::Output {
        SecurityEndpoint {
            inner: ep,
            security: self.clone(),
        }
    }
}

/// The endpoint produced by installing [`Security`] with `.with(security)`.
pub struct SecurityEndpoint<E> {
    inner: E,
    security: Security,
}

impl<E: Endpoint> Endpoint for SecurityEndpoint<E> {
    type Output = Response;

    async fn call(&self, mut req: Request) -> PoemResult<Self::Output> {
        // Installed inside `Hardening`, whose request span could not know
        // the client IP yet: record it there, through trusted proxies.
        if let Some(pending) = req.extensions().get::<ClientIpPending>() {
            pending.record(self.security.client_ip(&req));
        }
        // A response to a request that carried the API key is never cached
        // (Authorization and Cookie: Hardening's rule, and RFC 9111).
        let keyed = req.headers().contains_key(self.security.api_key_header());
        req.extensions_mut().insert(self.security.clone());
        // By value: one allocation (the extension map's box), no `Arc`.
        req.extensions_mut().insert(RequestAuth::default());
        if keyed {
            let result = self.respond(req).await;
            let mut resp = match result {
                Ok(r) => r,
                Err(e) => e.into_response(),
            };
            if !resp.headers().contains_key(header::CACHE_CONTROL) {
                resp.headers_mut().insert(
                    header::CACHE_CONTROL,
                    poem::http::HeaderValue::from_static("no-store"),
                );
            }
            return Ok(resp);
        }
        self.respond(req).await
    }
}

impl<E: Endpoint> SecurityEndpoint<E> {
    async fn respond(&self, mut req: Request) -> PoemResult<Response> {
        if !self.security.rate_headers() {
            return self.inner.call(req).await.map(IntoResponse::into_response);
        }
        // `rate_limit_headers(true)`: the guard leaves the route's rate status
        // here, and every response of a limited route carries it (a 429
        // carries its own).
        let slot = RateSlot::default();
        req.extensions_mut().insert(slot.clone());
        let result = self.inner.call(req).await;
        let Some(status) = slot.0.get() else {
            return result.map(IntoResponse::into_response);
        };
        let mut resp = match result {
            Ok(r) => r.into_response(),
            Err(e) => e.into_response(),
        };
        status.apply(resp.headers_mut());
        Ok(resp)
    }
}

/// Left by `Hardening` installed outside [`Security`]: its request span
/// waits for the client IP, which `Security` records (or, if no `Security`
/// is reached, `Hardening` records the socket peer once the request ends).
#[derive(Clone)]
pub(crate) struct ClientIpPending(
    std::sync::Arc<std::sync::atomic::AtomicBool>,
    Option<IpAddr>,
);

impl ClientIpPending {
    pub(crate) fn new(peer: Option<IpAddr>) -> Self {
        ClientIpPending(Default::default(), peer)
    }

    /// Records `ip` in the current (request) span.
    fn record(&self, ip: Option<IpAddr>) {
        let ip = ip.map(|ip| ip.to_string()).unwrap_or_default();
        tracing::Span::current().record("client_ip", tracing::field::display(&ip));
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// The peer to record when no `Security` recorded the client IP
    /// (`None`: it was recorded).
    pub(crate) fn unrecorded(&self) -> Option<Option<IpAddr>> {
        (!self.0.load(std::sync::atomic::Ordering::Relaxed)).then_some(self.1)
    }
}

/// A guard's state: the decision, or a refusal known before it started.
// The decision lives inline in the guard's future: boxing it would cost an
// allocation per request, which is what the single-poll path avoids.
#[allow(clippy::large_enum_variant)]
pub(crate) enum GuardStep<'a> {
    Deciding(Decision<'a>),
    Refused(Option<AuthRejection>),
}

impl GuardStep<'_> {
    /// Polls the decision; compiled here once for every handler.
    #[inline(never)]
    pub(crate) fn poll_step(&mut self, cx: &mut Context<'_>) -> Poll<PoemResult<()>> {
        match self {
            GuardStep::Deciding(d) => d.poll_decide(cx).map(|v| v.map(|_| ()).map_err(Into::into)),
            // Taken once; polled again after its answer it still refuses.
            GuardStep::Refused(r) => Poll::Ready(Err(r
                .take()
                .unwrap_or_else(|| AuthRejection::new(RejectionKind::Misconfigured))
                .into())),
        }
    }
}

/// Starts `policy`'s decision for `req`. Called by the generated guards.
///
/// A plain function, never inlined, returning one type for every handler:
/// the user's crate compiles a call and a poll, not the decision.
#[inline(never)]
pub(crate) fn guard<'a>(req: &'a Request, policy: &'static Policy) -> GuardStep<'a> {
    let (Some(security), Some(auth)) = (
        req.extensions().get::<Security>(),
        req.extensions().get::<RequestAuth>(),
    ) else {
        tracing::error!(
            target: AUDIT_TARGET,
            event = "not_installed",
            route = policy.id(),
            "poem-secure: no Security is installed on this app (add `.with(security)`); refusing the request"
        );
        return GuardStep::Refused(Some(AuthRejection::new(RejectionKind::NotInstalled)));
    };
    match security.decision(policy, req, &auth.slots) {
        Ok(d) => GuardStep::Deciding(d),
        Err(e) => GuardStep::Refused(Some(e)),
    }
}

/// Reads the principal a guard admitted.
pub(crate) fn verified_principal(req: &Request) -> Result<Principal, AuthRejection> {
    let auth = req
        .extensions()
        .get::<RequestAuth>()
        .ok_or_else(|| AuthRejection::new(RejectionKind::NotInstalled))?;
    auth.slots
        .admitted
        .get()
        .and_then(|()| auth.slots.principal.get())
        .cloned()
        .ok_or_else(|| AuthRejection::missing(AuthKinds::BEARER))
}

/// The admitted caller when `policy`'s typed check is due on `req`.
pub(crate) fn check_due<'r>(req: &'r Request, policy: &Policy) -> Option<&'r Principal> {
    // Only a typed check (named, with no request-level function) can be due:
    // every other guard answers without looking at the request.
    if policy.check_name().is_none() || policy.check().is_some() {
        return None;
    }
    let slots = &req.extensions().get::<RequestAuth>()?.slots;
    slots.admitted.get()?;
    if *slots.check_due.get()? != policy.id() {
        return None;
    }
    slots.principal.get()
}

/// The client IP of a request that passed through the [`Security`]
/// middleware (trusted proxies honoured); the socket peer otherwise.
pub(crate) fn client_ip(req: &Request) -> Option<IpAddr> {
    match req.extensions().get::<Security>() {
        Some(s) => s.client_ip(req),
        None => req
            .remote_addr()
            .as_socket_addr()
            .map(|a| a.ip().to_canonical()),
    }
}

/// The credentials `policy` accepts, borrowed from the request headers:
/// the `Authorization` header and the API key header.
pub(crate) fn presented<'r>(
    policy: &Policy,
    api_key_header: &HeaderName,
    req: &'r Request,
) -> Result<Credentials<'r>, AuthRejection> {
    let kinds = policy.auth();
    let authz = match single_header(req, &header::AUTHORIZATION)? {
        None => None,
        Some(v) => {
            let (scheme, rest) = v.split_once(' ').unwrap_or((v, ""));
            let rest = rest.trim_matches(' ');
            if rest.is_empty() {
                None
            } else if scheme.eq_ignore_ascii_case("bearer") && kinds.accepts_bearer() {
                Some(Presented::Bearer(rest))
            } else if scheme.eq_ignore_ascii_case("basic") && kinds.accepts_basic() {
                Some(Presented::Basic(rest))
            } else {
                // A credential this route does not take is refused, never
                // treated as absent (on a public route too).
                tracing::info!(target: AUDIT_TARGET, event = "credential_refused",
                    route = policy.id(), reason = "unsupported Authorization scheme");
                return Err(AuthRejection::new(RejectionKind::UnsupportedScheme(kinds)));
            }
        }
    };
    let api_key = if kinds.accepts_api_key() {
        single_header(req, api_key_header)?
            .map(|v| v.trim_matches(' '))
            .filter(|v| !v.is_empty())
    } else {
        None
    };
    Ok(Credentials { authz, api_key })
}

/// The value of a header that must appear at most once; several copies, or a
/// value that is not visible ASCII, is a malformed request (400).
fn single_header<'r>(
    req: &'r Request,
    name: &HeaderName,
) -> Result<Option<&'r str>, AuthRejection> {
    let mut values = req.headers().get_all(name).iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(AuthRejection::new(RejectionKind::BadRequest));
    }
    first
        .to_str()
        .map(Some)
        .map_err(|_| AuthRejection::new(RejectionKind::BadRequest))
}
