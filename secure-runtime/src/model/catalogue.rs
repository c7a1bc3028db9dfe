//! The app's declared scopes, roles and permissions.

/// A scope with the description shown in the OpenAPI document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScopeDecl {
    /// The scope token, e.g. `notes:read`.
    pub name: &'static str,
    /// What granting it allows, for people reading the API docs.
    pub description: &'static str,
}

/// The catalogue of an app's scopes, roles and permissions, declared once as a
/// `const`. Declarations checked against it (`#[deny_unprotected(catalogue =
/// ACCESS)]` or `#[secure(catalogue = ACCESS, ...)]`) fail to compile when they
/// name anything it does not declare, and the OpenAPI document takes the
/// OAuth2 and OpenID Connect schemes (flows, URLs, scope descriptions) from it:
/// `const` URLs here, or URLs from the configuration with
/// [`runtime_flows`](Catalogue::runtime_flows).
///
/// Names are validated while the constant is evaluated (the builder methods
/// assert), so a malformed catalogue is itself a compile error; no check here
/// runs on a request path.
///
/// ```
/// use secure_runtime::Catalogue;
///
/// pub const ACCESS: Catalogue = Catalogue::new()
///     .token_url("/auth/token")
///     .scopes(&[("me", "Read your profile"), ("notes:read", "Read your notes")])
///     .roles(&["user", "admin"])
///     .permissions(&["notes:delete-any"]);
///
/// assert!(ACCESS.declares_scope("notes:read"));
/// assert!(!ACCESS.declares_scope("notes:raed"));
/// ```
///
/// A malformed scope name does not compile:
/// ```compile_fail
/// use secure_runtime::Catalogue;
/// const BAD: Catalogue = Catalogue::new().scopes(&[("has space", "no")]);
/// const _: () = { let _ = BAD; };
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Catalogue {
    /// The token endpoint for the OAuth2 password flow in OpenAPI; without
    /// any flow the document describes an HTTP bearer (JWT) scheme.
    pub token_url: Option<&'static str>,
    /// The refresh endpoint, if any, shown in the OAuth2 flow.
    pub refresh_url: Option<&'static str>,
    /// Declared scopes.
    pub scopes: &'static [(&'static str, &'static str)],
    /// Declared roles.
    pub roles: &'static [&'static str],
    /// Declared permissions.
    pub permissions: &'static [&'static str],
    /// The API key header named in the OpenAPI document (default `X-API-Key`).
    pub api_key_header: &'static str,
    /// The token endpoint of the OAuth2 client-credentials flow in OpenAPI.
    pub client_credentials_url: Option<&'static str>,
    /// `(authorization URL, token URL)` of the OAuth2 authorization-code flow
    /// (with PKCE) in OpenAPI.
    pub authorization_code: Option<(&'static str, &'static str)>,
    /// The OpenID Connect discovery URL of the `openIdConnect` scheme.
    pub openid_connect_url: Option<&'static str>,
    /// Whether the flows are given at startup (`runtime_flows`), replacing
    /// the ones above once installed.
    pub runtime_flows: bool,
}

impl Catalogue {
    /// An empty catalogue.
    pub const fn new() -> Catalogue {
        Catalogue {
            token_url: None,
            refresh_url: None,
            scopes: &[],
            roles: &[],
            permissions: &[],
            api_key_header: "X-API-Key",
            client_credentials_url: None,
            authorization_code: None,
            openid_connect_url: None,
            runtime_flows: false,
        }
    }
    /// Sets the OAuth2 token URL.
    pub const fn token_url(mut self, url: &'static str) -> Catalogue {
        self.token_url = Some(url);
        self
    }
    /// Documents the OAuth2 client-credentials flow with this token URL (the
    /// OpenAPI `oauth2` scheme, beside any other flow set here).
    ///
    /// ```
    /// use secure_runtime::Catalogue;
    /// const ACCESS: Catalogue = Catalogue::new()
    ///     .client_credentials("https://sso.example.com/oauth/token")
    ///     .scopes(&[("stats:read", "Read statistics")]);
    /// assert_eq!(ACCESS.client_credentials_url, Some("https://sso.example.com/oauth/token"));
    /// ```
    pub const fn client_credentials(mut self, token_url: &'static str) -> Catalogue {
        self.client_credentials_url = Some(token_url);
        self
    }
    /// Documents the OAuth2 authorization-code flow (the OpenAPI `oauth2`
    /// scheme): browsers log in at `authorization_url`, with PKCE when the
    /// Swagger UI is served by `openapi::SwaggerUi`.
    ///
    /// ```
    /// use secure_runtime::Catalogue;
    /// const ACCESS: Catalogue = Catalogue::new().authorization_code(
    ///     "https://sso.example.com/realms/acme/protocol/openid-connect/auth",
    ///     "https://sso.example.com/realms/acme/protocol/openid-connect/token",
    /// );
    /// assert!(ACCESS.authorization_code.is_some());
    /// ```
    pub const fn authorization_code(
        mut self,
        authorization_url: &'static str,
        token_url: &'static str,
    ) -> Catalogue {
        self.authorization_code = Some((authorization_url, token_url));
        self
    }
    /// Documents an OpenAPI `openIdConnect` scheme with this discovery URL
    /// (`.../.well-known/openid-configuration`); Swagger UI reads the
    /// provider's endpoints and scopes from it.
    ///
    /// ```
    /// use secure_runtime::Catalogue;
    /// const ACCESS: Catalogue = Catalogue::new()
    ///     .openid_connect("https://tenant.auth0.com/.well-known/openid-configuration");
    /// assert!(ACCESS.openid_connect_url.is_some());
    /// ```
    pub const fn openid_connect(mut self, discovery_url: &'static str) -> Catalogue {
        self.openid_connect_url = Some(discovery_url);
        self
    }
    /// The OpenAPI flows are given at startup, from the configuration (an
    /// issuer URL, environment variables), with `openapi::OpenApiFlows::install`;
    /// once installed they replace the flows set by the other methods, which
    /// remain the fallback.
    ///
    /// ```
    /// use secure_runtime::Catalogue;
    /// const ACCESS: Catalogue = Catalogue::new()
    ///     .scopes(&[("notes:read", "Read notes")])
    ///     .runtime_flows();
    /// assert!(ACCESS.runtime_flows);
    /// ```
    pub const fn runtime_flows(mut self) -> Catalogue {
        self.runtime_flows = true;
        self
    }
    /// Sets the API key header shown in the OpenAPI document.
    pub const fn api_key_header(mut self, name: &'static str) -> Catalogue {
        self.api_key_header = name;
        self
    }
    /// Sets the OAuth2 refresh URL.
    pub const fn refresh_url(mut self, url: &'static str) -> Catalogue {
        self.refresh_url = Some(url);
        self
    }
    /// Declares the scopes as `(name, description)` pairs.
    ///
    /// # Panics
    /// At compile time (const evaluation) on an invalid or repeated name.
    pub const fn scopes(mut self, scopes: &'static [(&'static str, &'static str)]) -> Catalogue {
        let mut i = 0;
        while i < scopes.len() {
            assert!(is_scope_token(scopes[i].0), "catalogue: a scope name must be a non-empty RFC 6749 scope token (printable ASCII, no space, `\"` or `\\`)");
            let mut j = 0;
            while j < i {
                assert!(
                    !str_eq(scopes[i].0, scopes[j].0),
                    "catalogue: a scope is declared twice"
                );
                j += 1;
            }
            i += 1;
        }
        self.scopes = scopes;
        self
    }
    /// Declares the roles.
    ///
    /// # Panics
    /// At compile time on an invalid or repeated name.
    pub const fn roles(mut self, roles: &'static [&'static str]) -> Catalogue {
        check_names(roles, "catalogue: a role name must be a non-empty token (printable ASCII, no space, `\"` or `\\`) declared once");
        self.roles = roles;
        self
    }
    /// Declares the permissions.
    ///
    /// # Panics
    /// At compile time on an invalid or repeated name.
    pub const fn permissions(mut self, permissions: &'static [&'static str]) -> Catalogue {
        check_names(permissions, "catalogue: a permission name must be a non-empty token (printable ASCII, no space, `\"` or `\\`) declared once");
        self.permissions = permissions;
        self
    }
    /// Whether `scope` is declared.
    pub const fn declares_scope(&self, scope: &str) -> bool {
        let mut i = 0;
        while i < self.scopes.len() {
            if str_eq(self.scopes[i].0, scope) {
                return true;
            }
            i += 1;
        }
        false
    }
    /// Whether `role` is declared.
    pub const fn declares_role(&self, role: &str) -> bool {
        contains(self.roles, role)
    }
    /// Whether `permission` is declared.
    pub const fn declares_permission(&self, permission: &str) -> bool {
        contains(self.permissions, permission)
    }
    /// The description of a declared scope.
    pub fn scope_description(&self, scope: &str) -> Option<&'static str> {
        self.scopes
            .iter()
            .find(|(n, _)| *n == scope)
            .map(|(_, d)| *d)
    }
}

impl Default for Catalogue {
    fn default() -> Self {
        Catalogue::new()
    }
}

const fn check_names(names: &[&str], msg: &'static str) {
    let mut i = 0;
    while i < names.len() {
        assert!(is_scope_token(names[i]), "{}", msg);
        let mut j = 0;
        while j < i {
            assert!(!str_eq(names[i], names[j]), "{}", msg);
            j += 1;
        }
        i += 1;
    }
}

const fn contains(names: &[&str], name: &str) -> bool {
    let mut i = 0;
    while i < names.len() {
        if str_eq(names[i], name) {
            return true;
        }
        i += 1;
    }
    false
}

/// Byte equality usable in const evaluation.
pub(crate) const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// RFC 6749 §3.3: `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`.
pub const fn is_scope_token(s: &str) -> bool {
    let b = s.as_bytes();
    if b.is_empty() {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if !(c == 0x21 || (c >= 0x23 && c <= 0x5B) || (c >= 0x5D && c <= 0x7E)) {
            return false;
        }
        i += 1;
    }
    true
}
