//! Provider metadata: OpenID Connect Discovery 1.0 and OAuth 2.0
//! Authorization Server Metadata (RFC 8414), with the exact issuer match both
//! require.

use std::{
    sync::{Arc, RwLock, Weak},
    time::{Duration, Instant},
};

use jsonwebtoken::DecodingKey;
use serde_json::Value;

use crate::{
    model::{answer::BoxFuture, audit::AUDIT_TARGET},
    verify::jwks::{check_url, fetch, url_problem, ASYMMETRIC},
    Algorithm, ConfigError, HttpsTrust, JwksClient, JwtConfig, KeySource, KeySourceDown,
};

/// What an identity provider publishes about itself, read from its
/// discovery document and checked.
///
/// * The document's `issuer` must be exactly the issuer it was requested for
///   (OpenID Connect Discovery 1.0 §4.3, RFC 8414 §3.3): a document naming
///   another issuer is refused, so a compromised or misconfigured URL cannot
///   make the app trust another provider's tokens.
/// * `jwks_uri` is required and must be https (plain http only to a
///   loopback host), like every fetch of the JWKS client: 5 s timeout, 1 MiB
///   at most, no redirects.
/// * The signing algorithms are the advertised
///   `id_token_signing_alg_values_supported` that are asymmetric (HMAC and
///   `none` are dropped); without that list, every asymmetric algorithm.
///
/// Errors name the URL and the cause.
///
/// ```no_run
/// # async fn f() -> Result<(), secure_runtime::ConfigError> {
/// use secure_runtime::ProviderMetadata;
/// let meta = ProviderMetadata::discover("https://login.example.com/realms/acme").await?;
/// assert_eq!(meta.issuer(), "https://login.example.com/realms/acme");
/// println!("keys at {}", meta.jwks_uri());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct ProviderMetadata {
    issuer: String,
    jwks_uri: String,
    algorithms: Vec<Algorithm>,
    token_endpoint: Option<String>,
    authorization_endpoint: Option<String>,
    introspection_endpoint: Option<String>,
    url: String,
    trust: HttpsTrust,
}

/// `{issuer}/.well-known/openid-configuration` (OpenID Connect Discovery 1.0
/// §4.1: the suffix is appended after removing a trailing `/`).
fn openid_url(issuer: &str) -> String {
    format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    )
}

/// RFC 8414 §3.1: the well-known suffix goes between the host and the
/// issuer's path (`https://h/t` → `https://h/.well-known/oauth-authorization-server/t`).
fn oauth_url(issuer: &str) -> Result<String, ConfigError> {
    let bad = || ConfigError::new(format!("the issuer {issuer:?} is not an absolute URL"));
    let (scheme, rest) = issuer.split_once("://").ok_or_else(bad)?;
    let (host, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    if host.is_empty() {
        return Err(bad());
    }
    let path = path.trim_end_matches('/');
    Ok(format!(
        "{scheme}://{host}/.well-known/oauth-authorization-server{path}"
    ))
}

fn algorithm_named(name: &str) -> Option<Algorithm> {
    match name {
        // RFC 9864's fully specified name for EdDSA over Ed25519.
        "Ed25519" => Some(Algorithm::EdDSA),
        other => other
            .parse::<Algorithm>()
            .ok()
            .filter(|a| ASYMMETRIC.contains(a)),
    }
}

impl ProviderMetadata {
    /// OpenID Connect Discovery (`/.well-known/openid-configuration`); when
    /// the provider has no such document (HTTP 404), RFC 8414 metadata
    /// (`/.well-known/oauth-authorization-server`).
    pub async fn discover(issuer: &str) -> Result<Self, ConfigError> {
        Self::discover_trusting(issuer, HttpsTrust::default()).await
    }

    /// [`discover`](Self::discover) trusting these certificate authorities,
    /// for the document and then for the JWKS (a provider behind a private
    /// CA).
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), secure_runtime::ConfigError> {
    /// use secure_runtime::{HttpsTrust, ProviderMetadata};
    /// let ca = std::fs::read("/etc/acme/ca.pem").unwrap();
    /// let trust = HttpsTrust::system().add_ca_pem(&ca)?;
    /// let meta = ProviderMetadata::discover_trusting("https://sso.acme.internal/realms/x", trust).await?;
    /// # let _ = meta; Ok(()) }
    /// ```
    pub async fn discover_trusting(issuer: &str, trust: HttpsTrust) -> Result<Self, ConfigError> {
        let url = openid_url(issuer);
        check_url(&url)?;
        match fetch(trust.agent(), url.clone()).await {
            Ok(body) => Self::from_document(issuer, &url, &body).map(|m| m.trusting(trust)),
            Err(cause) if cause.starts_with("HTTP status 404") => {
                let oauth = oauth_url(issuer)?;
                Self::fetch_inner(issuer, &oauth, trust).await.map_err(|e| {
                    ConfigError::new(format!(
                        "no discovery document for issuer {issuer:?}: {url} answered 404, and \
                         the RFC 8414 metadata failed too: {e}"
                    ))
                })
            }
            Err(cause) => Err(fetch_error(&url, &cause)),
        }
    }

    /// OpenID Connect Discovery 1.0 only:
    /// `{issuer}/.well-known/openid-configuration`.
    pub async fn openid_configuration(issuer: &str) -> Result<Self, ConfigError> {
        Self::fetch_from(issuer, openid_url(issuer), HttpsTrust::default()).await
    }

    /// RFC 8414 only: `/.well-known/oauth-authorization-server` inserted
    /// before the issuer's path.
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), secure_runtime::ConfigError> {
    /// use secure_runtime::ProviderMetadata;
    /// // Reads https://auth.example.com/.well-known/oauth-authorization-server/tenant1
    /// let meta = ProviderMetadata::oauth_authorization_server("https://auth.example.com/tenant1").await?;
    /// # let _ = meta; Ok(()) }
    /// ```
    pub async fn oauth_authorization_server(issuer: &str) -> Result<Self, ConfigError> {
        Self::fetch_from(issuer, oauth_url(issuer)?, HttpsTrust::default()).await
    }

    async fn fetch_from(issuer: &str, url: String, trust: HttpsTrust) -> Result<Self, ConfigError> {
        Self::fetch_inner(issuer, &url, trust)
            .await
            .map_err(ConfigError::new)
    }

    async fn fetch_inner(issuer: &str, url: &str, trust: HttpsTrust) -> Result<Self, String> {
        if let Some(p) = url_problem(url) {
            return Err(format!("{url:?}: {p}"));
        }
        let body = fetch(trust.agent(), url.to_owned())
            .await
            .map_err(|cause| format!("cannot read the discovery document {url}: {cause}"))?;
        Self::parse(issuer, url, &body).map(|m| m.trusting(trust))
    }

    fn trusting(mut self, trust: HttpsTrust) -> Self {
        self.trust = trust;
        self
    }

    /// Reads a metadata document fetched from `url` for `issuer`, with the
    /// checks of [`ProviderMetadata`] (no I/O).
    ///
    /// ```
    /// use secure_runtime::{Algorithm, ProviderMetadata};
    /// let url = "https://idp.example.com/.well-known/openid-configuration";
    /// let doc = r#"{"issuer": "https://idp.example.com",
    ///               "jwks_uri": "https://idp.example.com/jwks",
    ///               "id_token_signing_alg_values_supported": ["PS256", "HS256"]}"#;
    /// let meta = ProviderMetadata::from_document("https://idp.example.com", url, doc).unwrap();
    /// assert_eq!(meta.algorithms(), [Algorithm::PS256]);
    ///
    /// // A document naming another issuer is refused:
    /// let err = ProviderMetadata::from_document("https://other.example.com", url, doc).unwrap_err();
    /// assert!(err.to_string().contains("names the issuer \"https://idp.example.com\""));
    /// ```
    pub fn from_document(issuer: &str, url: &str, body: &str) -> Result<Self, ConfigError> {
        Self::parse(issuer, url, body).map_err(ConfigError::new)
    }

    fn parse(issuer: &str, url: &str, body: &str) -> Result<Self, String> {
        let err = |cause: String| format!("discovery document {url}: {cause}");
        let doc: Value =
            serde_json::from_str(body).map_err(|e| err(format!("not a JSON document ({e})")))?;
        let text = |name: &str| -> Result<Option<String>, String> {
            match doc.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(err(format!("`{name}` is not a string"))),
            }
        };
        let named = text("issuer")?.ok_or_else(|| err("it has no `issuer`".into()))?;
        if named != issuer {
            return Err(err(format!(
                "it names the issuer {named:?}, not {issuer:?} as requested; the two must be \
                 identical (OpenID Connect Discovery 1.0 §4.3, RFC 8414 §3.3): configure the \
                 issuer exactly as the provider names it, trailing slash included"
            )));
        }
        let jwks_uri = text("jwks_uri")?.ok_or_else(|| err("it has no `jwks_uri`".into()))?;
        if let Some(p) = url_problem(&jwks_uri) {
            return Err(err(format!("`jwks_uri` {jwks_uri:?}: {p}")));
        }
        let algorithms = match doc.get("id_token_signing_alg_values_supported") {
            None | Some(Value::Null) => ASYMMETRIC.to_vec(),
            Some(Value::Array(names)) => {
                let mut algs = Vec::new();
                for a in names
                    .iter()
                    .filter_map(Value::as_str)
                    .filter_map(algorithm_named)
                {
                    if !algs.contains(&a) {
                        algs.push(a);
                    }
                }
                if algs.is_empty() {
                    return Err(err(format!(
                        "the provider advertises no asymmetric signing algorithm this \
                         verifier supports (it lists {})",
                        Value::Array(names.clone())
                    )));
                }
                algs
            }
            Some(_) => {
                return Err(err(
                    "`id_token_signing_alg_values_supported` is not a list".into()
                ))
            }
        };
        Ok(ProviderMetadata {
            issuer: named,
            jwks_uri,
            algorithms,
            token_endpoint: text("token_endpoint")?,
            authorization_endpoint: text("authorization_endpoint")?,
            introspection_endpoint: text("introspection_endpoint")?,
            url: url.to_owned(),
            trust: HttpsTrust::default(),
        })
    }

    /// The issuer, exactly as the document names it (and as tokens must).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }
    /// The JWKS URL.
    pub fn jwks_uri(&self) -> &str {
        &self.jwks_uri
    }
    /// The accepted signing algorithms, in the provider's order.
    pub fn algorithms(&self) -> &[Algorithm] {
        &self.algorithms
    }
    /// The token endpoint, if advertised.
    pub fn token_endpoint(&self) -> Option<&str> {
        self.token_endpoint.as_deref()
    }
    /// The authorization endpoint, if advertised.
    pub fn authorization_endpoint(&self) -> Option<&str> {
        self.authorization_endpoint.as_deref()
    }
    /// The RFC 7662 introspection endpoint, if advertised.
    pub fn introspection_endpoint(&self) -> Option<&str> {
        self.introspection_endpoint.as_deref()
    }
    /// The URL the document was read from.
    pub fn document_url(&self) -> &str {
        &self.url
    }

    /// The CAs the document was fetched with (used for the later fetches).
    pub(crate) fn trust(&self) -> &HttpsTrust {
        &self.trust
    }

    /// A JWKS client for these keys, bound to this issuer and these
    /// algorithms, trusting the CAs the document was fetched with.
    pub fn jwks_client(&self) -> Result<JwksClient, ConfigError> {
        JwksClient::discovered(
            &self.jwks_uri,
            &self.issuer,
            self.algorithms.clone(),
            self.trust.clone(),
        )
    }
}

fn fetch_error(url: &str, cause: &str) -> ConfigError {
    ConfigError::new(format!("cannot read the discovery document {url}: {cause}"))
}

impl JwtConfig {
    /// Resource-server mode in one call: reads the provider's discovery
    /// document ([`ProviderMetadata::discover`]: OpenID Connect Discovery,
    /// else RFC 8414), checks that it names exactly `issuer`, and configures
    /// the issuer, a [`JwksClient`] for its `jwks_uri` and its signing
    /// algorithms. Add the audience (and a claim mapping) and build.
    ///
    /// Fails fast: an unreachable provider or a bad document is an error
    /// that names the URL and the cause.
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), secure_runtime::ConfigError> {
    /// use secure_runtime::{ClaimMapping, JwtConfig, Security};
    /// let jwt = JwtConfig::discover("https://login.example.com/realms/acme")
    ///     .await?
    ///     .audience("notes-api")
    ///     .claims(ClaimMapping::keycloak("notes-api"))
    ///     .accept_typ(["at+jwt", "JWT"]);
    /// let security = Security::builder().jwt(jwt).build()?;
    /// # let _ = security; Ok(()) }
    /// ```
    pub async fn discover(issuer: &str) -> Result<JwtConfig, ConfigError> {
        Self::from_metadata(&ProviderMetadata::discover(issuer).await?)
    }

    /// [`discover`](Self::discover) trusting these certificate authorities
    /// for the discovery and JWKS fetches (a provider behind a private CA).
    pub async fn discover_trusting(
        issuer: &str,
        trust: HttpsTrust,
    ) -> Result<JwtConfig, ConfigError> {
        Self::from_metadata(&ProviderMetadata::discover_trusting(issuer, trust).await?)
    }

    /// Resource-server mode from metadata read before (see
    /// [`discover`](Self::discover)).
    pub fn from_metadata(meta: &ProviderMetadata) -> Result<JwtConfig, ConfigError> {
        Ok(JwtConfig::key_source(meta.jwks_client()?).issuer(meta.issuer()))
    }
}

impl JwtConfig {
    /// Resource-server mode that starts without the provider: the app
    /// serves at once, guarded routes answer 503 until the discovery
    /// document and the keys are loaded, and loading is retried with
    /// backoff (see [`DiscoveredKeys`]). Only the URL is checked here; the
    /// discovery checks of [`discover`](Self::discover) apply when it loads.
    ///
    /// ```
    /// use secure_runtime::{JwtConfig, Security};
    /// // Builds even though nothing answers there (yet).
    /// let jwt = JwtConfig::discover_lazily("https://login.example.com/realms/acme")
    ///     .unwrap()
    ///     .audience("notes-api");
    /// let security = Security::builder().jwt(jwt).build().unwrap();
    /// # let _ = security;
    /// ```
    pub fn discover_lazily(issuer: &str) -> Result<JwtConfig, ConfigError> {
        Ok(JwtConfig::key_source(DiscoveredKeys::lazy(issuer)?))
    }
}

/// A key source that discovers its provider on first need, so that the app
/// can start while the provider is down ([`JwtConfig::discover_lazily`]).
///
/// * Until the discovery document and the JWKS are loaded, every token is
///   refused with 503 (fail closed), never accepted.
/// * Loading starts at once in the background when a Tokio runtime is
///   running, and otherwise on the first token. A failure is logged (audit
///   target, event `discovery_failed`, with the URL and the cause) and
///   retried after a backoff that doubles from 1 s up to 60 s; requests in
///   between are answered 503 without a fetch.
/// * The document must name exactly this issuer, as with
///   [`JwtConfig::discover`]: a mismatch is retried like any failure, so
///   the routes stay closed and the log says why.
/// * Once loaded, it is the discovered [`JwksClient`], with its caching and
///   rotation.
///
/// ```
/// use std::time::Duration;
/// use secure_runtime::{DiscoveredKeys, JwtConfig};
/// let keys = DiscoveredKeys::lazy("https://login.example.com/realms/acme")
///     .unwrap()
///     .backoff(Duration::from_millis(500), Duration::from_secs(30));
/// assert!(!keys.is_ready());
/// let jwt = JwtConfig::key_source(keys).audience("notes-api");
/// # let _ = jwt;
/// ```
#[derive(Clone)]
pub struct DiscoveredKeys(Arc<LazyInner>);

struct LazyInner {
    issuer: String,
    trust: HttpsTrust,
    first_backoff: Duration,
    max_backoff: Duration,
    state: RwLock<LazyState>,
    loading: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct LazyState {
    client: Option<JwksClient>,
    failures: u32,
    next_try: Option<Instant>,
}

impl std::fmt::Debug for DiscoveredKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiscoveredKeys")
            .field("issuer", &self.0.issuer)
            .field("ready", &self.is_ready())
            .finish_non_exhaustive()
    }
}

impl DiscoveredKeys {
    /// A source for `issuer`, loaded on first need (the URL is checked now).
    pub fn lazy(issuer: &str) -> Result<Self, ConfigError> {
        check_url(&openid_url(issuer))?;
        Ok(Self::with(
            issuer,
            HttpsTrust::default(),
            Duration::from_secs(1),
            Duration::from_secs(60),
        ))
    }

    fn with(issuer: &str, trust: HttpsTrust, first: Duration, max: Duration) -> Self {
        let keys = DiscoveredKeys(Arc::new(LazyInner {
            issuer: issuer.to_owned(),
            trust,
            first_backoff: first,
            max_backoff: max.max(first),
            state: RwLock::new(LazyState::default()),
            loading: tokio::sync::Mutex::new(()),
        }));
        keys.start_in_background();
        keys
    }

    /// The wait after the first failure, doubling up to `max` (defaults
    /// 1 s and 60 s).
    pub fn backoff(self, first: Duration, max: Duration) -> Self {
        Self::with(&self.0.issuer, self.0.trust.clone(), first, max)
    }

    /// The certificate authorities trusted for the discovery and JWKS
    /// fetches (default [`HttpsTrust::system`]).
    pub fn https_trust(self, trust: HttpsTrust) -> Self {
        Self::with(
            &self.0.issuer,
            trust,
            self.0.first_backoff,
            self.0.max_backoff,
        )
    }

    /// Whether the keys are loaded (tokens can be verified).
    pub fn is_ready(&self) -> bool {
        self.0.state().client.is_some()
    }

    /// Loads now unless loaded (one attempt, shared by concurrent callers,
    /// whatever the backoff); returns whether the keys are ready.
    pub async fn load(&self) -> bool {
        self.0.attempt(true).await.is_some()
    }

    /// One attempt in the background with the runtime that is running, and
    /// more after each backoff until one succeeds (or the source is dropped).
    fn start_in_background(&self) {
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let weak: Weak<LazyInner> = Arc::downgrade(&self.0);
        rt.spawn(async move {
            loop {
                let Some(inner) = weak.upgrade() else { return };
                if inner.attempt(true).await.is_some() {
                    return;
                }
                let wait = inner.current_backoff();
                drop(inner);
                tokio::time::sleep(wait).await;
            }
        });
    }
}

impl LazyInner {
    fn state(&self) -> std::sync::RwLockReadGuard<'_, LazyState> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    fn current_backoff(&self) -> Duration {
        let failures = self.state().failures.clamp(1, 16);
        self.first_backoff
            .saturating_mul(1 << (failures - 1))
            .min(self.max_backoff)
    }

    /// The loaded client, loading it if the backoff allows (or `force`).
    async fn attempt(&self, force: bool) -> Option<JwksClient> {
        let due = |s: &LazyState| force || s.next_try.is_none_or(|t| Instant::now() >= t);
        {
            let s = self.state();
            if let Some(c) = &s.client {
                return Some(c.clone());
            }
            if !due(&s) {
                return None;
            }
        }
        let _one = self.loading.lock().await;
        {
            // Whoever waited for the lock looks again: the holder may have
            // loaded it, or failed a moment ago.
            let s = self.state();
            if let Some(c) = &s.client {
                return Some(c.clone());
            }
            if !force && s.next_try.is_some_and(|t| Instant::now() < t) {
                return None;
            }
        }
        let loaded =
            match ProviderMetadata::discover_trusting(&self.issuer, self.trust.clone()).await {
                Ok(meta) => meta.jwks_client().map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
        // The JWKS itself must load too, or tokens would still find no key.
        let loaded = match loaded {
            Ok(client) if client.refresh().await => Ok(client),
            Ok(client) => Err(format!("cannot read the JWKS {}", client.url())),
            Err(e) => Err(e),
        };
        let mut s = self.state.write().unwrap_or_else(|p| p.into_inner());
        match loaded {
            Ok(client) => {
                s.client = Some(client.clone());
                Some(client)
            }
            Err(cause) => {
                s.failures = s.failures.saturating_add(1);
                drop(s);
                let wait = self.current_backoff();
                let mut s = self.state.write().unwrap_or_else(|p| p.into_inner());
                s.next_try = Some(Instant::now() + wait);
                tracing::warn!(
                    target: AUDIT_TARGET,
                    event = "discovery_failed",
                    issuer = %self.issuer,
                    cause = %cause,
                    retry_in_ms = wait.as_millis() as u64
                );
                None
            }
        }
    }
}

impl KeySource for DiscoveredKeys {
    fn issuer(&self) -> Option<&str> {
        Some(&self.0.issuer)
    }

    fn key<'a>(
        &'a self,
        kid: &'a str,
    ) -> BoxFuture<'a, Result<Option<(Algorithm, DecodingKey)>, KeySourceDown>> {
        Box::pin(async move {
            match self.0.attempt(false).await {
                Some(client) => client.key(kid).await,
                None => Err(KeySourceDown),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "https://idp.example.com/.well-known/openid-configuration";

    fn doc(v: Value) -> Result<ProviderMetadata, String> {
        ProviderMetadata::from_document("https://idp.example.com", URL, &v.to_string())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn rfc_8414_inserts_the_well_known_suffix_before_the_path() {
        assert_eq!(
            oauth_url("https://a.example").unwrap(),
            "https://a.example/.well-known/oauth-authorization-server"
        );
        assert_eq!(
            oauth_url("https://a.example/").unwrap(),
            "https://a.example/.well-known/oauth-authorization-server"
        );
        assert_eq!(
            oauth_url("https://a.example/t/1").unwrap(),
            "https://a.example/.well-known/oauth-authorization-server/t/1"
        );
        assert!(oauth_url("a.example").is_err());
        assert_eq!(
            openid_url("https://a.example/realms/x/"),
            "https://a.example/realms/x/.well-known/openid-configuration"
        );
    }

    #[test]
    fn the_issuer_must_match_exactly() {
        let ok = serde_json::json!({"issuer": "https://idp.example.com", "jwks_uri": "https://idp.example.com/k"});
        assert!(doc(ok).is_ok());
        for other in [
            "https://idp.example.com/",
            "https://IDP.example.com",
            "http://idp.example.com",
            "https://evil.example.com",
            "",
        ] {
            let e =
                doc(serde_json::json!({"issuer": other, "jwks_uri": "https://idp.example.com/k"}))
                    .unwrap_err();
            assert!(
                e.contains(URL) && e.contains("names the issuer"),
                "{other}: {e}"
            );
        }
        let e = doc(serde_json::json!({"jwks_uri": "https://idp.example.com/k"})).unwrap_err();
        assert!(e.contains("no `issuer`"), "{e}");
        let e = doc(serde_json::json!({"issuer": 1, "jwks_uri": "x"})).unwrap_err();
        assert!(e.contains("`issuer` is not a string"), "{e}");
    }

    #[test]
    fn the_jwks_uri_is_required_and_https() {
        let e = doc(serde_json::json!({"issuer": "https://idp.example.com"})).unwrap_err();
        assert!(e.contains("no `jwks_uri`"), "{e}");
        let e = doc(serde_json::json!({"issuer": "https://idp.example.com", "jwks_uri": "http://idp.example.com/k"}))
            .unwrap_err();
        assert!(e.contains("must use https"), "{e}");
        let e =
            ProviderMetadata::from_document("https://idp.example.com", URL, "<html>").unwrap_err();
        assert!(e.to_string().contains("not a JSON document"), "{e}");
    }

    #[test]
    fn advertised_algorithms_keep_the_asymmetric_ones_in_order() {
        let m = doc(serde_json::json!({
            "issuer": "https://idp.example.com", "jwks_uri": "https://idp.example.com/k",
            "id_token_signing_alg_values_supported": ["HS256", "none", "PS384", "ES256", "Ed25519", "EdDSA", "RS256", 7]
        }))
        .unwrap();
        assert_eq!(
            m.algorithms(),
            [
                Algorithm::PS384,
                Algorithm::ES256,
                Algorithm::EdDSA,
                Algorithm::RS256
            ]
        );
        let m = doc(serde_json::json!({"issuer": "https://idp.example.com", "jwks_uri": "https://idp.example.com/k"})).unwrap();
        assert_eq!(m.algorithms(), ASYMMETRIC);
        let e = doc(serde_json::json!({
            "issuer": "https://idp.example.com", "jwks_uri": "https://idp.example.com/k",
            "id_token_signing_alg_values_supported": ["HS256", "none"]
        }))
        .unwrap_err();
        assert!(e.contains("no asymmetric signing algorithm"), "{e}");
    }
}
