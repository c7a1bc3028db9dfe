//! Audit events of a full flow, and the absence of every secret from the log:
//! passwords, access and refresh tokens, API key secrets, Authorization values.

use std::{
    io::Write,
    sync::{Arc, Mutex},
};

use poem::{http::StatusCode, test::TestClient};
use poem_secure::{
    openapi::service,
    route::{get, Route},
    secure,
    tokens::{NoCatalogue, TokenService},
    ApiKeys, Authenticator, Hardening, JwtConfig, MemoryApiKeyStore, MemorySessionStore,
    MemoryUserStore, PasswordHasher, Security, SessionStore, UserRecord,
};
use tracing_subscriber::fmt::MakeWriter;

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Buffer {
    type Writer = Buffer;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[secure(scopes = "me", rate = "2/min")]
#[poem::handler]
async fn me() -> &'static str {
    "me"
}

#[secure(scopes = "admin")]
#[poem::handler]
async fn admin() -> &'static str {
    "admin"
}

#[secure(auth = api_key, scopes = "stats:read")]
#[poem::handler]
async fn stats() -> &'static str {
    "stats"
}

#[secure(auth = basic)]
#[poem::handler]
async fn basic() -> &'static str {
    "basic"
}

#[tokio::test]
async fn a_full_flow_logs_every_audit_event_and_no_secret() {
    let buffer = Buffer::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(buffer.clone())
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    const PASSWORD: &str = "alice-very-secret-password-1";
    const WRONG: &str = "mallory-guess-password-9";
    let hasher = PasswordHasher::with_params(256, 1, 1).unwrap();
    let users = Arc::new(MemoryUserStore::new([UserRecord {
        username: "alice".into(),
        password_hash: hasher.hash(PASSWORD).await.unwrap(),
        roles: vec!["user".into()],
        permissions: vec![],
        scopes: vec!["me".into()],
        disabled: false,
    }]));
    let sessions: Arc<dyn SessionStore> = Arc::new(MemorySessionStore::new());
    let keys = ApiKeys::new(MemoryApiKeyStore::new());
    let security = Security::builder()
        .jwt(
            JwtConfig::hs256(b"a-32-byte-long-hmac-secret-key!!")
                .unwrap()
                .issuer("i")
                .audience("a"),
        )
        .sessions(sessions.clone())
        .api_keys(keys.clone())
        .basic(Authenticator::new(users.clone(), hasher.clone()))
        .build()
        .unwrap();
    let tokens = TokenService::new(security.clone(), Authenticator::new(users, hasher)).unwrap();
    let app = Route::new()
        .nest("/", service(tokens.api::<NoCatalogue>(), "t", "1"))
        .at("/me", get(me))
        .at("/admin", get(admin))
        .at("/stats", get(stats))
        .at("/basic", get(basic))
        .with(Hardening::new())
        .with(security);
    let cli = TestClient::new(app);
    let form = |body: String| {
        cli.post("/auth/token")
            .content_type("application/x-www-form-urlencoded")
            .body(body)
    };

    // Login failure, then success.
    form(format!(
        "grant_type=password&username=alice&password={WRONG}"
    ))
    .send()
    .await
    .assert_status(StatusCode::BAD_REQUEST);
    let resp = form(format!(
        "grant_type=password&username=alice&password={PASSWORD}"
    ))
    .send()
    .await;
    resp.assert_status_is_ok();
    let body: serde_json::Value = resp.json().await.value().deserialize();
    let access = body["access_token"].as_str().unwrap().to_owned();
    let refresh = body["refresh_token"].as_str().unwrap().to_owned();
    let bearer = format!("Bearer {access}");

    // Use, refusal (bad token), denial (missing scope), rate limit.
    cli.get("/me")
        .header("authorization", &bearer)
        .send()
        .await
        .assert_status_is_ok();
    let tampered = format!("Bearer {access}x");
    cli.get("/me")
        .header("authorization", &tampered)
        .send()
        .await
        .assert_status(StatusCode::UNAUTHORIZED);
    cli.get("/admin")
        .header("authorization", &bearer)
        .send()
        .await
        .assert_status(StatusCode::FORBIDDEN);
    cli.get("/me")
        .header("authorization", &bearer)
        .send()
        .await
        .assert_status_is_ok();
    cli.get("/me")
        .header("authorization", &bearer)
        .send()
        .await
        .assert_status(StatusCode::TOO_MANY_REQUESTS);

    // Refresh, then reuse of the rotated token (theft detection).
    let resp = cli
        .post("/auth/refresh")
        .content_type("application/x-www-form-urlencoded")
        .body(format!("refresh_token={refresh}"))
        .send()
        .await;
    resp.assert_status_is_ok();
    let body: serde_json::Value = resp.json().await.value().deserialize();
    let refresh2 = body["refresh_token"].as_str().unwrap().to_owned();
    let access2 = body["access_token"].as_str().unwrap().to_owned();
    cli.post("/auth/refresh")
        .content_type("application/x-www-form-urlencoded")
        .body(format!("refresh_token={refresh}"))
        .send()
        .await
        .assert_status(StatusCode::BAD_REQUEST);

    // The reuse ended the whole session: its latest access token too.
    cli.post("/auth/logout")
        .header("authorization", format!("Bearer {access2}"))
        .send()
        .await
        .assert_status(StatusCode::UNAUTHORIZED);

    // Logout, in a new session.
    let resp = form(format!(
        "grant_type=password&username=alice&password={PASSWORD}"
    ))
    .send()
    .await;
    resp.assert_status_is_ok();
    let body: serde_json::Value = resp.json().await.value().deserialize();
    let access3 = body["access_token"].as_str().unwrap().to_owned();
    cli.post("/auth/logout")
        .header("authorization", format!("Bearer {access3}"))
        .send()
        .await
        .assert_status(StatusCode::NO_CONTENT);

    // API key created, used, revoked, refused.
    let issued = keys
        .issue("exporter", "svc", &["stats:read"], None)
        .await
        .unwrap();
    let secret = issued.key.split_once('.').unwrap().1.to_owned();
    cli.get("/stats")
        .header("x-api-key", &issued.key)
        .send()
        .await
        .assert_status_is_ok();
    keys.revoke(&issued.record.id).await.unwrap();
    cli.get("/stats")
        .header("x-api-key", &issued.key)
        .send()
        .await
        .assert_status(StatusCode::UNAUTHORIZED);

    // Basic credentials, right and wrong.
    use base64::Engine as _;
    let basic_ok = base64::engine::general_purpose::STANDARD.encode(format!("alice:{PASSWORD}"));
    let basic_bad = base64::engine::general_purpose::STANDARD.encode(format!("alice:{WRONG}"));
    cli.get("/basic")
        .header("authorization", format!("Basic {basic_ok}"))
        .send()
        .await
        .assert_status_is_ok();
    cli.get("/basic")
        .header("authorization", format!("Basic {basic_bad}"))
        .send()
        .await
        .assert_status(StatusCode::UNAUTHORIZED);

    let log = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    for event in [
        "login_failure",
        "login_success",
        "token_refused",
        "access_denied",
        "rate_limited",
        "refresh_reuse_detected",
        "logout",
        "api_key_created",
        "api_key_used",
        "api_key_revoked",
        "credential_refused",
    ] {
        assert!(
            log.contains(&format!("event=\"{event}\"")) || log.contains(&format!("event={event}")),
            "no {event} event in:\n{log}"
        );
    }
    assert!(
        log.contains("request_id="),
        "events carry the request id:\n{log}"
    );
    assert!(
        log.contains("client_ip="),
        "events carry the client ip:\n{log}"
    );
    for secret in [
        PASSWORD,
        WRONG,
        &access,
        &access2,
        &refresh,
        &refresh2,
        &issued.key,
        &secret,
        &basic_ok,
        &basic_bad,
        &bearer,
    ] {
        assert!(!log.contains(secret), "a secret reached the log: {secret}");
    }
    // The JWT signature and payload segments alone must not appear either.
    for part in access.split('.').skip(1) {
        assert!(!log.contains(part), "a token segment reached the log");
    }
}

#[path = "support/peer.rs"]
mod peer;

#[tokio::test]
async fn behind_a_trusted_proxy_events_carry_the_forwarded_client_ip() {
    for security_outside in [true, false] {
        forwarded_client_ip_is_logged(security_outside).await;
    }
}

/// `Security` and `Hardening` in either order: the request's events carry
/// the client IP through the trusted proxy, never the proxy's.
async fn forwarded_client_ip_is_logged(security_outside: bool) {
    let buffer = Buffer::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(buffer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let security = Security::builder()
        .jwt(
            JwtConfig::hs256([6u8; 32])
                .unwrap()
                .issuer("i")
                .audience("a"),
        )
        .trusted_proxies(["10.0.0.0/8"])
        .build()
        .unwrap();
    let routes = Route::new().at("/me", get(me));
    let app: poem::endpoint::BoxEndpoint<'static, poem::Response> = if security_outside {
        poem::EndpointExt::boxed(routes.with(Hardening::new()).with(security))
    } else {
        poem::EndpointExt::boxed(routes.with(security).with(Hardening::new()))
    };
    let app = peer::with_peer(app);
    TestClient::new(app)
        .get("/me")
        .header("x-test-peer", "10.1.2.3:5000")
        .header("x-forwarded-for", "203.0.113.77")
        .send()
        .await
        .assert_status(StatusCode::UNAUTHORIZED);
    let log = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    assert!(
        log.contains("client_ip=203.0.113.77"),
        "{security_outside}: {log}"
    );
    assert!(
        !log.contains("client_ip=10.1.2.3"),
        "{security_outside}: {log}"
    );
}
