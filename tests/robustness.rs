//! Property tests for everything that parses untrusted input: the
//! Authorization and X-API-Key headers, JWT segments, the token endpoint's
//! form. Whatever the input: no panic, no 500, never access. Bounded (256
//! cases each) so CI stays fast; the fuzz targets in `fuzz/` explore longer.

use std::sync::{Arc, OnceLock};

use poem::{
    http::{HeaderValue, StatusCode},
    test::TestClient,
    EndpointExt, Request,
};
use poem_secure::{
    openapi::service,
    route::{get, Route},
    secure,
    tokens::{NoCatalogue, TokenService},
    ApiKeys, AuthKinds, Authenticator, JwtConfig, MemoryApiKeyStore, MemorySessionStore,
    MemoryUserStore, PasswordHasher, Policy, Security, SessionStore, UserRecord,
};
use proptest::prelude::*;

static POLICY: Policy = Policy::secured("robustness::any").with_auth(
    AuthKinds::BEARER
        .or(AuthKinds::API_KEY)
        .or(AuthKinds::BASIC),
);

fn rt() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap()
    })
}

fn security() -> &'static Security {
    static S: OnceLock<Security> = OnceLock::new();
    S.get_or_init(|| {
        let users = MemoryUserStore::new([]);
        Security::builder()
            .jwt(
                JwtConfig::hs256([8u8; 32])
                    .unwrap()
                    .issuer("i")
                    .audience("a"),
            )
            .api_keys(ApiKeys::new(MemoryApiKeyStore::new()))
            .basic(Authenticator::new(
                users,
                PasswordHasher::with_params(256, 1, 1).unwrap(),
            ))
            // Every input here must reach verification: no failure budget
            // (tests/abuse.rs tests the budgets).
            .credential_failure_limits(None, None)
            .build()
            .unwrap()
    })
}

/// Runs the guard's whole verification on a request carrying `name: value`.
fn authorize_with(name: &str, value: &[u8]) -> Option<StatusCode> {
    let Ok(v) = HeaderValue::from_bytes(value) else {
        return None;
    };
    let req = Request::builder().header(name, v).finish();
    let out = rt().block_on(security().authorize(&POLICY, &req));
    Some(match out {
        Ok(_) => StatusCode::OK,
        Err(e) => e.status(),
    })
}

fn refused(status: StatusCode) -> bool {
    // Never access, never a server error: 400 (malformed) or 401 (invalid).
    status == StatusCode::BAD_REQUEST || status == StatusCode::UNAUTHORIZED
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_authorization_headers_are_refused_cleanly(value in proptest::collection::vec(any::<u8>(), 0..300)) {
        if let Some(status) = authorize_with("authorization", &value) {
            prop_assert!(refused(status), "status {status}");
        }
    }

    #[test]
    fn bearer_with_arbitrary_jwt_segments_is_refused(
        h in "[A-Za-z0-9_=+/-]{0,60}", p in "[A-Za-z0-9_=+/-]{0,120}", s in "[A-Za-z0-9_=+/-]{0,60}", dots in 0usize..5
    ) {
        let mut token = format!("{h}.{p}");
        if dots > 1 { token.push('.'); token.push_str(&s); }
        for _ in 2..dots { token.push('.'); }
        let status = authorize_with("authorization", format!("Bearer {token}").as_bytes()).unwrap();
        prop_assert_eq!(status, StatusCode::UNAUTHORIZED);
    }

    #[test]
    fn basic_with_arbitrary_payload_is_refused(payload in proptest::collection::vec(any::<u8>(), 0..120)) {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD.encode(&payload);
        let status = authorize_with("authorization", format!("Basic {b64}").as_bytes()).unwrap();
        prop_assert!(refused(status), "status {status}");
    }

    #[test]
    fn arbitrary_api_keys_are_refused(value in proptest::collection::vec(any::<u8>(), 0..300)) {
        if let Some(status) = authorize_with("x-api-key", &value) {
            prop_assert!(refused(status), "status {status}");
        }
    }

    #[test]
    fn api_key_shaped_values_are_refused(prefix in "[A-Za-z0-9_-]{0,20}", secret in "[A-Za-z0-9_.-]{0,80}") {
        let status = authorize_with("x-api-key", format!("{prefix}.{secret}").as_bytes()).unwrap();
        prop_assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
}

#[secure]
#[poem::handler]
async fn guarded() -> &'static str {
    "secret"
}

type App = Arc<poem::endpoint::BoxEndpoint<'static, poem::Response>>;

fn token_app() -> &'static (Security, App) {
    static APP: OnceLock<(Security, App)> = OnceLock::new();
    APP.get_or_init(|| {
        let sessions: Arc<dyn SessionStore> = Arc::new(MemorySessionStore::new());
        let security = Security::builder()
            .jwt(
                JwtConfig::hs256([9u8; 32])
                    .unwrap()
                    .issuer("i")
                    .audience("a"),
            )
            .sessions(sessions.clone())
            .build()
            .unwrap();
        let hasher = PasswordHasher::with_params(256, 1, 1).unwrap();
        let phc = rt().block_on(hasher.hash("correct-password-1")).unwrap();
        let users = MemoryUserStore::new([UserRecord {
            username: "alice".into(),
            password_hash: phc,
            roles: vec![],
            permissions: vec![],
            scopes: vec!["me".into()],
            disabled: false,
        }]);
        let tokens =
            TokenService::new(security.clone(), Authenticator::new(users, hasher)).unwrap();
        let app = Route::new()
            .nest("/", service(tokens.api::<NoCatalogue>(), "t", "1"))
            .at("/guarded", get(guarded))
            .with(security.clone())
            .map_to_response()
            .boxed();
        (security, Arc::new(app))
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_token_forms_never_issue_tokens_or_fail_the_server(
        body in proptest::collection::vec(any::<u8>(), 0..200),
        content_type in prop_oneof![Just("application/x-www-form-urlencoded"), Just("application/json"), Just("text/plain")],
    ) {
        let (_, app) = token_app();
        let resp = rt().block_on(async {
            TestClient::new(app.clone()).post("/auth/token").content_type(content_type).body(body).send().await
        });
        let status = resp.0.status();
        prop_assert!(status.is_client_error(), "status {status}");
    }

    #[test]
    fn form_fields_with_arbitrary_values_only_log_in_the_real_user(
        grant in "[a-z_]{0,16}|password|refresh_token", user in "\\PC{0,20}", pass in "\\PC{0,40}", scope in "\\PC{0,20}",
    ) {
        let (_, app) = token_app();
        let form = format!(
            "grant_type={}&username={}&password={}&scope={}",
            urlencode(&grant), urlencode(&user), urlencode(&pass), urlencode(&scope)
        );
        let resp = rt().block_on(async {
            TestClient::new(app.clone())
                .post("/auth/token")
                .content_type("application/x-www-form-urlencoded")
                .body(form)
                .send()
                .await
        });
        let status = resp.0.status();
        let real = grant == "password" && user == "alice" && pass == "correct-password-1";
        prop_assert!(status.is_client_error() || (real && status == StatusCode::OK), "status {status}");
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[test]
fn bad_percent_encoding_in_the_form_is_a_clean_400() {
    // A plain test: the shared app is built (with `block_on`) outside any runtime.
    let (_, app) = token_app();
    let resp = rt().block_on(async {
        TestClient::new(app.clone())
            .post("/auth/token")
            .content_type("application/x-www-form-urlencoded")
            .body("grant_type=password&username=%ZZ&password=%")
            .send()
            .await
    });
    resp.assert_status(StatusCode::BAD_REQUEST);
}
