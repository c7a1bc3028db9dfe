//! poem-openapi integration: the OpenAPI document `#[deny_unprotected]`
//! produces (security schemes, per-operation requirements, 401/403/429
//! responses), and the behaviour of the secured operations.

use poem::{
    http::{header, StatusCode},
    test::{TestClient, TestResponse},
    Endpoint,
};
use poem_openapi::{
    param::Path,
    payload::{Json, PlainText},
    ApiResponse, OpenApi,
};
use poem_secure::{
    deny_unprotected, public, route::Route, secure, testing::token, Answer, ApiKeyVerifier,
    Catalogue, CredentialError, CredentialKind, JwtConfig, Principal, Security,
};
use serde_json::{json, Value};

pub const ACCESS: Catalogue = Catalogue::new()
    .token_url("/auth/token")
    .scopes(&[("notes:read", "Read notes"), ("stats:read", "Stats")])
    .roles(&["admin"]);

// ---------------------------------------------------------------------------
// An API checked against a catalogue with a token URL (OAuth2 password flow).
// ---------------------------------------------------------------------------

pub struct CatApi;

#[deny_unprotected(catalogue = ACCESS)]
#[OpenApi]
impl CatApi {
    #[secure(scopes = "notes:read")]
    #[oai(path = "/notes", method = "get")]
    async fn notes(&self, who: Principal) -> PlainText<String> {
        PlainText(format!("notes of {}", who.subject()))
    }

    #[secure(auth = any(bearer, api_key), scopes = "stats:read")]
    #[oai(path = "/stats", method = "get")]
    async fn stats(&self, who: Principal) -> PlainText<String> {
        PlainText(format!("stats for {}", who.subject()))
    }

    #[secure(roles = "admin", rate = "5/min")]
    #[oai(path = "/admin", method = "post")]
    async fn admin(&self) -> PlainText<&'static str> {
        PlainText("admin")
    }

    #[public]
    #[oai(path = "/health", method = "get")]
    async fn health(&self) -> PlainText<&'static str> {
        PlainText("ok")
    }

    #[public(rate = "10/min")]
    #[oai(path = "/ping", method = "get")]
    async fn ping(&self, who: Option<Principal>) -> PlainText<String> {
        PlainText(who.map_or_else(|| "pong".to_owned(), |p| format!("pong {}", p.subject())))
    }
}

// ---------------------------------------------------------------------------
// The same operations without a catalogue (HTTP bearer scheme), plus an
// operation whose response type has its own bad-request handler.
// ---------------------------------------------------------------------------

#[derive(ApiResponse)]
#[oai(bad_request_handler = "item_bad_request")]
enum ItemResponse {
    /// The item.
    #[oai(status = 200)]
    Ok(Json<Value>),
    /// The request was malformed.
    #[oai(status = 400)]
    BadRequest(PlainText<String>),
}

fn item_bad_request(_err: poem::Error) -> ItemResponse {
    ItemResponse::BadRequest(PlainText("custom bad request".to_owned()))
}

pub struct PlainApi;

#[deny_unprotected]
#[OpenApi]
impl PlainApi {
    #[secure(scopes = "notes:read")]
    #[oai(path = "/notes", method = "get")]
    async fn notes(&self, who: Principal) -> PlainText<String> {
        PlainText(format!("notes of {}", who.subject()))
    }

    #[secure(auth = any(bearer, api_key), scopes = "stats:read")]
    #[oai(path = "/stats", method = "get")]
    async fn stats(&self, who: Principal) -> PlainText<String> {
        PlainText(format!("stats for {}", who.subject()))
    }

    #[secure(roles = "admin", rate = "5/min")]
    #[oai(path = "/admin", method = "post")]
    async fn admin(&self) -> PlainText<&'static str> {
        PlainText("admin")
    }

    #[public]
    #[oai(path = "/health", method = "get")]
    async fn health(&self) -> PlainText<&'static str> {
        PlainText("ok")
    }

    #[public(rate = "10/min")]
    #[oai(path = "/ping", method = "get")]
    async fn ping(&self, who: Option<Principal>) -> PlainText<String> {
        PlainText(who.map_or_else(|| "pong".to_owned(), |p| format!("pong {}", p.subject())))
    }

    #[secure(scopes = "notes:read")]
    #[oai(path = "/items/:id", method = "get")]
    async fn item(&self, id: Path<u32>) -> ItemResponse {
        ItemResponse::Ok(Json(json!({ "id": id.0 })))
    }

    #[public]
    #[oai(path = "/open-items/:id", method = "get")]
    async fn open_item(&self, id: Path<u32>) -> ItemResponse {
        ItemResponse::Ok(Json(json!({ "id": id.0 })))
    }
}

fn cat_spec() -> Value {
    serde_json::from_str(&poem_secure::openapi::service(CatApi, "t", "1").spec()).unwrap()
}

fn plain_spec() -> Value {
    serde_json::from_str(&poem_secure::openapi::service(PlainApi, "t", "1").spec()).unwrap()
}

fn op<'a>(spec: &'a Value, path: &str, method: &str) -> &'a Value {
    let op = &spec["paths"][path][method];
    assert!(op.is_object(), "no operation {method} {path} in {spec:#}");
    op
}

const SECURED: &[(&str, &str)] = &[("/notes", "get"), ("/stats", "get"), ("/admin", "post")];
const PUBLIC: &[(&str, &str)] = &[("/health", "get"), ("/ping", "get")];

/// The scheme names of each requirement object of an operation, in order.
fn requirement_keys(op: &Value) -> Vec<Vec<String>> {
    op["security"]
        .as_array()
        .unwrap_or_else(|| panic!("no security array: {op:#}"))
        .iter()
        .map(|req| {
            let mut keys: Vec<String> = req.as_object().unwrap().keys().cloned().collect();
            keys.sort();
            keys
        })
        .collect()
}

fn problem_response(description_hint: &str) -> impl Fn(&Value) + '_ {
    move |resp: &Value| {
        assert_eq!(
            resp["content"],
            json!({ "application/problem+json": { "schema": { "$ref": "#/components/schemas/ProblemDetails" } } }),
            "{description_hint}: {resp:#}"
        );
        assert!(
            resp["description"].as_str().is_some_and(|d| !d.is_empty()),
            "{description_hint}: {resp:#}"
        );
    }
}

// ---------------------------------------------------------------------------
// components.securitySchemes
// ---------------------------------------------------------------------------

#[test]
fn catalogue_with_token_url_documents_oauth2_password_flow_and_api_key() {
    let spec = cat_spec();
    let schemes = &spec["components"]["securitySchemes"];
    let names: Vec<&String> = schemes.as_object().unwrap().keys().collect();
    assert_eq!(
        names,
        ["apiKey", "oauth2"],
        "no bearerAuth next to oauth2: {schemes:#}"
    );
    let oauth2 = &schemes["oauth2"];
    assert_eq!(oauth2["type"], "oauth2");
    assert_eq!(
        oauth2["flows"],
        json!({ "password": {
            "tokenUrl": "/auth/token",
            "scopes": { "notes:read": "Read notes", "stats:read": "Stats" }
        } })
    );
    assert_eq!(schemes["apiKey"]["type"], "apiKey");
    assert_eq!(schemes["apiKey"]["in"], "header");
    assert_eq!(schemes["apiKey"]["name"], "X-API-Key");
}

#[test]
fn without_catalogue_documents_http_bearer_jwt_and_api_key() {
    let spec = plain_spec();
    let schemes = &spec["components"]["securitySchemes"];
    let names: Vec<&String> = schemes.as_object().unwrap().keys().collect();
    assert_eq!(names, ["apiKey", "bearerAuth"], "{schemes:#}");
    let bearer = &schemes["bearerAuth"];
    assert_eq!(bearer["type"], "http");
    assert_eq!(bearer["scheme"], "bearer");
    assert_eq!(bearer["bearerFormat"], "JWT");
    assert!(bearer.get("flows").is_none());
    assert_eq!(schemes["apiKey"]["type"], "apiKey");
    assert_eq!(schemes["apiKey"]["in"], "header");
    assert_eq!(schemes["apiKey"]["name"], "X-API-Key");
}

#[test]
fn problem_details_schema_is_registered() {
    for spec in [cat_spec(), plain_spec()] {
        let schema = &spec["components"]["schemas"]["ProblemDetails"];
        assert_eq!(schema["type"], "object");
        assert_eq!(
            schema["properties"],
            json!({
                "type": { "type": "string" },
                "title": { "type": "string" },
                "status": { "type": "integer" },
                "detail": { "type": "string" },
            })
        );
    }
}

// ---------------------------------------------------------------------------
// Per-operation security requirements
// ---------------------------------------------------------------------------

#[test]
fn single_scheme_operation_has_one_requirement_with_its_scopes() {
    let spec = cat_spec();
    assert_eq!(
        op(&spec, "/notes", "get")["security"],
        json!([{ "oauth2": ["notes:read"] }])
    );
    // Roles are not OAuth2 scopes: a role-only operation requires the scheme
    // with no scope.
    assert_eq!(
        op(&spec, "/admin", "post")["security"],
        json!([{ "oauth2": [] }])
    );

    let spec = plain_spec();
    assert_eq!(
        requirement_keys(op(&spec, "/notes", "get")),
        [["bearerAuth"]]
    );
    assert_eq!(
        requirement_keys(op(&spec, "/admin", "post")),
        [["bearerAuth"]]
    );
    assert_eq!(
        requirement_keys(op(&spec, "/items/{id}", "get")),
        [["bearerAuth"]]
    );
}

#[test]
fn any_auth_documents_alternative_requirement_objects() {
    // OR: two requirement objects, one scheme each (one object holding both
    // schemes would mean AND).
    let spec = cat_spec();
    let stats = op(&spec, "/stats", "get");
    assert_eq!(requirement_keys(stats), [["oauth2"], ["apiKey"]]);
    assert_eq!(stats["security"][0], json!({ "oauth2": ["stats:read"] }));

    let spec = plain_spec();
    assert_eq!(
        requirement_keys(op(&spec, "/stats", "get")),
        [["bearerAuth"], ["apiKey"]]
    );
}

#[test]
fn non_oauth2_requirements_have_empty_scope_lists() {
    // The document declares `"openapi": "3.0.0"`; OpenAPI 3.0.x, Security
    // Requirement Object: "For other security scheme types [than oauth2 /
    // openIdConnect], the array MUST be empty."
    let plain = plain_spec();
    assert_eq!(plain["openapi"], "3.0.0");
    assert_eq!(
        op(&plain, "/notes", "get")["security"],
        json!([{ "bearerAuth": [] }])
    );
    assert_eq!(
        op(&plain, "/stats", "get")["security"],
        json!([{ "bearerAuth": [] }, { "apiKey": [] }])
    );
    let cat = cat_spec();
    assert_eq!(
        op(&cat, "/stats", "get")["security"],
        json!([{ "oauth2": ["stats:read"] }, { "apiKey": [] }])
    );
}

#[test]
fn public_operations_have_no_security_requirement() {
    for spec in [cat_spec(), plain_spec()] {
        for (path, method) in PUBLIC.iter().chain([&("/open-items/{id}", "get")]) {
            if *path == "/open-items/{id}" && spec["paths"].get(*path).is_none() {
                continue; // only in the plain API
            }
            let o = op(&spec, path, method);
            let sec = o.get("security");
            assert!(
                sec.is_none() || sec == Some(&json!([])),
                "{method} {path} must not require credentials: {o:#}"
            );
        }
    }
}

// ---------------------------------------------------------------------------
// Documented responses
// ---------------------------------------------------------------------------

#[test]
fn secured_operations_document_401_and_403_as_problem_json() {
    for spec in [cat_spec(), plain_spec()] {
        for (path, method) in SECURED.iter().chain([&("/items/{id}", "get")]) {
            if spec["paths"].get(*path).is_none() {
                continue; // `/items/{id}` is only in the plain API
            }
            let responses = &op(&spec, path, method)["responses"];
            problem_response(&format!("401 of {method} {path}"))(&responses["401"]);
            problem_response(&format!("403 of {method} {path}"))(&responses["403"]);
        }
    }
}

#[test]
fn public_operations_document_neither_401_nor_403() {
    let spec = plain_spec();
    for (path, method) in PUBLIC.iter().chain([&("/open-items/{id}", "get")]) {
        let responses = &op(&spec, path, method)["responses"];
        assert!(
            responses.get("401").is_none(),
            "{method} {path}: {responses:#}"
        );
        assert!(
            responses.get("403").is_none(),
            "{method} {path}: {responses:#}"
        );
    }
    let spec = cat_spec();
    for (path, method) in PUBLIC {
        let responses = &op(&spec, path, method)["responses"];
        assert!(
            responses.get("401").is_none() && responses.get("403").is_none(),
            "{responses:#}"
        );
    }
}

#[test]
fn only_limited_operations_document_429() {
    for spec in [cat_spec(), plain_spec()] {
        for (path, method) in SECURED.iter().chain(PUBLIC) {
            let responses = &op(&spec, path, method)["responses"];
            // Rate-limited, or accepting a guessable credential (an API
            // key: its failure budget).
            let limited = matches!(*path, "/admin" | "/ping" | "/stats");
            assert_eq!(
                responses.get("429").is_some(),
                limited,
                "{method} {path}: {responses:#}"
            );
            if limited {
                problem_response(&format!("429 of {method} {path}"))(&responses["429"]);
            }
        }
    }
}

#[test]
fn the_operations_own_responses_are_kept() {
    let spec = plain_spec();
    for path in ["/items/{id}", "/open-items/{id}"] {
        let responses = &op(&spec, path, "get")["responses"];
        assert!(
            responses["200"]["content"]["application/json; charset=utf-8"].is_object(),
            "{responses:#}"
        );
        assert!(
            responses["400"]["content"]["text/plain; charset=utf-8"].is_object(),
            "{responses:#}"
        );
    }
    let codes: Vec<&String> = op(&spec, "/items/{id}", "get")["responses"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(codes, ["200", "400", "401", "403"]);
    let codes: Vec<&String> = op(&spec, "/notes", "get")["responses"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(codes, ["200", "401", "403"]);
}

// ---------------------------------------------------------------------------
// Operations with two or more scopes (compiled separately: see module doc).
// ---------------------------------------------------------------------------

/// A program with `#[secure(scopes = "notes:read stats:read")]` on an
/// operation; it asserts the AND requirement in the document and the 403 for a
/// caller holding one of the two scopes.
pub struct TwoScopesApi;

#[deny_unprotected(catalogue = ACCESS)]
#[OpenApi]
impl TwoScopesApi {
    #[secure(scopes = "notes:read stats:read")]
    #[oai(path = "/digest", method = "get")]
    async fn digest(&self) -> PlainText<&'static str> {
        PlainText("digest")
    }
}

#[tokio::test]
async fn operation_with_two_scopes_requires_both_and_documents_one_and_requirement() {
    let spec: Value =
        serde_json::from_str(&poem_secure::openapi::service(TwoScopesApi, "t", "1").spec())
            .unwrap();
    assert_eq!(
        spec["paths"]["/digest"]["get"]["security"],
        json!([{ "oauth2": ["notes:read", "stats:read"] }])
    );
    let sec = Security::builder()
        .jwt(
            JwtConfig::hs256([3u8; 32])
                .unwrap()
                .issuer("i")
                .audience("a"),
        )
        .build()
        .unwrap();
    let cli = TestClient::new(
        Route::new()
            .nest("/", poem_secure::openapi::service(TwoScopesApi, "t", "1"))
            .with(sec.clone()),
    );
    let one = token(&sec, "alice").scopes(["notes:read"]).bearer();
    let resp = cli.get("/digest").header("authorization", one).send().await;
    resp.assert_status(StatusCode::FORBIDDEN);
    resp.assert_header(
        "www-authenticate",
        "Bearer error=\"insufficient_scope\", scope=\"notes:read stats:read\"",
    );
    let both = token(&sec, "alice")
        .scopes(["stats:read", "notes:read"])
        .bearer();
    cli.get("/digest")
        .header("authorization", both)
        .send()
        .await
        .assert_status_is_ok();
}

// ---------------------------------------------------------------------------
// Behaviour of the secured operations
// ---------------------------------------------------------------------------

struct Keys;

impl ApiKeyVerifier for Keys {
    fn verify<'a>(&'a self, key: &'a str) -> Answer<'a, Result<Principal, CredentialError>> {
        Answer::later(async move {
            match key {
                "k1.secret" => Ok(Principal::builder(CredentialKind::ApiKey, "svc-1")
                    .scopes(["stats:read"])
                    .key_id("k1")
                    .build()),
                _ => Err(CredentialError::Invalid),
            }
        })
    }
}

fn security() -> Security {
    Security::builder()
        .jwt(
            JwtConfig::hs256([5u8; 32])
                .unwrap()
                .issuer("oa-test")
                .audience("oa-api"),
        )
        .api_keys(Keys)
        .build()
        .unwrap()
}

fn client(sec: &Security) -> TestClient<impl Endpoint> {
    TestClient::new(
        Route::new()
            .nest("/cat", poem_secure::openapi::service(CatApi, "t", "1"))
            .nest("/plain", poem_secure::openapi::service(PlainApi, "t", "1"))
            .with(sec.clone()),
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

async fn assert_problem(resp: TestResponse, status: StatusCode) -> String {
    resp.assert_status(status);
    resp.assert_content_type("application/problem+json");
    let body = resp.0.into_body().into_string().await.unwrap();
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], status.as_u16());
    body
}

async fn ok_text(resp: TestResponse) -> String {
    resp.assert_status_is_ok();
    resp.0.into_body().into_string().await.unwrap()
}

#[tokio::test]
async fn operation_without_token_is_401() {
    let sec = security();
    let cli = client(&sec);
    for prefix in ["/cat", "/plain"] {
        let resp = cli.get(format!("{prefix}/notes")).send().await;
        assert_eq!(www_authenticate(&resp), ["Bearer"]);
        assert_problem(resp, StatusCode::UNAUTHORIZED).await;
    }
}

#[tokio::test]
async fn operation_with_invalid_token_is_401_invalid_token() {
    let sec = security();
    let cli = client(&sec);
    let expired = token(&sec, "alice")
        .scopes(["notes:read"])
        .expires_in(-3600)
        .bearer();
    let resp = cli
        .get("/cat/notes")
        .header("authorization", expired.clone())
        .send()
        .await;
    assert_eq!(www_authenticate(&resp), [r#"Bearer error="invalid_token""#]);
    let body = assert_problem(resp, StatusCode::UNAUTHORIZED).await;
    assert!(
        !body.contains(expired.trim_start_matches("Bearer ")),
        "body leaks the token"
    );
}

#[tokio::test]
async fn operation_with_wrong_scope_is_403_insufficient_scope() {
    let sec = security();
    let cli = client(&sec);
    let t = token(&sec, "alice").scopes(["stats:read"]).bearer();
    let resp = cli
        .get("/cat/notes")
        .header("authorization", t)
        .send()
        .await;
    assert_eq!(
        www_authenticate(&resp),
        [r#"Bearer error="insufficient_scope", scope="notes:read""#]
    );
    assert_problem(resp, StatusCode::FORBIDDEN).await;
}

#[tokio::test]
async fn operation_with_valid_token_succeeds() {
    let sec = security();
    let cli = client(&sec);
    let t = token(&sec, "alice").scopes(["notes:read"]).bearer();
    assert_eq!(
        ok_text(
            cli.get("/cat/notes")
                .header("authorization", t.clone())
                .send()
                .await
        )
        .await,
        "notes of alice"
    );
    assert_eq!(
        ok_text(
            cli.get("/plain/notes")
                .header("authorization", t)
                .send()
                .await
        )
        .await,
        "notes of alice"
    );
}

#[tokio::test]
async fn any_auth_operation_accepts_bearer_or_api_key() {
    let sec = security();
    let cli = client(&sec);
    let t = token(&sec, "alice").scopes(["stats:read"]).bearer();
    assert_eq!(
        ok_text(
            cli.get("/cat/stats")
                .header("authorization", t)
                .send()
                .await
        )
        .await,
        "stats for alice"
    );
    assert_eq!(
        ok_text(
            cli.get("/cat/stats")
                .header("x-api-key", "k1.secret")
                .send()
                .await
        )
        .await,
        "stats for svc-1"
    );

    let resp = cli
        .get("/cat/stats")
        .header("x-api-key", "wrong")
        .send()
        .await;
    assert_problem(resp, StatusCode::UNAUTHORIZED).await;
    let resp = cli
        .get("/cat/stats")
        .header("authorization", "Bearer nope")
        .send()
        .await;
    assert!(www_authenticate(&resp)
        .iter()
        .any(|v| v == r#"Bearer error="invalid_token""#));
    assert_problem(resp, StatusCode::UNAUTHORIZED).await;
}

#[tokio::test]
async fn role_operation_is_403_without_role_and_rate_limited_with_it() {
    let sec = security();
    let cli = client(&sec);
    let user = token(&sec, "alice").roles(["user"]).bearer();
    let resp = cli
        .post("/cat/admin")
        .header("authorization", user)
        .send()
        .await;
    assert!(www_authenticate(&resp).is_empty());
    assert_problem(resp, StatusCode::FORBIDDEN).await;

    let admin = token(&sec, "root").roles(["admin"]).bearer();
    for _ in 0..5 {
        assert_eq!(
            ok_text(
                cli.post("/cat/admin")
                    .header("authorization", admin.clone())
                    .send()
                    .await
            )
            .await,
            "admin"
        );
    }
    let resp = cli
        .post("/cat/admin")
        .header("authorization", admin)
        .send()
        .await;
    let retry: u64 = resp.0.headers()[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (1..=12).contains(&retry),
        "5/min: next admission within 12 s, got {retry}"
    );
    assert_problem(resp, StatusCode::TOO_MANY_REQUESTS).await;
}

#[tokio::test]
async fn public_operations_serve_anonymous_and_refuse_bad_tokens() {
    let sec = security();
    let cli = client(&sec);
    assert_eq!(ok_text(cli.get("/cat/health").send().await).await, "ok");
    assert_eq!(ok_text(cli.get("/cat/ping").send().await).await, "pong");
    let t = token(&sec, "alice").bearer();
    assert_eq!(
        ok_text(cli.get("/cat/ping").header("authorization", t).send().await).await,
        "pong alice"
    );
    let resp = cli
        .get("/cat/health")
        .header("authorization", "Bearer nope")
        .send()
        .await;
    assert_eq!(www_authenticate(&resp), [r#"Bearer error="invalid_token""#]);
    assert_problem(resp, StatusCode::UNAUTHORIZED).await;
}

#[tokio::test]
async fn public_rate_limited_operation_answers_429_after_its_quota() {
    let sec = security();
    let cli = client(&sec);
    // 10/min: ten calls pass (already-spent calls from other tests use another
    // Security, hence another limiter).
    for _ in 0..10 {
        cli.get("/plain/ping").send().await.assert_status_is_ok();
    }
    let resp = cli.get("/plain/ping").send().await;
    assert!(resp.0.headers().contains_key(header::RETRY_AFTER));
    assert_problem(resp, StatusCode::TOO_MANY_REQUESTS).await;
    // Health has no rate limit.
    for _ in 0..12 {
        cli.get("/plain/health").send().await.assert_status_is_ok();
    }
}

#[tokio::test]
async fn bad_request_handler_does_not_turn_a_refusal_into_its_400() {
    let sec = security();
    let cli = client(&sec);
    // A malformed path parameter and no token: the guard's 401, not the
    // response type's own 400.
    let resp = cli.get("/plain/items/not-a-number").send().await;
    assert_eq!(www_authenticate(&resp), ["Bearer"]);
    assert_problem(resp, StatusCode::UNAUTHORIZED).await;
    // Same with an invalid token, and with a token lacking the scope (403).
    let resp = cli
        .get("/plain/items/not-a-number")
        .header("authorization", "Bearer nope")
        .send()
        .await;
    assert_problem(resp, StatusCode::UNAUTHORIZED).await;
    let t = token(&sec, "alice").scopes(["stats:read"]).bearer();
    let resp = cli
        .get("/plain/items/not-a-number")
        .header("authorization", t)
        .send()
        .await;
    assert_problem(resp, StatusCode::FORBIDDEN).await;
    // A public operation with the same response type: a bad token is still 401.
    let resp = cli
        .get("/plain/open-items/not-a-number")
        .header("authorization", "Bearer nope")
        .send()
        .await;
    assert_problem(resp, StatusCode::UNAUTHORIZED).await;
}

#[tokio::test]
async fn bad_request_handler_still_handles_real_bad_requests() {
    // Control for the test above: the user's handler is wired and answers 400
    // for a caller that passed the guard.
    let sec = security();
    let cli = client(&sec);
    let t = token(&sec, "alice").scopes(["notes:read"]).bearer();
    let resp = cli
        .get("/plain/items/not-a-number")
        .header("authorization", t.clone())
        .send()
        .await;
    resp.assert_status(StatusCode::BAD_REQUEST);
    resp.assert_text("custom bad request").await;
    let resp = cli.get("/plain/open-items/not-a-number").send().await;
    resp.assert_status(StatusCode::BAD_REQUEST);
    resp.assert_text("custom bad request").await;
    let resp = cli
        .get("/plain/items/7")
        .header("authorization", t)
        .send()
        .await;
    resp.assert_status_is_ok();
    resp.assert_json(json!({ "id": 7 })).await;
}

#[test]
fn the_403_and_429_descriptions_state_the_exact_requirement_and_limit() {
    for spec in [cat_spec(), plain_spec()] {
        let responses = &op(&spec, "/admin", "post")["responses"];
        let forbidden = responses["403"]["description"].as_str().unwrap_or_default();
        assert!(forbidden.contains("`admin`"), "{forbidden}");
        let limited = responses["429"]["description"].as_str().unwrap_or_default();
        assert!(
            limited.contains("5 requests per minute per caller"),
            "{limited}"
        );
    }
}
