//! Behaviour of `#[secure]` / `#[public]` guards on plain poem handlers, driven
//! through poem's `TestClient`: the success path and every refusal branch
//! (401/403/404/429/400/500/503), credential kinds, rate limiting and the
//! ordering of the guard before body extractors.

#[path = "support/peer.rs"]
mod peer;
use peer::with_peer;
use std::{collections::HashSet, sync::Mutex};

use poem::{
    handler,
    http::{header, HeaderValue, StatusCode},
    test::{TestClient, TestResponse},
    web::Json,
    Endpoint, EndpointExt, Request,
};
use poem_secure::{
    public,
    route::{get, post, Route},
    secure,
    testing::token,
    Answer, ApiKeyVerifier, BasicVerifier, CredentialError, CredentialKind, Denied, JwtConfig,
    Principal, Security,
};
use serde_json::Value;

// ---------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------

const SECRET: &[u8; 32] = b"guard-poem-test-secret-32-bytes!";

/// A small API key store: `k1.secret` is service `svc-1`, `down` simulates an
/// unreachable store, anything else is unknown.
struct Keys;

impl ApiKeyVerifier for Keys {
    fn verify<'a>(&'a self, key: &'a str) -> Answer<'a, Result<Principal, CredentialError>> {
        Answer::later(async move {
            match key {
                "k1.secret" => Ok(Principal::builder(CredentialKind::ApiKey, "svc-1")
                    .scopes(["stats:read"])
                    .key_id("k1")
                    .build()),
                "k2.secret" => Ok(Principal::builder(CredentialKind::ApiKey, "svc-2")
                    .scopes(["reports:read"])
                    .key_id("k2")
                    .build()),
                "down" => Err(CredentialError::Unavailable),
                _ => Err(CredentialError::Invalid),
            }
        })
    }
}

/// A small Basic store: `carol` / `s3cret:with:colons`.
struct Users;

impl BasicVerifier for Users {
    fn verify<'a>(
        &'a self,
        username: &'a str,
        password: &'a str,
    ) -> Answer<'a, Result<Principal, CredentialError>> {
        Answer::later(async move {
            if username == "carol" && password == "s3cret:with:colons" {
                Ok(Principal::builder(CredentialKind::Basic, "carol")
                    .roles(["ops"])
                    .build())
            } else {
                Err(CredentialError::Invalid)
            }
        })
    }
}

fn security() -> Security {
    Security::builder()
        .jwt(
            JwtConfig::hs256(SECRET)
                .unwrap()
                .issuer("guard-test")
                .audience("guard-api"),
        )
        .api_keys(Keys)
        .basic(Users)
        .build()
        .unwrap()
}

/// A `Security` with only JWT configured (no API key or Basic store).
fn jwt_only_security() -> Security {
    Security::builder()
        .jwt(
            JwtConfig::hs256(SECRET)
                .unwrap()
                .issuer("guard-test")
                .audience("guard-api"),
        )
        .build()
        .unwrap()
}

fn basic(user: &str, pass: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
    )
}

fn www_authenticate(resp: &TestResponse) -> Vec<String> {
    resp.0
        .headers()
        .get_all(header::WWW_AUTHENTICATE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

/// Asserts an RFC 9457 body for `status` and returns it (parsed, raw).
async fn problem(resp: TestResponse, status: StatusCode) -> (Value, String) {
    resp.assert_status(status);
    resp.assert_content_type("application/problem+json");
    let raw = resp.0.into_body().into_string().await.unwrap();
    let v: Value = serde_json::from_str(&raw).expect("problem body is JSON");
    assert_eq!(v["status"], status.as_u16(), "body: {raw}");
    assert!(v["type"].is_string(), "body: {raw}");
    assert!(v["title"].is_string(), "body: {raw}");
    assert!(v["detail"].is_string(), "body: {raw}");
    (v, raw)
}

async fn text(resp: TestResponse) -> String {
    resp.assert_status_is_ok();
    resp.0.into_body().into_string().await.unwrap()
}

// ---------------------------------------------------------------------------
// Handlers
// ---------------------------------------------------------------------------

#[secure(scopes = "notes:read")]
#[handler]
async fn read_note(req: &Request, who: Principal) -> String {
    record(req);
    format!(
        "{}|{}|{}|{}|{:?}",
        who.subject(),
        who.scopes().join(" "),
        who.roles().join(" "),
        who.token_id().unwrap_or("-"),
        who.kind()
    )
}

#[secure(scopes = "notes:read notes:write")]
#[handler]
async fn write_note_str(req: &Request) -> &'static str {
    record(req);
    "written"
}

#[secure(scopes = ["notes:read", "notes:write"])]
#[handler]
async fn write_note_list() -> &'static str {
    "written"
}

#[secure(roles = ["admin", "owner"])]
#[handler]
async fn any_role(req: &Request) -> &'static str {
    record(req);
    "any-role"
}

#[secure(roles = all("admin", "owner"))]
#[handler]
async fn all_roles() -> &'static str {
    "all-roles"
}

#[secure(roles = "admin")]
#[handler]
async fn single_role() -> &'static str {
    "single-role"
}

#[secure(permissions = "users:delete audit:write")]
#[handler]
async fn delete_user(req: &Request) -> &'static str {
    record(req);
    "deleted"
}

/// Object-level rule: the caller may read its own document; `secret` must not
/// be revealed to exist (404); anyone else's is forbidden (403).
async fn owner_check(p: &Principal, req: &Request) -> Result<(), Denied> {
    match req.raw_path_param("owner") {
        Some(o) if o == p.subject() => Ok(()),
        Some("secret") => Err(Denied::not_found().because("doc of secret-owner-REASON")),
        _ => Err(Denied::forbidden().because("not-the-owner-REASON")),
    }
}

#[secure(scopes = "docs:read", check = owner_check)]
#[handler]
async fn read_doc(req: &Request, who: Principal) -> String {
    record(req);
    format!("doc of {}", who.subject())
}

#[public]
#[handler]
async fn whoami(who: Option<Principal>) -> String {
    match who {
        Some(p) => format!("some:{}", p.subject()),
        None => "none".to_owned(),
    }
}

#[secure(auth = api_key)]
#[handler]
async fn key_only(who: Principal) -> String {
    format!(
        "{}|{:?}|{}",
        who.subject(),
        who.kind(),
        who.key_id().unwrap_or("-")
    )
}

#[secure(auth = any(bearer, api_key), scopes = "stats:read")]
#[handler]
async fn stats(who: Principal) -> String {
    format!("{}|{:?}", who.subject(), who.kind())
}

#[secure(auth = basic)]
#[handler]
async fn basic_only(who: Principal) -> String {
    format!(
        "{}|{:?}|{}",
        who.subject(),
        who.kind(),
        who.roles().join(" ")
    )
}

#[secure(rate = "2/min")]
#[handler]
async fn limited_a(req: &Request) -> &'static str {
    record(req);
    "a"
}

#[secure(rate = "2/min")]
#[handler]
async fn limited_b() -> &'static str {
    "b"
}

#[secure(rate = "2/min", rate_key = ip)]
#[handler]
async fn limited_ip() -> &'static str {
    "ip"
}

fn tenant_key(req: &Request, _p: Option<&Principal>) -> String {
    req.headers()
        .get("x-tenant")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("none")
        .to_owned()
}

#[secure(rate = "1/min", rate_key = tenant_key)]
#[handler]
async fn limited_tenant() -> &'static str {
    "tenant"
}

#[secure(auth = api_key, rate = "1/min", rate_key = api_key)]
#[handler]
async fn limited_key() -> &'static str {
    "key"
}

#[public(rate = "2/min")]
#[handler]
async fn public_limited() -> &'static str {
    "public"
}

#[derive(serde::Deserialize)]
struct NewNote {
    title: String,
}

#[secure(scopes = "notes:write")]
#[handler]
async fn create_note(req: &Request, Json(note): Json<NewNote>) -> String {
    record(req);
    format!("created {}", note.title)
}

#[secure(scopes = "notes:read")]
#[handler]
async fn needs_install(req: &Request) -> &'static str {
    record(req);
    "served"
}

/// Deliberately undeclared: only routable through a plain `poem::Route`.
#[handler]
async fn undeclared(req: &Request, who: Principal) -> String {
    record(req);
    who.subject().to_owned()
}

fn app(sec: &Security) -> impl Endpoint {
    Route::new()
        .at("/note", get(read_note))
        .at("/write-str", get(write_note_str))
        .at("/write-list", get(write_note_list))
        .at("/any-role", get(any_role))
        .at("/all-roles", get(all_roles))
        .at("/single-role", get(single_role))
        .at("/delete-user", get(delete_user))
        .at("/docs/:owner", get(read_doc))
        .at("/whoami", get(whoami))
        .at("/key-only", get(key_only))
        .at("/stats", get(stats))
        .at("/basic", get(basic_only))
        .at("/limited-a", get(limited_a))
        .at("/limited-b", get(limited_b))
        .at("/limited-ip", get(limited_ip))
        .at("/limited-tenant", get(limited_tenant))
        .at("/limited-key", get(limited_key))
        .at("/public-limited", get(public_limited))
        .at("/notes", post(create_note))
        .with(sec.clone())
}

fn client(sec: &Security) -> TestClient<impl Endpoint> {
    TestClient::new(with_peer(app(sec)))
}

/// A client whose requests are tagged with `id`, so that `runs(id)` counts
/// exactly this test's requests that reached a handler body (tests run in
/// parallel and share the handlers).
fn tagged(sec: &Security, id: &'static str) -> TestClient<impl Endpoint> {
    client(sec).default_header("x-test-id", id)
}

static RUNS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Called by handler bodies: notes that a request reached the handler.
fn record(req: &Request) {
    if let Some(id) = req.headers().get("x-test-id").and_then(|v| v.to_str().ok()) {
        RUNS.lock().unwrap().push(id.to_owned());
    }
}

/// How many requests tagged `id` reached a handler body.
fn runs(id: &str) -> usize {
    RUNS.lock().unwrap().iter().filter(|r| *r == id).count()
}

// ---------------------------------------------------------------------------
// Success path and 401
// ---------------------------------------------------------------------------

#[tokio::test]
async fn valid_token_reaches_handler_with_verified_principal() {
    let sec = security();
    let cli = client(&sec);
    let t = token(&sec, "alice")
        .scopes(["notes:read", "extra"])
        .roles(["user"])
        .jti("jti-1")
        .bearer();
    let body = text(cli.get("/note").header("authorization", t).send().await).await;
    assert_eq!(body, "alice|notes:read extra|user|jti-1|Bearer");
}

#[tokio::test]
async fn no_credentials_is_401_with_bare_bearer_challenge() {
    let sec = security();
    let cli = tagged(&sec, "no_credentials_is_401_with_bare_bearer_challenge");
    let resp = cli.get("/note").send().await;
    assert_eq!(www_authenticate(&resp), ["Bearer"]);
    let (v, _) = problem(resp, StatusCode::UNAUTHORIZED).await;
    assert_eq!(v["title"], "Unauthorized");
    assert_eq!(
        runs("no_credentials_is_401_with_bare_bearer_challenge"),
        0,
        "handler must not run"
    );
}

#[tokio::test]
async fn empty_bearer_is_401_without_error_param() {
    let sec = security();
    let cli = client(&sec);
    let resp = cli
        .get("/note")
        .header("authorization", "Bearer ")
        .send()
        .await;
    assert_eq!(www_authenticate(&resp), ["Bearer"]);
    problem(resp, StatusCode::UNAUTHORIZED).await;
}

#[tokio::test]
async fn invalid_token_is_401_invalid_token_and_body_hides_token() {
    let sec = security();
    let cli = tagged(
        &sec,
        "invalid_token_is_401_invalid_token_and_body_hides_token",
    );
    let bogus = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJldmUifQ.c2lnbmF0dXJl";
    let resp = cli
        .get("/note")
        .header("authorization", format!("Bearer {bogus}"))
        .send()
        .await;
    assert_eq!(www_authenticate(&resp), [r#"Bearer error="invalid_token""#]);
    let (_, raw) = problem(resp, StatusCode::UNAUTHORIZED).await;
    assert!(
        !raw.contains(bogus) && !raw.contains("c2lnbmF0dXJl"),
        "body leaks the token: {raw}"
    );
    assert_eq!(
        runs("invalid_token_is_401_invalid_token_and_body_hides_token"),
        0,
        "handler must not run"
    );
}

#[tokio::test]
async fn token_signed_by_another_security_is_401() {
    let sec = security();
    let other = Security::builder()
        .jwt(
            JwtConfig::hs256([1u8; 32])
                .unwrap()
                .issuer("guard-test")
                .audience("guard-api"),
        )
        .build()
        .unwrap();
    let cli = client(&sec);
    let t = token(&other, "mallory").scopes(["notes:read"]).bearer();
    let resp = cli.get("/note").header("authorization", t).send().await;
    assert_eq!(www_authenticate(&resp), [r#"Bearer error="invalid_token""#]);
    problem(resp, StatusCode::UNAUTHORIZED).await;
}

#[tokio::test]
async fn expired_and_not_yet_valid_helper_tokens_are_401() {
    let sec = security();
    let cli = client(&sec);
    for t in [
        token(&sec, "alice")
            .scopes(["notes:read"])
            .expires_in(-3600)
            .bearer(),
        token(&sec, "alice")
            .scopes(["notes:read"])
            .not_before(3600)
            .bearer(),
    ] {
        let resp = cli.get("/note").header("authorization", t).send().await;
        assert_eq!(www_authenticate(&resp), [r#"Bearer error="invalid_token""#]);
        problem(resp, StatusCode::UNAUTHORIZED).await;
    }
}

#[tokio::test]
async fn basic_credentials_on_bearer_route_count_as_no_credentials() {
    let sec = security();
    let cli = client(&sec);
    let resp = cli
        .get("/note")
        .header("authorization", basic("carol", "s3cret:with:colons"))
        .send()
        .await;
    assert_eq!(www_authenticate(&resp), ["Bearer"]);
    problem(resp, StatusCode::UNAUTHORIZED).await;
}

// ---------------------------------------------------------------------------
// 403: scopes, roles, permissions
// ---------------------------------------------------------------------------

#[tokio::test]
async fn missing_scope_is_403_insufficient_scope_naming_all_required_scopes() {
    let sec = security();
    let cli = tagged(
        &sec,
        "missing_scope_is_403_insufficient_scope_naming_all_required_scopes",
    );
    let t = token(&sec, "alice").scopes(["notes:read"]).bearer();
    let resp = cli
        .get("/write-str")
        .header("authorization", t)
        .send()
        .await;
    assert_eq!(
        www_authenticate(&resp),
        [r#"Bearer error="insufficient_scope", scope="notes:read notes:write""#]
    );
    let (v, _) = problem(resp, StatusCode::FORBIDDEN).await;
    assert_eq!(v["title"], "Forbidden");
    assert_eq!(
        runs("missing_scope_is_403_insufficient_scope_naming_all_required_scopes"),
        0,
        "handler must not run"
    );

    // A token with no scope at all is refused the same way.
    let t = token(&sec, "alice").bearer();
    let resp = cli
        .get("/write-str")
        .header("authorization", t)
        .send()
        .await;
    problem(resp, StatusCode::FORBIDDEN).await;

    let t = token(&sec, "alice")
        .scopes(["notes:write", "notes:read"])
        .bearer();
    assert_eq!(
        text(
            cli.get("/write-str")
                .header("authorization", t)
                .send()
                .await
        )
        .await,
        "written"
    );
    assert_eq!(
        runs("missing_scope_is_403_insufficient_scope_naming_all_required_scopes"),
        1,
        "control"
    );
}

#[tokio::test]
async fn scopes_given_as_list_are_all_required() {
    let sec = security();
    let cli = client(&sec);
    for only in ["notes:read", "notes:write"] {
        let t = token(&sec, "alice").scopes([only]).bearer();
        let resp = cli
            .get("/write-list")
            .header("authorization", t)
            .send()
            .await;
        assert_eq!(
            www_authenticate(&resp),
            [r#"Bearer error="insufficient_scope", scope="notes:read notes:write""#]
        );
        problem(resp, StatusCode::FORBIDDEN).await;
    }
    let t = token(&sec, "alice")
        .scopes(["notes:read", "notes:write"])
        .bearer();
    assert_eq!(
        text(
            cli.get("/write-list")
                .header("authorization", t)
                .send()
                .await
        )
        .await,
        "written"
    );
}

#[tokio::test]
async fn scope_match_is_exact_not_prefix_or_case_insensitive() {
    let sec = security();
    let cli = client(&sec);
    for s in [
        "notes",
        "notes:rea",
        "NOTES:READ",
        "notes:read:extra",
        "notes:*",
        "*",
    ] {
        let t = token(&sec, "alice").scopes([s]).bearer();
        let resp = cli.get("/note").header("authorization", t).send().await;
        problem(resp, StatusCode::FORBIDDEN).await;
    }
}

#[tokio::test]
async fn roles_any_accepts_either_role_and_refuses_neither() {
    let sec = security();
    let cli = tagged(&sec, "roles_any_accepts_either_role_and_refuses_neither");
    for r in ["admin", "owner"] {
        let t = token(&sec, "alice").roles([r]).bearer();
        assert_eq!(
            text(cli.get("/any-role").header("authorization", t).send().await).await,
            "any-role"
        );
    }
    let t = token(&sec, "alice").roles(["user", "Admin"]).bearer();
    let resp = cli.get("/any-role").header("authorization", t).send().await;
    assert!(
        www_authenticate(&resp).is_empty(),
        "a role refusal carries no WWW-Authenticate"
    );
    problem(resp, StatusCode::FORBIDDEN).await;
    assert_eq!(
        runs("roles_any_accepts_either_role_and_refuses_neither"),
        2,
        "only the two admitted calls ran"
    );
}

#[tokio::test]
async fn roles_all_requires_every_role() {
    let sec = security();
    let cli = client(&sec);
    for r in [&["admin"][..], &["owner"][..], &[][..]] {
        let t = token(&sec, "alice").roles(r.iter().copied()).bearer();
        let resp = cli
            .get("/all-roles")
            .header("authorization", t)
            .send()
            .await;
        assert!(www_authenticate(&resp).is_empty());
        problem(resp, StatusCode::FORBIDDEN).await;
    }
    let t = token(&sec, "alice").roles(["owner", "admin"]).bearer();
    assert_eq!(
        text(
            cli.get("/all-roles")
                .header("authorization", t)
                .send()
                .await
        )
        .await,
        "all-roles"
    );
}

#[tokio::test]
async fn single_role_and_scopes_do_not_substitute_for_roles() {
    let sec = security();
    let cli = client(&sec);
    // A scope named like the role is not the role.
    let t = token(&sec, "alice")
        .scopes(["admin"])
        .permissions(["admin"])
        .bearer();
    let resp = cli
        .get("/single-role")
        .header("authorization", t)
        .send()
        .await;
    problem(resp, StatusCode::FORBIDDEN).await;
    let t = token(&sec, "alice").roles(["admin"]).bearer();
    assert_eq!(
        text(
            cli.get("/single-role")
                .header("authorization", t)
                .send()
                .await
        )
        .await,
        "single-role"
    );
}

#[tokio::test]
async fn permissions_are_all_required_and_refusal_is_plain_403() {
    let sec = security();
    let cli = tagged(
        &sec,
        "permissions_are_all_required_and_refusal_is_plain_403",
    );
    for p in [&["users:delete"][..], &["audit:write"][..], &[][..]] {
        // Roles and scopes of the same names do not count as permissions.
        let t = token(&sec, "alice")
            .permissions(p.iter().copied())
            .roles(["users:delete", "audit:write"])
            .scopes(["users:delete", "audit:write"])
            .bearer();
        let resp = cli
            .get("/delete-user")
            .header("authorization", t)
            .send()
            .await;
        assert!(www_authenticate(&resp).is_empty());
        problem(resp, StatusCode::FORBIDDEN).await;
    }
    assert_eq!(
        runs("permissions_are_all_required_and_refusal_is_plain_403"),
        0,
        "handler must not run"
    );
    let t = token(&sec, "alice")
        .permissions(["audit:write", "users:delete"])
        .bearer();
    assert_eq!(
        text(
            cli.get("/delete-user")
                .header("authorization", t)
                .send()
                .await
        )
        .await,
        "deleted"
    );
    assert_eq!(
        runs("permissions_are_all_required_and_refusal_is_plain_403"),
        1,
        "control"
    );
}

// ---------------------------------------------------------------------------
// check = fn: allow / 403 / 404
// ---------------------------------------------------------------------------

#[tokio::test]
async fn check_fn_allows_the_owner() {
    let sec = security();
    let cli = client(&sec);
    let t = token(&sec, "alice").scopes(["docs:read"]).bearer();
    assert_eq!(
        text(
            cli.get("/docs/alice")
                .header("authorization", t)
                .send()
                .await
        )
        .await,
        "doc of alice"
    );
}

#[tokio::test]
async fn check_fn_forbidden_is_403_without_reason_in_body() {
    let sec = security();
    let cli = tagged(&sec, "check_fn_forbidden_is_403_without_reason_in_body");
    let t = token(&sec, "alice").scopes(["docs:read"]).bearer();
    let resp = cli.get("/docs/bob").header("authorization", t).send().await;
    assert!(www_authenticate(&resp).is_empty());
    let (_, raw) = problem(resp, StatusCode::FORBIDDEN).await;
    assert!(!raw.contains("REASON"), "the check's reason leaked: {raw}");
    assert_eq!(
        runs("check_fn_forbidden_is_403_without_reason_in_body"),
        0,
        "handler must not run"
    );
}

#[tokio::test]
async fn check_fn_not_found_is_404_without_reason_in_body() {
    let sec = security();
    let cli = tagged(&sec, "check_fn_not_found_is_404_without_reason_in_body");
    let t = token(&sec, "alice").scopes(["docs:read"]).bearer();
    let resp = cli
        .get("/docs/secret")
        .header("authorization", t)
        .send()
        .await;
    assert!(www_authenticate(&resp).is_empty());
    let (v, raw) = problem(resp, StatusCode::NOT_FOUND).await;
    assert_eq!(v["title"], "Not Found");
    assert!(
        !raw.contains("REASON") && !raw.contains("secret"),
        "the check's reason leaked: {raw}"
    );
    assert_eq!(
        runs("check_fn_not_found_is_404_without_reason_in_body"),
        0,
        "handler must not run"
    );
}

#[tokio::test]
async fn check_fn_runs_after_scope_check() {
    let sec = security();
    let cli = client(&sec);
    // The owner but without the scope: the scope refusal wins, not the check.
    let t = token(&sec, "alice").bearer();
    let resp = cli
        .get("/docs/alice")
        .header("authorization", t)
        .send()
        .await;
    assert_eq!(
        www_authenticate(&resp),
        [r#"Bearer error="insufficient_scope", scope="docs:read""#]
    );
    problem(resp, StatusCode::FORBIDDEN).await;
    // Not the owner of `secret` and without a credential: 401, not 404.
    let resp = cli.get("/docs/secret").send().await;
    problem(resp, StatusCode::UNAUTHORIZED).await;
}

// ---------------------------------------------------------------------------
// #[public]
// ---------------------------------------------------------------------------

#[tokio::test]
async fn public_without_credentials_gets_none() {
    let sec = security();
    let cli = client(&sec);
    assert_eq!(text(cli.get("/whoami").send().await).await, "none");
}

#[tokio::test]
async fn public_with_valid_token_gets_the_caller() {
    let sec = security();
    let cli = client(&sec);
    let t = token(&sec, "alice").bearer();
    assert_eq!(
        text(cli.get("/whoami").header("authorization", t).send().await).await,
        "some:alice"
    );
}

#[tokio::test]
async fn public_with_invalid_token_is_401_not_anonymous() {
    let sec = security();
    let cli = client(&sec);
    let expired = token(&sec, "alice").expires_in(-3600).bearer();
    for t in ["Bearer not-a-jwt".to_owned(), expired] {
        let resp = cli.get("/whoami").header("authorization", t).send().await;
        assert_eq!(www_authenticate(&resp), [r#"Bearer error="invalid_token""#]);
        problem(resp, StatusCode::UNAUTHORIZED).await;
    }
}

// ---------------------------------------------------------------------------
// API keys, any(bearer, api_key), Basic
// ---------------------------------------------------------------------------

#[tokio::test]
async fn api_key_route_accepts_a_valid_key() {
    let sec = security();
    let cli = client(&sec);
    let body = text(
        cli.get("/key-only")
            .header("x-api-key", "k1.secret")
            .send()
            .await,
    )
    .await;
    assert_eq!(body, "svc-1|ApiKey|k1");
}

#[tokio::test]
async fn api_key_route_refuses_missing_and_unknown_keys() {
    let sec = security();
    let cli = client(&sec);
    let resp = cli.get("/key-only").send().await;
    assert_eq!(www_authenticate(&resp), ["ApiKey"]);
    problem(resp, StatusCode::UNAUTHORIZED).await;

    let resp = cli
        .get("/key-only")
        .header("x-api-key", "k1.wrong")
        .send()
        .await;
    let challenges = www_authenticate(&resp);
    assert_eq!(
        challenges,
        ["ApiKey"],
        "an API key refusal is not a bearer invalid_token"
    );
    let (_, raw) = problem(resp, StatusCode::UNAUTHORIZED).await;
    assert!(!raw.contains("k1.wrong"), "body leaks the key: {raw}");
}

#[tokio::test]
async fn api_key_route_ignores_a_valid_bearer_token() {
    let sec = security();
    let cli = client(&sec);
    let t = token(&sec, "alice").scopes(["stats:read"]).bearer();
    let resp = cli.get("/key-only").header("authorization", t).send().await;
    assert_eq!(www_authenticate(&resp), ["ApiKey"]);
    problem(resp, StatusCode::UNAUTHORIZED).await;
}

#[tokio::test]
async fn api_key_in_a_custom_header_name() {
    let sec = Security::builder()
        .jwt(
            JwtConfig::hs256(SECRET)
                .unwrap()
                .issuer("guard-test")
                .audience("guard-api"),
        )
        .api_keys(Keys)
        .api_key_header("X-Service-Key")
        .build()
        .unwrap();
    let cli = client(&sec);
    assert_eq!(
        text(
            cli.get("/key-only")
                .header("x-service-key", "k1.secret")
                .send()
                .await
        )
        .await,
        "svc-1|ApiKey|k1"
    );
    // The default header name is no longer read.
    let resp = cli
        .get("/key-only")
        .header("x-api-key", "k1.secret")
        .send()
        .await;
    problem(resp, StatusCode::UNAUTHORIZED).await;
}

#[tokio::test]
async fn api_key_store_unavailable_is_503() {
    let sec = security();
    let cli = client(&sec);
    let resp = cli
        .get("/key-only")
        .header("x-api-key", "down")
        .send()
        .await;
    problem(resp, StatusCode::SERVICE_UNAVAILABLE).await;
}

#[tokio::test]
async fn api_key_route_without_a_key_store_is_500_generic() {
    let sec = jwt_only_security();
    let cli = client(&sec);
    let resp = cli
        .get("/key-only")
        .header("x-api-key", "k1.secret")
        .send()
        .await;
    let (_, raw) = problem(resp, StatusCode::INTERNAL_SERVER_ERROR).await;
    assert!(
        !raw.contains("api_key") && !raw.contains("store"),
        "body reveals configuration: {raw}"
    );
}

#[tokio::test]
async fn any_bearer_or_api_key_accepts_each() {
    let sec = security();
    let cli = client(&sec);
    let t = token(&sec, "alice").scopes(["stats:read"]).bearer();
    assert_eq!(
        text(cli.get("/stats").header("authorization", t).send().await).await,
        "alice|Bearer"
    );
    assert_eq!(
        text(
            cli.get("/stats")
                .header("x-api-key", "k1.secret")
                .send()
                .await
        )
        .await,
        "svc-1|ApiKey"
    );
}

#[tokio::test]
async fn any_bearer_or_api_key_without_credentials_offers_both_challenges() {
    let sec = security();
    let cli = client(&sec);
    let resp = cli.get("/stats").send().await;
    let got: HashSet<String> = www_authenticate(&resp).into_iter().collect();
    assert_eq!(
        got,
        HashSet::from(["Bearer".to_owned(), "ApiKey".to_owned()])
    );
    problem(resp, StatusCode::UNAUTHORIZED).await;
}

#[tokio::test]
async fn any_invalid_bearer_and_missing_key_is_401_invalid_token() {
    let sec = security();
    let cli = client(&sec);
    let resp = cli
        .get("/stats")
        .header("authorization", "Bearer garbage.token.here")
        .send()
        .await;
    let got = www_authenticate(&resp);
    assert!(
        got.iter().any(|v| v == r#"Bearer error="invalid_token""#),
        "challenges: {got:?}"
    );
    problem(resp, StatusCode::UNAUTHORIZED).await;
}

#[tokio::test]
async fn any_invalid_bearer_is_not_rescued_by_a_valid_key() {
    let sec = security();
    let cli = client(&sec);
    let resp = cli
        .get("/stats")
        .header("authorization", "Bearer garbage.token.here")
        .header("x-api-key", "k1.secret")
        .send()
        .await;
    problem(resp, StatusCode::UNAUTHORIZED).await;
    // Nor is an invalid key rescued by a valid bearer token.
    let t = token(&sec, "alice").scopes(["stats:read"]).bearer();
    let resp = cli
        .get("/stats")
        .header("authorization", t)
        .header("x-api-key", "nope")
        .send()
        .await;
    problem(resp, StatusCode::UNAUTHORIZED).await;
}

#[tokio::test]
async fn any_api_key_still_needs_the_scope() {
    let sec = security();
    let cli = client(&sec);
    let resp = cli
        .get("/stats")
        .header("x-api-key", "k2.secret")
        .send()
        .await;
    assert_eq!(
        www_authenticate(&resp),
        [r#"Bearer error="insufficient_scope", scope="stats:read""#]
    );
    problem(resp, StatusCode::FORBIDDEN).await;
}

#[tokio::test]
async fn basic_route_accepts_valid_credentials() {
    let sec = security();
    let cli = client(&sec);
    let body = text(
        cli.get("/basic")
            .header("authorization", basic("carol", "s3cret:with:colons"))
            .send()
            .await,
    )
    .await;
    assert_eq!(body, "carol|Basic|ops");
}

#[tokio::test]
async fn basic_route_refuses_wrong_missing_and_malformed_credentials() {
    let sec = security();
    let cli = client(&sec);
    let basic_challenge = r#"Basic realm="api", charset="UTF-8""#;

    let resp = cli.get("/basic").send().await;
    assert_eq!(www_authenticate(&resp), [basic_challenge]);
    problem(resp, StatusCode::UNAUTHORIZED).await;

    for bad in [
        basic("carol", "wrong"),
        basic("mallory", "s3cret:with:colons"),
        "Basic !!!not-base64!!!".to_owned(),
        // Valid base64 without a colon.
        "Basic Y2Fyb2w=".to_owned(),
    ] {
        let resp = cli
            .get("/basic")
            .header("authorization", bad.clone())
            .send()
            .await;
        assert_eq!(www_authenticate(&resp), [basic_challenge], "for {bad}");
        let (_, raw) = problem(resp, StatusCode::UNAUTHORIZED).await;
        assert!(
            !raw.contains("wrong") && !raw.contains("mallory"),
            "body leaks credentials: {raw}"
        );
    }

    // A bearer token is not accepted on a Basic-only route.
    let t = token(&sec, "alice").bearer();
    let resp = cli.get("/basic").header("authorization", t).send().await;
    assert_eq!(www_authenticate(&resp), [basic_challenge]);
    problem(resp, StatusCode::UNAUTHORIZED).await;
}

// ---------------------------------------------------------------------------
// 400: ambiguous credentials
// ---------------------------------------------------------------------------

#[tokio::test]
async fn two_authorization_headers_are_400_even_if_both_valid() {
    let sec = security();
    let cli = tagged(&sec, "two_authorization_headers_are_400_even_if_both_valid");
    let a = token(&sec, "alice").scopes(["notes:read"]).bearer();
    let b = token(&sec, "bob").scopes(["notes:read"]).bearer();
    let resp = cli
        .get("/note")
        .header("authorization", a.clone())
        .header("authorization", b)
        .send()
        .await;
    problem(resp, StatusCode::BAD_REQUEST).await;
    // Even two copies of the same valid token.
    let resp = cli
        .get("/note")
        .header("authorization", a.clone())
        .header("authorization", a)
        .send()
        .await;
    problem(resp, StatusCode::BAD_REQUEST).await;
    assert_eq!(
        runs("two_authorization_headers_are_400_even_if_both_valid"),
        0,
        "handler must not run"
    );
}

#[tokio::test]
async fn two_api_key_headers_are_400() {
    let sec = security();
    let cli = client(&sec);
    let resp = cli
        .get("/key-only")
        .header("x-api-key", "k1.secret")
        .header("x-api-key", "k2.secret")
        .send()
        .await;
    problem(resp, StatusCode::BAD_REQUEST).await;
}

#[tokio::test]
async fn non_ascii_authorization_header_is_400() {
    let sec = security();
    let cli = client(&sec);
    let v = HeaderValue::from_bytes(b"Bearer \xff\xfe").unwrap();
    let resp = cli.get("/note").header("authorization", v).send().await;
    problem(resp, StatusCode::BAD_REQUEST).await;
}

// ---------------------------------------------------------------------------
// 429: rate limits
// ---------------------------------------------------------------------------

fn retry_after(resp: &TestResponse) -> u64 {
    let v = resp
        .0
        .headers()
        .get(header::RETRY_AFTER)
        .expect("Retry-After header")
        .to_str()
        .unwrap();
    v.parse::<u64>()
        .unwrap_or_else(|_| panic!("Retry-After is not whole seconds: {v:?}"))
}

#[tokio::test]
async fn rate_limit_admits_two_then_429_with_retry_after() {
    let sec = security();
    let cli = tagged(&sec, "rate_limit_admits_two_then_429_with_retry_after");
    let t = token(&sec, "alice").bearer();
    for _ in 0..2 {
        assert_eq!(
            text(
                cli.get("/limited-a")
                    .header("authorization", t.clone())
                    .send()
                    .await
            )
            .await,
            "a"
        );
    }
    let resp = cli
        .get("/limited-a")
        .header("authorization", t.clone())
        .send()
        .await;
    let secs = retry_after(&resp);
    // 2/min: the next admission is ~30 s away.
    assert!((1..=30).contains(&secs), "Retry-After {secs}");
    problem(resp, StatusCode::TOO_MANY_REQUESTS).await;
    assert_eq!(
        runs("rate_limit_admits_two_then_429_with_retry_after"),
        2,
        "the refused call must not run"
    );
}

#[tokio::test]
async fn rate_limit_applies_to_unauthenticated_callers_only_after_401() {
    let sec = security();
    let cli = client(&sec);
    // Anonymous calls to a secured rate-limited route are 401, never 429, and do
    // not spend the quota of a real user.
    for _ in 0..5 {
        problem(cli.get("/limited-a").send().await, StatusCode::UNAUTHORIZED).await;
    }
    let t = token(&sec, "alice").bearer();
    for _ in 0..2 {
        cli.get("/limited-a")
            .header("authorization", t.clone())
            .send()
            .await
            .assert_status_is_ok();
    }
}

#[tokio::test]
async fn handlers_with_the_same_rate_have_separate_buckets() {
    let sec = security();
    let cli = client(&sec);
    let t = token(&sec, "alice").bearer();
    for _ in 0..2 {
        cli.get("/limited-a")
            .header("authorization", t.clone())
            .send()
            .await
            .assert_status_is_ok();
    }
    problem(
        cli.get("/limited-a")
            .header("authorization", t.clone())
            .send()
            .await,
        StatusCode::TOO_MANY_REQUESTS,
    )
    .await;
    for _ in 0..2 {
        assert_eq!(
            text(
                cli.get("/limited-b")
                    .header("authorization", t.clone())
                    .send()
                    .await
            )
            .await,
            "b"
        );
    }
    problem(
        cli.get("/limited-b")
            .header("authorization", t)
            .send()
            .await,
        StatusCode::TOO_MANY_REQUESTS,
    )
    .await;
}

#[tokio::test]
async fn default_rate_key_is_per_user() {
    let sec = security();
    let cli = client(&sec);
    let alice = token(&sec, "alice").bearer();
    let bob = token(&sec, "bob").bearer();
    for _ in 0..2 {
        cli.get("/limited-a")
            .header("authorization", alice.clone())
            .header("x-test-peer", "10.0.0.1:1000")
            .send()
            .await
            .assert_status_is_ok();
    }
    let resp = cli
        .get("/limited-a")
        .header("authorization", alice.clone())
        .header("x-test-peer", "10.0.0.1:1000")
        .send()
        .await;
    problem(resp, StatusCode::TOO_MANY_REQUESTS).await;
    // Same IP, another user: a fresh quota.
    for _ in 0..2 {
        cli.get("/limited-a")
            .header("authorization", bob.clone())
            .header("x-test-peer", "10.0.0.1:1000")
            .send()
            .await
            .assert_status_is_ok();
    }
    // Another token of alice (new jti), another IP: still alice's spent quota.
    let alice2 = token(&sec, "alice").bearer();
    let resp = cli
        .get("/limited-a")
        .header("authorization", alice2)
        .header("x-test-peer", "10.0.0.2:2000")
        .send()
        .await;
    problem(resp, StatusCode::TOO_MANY_REQUESTS).await;
}

#[tokio::test]
async fn ip_rate_key_is_shared_by_users_of_one_ip() {
    let sec = security();
    let cli = client(&sec);
    let alice = token(&sec, "alice").bearer();
    let bob = token(&sec, "bob").bearer();
    let ip1 = "192.0.2.1:5555";
    cli.get("/limited-ip")
        .header("authorization", alice.clone())
        .header("x-test-peer", ip1)
        .send()
        .await
        .assert_status_is_ok();
    cli.get("/limited-ip")
        .header("authorization", bob.clone())
        .header("x-test-peer", ip1)
        .send()
        .await
        .assert_status_is_ok();
    // The IP's quota is spent, whoever asks.
    let resp = cli
        .get("/limited-ip")
        .header("authorization", bob.clone())
        .header("x-test-peer", ip1)
        .send()
        .await;
    assert!(retry_after(&resp) >= 1);
    problem(resp, StatusCode::TOO_MANY_REQUESTS).await;
    // Another IP (even another port of another host) has its own quota.
    cli.get("/limited-ip")
        .header("authorization", alice)
        .header("x-test-peer", "192.0.2.2:5555")
        .send()
        .await
        .assert_status_is_ok();
    // A different source port of the first IP is the same IP.
    let resp = cli
        .get("/limited-ip")
        .header("authorization", bob)
        .header("x-test-peer", "192.0.2.1:6666")
        .send()
        .await;
    problem(resp, StatusCode::TOO_MANY_REQUESTS).await;
}

#[tokio::test]
async fn custom_rate_key_function_partitions_the_quota() {
    let sec = security();
    let cli = client(&sec);
    let alice = token(&sec, "alice").bearer();
    let bob = token(&sec, "bob").bearer();
    cli.get("/limited-tenant")
        .header("authorization", alice.clone())
        .header("x-tenant", "t1")
        .send()
        .await
        .assert_status_is_ok();
    // Another user of the same tenant shares the tenant's quota.
    let resp = cli
        .get("/limited-tenant")
        .header("authorization", bob.clone())
        .header("x-tenant", "t1")
        .send()
        .await;
    problem(resp, StatusCode::TOO_MANY_REQUESTS).await;
    cli.get("/limited-tenant")
        .header("authorization", bob)
        .header("x-tenant", "t2")
        .send()
        .await
        .assert_status_is_ok();
}

#[tokio::test]
async fn api_key_rate_key_gives_each_key_its_own_quota() {
    let sec = security();
    let cli = client(&sec);
    let ip = "203.0.113.9:1";
    cli.get("/limited-key")
        .header("x-api-key", "k1.secret")
        .header("x-test-peer", ip)
        .send()
        .await
        .assert_status_is_ok();
    let resp = cli
        .get("/limited-key")
        .header("x-api-key", "k1.secret")
        .header("x-test-peer", ip)
        .send()
        .await;
    problem(resp, StatusCode::TOO_MANY_REQUESTS).await;
    // Same IP, another key: its own quota.
    cli.get("/limited-key")
        .header("x-api-key", "k2.secret")
        .header("x-test-peer", ip)
        .send()
        .await
        .assert_status_is_ok();
    // An unknown key is refused as such (401), not rate limited.
    let resp = cli
        .get("/limited-key")
        .header("x-api-key", "k9.nope")
        .header("x-test-peer", ip)
        .send()
        .await;
    problem(resp, StatusCode::UNAUTHORIZED).await;
}

#[tokio::test]
async fn public_rate_limit_counts_per_ip() {
    let sec = security();
    let cli = client(&sec);
    for _ in 0..2 {
        assert_eq!(
            text(
                cli.get("/public-limited")
                    .header("x-test-peer", "198.51.100.7:1")
                    .send()
                    .await
            )
            .await,
            "public"
        );
    }
    let resp = cli
        .get("/public-limited")
        .header("x-test-peer", "198.51.100.7:1")
        .send()
        .await;
    assert!(retry_after(&resp) >= 1);
    problem(resp, StatusCode::TOO_MANY_REQUESTS).await;
    cli.get("/public-limited")
        .header("x-test-peer", "198.51.100.8:1")
        .send()
        .await
        .assert_status_is_ok();
}

// ---------------------------------------------------------------------------
// Ordering: the guard runs before body extractors
// ---------------------------------------------------------------------------

#[tokio::test]
async fn guard_runs_before_body_extractor() {
    let sec = security();
    let cli = tagged(&sec, "guard_runs_before_body_extractor");
    // Invalid JSON and no token: 401, not the extractor's 400.
    let resp = cli
        .post("/notes")
        .content_type("application/json")
        .body("{not json")
        .send()
        .await;
    assert_eq!(www_authenticate(&resp), ["Bearer"]);
    problem(resp, StatusCode::UNAUTHORIZED).await;
    // Invalid JSON, token without the scope: 403.
    let t = token(&sec, "alice").scopes(["notes:read"]).bearer();
    let resp = cli
        .post("/notes")
        .header("authorization", t)
        .content_type("application/json")
        .body("{not json")
        .send()
        .await;
    problem(resp, StatusCode::FORBIDDEN).await;
    assert_eq!(
        runs("guard_runs_before_body_extractor"),
        0,
        "handler must not run"
    );

    // Control: with a valid token the extractor does run (and refuses bad JSON).
    let t = token(&sec, "alice").scopes(["notes:write"]).bearer();
    let resp = cli
        .post("/notes")
        .header("authorization", t.clone())
        .content_type("application/json")
        .body("{not json")
        .send()
        .await;
    resp.assert_status(StatusCode::BAD_REQUEST);
    let resp = cli
        .post("/notes")
        .header("authorization", t)
        .content_type("application/json")
        .body(r#"{"title":"hello"}"#)
        .send()
        .await;
    assert_eq!(text(resp).await, "created hello");
    assert_eq!(
        runs("guard_runs_before_body_extractor"),
        1,
        "control: the admitted request ran"
    );
}

// ---------------------------------------------------------------------------
// 500: Security not installed; undeclared Principal extractor
// ---------------------------------------------------------------------------

#[tokio::test]
async fn missing_security_middleware_is_500_generic_and_never_serves() {
    let sec = security();
    let cli = TestClient::new(Route::new().at("/x", get(needs_install))).default_header(
        "x-test-id",
        "missing_security_middleware_is_500_generic_and_never_serves",
    );
    for t in [
        None,
        Some(token(&sec, "alice").scopes(["notes:read"]).bearer()),
    ] {
        let mut req = cli.get("/x");
        if let Some(t) = t {
            req = req.header("authorization", t);
        }
        let resp = req.send().await;
        let (v, raw) = problem(resp, StatusCode::INTERNAL_SERVER_ERROR).await;
        assert_eq!(v["detail"], "The server could not process the request.");
        assert!(
            !raw.contains("Security") && !raw.contains("with("),
            "body reveals internals: {raw}"
        );
    }
    assert_eq!(
        runs("missing_security_middleware_is_500_generic_and_never_serves"),
        0,
        "handler must not run"
    );
}

#[tokio::test]
// Routing an undeclared handler needs poem's own routing: the bypass the
// clippy.toml recipe forbids everywhere else.
#[allow(clippy::disallowed_methods)]
async fn undeclared_principal_extractor_never_invents_a_caller() {
    let sec = security();
    // A plain poem::Route: poem_secure::route would not accept `undeclared`.
    let cli = TestClient::new(
        poem::Route::new()
            .at("/u", poem::get(undeclared))
            .with(sec.clone()),
    )
    .default_header(
        "x-test-id",
        "undeclared_principal_extractor_never_invents_a_caller",
    );
    let t = token(&sec, "alice")
        .scopes(["notes:read"])
        .roles(["admin"])
        .bearer();
    for req in [cli.get("/u"), cli.get("/u").header("authorization", t)] {
        let resp = req.send().await;
        problem(resp, StatusCode::UNAUTHORIZED).await;
    }
    assert_eq!(
        runs("undeclared_principal_extractor_never_invents_a_caller"),
        0,
        "handler must not run"
    );
}
