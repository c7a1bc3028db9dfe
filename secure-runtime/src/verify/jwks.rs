//! A JWKS client: verification keys of an external identity provider, cached
//! by `kid` (resource-server mode).

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
    time::{Duration, Instant},
};

use jsonwebtoken::{
    jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm, PublicKeyUse},
    Algorithm, DecodingKey,
};

use crate::{
    model::{answer::BoxFuture, audit::AUDIT_TARGET},
    verify::jwt::{KeySource, KeySourceDown},
    ConfigError, HttpsTrust,
};

/// Fetches and caches an identity provider's JWKS document.
///
/// * Keys are looked up by the token's `kid`; each key is bound to the
///   algorithm of its JWK (`alg`, or the only one its curve allows), so a
///   token naming another algorithm is refused. Symmetric (`oct`) keys in a
///   JWKS are ignored.
/// * Nothing is fetched per request: the set is refreshed when older than the
///   refresh interval (default 15 min), and on an unknown `kid` at most once
///   per minimum interval (default 60 s; it also bounds scheduled refreshes),
///   one fetch at a time, shared by the requests waiting for it. A request
///   that finds the set due is judged by the refreshed set; if the fetch
///   fails, cached keys keep answering.
/// * The token's `jku`, `x5u` and `jwk` headers are never followed.
/// * With no usable key set (the provider down and nothing cached) every
///   token is refused (503); cached keys keep working while the provider is
///   down.
/// * HTTPS only, except to a loopback host; 5 s timeout; 1 MiB at most; no
///   redirects; the system's CAs unless [`https_trust`](Self::https_trust)
///   says otherwise.
/// * Only the accepted [`algorithms`](Self::algorithms) are used (from
///   discovery: the provider's advertised ones).
///
/// Most users get one through [`JwtConfig::discover`](crate::JwtConfig::discover),
/// which also checks and configures the issuer:
///
/// ```no_run
/// # async fn f() -> Result<(), secure_runtime::ConfigError> {
/// use secure_runtime::{JwksClient, JwtConfig, Security};
/// // The same as JwtConfig::discover(..) for an OpenID provider:
/// let jwks = JwksClient::from_discovery("https://login.example.com/realms/acme").await?;
/// let security = Security::builder()
///     .jwt(JwtConfig::key_source(jwks).audience("my-api"))
///     .build()?;
/// # let _ = security; Ok(()) }
/// ```
#[derive(Clone)]
pub struct JwksClient(Arc<Inner>);

impl std::fmt::Debug for JwksClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = &self.0.settings;
        f.debug_struct("JwksClient")
            .field("url", &s.url)
            .field("issuer", &s.issuer)
            .field("algorithms", &s.algorithms)
            .field("refresh_every", &s.refresh_every)
            .field("min_refetch", &s.min_refetch)
            .finish_non_exhaustive()
    }
}

struct Inner {
    settings: Settings,
    agent: ureq::Agent,
    cache: RwLock<Cache>,
    fetching: Arc<tokio::sync::Mutex<()>>,
}

/// What a client is configured with; a builder call copies it into a new
/// client with an empty cache.
#[derive(Clone)]
struct Settings {
    url: String,
    /// The issuer whose discovery document named `url`, if discovered.
    issuer: Option<String>,
    /// Accepted algorithms, in order of preference for keys without `alg`.
    algorithms: Vec<Algorithm>,
    refresh_every: Duration,
    min_refetch: Duration,
    trust: HttpsTrust,
}

/// Every asymmetric algorithm a JWKS key may be bound to. The order decides
/// the algorithm of a key without `alg`: the first one its type allows.
pub(crate) const ASYMMETRIC: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
];

#[derive(Default)]
struct Cache {
    keys: Option<HashMap<String, (Algorithm, DecodingKey)>>,
    fetched_at: Option<Instant>,
    attempted_at: Option<Instant>,
}

pub(crate) fn check_url(url: &str) -> Result<(), ConfigError> {
    url_problem(url).map_or(Ok(()), |p| Err(ConfigError::new(format!("{url:?}: {p}"))))
}

/// Why `url` may not be fetched, if it may not.
pub(crate) fn url_problem(url: &str) -> Option<&'static str> {
    const BAD: &str = "a JWKS or discovery URL must use https (plain http only to a loopback \
                       host), without user info";
    let Ok(uri) = url.parse::<poem::http::Uri>() else {
        return Some(BAD);
    };
    let Some(authority) = uri.authority() else {
        return Some(BAD);
    };
    if authority.as_str().contains('@') {
        return Some(BAD);
    }
    let host = authority.host().to_ascii_lowercase();
    let loopback = matches!(host.as_str(), "127.0.0.1" | "localhost" | "[::1]");
    match uri.scheme_str() {
        Some("https") => None,
        Some("http") if loopback => None,
        _ => Some(BAD),
    }
}

/// The largest JWKS or discovery document read.
const MAX_BODY: u64 = 1 << 20;

/// GETs `url` (no redirects, 5 s, 1 MiB); the error says why, in words that
/// hold no secret (the URL never carries credentials: see [`check_url`]).
pub(crate) async fn fetch(agent: ureq::Agent, url: String) -> Result<String, String> {
    tokio::task::spawn_blocking(move || {
        let mut resp = agent.get(&url).call().map_err(|e| match e {
            ureq::Error::StatusCode(code) => format!("HTTP status {code}"),
            ureq::Error::Timeout(_) => "no answer within 5 s".to_owned(),
            ureq::Error::HostNotFound => "host not found".to_owned(),
            ureq::Error::ConnectionFailed => "connection failed".to_owned(),
            ureq::Error::TooManyRedirects | ureq::Error::RedirectFailed => {
                "the server redirected (redirects are not followed)".to_owned()
            }
            ureq::Error::Io(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                "connection refused".to_owned()
            }
            // TLS failures arrive here, with rustls' reason in the message
            // ("invalid peer certificate: UnknownIssuer").
            ureq::Error::Io(e) => format!("I/O error: {e}"),
            other => other.to_string(),
        })?;
        let status = resp.status();
        if !status.is_success() {
            return Err(format!(
                "HTTP status {} (redirects are not followed)",
                status.as_u16()
            ));
        }
        resp.body_mut()
            .with_config()
            .limit(MAX_BODY)
            .read_to_string()
            .map_err(|e| match e {
                ureq::Error::BodyExceedsLimit(_) => "the body exceeds 1 MiB".to_owned(),
                other => format!("unreadable body: {other}"),
            })
    })
    .await
    .map_err(|_| "the fetch task failed".to_owned())?
}

/// The algorithm a JWK is bound to, or `None` for keys not usable here: its
/// `alg` if that is accepted, else the first accepted algorithm its key type
/// allows.
fn bound_algorithm(jwk: &Jwk, accepted: &[Algorithm]) -> Option<Algorithm> {
    if matches!(jwk.common.public_key_use, Some(ref u) if *u != PublicKeyUse::Signature) {
        return None;
    }
    let declared = jwk.common.key_algorithm.and_then(|a| match a {
        KeyAlgorithm::RS256 => Some(Algorithm::RS256),
        KeyAlgorithm::RS384 => Some(Algorithm::RS384),
        KeyAlgorithm::RS512 => Some(Algorithm::RS512),
        KeyAlgorithm::PS256 => Some(Algorithm::PS256),
        KeyAlgorithm::PS384 => Some(Algorithm::PS384),
        KeyAlgorithm::PS512 => Some(Algorithm::PS512),
        KeyAlgorithm::ES256 => Some(Algorithm::ES256),
        KeyAlgorithm::ES384 => Some(Algorithm::ES384),
        KeyAlgorithm::EdDSA => Some(Algorithm::EdDSA),
        _ => None,
    });
    let family_ok = |alg: Algorithm| match (&jwk.algorithm, alg) {
        (AlgorithmParameters::RSA(_), a) => {
            matches!(
                a,
                Algorithm::RS256
                    | Algorithm::RS384
                    | Algorithm::RS512
                    | Algorithm::PS256
                    | Algorithm::PS384
                    | Algorithm::PS512
            )
        }
        (AlgorithmParameters::EllipticCurve(p), Algorithm::ES256) => p.curve == EllipticCurve::P256,
        (AlgorithmParameters::EllipticCurve(p), Algorithm::ES384) => p.curve == EllipticCurve::P384,
        (AlgorithmParameters::OctetKeyPair(p), Algorithm::EdDSA) => {
            p.curve == EllipticCurve::Ed25519
        }
        _ => false,
    };
    match (jwk.common.key_algorithm, declared) {
        // An `alg` this client does not support (HS256, RSA-OAEP, ...): unusable.
        (Some(_), None) => None,
        (_, Some(a)) => (accepted.contains(&a) && family_ok(a)).then_some(a),
        (None, None) => accepted.iter().copied().find(|a| family_ok(*a)),
    }
}

fn parse_set(
    body: &str,
    accepted: &[Algorithm],
) -> Option<HashMap<String, (Algorithm, DecodingKey)>> {
    let set: JwkSet = serde_json::from_str(body).ok()?;
    let keys: HashMap<_, _> = set
        .keys
        .iter()
        .filter_map(|jwk| {
            let kid = jwk.common.key_id.clone()?;
            let alg = bound_algorithm(jwk, accepted)?;
            let key = DecodingKey::from_jwk(jwk).ok()?;
            Some((kid, (alg, key)))
        })
        .collect();
    Some(keys)
}

impl JwksClient {
    /// A client for the JWKS document at `url`.
    ///
    /// ```
    /// use secure_runtime::JwksClient;
    /// assert!(JwksClient::new("https://login.example.com/jwks").is_ok());
    /// let err = JwksClient::new("http://login.example.com/jwks").unwrap_err();
    /// assert!(err.to_string().contains("must use https"));
    /// ```
    pub fn new(url: impl Into<String>) -> Result<Self, ConfigError> {
        let url = url.into();
        check_url(&url)?;
        Ok(Self::with(Settings {
            url,
            issuer: None,
            algorithms: ASYMMETRIC.to_vec(),
            refresh_every: Duration::from_secs(900),
            min_refetch: Duration::from_secs(60),
            trust: HttpsTrust::default(),
        }))
    }

    fn with(settings: Settings) -> Self {
        JwksClient(Arc::new(Inner {
            agent: settings.trust.agent(),
            settings,
            cache: RwLock::new(Cache::default()),
            fetching: Arc::new(tokio::sync::Mutex::new(())),
        }))
    }

    /// Reads `{issuer}/.well-known/openid-configuration` (OpenID Connect
    /// Discovery 1.0), requires its `issuer` to be exactly `issuer` (§4.3)
    /// and uses its `jwks_uri` (https, or loopback http) and its advertised
    /// signing algorithms. The issuer is then known to
    /// [`JwtConfig`](crate::JwtConfig): given again, it must be the same.
    ///
    /// [`JwtConfig::discover`](crate::JwtConfig::discover) does all of this
    /// in one call, and falls back to RFC 8414 metadata.
    pub async fn from_discovery(issuer: &str) -> Result<Self, ConfigError> {
        crate::verify::discovery::ProviderMetadata::openid_configuration(issuer)
            .await?
            .jwks_client()
    }

    /// For a client made from provider metadata.
    pub(crate) fn discovered(
        jwks_uri: &str,
        issuer: &str,
        algorithms: Vec<Algorithm>,
        trust: HttpsTrust,
    ) -> Result<Self, ConfigError> {
        check_url(jwks_uri)?;
        Ok(Self::with(Settings {
            url: jwks_uri.to_owned(),
            issuer: Some(issuer.to_owned()),
            algorithms,
            refresh_every: Duration::from_secs(900),
            min_refetch: Duration::from_secs(60),
            trust,
        }))
    }

    fn rebuild(&self, f: impl FnOnce(&mut Settings)) -> Self {
        let mut settings = self.0.settings.clone();
        f(&mut settings);
        Self::with(settings)
    }

    /// How old the cached set may get before it is refreshed (default 15 min).
    pub fn refresh_every(self, d: Duration) -> Self {
        self.rebuild(|s| s.refresh_every = d)
    }

    /// The least time between two fetches caused by unknown `kid`s (default 60 s).
    pub fn min_refetch_interval(self, d: Duration) -> Self {
        self.rebuild(|s| s.min_refetch = d)
    }

    /// The certificate authorities trusted for the JWKS fetch (default: the
    /// system's, [`HttpsTrust::system`]).
    pub fn https_trust(self, trust: HttpsTrust) -> Self {
        self.rebuild(|s| s.trust = trust)
    }

    /// The accepted signature algorithms, in order of preference (default:
    /// RS256, ES256, ES384, EdDSA, RS384, RS512, PS256, PS384, PS512;
    /// discovery sets the provider's advertised ones).
    ///
    /// A key whose JWK names an `alg` outside this list is ignored. A key
    /// without `alg` is bound to the first algorithm of the list that its
    /// type allows — an RSA key to PS256 with `[PS256]`, say — and a token
    /// naming any other algorithm is refused. Only asymmetric algorithms can
    /// be listed.
    ///
    /// ```
    /// use secure_runtime::{Algorithm, JwksClient};
    /// let jwks = JwksClient::new("https://login.example.com/jwks")
    ///     .unwrap()
    ///     .algorithms([Algorithm::PS256, Algorithm::ES384])
    ///     .unwrap();
    /// # let _ = jwks;
    /// // HMAC has no place in a JWKS of public keys:
    /// let err = JwksClient::new("https://login.example.com/jwks")
    ///     .unwrap()
    ///     .algorithms([Algorithm::HS256])
    ///     .unwrap_err();
    /// assert!(err.to_string().contains("HS256"));
    /// ```
    pub fn algorithms(
        self,
        algorithms: impl IntoIterator<Item = Algorithm>,
    ) -> Result<Self, ConfigError> {
        let mut list = Vec::new();
        for a in algorithms {
            if !ASYMMETRIC.contains(&a) {
                return Err(ConfigError::new(format!(
                    "{a:?} cannot verify tokens with keys of a JWKS: list asymmetric \
                     algorithms (RS256/384/512, PS256/384/512, ES256, ES384, EdDSA)"
                )));
            }
            if !list.contains(&a) {
                list.push(a);
            }
        }
        if list.is_empty() {
            return Err(ConfigError::new(
                "a JWKS client needs at least one accepted algorithm",
            ));
        }
        Ok(self.rebuild(|s| s.algorithms = list))
    }

    /// The JWKS URL.
    pub fn url(&self) -> &str {
        &self.0.settings.url
    }

    /// The accepted algorithms, in order of preference.
    pub fn accepted_algorithms(&self) -> &[Algorithm] {
        &self.0.settings.algorithms
    }

    /// `(key, have a set, stale, may fetch now)`.
    fn lookup(&self, kid: &str) -> (Option<(Algorithm, DecodingKey)>, bool, bool, bool) {
        let c = self.0.cache.read().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let found = c.keys.as_ref().and_then(|k| k.get(kid).cloned());
        let have_set = c.keys.is_some();
        let stale = c
            .fetched_at
            .is_none_or(|t| now.duration_since(t) >= self.0.settings.refresh_every);
        let may_fetch = c
            .attempted_at
            .is_none_or(|t| now.duration_since(t) >= self.0.settings.min_refetch);
        (found, have_set, stale, may_fetch)
    }

    /// Fetches the set now (one fetch at a time; a failure keeps the old set).
    /// Returns whether the fetch succeeded.
    pub async fn refresh(&self) -> bool {
        let _one = self.0.fetching.lock().await;
        self.fetch_locked().await
    }

    async fn fetch_locked(&self) -> bool {
        {
            let mut c = self.0.cache.write().unwrap_or_else(|p| p.into_inner());
            c.attempted_at = Some(Instant::now());
        }
        let settings = &self.0.settings;
        let fetched = fetch(self.0.agent.clone(), settings.url.clone())
            .await
            .and_then(|b| {
                parse_set(&b, &settings.algorithms).ok_or_else(|| "not a JWK set".to_owned())
            });
        match fetched {
            Ok(keys) => {
                let mut c = self.0.cache.write().unwrap_or_else(|p| p.into_inner());
                c.keys = Some(keys);
                c.fetched_at = Some(Instant::now());
                true
            }
            Err(cause) => {
                tracing::warn!(
                    target: AUDIT_TARGET,
                    event = "jwks_fetch_failed",
                    url = %settings.url,
                    cause = %cause
                );
                false
            }
        }
    }
}

impl KeySource for JwksClient {
    fn issuer(&self) -> Option<&str> {
        self.0.settings.issuer.as_deref()
    }

    fn key<'a>(
        &'a self,
        kid: &'a str,
    ) -> BoxFuture<'a, Result<Option<(Algorithm, DecodingKey)>, KeySourceDown>> {
        Box::pin(async move {
            let (found, _, stale, may_fetch) = self.lookup(kid);
            if let Some(k) = found {
                if !(stale && may_fetch) {
                    return Ok(Some(k));
                }
                // The set is due: one fetch, shared by the requests waiting for
                // it, and this request is judged by the new set (a key the
                // provider withdrew does not pass once more). Only when the
                // fetch fails does the cached key keep answering.
                let _one = self.0.fetching.lock().await;
                let (_, _, still_stale, may_fetch) = self.lookup(kid);
                if still_stale && may_fetch && !self.fetch_locked().await {
                    return Ok(Some(k));
                }
                return Ok(self.lookup(kid).0);
            }
            // Unknown kid (or no set yet): one fetch at a time; whoever waited
            // for it looks again before deciding to fetch.
            let _one = self.0.fetching.lock().await;
            let (found, have_set, _, may_fetch) = self.lookup(kid);
            if found.is_some() {
                return Ok(found);
            }
            if may_fetch {
                self.fetch_locked().await;
            }
            // After a successful fetch only the new set counts: a key the
            // provider withdrew is not used again.
            let (found, have_set_now, _, _) = self.lookup(kid);
            match (found, have_set || have_set_now) {
                (Some(k), _) => Ok(Some(k)),
                (None, true) => Ok(None),
                (None, false) => Err(KeySourceDown),
            }
        })
    }
}
