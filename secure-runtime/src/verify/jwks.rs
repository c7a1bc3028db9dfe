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
    model::answer::BoxFuture, model::audit::AUDIT_TARGET, verify::jwt::KeySource,
    verify::jwt::KeySourceDown, ConfigError,
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
///   redirects.
///
/// ```no_run
/// # async fn f() -> Result<(), secure_runtime::ConfigError> {
/// use secure_runtime::{JwksClient, JwtConfig, Security};
/// let jwks = JwksClient::from_discovery("https://login.example.com/realms/acme").await?;
/// let security = Security::builder()
///     .jwt(JwtConfig::key_source(jwks).issuer("https://login.example.com/realms/acme").audience("my-api"))
///     .build()?;
/// # let _ = security; Ok(()) }
/// ```
#[derive(Clone)]
pub struct JwksClient(Arc<Inner>);

struct Inner {
    url: String,
    agent: ureq::Agent,
    cache: RwLock<Cache>,
    fetching: Arc<tokio::sync::Mutex<()>>,
    refresh_every: Duration,
    min_refetch: Duration,
}

#[derive(Default)]
struct Cache {
    keys: Option<HashMap<String, (Algorithm, DecodingKey)>>,
    fetched_at: Option<Instant>,
    attempted_at: Option<Instant>,
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(5)))
        .max_redirects(0)
        .http_status_as_error(true)
        .build()
        .into()
}

fn check_url(url: &str) -> Result<(), ConfigError> {
    let bad = || {
        ConfigError::new(
            "a JWKS URL must use https (plain http only to a loopback host), without user info",
        )
    };
    let uri: poem::http::Uri = url.parse().map_err(|_| bad())?;
    let authority = uri.authority().ok_or_else(bad)?;
    if authority.as_str().contains('@') {
        return Err(bad());
    }
    let host = authority.host().to_ascii_lowercase();
    let loopback = matches!(host.as_str(), "127.0.0.1" | "localhost" | "[::1]");
    match uri.scheme_str() {
        Some("https") => Ok(()),
        Some("http") if loopback => Ok(()),
        _ => Err(bad()),
    }
}

async fn fetch(agent: ureq::Agent, url: String) -> Result<String, ()> {
    tokio::task::spawn_blocking(move || {
        let mut resp = agent.get(&url).call().map_err(|_| ())?;
        resp.body_mut()
            .with_config()
            .limit(1 << 20)
            .read_to_string()
            .map_err(|_| ())
    })
    .await
    .map_err(|_| ())?
}

/// The algorithm a JWK is bound to, or `None` for keys not usable here.
fn bound_algorithm(jwk: &Jwk) -> Option<Algorithm> {
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
    let alg = match (declared, &jwk.algorithm) {
        (Some(a), _) => a,
        (None, AlgorithmParameters::RSA(_)) => Algorithm::RS256,
        (None, AlgorithmParameters::EllipticCurve(p)) if p.curve == EllipticCurve::P256 => {
            Algorithm::ES256
        }
        (None, AlgorithmParameters::EllipticCurve(p)) if p.curve == EllipticCurve::P384 => {
            Algorithm::ES384
        }
        (None, AlgorithmParameters::OctetKeyPair(p)) if p.curve == EllipticCurve::Ed25519 => {
            Algorithm::EdDSA
        }
        _ => return None,
    };
    family_ok(alg).then_some(alg)
}

fn parse_set(body: &str) -> Option<HashMap<String, (Algorithm, DecodingKey)>> {
    let set: JwkSet = serde_json::from_str(body).ok()?;
    let keys: HashMap<_, _> = set
        .keys
        .iter()
        .filter_map(|jwk| {
            let kid = jwk.common.key_id.clone()?;
            let alg = bound_algorithm(jwk)?;
            let key = DecodingKey::from_jwk(jwk).ok()?;
            Some((kid, (alg, key)))
        })
        .collect();
    Some(keys)
}

impl JwksClient {
    /// A client for the JWKS document at `url`.
    pub fn new(url: impl Into<String>) -> Result<Self, ConfigError> {
        let url = url.into();
        check_url(&url)?;
        Ok(JwksClient(Arc::new(Inner {
            url,
            agent: agent(),
            cache: RwLock::new(Cache::default()),
            fetching: Arc::new(tokio::sync::Mutex::new(())),
            refresh_every: Duration::from_secs(900),
            min_refetch: Duration::from_secs(60),
        })))
    }

    /// Reads `{issuer}/.well-known/openid-configuration` and uses its
    /// `jwks_uri` (which must itself be https, or loopback http).
    pub async fn from_discovery(issuer: &str) -> Result<Self, ConfigError> {
        let issuer = issuer.trim_end_matches('/');
        let url = format!("{issuer}/.well-known/openid-configuration");
        check_url(&url)?;
        let body = fetch(agent(), url)
            .await
            .map_err(|_| ConfigError::new("cannot read the discovery document"))?;
        let doc: serde_json::Value = serde_json::from_str(&body)
            .map_err(|_| ConfigError::new("the discovery document is not JSON"))?;
        let jwks_uri = doc
            .get("jwks_uri")
            .and_then(|v| v.as_str())
            .ok_or_else(|| ConfigError::new("the discovery document has no jwks_uri"))?;
        Self::new(jwks_uri)
    }

    fn rebuild(&self, f: impl FnOnce(&mut Duration, &mut Duration)) -> Self {
        let (mut every, mut min) = (self.0.refresh_every, self.0.min_refetch);
        f(&mut every, &mut min);
        JwksClient(Arc::new(Inner {
            url: self.0.url.clone(),
            agent: self.0.agent.clone(),
            cache: RwLock::new(Cache::default()),
            fetching: Arc::new(tokio::sync::Mutex::new(())),
            refresh_every: every,
            min_refetch: min,
        }))
    }

    /// How old the cached set may get before it is refreshed (default 15 min).
    pub fn refresh_every(self, d: Duration) -> Self {
        self.rebuild(|every, _| *every = d)
    }

    /// The least time between two fetches caused by unknown `kid`s (default 60 s).
    pub fn min_refetch_interval(self, d: Duration) -> Self {
        self.rebuild(|_, min| *min = d)
    }

    /// `(key, have a set, stale, may fetch now)`.
    fn lookup(&self, kid: &str) -> (Option<(Algorithm, DecodingKey)>, bool, bool, bool) {
        let c = self.0.cache.read().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let found = c.keys.as_ref().and_then(|k| k.get(kid).cloned());
        let have_set = c.keys.is_some();
        let stale = c
            .fetched_at
            .is_none_or(|t| now.duration_since(t) >= self.0.refresh_every);
        let may_fetch = c
            .attempted_at
            .is_none_or(|t| now.duration_since(t) >= self.0.min_refetch);
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
        match fetch(self.0.agent.clone(), self.0.url.clone())
            .await
            .ok()
            .and_then(|b| parse_set(&b))
        {
            Some(keys) => {
                let mut c = self.0.cache.write().unwrap_or_else(|p| p.into_inner());
                c.keys = Some(keys);
                c.fetched_at = Some(Instant::now());
                true
            }
            None => {
                tracing::warn!(target: AUDIT_TARGET, event = "jwks_fetch_failed");
                false
            }
        }
    }
}

impl KeySource for JwksClient {
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
