//! Where a verifier reads roles, permissions and scopes in a token's claims.

use serde_json::{Map, Value};

/// Where roles, permissions and scopes come from in a JWT's claims, per
/// verifier ([`JwtConfig::claims`](crate::JwtConfig::claims)).
///
/// Each kind is read from one or more places and the names found are joined.
/// A place is either
/// * a top-level claim name, taken literally — `"roles"`,
///   `"https://example.com/roles"` (an Auth0 namespaced claim); or
/// * a JSON pointer (RFC 6901) into nested claims when it starts with `/` —
///   `"/realm_access/roles"`, `"/resource_access/my-api/roles"` (`~1` stands
///   for a `/` inside a name, `~0` for `~`).
///
/// The value there may be a list of strings or a space-separated string;
/// missing or `null` means none. Any other value (a number, an object, a
/// list holding a non-string) refuses the whole token: a claim that does not
/// mean what the mapping expects is never read as "no roles".
///
/// ```
/// use secure_runtime::{ClaimMapping, JwtConfig};
/// // Keycloak: realm roles and the roles of client `notes-api`.
/// let keycloak = ClaimMapping::keycloak("notes-api");
/// // Auth0: namespaced roles, RBAC `permissions`.
/// let auth0 = ClaimMapping::auth0("https://example.com");
/// // Entra ID: app roles in `roles`, delegated scopes in `scp`.
/// let entra = ClaimMapping::entra();
/// // Anything else, place by place:
/// let custom = ClaimMapping::empty()
///     .roles_from("/authz/groups")
///     .roles_from("role")
///     .scopes_from("scp")
///     .permissions_from("/authz/permissions");
/// # let _ = (keycloak, auth0, entra);
/// let jwt = JwtConfig::hs256("0123456789abcdef0123456789abcdef").unwrap().claims(custom);
/// # let _ = jwt;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimMapping {
    roles: Vec<Place>,
    permissions: Vec<Place>,
    scopes: Vec<Place>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Place {
    Name(String),
    Pointer(String),
}

impl Place {
    fn new(place: &str) -> Place {
        if place.starts_with('/') {
            Place::Pointer(place.to_owned())
        } else {
            Place::Name(place.to_owned())
        }
    }

    fn find<'a>(&self, claims: &'a Map<String, Value>) -> Option<&'a Value> {
        match self {
            Place::Name(n) => claims.get(n),
            Place::Pointer(p) => {
                // `Value::pointer` on the map's entries, without cloning the map.
                let rest = p.strip_prefix('/')?;
                let (first, tail) = match rest.find('/') {
                    Some(i) => (&rest[..i], &rest[i..]),
                    None => (rest, ""),
                };
                let top = claims.get(&unescape(first))?;
                if tail.is_empty() {
                    Some(top)
                } else {
                    top.pointer(tail)
                }
            }
        }
    }
}

fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

fn escape(name: &str) -> String {
    name.replace('~', "~0").replace('/', "~1")
}

impl Default for ClaimMapping {
    /// [`ClaimMapping::standard`].
    fn default() -> Self {
        Self::standard()
    }
}

impl ClaimMapping {
    /// The default: roles from `roles`, permissions from `permissions`,
    /// scopes from `scope` (RFC 9068) — what this crate's own tokens carry.
    pub fn standard() -> Self {
        Self::empty()
            .roles_from("roles")
            .permissions_from("permissions")
            .scopes_from("scope")
    }

    /// Reads nothing: add places with the `*_from` calls.
    pub fn empty() -> Self {
        ClaimMapping {
            roles: Vec::new(),
            permissions: Vec::new(),
            scopes: Vec::new(),
        }
    }

    /// Keycloak: roles from the realm (`realm_access.roles`) and from the
    /// client `client_id` (`resource_access.<client_id>.roles`, usually the
    /// API's client), scopes from `scope`. Keycloak's tokens carry header
    /// `typ: JWT`: accept it with
    /// [`JwtConfig::accept_typ`](crate::JwtConfig::accept_typ).
    ///
    /// ```
    /// use secure_runtime::ClaimMapping;
    /// let m = ClaimMapping::keycloak("notes-api");
    /// let claims = serde_json::json!({
    ///     "realm_access": {"roles": ["offline_access", "admin"]},
    ///     "resource_access": {"notes-api": {"roles": ["editor"]}, "account": {"roles": ["x"]}},
    ///     "scope": "openid notes:read",
    /// });
    /// let found = m.read(claims.as_object().unwrap()).unwrap();
    /// assert_eq!(found.roles, ["offline_access", "admin", "editor"]);
    /// assert_eq!(found.scopes, ["openid", "notes:read"]);
    /// ```
    pub fn keycloak(client_id: &str) -> Self {
        Self::empty()
            .roles_from("/realm_access/roles")
            .roles_from(&format!("/resource_access/{}/roles", escape(client_id)))
            .scopes_from("scope")
    }

    /// Auth0: roles from the namespaced claim `<namespace>/roles` (set by an
    /// Auth0 Action), permissions from `permissions` (RBAC with "Add
    /// Permissions in the Access Token"), scopes from `scope`.
    ///
    /// ```
    /// use secure_runtime::ClaimMapping;
    /// let m = ClaimMapping::auth0("https://example.com/");
    /// let claims = serde_json::json!({
    ///     "https://example.com/roles": ["admin"],
    ///     "permissions": ["notes:delete"],
    ///     "scope": "notes:read",
    /// });
    /// let found = m.read(claims.as_object().unwrap()).unwrap();
    /// assert_eq!(found.roles, ["admin"]);
    /// assert_eq!(found.permissions, ["notes:delete"]);
    /// ```
    pub fn auth0(namespace: &str) -> Self {
        Self::empty()
            .roles_from(&format!("{}/roles", namespace.trim_end_matches('/')))
            .permissions_from("permissions")
            .scopes_from("scope")
    }

    /// Microsoft Entra ID: app roles from `roles`, delegated scopes from
    /// `scp` (a space-separated string). Entra's tokens carry header
    /// `typ: JWT`: accept it with
    /// [`JwtConfig::accept_typ`](crate::JwtConfig::accept_typ).
    pub fn entra() -> Self {
        Self::empty().roles_from("roles").scopes_from("scp")
    }

    /// Also reads roles at `place` (a claim name, or a JSON pointer if it
    /// starts with `/`).
    pub fn roles_from(mut self, place: &str) -> Self {
        self.roles.push(Place::new(place));
        self
    }

    /// Also reads permissions at `place`.
    pub fn permissions_from(mut self, place: &str) -> Self {
        self.permissions.push(Place::new(place));
        self
    }

    /// Also reads scopes at `place`.
    pub fn scopes_from(mut self, place: &str) -> Self {
        self.scopes.push(Place::new(place));
        self
    }

    /// The names this mapping finds in `claims`, or `Err` naming the place
    /// whose value is neither a string nor a list of strings.
    pub fn read(&self, claims: &Map<String, Value>) -> Result<MappedClaims, BadClaim> {
        Ok(MappedClaims {
            roles: collect(&self.roles, claims)?,
            permissions: collect(&self.permissions, claims)?,
            scopes: collect(&self.scopes, claims)?,
        })
    }
}

/// What a [`ClaimMapping`] found in a token.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MappedClaims {
    /// The roles, in the order found (duplicates removed).
    pub roles: Vec<String>,
    /// The permissions.
    pub permissions: Vec<String>,
    /// The scopes.
    pub scopes: Vec<String>,
}

/// A mapped claim holds neither a string nor a list of strings (the token
/// is refused).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadClaim(pub String);

impl std::fmt::Display for BadClaim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "claim {} is neither a string nor a list of strings",
            self.0
        )
    }
}

impl std::error::Error for BadClaim {}

fn collect(places: &[Place], claims: &Map<String, Value>) -> Result<Vec<String>, BadClaim> {
    let mut out: Vec<String> = Vec::new();
    let mut push = |s: &str| {
        if !s.is_empty() && !out.iter().any(|o| o == s) {
            out.push(s.to_owned());
        }
    };
    for place in places {
        let bad = || {
            BadClaim(match place {
                Place::Name(n) => format!("{n:?}"),
                Place::Pointer(p) => p.clone(),
            })
        };
        match place.find(claims) {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) => s.split(' ').for_each(&mut push),
            Some(Value::Array(items)) => {
                for item in items {
                    push(item.as_str().ok_or_else(bad)?);
                }
            }
            Some(_) => return Err(bad()),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(m: &ClaimMapping, v: Value) -> Result<MappedClaims, BadClaim> {
        m.read(v.as_object().unwrap())
    }

    #[test]
    fn pointers_names_strings_and_lists() {
        let m = ClaimMapping::empty()
            .roles_from("/a/b")
            .roles_from("https://x.example/roles")
            .roles_from("/c~1d/e~0f")
            .scopes_from("scp");
        let got = read(
            &m,
            json!({
                "a": {"b": ["r1", "r2"]},
                "https://x.example/roles": "r3  r1",
                "c/d": {"e~f": ["r4"]},
                "scp": "s1 s2",
            }),
        )
        .unwrap();
        assert_eq!(got.roles, ["r1", "r2", "r3", "r4"]);
        assert_eq!(got.scopes, ["s1", "s2"]);
        assert!(got.permissions.is_empty());
    }

    #[test]
    fn missing_or_null_is_none_but_other_types_refuse() {
        let m = ClaimMapping::keycloak("api");
        let got = read(&m, json!({"realm_access": null})).unwrap();
        assert!(got.roles.is_empty());
        let got = read(&m, json!({"realm_access": {"roles": null}})).unwrap();
        assert!(got.roles.is_empty());
        for bad in [
            json!({"realm_access": {"roles": 1}}),
            json!({"realm_access": {"roles": {"admin": true}}}),
            json!({"realm_access": {"roles": ["admin", 1]}}),
            json!({"realm_access": {"roles": [["admin"]]}}),
            json!({"resource_access": {"api": {"roles": true}}}),
        ] {
            let e = read(&m, bad.clone()).unwrap_err();
            assert!(e.to_string().contains("roles"), "{bad}: {e}");
        }
        // A pointer through a non-object finds nothing (no value to misread).
        let got = read(&m, json!({"realm_access": "admin"})).unwrap();
        assert!(got.roles.is_empty());
    }

    #[test]
    fn presets() {
        let kc = ClaimMapping::keycloak("my/api");
        let got = read(
            &kc,
            json!({"realm_access": {"roles": ["a"]}, "resource_access": {"my/api": {"roles": ["b"]}, "other": {"roles": ["c"]}}, "roles": ["d"]}),
        )
        .unwrap();
        assert_eq!(got.roles, ["a", "b"]);
        let a0 = ClaimMapping::auth0("https://example.com");
        let got = read(
            &a0,
            json!({"https://example.com/roles": ["admin"], "roles": ["no"], "permissions": "p1 p2", "scope": "s"}),
        )
        .unwrap();
        assert_eq!(got.roles, ["admin"]);
        assert_eq!(got.permissions, ["p1", "p2"]);
        assert_eq!(got.scopes, ["s"]);
        let en = ClaimMapping::entra();
        let got = read(
            &en,
            json!({"roles": ["Notes.Admin"], "scp": "Notes.Read", "scope": "no"}),
        )
        .unwrap();
        assert_eq!(got.roles, ["Notes.Admin"]);
        assert_eq!(got.scopes, ["Notes.Read"]);
        assert_eq!(ClaimMapping::default(), ClaimMapping::standard());
    }
}
