//! Arbitrary `Authorization` / `X-API-Key` values through the whole guard:
//! no panic, never access, never a server error.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use poem::{http::HeaderValue, Request};
use poem_secure::{
    ApiKeys, AuthKinds, Authenticator, JwtConfig, MemoryApiKeyStore, MemoryUserStore, PasswordHasher, Policy,
    Security,
};

static POLICY: Policy = Policy::secured("fuzz::any")
    .with_auth(AuthKinds::BEARER.or(AuthKinds::API_KEY).or(AuthKinds::BASIC));

fn setup() -> &'static (tokio::runtime::Runtime, Security) {
    static S: OnceLock<(tokio::runtime::Runtime, Security)> = OnceLock::new();
    S.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let security = Security::builder()
            .jwt(JwtConfig::hs256([8u8; 32]).unwrap().issuer("i").audience("a"))
            .api_keys(ApiKeys::new(MemoryApiKeyStore::new()))
            .basic(Authenticator::new(MemoryUserStore::new([]), PasswordHasher::with_params(64, 1, 1).unwrap()))
            // Every input must reach verification: no failure budget.
            .credential_failure_limits(None, None)
            .build()
            .unwrap();
        (rt, security)
    })
}

fuzz_target!(|data: &[u8]| {
    let (rt, security) = setup();
    let (name, value) = match data.split_first() {
        Some((0, rest)) => ("x-api-key", rest),
        Some((_, rest)) => ("authorization", rest),
        None => return,
    };
    let Ok(value) = HeaderValue::from_bytes(value) else { return };
    let req = Request::builder().header(name, value).finish();
    match rt.block_on(security.authorize(&POLICY, &req)) {
        Ok(_) => panic!("access granted to arbitrary input"),
        Err(e) => assert!(e.status().is_client_error(), "status {}", e.status()),
    }
});
