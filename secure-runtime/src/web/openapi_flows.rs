//! The OAuth2 and OpenID Connect security schemes of the OpenAPI document:
//! password, client credentials, authorization code (PKCE) and
//! `openIdConnect`, from the catalogue's `const` URLs or from the
//! configuration read at startup ([`OpenApiFlows::install`]).
//!
//! poem-openapi builds the document from static functions
//! (`ApiExtractor::register`), which see only the `&'static Catalogue` of
//! each operation, while an identity provider's URLs are configuration. So
//! there are two ways, which compose:
//!
//! - **Static URLs** (your own token endpoint, a fixed provider): the
//!   catalogue's `const` builder methods (`token_url`, `client_credentials`,
//!   `authorization_code`, `openid_connect`).
//! - **URLs from the configuration**: the catalogue says
//!   [`runtime_flows()`](crate::Catalogue::runtime_flows), and `main` installs
//!   one process-wide [`OpenApiFlows`] before it builds the `OpenApiService`.
//!   Installing twice with different flows, or after a document was built, is
//!   a [`ConfigError`]: the order mistake is reported, never silently ignored.
//!   A document built before anything is installed falls back to the
//!   catalogue's static flows (else `bearerAuth`) and logs a warning.

use std::sync::{
    atomic::{AtomicBool, Ordering},
    OnceLock,
};

use poem_openapi::registry::{
    MetaOAuthFlow, MetaOAuthFlows, MetaOAuthScope, MetaSecurityScheme, Registry,
};

use crate::{Catalogue, ConfigError, Requirement};

/// Name of the OpenAPI `openIdConnect` scheme.
///
/// ```
/// assert_eq!(secure_runtime::openapi::OPENID_CONNECT_SCHEME, "openIdConnect");
/// ```
pub const OPENID_CONNECT_SCHEME: &str = "openIdConnect";

/// The OpenAPI flows of an API whose identity provider is configuration (an
/// issuer URL, environment variables), installed once at startup for every
/// catalogue declared with [`runtime_flows()`](crate::Catalogue::runtime_flows).
///
/// Each flow becomes part of the `oauth2` scheme (password, client
/// credentials, authorization code) or the `openIdConnect` scheme; every
/// `#[secure]` operation that accepts bearer tokens then requires one of them
/// with its scopes. URLs are `https://`, `http://` to a loopback host, or a
/// path on this API (`/auth/token`).
///
/// ```
/// use secure_runtime::{openapi::OpenApiFlows, Catalogue};
///
/// const ACCESS: Catalogue = Catalogue::new()
///     .scopes(&[("notes:read", "Read notes")])
///     .runtime_flows();
///
/// # fn main() -> Result<(), secure_runtime::ConfigError> {
/// let issuer = "https://sso.example.com/realms/acme"; // from the environment
/// let flows = OpenApiFlows::from_issuer(issuer)?;     // openIdConnect, discovery URL
/// assert_eq!(
///     flows.openid_connect_url(),
///     Some("https://sso.example.com/realms/acme/.well-known/openid-configuration")
/// );
/// flows.install()?; // before `openapi::service(..)` builds the document
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpenApiFlows {
    password: Option<String>,
    refresh: Option<String>,
    client_credentials: Option<String>,
    authorization_code: Option<(String, String)>,
    openid_connect: Option<String>,
}

static INSTALLED: OnceLock<OpenApiFlows> = OnceLock::new();
/// Set when a document consulted the installed flows: installing later
/// would leave that document stale.
static CONSULTED: AtomicBool = AtomicBool::new(false);
static WARNED: AtomicBool = AtomicBool::new(false);

impl OpenApiFlows {
    /// No flow yet; add them with the methods below.
    ///
    /// ```
    /// use secure_runtime::openapi::OpenApiFlows;
    /// let flows = OpenApiFlows::new().client_credentials("https://idp.example.com/token");
    /// assert!(flows.openid_connect_url().is_none());
    /// ```
    pub fn new() -> Self {
        OpenApiFlows::default()
    }

    /// An `openIdConnect` scheme whose discovery URL is
    /// `{issuer}/.well-known/openid-configuration` (OpenID Connect Discovery
    /// 1.0 §4.1, a trailing `/` of the issuer removed first). Nothing is
    /// fetched: the browser reads the document, so this works while the
    /// provider is down.
    ///
    /// ```
    /// use secure_runtime::openapi::OpenApiFlows;
    /// let f = OpenApiFlows::from_issuer("https://tenant.auth0.com/").unwrap();
    /// assert_eq!(f.openid_connect_url(), Some("https://tenant.auth0.com/.well-known/openid-configuration"));
    /// assert!(OpenApiFlows::from_issuer("sso.example.com").is_err());
    /// ```
    pub fn from_issuer(issuer: &str) -> Result<Self, ConfigError> {
        check_url("the issuer", issuer, false)?;
        Ok(OpenApiFlows::new().openid_connect(format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        )))
    }

    /// The authorization-code flow (with PKCE in [`SwaggerUi`](crate::openapi::SwaggerUi))
    /// at the endpoints of a discovered provider; an error when the document
    /// names no `authorization_endpoint` or `token_endpoint`.
    ///
    /// ```
    /// use secure_runtime::{openapi::OpenApiFlows, ProviderMetadata};
    /// let doc = r#"{"issuer":"https://idp.example.com","jwks_uri":"https://idp.example.com/jwks",
    ///   "authorization_endpoint":"https://idp.example.com/auth","token_endpoint":"https://idp.example.com/token"}"#;
    /// let meta = ProviderMetadata::from_document(
    ///     "https://idp.example.com", "https://idp.example.com/.well-known/openid-configuration", doc).unwrap();
    /// let flows = OpenApiFlows::from_metadata(&meta).unwrap();
    /// assert_eq!(flows.authorization_code_urls(), Some(("https://idp.example.com/auth", "https://idp.example.com/token")));
    /// ```
    #[cfg(feature = "jwks")]
    #[cfg_attr(docsrs, doc(cfg(feature = "jwks")))]
    pub fn from_metadata(meta: &crate::ProviderMetadata) -> Result<Self, ConfigError> {
        match (meta.authorization_endpoint(), meta.token_endpoint()) {
            (Some(auth), Some(token)) => Ok(OpenApiFlows::new().authorization_code(auth, token)),
            _ => Err(ConfigError::new(format!(
                "the provider metadata at {} names no authorization_endpoint and token_endpoint: \
                 no authorization-code flow to document",
                meta.document_url()
            ))),
        }
    }

    /// Adds the OAuth2 password flow.
    ///
    /// ```
    /// use secure_runtime::openapi::OpenApiFlows;
    /// let f = OpenApiFlows::new().password("/auth/token").refresh_url("/auth/refresh");
    /// assert_ne!(f, OpenApiFlows::new());
    /// ```
    pub fn password(mut self, token_url: impl Into<String>) -> Self {
        self.password = Some(token_url.into());
        self
    }

    /// The refresh URL shown in the password and authorization-code flows.
    ///
    /// ```
    /// use secure_runtime::openapi::OpenApiFlows;
    /// let _ = OpenApiFlows::new().password("/auth/token").refresh_url("/auth/token");
    /// ```
    pub fn refresh_url(mut self, url: impl Into<String>) -> Self {
        self.refresh = Some(url.into());
        self
    }

    /// Adds the OAuth2 client-credentials flow (machine clients; Swagger UI
    /// asks for the client id and secret, which stay in the browser).
    ///
    /// ```
    /// use secure_runtime::openapi::OpenApiFlows;
    /// let _ = OpenApiFlows::new().client_credentials("https://idp.example.com/oauth/token");
    /// ```
    pub fn client_credentials(mut self, token_url: impl Into<String>) -> Self {
        self.client_credentials = Some(token_url.into());
        self
    }

    /// Adds the OAuth2 authorization-code flow.
    ///
    /// ```
    /// use secure_runtime::openapi::OpenApiFlows;
    /// let f = OpenApiFlows::new().authorization_code("https://idp.example.com/authorize", "https://idp.example.com/token");
    /// assert_eq!(f.authorization_code_urls(), Some(("https://idp.example.com/authorize", "https://idp.example.com/token")));
    /// ```
    pub fn authorization_code(
        mut self,
        authorization_url: impl Into<String>,
        token_url: impl Into<String>,
    ) -> Self {
        self.authorization_code = Some((authorization_url.into(), token_url.into()));
        self
    }

    /// Adds the `openIdConnect` scheme with this discovery URL.
    ///
    /// ```
    /// use secure_runtime::openapi::OpenApiFlows;
    /// let url = "https://login.microsoftonline.com/TENANT/v2.0/.well-known/openid-configuration";
    /// assert_eq!(OpenApiFlows::new().openid_connect(url).openid_connect_url(), Some(url));
    /// ```
    pub fn openid_connect(mut self, discovery_url: impl Into<String>) -> Self {
        self.openid_connect = Some(discovery_url.into());
        self
    }

    /// The discovery URL of the `openIdConnect` scheme, if any.
    ///
    /// ```
    /// use secure_runtime::openapi::OpenApiFlows;
    /// assert_eq!(OpenApiFlows::new().openid_connect_url(), None);
    /// ```
    pub fn openid_connect_url(&self) -> Option<&str> {
        self.openid_connect.as_deref()
    }

    /// `(authorization URL, token URL)` of the authorization-code flow, if any.
    ///
    /// ```
    /// use secure_runtime::openapi::OpenApiFlows;
    /// assert_eq!(OpenApiFlows::new().authorization_code_urls(), None);
    /// ```
    pub fn authorization_code_urls(&self) -> Option<(&str, &str)> {
        self.authorization_code
            .as_ref()
            .map(|(a, t)| (a.as_str(), t.as_str()))
    }

    /// Every URL with what it is, for checks and for the docs page's CSP.
    pub(crate) fn urls(&self) -> Vec<(&'static str, &str)> {
        let mut out: Vec<(&'static str, &str)> = [
            ("the password token URL", &self.password),
            ("the refresh URL", &self.refresh),
            ("the client-credentials token URL", &self.client_credentials),
            ("the OpenID Connect discovery URL", &self.openid_connect),
        ]
        .into_iter()
        .filter_map(|(what, u)| u.as_deref().map(|u| (what, u)))
        .collect();
        if let Some((a, t)) = &self.authorization_code {
            out.push(("the authorization URL", a.as_str()));
            out.push(("the authorization-code token URL", t.as_str()));
        }
        out
    }

    /// Makes these the flows of every catalogue declared with
    /// [`runtime_flows()`](crate::Catalogue::runtime_flows), for the whole
    /// process. Call it once at startup, **before** building the
    /// `OpenApiService`.
    ///
    /// # Errors
    /// No flow; a URL that is not `https://`, loopback `http://` or a path;
    /// flows already installed (unless identical); or a document already
    /// built from the catalogue's fallback.
    ///
    /// ```
    /// use secure_runtime::openapi::OpenApiFlows;
    /// assert!(OpenApiFlows::new().install().is_err()); // no flow
    /// assert!(OpenApiFlows::new().password("ftp://x/token").install().is_err());
    /// ```
    pub fn install(self) -> Result<(), ConfigError> {
        if self == OpenApiFlows::new() {
            return Err(ConfigError::new(
                "OpenApiFlows::install: no flow; add password, client_credentials, \
                 authorization_code or openid_connect",
            ));
        }
        for (what, url) in self.urls() {
            check_url(what, url, true)?;
        }
        if let Some(current) = INSTALLED.get() {
            return if *current == self {
                Ok(())
            } else {
                Err(ConfigError::new(
                    "OpenApiFlows::install: other flows are already installed (once per process)",
                ))
            };
        }
        if CONSULTED.load(Ordering::SeqCst) {
            return Err(ConfigError::new(
                "OpenApiFlows::install: an OpenAPI document was already built without these \
                 flows; install them before `openapi::service(..)` / `OpenApiService::new`",
            ));
        }
        match INSTALLED.set(self) {
            Ok(()) => Ok(()),
            Err(_) => Err(ConfigError::new(
                "OpenApiFlows::install: installed concurrently by another thread",
            )),
        }
    }

    /// The flows installed in this process, if any.
    ///
    /// ```
    /// use secure_runtime::openapi::OpenApiFlows;
    /// assert!(OpenApiFlows::installed().is_none());
    /// ```
    pub fn installed() -> Option<&'static OpenApiFlows> {
        INSTALLED.get()
    }
}

/// `https://` with a host, `http://` to a loopback host, or (when `path_ok`)
/// an absolute path on this API. Parsed by `http::Uri`.
fn check_url(what: &str, url: &str, path_ok: bool) -> Result<(), ConfigError> {
    let bad = |why: &str| ConfigError::new(format!("{what} {url:?} {why}"));
    if path_ok && url.starts_with('/') && !url.starts_with("//") {
        return url
            .parse::<http::Uri>()
            .map(|_| ())
            .map_err(|_| bad("is not a valid path"));
    }
    let uri: http::Uri = url.parse().map_err(|_| bad("is not an absolute URL"))?;
    let host = uri.host().ok_or_else(|| bad("is not an absolute URL"))?;
    match uri.scheme_str() {
        Some("https") => Ok(()),
        Some("http") if is_loopback(host) => Ok(()),
        _ => Err(bad("must be https (plain http only to a loopback host)")),
    }
}

fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The flows one catalogue documents: `&'static` because the registry wants
/// it (static catalogues, or the process-wide installed flows).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Flows {
    password: Option<&'static str>,
    refresh: Option<&'static str>,
    client_credentials: Option<&'static str>,
    authorization_code: Option<(&'static str, &'static str)>,
    openid_connect: Option<&'static str>,
}

impl Flows {
    fn of_catalogue(c: &'static Catalogue) -> Flows {
        Flows {
            password: c.token_url,
            refresh: c.refresh_url,
            client_credentials: c.client_credentials_url,
            authorization_code: c.authorization_code,
            openid_connect: c.openid_connect_url,
        }
    }

    fn of_installed(f: &'static OpenApiFlows) -> Flows {
        Flows {
            password: f.password.as_deref(),
            refresh: f.refresh.as_deref(),
            client_credentials: f.client_credentials.as_deref(),
            authorization_code: f
                .authorization_code
                .as_ref()
                .map(|(a, t)| (a.as_str(), t.as_str())),
            openid_connect: f.openid_connect.as_deref(),
        }
    }

    fn has_oauth2(&self) -> bool {
        self.password.is_some()
            || self.client_credentials.is_some()
            || self.authorization_code.is_some()
    }

    /// The scheme names an operation's requirement lists, each with the
    /// operation's scopes (alternatives).
    pub(crate) fn scheme_names(&self) -> Vec<&'static str> {
        let mut out = Vec::with_capacity(2);
        if self.has_oauth2() {
            out.push(super::openapi::OAUTH2_SCHEME);
        }
        if self.openid_connect.is_some() {
            out.push(OPENID_CONNECT_SCHEME);
        }
        out
    }

    /// `components.securitySchemes` entries for these flows.
    pub(crate) fn register(&self, catalogue: &'static Catalogue, registry: &mut Registry) {
        if self.has_oauth2() {
            let flow = |authorization_url, token_url, refresh_url| MetaOAuthFlow {
                authorization_url,
                token_url: Some(token_url),
                refresh_url,
                scopes: catalogue
                    .scopes
                    .iter()
                    .map(|(name, d)| MetaOAuthScope {
                        name,
                        description: Some(d),
                    })
                    .collect(),
            };
            let only_password =
                self.client_credentials.is_none() && self.authorization_code.is_none();
            registry.create_security_scheme(
                super::openapi::OAUTH2_SCHEME,
                MetaSecurityScheme {
                    ty: "oauth2",
                    description: Some(if only_password {
                        "OAuth2 password flow; access tokens are JWTs (RFC 9068)."
                    } else {
                        "OAuth2; the access token goes in `Authorization: Bearer`."
                    }),
                    name: None,
                    key_in: None,
                    scheme: None,
                    bearer_format: None,
                    flows: Some(MetaOAuthFlows {
                        implicit: None,
                        password: self.password.map(|t| flow(None, t, self.refresh)),
                        client_credentials: self.client_credentials.map(|t| flow(None, t, None)),
                        authorization_code: self
                            .authorization_code
                            .map(|(a, t)| flow(Some(a), t, self.refresh)),
                    }),
                    openid_connect_url: None,
                },
            );
        }
        if let Some(url) = self.openid_connect {
            registry.create_security_scheme(
                OPENID_CONNECT_SCHEME,
                MetaSecurityScheme {
                    ty: "openIdConnect",
                    description: Some(
                        "OpenID Connect; the access token goes in `Authorization: Bearer`.",
                    ),
                    name: None,
                    key_in: None,
                    scheme: None,
                    bearer_format: None,
                    flows: None,
                    openid_connect_url: Some(url),
                },
            );
        }
    }
}

/// The catalogue and flows documented for the operation of `R`, or `None`
/// when it takes no bearer token or no flow is configured (then the
/// `bearerAuth` scheme documents it).
pub(crate) fn documented<R: Requirement>() -> Option<(&'static Catalogue, Flows)> {
    let policy = R::POLICY;
    if !policy.auth().accepts_bearer() {
        return None;
    }
    let catalogue = policy.catalogue()?;
    let flows = flows_of(catalogue);
    (flows.has_oauth2() || flows.openid_connect.is_some()).then_some((catalogue, flows))
}

fn flows_of(catalogue: &'static Catalogue) -> Flows {
    if catalogue.runtime_flows {
        CONSULTED.store(true, Ordering::SeqCst);
        if let Some(installed) = INSTALLED.get() {
            return Flows::of_installed(installed);
        }
        if !WARNED.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                "an OpenAPI document was built for a catalogue with `runtime_flows()` before \
                 `OpenApiFlows::install`: it documents the catalogue's static flows (or bearerAuth)"
            );
        }
    }
    Flows::of_catalogue(catalogue)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_must_be_https_loopback_http_or_a_path() {
        assert!(check_url("u", "https://idp.example.com/token", true).is_ok());
        assert!(check_url("u", "http://127.0.0.1:8080/token", true).is_ok());
        assert!(check_url("u", "http://[::1]:8080/token", true).is_ok());
        assert!(check_url("u", "http://localhost/token", true).is_ok());
        assert!(check_url("u", "/auth/token", true).is_ok());
        let err = check_url("the token URL", "http://idp.example.com/token", true).unwrap_err();
        assert!(err.to_string().contains("the token URL"), "{err}");
        assert!(err.to_string().contains("https"), "{err}");
        assert!(check_url("u", "/auth/token", false).is_err());
        assert!(check_url("u", "//evil.example/token", true).is_err());
        assert!(check_url("u", "idp.example.com/token", true).is_err());
        assert!(check_url("u", "javascript:alert(1)", true).is_err());
    }

    #[test]
    fn from_issuer_appends_the_discovery_suffix_once() {
        for issuer in ["https://h.example/realms/a", "https://h.example/realms/a/"] {
            let f = OpenApiFlows::from_issuer(issuer).unwrap();
            assert_eq!(
                f.openid_connect_url(),
                Some("https://h.example/realms/a/.well-known/openid-configuration")
            );
        }
    }

    #[test]
    fn installed_flows_replace_the_static_ones_only_for_runtime_catalogues() {
        static RUNTIME: Catalogue = Catalogue::new()
            .token_url("/fallback/token")
            .runtime_flows();
        static FIXED: Catalogue = Catalogue::new().token_url("/own/token");
        OpenApiFlows::new()
            .authorization_code(
                "https://idp.example.com/auth",
                "https://idp.example.com/token",
            )
            .install()
            .unwrap();
        let f = flows_of(&RUNTIME);
        assert_eq!(f.password, None);
        assert_eq!(
            f.authorization_code,
            Some((
                "https://idp.example.com/auth",
                "https://idp.example.com/token"
            ))
        );
        assert_eq!(flows_of(&FIXED).password, Some("/own/token"));
        // Installing the same flows again is a no-op; others are refused.
        assert!(OpenApiFlows::new()
            .authorization_code(
                "https://idp.example.com/auth",
                "https://idp.example.com/token"
            )
            .install()
            .is_ok());
        let err = OpenApiFlows::new()
            .client_credentials("https://idp.example.com/token")
            .install()
            .unwrap_err();
        assert!(err.to_string().contains("already installed"), "{err}");
    }
}
