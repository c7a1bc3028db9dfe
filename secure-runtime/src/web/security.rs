//! [`Security`]: the one value installed on an app that every guard consults.

use std::{
    fmt,
    net::IpAddr,
    sync::{Arc, OnceLock},
    task::{Context, Poll},
};

use poem::{
    http::{header, HeaderName},
    Endpoint, IntoResponse, Middleware, Request, Response, Result as PoemResult,
};

use crate::{
    decision::rate::Enforced,
    decision::rate::RateSettings,
    decision::rate::RateSlot,
    model::answer::BoxFuture,
    model::audit::AUDIT_TARGET,
    model::config::ConfigError,
    model::policy::{AuthKinds, Policy, RateKey},
    model::principal::CredentialKind,
    model::principal::Principal,
    model::rate::PartitionKey,
    model::rate::RateLimiter,
    model::rate::RateQuery,
    model::rejection::AuthRejection,
    model::rejection::RejectionKind,
    stores::rate::MemoryRateLimiter,
    verify::credentials::ApiKeyVerifier,
    verify::credentials::BasicVerifier,
    verify::credentials::CredentialError,
    verify::credentials::RevocationList,
    verify::jwt::AccessClaims,
    verify::jwt::JwtConfig,
    verify::jwt::JwtVerifier,
    verify::jwt::TokenError,
    verify::jwt::VerifyError,
    web::client_ip::parse_networks,
    web::client_ip::ForwardedHeader,
    web::client_ip::TrustedProxies,
};

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
    rate: RateSettings,
    client_ip: TrustedProxies,
    api_key_header: HeaderName,
    extensions: poem::http::Extensions,
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
    trusted_proxies: Vec<String>,
    forwarded_header: ForwardedHeader,
    rate_allow_ips: Vec<String>,
    rate_allow_keys: Vec<String>,
    rate_dry_run: bool,
    rate_headers: bool,
    api_key_header: Option<String>,
    /// What upper layers (the issuer) attach to the configuration.
    pub(crate) extensions: poem::http::Extensions,
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
    /// The rate limiter; defaults to the in-memory [`MemoryRateLimiter`].
    /// Use `RedisRateLimiter` (feature `redis`) when several instances must
    /// share their limits.
    pub fn rate_limiter(mut self, v: impl RateLimiter) -> Self {
        self.limiter = Some(Arc::new(v));
        self
    }
    /// Trusts the reverse proxies in these networks (`"10.0.0.0/8"`,
    /// `"2001:db8::/32"`, or single addresses): from them, and only from
    /// them, the forwarding header is believed, and the client IP is its
    /// right-most hop that is not itself trusted (see [`TrustedProxies`]).
    /// Rate limits, login protection and [`Security::client_ip`] all use that
    /// answer. Without this, the client IP is the socket peer and forwarding
    /// headers are ignored.
    ///
    /// ```
    /// use secure_runtime::Security;
    /// assert!(Security::builder().trusted_proxies(["10.0.0.0/8", "fd00::/8"]).build().is_ok());
    /// let err = Security::builder().trusted_proxies(["10.0.0.0/33"]).build().unwrap_err();
    /// assert!(err.to_string().contains("10.0.0.0/33"));
    /// ```
    pub fn trusted_proxies<I, S>(mut self, cidrs: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.trusted_proxies
            .extend(cidrs.into_iter().map(Into::into));
        self
    }
    /// The forwarding header the trusted proxies write (default
    /// `X-Forwarded-For`). Only that one is read: a proxy passes the other
    /// through from the client unchanged.
    pub fn forwarded_header(mut self, header: ForwardedHeader) -> Self {
        self.forwarded_header = header;
        self
    }
    /// Client networks that bypass every rate limit (monitoring, internal
    /// callers), as CIDRs or addresses, matched against the client IP.
    /// A malformed entry fails [`build`](Self::build).
    ///
    /// ```
    /// use secure_runtime::Security;
    /// let s = Security::builder().rate_limit_allow_ips(["192.0.2.0/24"]).build();
    /// assert!(s.is_ok());
    /// assert!(Security::builder().rate_limit_allow_ips(["nope"]).build().is_err());
    /// ```
    pub fn rate_limit_allow_ips<I, S>(mut self, cidrs: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.rate_allow_ips
            .extend(cidrs.into_iter().map(Into::into));
        self
    }
    /// Keys that bypass every rate limit: compared with the authenticated
    /// subject (`user`, `ip_user` keys), the API key id (`api_key`) and the
    /// value of a custom `rate_key` function.
    pub fn rate_limit_allow_keys<I, S>(mut self, keys: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.rate_allow_keys
            .extend(keys.into_iter().map(Into::into));
        self
    }
    /// Dry run: requests over a limit are admitted and logged (`warn`,
    /// event `rate_limit_dry_run`) instead of refused, and a limiter outage
    /// admits too. For rolling out new limits safely.
    pub fn rate_limit_dry_run(mut self, on: bool) -> Self {
        self.rate_dry_run = on;
        self
    }
    /// Adds the `RateLimit-Policy` and `RateLimit` header fields to every
    /// response of a rate-limited route, not only to its 429s (default off).
    pub fn rate_limit_headers(mut self, on: bool) -> Self {
        self.rate_headers = on;
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
        let mut rate = RateSettings::new(
            self.limiter
                .unwrap_or_else(|| Arc::new(MemoryRateLimiter::new())),
        );
        rate.allow_ips = parse_networks(&self.rate_allow_ips, "rate-limit allow-list entry")?;
        rate.allow_keys = self
            .rate_allow_keys
            .into_iter()
            .map(String::into_boxed_str)
            .collect();
        rate.dry_run = self.rate_dry_run;
        rate.headers = self.rate_headers;
        let client_ip = TrustedProxies::new(&self.trusted_proxies)?.header(self.forwarded_header);
        Ok(Security(Arc::new(Inner {
            jwt,
            api_keys: self.api_keys,
            basic: self.basic,
            revocations: self.revocations,
            rate,
            client_ip,
            api_key_header,
            extensions: self.extensions,
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
        f.debug_struct("IssuedToken")
            .field("jti", &self.jti)
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

/// Per-request state installed by the [`Security`] middleware (beside the
/// `Security` itself): the guard writes the verified principal once,
/// extractors read it.
#[derive(Clone)]
pub(crate) struct RequestAuth {
    pub(crate) principal: OnceLock<Principal>,
}

/// A presented credential, borrowed from the request headers.
enum Presented<'r> {
    Bearer(&'r str),
    Basic(&'r str),
}

/// What a request presents: the `Authorization` credential and the API key.
struct Credentials<'r> {
    authz: Option<Presented<'r>>,
    api_key: Option<&'r str>,
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
        let jti = crate::model::secrets::random_secret(16)
            .ok_or_else(|| ConfigError::new("the OS random source failed"))?;
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
            Some(Ok(token)) => Ok(IssuedToken {
                token,
                expires_in: ttl,
                expires_at: crate::verify::jwt::now_secs() + ttl,
                jti,
            }),
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
            |j| {
                serde_json::to_value(j.jwks()).unwrap_or_else(|_| serde_json::json!({ "keys": [] }))
            },
        )
    }

    /// What upper layers attached to the configuration (see
    /// [`SecurityBuilder::extensions`]).
    #[cfg_attr(not(feature = "issuer"), allow(dead_code))]
    pub(crate) fn extension<T: Send + Sync + 'static>(&self) -> Option<&T> {
        self.0.extensions.get::<T>()
    }

    /// Whether a revocation list (`jti` denylist) is installed.
    pub fn has_revocations(&self) -> bool {
        self.0.revocations.is_some()
    }

    pub(crate) fn rate_settings(&self) -> &RateSettings {
        &self.0.rate
    }

    /// The client IP of `req`: the socket peer, or, when the peer is one of
    /// the [`trusted_proxies`](SecurityBuilder::trusted_proxies), the
    /// right-most untrusted hop of the forwarding header (see
    /// [`TrustedProxies`]). `None` without an IP peer (e.g. a Unix socket).
    /// Rate limits key on this answer; use it for audit logs too.
    pub fn client_ip(&self, req: &Request) -> Option<IpAddr> {
        let peer = req.remote_addr().as_socket_addr().map(|a| a.ip());
        self.0.client_ip.client_ip(peer, req.headers())
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
        match self.progress_now(policy, req) {
            Progress::Done(result) => result,
            pending => self.resume(policy, req, pending).await,
        }
    }

    /// Takes the decision as far as it goes without I/O. The common
    /// configurations (static JWT keys, in-memory limiter and revocations, no
    /// custom check) end in [`Progress::Done`]; anything else stops before the
    /// first step that needs a store, with nothing of that step done, and
    /// [`resume`](Self::resume) goes on from there.
    fn progress_now<'r>(&self, policy: &'static Policy, req: &'r Request) -> Progress<'r> {
        let creds = match presented(policy, &self.0.api_key_header, req) {
            Ok(found) => found,
            Err(e) => return Progress::Done(Err(e)),
        };
        if creds.api_key.is_some() {
            return Progress::Start(creds);
        }
        let p = match creds.authz {
            None => None,
            Some(Presented::Basic(_)) => return Progress::Start(creds),
            Some(Presented::Bearer(token)) => match self.bearer_now(policy, token) {
                None => return Progress::Start(creds),
                Some(Err(e)) => return Progress::Done(Err(e)),
                Some(Ok(p)) => match self.revoked_now(policy, &p) {
                    None => return Progress::Verified(p),
                    Some(Err(e)) => return Progress::Done(Err(e)),
                    Some(Ok(())) => Some(p),
                },
            },
        };
        let Some(p) = p else {
            if let Err(e) = unauthenticated(policy) {
                return Progress::Done(Err(e));
            }
            return match self.rate_limit_now(policy, req, None) {
                Some(done) => Progress::Done(done.map(|()| None)),
                None => Progress::Authenticated(None),
            };
        };
        match self.rate_limit_now(policy, req, Some(&p)) {
            None => return Progress::Authenticated(Some(p)),
            Some(Err(e)) => return Progress::Done(Err(e)),
            Some(Ok(())) => {}
        }
        if let Err(e) = grants(policy, &p) {
            return Progress::Done(Err(e));
        }
        if policy.check().is_some() {
            return Progress::Admitted(p);
        }
        Progress::Done(Ok(Some(p)))
    }

    /// The rest of [`progress_now`](Self::progress_now)'s decision, with I/O.
    async fn resume(
        &self,
        policy: &'static Policy,
        req: &Request,
        progress: Progress<'_>,
    ) -> Result<Option<Principal>, AuthRejection> {
        let p = match progress {
            Progress::Done(result) => return result,
            Progress::Start(creds) => self.authenticate(policy, creds).await?,
            Progress::Verified(p) => Some(self.check_revoked(policy, p).await?),
            Progress::Authenticated(p) => p,
            Progress::Admitted(p) => return self.custom_check(policy, req, p).await,
        };
        let Some(p) = p else {
            unauthenticated(policy)?;
            self.rate_limit(policy, req, None).await?;
            return Ok(None);
        };
        self.rate_limit(policy, req, Some(&p)).await?;
        grants(policy, &p)?;
        self.custom_check(policy, req, p).await
    }

    async fn custom_check(
        &self,
        policy: &'static Policy,
        req: &Request,
        p: Principal,
    ) -> Result<Option<Principal>, AuthRejection> {
        if let Some(check) = policy.check() {
            if let Err(d) = check(&p, req).await {
                tracing::info!(target: AUDIT_TARGET, event = "access_denied", route = policy.id(),
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
        creds: Credentials<'_>,
    ) -> Result<Option<Principal>, AuthRejection> {
        let mut found: Option<Principal> = None;
        if let Some(presented) = creds.authz {
            found = Some(match presented {
                Presented::Bearer(token) => self.verify_bearer(policy, token).await?,
                Presented::Basic(b64) => self.verify_basic(policy, b64).await?,
            });
        }
        if let Some(key) = creds.api_key {
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
        let p = match self.bearer_now(policy, token) {
            Some(done) => done?,
            None => match &self.0.jwt {
                Some(jwt) => bearer_result(policy, jwt.verify_with_source(token).await)?,
                None => return Err(no_jwt(policy)),
            },
        };
        self.check_revoked(policy, p).await
    }

    /// Verifies a bearer token with the static keys; `None` when the key
    /// source must be asked.
    fn bearer_now(
        &self,
        policy: &'static Policy,
        token: &str,
    ) -> Option<Result<Principal, AuthRejection>> {
        let Some(jwt) = &self.0.jwt else {
            return Some(Err(no_jwt(policy)));
        };
        Some(bearer_result(policy, jwt.verify_now(token)?))
    }

    /// The revocation check of a verified token, when the list answers
    /// without I/O (or there is no list); `None`: ask it with
    /// [`check_revoked`](Self::check_revoked).
    fn revoked_now(
        &self,
        policy: &'static Policy,
        p: &Principal,
    ) -> Option<Result<(), AuthRejection>> {
        let Some(list) = &self.0.revocations else {
            return Some(Ok(()));
        };
        let Some(jti) = p.token_id() else {
            return Some(Err(token_refused(policy, TokenError::Malformed)));
        };
        list.is_token_revoked_now(jti, session_of(p))
            .map(|answer| revocation_result(policy, answer))
    }

    /// The revocation check of a verified token, with I/O when the list
    /// needs it.
    async fn check_revoked(
        &self,
        policy: &'static Policy,
        p: Principal,
    ) -> Result<Principal, AuthRejection> {
        let Some(list) = &self.0.revocations else {
            return Ok(p);
        };
        let Some(jti) = p.token_id() else {
            return Err(token_refused(policy, TokenError::Malformed));
        };
        let sid = session_of(&p);
        let answer = match list.is_token_revoked_now(jti, sid) {
            Some(answer) => answer,
            None => list.is_token_revoked(jti, sid).await,
        };
        revocation_result(policy, answer).map(|()| p)
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
        let mut custom = String::new();
        let Some(q) = self.rate_query(policy, req, p, &mut custom) else {
            return Ok(());
        };
        let name = policy.rate_group().unwrap_or("default");
        let done = self.0.rate.enforce(&q, name, policy.id()).await?;
        note_rate_status(req, done);
        Ok(())
    }

    /// [`rate_limit`](Self::rate_limit) when the limiter decides without
    /// I/O; `None`, with nothing counted, otherwise.
    fn rate_limit_now(
        &self,
        policy: &'static Policy,
        req: &Request,
        p: Option<&Principal>,
    ) -> Option<Result<(), AuthRejection>> {
        let mut custom = String::new();
        let Some(q) = self.rate_query(policy, req, p, &mut custom) else {
            return Some(Ok(()));
        };
        let name = policy.rate_group().unwrap_or("default");
        Some(
            self.0
                .rate
                .enforce_now(&q, name, policy.id())?
                .map(|done| note_rate_status(req, done)),
        )
    }

    /// The limiter's query for `policy` (`None`: the route has no rate);
    /// `custom` holds a custom key function's answer.
    fn rate_query<'a>(
        &self,
        policy: &'static Policy,
        req: &Request,
        p: Option<&'a Principal>,
        custom: &'a mut String,
    ) -> Option<RateQuery<'a>> {
        let rate = policy.rate()?;
        let ip = self.client_ip(req);
        Some(RateQuery {
            bucket: policy.rate_bucket(),
            key: rate_key(policy, req, p, ip, custom),
            rate,
            ip,
        })
    }
}

/// How far [`Security::progress_now`] got without I/O.
enum Progress<'r> {
    /// Decided.
    Done(Result<Option<Principal>, AuthRejection>),
    /// Nothing verified: a credential needs a store (API key, Basic, key
    /// source).
    Start(Credentials<'r>),
    /// The token is verified; its revocation list needs I/O.
    Verified(Principal),
    /// Authenticated (or anonymous on a public route); the limiter needs I/O.
    Authenticated(Option<Principal>),
    /// Admitted by the limiter and the grants; the custom check is left.
    Admitted(Principal),
}

/// The credentials `policy` accepts, borrowed from the request headers:
/// the `Authorization` header and the API key header.
fn presented<'r>(
    policy: &Policy,
    api_key_header: &HeaderName,
    req: &'r Request,
) -> Result<Credentials<'r>, AuthRejection> {
    let kinds = policy.auth();
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
        single_header(req, api_key_header)?
            .map(|v| v.trim_matches(' '))
            .filter(|v| !v.is_empty())
    } else {
        None
    };
    Ok(Credentials { authz, api_key })
}

/// A request without credentials: allowed through on a public route only.
fn unauthenticated(policy: &Policy) -> Result<(), AuthRejection> {
    if policy.is_public() {
        return Ok(());
    }
    audit_refused(policy, "no credentials");
    Err(AuthRejection::missing(policy.auth()))
}

/// Scopes, roles and permissions.
fn grants(policy: &Policy, p: &Principal) -> Result<(), AuthRejection> {
    if !policy.scopes().iter().all(|s| p.has_scope(s)) {
        tracing::info!(target: AUDIT_TARGET, event = "access_denied", route = policy.id(),
            subject = p.subject(), reason = "missing scope");
        return Err(AuthRejection::insufficient_scope(policy.scopes()));
    }
    if !policy.roles().satisfied_by(p.roles()) {
        tracing::info!(target: AUDIT_TARGET, event = "access_denied", route = policy.id(),
            subject = p.subject(), reason = "missing role");
        return Err(AuthRejection::new(RejectionKind::Forbidden));
    }
    if !policy.permissions().iter().all(|s| p.has_permission(s)) {
        tracing::info!(target: AUDIT_TARGET, event = "access_denied", route = policy.id(),
            subject = p.subject(), reason = "missing permission");
        return Err(AuthRejection::new(RejectionKind::Forbidden));
    }
    Ok(())
}

fn no_jwt(policy: &Policy) -> AuthRejection {
    misconfigured(policy, "auth = bearer but no JWT verifier is configured")
}

fn token_refused(policy: &Policy, e: TokenError) -> AuthRejection {
    tracing::info!(target: AUDIT_TARGET, event = "token_refused", route = policy.id(), reason = %e);
    AuthRejection::invalid(CredentialKind::Bearer, policy.auth())
}

fn bearer_result(
    policy: &Policy,
    verified: Result<Principal, VerifyError>,
) -> Result<Principal, AuthRejection> {
    match verified {
        Ok(p) => Ok(p),
        Err(VerifyError::Token(e)) => Err(token_refused(policy, e)),
        Err(VerifyError::SourceDown) => Err(refused(
            policy,
            CredentialKind::Bearer,
            CredentialError::Unavailable,
        )),
    }
}

fn revocation_result(
    policy: &Policy,
    answer: Result<bool, CredentialError>,
) -> Result<(), AuthRejection> {
    match answer {
        Ok(false) => Ok(()),
        Ok(true) => Err(token_refused(policy, TokenError::Revoked)),
        Err(e) => Err(refused(policy, CredentialKind::Bearer, e)),
    }
}

/// Leaves a limited route's status for the `RateLimit` response headers.
fn note_rate_status(req: &Request, done: Enforced) {
    if let (Some(status), Some(slot)) = (done.status, req.extensions().get::<RateSlot>()) {
        let _ = slot.0.set(status);
    }
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

/// What the request is counted per, borrowed from the request, the principal
/// or `custom` (which holds a custom key function's answer).
fn rate_key<'a>(
    policy: &Policy,
    req: &Request,
    p: Option<&'a Principal>,
    ip: Option<IpAddr>,
    custom: &'a mut String,
) -> PartitionKey<'a> {
    match (policy.rate_key(), p) {
        (RateKey::Custom(f), p) => {
            *custom = f(req, p);
            PartitionKey::Custom(custom)
        }
        (RateKey::Ip, _) | (_, None) => PartitionKey::Ip(ip),
        (RateKey::Default, Some(_)) if policy.is_public() => PartitionKey::Ip(ip),
        (RateKey::Default | RateKey::User, Some(p)) => PartitionKey::User(p.subject()),
        (RateKey::ApiKey, Some(p)) => PartitionKey::ApiKey(p.key_id().unwrap_or(p.subject())),
        (RateKey::IpUser, Some(p)) => PartitionKey::IpUser(ip, p.subject()),
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
    tracing::info!(target: AUDIT_TARGET, event = "auth_required", route = policy.id(), reason);
}

fn misconfigured(policy: &Policy, what: &'static str) -> AuthRejection {
    tracing::error!(target: AUDIT_TARGET, event = "misconfigured", route = policy.id(), "{what}");
    AuthRejection::new(RejectionKind::Misconfigured)
}

fn refused(policy: &Policy, kind: CredentialKind, e: CredentialError) -> AuthRejection {
    match e {
        CredentialError::Invalid => {
            tracing::info!(target: AUDIT_TARGET, event = "credential_refused", route = policy.id(), kind = ?kind);
            AuthRejection::invalid(kind, policy.auth())
        }
        CredentialError::Unavailable => {
            tracing::error!(target: AUDIT_TARGET, event = "store_unavailable", route = policy.id(), kind = ?kind);
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
    type Output = Response;

    async fn call(&self, mut req: Request) -> PoemResult<Self::Output> {
        req.extensions_mut().insert(self.security.clone());
        req.extensions_mut().insert(RequestAuth {
            principal: OnceLock::new(),
        });
        if !self.security.0.rate.headers {
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

/// A guard's progress: decided, or waiting on I/O. The same type for every
/// handler, polled by one function compiled here, so that each handler adds
/// only a call to it.
pub(crate) enum GuardStep<'a> {
    /// Decided without I/O (the common case: no allocation, no future);
    /// `Some` holds the refusal.
    Done(Option<AuthRejection>),
    /// A store, key source or custom check must be awaited.
    Pending(BoxFuture<'a, Result<(), AuthRejection>>),
    /// The answer was given.
    Finished,
}

impl GuardStep<'_> {
    #[inline(never)]
    pub(crate) fn poll_step(&mut self, cx: &mut Context<'_>) -> Poll<PoemResult<()>> {
        let result = match self {
            GuardStep::Done(refusal) => refusal.take().map_or(Ok(()), Err),
            GuardStep::Pending(io) => match io.as_mut().poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(result) => result,
            },
            // Polled again after its answer: a caller bug, refused (never a
            // second admission, never a panic).
            GuardStep::Finished => Err(AuthRejection::new(RejectionKind::Misconfigured)),
        };
        *self = GuardStep::Finished;
        Poll::Ready(result.map_err(Into::into))
    }
}

/// Runs `policy` for a request and records the principal for the handler's
/// extractors. Called by the generated guards.
///
/// A plain function, not an `async fn`, and never inlined: the state
/// machines of an `async fn` are compiled again into every crate that awaits
/// them, so an awaited guard would compile the whole verification into the
/// user's crate (the compile-time benchmark in `BENCHMARKS.md` measured it).
/// Here the user's crate sees a function call and, on the I/O path only, a
/// boxed future.
#[inline(never)]
pub(crate) fn guard<'a>(req: &'a Request, policy: &'static Policy) -> GuardStep<'a> {
    let (Some(security), Some(state)) = (
        req.extensions().get::<Security>(),
        req.extensions().get::<RequestAuth>(),
    ) else {
        tracing::error!(
            target: AUDIT_TARGET,
            event = "not_installed",
            route = policy.id(),
            "poem-secure: no Security is installed on this app (add `.with(security)`); refusing the request"
        );
        return GuardStep::Done(Some(AuthRejection::new(RejectionKind::NotInstalled)));
    };
    match security.progress_now(policy, req) {
        Progress::Done(Ok(p)) => {
            state.record(p);
            GuardStep::Done(None)
        }
        Progress::Done(Err(e)) => GuardStep::Done(Some(e)),
        pending => GuardStep::Pending(Box::pin(async move {
            let p = security.resume(policy, req, pending).await?;
            state.record(p);
            Ok(())
        })),
    }
}

impl RequestAuth {
    /// Keeps the guard's principal for the handler's extractors. Only the one
    /// guard of the handler writes the slot.
    fn record(&self, p: Option<Principal>) {
        if let Some(p) = p {
            let _ = self.principal.set(p);
        }
    }
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

/// The session (`sid`, the refresh family) a token belongs to, if any: read
/// at verification, so the claims themselves stay parsed only on demand.
fn session_of(p: &Principal) -> Option<&str> {
    p.session_id()
}

#[cfg(test)]
mod tests {
    //! Which configurations the guard decides without I/O (no future, no
    //! allocation for one) and where the others resume. `tests/guard_paths.rs`
    //! checks that both paths answer alike.

    use std::sync::Arc;

    use super::*;
    use crate::{
        issuer::sessions::MemorySessionStore, issuer::sessions::Revocations, model::policy::Rate,
    };

    const PLAIN: Policy = Policy::secured("tests::items").with_scopes(&["items"]);
    static LIMITED: Policy = PLAIN.with_rate(Rate::per_minute(100));

    /// A revocation list with no synchronous answer (as Redis).
    struct Remote;
    impl RevocationList for Remote {
        fn is_revoked<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<bool, CredentialError>> {
            Box::pin(async { Ok(false) })
        }
    }

    /// A limiter with no synchronous answer (as Redis).
    struct RemoteLimiter(MemoryRateLimiter);
    impl RateLimiter for RemoteLimiter {
        fn check<'a>(
            &'a self,
            q: &'a RateQuery<'a>,
        ) -> BoxFuture<'a, Result<crate::RateOutcome, crate::LimiterUnavailable>> {
            self.0.check(q)
        }
        fn refund<'a>(
            &'a self,
            q: &'a RateQuery<'a>,
        ) -> BoxFuture<'a, Result<(), crate::LimiterUnavailable>> {
            self.0.refund(q)
        }
    }

    fn builder() -> SecurityBuilder {
        Security::builder().jwt(
            JwtConfig::hs256([7u8; 32])
                .unwrap()
                .issuer("t")
                .audience("a"),
        )
    }

    fn request(security: &Security, scopes: &[&str]) -> Request {
        let t = security
            .issue_access_token(&AccessToken {
                subject: "alice",
                scopes,
                ..AccessToken::default()
            })
            .unwrap();
        Request::builder()
            .header("authorization", format!("Bearer {}", t.token))
            .finish()
    }

    fn progress(security: &Security, policy: &'static Policy, req: &Request) -> &'static str {
        match security.progress_now(policy, req) {
            Progress::Done(Ok(Some(_))) => "admitted",
            Progress::Done(Ok(None)) => "anonymous",
            Progress::Done(Err(_)) => "refused",
            Progress::Start(_) => "start",
            Progress::Verified(_) => "verified",
            Progress::Authenticated(_) => "authenticated",
            Progress::Admitted(_) => "admitted, check left",
        }
    }

    #[test]
    fn in_memory_configurations_decide_without_io() {
        let store = Arc::new(MemorySessionStore::new());
        for security in [
            builder().build().unwrap(),
            builder()
                .revocations(Revocations::of(store.clone()))
                .build()
                .unwrap(),
        ] {
            let ok = request(&security, &["items"]);
            assert_eq!(progress(&security, &PLAIN, &ok), "admitted");
            assert_eq!(progress(&security, &LIMITED, &ok), "admitted");
            let wrong_scope = request(&security, &["other"]);
            assert_eq!(progress(&security, &PLAIN, &wrong_scope), "refused");
            let none = Request::builder().finish();
            assert_eq!(progress(&security, &PLAIN, &none), "refused");
            let bad = Request::builder()
                .header("authorization", "Bearer x.y.z")
                .finish();
            assert_eq!(progress(&security, &PLAIN, &bad), "refused");
        }
    }

    #[test]
    fn a_store_that_needs_io_is_awaited_from_its_own_step() {
        let security = builder().revocations(Remote).build().unwrap();
        let ok = request(&security, &["items"]);
        assert_eq!(progress(&security, &PLAIN, &ok), "verified");

        let security = builder()
            .rate_limiter(RemoteLimiter(MemoryRateLimiter::new()))
            .build()
            .unwrap();
        let ok = request(&security, &["items"]);
        assert_eq!(progress(&security, &PLAIN, &ok), "admitted");
        assert_eq!(progress(&security, &LIMITED, &ok), "authenticated");

        let with_key = Request::builder().header("x-api-key", "k.s").finish();
        static KEYED: Policy = PLAIN.with_auth(AuthKinds::API_KEY);
        assert_eq!(progress(&security, &KEYED, &with_key), "start");
    }
}
