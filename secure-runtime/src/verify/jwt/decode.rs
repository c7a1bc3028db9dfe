//! Decoding a JWT with the key its `kid` chose: signature, registered
//! claims, header (`crit`, `typ`), `iat`, then the claims.

use jsonwebtoken::{DecodingKey, Header};
use serde_json::{Map, Value};

use super::{
    check_iat, media_type, principal_from_claims, principal_from_mapped, Algorithm, JwtVerifier,
    TokenError, VerifiedClaims,
};
use crate::model::principal::Principal;

impl JwtVerifier {
    pub(super) fn decode(
        &self,
        token: &str,
        alg: Algorithm,
        key: &DecodingKey,
    ) -> Result<Principal, TokenError> {
        let cfg = &self.0.config;
        match &cfg.claims {
            None => {
                let data = self.decode_as::<VerifiedClaims>(token, alg, key)?;
                self.check_header(&data.header)?;
                check_iat(data.claims.iat.as_ref(), cfg.require_iat, cfg.leeway)?;
                principal_from_claims(data.claims, token)
            }
            Some(mapping) => {
                let data = self.decode_as::<Map<String, Value>>(token, alg, key)?;
                self.check_header(&data.header)?;
                check_iat(data.claims.get("iat"), cfg.require_iat, cfg.leeway)?;
                principal_from_mapped(&data.claims, mapping, token)
            }
        }
    }

    /// Signature, algorithm, `exp`/`nbf`/`iss`/`aud`/`sub`.
    fn decode_as<T: serde::de::DeserializeOwned>(
        &self,
        token: &str,
        alg: Algorithm,
        key: &DecodingKey,
    ) -> Result<jsonwebtoken::TokenData<T>, TokenError> {
        use jsonwebtoken::errors::ErrorKind as K;
        let validation = self.validation(alg).ok_or(TokenError::Algorithm)?;
        jsonwebtoken::decode::<T>(token, key, validation).map_err(|e| match e.kind() {
            K::InvalidSignature => TokenError::Signature,
            K::InvalidAlgorithm | K::InvalidAlgorithmName | K::InvalidKeyFormat => {
                TokenError::Algorithm
            }
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
        })
    }

    /// `crit` (no extension is understood: any is refused, RFC 7515
    /// §4.1.11) and `typ`.
    fn check_header(&self, header: &Header) -> Result<(), TokenError> {
        if header.crit.is_some() {
            return Err(TokenError::Critical);
        }
        if let Some(accepted) = &self.0.config.typ {
            let typ = header.typ.as_deref().map(media_type);
            if !typ.is_some_and(|t| {
                accepted
                    .iter()
                    .any(|a| media_type(a).eq_ignore_ascii_case(t))
            }) {
                return Err(TokenError::Type);
            }
        }
        Ok(())
    }
}
