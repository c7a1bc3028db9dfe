//! An API whose tokens come from your identity provider (resource-server
//! mode): copy it, point it at your provider, and the `#[secure]` routes
//! below are enforced with its tokens.
//!
//! ```text
//! ISSUER=https://sso.example.com/realms/acme AUDIENCE=notes-api \
//! PROVIDER=keycloak CLIENT_ID=notes-api DOCS_CLIENT_ID=notes-docs \
//!     cargo run --example resource_server --features jwks,swagger-ui
//! ```
//!
//! | variable | meaning |
//! | --- | --- |
//! | `ISSUER` | the provider's issuer URL, exactly as its discovery document names it (Auth0: with the trailing `/`) |
//! | `AUDIENCE` | this API's audience (`aud`): Keycloak's client id or audience mapper, Auth0's API identifier, Entra's application ID URI |
//! | `PROVIDER` | `keycloak` (with `CLIENT_ID`), `auth0` (with `ROLES_NAMESPACE`, e.g. `https://example.com`), `entra`, or `standard` (the default: `roles`, `permissions`, `scope`) |
//! | `DOCS_CLIENT_ID` | optional: a public client (no secret, PKCE) that Swagger UI logs in with; its redirect URI is `http://ADDR/docs/oauth-receiver.html` and `http://ADDR` an allowed web origin (CORS) |
//! | `CA_PEM` | optional: a PEM file with your private CA, trusted beside the system's |
//! | `ADDR` | where to listen (default `127.0.0.1:3000`) |
//!
//! The app starts even while the provider is down: guarded routes answer 503
//! until its keys are loaded (retried with backoff). Swagger UI is at
//! `/docs`: "Authorize" logs in at the provider (OpenID Connect, authorization
//! code with PKCE), then "Try it out" calls the API with your token.

use poem::{listener::TcpListener, Server};
use poem_openapi::{payload::Json, Object, OpenApi};
use poem_secure::{
    deny_unprotected,
    openapi::{service, OpenApiFlows, SwaggerUi},
    public,
    route::{self, Route},
    secure, Catalogue, ClaimMapping, DiscoveredKeys, Hardening, HttpsTrust, JwtConfig, Principal,
    Security,
};

/// The scopes and roles this API checks; the provider issues them. The
/// OpenAPI login is the provider's, known at startup (`runtime_flows`).
const ACCESS: Catalogue = Catalogue::new()
    .scopes(&[("notes:read", "Read notes"), ("notes:write", "Write notes")])
    .roles(&["admin"])
    .runtime_flows();

#[derive(Object)]
struct WhoAmI {
    subject: String,
    scopes: Vec<String>,
    roles: Vec<String>,
    permissions: Vec<String>,
}

struct Api;

#[deny_unprotected(catalogue = ACCESS)]
#[OpenApi]
impl Api {
    #[public]
    #[oai(path = "/health", method = "get")]
    async fn health(&self) -> Json<&'static str> {
        Json("ok")
    }

    /// Who the token says you are, as the claim mapping read it.
    #[secure(scopes = "notes:read")]
    #[oai(path = "/whoami", method = "get")]
    async fn whoami(&self, who: Principal) -> Json<WhoAmI> {
        Json(WhoAmI {
            subject: who.subject().to_owned(),
            scopes: who.scopes().to_vec(),
            roles: who.roles().to_vec(),
            permissions: who.permissions().to_vec(),
        })
    }

    /// Only for the `admin` role (realm or client role on Keycloak,
    /// namespaced role on Auth0, app role on Entra ID).
    #[secure(roles = "admin")]
    #[oai(path = "/admin", method = "get")]
    async fn admin(&self) -> Json<&'static str> {
        Json("hello, admin")
    }
}

fn var(name: &str) -> Result<String, String> {
    std::env::var(name)
        .map_err(|_| format!("set {name} (see the top of examples/resource_server.rs)"))
}

/// Where roles, permissions and scopes are in this provider's tokens, and
/// which header `typ` it sends.
fn mapping(jwt: JwtConfig, provider: &str) -> Result<JwtConfig, String> {
    Ok(match provider {
        "keycloak" => jwt
            .claims(ClaimMapping::keycloak(&var("CLIENT_ID")?))
            .accept_typ(["at+jwt", "JWT"]),
        "auth0" => jwt
            .claims(ClaimMapping::auth0(&var("ROLES_NAMESPACE")?))
            .accept_typ(["at+jwt", "JWT"]),
        "entra" => jwt.claims(ClaimMapping::entra()).accept_typ(["JWT"]),
        "standard" => jwt,
        other => {
            return Err(format!(
                "PROVIDER={other:?}: use keycloak, auth0, entra or standard"
            ))
        }
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_target(false).init();
    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:3000".to_owned());
    let issuer = var("ISSUER")?;

    // The system's CAs, plus yours if given.
    let mut trust = HttpsTrust::system();
    if let Ok(path) = std::env::var("CA_PEM") {
        trust = trust.add_ca_pem(&std::fs::read(&path)?)?;
    }
    // Discovery (with the exact issuer match), keys and algorithms, loaded
    // in the background; `JwtConfig::discover(&issuer).await?` instead fails
    // fast when the provider cannot be reached at startup.
    let keys = DiscoveredKeys::lazy(&issuer)?.https_trust(trust);
    let provider = std::env::var("PROVIDER").unwrap_or_else(|_| "standard".to_owned());
    let audience = var("AUDIENCE")?;
    let jwt = mapping(JwtConfig::key_source(keys).audience(&audience), &provider)?;
    let security = Security::builder().jwt(jwt).build()?;

    // The OpenAPI document's login: an `openIdConnect` scheme with the
    // issuer's discovery URL (the browser reads it, so this works while the
    // provider is down). Installed before the document is built.
    OpenApiFlows::from_issuer(&issuer)?.install()?;
    let api = service(Api, "resource server", "1.0").server(format!("http://{addr}"));
    // Swagger UI: authorization code with PKCE as a public client.
    let mut docs = SwaggerUi::new(&api).scopes(["openid", "notes:read"]);
    if let Ok(client_id) = std::env::var("DOCS_CLIENT_ID") {
        docs = docs.pkce_client(client_id);
    }
    if provider == "auth0" {
        // Without `audience`, Auth0 issues no JWT for this API.
        docs = docs.authorization_param("audience", &audience);
    }
    let app = Route::new()
        .at("/openapi.json", route::public(api.spec_endpoint()))
        .nest("/docs", route::public(docs.endpoint()?))
        .nest("/", api)
        .with(Hardening::new())
        .with(security);

    println!("resource server listening on http://{addr} (tokens of {issuer})");
    Server::new(TcpListener::bind(addr)).run(app).await?;
    Ok(())
}
