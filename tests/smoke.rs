use poem::{handler, http::StatusCode, test::TestClient, EndpointExt};
use poem_openapi::{payload::PlainText, OpenApi};
use poem_secure::{
    deny_unprotected, public,
    route::{get, Route},
    secure,
    testing::token,
    Catalogue, JwtConfig, Principal, Security,
};

pub const ACCESS: Catalogue = Catalogue::new()
    .token_url("/auth/token")
    .scopes(&[("items", "Items"), ("notes:read", "Read notes")])
    .roles(&["admin"]);

#[deny_unprotected(catalogue = ACCESS)]
mod api {
    use super::*;
    #[secure(scopes = "items", roles = "admin", rate = "5/min")]
    #[handler]
    pub async fn admin_items(who: Principal) -> String {
        who.subject().to_owned()
    }

    #[public]
    #[handler]
    pub async fn health() -> &'static str {
        "ok"
    }

    pub struct Notes;
    #[OpenApi]
    impl Notes {
        #[secure(scopes = "notes:read")]
        #[oai(path = "/notes", method = "get")]
        async fn list(&self, who: Principal) -> PlainText<String> {
            PlainText(who.subject().to_owned())
        }
    }
}

fn security() -> Security {
    Security::builder()
        .jwt(
            JwtConfig::hs256([9u8; 32])
                .unwrap()
                .issuer("i")
                .audience("a"),
        )
        .build()
        .unwrap()
}

#[tokio::test]
async fn smoke() {
    let sec = security();
    let svc = poem_secure::openapi::service(api::Notes, "t", "1");
    println!("{}", svc.spec());
    let app = Route::new()
        .at("/items", get(api::admin_items))
        .at("/health", get(api::health))
        .nest("/api", svc)
        .with(sec.clone());
    let cli = TestClient::new(app);
    cli.get("/items")
        .send()
        .await
        .assert_status(StatusCode::UNAUTHORIZED);
    let t = token(&sec, "alice")
        .scopes(["items"])
        .roles(["admin"])
        .bearer();
    let r = cli.get("/items").header("authorization", &t).send().await;
    r.assert_status_is_ok();
    r.assert_text("alice").await;
    let t2 = token(&sec, "bob").scopes(["notes:read"]).bearer();
    let r = cli
        .get("/api/notes")
        .header("authorization", &t2)
        .send()
        .await;
    r.assert_status_is_ok();
    let r = cli
        .get("/api/notes")
        .header("authorization", &t)
        .send()
        .await;
    r.assert_status(StatusCode::FORBIDDEN);
    println!("{:?}", r.0.headers());
    cli.get("/health").send().await.assert_status_is_ok();
}
