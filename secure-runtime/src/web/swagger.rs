//! Swagger UI that logs in with the authorization-code flow and PKCE:
//! poem-openapi's own page and OAuth2 redirect page, with
//! `initOAuth({ usePkceWithAuthorizationCodeGrant: true, clientId })` and a
//! Content-Security-Policy that lets the page reach the identity provider.

use poem::{
    endpoint::make_sync,
    http::{header, HeaderValue},
    middleware::SetHeader,
    web::Html,
    Endpoint, EndpointExt, IntoResponse, Route,
};
use poem_openapi::{OpenApi, OpenApiService, Webhook};
use serde_json::{Map, Value};

use crate::ConfigError;

/// Where the script goes: after poem-openapi's inline Swagger UI bundle, before
/// the page's own `SwaggerUIBundle({...})` call. A script cannot contain
/// `</script>`, so the first match is the end of the bundle's tag.
const ANCHOR: &str = "</script>\n</head>";

/// Wraps `SwaggerUIBundle` so that the UI it returns gets `initOAuth(..)`,
/// and sets the redirect page from the path alone (without the `#/...` of a
/// deep link, which would change the redirect URI registered at the provider).
const WRAPPER: &str = r#"<script>
(function () {
  "use strict";
  var init = __INIT__;
  var bundle = window.SwaggerUIBundle;
  if (typeof bundle !== "function") { return; }
  window.SwaggerUIBundle = new Proxy(bundle, {
    apply: function (target, self, args) {
      var config = Object.assign({}, args[0]);
      config.oauth2RedirectUrl = window.location.origin
        + window.location.pathname.replace(/\/?$/, "/") + "oauth-receiver.html";
      var ui = Reflect.apply(target, self, [config]);
      ui.initOAuth(init);
      window.ui = ui;
      return ui;
    }
  });
})();
</script>
"#;

/// Swagger UI for an API whose users log in at an identity provider with the
/// authorization-code flow and PKCE (a public client: no secret anywhere in
/// the page), plus any other flow the document describes.
///
/// poem-openapi's `swagger_ui()` cannot pass `initOAuth` options; this serves
/// the same page and OAuth2 redirect page (`oauth-receiver.html`) with:
/// - `usePkceWithAuthorizationCodeGrant: true` always, and the client id
///   pre-filled with [`pkce_client`](Self::pkce_client);
/// - the redirect URI `{docs URL}/oauth-receiver.html`, from the page's path
///   (register e.g. `https://api.example.com/docs/oauth-receiver.html` at the
///   provider, and the API's origin as an allowed web origin for CORS);
/// - a `Content-Security-Policy` whose `connect-src` adds the origins of the
///   document's token, refresh and OpenID Connect discovery URLs (and
///   [`connect_to`](Self::connect_to)), so that the browser may call the
///   provider; `Hardening` keeps a policy set by the endpoint.
///
/// Nest it where the docs live (`Hardening`'s docs paths, `/docs` by default).
///
/// ```
/// use poem_openapi::{payload::PlainText, OpenApi, OpenApiService};
/// use secure_runtime::openapi::SwaggerUi;
///
/// struct Api;
/// #[OpenApi]
/// impl Api {
///     #[oai(path = "/hello", method = "get")]
///     async fn hello(&self) -> PlainText<&'static str> { PlainText("hi") }
/// }
///
/// # fn main() -> Result<(), secure_runtime::ConfigError> {
/// let api = OpenApiService::new(Api, "api", "1.0");
/// let docs = SwaggerUi::new(&api)
///     .pkce_client("notes-docs")                       // a public client at the provider
///     .scopes(["openid", "notes:read"])                // ticked in the dialog
///     .authorization_param("audience", "https://notes.example.com") // Auth0
///     .endpoint()?;
/// let app = poem::Route::new().nest("/docs", docs);
/// # let _ = app;
/// # Ok(())
/// # }
/// ```
pub struct SwaggerUi {
    html: String,
    spec: String,
    receiver: poem::endpoint::BoxEndpoint<'static>,
    init: Map<String, Value>,
    params: Map<String, Value>,
    connect: Vec<String>,
}

impl SwaggerUi {
    /// The Swagger UI of `api`'s document, with PKCE on.
    ///
    /// ```
    /// # use poem_openapi::{payload::PlainText, OpenApi, OpenApiService};
    /// # struct Api;
    /// # #[OpenApi] impl Api { #[oai(path = "/", method = "get")] async fn a(&self) -> PlainText<&'static str> { PlainText("") } }
    /// let ui = secure_runtime::openapi::SwaggerUi::new(&OpenApiService::new(Api, "api", "1"));
    /// assert!(ui.endpoint().is_ok());
    /// ```
    pub fn new<T: OpenApi, W: Webhook>(api: &OpenApiService<T, W>) -> Self {
        let mut init = Map::new();
        init.insert(
            "usePkceWithAuthorizationCodeGrant".into(),
            Value::Bool(true),
        );
        SwaggerUi {
            html: api.swagger_ui_html(),
            spec: api.spec(),
            receiver: api.swagger_ui().map_to_response().boxed(),
            init,
            params: Map::new(),
            connect: Vec::new(),
        }
    }

    /// Pre-fills the client id of the provider's public client (PKCE, no
    /// secret) in the Authorize dialog.
    ///
    /// ```
    /// # use poem_openapi::{payload::PlainText, OpenApi, OpenApiService};
    /// # struct Api;
    /// # #[OpenApi] impl Api { #[oai(path = "/", method = "get")] async fn a(&self) -> PlainText<&'static str> { PlainText("") } }
    /// let ui = secure_runtime::openapi::SwaggerUi::new(&OpenApiService::new(Api, "api", "1"))
    ///     .pkce_client("spa");
    /// # let _ = ui;
    /// ```
    pub fn pkce_client(mut self, client_id: impl Into<String>) -> Self {
        self.init
            .insert("clientId".into(), Value::String(client_id.into()));
        self
    }

    /// Scopes ticked when the dialog opens.
    ///
    /// ```
    /// # use poem_openapi::{payload::PlainText, OpenApi, OpenApiService};
    /// # struct Api;
    /// # #[OpenApi] impl Api { #[oai(path = "/", method = "get")] async fn a(&self) -> PlainText<&'static str> { PlainText("") } }
    /// let ui = secure_runtime::openapi::SwaggerUi::new(&OpenApiService::new(Api, "api", "1"))
    ///     .scopes(["openid", "notes:read"]);
    /// # let _ = ui;
    /// ```
    pub fn scopes<I: IntoIterator<Item = S>, S: Into<String>>(mut self, scopes: I) -> Self {
        let scopes: Vec<Value> = scopes
            .into_iter()
            .map(|s| Value::String(s.into()))
            .collect();
        self.init.insert("scopes".into(), Value::Array(scopes));
        self
    }

    /// A parameter added to the authorization request: Auth0's `audience`
    /// (without it Auth0 issues no JWT for your API), RFC 8707 `resource`.
    ///
    /// ```
    /// # use poem_openapi::{payload::PlainText, OpenApi, OpenApiService};
    /// # struct Api;
    /// # #[OpenApi] impl Api { #[oai(path = "/", method = "get")] async fn a(&self) -> PlainText<&'static str> { PlainText("") } }
    /// let ui = secure_runtime::openapi::SwaggerUi::new(&OpenApiService::new(Api, "api", "1"))
    ///     .authorization_param("resource", "https://notes.example.com");
    /// # let _ = ui;
    /// ```
    pub fn authorization_param(
        mut self,
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> Self {
        self.params.insert(name.into(), Value::String(value.into()));
        self
    }

    /// Lets the page call another origin (`https://host[:port]`), e.g. a
    /// token endpoint that the provider's discovery document places on
    /// another host than the issuer.
    ///
    /// ```
    /// # use poem_openapi::{payload::PlainText, OpenApi, OpenApiService};
    /// # struct Api;
    /// # #[OpenApi] impl Api { #[oai(path = "/", method = "get")] async fn a(&self) -> PlainText<&'static str> { PlainText("") } }
    /// let ui = secure_runtime::openapi::SwaggerUi::new(&OpenApiService::new(Api, "api", "1"))
    ///     .connect_to("https://login.example.com");
    /// assert!(ui.endpoint().is_ok());
    /// ```
    pub fn connect_to(mut self, origin: impl Into<String>) -> Self {
        self.connect.push(origin.into());
        self
    }

    /// The endpoint: the page at `/`, the redirect page at
    /// `/oauth-receiver.html`.
    ///
    /// # Errors
    /// An origin given to [`connect_to`](Self::connect_to) or found in the
    /// document that is not an `https://` (or `http://`) origin, or a
    /// poem-openapi page this version does not know how to configure.
    ///
    /// ```
    /// # use poem_openapi::{payload::PlainText, OpenApi, OpenApiService};
    /// # struct Api;
    /// # #[OpenApi] impl Api { #[oai(path = "/", method = "get")] async fn a(&self) -> PlainText<&'static str> { PlainText("") } }
    /// let ui = secure_runtime::openapi::SwaggerUi::new(&OpenApiService::new(Api, "api", "1"))
    ///     .connect_to("https://a.example; script-src *");
    /// assert!(ui.endpoint().is_err());
    /// ```
    #[allow(clippy::disallowed_methods)] // the docs' own pages: public by nature
    pub fn endpoint(self) -> Result<impl Endpoint, ConfigError> {
        let mut origins = Vec::new();
        for url in document_urls(&self.spec) {
            if let Some(o) = origin_of(&url)? {
                origins.push(o);
            }
        }
        for o in &self.connect {
            match origin_of(o)? {
                Some(origin) => origins.push(origin),
                None => {
                    return Err(ConfigError::new(format!(
                        "SwaggerUi::connect_to({o:?}): not an absolute http(s) origin"
                    )))
                }
            }
        }
        origins.sort();
        origins.dedup();
        let csp = format!(
            "default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; \
             img-src 'self' data:; connect-src 'self'{}; frame-ancestors 'none'; base-uri 'none'; \
             form-action 'none'",
            origins.iter().map(|o| format!(" {o}")).collect::<String>()
        );
        let csp = HeaderValue::from_str(&csp).map_err(|_| {
            ConfigError::new("SwaggerUi: the Content-Security-Policy is not a header value")
        })?;

        let mut init = self.init;
        if !self.params.is_empty() {
            init.insert(
                "additionalQueryStringParams".into(),
                Value::Object(self.params),
            );
        }
        // JSON in a script: `<` escaped so that no `</script>` can close it.
        let init = Value::Object(init).to_string().replace('<', "\\u003c");
        let at = self.html.find(ANCHOR).ok_or_else(|| {
            ConfigError::new(
                "SwaggerUi: poem-openapi's Swagger UI page has an unknown layout \
                 (poem-openapi is pinned to ~5.1.16)",
            )
        })? + "</script>\n".len();
        let mut html = self.html;
        html.insert_str(at, &WRAPPER.replace("__INIT__", &init));

        let page = make_sync(move |_| Html(html.clone()).into_response());
        Ok(Route::new()
            .at("/", page)
            .at("/oauth-receiver.html", self.receiver)
            .with(SetHeader::new().overriding(header::CONTENT_SECURITY_POLICY, csp)))
    }
}

/// The token, refresh and discovery URLs of the document's security schemes
/// (the ones the page fetches; authorization URLs are navigated to).
fn document_urls(spec: &str) -> Vec<String> {
    let spec: Value = serde_json::from_str(spec).unwrap_or(Value::Null);
    let mut out = Vec::new();
    let schemes = spec["components"]["securitySchemes"].as_object();
    for scheme in schemes.into_iter().flat_map(|s| s.values()) {
        if let Some(u) = scheme["openIdConnectUrl"].as_str() {
            out.push(u.to_owned());
        }
        for flow in scheme["flows"]
            .as_object()
            .into_iter()
            .flat_map(|f| f.values())
        {
            for key in ["tokenUrl", "refreshUrl"] {
                if let Some(u) = flow[key].as_str() {
                    out.push(u.to_owned());
                }
            }
        }
    }
    out
}

/// `Some("scheme://host[:port]")` for an absolute http(s) URL, `None` for a
/// path on this origin; an error for anything that could not be a CSP source.
fn origin_of(url: &str) -> Result<Option<String>, ConfigError> {
    if url.starts_with('/') && !url.starts_with("//") {
        return Ok(None);
    }
    let bad = || ConfigError::new(format!("SwaggerUi: {url:?} is not an http(s) URL"));
    let uri: http::Uri = url.parse().map_err(|_| bad())?;
    let scheme = match uri.scheme_str() {
        Some(s @ ("https" | "http")) => s,
        _ => return Err(bad()),
    };
    let host = uri.host().ok_or_else(bad)?;
    let host_ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'));
    if !host_ok {
        return Err(bad());
    }
    Ok(Some(match uri.port_u16() {
        Some(port) => format!("{scheme}://{host}:{port}"),
        None => format!("{scheme}://{host}"),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn origins_are_scheme_host_and_port_only() {
        assert_eq!(
            origin_of("https://idp.example.com/realms/a/token").unwrap(),
            Some("https://idp.example.com".to_owned())
        );
        assert_eq!(
            origin_of("http://127.0.0.1:8080/token?x=1").unwrap(),
            Some("http://127.0.0.1:8080".to_owned())
        );
        assert_eq!(origin_of("/auth/token").unwrap(), None);
        assert!(origin_of("//idp.example.com/token").is_err());
        assert!(origin_of("javascript:alert(1)").is_err());
        assert!(origin_of("https://a.example; script-src *").is_err());
    }

    #[test]
    fn document_urls_are_the_fetched_ones() {
        let spec = json!({"components": {"securitySchemes": {
            "oauth2": {"type": "oauth2", "flows": {"authorizationCode": {
                "authorizationUrl": "https://login.example/auth",
                "tokenUrl": "https://token.example/token",
                "refreshUrl": "https://token.example/refresh", "scopes": {}}}},
            "openIdConnect": {"type": "openIdConnect",
                "openIdConnectUrl": "https://idp.example/.well-known/openid-configuration"}
        }}});
        let mut urls = document_urls(&spec.to_string());
        urls.sort();
        assert_eq!(
            urls,
            [
                "https://idp.example/.well-known/openid-configuration",
                "https://token.example/refresh",
                "https://token.example/token"
            ]
        );
    }
}
