//! The verification options beside the keys: accepted `typ` values, the
//! claim mapping, the `iat` rule.

use std::sync::Arc;

use super::JwtConfig;
use crate::{verify::claims::ClaimMapping, ConfigError};

impl JwtConfig {
    /// The accepted header `typ` values, replacing the default (`at+jwt`).
    /// Compared case-insensitively, with or without the `application/`
    /// prefix (RFC 7515 §4.1.9): `"JWT"` accepts `JWT` and
    /// `application/jwt`. A token without `typ` is refused unless
    /// [`any_typ`](Self::any_typ).
    ///
    /// Keycloak, Entra ID and many other providers send `typ: JWT`:
    ///
    /// ```
    /// use secure_runtime::JwtConfig;
    /// # let jwt = JwtConfig::hs256("0123456789abcdef0123456789abcdef").unwrap();
    /// let jwt = jwt.accept_typ(["at+jwt", "JWT"]);
    /// # let _ = jwt;
    /// ```
    pub fn accept_typ<I: IntoIterator<Item = S>, S: Into<String>>(mut self, accepted: I) -> Self {
        let list: Vec<String> = accepted.into_iter().map(Into::into).collect();
        if list.is_empty() {
            self.error = Some(ConfigError::new(
                "accept_typ needs at least one value (use any_typ to skip the check)",
            ));
        }
        self.typ = Some(list);
        self
    }

    /// Skips the header `typ` check, for providers whose tokens carry none
    /// (the other checks still tell an access token from an ID token only by
    /// `aud`: prefer [`accept_typ`](Self::accept_typ) where possible).
    pub fn any_typ(mut self) -> Self {
        self.typ = None;
        self
    }

    /// Where roles, permissions and scopes are read in the claims (default
    /// [`ClaimMapping::standard`]); presets for Keycloak, Auth0 and Entra ID.
    ///
    /// ```
    /// use secure_runtime::{ClaimMapping, JwtConfig};
    /// # let jwt = JwtConfig::hs256("0123456789abcdef0123456789abcdef").unwrap();
    /// let jwt = jwt.claims(ClaimMapping::keycloak("notes-api"));
    /// # let _ = jwt;
    /// ```
    pub fn claims(mut self, mapping: ClaimMapping) -> Self {
        self.claims = (mapping != ClaimMapping::standard()).then(|| Arc::new(mapping));
        self
    }

    /// Whether `iat` is required (default `true`, as RFC 9068 §2.2 says).
    /// Turn it off only for a provider whose access tokens omit it; an `iat`
    /// that is present is still checked (a number, not in the future).
    pub fn require_iat(mut self, required: bool) -> Self {
        self.require_iat = required;
        self
    }
}
