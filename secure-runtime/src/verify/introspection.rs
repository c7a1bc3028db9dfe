//! Opaque access tokens: OAuth 2.0 Token Introspection (RFC 7662).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::{
    model::{
        answer::BoxFuture,
        audit::AUDIT_TARGET,
        principal::{CredentialKind, Principal},
    },
    verify::{
        claims::ClaimMapping,
        discovery::ProviderMetadata,
        jwks::url_problem,
        jwt::{now_secs, Expect, OpaqueTokens, TokenError, VerifyError},
    },
    ConfigError, HttpsTrust, JwtConfig,
};

/// The largest introspection answer read.
const MAX_BODY: u64 = 64 << 10;

/// Checks opaque access tokens at the provider's introspection endpoint
/// (RFC 7662), for a [`JwtConfig`] ([`JwtConfig::introspection`]): tokens
/// that are not JWTs go there, JWTs keep the signature path.
///
/// * The resource server authenticates with its own client id and secret
///   (HTTP Basic, RFC 6749 §2.3.1). The token is sent in a POST body, never
///   in a URL or a log.
/// * A token passes only if the answer says `active: true`, its `aud` names
///   the configured audience, its `iss` (when given) is the configured
///   issuer, its `exp` (when given) is not past, and its `token_type` (when
///   given) is a bearer access token. The subject is `sub`, else `client_id`
///   (client credentials). Roles, permissions and scopes come through the
///   config's [`ClaimMapping`](crate::ClaimMapping).
/// * Answers are cached by the token's SHA-256, never longer than the token's
///   `exp` nor than the cache lifetime (default 60 s: a token revoked at the
///   provider may pass that long), at most 10 000 entries; inactive answers
///   are not cached.
/// * The endpoint unreachable, slow (5 s), refusing our credentials or
///   answering nonsense: 503, fail closed (never a pass).
///
/// ```no_run
/// # async fn f() -> Result<(), secure_runtime::ConfigError> {
/// use secure_runtime::{Introspection, JwtConfig, ProviderMetadata, Security};
/// let meta = ProviderMetadata::discover("https://login.example.com").await?;
/// let secret = std::env::var("INTROSPECTION_SECRET").unwrap();
/// let jwt = JwtConfig::from_metadata(&meta)?
///     .audience("https://notes.example.com")
///     .introspection(Introspection::from_metadata(&meta, "notes-api", secret)?);
/// let security = Security::builder().jwt(jwt).build()?;
/// # let _ = security; Ok(()) }
/// ```
#[derive(Clone)]
pub struct Introspection(Arc<Inner>);

struct Inner {
    endpoint: String,
    authorization: String,
    client_id: String,
    trust: HttpsTrust,
    agent: ureq::Agent,
    max_entries: usize,
    max_ttl: Duration,
    cache: Mutex<HashMap<[u8; 32], (Principal, Instant)>>,
}

impl std::fmt::Debug for Introspection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret.
        f.debug_struct("Introspection")
            .field("endpoint", &self.0.endpoint)
            .field("client_id", &self.0.client_id)
            .field("max_entries", &self.0.max_entries)
            .field("max_ttl", &self.0.max_ttl)
            .finish_non_exhaustive()
    }
}

/// RFC 6749 §2.3.1: client id and secret are form-encoded before Basic.
fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

impl Introspection {
    /// Introspection at `endpoint` (https, or http to loopback) with the
    /// resource server's client credentials.
    ///
    /// ```
    /// use secure_runtime::Introspection;
    /// let i = Introspection::new("https://login.example.com/introspect", "notes-api", "s3cret").unwrap();
    /// assert!(!format!("{i:?}").contains("s3cret"));
    /// assert!(Introspection::new("http://login.example.com/introspect", "a", "b").is_err());
    /// ```
    pub fn new(
        endpoint: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
    ) -> Result<Self, ConfigError> {
        let endpoint = endpoint.into();
        if let Some(p) = url_problem(&endpoint) {
            return Err(ConfigError::new(format!(
                "introspection endpoint {endpoint:?}: {p}"
            )));
        }
        let (id, secret) = (client_id.into(), client_secret.into());
        if id.is_empty() || secret.is_empty() {
            return Err(ConfigError::new(
                "introspection needs the resource server's client id and secret",
            ));
        }
        use base64::Engine as _;
        let authorization = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!(
                "{}:{}",
                form_encode(&id),
                form_encode(&secret)
            ))
        );
        Ok(Self::with(Inner {
            endpoint,
            authorization,
            client_id: id,
            trust: HttpsTrust::default(),
            agent: HttpsTrust::default().agent(),
            max_entries: 10_000,
            max_ttl: Duration::from_secs(60),
            cache: Mutex::new(HashMap::new()),
        }))
    }

    /// Introspection at the endpoint the provider's metadata advertises,
    /// trusting the CAs the metadata was fetched with.
    pub fn from_metadata(
        meta: &ProviderMetadata,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
    ) -> Result<Self, ConfigError> {
        let endpoint = meta.introspection_endpoint().ok_or_else(|| {
            ConfigError::new(format!(
                "the discovery document {} advertises no introspection_endpoint",
                meta.document_url()
            ))
        })?;
        Ok(Self::new(endpoint, client_id, client_secret)?.https_trust(meta.trust().clone()))
    }

    fn with(inner: Inner) -> Self {
        Introspection(Arc::new(inner))
    }

    fn rebuild(&self, f: impl FnOnce(&mut Inner)) -> Self {
        let i = &self.0;
        let mut inner = Inner {
            endpoint: i.endpoint.clone(),
            authorization: i.authorization.clone(),
            client_id: i.client_id.clone(),
            trust: i.trust.clone(),
            agent: i.agent.clone(),
            max_entries: i.max_entries,
            max_ttl: i.max_ttl,
            cache: Mutex::new(HashMap::new()),
        };
        f(&mut inner);
        inner.agent = inner.trust.agent();
        Self::with(inner)
    }

    /// The cache bounds: at most `max_entries` answers, each kept at most
    /// `max_ttl` (and never past the token's `exp`). `0` entries: no cache,
    /// every request asks the provider (revocation there takes effect at once).
    pub fn cache(self, max_entries: usize, max_ttl: Duration) -> Self {
        self.rebuild(|i| {
            i.max_entries = max_entries;
            i.max_ttl = max_ttl;
        })
    }

    /// The certificate authorities trusted for the endpoint (default
    /// [`HttpsTrust::system`]).
    pub fn https_trust(self, trust: HttpsTrust) -> Self {
        self.rebuild(|i| i.trust = trust)
    }

    fn cached(&self, key: &[u8; 32]) -> Option<Principal> {
        let cache = self.0.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .get(key)
            .filter(|(_, until)| Instant::now() < *until)
            .map(|(p, _)| p.clone())
    }

    fn remember(&self, key: [u8; 32], p: &Principal) {
        if self.0.max_entries == 0 || self.0.max_ttl.is_zero() {
            return;
        }
        let now = Instant::now();
        let mut ttl = self.0.max_ttl;
        if let Some(exp) = p.expires_at() {
            ttl = ttl.min(Duration::from_secs(exp.saturating_sub(now_secs())));
        }
        let mut cache = self.0.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= self.0.max_entries {
            cache.retain(|_, (_, until)| now < *until);
        }
        // Still full of live answers: this one is simply not cached.
        if cache.len() < self.0.max_entries {
            cache.insert(key, (p.clone(), now + ttl));
        }
    }

    /// POSTs the token; `Err` carries the cause for the log (never the token).
    async fn ask(&self, token: &str) -> Result<Map<String, Value>, String> {
        let inner = self.0.clone();
        let token = token.to_owned();
        tokio::task::spawn_blocking(move || {
            let mut resp = inner
                .agent
                .post(&inner.endpoint)
                .header("authorization", &inner.authorization)
                .header("accept", "application/json")
                .send_form([
                    ("token", token.as_str()),
                    ("token_type_hint", "access_token"),
                ])
                .map_err(|e| match e {
                    ureq::Error::StatusCode(code) => format!("HTTP status {code}"),
                    other => other.to_string(),
                })?;
            if !resp.status().is_success() {
                return Err(format!("HTTP status {}", resp.status().as_u16()));
            }
            let body = resp
                .body_mut()
                .with_config()
                .limit(MAX_BODY)
                .read_to_string()
                .map_err(|e| format!("unreadable body: {e}"))?;
            match serde_json::from_str(&body) {
                Ok(Value::Object(m)) => Ok(m),
                _ => Err("the answer is not a JSON object".to_owned()),
            }
        })
        .await
        .map_err(|_| "the introspection task failed".to_owned())?
    }
}

/// The principal of an introspection answer, or why the token is refused.
fn judge(answer: &Map<String, Value>, expect: Expect<'_>) -> Result<Principal, TokenError> {
    if answer.get("active") != Some(&Value::Bool(true)) {
        return Err(TokenError::Inactive);
    }
    if let Some(t) = answer.get("token_type") {
        let t = t.as_str().ok_or(TokenError::Malformed)?;
        if !(t.eq_ignore_ascii_case("bearer") || t == "access_token") {
            return Err(TokenError::Type);
        }
    }
    match answer.get("iss") {
        None => {}
        Some(Value::String(i)) if i == expect.issuer => {}
        Some(_) => return Err(TokenError::Issuer),
    }
    let aud_ok = match answer.get("aud") {
        Some(Value::String(a)) => a == expect.audience,
        Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(expect.audience)),
        _ => false,
    };
    if !aud_ok {
        return Err(TokenError::Audience);
    }
    let now = now_secs();
    let exp = match answer.get("exp") {
        None => None,
        Some(v) => match v.as_u64() {
            Some(e) if e.saturating_add(expect.leeway) >= now => Some(e),
            _ => return Err(TokenError::Expired),
        },
    };
    if let Some(nbf) = answer.get("nbf") {
        match nbf.as_u64() {
            Some(n) if n <= now.saturating_add(expect.leeway) => {}
            _ => return Err(TokenError::NotYetValid),
        }
    }
    let subject = [answer.get("sub"), answer.get("client_id")]
        .into_iter()
        .flatten()
        .find_map(|v| v.as_str().filter(|s| !s.is_empty()))
        .ok_or(TokenError::Subject)?;
    let jti = match answer.get("jti") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(TokenError::Malformed),
    };
    let standard = ClaimMapping::standard();
    let found = expect
        .mapping
        .unwrap_or(&standard)
        .read(answer)
        .map_err(|_| TokenError::Malformed)?;
    Ok(Principal::builder(CredentialKind::Bearer, subject)
        .scopes(found.scopes)
        .roles(found.roles)
        .permissions(found.permissions)
        .token(jti, exp)
        .build())
}

impl OpaqueTokens for Introspection {
    fn verify<'a>(
        &'a self,
        token: &'a str,
        expect: Expect<'a>,
    ) -> BoxFuture<'a, Result<Principal, VerifyError>> {
        Box::pin(async move {
            let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
            if let Some(p) = self.cached(&key) {
                return Ok(p);
            }
            let answer = match self.ask(token).await {
                Ok(a) => a,
                Err(cause) => {
                    tracing::warn!(
                        target: AUDIT_TARGET,
                        event = "introspection_failed",
                        endpoint = %self.0.endpoint,
                        cause = %cause
                    );
                    return Err(VerifyError::SourceDown);
                }
            };
            let p = judge(&answer, expect)?;
            self.remember(key, &p);
            Ok(p)
        })
    }
}

impl JwtConfig {
    /// Opaque access tokens only: every bearer token is checked by
    /// introspection (add the issuer and the audience).
    pub fn opaque(introspection: Introspection) -> JwtConfig {
        JwtConfig::key_source(NoKeys).introspection(introspection)
    }

    /// Also accepts opaque access tokens: a bearer token that is not a JWT
    /// is checked by [`Introspection`]; JWTs keep the signature path.
    pub fn introspection(mut self, introspection: Introspection) -> JwtConfig {
        self.opaque = Some(Arc::new(introspection));
        self
    }
}

/// The key source of [`JwtConfig::opaque`]: knows no key, so a JWT is
/// refused (401).
struct NoKeys;

impl crate::KeySource for NoKeys {
    fn key<'a>(
        &'a self,
        _kid: &'a str,
    ) -> BoxFuture<
        'a,
        Result<Option<(jsonwebtoken::Algorithm, jsonwebtoken::DecodingKey)>, crate::KeySourceDown>,
    > {
        Box::pin(async { Ok(None) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn expect() -> Expect<'static> {
        Expect {
            issuer: "https://idp",
            audience: "api",
            leeway: 0,
            mapping: None,
        }
    }

    fn judge_json(v: Value) -> Result<Principal, TokenError> {
        judge(v.as_object().unwrap(), expect())
    }

    #[test]
    fn only_an_active_bearer_token_for_this_audience_passes() {
        let exp = now_secs() + 60;
        let ok =
            json!({"active": true, "aud": "api", "client_id": "svc", "exp": exp, "scope": "a b"});
        let p = judge_json(ok.clone()).unwrap();
        assert_eq!(p.subject(), "svc");
        assert_eq!(p.scopes(), ["a", "b"]);
        let with = |k: &str, v: Value| {
            let mut o = ok.clone();
            o[k] = v;
            judge_json(o).map(|_| ()).unwrap_err()
        };
        assert_eq!(with("active", json!(false)), TokenError::Inactive);
        assert_eq!(with("active", json!("true")), TokenError::Inactive);
        assert_eq!(with("aud", json!("other")), TokenError::Audience);
        assert_eq!(with("aud", json!(["x", "y"])), TokenError::Audience);
        assert_eq!(with("iss", json!("https://evil")), TokenError::Issuer);
        assert_eq!(with("exp", json!(now_secs() - 5)), TokenError::Expired);
        assert_eq!(with("exp", json!("soon")), TokenError::Expired);
        assert_eq!(
            with("nbf", json!(now_secs() + 600)),
            TokenError::NotYetValid
        );
        assert_eq!(with("token_type", json!("refresh_token")), TokenError::Type);
        assert_eq!(with("client_id", json!("")), TokenError::Subject);
        assert_eq!(with("scope", json!(5)), TokenError::Malformed);
        assert_eq!(with("jti", json!(5)), TokenError::Malformed);
        assert!(judge_json(json!({"aud": "api", "sub": "x"})).is_err());
        let mut no_aud = ok.clone();
        no_aud.as_object_mut().unwrap().remove("aud");
        assert_eq!(judge_json(no_aud).unwrap_err(), TokenError::Audience);
        // A list naming the audience, `sub` before `client_id`.
        let p = judge_json(json!({"active": true, "aud": ["x", "api"], "sub": "alice", "client_id": "svc", "token_type": "Bearer"})).unwrap();
        assert_eq!(p.subject(), "alice");
    }

    #[test]
    fn client_credentials_are_form_encoded() {
        assert_eq!(form_encode("a b:c%/é"), "a+b%3Ac%25%2F%C3%A9");
        assert_eq!(form_encode("Az09-._*"), "Az09-._*");
    }
}
