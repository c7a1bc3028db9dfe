//! The claims a verified JWT yields: the typed fast path of the standard
//! claims, the [`ClaimMapping`] path, and the `typ` and `iat` rules.

use serde_json::{Map, Value};

use super::{now_secs, TokenError};
use crate::{
    model::principal::{CredentialKind, Principal},
    verify::claims::ClaimMapping,
};

/// A `typ` value without its optional `application/` prefix (RFC 7515 §4.1.9).
pub(super) fn media_type(typ: &str) -> &str {
    match typ.get(..12) {
        Some(p) if p.eq_ignore_ascii_case("application/") => &typ[12..],
        _ => typ,
    }
}

/// `iat`: a number not later than now plus the leeway; required unless
/// configured off (RFC 9068 §2.2).
pub(super) fn check_iat(
    iat: Option<&Value>,
    required: bool,
    leeway: u64,
) -> Result<(), TokenError> {
    match iat {
        None | Some(Value::Null) if !required => Ok(()),
        Some(Value::Number(n)) => match n.as_f64() {
            Some(t) if t <= (now_secs() + leeway) as f64 => Ok(()),
            _ => Err(TokenError::IssuedAt),
        },
        _ => Err(TokenError::IssuedAt),
    }
}

/// A claim holding names: a JSON array of strings or a space-separated string.
#[derive(Default)]
struct Names(Vec<String>);

impl<'de> serde::Deserialize<'de> for Names {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // A visitor rather than an untagged enum: that one buffers the value
        // and builds (then drops) a type error for every list it meets.
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Names;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a space-separated string or a list of strings")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Names, E> {
                Ok(Names(
                    s.split(' ')
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect(),
                ))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Names, A::Error> {
                let mut v = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(32));
                while let Some(name) = seq.next_element::<String>()? {
                    v.push(name);
                }
                Ok(Names(v))
            }
            fn visit_none<E: serde::de::Error>(self) -> Result<Names, E> {
                Ok(Names(Vec::new()))
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<Names, E> {
                Ok(Names(Vec::new()))
            }
        }
        d.deserialize_any(Visit)
    }
}

/// Only the claims authorization reads; any other claim is skipped here and
/// parsed on demand by [`Principal::claims`]. A claim of the wrong type fails
/// the whole token.
#[derive(serde::Deserialize)]
pub(super) struct VerifiedClaims {
    #[serde(default)]
    sub: Option<Value>,
    /// RFC 9068: a space-separated string.
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    roles: Names,
    #[serde(default)]
    permissions: Names,
    #[serde(default)]
    jti: Option<String>,
    #[serde(default)]
    exp: Option<Value>,
    #[serde(default)]
    pub(super) iat: Option<Value>,
    /// The session (refresh family), for session-wide revocation.
    #[serde(default)]
    sid: Option<Value>,
}

pub(super) fn principal_from_claims(
    claims: VerifiedClaims,
    token: &str,
) -> Result<Principal, TokenError> {
    let subject = match claims.sub {
        Some(Value::String(s)) if !s.is_empty() => s,
        _ => return Err(TokenError::Subject),
    };
    let scopes: Vec<String> = claims
        .scope
        .as_deref()
        .unwrap_or("")
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let exp = claims.exp.as_ref().and_then(Value::as_u64);
    let payload = token.split('.').nth(1).unwrap_or("");
    Ok(Principal::builder(CredentialKind::Bearer, subject)
        .scopes(scopes)
        .roles(claims.roles.0)
        .permissions(claims.permissions.0)
        .token(claims.jti, exp)
        .session(match claims.sid {
            Some(Value::String(s)) => Some(s),
            _ => None,
        })
        .jwt_payload(payload)
        .build())
}

/// The principal of a token read through a [`ClaimMapping`].
pub(super) fn principal_from_mapped(
    claims: &Map<String, Value>,
    mapping: &ClaimMapping,
    token: &str,
) -> Result<Principal, TokenError> {
    let subject = match claims.get("sub") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => return Err(TokenError::Subject),
    };
    let jti = match claims.get("jti") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(TokenError::Malformed),
    };
    let found = mapping.read(claims).map_err(|_| TokenError::Malformed)?;
    let exp = claims.get("exp").and_then(Value::as_u64);
    let payload = token.split('.').nth(1).unwrap_or("");
    Ok(Principal::builder(CredentialKind::Bearer, subject)
        .scopes(found.scopes)
        .roles(found.roles)
        .permissions(found.permissions)
        .token(jti, exp)
        .session(claims.get("sid").and_then(Value::as_str).map(str::to_owned))
        .jwt_payload(payload)
        .build())
}

#[cfg(test)]
mod tests {
    use super::Names;

    fn names(json: &str) -> Result<Vec<String>, serde_json::Error> {
        serde_json::from_str::<Names>(json).map(|n| n.0)
    }

    #[test]
    fn names_read_a_spaced_string_a_list_or_null() {
        assert_eq!(names(r#""a  b c""#).unwrap(), ["a", "b", "c"]);
        assert_eq!(names(r#"["a b", "c"]"#).unwrap(), ["a b", "c"]);
        assert_eq!(names("[]").unwrap(), Vec::<String>::new());
        assert_eq!(names(r#""""#).unwrap(), Vec::<String>::new());
        assert_eq!(names("null").unwrap(), Vec::<String>::new());
    }

    #[test]
    fn names_of_any_other_type_fail_the_token() {
        for bad in [
            "1",
            "true",
            r#"{"a": 1}"#,
            r#"["a", 1]"#,
            r#"[["a"]]"#,
            "[null]",
        ] {
            assert!(names(bad).is_err(), "{bad} was accepted");
        }
    }
}
