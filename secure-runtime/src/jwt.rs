//! JWT bearer verification (RFC 7519, RFC 9068 access-token profile).

use std::{
    fmt,
    time::{SystemTime, UNIX_EPOCH},
};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{Map, Value};

use crate::{
    principal::{CredentialKind, Principal},
    ConfigError,
};

/// The largest clock-skew leeway accepted for `exp`/`nbf`.
pub const MAX_LEEWAY_SECS: u64 = 60;

/// Why a token was refused; for logs and audit events only, never sent to the
/// client (every variant answers the same 401 `invalid_token`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    /// Not a JWT, bad base64/JSON, or a claim of the wrong type.
    Malformed,
    /// The header's `alg` is not the configured one.
    Algorithm,
    /// The signature does not verify.
    Signature,
    /// `exp` is in the past (beyond the leeway) or missing.
    Expired,
    /// `nbf` is in the future.
    NotYetValid,
    /// `iss` missing or not the configured issuer.
    Issuer,
    /// `aud` missing or not the configured audience.
    Audience,
    /// `sub` missing.
    Subject,
    /// Header `typ` is not the required one (`at+jwt`).
    Type,
    /// The token's `jti` was revoked.
    Revoked,
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            TokenError::Malformed => "malformed token",
            TokenError::Algorithm => "algorithm not allowed",
            TokenError::Signature => "bad signature",
            TokenError::Expired => "expired or missing exp",
            TokenError::NotYetValid => "not yet valid",
            TokenError::Issuer => "wrong or missing issuer",
            TokenError::Audience => "wrong or missing audience",
            TokenError::Subject => "missing subject",
            TokenError::Type => "wrong typ header",
            TokenError::Revoked => "revoked",
        };
        f.write_str(s)
    }
}

/// Configuration of JWT verification (and, with a signing key, issuance).
///
/// HS256 by default, the algorithm pinned (the token's own `alg` is never
/// trusted), `iss` and `aud` required and checked, `exp` required, `nbf`
/// honoured, leeway at most 60 s, header `typ` = `at+jwt` required.
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
    alg: Algorithm,
    decoding: DecodingKey,
    #[cfg_attr(not(feature = "testing"), allow(dead_code))]
    encoding: Option<EncodingKey>,
    issuer: Option<String>,
    audience: Option<String>,
    leeway: u64,
    typ: Option<Vec<String>>,
}

impl fmt::Debug for JwtConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtConfig")
            .field("alg", &self.alg)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("leeway", &self.leeway)
            .finish_non_exhaustive()
    }
}

impl JwtConfig {
    /// HS256 with a shared secret of at least 32 bytes (RFC 7518 §3.2).
    pub fn hs256(secret: impl AsRef<[u8]>) -> Result<JwtConfig, ConfigError> {
        let secret = secret.as_ref();
        if secret.len() < 32 {
            return Err(ConfigError::new(
                "the HS256 secret must be at least 32 bytes",
            ));
        }
        Ok(JwtConfig {
            alg: Algorithm::HS256,
            decoding: DecodingKey::from_secret(secret),
            encoding: Some(EncodingKey::from_secret(secret)),
            issuer: None,
            audience: None,
            leeway: 30,
            typ: Some(vec!["at+jwt".to_owned(), "application/at+jwt".to_owned()]),
        })
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
    /// Accepted header `typ` values (compared case-insensitively), or `None`
    /// to skip the check for tokens of an identity provider that sets none.
    /// Default: `at+jwt` and `application/at+jwt` (RFC 9068).
    pub fn typ<I: IntoIterator<Item = S>, S: Into<String>>(mut self, accepted: Option<I>) -> Self {
        self.typ = accepted.map(|i| i.into_iter().map(Into::into).collect());
        self
    }

    pub(crate) fn build(self) -> Result<JwtVerifier, ConfigError> {
        let issuer = self
            .issuer
            .clone()
            .ok_or_else(|| ConfigError::new("JWT issuer (iss) is not configured"))?;
        let audience = self
            .audience
            .clone()
            .ok_or_else(|| ConfigError::new("JWT audience (aud) is not configured"))?;
        if self.leeway > MAX_LEEWAY_SECS {
            return Err(ConfigError::new("JWT leeway must be at most 60 seconds"));
        }
        let mut validation = Validation::new(self.alg);
        validation.set_issuer(&[&issuer]);
        validation.set_audience(&[&audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = self.leeway;
        Ok(JwtVerifier {
            config: self,
            validation,
            issuer,
            audience,
        })
    }
}

/// A built verifier: configuration plus the prepared `Validation`.
#[derive(Clone)]
pub(crate) struct JwtVerifier {
    config: JwtConfig,
    validation: Validation,
    #[cfg_attr(not(feature = "testing"), allow(dead_code))]
    issuer: String,
    #[cfg_attr(not(feature = "testing"), allow(dead_code))]
    audience: String,
}

impl JwtVerifier {
    pub(crate) fn verify(&self, token: &str) -> Result<Principal, TokenError> {
        use jsonwebtoken::errors::ErrorKind as K;
        let data = jsonwebtoken::decode::<Map<String, Value>>(
            token,
            &self.config.decoding,
            &self.validation,
        )
        .map_err(|e| match e.kind() {
            K::InvalidSignature => TokenError::Signature,
            K::InvalidAlgorithm | K::InvalidAlgorithmName => TokenError::Algorithm,
            K::ExpiredSignature => TokenError::Expired,
            K::ImmatureSignature => TokenError::NotYetValid,
            K::InvalidIssuer => TokenError::Issuer,
            K::InvalidAudience => TokenError::Audience,
            K::MissingRequiredClaim(c) => match c.as_str() {
                "exp" => TokenError::Expired,
                "iss" => TokenError::Issuer,
                "aud" => TokenError::Audience,
                "sub" => TokenError::Subject,
                _ => TokenError::Malformed,
            },
            _ => TokenError::Malformed,
        })?;
        if let Some(accepted) = &self.config.typ {
            let typ = data.header.typ.as_deref().unwrap_or("");
            if !accepted.iter().any(|a| a.eq_ignore_ascii_case(typ)) {
                return Err(TokenError::Type);
            }
        }
        principal_from_claims(data.claims)
    }

    /// Signs an access token; `None` when only a verification key is configured.
    #[cfg_attr(not(feature = "testing"), allow(dead_code))]
    pub(crate) fn mint(&self, claims: &AccessClaims<'_>) -> Option<Result<String, ConfigError>> {
        let key = self.config.encoding.as_ref()?;
        let mut header = Header::new(self.config.alg);
        header.typ = Some("at+jwt".to_owned());
        let now = now_secs();
        let mut body = Map::new();
        body.insert("iss".into(), self.issuer.clone().into());
        body.insert("sub".into(), claims.subject.into());
        body.insert("aud".into(), self.audience.clone().into());
        body.insert("iat".into(), (now as i64 + claims.iat_offset).into());
        body.insert("exp".into(), (now as i64 + claims.exp_offset).into());
        if let Some(nbf) = claims.nbf_offset {
            body.insert("nbf".into(), (now as i64 + nbf).into());
        }
        body.insert("jti".into(), claims.jti.to_owned().into());
        body.insert("scope".into(), claims.scopes.join(" ").into());
        body.insert(
            "roles".into(),
            claims
                .roles
                .iter()
                .map(|r| Value::from(*r))
                .collect::<Vec<_>>()
                .into(),
        );
        if !claims.permissions.is_empty() {
            body.insert(
                "permissions".into(),
                claims
                    .permissions
                    .iter()
                    .map(|r| Value::from(*r))
                    .collect::<Vec<_>>()
                    .into(),
            );
        }
        Some(
            jsonwebtoken::encode(&header, &body, key)
                .map_err(|_| ConfigError::new("the signing key does not match the algorithm")),
        )
    }
}

/// What [`JwtVerifier::mint`] writes; offsets are seconds from now.
#[cfg_attr(not(feature = "testing"), allow(dead_code))]
pub(crate) struct AccessClaims<'a> {
    pub subject: &'a str,
    pub scopes: &'a [&'a str],
    pub roles: &'a [&'a str],
    pub permissions: &'a [&'a str],
    pub jti: &'a str,
    pub iat_offset: i64,
    pub exp_offset: i64,
    pub nbf_offset: Option<i64>,
}

#[cfg_attr(not(feature = "testing"), allow(dead_code))]
pub(crate) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A claim holding names: a JSON array of strings or a space-separated string.
fn names(v: Option<&Value>) -> Result<Vec<String>, TokenError> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(s
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| i.as_str().map(str::to_owned).ok_or(TokenError::Malformed))
            .collect(),
        Some(_) => Err(TokenError::Malformed),
    }
}

fn principal_from_claims(claims: Map<String, Value>) -> Result<Principal, TokenError> {
    let subject = match claims.get("sub") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => return Err(TokenError::Subject),
    };
    // RFC 9068: `scope` is a space-separated string.
    let scopes = match claims.get("scope") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => s
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        Some(_) => return Err(TokenError::Malformed),
    };
    let roles = names(claims.get("roles"))?;
    let permissions = names(claims.get("permissions"))?;
    let jti = match claims.get("jti") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(TokenError::Malformed),
    };
    let exp = claims.get("exp").and_then(Value::as_u64);
    Ok(Principal::builder(CredentialKind::Bearer, subject)
        .scopes(scopes)
        .roles(roles)
        .permissions(permissions)
        .token(jti, exp)
        .claims(claims)
        .build())
}
