//! [`Security`]: the one value installed on an app that every guard consults.

use std::{
    fmt,
    net::IpAddr,
    sync::{Arc, OnceLock},
};

use poem::{
    http::{header, HeaderName},
    Endpoint, Middleware, Request, Result as PoemResult,
};

use crate::{
    credentials::{ApiKeyVerifier, BasicVerifier, CredentialError, RevocationList},
    error::{AuthRejection, RejectionKind},
    jwt::{AccessClaims, JwtConfig, JwtVerifier, TokenError, VerifyError},
    policy::{AuthKinds, Policy, RateKey},
    principal::{CredentialKind, Principal},
    rate::{MemoryRateLimiter, RateDecision, RateLimiter},
};

/// The audit target of poem-secure's `tracing` events.
pub const AUDIT_TARGET: &str = "poem_secure::audit";

/// A configuration mistake found while building [`Security`] (at startup, so
/// that a misconfigured service never starts serving).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(String);

impl ConfigError {
    pub(crate) fn new(msg: impl Into<String>) -> Self {
        ConfigError(msg.into())
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "poem-secure configuration: {}", self.0)
    }
}

impl std::error::Error for ConfigError {}

/// The security configuration of an app: verifiers, stores and the rate
/// limiter. Install it once with `.with(security)`; every `#[secure]` and
/// `#[public]` guard below it consults it. Cloning is cheap.
///
/// A guard that finds no `Security` installed refuses the request with a 500
/// and a generic body, and logs one error line: it never serves.
///
/// ```
/// use poem::{EndpointExt, Route};
/// use secure_runtime::{JwtConfig, Security};
///
/// let security = Security::builder()
///     .jwt(JwtConfig::hs256(b"0123456789abcdef0123456789abcdef").unwrap()
///         .issuer("notes-demo")
///         .audience("notes-api"))
///     .build()
///     .expect("valid configuration");
/// let app = Route::new().with(security);
/// # let _ = app;
/// ```
#[derive(Clone)]
pub struct Security(Arc<Inner>);

struct Inner {
    jwt: Option<JwtVerifier>,
    api_keys: Option<Arc<dyn ApiKeyVerifier>>,
    basic: Option<Arc<dyn BasicVerifier>>,
    revocations: Option<Arc<dyn RevocationList>>,
    limiter: Arc<dyn RateLimiter>,
    api_key_header: HeaderName,
}

impl fmt::Debug for Security {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Security")
            .field("jwt", &self.0.jwt.is_some())
            .field("api_keys", &self.0.api_keys.is_some())
            .field("basic", &self.0.basic.is_some())
            .field("revocations", &self.0.revocations.is_some())
            .field("api_key_header", &self.0.api_key_header)
            .finish()
    }
}

/// Builds a [`Security`]; see [`Security::builder`].
#[derive(Default)]
pub struct SecurityBuilder {
    jwt: Option<JwtConfig>,
    api_keys: Option<Arc<dyn ApiKeyVerifier>>,
    basic: Option<Arc<dyn BasicVerifier>>,
    revocations: Option<Arc<dyn RevocationList>>,
    limiter: Option<Arc<dyn RateLimiter>>,
    api_key_header: Option<String>,
}

impl SecurityBuilder {
    /// JWT bearer verification (required by `auth = bearer`, the default).
    pub fn jwt(mut self, jwt: JwtConfig) -> Self {
        self.jwt = Some(jwt);
        self
    }
    /// The API key store (required by `auth = api_key`).
    pub fn api_keys(mut self, v: impl ApiKeyVerifier) -> Self {
        self.api_keys = Some(Arc::new(v));
        self
    }
    /// The HTTP Basic verifier (required by `auth = basic`).
    pub fn basic(mut self, v: impl BasicVerifier) -> Self {
        self.basic = Some(Arc::new(v));
        self
    }
    /// The access-token revocation list (`jti` denylist). With one configured,
    /// a bearer token without `jti` is refused.
    pub fn revocations(mut self, v: impl RevocationList) -> Self {
        self.revocations = Some(Arc::new(v));
        self
    }
    /// The session store of the token service, installed as the access-token
    /// revocation list (logout takes effect at once).
    pub fn sessions(self, store: std::sync::Arc<dyn crate::SessionStore>) -> Self {
        self.revocations(crate::Revocations::of(store))
    }
    /// The rate limiter; defaults to the in-memory [`MemoryRateLimiter`].
    pub fn rate_limiter(mut self, v: impl RateLimiter) -> Self {
        self.limiter = Some(Arc::new(v));
        self
    }
    /// The API key header (default `X-API-Key`). Keep it equal to the
    /// catalogue's `api_key_header` so that the OpenAPI document agrees.
    pub fn api_key_header(mut self, name: impl Into<String>) -> Self {
        self.api_key_header = Some(name.into());
        self
    }
    /// Validates the configuration.
    pub fn build(self) -> Result<Security, ConfigError> {
        let jwt = self.jwt.map(JwtConfig::build).transpose()?;
        let header_name = self.api_key_header.as_deref().unwrap_or("X-API-Key");
        let api_key_header = HeaderName::try_from(header_name)
            .map_err(|_| ConfigError::new("the API key header name is not a valid header name"))?;
        if api_key_header == header::AUTHORIZATION || api_key_header == header::COOKIE {
            return Err(ConfigError::new(
                "the API key header must not be Authorization or Cookie",
            ));
        }
        Ok(Security(Arc::new(Inner {
            jwt,
            api_keys: self.api_keys,
            basic: self.basic,
            revocations: self.revocations,
            limiter: self
                .limiter
                .unwrap_or_else(|| Arc::new(MemoryRateLimiter::new())),
            api_key_header,
        })))
    }
}

/// What goes into an access token issued by [`Security::issue_access_token`].
#[derive(Debug, Clone, Copy, Default)]
pub struct AccessToken<'a> {
    /// `sub`.
    pub subject: &'a str,
    /// Granted scopes (`scope`, space-separated).
    pub scopes: &'a [&'a str],
    /// `roles`.
    pub roles: &'a [&'a str],
    /// `permissions` (omitted when empty).
    pub permissions: &'a [&'a str],
    /// `sid`: the refresh-token family, so that logout can revoke it.
    pub session_id: Option<&'a str>,
}

/// A freshly issued access token.
#[derive(Clone, PartialEq, Eq)]
pub struct IssuedToken {
    /// The compact JWT.
    pub token: String,
    /// Its `jti`.
    pub jti: String,
    /// Lifetime in seconds.
    pub expires_in: u64,
    /// `exp` (seconds since the Unix epoch).
    pub expires_at: u64,
}

impl fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedToken").field("jti", &self.jti).field("expires_in", &self.expires_in).finish_non_exhaustive()
    }
}

/// Per-request state installed by the [`Security`] middleware: the guard
/// writes the verified principal once, extractors read it.
#[derive(Clone)]
pub(crate) struct RequestAuth {
    pub(crate) security: Security,
    pub(crate) principal: OnceLock<Principal>,
}

/// A presented credential, borrowed from the request headers.
enum Presented<'r> {
    Bearer(&'r str),
    Basic(&'r str),
}

impl Security {
    /// Starts a configuration.
    pub fn builder() -> SecurityBuilder {
        SecurityBuilder::default()
    }

    #[cfg_attr(not(feature = "testing"), allow(dead_code))]
    pub(crate) fn jwt(&self) -> Option<&JwtVerifier> {
        self.0.jwt.as_ref()
    }

    /// Issues an RFC 9068 access token (`typ: at+jwt`; `iss`, `sub`, `aud`,
    /// `exp`, `iat`, `jti`, `scope`, `roles`, and `permissions`/`sid` when
    /// given), valid for the configured lifetime.
    ///
    /// ```
    /// use secure_runtime::{AccessToken, JwtConfig, Security};
    /// let security = Security::builder()
    ///     .jwt(JwtConfig::hs256([1u8; 32]).unwrap().issuer("me").audience("api").access_ttl_secs(600))
    ///     .build()
    ///     .unwrap();
    /// let t = security
    ///     .issue_access_token(&AccessToken { subject: "alice", scopes: &["me"], roles: &["user"], ..Default::default() })
    ///     .unwrap();
    /// assert_eq!(t.expires_in, 600);
    /// assert_eq!(t.token.split('.').count(), 3);
    /// ```
    pub fn issue_access_token(&self, t: &AccessToken<'_>) -> Result<IssuedToken, ConfigError> {
        let Some(jwt) = &self.0.jwt else {
            return Err(ConfigError::new("no JWT configuration"));
        };
        let jti = crate::secrets::random_secret(16).ok_or_else(|| ConfigError::new("the OS random source failed"))?;
        let ttl = jwt.access_ttl_secs();
        let claims = AccessClaims {
            subject: t.subject,
            scopes: t.scopes,
            roles: t.roles,
            permissions: t.permissions,
            jti: &jti,
            session_id: t.session_id,
            iat_offset: 0,
            exp_offset: i64::try_from(ttl).unwrap_or(i64::MAX),
            nbf_offset: None,
        };
        match jwt.mint(&claims) {
            Some(Ok(token)) => Ok(IssuedToken { token, expires_in: ttl, expires_at: crate::jwt::now_secs() + ttl, jti }),
            Some(Err(e)) => Err(e),
            None => Err(ConfigError::new("the JWT configuration has no signing key")),
        }
    }

    /// The service's public verification keys as a JWKS document (RFC 7517),
    /// to publish at e.g. `/.well-known/jwks.json`. Empty for HMAC keys, whose
    /// secret is never published.
    pub fn jwks(&self) -> serde_json::Value {
        self.0.jwt.as_ref().map_or_else(
            || serde_json::json!({ "keys": [] }),
            |j| serde_json::to_value(j.jwks()).unwrap_or_else(|_| serde_json::json!({ "keys": [] })),
        )
    }

    /// Whether a revocation list (`jti` denylist) is installed.
    pub fn has_revocations(&self) -> bool {
        self.0.revocations.is_some()
    }

    pub(crate) fn limiter(&self) -> &dyn RateLimiter {
        &*self.0.limiter
    }

    /// Whether access tokens can be issued (a signing key is configured).
    pub fn can_issue_tokens(&self) -> bool {
        self.0.jwt.as_ref().is_some_and(JwtVerifier::can_sign)
    }

    /// Runs `policy` against `req`: authenticates, applies the rate limit, then
    /// checks scopes, roles, permissions and the custom `check`, in that order.
    ///
    /// Returns the principal (`None` on a `#[public]` route called without
    /// credentials). Generated guards call this; it is public for custom
    /// integrations and tests.
    pub async fn authorize(
        &self,
        policy: &'static Policy,
        req: &Request,
    ) -> Result<Option<Principal>, AuthRejection> {
        let principal = self.authenticate(policy, req).await?;
        let Some(p) = principal else {
            if policy.public {
                self.rate_limit(policy, req, None).await?;
                return Ok(None);
            }
            audit_refused(policy, "no credentials");
            return Err(AuthRejection::missing(policy.auth));
        };
        self.rate_limit(policy, req, Some(&p)).await?;
        if !policy.scopes.iter().all(|s| p.has_scope(s)) {
            tracing::info!(target: AUDIT_TARGET, event = "access_denied", route = policy.id,
                subject = p.subject(), reason = "missing scope");
            return Err(AuthRejection::insufficient_scope(policy.scopes));
        }
        if !policy.roles.satisfied_by(p.roles()) {
            tracing::info!(target: AUDIT_TARGET, event = "access_denied", route = policy.id,
                subject = p.subject(), reason = "missing role");
            return Err(AuthRejection::new(RejectionKind::Forbidden));
        }
        if !policy.permissions.iter().all(|s| p.has_permission(s)) {
            tracing::info!(target: AUDIT_TARGET, event = "access_denied", route = policy.id,
                subject = p.subject(), reason = "missing permission");
            return Err(AuthRejection::new(RejectionKind::Forbidden));
        }
        if let Some(check) = policy.check {
            if let Err(d) = check(&p, req).await {
                tracing::info!(target: AUDIT_TARGET, event = "access_denied", route = policy.id,
                    subject = p.subject(), reason = d.reason());
                return Err(AuthRejection::denied(&d));
            }
        }
        Ok(Some(p))
    }

    /// Finds and verifies the credentials `policy` accepts. `Ok(None)`: none
    /// presented. A presented credential that fails refuses the request even
    /// when another one would pass (no credential is ever silently ignored).
    async fn authenticate(
        &self,
        policy: &'static Policy,
        req: &Request,
    ) -> Result<Option<Principal>, AuthRejection> {
        let kinds = policy.auth;
        let authz = single_header(req, &header::AUTHORIZATION)?.and_then(|v| {
            let (scheme, rest) = v.split_once(' ').unwrap_or((v, ""));
            let rest = rest.trim_matches(' ');
            if rest.is_empty() {
                None
            } else if scheme.eq_ignore_ascii_case("bearer") && kinds.accepts_bearer() {
                Some(Presented::Bearer(rest))
            } else if scheme.eq_ignore_ascii_case("basic") && kinds.accepts_basic() {
                Some(Presented::Basic(rest))
            } else {
                None
            }
        });
        let api_key = if kinds.accepts_api_key() {
            single_header(req, &self.0.api_key_header)?
                .map(|v| v.trim_matches(' '))
                .filter(|v| !v.is_empty())
        } else {
            None
        };

        let mut found: Option<Principal> = None;
        if let Some(presented) = authz {
            found = Some(match presented {
                Presented::Bearer(token) => self.verify_bearer(policy, token).await?,
                Presented::Basic(b64) => self.verify_basic(policy, b64).await?,
            });
        }
        if let Some(key) = api_key {
            let Some(store) = &self.0.api_keys else {
                return Err(misconfigured(
                    policy,
                    "auth = api_key but no API key store is configured",
                ));
            };
            let p = store
                .verify(key)
                .await
                .map_err(|e| refused(policy, CredentialKind::ApiKey, e))?;
            found = found.or(Some(p));
        }
        Ok(found)
    }

    async fn verify_bearer(
        &self,
        policy: &'static Policy,
        token: &str,
    ) -> Result<Principal, AuthRejection> {
        let Some(jwt) = &self.0.jwt else {
            return Err(misconfigured(
                policy,
                "auth = bearer but no JWT verifier is configured",
            ));
        };
        let invalid = |e: TokenError| {
            tracing::info!(target: AUDIT_TARGET, event = "token_refused", route = policy.id, reason = %e);
            AuthRejection::invalid(CredentialKind::Bearer, policy.auth)
        };
        let p = match jwt.verify(token).await {
            Ok(p) => p,
            Err(VerifyError::Token(e)) => return Err(invalid(e)),
            Err(VerifyError::SourceDown) => {
                return Err(refused(policy, CredentialKind::Bearer, CredentialError::Unavailable))
            }
        };
        if let Some(list) = &self.0.revocations {
            let Some(jti) = p.token_id() else {
                return Err(invalid(TokenError::Malformed));
            };
            match list.is_revoked(jti).await {
                Ok(false) => {}
                Ok(true) => return Err(invalid(TokenError::Revoked)),
                Err(e) => return Err(refused(policy, CredentialKind::Bearer, e)),
            }
        }
        Ok(p)
    }

    async fn verify_basic(
        &self,
        policy: &'static Policy,
        b64: &str,
    ) -> Result<Principal, AuthRejection> {
        use base64::Engine as _;
        let Some(store) = &self.0.basic else {
            return Err(misconfigured(
                policy,
                "auth = basic but no Basic verifier is configured",
            ));
        };
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .ok()
            .and_then(|b| String::from_utf8(b).ok());
        let Some((user, pass)) = decoded.as_deref().and_then(|s| s.split_once(':')) else {
            return Err(refused(
                policy,
                CredentialKind::Basic,
                CredentialError::Invalid,
            ));
        };
        store
            .verify(user, pass)
            .await
            .map_err(|e| refused(policy, CredentialKind::Basic, e))
    }

    async fn rate_limit(
        &self,
        policy: &'static Policy,
        req: &Request,
        p: Option<&Principal>,
    ) -> Result<(), AuthRejection> {
        let Some(rate) = policy.rate else {
            return Ok(());
        };
        let key = rate_key(policy, req, p);
        match self.0.limiter.check(policy.rate_bucket(), &key, rate).await {
            Ok(RateDecision::Allowed) => Ok(()),
            Ok(RateDecision::Limited { retry_after }) => {
                tracing::info!(target: AUDIT_TARGET, event = "rate_limited", route = policy.id);
                // Whole seconds, never earlier than the real next admission.
                let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
                Err(AuthRejection::rate_limited(secs.max(1)))
            }
            Err(_) => {
                tracing::error!(target: AUDIT_TARGET, event = "limiter_unavailable", route = policy.id);
                Err(AuthRejection::unavailable())
            }
        }
    }
}

/// The client IP: the socket peer.
pub(crate) fn client_ip(req: &Request) -> Option<IpAddr> {
    req.remote_addr().as_socket_addr().map(|a| a.ip())
}

fn rate_key(policy: &Policy, req: &Request, p: Option<&Principal>) -> String {
    let ip = || client_ip(req).map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
    match (policy.rate_key, p) {
        (RateKey::Custom(f), p) => format!("custom:{}", f(req, p)),
        (RateKey::Ip, _) | (_, None) => format!("ip:{}", ip()),
        (RateKey::Default, Some(_)) if policy.public => format!("ip:{}", ip()),
        (RateKey::Default | RateKey::User, Some(p)) => format!("user:{}", p.subject()),
        (RateKey::ApiKey, Some(p)) => format!("key:{}", p.key_id().unwrap_or(p.subject())),
        (RateKey::IpUser, Some(p)) => format!("ipuser:{}|{}", ip(), p.subject()),
    }
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

fn audit_refused(policy: &Policy, reason: &'static str) {
    tracing::info!(target: AUDIT_TARGET, event = "auth_required", route = policy.id, reason);
}

fn misconfigured(policy: &Policy, what: &'static str) -> AuthRejection {
    tracing::error!(target: AUDIT_TARGET, event = "misconfigured", route = policy.id, "{what}");
    AuthRejection::new(RejectionKind::Misconfigured)
}

fn refused(policy: &Policy, kind: CredentialKind, e: CredentialError) -> AuthRejection {
    match e {
        CredentialError::Invalid => {
            tracing::info!(target: AUDIT_TARGET, event = "credential_refused", route = policy.id, kind = ?kind);
            AuthRejection::invalid(kind, policy.auth)
        }
        CredentialError::Unavailable => {
            tracing::error!(target: AUDIT_TARGET, event = "store_unavailable", route = policy.id, kind = ?kind);
            AuthRejection::unavailable()
        }
    }
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
    type Output = E::Output;

    async fn call(&self, mut req: Request) -> PoemResult<Self::Output> {
        req.extensions_mut().insert(self.security.clone());
        req.extensions_mut().insert(RequestAuth {
            security: self.security.clone(),
            principal: OnceLock::new(),
        });
        self.inner.call(req).await
    }
}

/// Runs `policy` for a request and records the principal for the handler's
/// extractors. Called by the generated guards.
pub(crate) async fn guard(req: &Request, policy: &'static Policy) -> Result<(), AuthRejection> {
    let Some(state) = req.extensions().get::<RequestAuth>() else {
        tracing::error!(
            target: AUDIT_TARGET,
            event = "not_installed",
            route = policy.id,
            "poem-secure: no Security is installed on this app (add `.with(security)`); refusing the request"
        );
        return Err(AuthRejection::new(RejectionKind::NotInstalled));
    };
    if let Some(p) = state.security.authorize(policy, req).await? {
        // Only the one guard of the handler writes the slot.
        let _ = state.principal.set(p);
    }
    Ok(())
}

/// Reads the principal the guard verified.
pub(crate) fn verified_principal(req: &Request) -> Result<Principal, AuthRejection> {
    let state = req
        .extensions()
        .get::<RequestAuth>()
        .ok_or_else(|| AuthRejection::new(RejectionKind::NotInstalled))?;
    state
        .principal
        .get()
        .cloned()
        .ok_or_else(|| AuthRejection::missing(AuthKinds::BEARER))
}
