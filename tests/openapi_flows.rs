//! OpenAPI security schemes from the configuration: the OAuth2 client
//! credentials and authorization-code flows and `openIdConnect`, from a
//! catalogue's `const` URLs or installed at startup (`OpenApiFlows`), with
//! each operation's scopes under the scheme the app uses; and the Swagger UI
//! page that logs in with PKCE (`SwaggerUi`).

use poem::{http::StatusCode, test::TestClient};
use poem_openapi::{payload::PlainText, OpenApi};
use poem_secure::{
    deny_unprotected,
    openapi::{service, OpenApiFlows, SwaggerUi},
    public,
    route::{self, Route},
    secure, Catalogue,
};
use serde_json::{json, Value};

const SCOPES: &[(&str, &str)] = &[("notes:read", "Read notes"), ("notes:write", "Write notes")];
const IDP: &str = "https://sso.example.com/realms/acme";
const AUTH_URL: &str = "https://sso.example.com/realms/acme/protocol/openid-connect/auth";
const TOKEN_URL: &str = "https://sso.example.com/realms/acme/protocol/openid-connect/token";
const DISCOVERY: &str = "https://sso.example.com/realms/acme/.well-known/openid-configuration";

/// Declares `$api` with the same operations, checked against `$cat`.
macro_rules! api {
    ($api:ident, $cat:ident) => {
        pub struct $api;

        #[deny_unprotected(catalogue = $cat)]
        #[OpenApi]
        impl $api {
            #[secure(scopes = "notes:read")]
            #[oai(path = "/notes", method = "get")]
            async fn notes(&self) -> PlainText<&'static str> {
                PlainText("notes")
            }

            #[secure(scopes = "notes:read notes:write")]
            #[oai(path = "/notes", method = "post")]
            async fn write(&self) -> PlainText<&'static str> {
                PlainText("written")
            }

            #[secure(auth = any(bearer, api_key), scopes = "notes:read")]
            #[oai(path = "/export", method = "get")]
            async fn export(&self) -> PlainText<&'static str> {
                PlainText("export")
            }

            #[public]
            #[oai(path = "/health", method = "get")]
            async fn health(&self) -> PlainText<&'static str> {
                PlainText("ok")
            }
        }
    };
}

pub const CLIENT_CREDENTIALS: Catalogue = Catalogue::new()
    .client_credentials(TOKEN_URL)
    .scopes(SCOPES);
pub const AUTHORIZATION_CODE: Catalogue = Catalogue::new()
    .authorization_code(AUTH_URL, TOKEN_URL)
    .refresh_url(TOKEN_URL)
    .scopes(SCOPES);
pub const OPENID_CONNECT: Catalogue = Catalogue::new().openid_connect(DISCOVERY).scopes(SCOPES);
pub const EVERY_FLOW: Catalogue = Catalogue::new()
    .token_url("/auth/token")
    .client_credentials(TOKEN_URL)
    .authorization_code(AUTH_URL, TOKEN_URL)
    .openid_connect(DISCOVERY)
    .scopes(SCOPES);
pub const AT_STARTUP: Catalogue = Catalogue::new()
    .token_url("/fallback/token")
    .scopes(SCOPES)
    .runtime_flows();

api!(CcApi, CLIENT_CREDENTIALS);
api!(AcApi, AUTHORIZATION_CODE);
api!(OidcApi, OPENID_CONNECT);
api!(EveryApi, EVERY_FLOW);
api!(StartupApi, AT_STARTUP);

fn spec<T: OpenApi + poem_secure::Protected>(api: T) -> Value {
    serde_json::from_str(&service(api, "t", "1").spec()).unwrap()
}

fn schemes(spec: &Value) -> Vec<String> {
    spec["components"]["securitySchemes"]
        .as_object()
        .unwrap_or_else(|| panic!("no securitySchemes: {spec:#}"))
        .keys()
        .cloned()
        .collect()
}

fn security<'a>(spec: &'a Value, path: &str, method: &str) -> &'a Value {
    let op = &spec["paths"][path][method];
    assert!(op.is_object(), "no operation {method} {path}");
    &op["security"]
}

fn scope_map() -> Value {
    json!({ "notes:read": "Read notes", "notes:write": "Write notes" })
}

#[test]
fn client_credentials_flow_is_documented_with_the_token_url_and_scopes() {
    let spec = spec(CcApi);
    assert_eq!(
        schemes(&spec),
        ["apiKey", "oauth2"],
        "no bearerAuth beside oauth2"
    );
    let oauth2 = &spec["components"]["securitySchemes"]["oauth2"];
    assert_eq!(oauth2["type"], "oauth2");
    assert_eq!(
        oauth2["flows"],
        json!({ "clientCredentials": { "tokenUrl": TOKEN_URL, "scopes": scope_map() } })
    );
    assert_eq!(
        security(&spec, "/notes", "get"),
        &json!([{ "oauth2": ["notes:read"] }])
    );
}

#[test]
fn authorization_code_flow_is_documented_with_both_urls_refresh_and_scopes() {
    let spec = spec(AcApi);
    assert_eq!(schemes(&spec), ["apiKey", "oauth2"]);
    assert_eq!(
        spec["components"]["securitySchemes"]["oauth2"]["flows"],
        json!({ "authorizationCode": {
            "authorizationUrl": AUTH_URL,
            "tokenUrl": TOKEN_URL,
            "refreshUrl": TOKEN_URL,
            "scopes": scope_map(),
        } })
    );
    assert_eq!(
        security(&spec, "/notes", "post"),
        &json!([{ "oauth2": ["notes:read", "notes:write"] }])
    );
}

#[test]
fn openid_connect_scheme_carries_the_discovery_url_and_operations_its_scopes() {
    let spec = spec(OidcApi);
    assert_eq!(
        schemes(&spec),
        ["apiKey", "openIdConnect"],
        "neither oauth2 nor bearerAuth"
    );
    assert_eq!(
        spec["components"]["securitySchemes"]["openIdConnect"],
        json!({
            "type": "openIdConnect",
            "description": "OpenID Connect; the access token goes in `Authorization: Bearer`.",
            "openIdConnectUrl": DISCOVERY,
        })
    );
    assert_eq!(
        security(&spec, "/notes", "get"),
        &json!([{ "openIdConnect": ["notes:read"] }])
    );
    // OR with the API key: separate requirement objects, the key with no scope.
    assert_eq!(
        security(&spec, "/export", "get"),
        &json!([{ "openIdConnect": ["notes:read"] }, { "apiKey": [] }])
    );
    assert!(spec["paths"]["/health"]["get"].get("security").is_none());
}

#[test]
fn every_flow_in_one_oauth2_scheme_beside_openid_connect_as_alternatives() {
    let spec = spec(EveryApi);
    assert_eq!(schemes(&spec), ["apiKey", "oauth2", "openIdConnect"]);
    let flows = &spec["components"]["securitySchemes"]["oauth2"]["flows"];
    let mut kinds: Vec<&String> = flows.as_object().unwrap().keys().collect();
    kinds.sort();
    assert_eq!(
        kinds,
        ["authorizationCode", "clientCredentials", "password"]
    );
    assert_eq!(flows["password"]["tokenUrl"], "/auth/token");
    assert_eq!(
        security(&spec, "/notes", "get"),
        &json!([{ "oauth2": ["notes:read"] }, { "openIdConnect": ["notes:read"] }])
    );
    assert_eq!(
        security(&spec, "/export", "get"),
        &json!([
            { "oauth2": ["notes:read"] },
            { "openIdConnect": ["notes:read"] },
            { "apiKey": [] }
        ])
    );
}

/// The only test of this binary that installs process-wide flows, and the
/// only one building `StartupApi`'s document.
#[test]
fn flows_installed_at_startup_replace_the_catalogues_fallback() {
    OpenApiFlows::from_issuer(IDP)
        .unwrap()
        .authorization_code(AUTH_URL, TOKEN_URL)
        .install()
        .unwrap();
    let spec = spec(StartupApi);
    assert_eq!(schemes(&spec), ["apiKey", "oauth2", "openIdConnect"]);
    assert_eq!(
        spec["components"]["securitySchemes"]["openIdConnect"]["openIdConnectUrl"],
        DISCOVERY
    );
    assert_eq!(
        spec["components"]["securitySchemes"]["oauth2"]["flows"],
        json!({ "authorizationCode": {
            "authorizationUrl": AUTH_URL,
            "tokenUrl": TOKEN_URL,
            "scopes": scope_map(),
        } }),
        "the catalogue's fallback password flow is replaced"
    );
    assert_eq!(
        security(&spec, "/notes", "post"),
        &json!([
            { "oauth2": ["notes:read", "notes:write"] },
            { "openIdConnect": ["notes:read", "notes:write"] }
        ])
    );
    // Catalogues without `runtime_flows()` keep their own flows.
    assert_eq!(schemes(&self::spec(CcApi)), ["apiKey", "oauth2"]);
    // Too late now: a document was built.
    let err = OpenApiFlows::new()
        .password("/other")
        .install()
        .unwrap_err();
    assert!(err.to_string().contains("already installed"), "{err}");
}

// ---------------------------------------------------------------------------
// Swagger UI with PKCE
// ---------------------------------------------------------------------------

#[tokio::test]
async fn swagger_ui_page_turns_on_pkce_with_a_public_client_and_allows_the_provider() {
    let api = service(AcApi, "t", "1");
    let ui = SwaggerUi::new(&api)
        .pkce_client("notes-docs")
        .scopes(["openid", "notes:read"])
        .authorization_param("audience", "https://notes.example.com")
        .endpoint()
        .unwrap();
    let cli = TestClient::new(Route::new().nest("/docs", route::public(ui)));

    let resp = cli.get("/docs").send().await;
    resp.assert_status_is_ok();
    let csp = resp.0.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("connect-src 'self' https://sso.example.com;"),
        "the provider's token endpoint is reachable: {csp}"
    );
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    let page = resp.0.into_body().into_string().await.unwrap();
    let init = page
        .split("var init = ")
        .nth(1)
        .and_then(|s| s.split(";\n").next())
        .unwrap_or_else(|| panic!("no initOAuth options in the page"));
    let init: Value = serde_json::from_str(init).unwrap();
    assert_eq!(
        init,
        json!({
            "usePkceWithAuthorizationCodeGrant": true,
            "clientId": "notes-docs",
            "scopes": ["openid", "notes:read"],
            "additionalQueryStringParams": { "audience": "https://notes.example.com" },
        })
    );
    // What poem-secure adds to poem-openapi's page names no secret (the
    // Swagger UI bundle itself mentions `client_secret` for other flows).
    let added = page
        .split("var init = ")
        .nth(1)
        .and_then(|s| s.split("</script>").next())
        .unwrap();
    assert!(added.contains("ui.initOAuth(init)"), "{added}");
    assert!(!added.to_ascii_lowercase().contains("secret"), "{added}");
    // The document itself is in the page (poem-openapi's own template).
    assert!(page.contains(AUTH_URL));

    let resp = cli.get("/docs/oauth-receiver.html").send().await;
    resp.assert_status_is_ok();
    assert_eq!(
        resp.0.headers()["content-security-policy"]
            .to_str()
            .unwrap(),
        csp
    );
    let receiver = resp.0.into_body().into_string().await.unwrap();
    assert!(receiver.contains("swaggerUIRedirectOauth2"));
}

#[tokio::test]
async fn swagger_ui_refuses_an_origin_that_is_not_one() {
    let api = service(OidcApi, "t", "1");
    for bad in [
        "sso.example.com",
        "https://a.example; script-src *",
        "ftp://x",
    ] {
        assert!(
            SwaggerUi::new(&api).connect_to(bad).endpoint().is_err(),
            "{bad}"
        );
    }
    let ui = SwaggerUi::new(&api)
        .connect_to("https://login.example.com:8443")
        .endpoint()
        .unwrap();
    let resp = TestClient::new(ui).get("/").send().await;
    assert_eq!(resp.0.status(), StatusCode::OK);
    let csp = resp.0.headers()["content-security-policy"]
        .to_str()
        .unwrap();
    assert!(
        csp.contains("connect-src 'self' https://login.example.com:8443 https://sso.example.com;"),
        "{csp}"
    );
}
