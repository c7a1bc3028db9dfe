//! Resource-server mode against a real OpenID provider: node-oidc-provider
//! (`tests/oidc/provider.mjs`, OpenID Certified) started on loopback by
//! `tests/support/oidc_provider.rs`. Client-credentials access tokens in the
//! RFC 9068 format, fetched from its token endpoint, are verified with keys
//! found through its discovery document, on `#[secure]` routes.
//!
//! Needs `npm ci --prefix tests/oidc` (scripts/test.sh runs it); without it
//! these tests FAIL, never skip.

#[path = "support/oidc_provider.rs"]
mod oidc_provider;

use oidc_provider::{OidcProvider, TokenRequest, ADMIN, API, API_ES};
use poem::{
    handler,
    http::{header, StatusCode},
    test::{TestClient, TestResponse},
    Endpoint, EndpointExt,
};
use poem_secure::{
    route::{get, Route},
    secure, JwksClient, JwtConfig, Principal, Security,
};

#[secure(scopes = "notes:read")]
#[handler]
async fn notes(who: Principal) -> String {
    format!("{}|{}", who.subject(), who.scopes().join(" "))
}

fn app(sec: &Security) -> impl Endpoint {
    Route::new().at("/notes", get(notes)).with(sec.clone())
}

/// The verifier as a user configures it today: keys through discovery, the
/// issuer and the audience (the resource indicator) given by hand.
async fn security(idp: &OidcProvider) -> Security {
    let jwks = JwksClient::from_discovery(idp.issuer())
        .await
        .expect("discovery");
    Security::builder()
        .jwt(
            JwtConfig::key_source(jwks)
                .issuer(idp.issuer())
                .audience(API),
        )
        .build()
        .expect("security")
}

async fn call(sec: &Security, token: Option<&str>) -> TestResponse {
    let client = TestClient::new(app(sec));
    let mut req = client.get("/notes");
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    req.send().await
}

#[tokio::test]
async fn a_client_credentials_jwt_of_the_provider_passes_a_secure_route() {
    let idp = OidcProvider::shared();
    eprintln!("the OpenID provider started in {:?}", idp.started_in());
    let sec = security(idp).await;

    let token = idp.token(ADMIN, &TokenRequest::scope("notes:read").resource(API));
    let resp = call(&sec, Some(&token)).await;
    resp.assert_status_is_ok();
    // RFC 9068 §2.2: a client-credentials token's `sub` is the client id.
    resp.assert_text("cc-admin|notes:read").await;

    // Scopes are enforced: a token without `notes:read` is forbidden.
    let token = idp.token(ADMIN, &TokenRequest::scope("notes:write").resource(API));
    assert_eq!(
        call(&sec, Some(&token)).await.0.status(),
        StatusCode::FORBIDDEN
    );
    // No token at all.
    assert_eq!(call(&sec, None).await.0.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn es256_tokens_for_another_resource_need_their_own_audience() {
    let idp = OidcProvider::shared();
    let token = idp.token(ADMIN, &TokenRequest::scope("notes:read").resource(API_ES));
    // Configured for https://api.test: a token for https://api-es.test is refused.
    let sec = security(idp).await;
    assert_eq!(
        call(&sec, Some(&token)).await.0.status(),
        StatusCode::UNAUTHORIZED
    );
    // Configured for its audience, the ES256 token passes.
    let jwks = JwksClient::from_discovery(idp.issuer()).await.unwrap();
    let sec = Security::builder()
        .jwt(
            JwtConfig::key_source(jwks)
                .issuer(idp.issuer())
                .audience(API_ES),
        )
        .build()
        .unwrap();
    call(&sec, Some(&token)).await.assert_status_is_ok();
}
