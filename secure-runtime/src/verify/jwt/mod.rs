//! JWT bearer verification (RFC 7519, RFC 9068 access-token profile), access
//! token issuance, key rotation by `kid`, and JWKS.

use std::{
    fmt,
    sync::Arc,
    time::{SystemTime, UNIX_EPOCH},
};

mod claims;
mod decode;
mod mint;
mod options;
mod select;

pub use jsonwebtoken::Algorithm;
pub(crate) use mint::AccessClaims;
pub(crate) use select::{Expect, OpaqueTokens};

use claims::{check_iat, media_type, principal_from_claims, principal_from_mapped, VerifiedClaims};
use jsonwebtoken::{jwk::Jwk, DecodingKey, EncodingKey, Header, Validation};
use select::looks_like_jwt;
use serde_json::Value;

use crate::{
    model::{
        answer::{Answer, BoxFuture},
        principal::Principal,
    },
    verify::claims::ClaimMapping,
    ConfigError,
};

mod error;
pub use error::TokenError;

/// The largest clock-skew leeway accepted for `exp`/`nbf`.
pub const MAX_LEEWAY_SECS: u64 = 60;

/// A source of verification keys by `kid`, for tokens of an external identity
/// provider (resource-server mode). `JwksClient` (feature `jwks`) implements it.
pub trait KeySource: Send + Sync + 'static {
    /// The key with this `kid`, bound to its algorithm. `Ok(None)`: unknown
    /// (after at most one rate-limited refresh). `Err`: no usable key set at
    /// all (the source is down and nothing is cached), refused with 503.
    fn key<'a>(
        &'a self,
        kid: &'a str,
    ) -> BoxFuture<'a, Result<Option<(Algorithm, DecodingKey)>, KeySourceDown>>;

    /// The issuer whose keys these are, when the source knows it (a
    /// discovered JWKS): [`JwtConfig`] then takes it as its issuer, and
    /// refuses to build with another one.
    fn issuer(&self) -> Option<&str> {
        None
    }
}

/// A [`KeySource`] has no usable key set (fail closed: 503).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeySourceDown;

impl fmt::Display for KeySourceDown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the key source has no usable key set")
    }
}

impl std::error::Error for KeySourceDown {}

#[derive(Clone)]
struct VerifyKey {
    kid: Option<String>,
    alg: Algorithm,
    key: DecodingKey,
    /// The public JWK, for [`crate::Security::jwks`] (asymmetric keys only).
    jwk: Option<Jwk>,
}

#[derive(Clone)]
struct SigningKey {
    kid: Option<String>,
    alg: Algorithm,
    key: EncodingKey,
}

/// Configuration of JWT verification and, with a signing key, issuance.
///
/// Defaults: the algorithm pinned per key (the token's own `alg` is never
/// trusted), `iss` and `aud` required and checked, `exp` and `sub` required,
/// `nbf` honoured, `iat` required and not in the future (RFC 9068), leeway
/// 30 s (at most 60), header `typ` = `at+jwt` required, any `crit` header
/// refused (no extension is understood, RFC 7515 §4.1.11), roles, permissions
/// and scopes read from `roles`, `permissions` and `scope`
/// ([`claims`](Self::claims) maps others), access tokens valid for 15
/// minutes.
///
/// ```
/// use secure_runtime::JwtConfig;
/// let jwt = JwtConfig::hs256("0123456789abcdef0123456789abcdef")
///     .unwrap()
///     .issuer("notes-demo")
///     .audience("notes-api")
///     .leeway_secs(30);
/// # let _ = jwt;
/// // A secret under 32 bytes is refused:
/// assert!(JwtConfig::hs256("short").is_err());
/// ```
#[derive(Clone)]
pub struct JwtConfig {
    keys: Vec<VerifyKey>,
    signing: Option<SigningKey>,
    source: Option<Arc<dyn KeySource>>,
    /// Tokens that are not JWTs go here (RFC 7662 introspection).
    pub(crate) opaque: Option<Arc<dyn OpaqueTokens>>,
    issuer: Option<String>,
    audience: Option<String>,
    leeway: u64,
    typ: Option<Vec<String>>,
    access_ttl_secs: u64,
    error: Option<ConfigError>,
    /// `None`: the standard claims, read by the fast typed path.
    claims: Option<Arc<ClaimMapping>>,
    require_iat: bool,
    /// Configurations for other issuers ([`JwtConfig::also_accept`]).
    also: Vec<JwtConfig>,
}

impl fmt::Debug for JwtConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtConfig")
            .field(
                "algorithms",
                &self.keys.iter().map(|k| k.alg).collect::<Vec<_>>(),
            )
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("leeway", &self.leeway)
            .finish_non_exhaustive()
    }
}

fn pem_error(what: &str) -> ConfigError {
    ConfigError::new(format!("{what} is not a valid PEM key for its algorithm"))
}

fn decoding_from_pem(alg: Algorithm, pem: &[u8]) -> Result<DecodingKey, ConfigError> {
    use Algorithm::*;
    match alg {
        RS256 | RS384 | RS512 | PS256 | PS384 | PS512 => DecodingKey::from_rsa_pem(pem),
        ES256 | ES384 => DecodingKey::from_ec_pem(pem),
        EdDSA => DecodingKey::from_ed_pem(pem),
        HS256 | HS384 | HS512 => {
            return Err(ConfigError::new(
                "an HMAC algorithm takes a secret, not a PEM key: use JwtConfig::hs256",
            ))
        }
        _ => return Err(ConfigError::new("unsupported JWT algorithm")),
    }
    .map_err(|_| pem_error("the public key"))
}

fn encoding_from_pem(alg: Algorithm, pem: &[u8]) -> Result<EncodingKey, ConfigError> {
    use Algorithm::*;
    match alg {
        RS256 | RS384 | RS512 | PS256 | PS384 | PS512 => EncodingKey::from_rsa_pem(pem),
        ES256 | ES384 => EncodingKey::from_ec_pem(pem),
        EdDSA => EncodingKey::from_ed_pem(pem),
        HS256 | HS384 | HS512 => {
            return Err(ConfigError::new(
                "an HMAC algorithm takes a secret, not a PEM key",
            ))
        }
        _ => return Err(ConfigError::new("unsupported JWT algorithm")),
    }
    .map_err(|_| pem_error("the private key"))
}

impl JwtConfig {
    fn base() -> JwtConfig {
        JwtConfig {
            keys: Vec::new(),
            signing: None,
            source: None,
            opaque: None,
            issuer: None,
            audience: None,
            leeway: 30,
            typ: Some(vec!["at+jwt".to_owned(), "application/at+jwt".to_owned()]),
            access_ttl_secs: 900,
            error: None,
            claims: None,
            require_iat: true,
            also: Vec::new(),
        }
    }

    /// HS256 with a shared secret of at least 32 bytes (RFC 7518 §3.2); the
    /// secret both signs and verifies.
    pub fn hs256(secret: impl AsRef<[u8]>) -> Result<JwtConfig, ConfigError> {
        let secret = secret.as_ref();
        if secret.len() < 32 {
            return Err(ConfigError::new(
                "the HS256 secret must be at least 32 bytes",
            ));
        }
        let mut c = Self::base();
        c.keys.push(VerifyKey {
            kid: None,
            alg: Algorithm::HS256,
            key: DecodingKey::from_secret(secret),
            jwk: None,
        });
        c.signing = Some(SigningKey {
            kid: None,
            alg: Algorithm::HS256,
            key: EncodingKey::from_secret(secret),
        });
        Ok(c)
    }

    /// HS256 with a fresh random 32-byte secret, valid for this process only
    /// (development: tokens die with the process; log a warning when using it).
    pub fn hs256_random() -> Result<JwtConfig, ConfigError> {
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret)
            .map_err(|_| ConfigError::new("the OS random source failed"))?;
        Self::hs256(secret)
    }

    /// An asymmetric key pair from PEM files (RS256/384/512, PS256/384/512,
    /// ES256/384, EdDSA): the service signs with the private key and verifies
    /// with the public one, which it can publish with [`crate::Security::jwks`].
    /// The key is bound to `alg`: a token naming any other algorithm — an
    /// HS256 token "signed" with the public key, say — is refused.
    ///
    /// ```
    /// use secure_runtime::{Algorithm, JwtConfig};
    /// let err = JwtConfig::key_pair_pem(Algorithm::ES256, b"not a key", b"nor this").unwrap_err();
    /// assert!(err.to_string().contains("not a valid PEM key"));
    /// ```
    pub fn key_pair_pem(
        alg: Algorithm,
        private_pem: &[u8],
        public_pem: &[u8],
    ) -> Result<JwtConfig, ConfigError> {
        let signing = encoding_from_pem(alg, private_pem)?;
        let mut c = Self::verify_pem(alg, public_pem)?;
        // The two halves must belong together, or the service would issue
        // tokens it refuses and publish a key that is not its own.
        let probe = jsonwebtoken::encode(&Header::new(alg), &serde_json::json!({}), &signing)
            .map_err(|_| pem_error("the private key"))?;
        let mut v = Validation::new(alg);
        v.required_spec_claims.clear();
        v.validate_exp = false;
        v.validate_aud = false;
        let matches = c
            .keys
            .first()
            .is_some_and(|k| jsonwebtoken::decode::<Value>(&probe, &k.key, &v).is_ok());
        if !matches {
            return Err(ConfigError::new(
                "the public key does not belong to the private key",
            ));
        }
        let jwk = Jwk::from_encoding_key(&signing, alg).ok();
        if let Some(k) = c.keys.first_mut() {
            // jsonwebtoken's JWK of an asymmetric key holds only the public
            // parameters (RSA n/e, EC x/y, OKP x).
            k.jwk = jwk;
        }
        c.signing = Some(SigningKey {
            kid: None,
            alg,
            key: signing,
        });
        Ok(c)
    }

    /// Verification only, with a public key from PEM (tokens issued elsewhere).
    pub fn verify_pem(alg: Algorithm, public_pem: &[u8]) -> Result<JwtConfig, ConfigError> {
        let key = decoding_from_pem(alg, public_pem)?;
        let mut c = Self::base();
        c.keys.push(VerifyKey {
            kid: None,
            alg,
            key,
            jwk: None,
        });
        Ok(c)
    }

    /// Resource-server mode: keys come from a [`KeySource`] (a JWKS endpoint)
    /// by the token's `kid`; each key is bound to its JWK's algorithm.
    pub fn key_source(source: impl KeySource) -> JwtConfig {
        let mut c = Self::base();
        c.source = Some(Arc::new(source));
        c
    }

    /// The `kid` of the configured (first) key: written into the header of
    /// issued tokens and published in the JWKS document.
    pub fn key_id(mut self, kid: impl Into<String>) -> Self {
        let kid = kid.into();
        if let Some(k) = self.keys.first_mut() {
            k.kid = Some(kid.clone());
            if let Some(jwk) = &mut k.jwk {
                jwk.common.key_id = Some(kid.clone());
            }
        }
        if let Some(s) = &mut self.signing {
            s.kid = Some(kid);
        }
        self
    }

    /// Accepts tokens of a further public key with its own `kid` (key
    /// rotation: keep the old key until its tokens have expired).
    pub fn add_verification_pem(
        mut self,
        kid: impl Into<String>,
        alg: Algorithm,
        public_pem: &[u8],
    ) -> Self {
        match decoding_from_pem(alg, public_pem) {
            Ok(key) => {
                let kid = kid.into();
                // Published in the JWKS too, so that resource servers verify
                // tokens of the retained key during a rotation.
                let jwk = Jwk::from_decoding_key(&key, Some(alg)).ok().map(|mut j| {
                    j.common.key_id = Some(kid.clone());
                    j
                });
                self.keys.push(VerifyKey {
                    kid: Some(kid),
                    alg,
                    key,
                    jwk,
                });
            }
            Err(e) => self.error = Some(e),
        }
        self
    }

    /// The issuer written to and required in `iss`.
    pub fn issuer(mut self, iss: impl Into<String>) -> Self {
        self.issuer = Some(iss.into());
        self
    }
    /// The audience written to and required in `aud`.
    pub fn audience(mut self, aud: impl Into<String>) -> Self {
        self.audience = Some(aud.into());
        self
    }
    /// Clock-skew leeway for `exp` and `nbf` (at most 60 s; default 30 s).
    pub fn leeway_secs(mut self, secs: u64) -> Self {
        self.leeway = secs;
        self
    }
    /// Lifetime of issued access tokens (default 900 s).
    pub fn access_ttl_secs(mut self, secs: u64) -> Self {
        self.access_ttl_secs = secs;
        self
    }
    /// Accepted header `typ` values (compared case-insensitively), or `None`
    /// to skip the check for tokens of an identity provider that sets none.
    /// Default: `at+jwt` and `application/at+jwt` (RFC 9068).
    pub fn typ<I: IntoIterator<Item = S>, S: Into<String>>(mut self, accepted: Option<I>) -> Self {
        self.typ = accepted.map(|i| i.into_iter().map(Into::into).collect());
        self
    }

    pub(crate) fn build(mut self) -> Result<JwtVerifier, ConfigError> {
        let others = self.build_others()?;
        let primary = self.build_one()?;
        select::check_issuers(&primary.issuer, &others)?;
        Ok(JwtVerifier(Arc::new(VerifierInner { others, ..primary })))
    }

    fn build_one(self) -> Result<VerifierInner, ConfigError> {
        if let Some(e) = self.error.clone() {
            return Err(e);
        }
        let issuer = self.resolve_issuer()?;
        let audience = self
            .audience
            .clone()
            .ok_or_else(|| ConfigError::new("JWT audience (aud) is not configured"))?;
        if self.leeway > MAX_LEEWAY_SECS {
            return Err(ConfigError::new("JWT leeway must be at most 60 seconds"));
        }
        if self.access_ttl_secs == 0 {
            return Err(ConfigError::new(
                "the access token lifetime must be positive",
            ));
        }
        if self.keys.len() > 1 && self.keys.iter().any(|k| k.kid.is_none()) {
            return Err(ConfigError::new(
                "with several verification keys, every key needs a kid",
            ));
        }
        let validations = [
            Algorithm::HS256,
            Algorithm::HS384,
            Algorithm::HS512,
            Algorithm::RS256,
            Algorithm::RS384,
            Algorithm::RS512,
            Algorithm::PS256,
            Algorithm::PS384,
            Algorithm::PS512,
            Algorithm::ES256,
            Algorithm::ES384,
            Algorithm::EdDSA,
        ]
        .into_iter()
        .map(|alg| {
            let mut v = Validation::new(alg);
            v.set_issuer(&[&issuer]);
            v.set_audience(&[&audience]);
            v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
            v.validate_nbf = true;
            v.leeway = self.leeway;
            (alg, v)
        })
        .collect();
        Ok(VerifierInner {
            config: self,
            validations,
            issuer,
            audience,
            others: Vec::new(),
        })
    }
}

/// A built verifier: configuration plus one prepared `Validation` per algorithm.
#[derive(Clone)]
pub(crate) struct JwtVerifier(Arc<VerifierInner>);

struct VerifierInner {
    config: JwtConfig,
    validations: Vec<(Algorithm, Validation)>,
    issuer: String,
    audience: String,
    /// The verifiers of other issuers ([`JwtConfig::also_accept`]).
    others: Vec<JwtVerifier>,
}

/// Where a bearer's verification failed: the token (401) or the key source (503).
pub(crate) enum VerifyError {
    Token(TokenError),
    SourceDown,
}

impl From<TokenError> for VerifyError {
    fn from(e: TokenError) -> Self {
        VerifyError::Token(e)
    }
}

impl JwtVerifier {
    fn validation(&self, alg: Algorithm) -> Option<&Validation> {
        self.0
            .validations
            .iter()
            .find(|(a, _)| *a == alg)
            .map(|(_, v)| v)
    }

    /// Verifies a token: with the static keys at once, or by asking the key
    /// source for a `kid` only it knows.
    pub(crate) fn verify<'a>(
        &'a self,
        token: &'a str,
    ) -> Answer<'a, Result<Principal, VerifyError>> {
        match self.verify_now(token) {
            Some(done) => Answer::Ready(done),
            None => Answer::later(self.verify_with_source(token)),
        }
    }

    /// Verifies a token whose `kid` only the key source knows (the tokens
    /// [`verify_now`](Self::verify_now) leaves): looks the `kid` up (may
    /// fetch); only that key's algorithm is accepted.
    pub(crate) async fn verify_with_source(&self, token: &str) -> Result<Principal, VerifyError> {
        match self.select(token) {
            Some(v) => v.verify_with_source_one(token).await,
            None => Err(TokenError::Issuer.into()),
        }
    }

    async fn verify_with_source_one(&self, token: &str) -> Result<Principal, VerifyError> {
        if let Some(opaque) = &self.0.config.opaque {
            if !looks_like_jwt(token) {
                let cfg = &self.0.config;
                let expect = Expect {
                    issuer: &self.0.issuer,
                    audience: &self.0.audience,
                    leeway: cfg.leeway,
                    mapping: cfg.claims.as_deref(),
                };
                return opaque.verify(token, expect).await;
            }
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        match (&self.0.config.source, header.kid.as_deref()) {
            (Some(source), Some(kid)) => match source.key(kid).await {
                Ok(Some((alg, key))) => Ok(self.decode(token, alg, &key)?),
                Ok(None) => Err(TokenError::UnknownKey.into()),
                Err(KeySourceDown) => Err(VerifyError::SourceDown),
            },
            _ => Err(TokenError::UnknownKey.into()),
        }
    }

    /// Verifies a token with the static keys, without I/O: the key is chosen
    /// by `kid` (or the only key), and only that key's algorithm is accepted.
    /// `None` when the token names a key only the key source can answer
    /// ([`verify_with_source`](Self::verify_with_source)).
    pub(crate) fn verify_now(&self, token: &str) -> Option<Result<Principal, VerifyError>> {
        match self.select(token) {
            Some(v) => v.verify_now_one(token),
            None => Some(Err(TokenError::Issuer.into())),
        }
    }

    fn verify_now_one(&self, token: &str) -> Option<Result<Principal, VerifyError>> {
        let cfg = &self.0.config;
        if cfg.opaque.is_some() && !looks_like_jwt(token) {
            return None;
        }
        // Fast path: one static key and no key source — no separate header parse.
        if cfg.source.is_none() && cfg.keys.len() == 1 {
            if let Some(k) = cfg.keys.first() {
                if k.kid.is_none() {
                    return Some(self.decode(token, k.alg, &k.key).map_err(Into::into));
                }
            }
        }
        let header = match jsonwebtoken::decode_header(token) {
            Ok(h) => h,
            Err(_) => return Some(Err(TokenError::Malformed.into())),
        };
        let kid = header.kid.as_deref();
        if let Some(k) = cfg
            .keys
            .iter()
            .find(|k| kid.is_some() && k.kid.as_deref() == kid)
        {
            return Some(self.decode(token, k.alg, &k.key).map_err(Into::into));
        }
        if let [k] = cfg.keys.as_slice() {
            if kid.is_none() {
                return Some(self.decode(token, k.alg, &k.key).map_err(Into::into));
            }
        }
        match (&cfg.source, kid) {
            (Some(_), Some(_)) => None,
            _ => Some(Err(TokenError::UnknownKey.into())),
        }
    }
}

pub(crate) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
