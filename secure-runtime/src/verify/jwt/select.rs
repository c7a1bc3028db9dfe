//! Which configuration verifies a token: the token's `iss` among several
//! issuers ([`JwtConfig::also_accept`]), and opaque tokens for introspection.

use super::{JwtConfig, JwtVerifier, VerifyError};
use crate::ConfigError;
use crate::{
    model::{answer::BoxFuture, principal::Principal},
    verify::claims::ClaimMapping,
};

/// Verifies tokens that are not JWTs (RFC 7662 introspection, feature
/// `jwks`), for the issuer, audience and claim mapping of its [`JwtConfig`].
pub(crate) trait OpaqueTokens: Send + Sync + 'static {
    fn verify<'a>(
        &'a self,
        token: &'a str,
        expect: Expect<'a>,
    ) -> BoxFuture<'a, Result<Principal, VerifyError>>;
}

/// What an opaque token must match, from the verifier's configuration.
#[derive(Clone, Copy)]
// Read by the introspection verifier, which needs the `jwks` feature.
#[cfg_attr(not(feature = "jwks"), allow(dead_code))]
pub(crate) struct Expect<'a> {
    pub(crate) issuer: &'a str,
    pub(crate) audience: &'a str,
    pub(crate) leeway: u64,
    pub(crate) mapping: Option<&'a ClaimMapping>,
}

/// Whether `token` has the shape of a JWS in compact form (three segments):
/// only other tokens are sent to introspection.
pub(super) fn looks_like_jwt(token: &str) -> bool {
    token.bytes().filter(|b| *b == b'.').count() == 2
}

/// The `iss` of a token, read without verifying anything: only to choose
/// which configuration verifies it.
fn unverified_issuer(token: &str) -> Option<String> {
    use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
    #[derive(serde::Deserialize)]
    struct Iss {
        iss: String,
    }
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    serde_json::from_slice::<Iss>(&bytes).ok().map(|i| i.iss)
}

impl JwtConfig {
    /// The other issuers' verifiers, flattened (their own `also` included).
    pub(super) fn build_others(&mut self) -> Result<Vec<JwtVerifier>, ConfigError> {
        let mut others = Vec::new();
        let mut pending = std::mem::take(&mut self.also);
        while let Some(mut other) = pending.pop() {
            pending.append(&mut other.also);
            others.push(other.build()?);
        }
        Ok(others)
    }

    /// The issuer: configured, or the one the key source was discovered
    /// for; both, they must be identical.
    pub(super) fn resolve_issuer(&self) -> Result<String, ConfigError> {
        let source_issuer = self.source.as_ref().and_then(|s| s.issuer());
        match (&self.issuer, source_issuer) {
            (Some(mine), Some(found)) if mine != found => Err(ConfigError::new(format!(
                "the JWT issuer {mine:?} is not the issuer {found:?} whose discovery \
                 document named the key source: they must be identical"
            ))),
            (Some(mine), _) => Ok(mine.clone()),
            (None, Some(found)) => Ok(found.to_owned()),
            (None, None) => Err(ConfigError::new("JWT issuer (iss) is not configured")),
        }
    }

    /// Also accepts the tokens of another issuer, verified entirely by
    /// `other` — its keys, audience, claim mapping, `typ`, `iat` rule. Own
    /// tokens beside an identity provider's (during a migration), or several
    /// providers. The token's `iss` selects the configuration, and that
    /// configuration then checks everything, `iss` included: a token naming
    /// one issuer is never verified with another one's keys. A token naming
    /// none of them is refused. Opaque tokens go to the first configuration
    /// with introspection. Tokens are issued (if at all) by `self` only.
    ///
    /// ```
    /// use secure_runtime::{ClaimMapping, JwksClient, JwtConfig, Security};
    /// let own = JwtConfig::hs256("0123456789abcdef0123456789abcdef").unwrap()
    ///     .issuer("notes-demo")
    ///     .audience("notes-api");
    /// let keycloak = JwtConfig::key_source(JwksClient::new("https://sso.example.com/realms/acme/protocol/openid-connect/certs").unwrap())
    ///     .issuer("https://sso.example.com/realms/acme")
    ///     .audience("notes-api")
    ///     .claims(ClaimMapping::keycloak("notes-api"))
    ///     .accept_typ(["at+jwt", "JWT"]);
    /// let security = Security::builder().jwt(own.also_accept(keycloak)).build().unwrap();
    /// # let _ = security;
    /// ```
    pub fn also_accept(mut self, other: JwtConfig) -> Self {
        self.also.push(other);
        self
    }
}

impl JwtVerifier {
    /// The verifier for this token: `self` alone, or by the token's `iss`
    /// among `self` and the other issuers' (an opaque token: the first with
    /// introspection). `None`: no configuration for its issuer.
    pub(super) fn select(&self, token: &str) -> Option<&JwtVerifier> {
        if self.0.others.is_empty() {
            return Some(self);
        }
        let all = || std::iter::once(self).chain(self.0.others.iter());
        if !looks_like_jwt(token) {
            return all().find(|v| v.0.config.opaque.is_some()).or(Some(self));
        }
        let iss = unverified_issuer(token)?;
        all().find(|v| v.0.issuer == iss)
    }
}

/// One configuration per issuer: otherwise a token's `iss` could not say
/// which one verifies it.
pub(super) fn check_issuers(primary: &str, others: &[JwtVerifier]) -> Result<(), ConfigError> {
    let mut issuers = vec![primary];
    for o in others {
        if issuers.contains(&o.0.issuer.as_str()) {
            return Err(ConfigError::new(format!(
                "two JWT configurations for the issuer {:?}: a token's iss must select \
                 exactly one",
                o.0.issuer
            )));
        }
        issuers.push(&o.0.issuer);
    }
    Ok(())
}
