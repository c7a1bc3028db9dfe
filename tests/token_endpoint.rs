//! The OAuth2 token endpoint (`POST /auth/token`, `/auth/refresh`,
//! `/auth/logout`) driven over HTTP through poem's `TestClient`, with the
//! in-memory user and session stores: the password grant (RFC 6749 §4.3,
//! §5), the RFC 9068 access tokens it issues, scope intersection, one answer
//! for every failed login, refresh rotation with theft detection, logout, the
//! login rate limit, and the contract of `/work/shared/contracts/notes-demo.md`.

#[path = "support/peer.rs"]
mod peer;
use peer::with_peer;
use std::{
    collections::HashSet,
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use poem::{
    handler,
    http::{header, StatusCode},
    test::{TestClient, TestResponse},
    Endpoint,
};
use poem_secure::{
    openapi::service,
    route::{get, Route},
    secure,
    tokens::{LoginKey, NoCatalogue, TokenService},
    Answer, Authenticator, BoxFuture, CredentialError, JwtConfig, LoginLimits, MemorySessionStore,
    MemoryUserStore, PasswordHasher, Principal, Rate, Security, Session, SessionStore, UserRecord,
    UserStore,
};
use serde_json::{json, Value};

// ---------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------

const SECRET: &[u8; 32] = b"token-endpoint-secret-32-bytes!!";
const ISS: &str = "notes-demo";
const AUD: &str = "notes-api";

/// Verifying it costs seconds of argon2 work and never matches: a login of
/// `slowpoke` holds a hashing slot for that long.
const SLOW_PHC: &str = "$argon2id$v=19$m=1024,t=9000,p=1$c2FsdHNhbHRzYWx0c2FsdA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn fast_hasher() -> PasswordHasher {
    PasswordHasher::with_params(1024, 1, 1).unwrap()
}

fn record(name: &str, phc: String, roles: &[&str], scopes: &[&str], disabled: bool) -> UserRecord {
    UserRecord {
        username: name.into(),
        password_hash: phc,
        roles: roles.iter().map(|s| (*s).to_owned()).collect(),
        permissions: if roles.contains(&"admin") {
            vec!["notes:delete-any".into()]
        } else {
            vec![]
        },
        scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        disabled,
    }
}

const USER_SCOPES: &[&str] = &["me", "notes:read", "notes:write"];
const ADMIN_SCOPES: &[&str] = &["me", "notes:read", "notes:write", "admin"];
const LONG_PW_LEN: usize = 1024;

fn long_password() -> String {
    // 1024 bytes, with a distinct tail so that a truncation would show.
    format!("{}{}", "L".repeat(LONG_PW_LEN - 8), "tail-end")
}

/// The seeded users of the notes contract, plus `longpw` (a 1024-byte
/// password) and `slowpoke` (a hash that takes seconds to verify).
async fn seeded_users(h: &PasswordHasher) -> Arc<MemoryUserStore> {
    Arc::new(MemoryUserStore::new([
        record(
            "alice",
            h.hash("alice-password-1").await.unwrap(),
            &["user"],
            USER_SCOPES,
            false,
        ),
        record(
            "carol",
            h.hash("carol-password-1").await.unwrap(),
            &["user"],
            USER_SCOPES,
            false,
        ),
        record(
            "bob",
            h.hash("bob-password-1").await.unwrap(),
            &["user"],
            USER_SCOPES,
            true,
        ),
        record(
            "admin",
            h.hash("admin-password-1").await.unwrap(),
            &["admin"],
            ADMIN_SCOPES,
            false,
        ),
        record(
            "longpw",
            h.hash(&long_password()).await.unwrap(),
            &["user"],
            USER_SCOPES,
            false,
        ),
        record(
            "slowpoke",
            SLOW_PHC.to_owned(),
            &["user"],
            USER_SCOPES,
            false,
        ),
    ]))
}

struct Fixture {
    security: Security,
    service: TokenService,
    users: Arc<MemoryUserStore>,
    sessions: Arc<MemorySessionStore>,
}

struct Options {
    jwt: JwtConfig,
    hasher: PasswordHasher,
    refresh_ttl: Option<u64>,
    limits: Vec<(LoginKey, Rate)>,
    /// `None`: the framework's default failure limits.
    failure_limits: Option<LoginLimits>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            jwt: JwtConfig::hs256(SECRET).unwrap().issuer(ISS).audience(AUD),
            hasher: fast_hasher(),
            refresh_ttl: None,
            limits: Vec::new(),
            // Off, so that tests counting failures see only what they test;
            // the defaults have their own test below.
            failure_limits: Some(LoginLimits::new().per_ip(None).per_ip_and_username(None)),
        }
    }
}

async fn fixture_with(o: Options) -> Fixture {
    let users = seeded_users(&fast_hasher()).await;
    let sessions = Arc::new(MemorySessionStore::new());
    let store: Arc<dyn SessionStore> = sessions.clone();
    let security = Security::builder()
        .jwt(o.jwt)
        .sessions(store.clone())
        .build()
        .unwrap();
    let mut service = TokenService::new(
        security.clone(),
        Authenticator::new(users.clone(), o.hasher),
    )
    .unwrap();
    if let Some(ttl) = o.refresh_ttl {
        service = service.refresh_ttl_secs(ttl);
    }
    for (k, r) in o.limits {
        service = service.attempt_limit(k, r);
    }
    if let Some(l) = o.failure_limits {
        service = service.failure_limits(l);
    }
    Fixture {
        security,
        service,
        users,
        sessions,
    }
}

async fn fixture() -> Fixture {
    fixture_with(Options::default()).await
}

#[secure(scopes = "me")]
#[handler]
async fn me(who: Principal) -> String {
    format!(
        "{}|{}|{}",
        who.subject(),
        who.roles().join(" "),
        who.scopes().join(" ")
    )
}

#[secure(scopes = "admin", roles = "admin")]
#[handler]
async fn admin_only(who: Principal) -> String {
    who.subject().to_owned()
}

fn app(f: &Fixture) -> impl Endpoint {
    let api = service(f.service.api::<NoCatalogue>(), "tokens", "1");
    with_peer(
        Route::new()
            .at("/api/me", get(me))
            .at("/api/admin", get(admin_only))
            .nest("/", api)
            .with(f.security.clone()),
    )
}

fn client(f: &Fixture) -> TestClient<impl Endpoint> {
    TestClient::new(app(f))
}

async fn login(
    cli: &TestClient<impl Endpoint>,
    user: &str,
    pw: &str,
    scope: Option<&str>,
) -> TestResponse {
    let mut form = vec![
        ("grant_type", "password"),
        ("username", user),
        ("password", pw),
    ];
    if let Some(s) = scope {
        form.push(("scope", s));
    }
    cli.post("/auth/token").form(&form).send().await
}

async fn refresh(cli: &TestClient<impl Endpoint>, rt: &str, scope: Option<&str>) -> TestResponse {
    let mut form = vec![("refresh_token", rt)];
    if let Some(s) = scope {
        form.push(("scope", s));
    }
    cli.post("/auth/refresh").form(&form).send().await
}

/// Status, Cache-Control, content type and body.
async fn parts(resp: TestResponse) -> (StatusCode, String, String, String) {
    let h = |name| {
        resp.0
            .headers()
            .get(name)
            .map(|v: &poem::http::HeaderValue| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    let (cc, ct) = (h(header::CACHE_CONTROL), h(header::CONTENT_TYPE));
    let status = resp.0.status();
    (
        status,
        cc,
        ct,
        resp.0.into_body().into_string().await.unwrap(),
    )
}

/// A successful token response, parsed.
async fn tokens(resp: TestResponse) -> Value {
    let (status, cc, ct, body) = parts(resp).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(cc, "no-store");
    assert!(ct.starts_with("application/json"), "{ct}");
    serde_json::from_str(&body).unwrap()
}

async fn login_ok(
    cli: &TestClient<impl Endpoint>,
    user: &str,
    pw: &str,
    scope: Option<&str>,
) -> Value {
    tokens(login(cli, user, pw, scope).await).await
}

/// An OAuth2 error response: (status, `error`, raw body).
async fn oauth_error(resp: TestResponse) -> (StatusCode, String, String) {
    let (status, cc, ct, body) = parts(resp).await;
    assert_eq!(cc, "no-store", "error responses must not be cached either");
    assert!(ct.starts_with("application/json"), "{ct}: {body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert!(v["error_description"].is_string(), "{body}");
    (status, v["error"].as_str().unwrap().to_owned(), body)
}

fn bearer(t: &Value) -> String {
    format!("Bearer {}", t["access_token"].as_str().unwrap())
}

fn rt(t: &Value) -> &str {
    t["refresh_token"].as_str().unwrap()
}

async fn get_me(cli: &TestClient<impl Endpoint>, t: &Value) -> TestResponse {
    cli.get("/api/me")
        .header(header::AUTHORIZATION, bearer(t))
        .send()
        .await
}

fn claims_of(access_token: &str) -> Value {
    let mut v = Validation::new(Algorithm::HS256);
    v.set_issuer(&[ISS]);
    v.set_audience(&[AUD]);
    decode::<Value>(access_token, &DecodingKey::from_secret(SECRET), &v)
        .unwrap()
        .claims
}

// ---------------------------------------------------------------------------
// Password grant: success
// ---------------------------------------------------------------------------

#[tokio::test]
async fn password_grant_answers_an_oauth2_token_response() {
    let f = fixture().await;
    let cli = client(&f);
    let resp = login(&cli, "alice", "alice-password-1", None).await;
    assert_eq!(
        resp.0
            .headers()
            .get(header::PRAGMA)
            .map(|v| v.to_str().unwrap()),
        Some("no-cache")
    );
    let t = tokens(resp).await;
    assert_eq!(t["token_type"], "bearer");
    assert_eq!(t["expires_in"], 900, "default lifetime is 15 minutes");
    assert_eq!(t["scope"], "me notes:read notes:write");
    assert!(t["access_token"].as_str().unwrap().split('.').count() == 3);
    assert!(!rt(&t).is_empty());
    let mut fields: Vec<&str> = t.as_object().unwrap().keys().map(String::as_str).collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        [
            "access_token",
            "expires_in",
            "refresh_token",
            "scope",
            "token_type"
        ]
    );
    // The access token opens the API.
    let resp = get_me(&cli, &t).await;
    resp.assert_status_is_ok();
    resp.assert_text("alice|user|me notes:read notes:write")
        .await;
}

#[tokio::test]
async fn access_tokens_are_rfc9068_jwts() {
    let f = fixture().await;
    let cli = client(&f);
    let t = login_ok(&cli, "admin", "admin-password-1", None).await;
    let at = t["access_token"].as_str().unwrap();
    let h = decode_header(at).unwrap();
    assert_eq!(h.typ.as_deref(), Some("at+jwt"));
    assert_eq!(h.alg, Algorithm::HS256);
    let c = claims_of(at);
    assert_eq!(c["iss"], ISS);
    assert_eq!(c["aud"], AUD);
    assert_eq!(c["sub"], "admin");
    assert_eq!(c["scope"], "me notes:read notes:write admin");
    assert_eq!(c["roles"], json!(["admin"]));
    let (iat, exp) = (c["iat"].as_u64().unwrap(), c["exp"].as_u64().unwrap());
    assert_eq!(exp - iat, 900);
    assert!(iat.abs_diff(now()) <= 5);
    let jti = c["jti"].as_str().unwrap();
    assert!(jti.len() >= 16);
    // Every token has its own jti.
    let t2 = login_ok(&cli, "admin", "admin-password-1", None).await;
    assert_ne!(
        claims_of(t2["access_token"].as_str().unwrap())["jti"],
        c["jti"]
    );
    // Nothing secret in the token.
    let payload = at.split('.').nth(1).unwrap();
    let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    assert!(
        !raw.contains("argon2") && !raw.contains("admin-password-1"),
        "{raw}"
    );
    assert!(!raw.contains(rt(&t)), "{raw}");
}

#[tokio::test]
async fn access_token_lifetime_is_configurable() {
    let f = fixture_with(Options {
        jwt: JwtConfig::hs256(SECRET)
            .unwrap()
            .issuer(ISS)
            .audience(AUD)
            .access_ttl_secs(60),
        ..Options::default()
    })
    .await;
    let t = login_ok(&client(&f), "alice", "alice-password-1", None).await;
    assert_eq!(t["expires_in"], 60);
    let c = claims_of(t["access_token"].as_str().unwrap());
    assert_eq!(c["exp"].as_u64().unwrap() - c["iat"].as_u64().unwrap(), 60);
}

// ---------------------------------------------------------------------------
// Scopes
// ---------------------------------------------------------------------------

#[tokio::test]
async fn granted_scopes_are_the_requested_ones_the_user_may_hold() {
    let f = fixture().await;
    let cli = client(&f);
    // alice may not hold `admin`: asking for it grants only the rest.
    let t = login_ok(&cli, "alice", "alice-password-1", Some("notes:read admin")).await;
    assert_eq!(t["scope"], "notes:read");
    let c = claims_of(t["access_token"].as_str().unwrap());
    assert_eq!(c["scope"], "notes:read");
    // The narrower token is refused where `me` is needed.
    get_me(&cli, &t).await.assert_status(StatusCode::FORBIDDEN);
    cli.get("/api/admin")
        .header(header::AUTHORIZATION, bearer(&t))
        .send()
        .await
        .assert_status(StatusCode::FORBIDDEN);

    // Several requested scopes, separated by runs of spaces.
    let t = login_ok(&cli, "alice", "alice-password-1", Some("me  notes:write")).await;
    assert_eq!(t["scope"], "me notes:write");
    // The admin gets admin when asking for it.
    let t = login_ok(&cli, "admin", "admin-password-1", Some("admin")).await;
    assert_eq!(t["scope"], "admin");
    cli.get("/api/admin")
        .header(header::AUTHORIZATION, bearer(&t))
        .send()
        .await
        .assert_status_is_ok();
}

#[tokio::test]
async fn asking_only_for_scopes_the_user_may_not_hold_is_invalid_scope() {
    let f = fixture().await;
    let cli = client(&f);
    for scope in ["admin", "root notes:admin", "Me", "notes:read:all"] {
        let (status, err, _) =
            oauth_error(login(&cli, "alice", "alice-password-1", Some(scope)).await).await;
        assert_eq!(
            (status, err.as_str()),
            (StatusCode::BAD_REQUEST, "invalid_scope"),
            "{scope}"
        );
    }
    for scope in ["notes\"read", "notes\\read"] {
        let (status, err, _) =
            oauth_error(login(&cli, "alice", "alice-password-1", Some(scope)).await).await;
        assert_eq!(
            (status, err.as_str()),
            (StatusCode::BAD_REQUEST, "invalid_scope"),
            "{scope}"
        );
    }
}

// ---------------------------------------------------------------------------
// Password grant: failures
// ---------------------------------------------------------------------------

#[tokio::test]
async fn every_failed_login_gets_one_status_and_one_body() {
    let f = fixture().await;
    let cli = client(&f);
    let reference = parts(login(&cli, "alice", "wrong-password", None).await).await;
    assert_eq!(reference.0, StatusCode::BAD_REQUEST);
    let v: Value = serde_json::from_str(&reference.3).unwrap();
    assert_eq!(v["error"], "invalid_grant");
    for (user, pw, scope) in [
        ("nobody", "alice-password-1", None),
        ("bob", "bob-password-1", None), // disabled, right password
        ("bob", "wrong-password", None),
        ("Alice", "alice-password-1", None),
        ("alice", "", None),
        ("", "", None),
        ("alice", "alice-password-1 ", None),
        ("nobody", "x", Some("admin")),
        ("alice", "wrong-password", Some("notes:read")),
    ] {
        let got = parts(login(&cli, user, pw, scope).await).await;
        assert_eq!(got, reference, "{user}/{pw}/{scope:?}");
    }
    // No reason and no echo of the input in the body.
    let lower = reference.3.to_lowercase();
    for leak in [
        "alice",
        "wrong-password",
        "disabled",
        "unknown",
        "exist",
        "not found",
    ] {
        assert!(!lower.contains(leak), "{leak}: {}", reference.3);
    }
}

/// The structural form of "in the same time": with the only hashing slot
/// busy, unknown and disabled users must queue for the hasher and get the
/// same 503 as a wrong password, instead of an immediate 400.
#[tokio::test]
async fn every_failed_login_goes_through_the_password_hasher() {
    let f = fixture_with(Options {
        hasher: fast_hasher()
            .concurrency(1)
            .wait_timeout(Duration::from_millis(50)),
        ..Options::default()
    })
    .await;
    let cli = client(&f);
    // Control (unsaturated): 400 invalid_grant, and the dummy hash now exists.
    let (status, err, _) = oauth_error(login(&cli, "nobody", "x", None).await).await;
    assert_eq!(
        (status, err.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_grant")
    );

    let svc = f.service.clone();
    let occupant =
        tokio::spawn(async move { svc.authenticator().authenticate("slowpoke", "x").await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!occupant.is_finished());

    let reference = parts(login(&cli, "alice", "wrong-password", None).await).await;
    assert_eq!(
        reference.0,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        reference.3
    );
    assert_eq!(reference.1, "no-store");
    assert_eq!(reference.2, "application/problem+json");
    for (user, pw) in [
        ("nobody", "x"),
        ("someone-else", "alice-password-1"),
        ("bob", "bob-password-1"),
        ("bob", "nope"),
        ("alice", "alice-password-1"),
    ] {
        assert_eq!(
            parts(login(&cli, user, pw, None).await).await,
            reference,
            "{user}"
        );
    }
    assert!(!occupant.is_finished(), "the slot was busy throughout");
    occupant.abort();
}

#[tokio::test]
async fn long_passwords_log_in_and_over_1_kib_is_a_clear_400() {
    let f = fixture().await;
    let cli = client(&f);
    let pw = long_password();
    assert_eq!(pw.len(), 1024);
    login_ok(&cli, "longpw", &pw, None).await;
    // Not truncated: any prefix, and the 1024 bytes with one changed, fail.
    for bad in [&pw[..1023], &pw[..72], &pw[..64]] {
        let (_, err, _) = oauth_error(login(&cli, "longpw", bad, None).await).await;
        assert_eq!(err, "invalid_grant");
    }
    // Over the bound: invalid_request naming the limit, for every user alike.
    let over = format!("{pw}!");
    for user in ["longpw", "alice", "nobody"] {
        let (status, err, body) = oauth_error(login(&cli, user, &over, None).await).await;
        assert_eq!(
            (status, err.as_str()),
            (StatusCode::BAD_REQUEST, "invalid_request"),
            "{user}"
        );
        assert!(body.contains("1024"), "{body}");
    }
}

#[tokio::test]
async fn malformed_token_requests_are_invalid_request_or_unsupported_grant_type() {
    let f = fixture().await;
    let cli = client(&f);
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (
            vec![("username", "alice"), ("password", "alice-password-1")],
            "invalid_request",
        ),
        (
            vec![("grant_type", "password"), ("username", "alice")],
            "invalid_request",
        ),
        (
            vec![("grant_type", "password"), ("password", "alice-password-1")],
            "invalid_request",
        ),
        (vec![("grant_type", "refresh_token")], "invalid_request"),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("username", "alice"),
                ("password", "alice-password-1"),
            ],
            "unsupported_grant_type",
        ),
        (
            vec![
                ("grant_type", "PASSWORD"),
                ("username", "alice"),
                ("password", "alice-password-1"),
            ],
            "unsupported_grant_type",
        ),
    ];
    for (form, expected) in cases {
        let (status, err, _) = oauth_error(cli.post("/auth/token").form(&form).send().await).await;
        assert_eq!(
            (status, err.as_str()),
            (StatusCode::BAD_REQUEST, expected),
            "{form:?}"
        );
    }
    // JSON instead of a form.
    let resp = cli
        .post("/auth/token")
        .body_json(
            &json!({"grant_type": "password", "username": "alice", "password": "alice-password-1"}),
        )
        .send()
        .await;
    let (status, err, _) = oauth_error(resp).await;
    assert_eq!(
        (status, err.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_request")
    );
}

/// RFC 6749 §3.1: "Request and response parameters MUST NOT be included more
/// than once", and §5.2 lists "repeats a parameter" under `invalid_request`.
/// Whichever copy a parser kept, a repeated credential must not log in.
#[tokio::test]
async fn repeated_parameters_are_invalid_request() {
    let f = fixture().await;
    let cli = client(&f);
    for body in [
        "grant_type=password&username=nobody&username=alice&password=alice-password-1",
        "grant_type=password&username=alice&username=nobody&password=alice-password-1",
        "grant_type=password&username=alice&password=wrong&password=alice-password-1",
        "grant_type=password&username=alice&password=alice-password-1&password=wrong",
        "grant_type=password&grant_type=password&username=alice&password=alice-password-1",
        "grant_type=password&username=alice&password=alice-password-1&scope=me&scope=admin",
    ] {
        let resp = cli
            .post("/auth/token")
            .content_type("application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await;
        let (status, err, _) = oauth_error(resp).await;
        assert_eq!(
            (status, err.as_str()),
            (StatusCode::BAD_REQUEST, "invalid_request"),
            "{body}"
        );
    }
}

/// RFC 6749 §3.1: "Parameters sent without a value MUST be treated as if they
/// were omitted from the request": an empty `scope` grants what an omitted
/// one grants.
#[tokio::test]
async fn an_empty_scope_parameter_counts_as_omitted() {
    let f = fixture().await;
    let cli = client(&f);
    let t = login_ok(&cli, "alice", "alice-password-1", Some("")).await;
    assert_eq!(t["scope"], "me notes:read notes:write");
    let t2 = tokens(refresh(&cli, rt(&t), Some("")).await).await;
    assert_eq!(t2["scope"], "me notes:read notes:write");
}

// ---------------------------------------------------------------------------
// Refresh tokens
// ---------------------------------------------------------------------------

#[tokio::test]
async fn refresh_tokens_are_opaque_random_and_at_least_256_bits() {
    let f = fixture().await;
    let cli = client(&f);
    let mut seen = HashSet::new();
    for _ in 0..5 {
        let t = login_ok(&cli, "alice", "alice-password-1", None).await;
        let r = rt(&t).to_owned();
        // `family.secret` (like an API key's `prefix.secret`), not a JWT.
        let (family, secret) = r.split_once('.').expect("family.secret");
        assert!(!secret.contains('.'), "a refresh token is not a JWT: {r}");
        assert!(URL_SAFE_NO_PAD.decode(family).is_ok());
        let raw = URL_SAFE_NO_PAD.decode(secret).expect("base64url");
        assert!(raw.len() >= 32, "{} bytes", raw.len());
        assert!(seen.insert(r));
    }
}

#[tokio::test]
async fn refresh_rotates_the_pair_and_kills_the_old_refresh_token() {
    let f = fixture().await;
    let cli = client(&f);
    let t1 = login_ok(&cli, "alice", "alice-password-1", Some("me notes:read")).await;
    let t2 = tokens(refresh(&cli, rt(&t1), None).await).await;
    assert_ne!(rt(&t2), rt(&t1));
    assert_ne!(t2["access_token"], t1["access_token"]);
    assert_eq!(t2["token_type"], "bearer");
    assert_eq!(t2["scope"], "me notes:read");
    assert_eq!(t2["expires_in"], 900);
    let c1 = claims_of(t1["access_token"].as_str().unwrap());
    let c2 = claims_of(t2["access_token"].as_str().unwrap());
    assert_eq!(c2["sub"], "alice");
    assert_eq!(c2["sid"], c1["sid"], "one family across rotations");
    assert_ne!(c2["jti"], c1["jti"]);
    get_me(&cli, &t2).await.assert_status_is_ok();
    // The new refresh token works once more.
    let t3 = tokens(refresh(&cli, rt(&t2), None).await).await;
    assert_ne!(rt(&t3), rt(&t2));
}

#[tokio::test]
async fn the_refresh_token_grant_of_the_token_endpoint_rotates_too() {
    let f = fixture().await;
    let cli = client(&f);
    let t1 = login_ok(&cli, "alice", "alice-password-1", None).await;
    let resp = cli
        .post("/auth/token")
        .form(&[("grant_type", "refresh_token"), ("refresh_token", rt(&t1))])
        .send()
        .await;
    let t2 = tokens(resp).await;
    assert_ne!(rt(&t2), rt(&t1));
    let (status, err, _) = oauth_error(refresh(&cli, rt(&t1), None).await).await;
    assert_eq!(
        (status, err.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_grant")
    );
}

#[tokio::test]
async fn presenting_a_rotated_refresh_token_revokes_the_whole_family() {
    let f = fixture().await;
    let cli = client(&f);
    let t1 = login_ok(&cli, "alice", "alice-password-1", None).await;
    let other = login_ok(&cli, "alice", "alice-password-1", None).await;
    let t2 = tokens(refresh(&cli, rt(&t1), None).await).await;
    // The thief (or the victim) replays t1: refused...
    let (status, err, _) = oauth_error(refresh(&cli, rt(&t1), None).await).await;
    assert_eq!(
        (status, err.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_grant")
    );
    // ...and the current token of the family is dead too.
    let (status, err, _) = oauth_error(refresh(&cli, rt(&t2), None).await).await;
    assert_eq!(
        (status, err.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_grant")
    );
    // So is every access token of the family, at once.
    for t in [&t1, &t2] {
        get_me(&cli, t)
            .await
            .assert_status(StatusCode::UNAUTHORIZED);
    }
    // Another session of the same user is untouched.
    get_me(&cli, &other).await.assert_status_is_ok();
    tokens(refresh(&cli, rt(&other), None).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_refreshes_with_one_token_have_exactly_one_winner() {
    let f = fixture().await;
    let ep = Arc::new(app(&f));
    let t = login_ok(
        &TestClient::new(ep.clone()),
        "alice",
        "alice-password-1",
        None,
    )
    .await;
    let token = rt(&t).to_owned();
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (ep, token) = (ep.clone(), token.clone());
            tokio::spawn(async move {
                let cli = TestClient::new(ep);
                let resp = cli
                    .post("/auth/refresh")
                    .form(&[("refresh_token", token.as_str())])
                    .send()
                    .await;
                resp.0.status()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(
            tokio::time::timeout(Duration::from_secs(30), t)
                .await
                .unwrap()
                .unwrap(),
        );
    }
    let winners = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    assert_eq!(winners, 1, "{statuses:?}");
    assert!(statuses
        .iter()
        .all(|s| *s == StatusCode::OK || *s == StatusCode::BAD_REQUEST));
}

#[tokio::test]
async fn refresh_failures_share_one_body() {
    let f = fixture_with(Options {
        refresh_ttl: Some(2),
        ..Options::default()
    })
    .await;
    let cli = client(&f);
    let expired = login_ok(&cli, "alice", "alice-password-1", None).await;
    let rotated = login_ok(&cli, "carol", "carol-password-1", None).await;
    let logged_out = login_ok(&cli, "admin", "admin-password-1", None).await;
    cli.post("/auth/logout")
        .header(header::AUTHORIZATION, bearer(&logged_out))
        .send()
        .await
        .assert_status(StatusCode::NO_CONTENT);
    tokens(refresh(&cli, rt(&rotated), None).await).await;
    tokio::time::sleep(Duration::from_millis(3100)).await;

    let reference = parts(refresh(&cli, "not-a-refresh-token", None).await).await;
    assert_eq!(reference.0, StatusCode::BAD_REQUEST);
    assert_eq!(
        serde_json::from_str::<Value>(&reference.3).unwrap()["error"],
        "invalid_grant"
    );
    let access = logged_out["access_token"].as_str().unwrap().to_owned();
    for (what, token) in [
        ("expired", rt(&expired)),
        ("rotated", rt(&rotated)),
        ("logged out", rt(&logged_out)),
        ("access token", access.as_str()),
        ("empty", ""),
    ] {
        assert_eq!(
            parts(refresh(&cli, token, None).await).await,
            reference,
            "{what}"
        );
    }
}

#[tokio::test]
async fn an_expired_refresh_token_is_refused() {
    let f = fixture_with(Options {
        refresh_ttl: Some(2),
        ..Options::default()
    })
    .await;
    let cli = client(&f);
    let t = login_ok(&cli, "alice", "alice-password-1", None).await;
    let fresh = login_ok(&cli, "alice", "alice-password-1", None).await;
    tokens(refresh(&cli, rt(&fresh), None).await).await;
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let (status, err, _) = oauth_error(refresh(&cli, rt(&t), None).await).await;
    assert_eq!(
        (status, err.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_grant")
    );
}

#[tokio::test]
async fn a_refresh_never_widens_the_granted_scopes() {
    let f = fixture().await;
    let cli = client(&f);
    let t1 = login_ok(&cli, "alice", "alice-password-1", Some("notes:read")).await;
    // Without `scope`, the refresh keeps the original grant, not all allowed.
    let t2 = tokens(refresh(&cli, rt(&t1), None).await).await;
    assert_eq!(t2["scope"], "notes:read");
    assert_eq!(
        claims_of(t2["access_token"].as_str().unwrap())["scope"],
        "notes:read"
    );
    // Asking for more is refused.
    let (status, err, _) = oauth_error(refresh(&cli, rt(&t2), Some("notes:read me")).await).await;
    assert_eq!(
        (status, err.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_scope")
    );
}

#[tokio::test]
async fn a_refresh_may_narrow_the_scopes() {
    let f = fixture().await;
    let cli = client(&f);
    let t1 = login_ok(&cli, "alice", "alice-password-1", None).await;
    let t2 = tokens(refresh(&cli, rt(&t1), Some("me")).await).await;
    assert_eq!(t2["scope"], "me");
    assert_eq!(
        claims_of(t2["access_token"].as_str().unwrap())["scope"],
        "me"
    );
}

/// RFC 6749 §5.2: an `invalid_scope` answer is an error of this request; the
/// client's refresh token must still work afterwards. Here the token was
/// already rotated (and its successor discarded) before the scope check, so
/// the retry is treated as a replay and the whole family is revoked.
#[tokio::test]
async fn a_refresh_refused_for_its_scope_leaves_the_refresh_token_usable() {
    let f = fixture().await;
    let cli = client(&f);
    let t1 = login_ok(&cli, "alice", "alice-password-1", Some("notes:read")).await;
    let (status, err, _) = oauth_error(refresh(&cli, rt(&t1), Some("admin")).await).await;
    assert_eq!(
        (status, err.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_scope")
    );
    // The same refresh token, without the bad scope, still rotates.
    let t2 = tokens(refresh(&cli, rt(&t1), None).await).await;
    assert_eq!(t2["scope"], "notes:read");
}

/// Records what the token service hands to its session store.
#[derive(Default)]
struct RecordingSessions {
    inner: MemorySessionStore,
    seen: std::sync::Mutex<Vec<String>>,
}

impl SessionStore for RecordingSessions {
    fn create<'a>(
        &'a self,
        session: &'a Session,
        token_hash: &'a str,
        ttl_secs: u64,
    ) -> BoxFuture<'a, Result<(), CredentialError>> {
        self.seen
            .lock()
            .unwrap()
            .push(format!("{session:?} {token_hash}"));
        self.inner.create(session, token_hash, ttl_secs)
    }
    fn rotate<'a>(
        &'a self,
        family: &'a str,
        old_hash: &'a str,
        new_hash: &'a str,
        ttl_secs: u64,
    ) -> BoxFuture<'a, Result<poem_secure::Rotation, CredentialError>> {
        self.seen
            .lock()
            .unwrap()
            .push(format!("{old_hash} {new_hash}"));
        self.inner.rotate(family, old_hash, new_hash, ttl_secs)
    }
    fn revoke_family<'a>(&'a self, family: &'a str) -> BoxFuture<'a, Result<(), CredentialError>> {
        self.inner.revoke_family(family)
    }
    fn revoke_access<'a>(
        &'a self,
        jti: &'a str,
        exp: u64,
    ) -> BoxFuture<'a, Result<(), CredentialError>> {
        self.inner.revoke_access(jti, exp)
    }
    fn is_access_revoked<'a>(&'a self, jti: &'a str) -> Answer<'a, Result<bool, CredentialError>> {
        self.inner.is_access_revoked(jti)
    }
}

#[tokio::test]
async fn refresh_tokens_reach_the_session_store_only_as_hashes() {
    let store = Arc::new(RecordingSessions::default());
    let dyn_store: Arc<dyn SessionStore> = store.clone();
    let security = Security::builder()
        .jwt(JwtConfig::hs256(SECRET).unwrap().issuer(ISS).audience(AUD))
        .sessions(dyn_store.clone())
        .build()
        .unwrap();
    let users = seeded_users(&fast_hasher()).await;
    let service = TokenService::new(
        security.clone(),
        Authenticator::new(users.clone(), fast_hasher()),
    )
    .unwrap();
    let f = Fixture {
        security,
        service,
        users,
        sessions: Arc::new(MemorySessionStore::new()),
    };
    let cli = client(&f);
    let t1 = login_ok(&cli, "alice", "alice-password-1", None).await;
    let t2 = tokens(refresh(&cli, rt(&t1), None).await).await;
    let seen = store.seen.lock().unwrap().join("\n");
    assert!(!seen.is_empty());
    // A refresh token is `family.secret`: the secret never reaches the store.
    for plaintext in [rt(&t1), rt(&t2)] {
        let secret = plaintext.split_once('.').unwrap().1;
        assert!(
            !seen.contains(secret),
            "a refresh token reached the store in clear"
        );
    }
}

/// A user store that can be switched off.
struct FlakyUsers {
    inner: Arc<MemoryUserStore>,
    down: std::sync::atomic::AtomicBool,
}

impl UserStore for FlakyUsers {
    fn find<'a>(
        &'a self,
        username: &'a str,
    ) -> BoxFuture<'a, Result<Option<UserRecord>, CredentialError>> {
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            return Box::pin(async { Err(CredentialError::Unavailable) });
        }
        self.inner.find(username)
    }
}

/// A refresh that fails because a backing store is briefly unreachable
/// (503) must leave the client's refresh token usable: the client never
/// received a successor, so its retry is not a replay.
#[tokio::test]
async fn a_refresh_that_fails_with_503_leaves_the_refresh_token_usable() {
    let users = Arc::new(FlakyUsers {
        inner: seeded_users(&fast_hasher()).await,
        down: std::sync::atomic::AtomicBool::new(false),
    });
    let store: Arc<dyn SessionStore> = Arc::new(MemorySessionStore::new());
    let security = Security::builder()
        .jwt(JwtConfig::hs256(SECRET).unwrap().issuer(ISS).audience(AUD))
        .sessions(store.clone())
        .build()
        .unwrap();
    let service = TokenService::new(
        security.clone(),
        Authenticator::new(users.clone(), fast_hasher()),
    )
    .unwrap();
    let f = Fixture {
        security,
        service,
        users: users.inner.clone(),
        sessions: Arc::new(MemorySessionStore::new()),
    };
    let cli = client(&f);
    let t1 = login_ok(&cli, "alice", "alice-password-1", None).await;
    users.down.store(true, std::sync::atomic::Ordering::SeqCst);
    let resp = refresh(&cli, rt(&t1), None).await;
    resp.assert_status(StatusCode::SERVICE_UNAVAILABLE);
    users.down.store(false, std::sync::atomic::Ordering::SeqCst);
    tokens(refresh(&cli, rt(&t1), None).await).await;
}

#[tokio::test]
async fn a_refresh_rereads_the_user_and_refuses_a_disabled_one() {
    let f = fixture().await;
    let cli = client(&f);
    let t1 = login_ok(&cli, "carol", "carol-password-1", None).await;
    assert_eq!(t1["scope"], "me notes:read notes:write");
    // Carol loses `notes:write` and gains a role.
    let mut carol = f.users.find("carol").await.unwrap().unwrap();
    carol.scopes = vec!["me".into(), "notes:read".into()];
    carol.roles = vec!["user".into(), "auditor".into()];
    f.users.insert(carol.clone());
    let t2 = tokens(refresh(&cli, rt(&t1), None).await).await;
    assert_eq!(t2["scope"], "me notes:read");
    let c2 = claims_of(t2["access_token"].as_str().unwrap());
    assert_eq!(c2["roles"], json!(["user", "auditor"]));
    // Now she is disabled: no more refreshes, and the family is gone.
    carol.disabled = true;
    f.users.insert(carol.clone());
    let (status, err, _) = oauth_error(refresh(&cli, rt(&t2), None).await).await;
    assert_eq!(
        (status, err.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_grant")
    );
    carol.disabled = false;
    f.users.insert(carol);
    let (_, err, _) = oauth_error(refresh(&cli, rt(&t2), None).await).await;
    assert_eq!(err, "invalid_grant", "the family stays revoked");
}

#[tokio::test]
async fn a_refresh_token_is_not_a_bearer_token() {
    let f = fixture().await;
    let cli = client(&f);
    let t = login_ok(&cli, "alice", "alice-password-1", None).await;
    let resp = cli
        .get("/api/me")
        .header(header::AUTHORIZATION, format!("Bearer {}", rt(&t)))
        .send()
        .await;
    resp.assert_status(StatusCode::UNAUTHORIZED);
    assert_eq!(
        resp.0.headers().get(header::WWW_AUTHENTICATE).unwrap(),
        "Bearer error=\"invalid_token\""
    );
}

// ---------------------------------------------------------------------------
// Logout
// ---------------------------------------------------------------------------

#[tokio::test]
async fn logout_revokes_the_access_token_and_the_refresh_family_at_once() {
    let f = fixture().await;
    let cli = client(&f);
    let t1 = login_ok(&cli, "alice", "alice-password-1", None).await;
    let t2 = tokens(refresh(&cli, rt(&t1), None).await).await;
    get_me(&cli, &t2).await.assert_status_is_ok();

    let resp = cli
        .post("/auth/logout")
        .header(header::AUTHORIZATION, bearer(&t2))
        .send()
        .await;
    resp.assert_status(StatusCode::NO_CONTENT);
    // The denylist holds the presented token's jti (not the older one's).
    let jti = |t: &Value| {
        claims_of(t["access_token"].as_str().unwrap())["jti"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert!(f.sessions.is_access_revoked(&jti(&t2)).await.unwrap());
    assert!(!f.sessions.is_access_revoked(&jti(&t1)).await.unwrap());

    let resp = get_me(&cli, &t2).await;
    resp.assert_status(StatusCode::UNAUTHORIZED);
    assert_eq!(
        resp.0.headers().get(header::WWW_AUTHENTICATE).unwrap(),
        "Bearer error=\"invalid_token\""
    );
    resp.assert_content_type("application/problem+json");
    let (status, err, _) = oauth_error(refresh(&cli, rt(&t2), None).await).await;
    assert_eq!(
        (status, err.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_grant")
    );
    // Every access token of the session ends with it (its `sid`), the one
    // issued before the refresh too.
    get_me(&cli, &t1)
        .await
        .assert_status(StatusCode::UNAUTHORIZED);
    // A second logout with the revoked token is refused as well.
    cli.post("/auth/logout")
        .header(header::AUTHORIZATION, bearer(&t2))
        .send()
        .await
        .assert_status(StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn logout_leaves_other_sessions_alone() {
    let f = fixture().await;
    let cli = client(&f);
    let mine = login_ok(&cli, "alice", "alice-password-1", None).await;
    let other_device = login_ok(&cli, "alice", "alice-password-1", None).await;
    let carol = login_ok(&cli, "carol", "carol-password-1", None).await;
    cli.post("/auth/logout")
        .header(header::AUTHORIZATION, bearer(&mine))
        .send()
        .await
        .assert_status(StatusCode::NO_CONTENT);
    get_me(&cli, &other_device).await.assert_status_is_ok();
    get_me(&cli, &carol).await.assert_status_is_ok();
    tokens(refresh(&cli, rt(&other_device), None).await).await;
    tokens(refresh(&cli, rt(&carol), None).await).await;
}

#[tokio::test]
async fn logout_needs_a_valid_bearer_token() {
    let f = fixture().await;
    let cli = client(&f);
    let t = login_ok(&cli, "alice", "alice-password-1", None).await;
    let resp = cli.post("/auth/logout").send().await;
    resp.assert_status(StatusCode::UNAUTHORIZED);
    resp.assert_content_type("application/problem+json");
    for bad in [format!("Bearer {}", rt(&t)), "Bearer x.y.z".to_owned()] {
        cli.post("/auth/logout")
            .header(header::AUTHORIZATION, bad)
            .send()
            .await
            .assert_status(StatusCode::UNAUTHORIZED);
    }
    // Nothing was revoked by the refused attempts.
    get_me(&cli, &t).await.assert_status_is_ok();
    tokens(refresh(&cli, rt(&t), None).await).await;
}

#[tokio::test]
async fn a_denied_jti_expires_with_its_token_and_the_leeway() {
    // Denied until exp + the largest leeway a verifier may grant (60 s).
    let store = MemorySessionStore::new();
    store.revoke_access("jti-short", now() - 58).await.unwrap();
    store.revoke_access("jti-long", now() + 3600).await.unwrap();
    store.revoke_access("jti-leeway", now() - 10).await.unwrap();
    store.revoke_access("jti-past", now() - 61).await.unwrap();
    assert!(store.is_access_revoked("jti-short").await.unwrap());
    assert!(store.is_access_revoked("jti-long").await.unwrap());
    assert!(store.is_access_revoked("jti-leeway").await.unwrap());
    assert!(!store.is_access_revoked("jti-past").await.unwrap());
    assert!(!store.is_access_revoked("jti-other").await.unwrap());
    tokio::time::sleep(Duration::from_millis(3100)).await;
    assert!(!store.is_access_revoked("jti-short").await.unwrap());
    assert!(store.is_access_revoked("jti-long").await.unwrap());
}

#[tokio::test]
async fn the_memory_session_store_rotates_atomically_and_detects_reuse() {
    let store = Arc::new(MemorySessionStore::new());
    let s = Session {
        family: "fam-1".into(),
        subject: "alice".into(),
        scopes: vec!["me".into()],
        roles: vec!["user".into()],
        permissions: vec![],
    };
    store.create(&s, "h1", 60).await.unwrap();
    // 16 concurrent rotations of h1: one winner.
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .rotate("fam-1", "h1", &format!("n{i}"), 60)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut rotated = 0;
    for t in tasks {
        if matches!(t.await.unwrap(), poem_secure::Rotation::Rotated(_)) {
            rotated += 1;
        }
    }
    assert_eq!(rotated, 1);
    assert_eq!(
        store.rotate("no-such-family", "h1", "x", 60).await.unwrap(),
        poem_secure::Rotation::Invalid
    );
    let s2 = Session {
        family: "fam-2".into(),
        ..s
    };
    store.create(&s2, "k1", 60).await.unwrap();
    store.revoke_family("fam-2").await.unwrap();
    assert_eq!(
        store.rotate("fam-2", "k1", "k2", 60).await.unwrap(),
        poem_secure::Rotation::Invalid
    );
}

// ---------------------------------------------------------------------------
// Login rate limit
// ---------------------------------------------------------------------------

#[tokio::test]
async fn login_attempts_are_limited_per_client_ip() {
    let f = fixture_with(Options {
        limits: vec![(LoginKey::Ip, Rate::new(3, 60))],
        ..Options::default()
    })
    .await;
    let cli = client(&f);
    async fn attempt(
        cli: &TestClient<impl Endpoint>,
        ip: &str,
        form: &[(&str, &str)],
    ) -> TestResponse {
        cli.post("/auth/token")
            .header("x-test-peer", ip)
            .form(&form)
            .send()
            .await
    }
    let a = |form| attempt(&cli, "198.51.100.7:4000", form);
    let wrong = [
        ("grant_type", "password"),
        ("username", "alice"),
        ("password", "wrong"),
    ];
    let right = [
        ("grant_type", "password"),
        ("username", "alice"),
        ("password", "alice-password-1"),
    ];
    // Failed attempts count as well as successful ones.
    assert_eq!(a(&wrong).await.0.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        a(&[
            ("grant_type", "password"),
            ("username", "nobody"),
            ("password", "x")
        ])
        .await
        .0
        .status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(a(&right).await.0.status(), StatusCode::OK);
    let resp = a(&right).await;
    resp.assert_status(StatusCode::TOO_MANY_REQUESTS);
    resp.assert_content_type("application/problem+json");
    assert_eq!(
        resp.0.headers().get(header::CACHE_CONTROL).unwrap(),
        "no-store"
    );
    let retry: u64 = resp
        .0
        .headers()
        .get(header::RETRY_AFTER)
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "Retry-After: {retry}");
    // The RateLimit header fields, as on a limited route's 429: the limit's
    // quota and window, and nothing left.
    let field = |name: &str| {
        resp.0
            .headers()
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header"))
            .to_str()
            .unwrap()
            .to_owned()
    };
    let policy = field("ratelimit-policy");
    assert!(policy.contains(";q=3;w=60"), "RateLimit-Policy: {policy}");
    let state = field("ratelimit");
    assert!(state.contains(";r=0;t="), "RateLimit: {state}");
    let body: Value =
        serde_json::from_str(&resp.0.into_body().into_string().await.unwrap()).unwrap();
    assert_eq!(body["status"], 429);
    // Another client IP is not affected.
    assert_eq!(
        attempt(&cli, "203.0.113.9:4000", &right).await.0.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn an_ip_and_username_limit_cannot_lock_an_account_out_from_elsewhere() {
    let f = fixture_with(Options {
        limits: vec![(LoginKey::IpAndUsername, Rate::new(2, 60))],
        ..Options::default()
    })
    .await;
    let cli = client(&f);
    let attempt = |ip: &'static str, user: &'static str, pw: &'static str| {
        cli.post("/auth/token")
            .header("x-test-peer", ip)
            .form(&[
                ("grant_type", "password"),
                ("username", user),
                ("password", pw),
            ])
            .send()
    };
    let attacker = "198.51.100.66:1000";
    for _ in 0..2 {
        attempt(attacker, "alice", "guess")
            .await
            .assert_status(StatusCode::BAD_REQUEST);
    }
    attempt(attacker, "alice", "guess")
        .await
        .assert_status(StatusCode::TOO_MANY_REQUESTS);
    attempt(attacker, "alice", "alice-password-1")
        .await
        .assert_status(StatusCode::TOO_MANY_REQUESTS);
    // The attacker may still try another account, and alice logs in from home.
    attempt(attacker, "carol", "carol-password-1")
        .await
        .assert_status_is_ok();
    attempt("192.0.2.10:5555", "alice", "alice-password-1")
        .await
        .assert_status_is_ok();
}

/// The default failure limit (5 failures per client IP and user name): it
/// counts unknown and disabled users exactly like wrong passwords (so that it
/// reveals nothing), ignores successes, and locks nobody out from elsewhere.
#[tokio::test]
async fn failed_logins_are_limited_by_default_without_telling_users_apart() {
    let f = fixture_with(Options {
        failure_limits: None,
        ..Options::default()
    })
    .await;
    let cli = client(&f);
    async fn attempt(
        cli: &TestClient<impl Endpoint>,
        ip: &str,
        user: &str,
        pw: &str,
    ) -> TestResponse {
        cli.post("/auth/token")
            .header("x-test-peer", ip)
            .form(&[
                ("grant_type", "password"),
                ("username", user),
                ("password", pw),
            ])
            .send()
            .await
    }
    // Successes never count.
    for _ in 0..8 {
        attempt(&cli, "192.0.2.1:1", "alice", "alice-password-1")
            .await
            .assert_status_is_ok();
    }
    // Wrong password, unknown user, disabled user: the same allowance.
    for (ip, user, pw) in [
        ("198.51.100.1:1", "alice", "wrong"),
        ("198.51.100.2:1", "nobody", "wrong"),
        ("198.51.100.3:1", "bob", "bob-password-1"),
    ] {
        for i in 0..5 {
            let (status, err, _) = oauth_error(attempt(&cli, ip, user, pw).await).await;
            assert_eq!(
                (status, err.as_str()),
                (StatusCode::BAD_REQUEST, "invalid_grant"),
                "{user} #{i}"
            );
        }
        let resp = attempt(&cli, ip, user, pw).await;
        resp.assert_status(StatusCode::TOO_MANY_REQUESTS);
        assert!(
            resp.0.headers().get(header::RETRY_AFTER).is_some(),
            "{user}"
        );
        assert_eq!(
            resp.0.headers().get(header::CACHE_CONTROL).unwrap(),
            "no-store"
        );
    }
    // Even the right password waits at the locked (IP, user)...
    attempt(&cli, "198.51.100.1:1", "alice", "alice-password-1")
        .await
        .assert_status(StatusCode::TOO_MANY_REQUESTS);
    // ...but alice elsewhere, and other users at that IP, are not locked out.
    attempt(&cli, "192.0.2.99:1", "alice", "alice-password-1")
        .await
        .assert_status_is_ok();
    attempt(&cli, "198.51.100.1:1", "carol", "carol-password-1")
        .await
        .assert_status_is_ok();
}

// ---------------------------------------------------------------------------
// Configuration and documentation
// ---------------------------------------------------------------------------

#[tokio::test]
async fn the_token_service_needs_a_signing_key_and_a_revocation_list() {
    let users = MemoryUserStore::default;
    let store: Arc<dyn SessionStore> = Arc::new(MemorySessionStore::new());
    // No revocation list on Security: logout could not be effective.
    let no_revocations = Security::builder()
        .jwt(JwtConfig::hs256(SECRET).unwrap().issuer(ISS).audience(AUD))
        .build()
        .unwrap();
    assert!(TokenService::new(no_revocations, Authenticator::new(users(), fast_hasher())).is_err());
    // Verification only: nothing to sign with.
    let pem = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/keys/rsa_public.pem"
    ))
    .unwrap();
    let verify_only = Security::builder()
        .jwt(
            JwtConfig::verify_pem(Algorithm::RS256, &pem)
                .unwrap()
                .issuer(ISS)
                .audience(AUD),
        )
        .sessions(store.clone())
        .build()
        .unwrap();
    assert!(!verify_only.can_issue_tokens());
    assert!(TokenService::new(verify_only, Authenticator::new(users(), fast_hasher())).is_err());
    // No JWT at all.
    let none = Security::builder().sessions(store.clone()).build().unwrap();
    assert!(TokenService::new(none, Authenticator::new(users(), fast_hasher())).is_err());
    // Control: the complete configuration is accepted.
    let ok = Security::builder()
        .jwt(JwtConfig::hs256(SECRET).unwrap().issuer(ISS).audience(AUD))
        .sessions(store.clone())
        .build()
        .unwrap();
    assert!(TokenService::new(ok, Authenticator::new(users(), fast_hasher())).is_ok());
}

#[tokio::test]
async fn the_openapi_document_describes_the_token_endpoints() {
    let f = fixture().await;
    let spec: Value =
        serde_json::from_str(&service(f.service.api::<NoCatalogue>(), "tokens", "1").spec())
            .unwrap();
    let token = &spec["paths"]["/auth/token"]["post"];
    let form = &token["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"];
    assert!(form.is_object(), "{token:#}");
    let schema = if let Some(r) = form["$ref"].as_str() {
        spec["components"]["schemas"][r.rsplit('/').next().unwrap()].clone()
    } else {
        form.clone()
    };
    for field in ["grant_type", "username", "password", "scope"] {
        assert!(
            schema["properties"][field].is_object(),
            "{field}: {schema:#}"
        );
    }
    assert_eq!(schema["properties"]["password"]["writeOnly"], true);
    assert!(token["responses"]["200"].is_object());
    assert!(token["responses"]["400"].is_object());
    assert!(token
        .get("security")
        .is_none_or(|s| s.as_array().is_some_and(|a| a.is_empty())));
    assert!(spec["paths"]["/auth/refresh"]["post"].is_object());
    let logout = &spec["paths"]["/auth/logout"]["post"];
    assert!(
        logout["security"].as_array().is_some_and(|a| !a.is_empty()),
        "logout requires a bearer: {logout:#}"
    );
}
