//! Arbitrary bodies to `POST /auth/token`: a 4xx, never a panic or a 5xx,
//! never tokens.
#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use poem::{endpoint::BoxEndpoint, test::TestClient, EndpointExt, Response};
use poem_secure::{
    openapi::service,
    route::Route,
    tokens::{NoCatalogue, TokenService},
    Authenticator, JwtConfig, MemorySessionStore, MemoryUserStore, PasswordHasher, Security, SessionStore,
};

type App = Arc<BoxEndpoint<'static, Response>>;

fn setup() -> &'static (tokio::runtime::Runtime, App) {
    static S: OnceLock<(tokio::runtime::Runtime, App)> = OnceLock::new();
    S.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let sessions: Arc<dyn SessionStore> = Arc::new(MemorySessionStore::new());
        let security = Security::builder()
            .jwt(JwtConfig::hs256([9u8; 32]).unwrap().issuer("i").audience("a"))
            .sessions(sessions.clone())
            .build()
            .unwrap();
        let auth = Authenticator::new(MemoryUserStore::new([]), PasswordHasher::with_params(64, 1, 1).unwrap());
        let tokens = TokenService::new(security.clone(), auth).unwrap();
        let app = Route::new()
            .nest("/", service(tokens.api::<NoCatalogue>(), "t", "1"))
            .with(security)
            .map_to_response()
            .boxed();
        (rt, Arc::new(app))
    })
}

fuzz_target!(|data: &[u8]| {
    let (rt, app) = setup();
    let resp = rt.block_on(
        TestClient::new(app.clone())
            .post("/auth/token")
            .content_type("application/x-www-form-urlencoded")
            .body(data.to_vec())
            .send(),
    );
    assert!(resp.0.status().is_client_error(), "status {}", resp.0.status());
});
