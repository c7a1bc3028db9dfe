//! [`Security`]: the one value installed on an app that every guard consults.

use std::{fmt, net::IpAddr, sync::Arc};

use poem::{
    http::{header, HeaderName},
    Request,
};

use crate::{
    decision::{
        failures::CredentialLimits,
        rate::{RateSettings, RateSlot, UnknownClient},
        Decider, Decision, Input, Slots,
    },
    model::{
        config::ConfigError,
        policy::{Policy, Rate},
        principal::Principal,
        rate::RateLimiter,
        rejection::AuthRejection,
    },
    stores::rate::MemoryRateLimiter,
    verify::{
        credentials::{ApiKeyVerifier, BasicVerifier, RevocationList},
        jwt::{AccessClaims, JwtConfig, JwtVerifier},
    },
    web::{
        client_ip::{parse_networks, ForwardedHeader, TrustedProxies},
        middleware::{presented, RequestAuth},
    },
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
    decider: Decider,
    client_ip: TrustedProxies,
    ip_prefix: (u8, u8),
    api_key_header: HeaderName,
    extensions: poem::http::Extensions,
}

impl fmt::Debug for Security {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Security")
            .field("jwt", &self.0.decider.jwt.is_some())
            .field("api_keys", &self.0.decider.api_keys.is_some())
            .field("basic", &self.0.decider.basic.is_some())
            .field("revocations", &self.0.decider.revocations.is_some())
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
    ip_prefix: Option<(u8, u8)>,
    failure_limits: Option<CredentialLimits>,
    unknown_client: Option<UnknownClient>,
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
    /// Keys that bypass route rate limits: compared with the authenticated
    /// subject (`user`, `ip_user` keys) and the API key id (`api_key`) only —
    /// never with a user name submitted to a login, nor with a custom
    /// `rate_key` value, which a client could choose.
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
    /// The budgets of failed HTTP Basic and API-key attempts, checked before
    /// a credential is verified (so before any password hashing): failures
    /// per client network (IPv6 /64) and per (client, user name or API key
    /// id). Only wrong credentials count; a success gives its reservation
    /// back. Over budget: 429 with `Retry-After`. Default: 50 per 5 minutes
    /// per client, 5 per (client, identity) — the token endpoint's login
    /// defaults; `None` turns one off. A zero count fails
    /// [`build`](Self::build).
    ///
    /// ```
    /// use secure_runtime::{Rate, Security};
    /// let s = Security::builder()
    ///     .credential_failure_limits(Some(Rate::new(20, 60)), Some(Rate::new(3, 900)))
    ///     .build();
    /// assert!(s.is_ok());
    /// assert!(Security::builder().credential_failure_limits(Some(Rate::new(0, 60)), None).build().is_err());
    /// ```
    pub fn credential_failure_limits(
        mut self,
        per_client: Option<Rate>,
        per_client_and_identity: Option<Rate>,
    ) -> Self {
        self.failure_limits = Some(CredentialLimits {
            per_client,
            per_client_and_identity,
        });
        self
    }
    /// What per-IP limits do with a client that has no IP address (a
    /// Unix-socket peer, or a trusted proxy that sent no forwarding
    /// header): by default they share one bucket per limit, with a warning
    /// logged the first time; [`UnknownClient::Refuse`] refuses such
    /// requests (500, with an error log naming the fix).
    ///
    /// ```
    /// use secure_runtime::{Security, UnknownClient};
    /// assert!(Security::builder().unknown_client(UnknownClient::Refuse).build().is_ok());
    /// ```
    pub fn unknown_client(mut self, policy: UnknownClient) -> Self {
        self.unknown_client = Some(policy);
        self
    }
    /// How client addresses are counted by every per-IP limit (route limits
    /// keyed by `ip` or `ip_user`, the login limits): IPv4 by its first
    /// `v4_bits` bits (default 32: the address), IPv6 by its first
    /// `v6_bits` (default 64: one host usually holds a whole /64, so a
    /// finer key gives it unlimited buckets). IPv6 accepts 48 to 128, IPv4
    /// 16 to 32; anything else fails [`build`](Self::build). Logs keep the
    /// full address.
    ///
    /// ```
    /// use secure_runtime::Security;
    /// assert!(Security::builder().client_ip_prefix(24, 56).build().is_ok());
    /// assert!(Security::builder().client_ip_prefix(32, 32).build().is_err());
    /// ```
    pub fn client_ip_prefix(mut self, v4_bits: u8, v6_bits: u8) -> Self {
        self.ip_prefix = Some((v4_bits, v6_bits));
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
        rate.unknown_client = self.unknown_client.unwrap_or_default();
        let client_ip = TrustedProxies::new(&self.trusted_proxies)?.header(self.forwarded_header);
        let failures = self.failure_limits.unwrap_or(CredentialLimits::DEFAULT);
        for rate in [failures.per_client, failures.per_client_and_identity]
            .into_iter()
            .flatten()
        {
            rate.validate()
                .map_err(|e| ConfigError::new(format!("credential_failure_limits: {e}")))?;
        }
        let (v4_bits, v6_bits) = self.ip_prefix.unwrap_or((32, 64));
        if !(16..=32).contains(&v4_bits) || !(48..=128).contains(&v6_bits) {
            return Err(ConfigError::new(format!(
                "client_ip_prefix({v4_bits}, {v6_bits}): IPv4 takes 16 to 32 bits, IPv6 48 to 128"
            )));
        }
        Ok(Security(Arc::new(Inner {
            decider: Decider {
                jwt,
                api_keys: self.api_keys,
                basic: self.basic,
                revocations: self.revocations,
                rate,
                failures,
                #[cfg(feature = "testing")]
                mocks: Default::default(),
            },
            client_ip,
            ip_prefix: (v4_bits, v6_bits),
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

impl Security {
    /// Starts a configuration.
    pub fn builder() -> SecurityBuilder {
        SecurityBuilder::default()
    }

    #[cfg_attr(not(feature = "testing"), allow(dead_code))]
    pub(crate) fn jwt(&self) -> Option<&JwtVerifier> {
        self.0.decider.jwt.as_ref()
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
        let Some(jwt) = &self.0.decider.jwt else {
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
        self.0.decider.jwt.as_ref().map_or_else(
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

    /// Where test code registers mock principals (feature `testing`).
    #[cfg(feature = "testing")]
    pub(crate) fn mocks(&self) -> &crate::decision::mocks::MockRegistry {
        &self.0.decider.mocks
    }

    /// The configured verifiers: (JWT, API keys, Basic).
    #[cfg(feature = "testing")]
    pub(crate) fn verifiers(&self) -> (bool, bool, bool) {
        let d = &self.0.decider;
        (d.jwt.is_some(), d.api_keys.is_some(), d.basic.is_some())
    }

    /// Whether a revocation list (`jti` denylist) is installed.
    pub fn has_revocations(&self) -> bool {
        self.0.decider.revocations.is_some()
    }

    pub(crate) fn rate_settings(&self) -> &RateSettings {
        &self.0.decider.rate
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

    /// The client IP of `req` as per-IP limits count it: its network under
    /// [`client_ip_prefix`](SecurityBuilder::client_ip_prefix) (IPv6 by /64
    /// by default).
    ///
    /// ```
    /// use secure_runtime::Security;
    /// let s = Security::builder().build().unwrap();
    /// let ip = "2001:db8:1:2:aaaa::7".parse().unwrap();
    /// assert_eq!(s.rate_key_ip(Some(ip)), Some("2001:db8:1:2::".parse().unwrap()));
    /// let v4 = "192.0.2.7".parse().unwrap();
    /// assert_eq!(s.rate_key_ip(Some(v4)), Some(v4));
    /// ```
    pub fn rate_key_ip(&self, ip: Option<IpAddr>) -> Option<IpAddr> {
        let (v4, v6) = self.0.ip_prefix;
        ip.map(|ip| match ip.to_canonical() {
            IpAddr::V4(a) => {
                ipnet::Ipv4Net::new(a, v4).map_or(IpAddr::V4(a), |n| IpAddr::V4(n.network()))
            }
            IpAddr::V6(a) => {
                ipnet::Ipv6Net::new(a, v6).map_or(IpAddr::V6(a), |n| IpAddr::V6(n.network()))
            }
        })
    }

    /// Whether access tokens can be issued (a signing key is configured).
    pub fn can_issue_tokens(&self) -> bool {
        self.0
            .decider
            .jwt
            .as_ref()
            .is_some_and(JwtVerifier::can_sign)
    }

    /// Runs `policy` against `req`: authenticates, checks revocation,
    /// applies the rate limit, then checks scopes, roles, permissions and the
    /// custom `check`, in that order (the same decision the guards make).
    ///
    /// Returns the principal (`None` on a `#[public]` route called without
    /// credentials). Generated guards do not call this; it is public for
    /// custom integrations and tests.
    ///
    /// ```
    /// use poem::Request;
    /// use secure_runtime::{AuthRejection, JwtConfig, Policy, RejectionKind, Security};
    /// static ITEMS: Policy = Policy::secured("doc::items").with_scopes(&["items"]);
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let security = Security::builder()
    ///     .jwt(JwtConfig::hs256([7u8; 32]).unwrap().issuer("me").audience("api"))
    ///     .build()
    ///     .unwrap();
    /// let refused = security.authorize(&ITEMS, &Request::default()).await.unwrap_err();
    /// assert!(matches!(refused.kind(), RejectionKind::Missing(_)));
    /// # });
    /// ```
    pub async fn authorize(
        &self,
        policy: &'static Policy,
        req: &Request,
    ) -> Result<Option<Principal>, AuthRejection> {
        let own = Slots::default();
        let slots = req
            .extensions()
            .get::<RequestAuth>()
            .map_or(&own, |auth| &auth.slots);
        let mut decision = self.decision(policy, req, slots)?;
        let verdict = std::future::poll_fn(|cx| decision.poll_decide(cx)).await;
        verdict.map(|p| p.cloned())
    }

    /// The decision of `policy` for `req`, borrowing from `slots`; `Err`
    /// for a malformed credential header (400).
    pub(crate) fn decision<'r>(
        &'r self,
        policy: &'static Policy,
        req: &'r Request,
        slots: &'r Slots,
    ) -> Result<Decision<'r>, AuthRejection> {
        let creds = presented(policy, &self.0.api_key_header, req)?;
        let ip = self.client_ip(req);
        Ok(Decision::new(
            &self.0.decider,
            policy,
            Input {
                creds,
                ip,
                ip_key: self.rate_key_ip(ip),
                req,
                slots,
                rate_slot: req.extensions().get::<RateSlot>(),
            },
        ))
    }

    /// The configured API key header.
    pub(crate) fn api_key_header(&self) -> &HeaderName {
        &self.0.api_key_header
    }

    /// Whether `rate_limit_headers(true)` was set.
    pub(crate) fn rate_headers(&self) -> bool {
        self.0.decider.rate.headers
    }
}
