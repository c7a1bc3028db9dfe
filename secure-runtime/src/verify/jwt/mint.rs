//! Access-token issuance (RFC 9068) and the published JWKS.

use jsonwebtoken::{jwk::JwkSet, Header};
use serde_json::{Map, Value};

use super::{now_secs, JwtVerifier};
use crate::ConfigError;

impl JwtVerifier {
    pub(crate) fn access_ttl_secs(&self) -> u64 {
        self.0.config.access_ttl_secs
    }

    pub(crate) fn can_sign(&self) -> bool {
        self.0.config.signing.is_some()
    }

    /// The public keys as a JWKS document (asymmetric keys only).
    pub(crate) fn jwks(&self) -> JwkSet {
        JwkSet {
            keys: self
                .0
                .config
                .keys
                .iter()
                .filter_map(|k| k.jwk.clone())
                .collect(),
        }
    }

    /// Signs an access token; `None` when only a verification key is configured.
    pub(crate) fn mint(&self, claims: &AccessClaims<'_>) -> Option<Result<String, ConfigError>> {
        let signing = self.0.config.signing.as_ref()?;
        let mut header = Header::new(signing.alg);
        header.typ = Some("at+jwt".to_owned());
        header.kid = signing.kid.clone();
        let now = now_secs() as i64;
        let mut body = Map::new();
        body.insert("iss".into(), self.0.issuer.clone().into());
        body.insert("sub".into(), claims.subject.into());
        body.insert("aud".into(), self.0.audience.clone().into());
        body.insert("iat".into(), (now + claims.iat_offset).into());
        body.insert("exp".into(), (now + claims.exp_offset).into());
        if let Some(nbf) = claims.nbf_offset {
            body.insert("nbf".into(), (now + nbf).into());
        }
        body.insert("jti".into(), claims.jti.to_owned().into());
        if let Some(sid) = claims.session_id {
            body.insert("sid".into(), sid.to_owned().into());
        }
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
            jsonwebtoken::encode(&header, &body, &signing.key)
                .map_err(|_| ConfigError::new("the signing key does not match its algorithm")),
        )
    }
}

/// What [`JwtVerifier::mint`] writes; offsets are seconds from now.
pub(crate) struct AccessClaims<'a> {
    pub subject: &'a str,
    pub scopes: &'a [&'a str],
    pub roles: &'a [&'a str],
    pub permissions: &'a [&'a str],
    pub jti: &'a str,
    pub session_id: Option<&'a str>,
    pub iat_offset: i64,
    pub exp_offset: i64,
    pub nbf_offset: Option<i64>,
}
