//! The hardening layer: security headers on every response, CORS with startup
//! validation, request limits, problem+json for every error, request ids.

use std::time::Duration;

use poem::{
    handler,
    http::{Method, StatusCode},
    test::{TestClient, TestResponse},
    web::Json,
    Endpoint,
};
use poem_secure::{
    public,
    route::{self, get, post, Route},
    secure, CorsPolicy, Hardening, JwtConfig, Security,
};
use serde_json::Value;

#[public]
#[handler]
async fn hello() -> &'static str {
    "hello"
}

#[public]
#[handler]
async fn echo(body: Json<Value>) -> Json<Value> {
    body
}

#[public]
#[handler]
async fn boom() -> &'static str {
    panic!("internal detail: database password is hunter2")
}

#[public]
#[handler]
async fn slow() -> &'static str {
    tokio::time::sleep(Duration::from_secs(5)).await;
    "late"
}

#[secure]
#[handler]
async fn private() -> &'static str {
    "secret data"
}

fn security() -> Security {
    Security::builder()
        .jwt(
            JwtConfig::hs256([5u8; 32])
                .unwrap()
                .issuer("i")
                .audience("a"),
        )
        .build()
        .unwrap()
}

fn app(h: Hardening) -> impl Endpoint {
    Route::new()
        .at("/hello", get(hello))
        .at("/echo", post(echo))
        .at("/boom", get(boom))
        .at("/slow", get(slow))
        .at("/private", get(private))
        .nest(
            "/docs",
            route::public(poem::endpoint::make_sync(|_| "<html>docs</html>")),
        )
        .with(security())
        .with(h)
}

async fn problem_of(resp: TestResponse, status: StatusCode) -> Value {
    resp.assert_status(status);
    resp.assert_content_type("application/problem+json");
    let body: Value = resp.json().await.value().deserialize();
    assert_eq!(body["status"], status.as_u16());
    assert_eq!(body["type"], "about:blank");
    body
}

fn assert_security_headers(resp: &TestResponse) {
    let h = resp.0.headers();
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["referrer-policy"], "no-referrer");
    assert!(h["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("frame-ancestors 'none'"));
    assert!(h.contains_key("x-request-id"));
}

#[tokio::test]
async fn security_headers_on_success_404_405_refusals_and_errors() {
    let cli = TestClient::new(app(Hardening::new()));
    let ok = cli.get("/hello").send().await;
    ok.assert_status_is_ok();
    assert_security_headers(&ok);
    assert_eq!(
        ok.0.headers()["content-security-policy"],
        "default-src 'none'; frame-ancestors 'none'"
    );
    for (req, status) in [
        (cli.get("/nope"), StatusCode::NOT_FOUND),
        (cli.delete("/hello"), StatusCode::METHOD_NOT_ALLOWED),
        (cli.get("/private"), StatusCode::UNAUTHORIZED),
        (cli.get("/boom"), StatusCode::INTERNAL_SERVER_ERROR),
    ] {
        let resp = req.send().await;
        assert_security_headers(&resp);
        problem_of(resp, status).await;
    }
}

#[tokio::test]
async fn no_security_headers_without_the_layer() {
    // Control: the headers come from Hardening, not from poem.
    let resp = TestClient::new(Route::new().at("/hello", get(hello)).with(security()))
        .get("/hello")
        .send()
        .await;
    assert!(!resp.0.headers().contains_key("x-content-type-options"));
}

#[tokio::test]
async fn docs_get_a_csp_that_lets_swagger_ui_run_and_still_denies_framing() {
    let cli = TestClient::new(app(Hardening::new()));
    let resp = cli.get("/docs/").send().await;
    let csp = resp.0.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("script-src 'self' 'unsafe-inline'"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    // A path that merely starts with the same letters is an API path.
    let resp = cli.get("/docsx").send().await;
    assert_eq!(
        resp.0.headers()["content-security-policy"],
        "default-src 'none'; frame-ancestors 'none'"
    );
}

#[tokio::test]
async fn hsts_only_when_configured() {
    let plain = TestClient::new(app(Hardening::new()))
        .get("/hello")
        .send()
        .await;
    assert!(!plain.0.headers().contains_key("strict-transport-security"));
    let tls = TestClient::new(app(Hardening::new().hsts_secs(31_536_000)))
        .get("/hello")
        .send()
        .await;
    assert_eq!(
        tls.0.headers()["strict-transport-security"],
        "max-age=31536000; includeSubDomains"
    );
}

#[tokio::test]
async fn credentialed_responses_are_not_cached() {
    let cli = TestClient::new(app(Hardening::new()));
    let anon = cli.get("/hello").send().await;
    assert!(!anon.0.headers().contains_key("cache-control"));
    let with_auth = cli
        .get("/hello")
        .header("authorization", "Bearer whatever")
        .send()
        .await;
    assert_eq!(with_auth.0.headers()["cache-control"], "no-store");
    let with_key = cli.get("/hello").header("x-api-key", "k.s").send().await;
    assert_eq!(with_key.0.headers()["cache-control"], "no-store");
}

#[tokio::test]
async fn a_panic_is_a_generic_500_problem_without_the_panic_text() {
    let resp = TestClient::new(app(Hardening::new()))
        .get("/boom")
        .send()
        .await;
    resp.assert_status(StatusCode::INTERNAL_SERVER_ERROR);
    resp.assert_content_type("application/problem+json");
    let text = resp.0.into_body().into_string().await.unwrap();
    assert!(
        !text.contains("hunter2") && !text.contains("internal detail"),
        "{text}"
    );
    assert!(text.contains("\"status\":500"), "{text}");
}

#[tokio::test]
async fn malformed_json_is_a_400_problem_without_parser_text() {
    let resp = TestClient::new(app(Hardening::new()))
        .post("/echo")
        .content_type("application/json")
        .body("{\"a\": tru")
        .send()
        .await;
    let body = problem_of(resp, StatusCode::BAD_REQUEST).await;
    let detail = body["detail"].as_str().unwrap();
    assert!(
        !detail.contains("line") && !detail.contains("column") && !detail.contains("serde"),
        "{detail}"
    );
}

#[tokio::test]
async fn body_over_the_limit_is_413_declared_or_streamed() {
    let cli = TestClient::new(app(Hardening::new().body_limit(64)));
    let big = format!("\"{}\"", "x".repeat(200));
    // With a Content-Length.
    let resp = cli
        .post("/echo")
        .content_type("application/json")
        .body(big.clone())
        .send()
        .await;
    problem_of(resp, StatusCode::PAYLOAD_TOO_LARGE).await;
    // Chunked: no Content-Length, the limit is enforced while reading.
    let stream = futures_stream(big.into_bytes());
    let resp = cli
        .post("/echo")
        .content_type("application/json")
        .body(poem::Body::from_bytes_stream(stream))
        .send()
        .await;
    problem_of(resp, StatusCode::PAYLOAD_TOO_LARGE).await;
    // Control: a small body passes.
    cli.post("/echo")
        .content_type("application/json")
        .body("\"ok\"")
        .send()
        .await
        .assert_status_is_ok();
}

fn futures_stream(
    bytes: Vec<u8>,
) -> impl futures_util::Stream<Item = Result<Vec<u8>, std::io::Error>> + Send + 'static {
    futures_util::stream::iter(bytes.chunks(16).map(|c| Ok(c.to_vec())).collect::<Vec<_>>())
}

#[tokio::test]
async fn oversized_headers_are_431() {
    let cli = TestClient::new(app(Hardening::new().header_limit(1024)));
    let resp = cli
        .get("/hello")
        .header("x-filler", "y".repeat(2000))
        .send()
        .await;
    problem_of(resp, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE).await;
    cli.get("/hello")
        .header("x-filler", "y".repeat(100))
        .send()
        .await
        .assert_status_is_ok();
}

#[tokio::test]
async fn a_request_over_the_timeout_is_a_503_problem() {
    let cli = TestClient::new(app(Hardening::new().timeout(Duration::from_millis(100))));
    problem_of(
        cli.get("/slow").send().await,
        StatusCode::SERVICE_UNAVAILABLE,
    )
    .await;
}

#[tokio::test]
async fn request_id_is_echoed_when_valid_and_generated_otherwise() {
    let cli = TestClient::new(app(Hardening::new()));
    let resp = cli
        .get("/hello")
        .header("x-request-id", "abc-123.X_y:z")
        .send()
        .await;
    assert_eq!(resp.0.headers()["x-request-id"], "abc-123.X_y:z");
    // A value that could inject into logs is replaced.
    let resp = cli
        .get("/hello")
        .header("x-request-id", "evil\" injected=1")
        .send()
        .await;
    let id = resp.0.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(!id.contains("evil") && !id.is_empty());
    let a = cli.get("/hello").send().await.0.headers()["x-request-id"].clone();
    let b = cli.get("/hello").send().await.0.headers()["x-request-id"].clone();
    assert_ne!(a, b);
}

fn cors_app(policy: CorsPolicy) -> impl Endpoint {
    app(Hardening::new().cors(policy.build().unwrap()))
}

#[tokio::test]
async fn cors_preflight_answers_only_allowed_origins_methods_and_headers() {
    let cli = TestClient::new(cors_app(
        CorsPolicy::new()
            .allow_origins(["https://app.example.com"])
            .allow_credentials(true),
    ));
    let pre = |origin: &str, method: &str, headers: &str| {
        cli.request(Method::OPTIONS, "/hello")
            .header("origin", origin)
            .header("access-control-request-method", method)
            .header("access-control-request-headers", headers)
    };
    let ok = pre(
        "https://app.example.com",
        "POST",
        "authorization, content-type",
    )
    .send()
    .await;
    ok.assert_status(StatusCode::NO_CONTENT);
    let h = ok.0.headers();
    assert_eq!(h["access-control-allow-origin"], "https://app.example.com");
    assert_eq!(h["access-control-allow-credentials"], "true");
    assert!(h["vary"].to_str().unwrap().contains("Origin"));
    for bad in [
        pre("https://evil.example.com", "POST", "authorization"),
        pre("https://app.example.com", "TRACE", "authorization"),
        pre("https://app.example.com", "POST", "x-forbidden-header"),
    ] {
        let resp = bad.send().await;
        assert!(!resp.0.headers().contains_key("access-control-allow-origin"));
        problem_of(resp, StatusCode::FORBIDDEN).await;
    }
}

#[tokio::test]
async fn cors_actual_requests_get_headers_only_for_allowed_origins_and_always_vary() {
    let cli = TestClient::new(cors_app(
        CorsPolicy::new().allow_origins(["https://app.example.com"]),
    ));
    let ok = cli
        .get("/hello")
        .header("origin", "https://app.example.com")
        .send()
        .await;
    assert_eq!(
        ok.0.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    assert!(ok.0.headers()["vary"].to_str().unwrap().contains("Origin"));
    let evil = cli
        .get("/hello")
        .header("origin", "https://evil.example.com")
        .send()
        .await;
    assert!(!evil.0.headers().contains_key("access-control-allow-origin"));
    assert!(evil.0.headers()["vary"]
        .to_str()
        .unwrap()
        .contains("Origin"));
    // Origin comparison is exact: a look-alike suffix is not the allowed origin.
    let suffix = cli
        .get("/hello")
        .header("origin", "https://app.example.com.evil.io")
        .send()
        .await;
    assert!(!suffix
        .0
        .headers()
        .contains_key("access-control-allow-origin"));
}

#[test]
fn cors_misconfigurations_are_startup_errors() {
    for bad in [
        CorsPolicy::new()
            .allow_origins(["*"])
            .allow_credentials(true),
        CorsPolicy::new()
            .allow_origins(["https://a.example"])
            .allow_methods(["*"])
            .allow_credentials(true),
        CorsPolicy::new()
            .allow_origins(["https://a.example"])
            .allow_headers(["*"])
            .allow_credentials(true),
        CorsPolicy::new().allow_origins(["https://a.example/"]),
        CorsPolicy::new().allow_origins(["https://a.example/path"]),
        CorsPolicy::new().allow_origins(["a.example"]),
        CorsPolicy::new().allow_origins(["ftp://a.example"]),
    ] {
        assert!(bad.build().is_err());
    }
    assert!(CorsPolicy::new().allow_origins(["*"]).build().is_ok());
}

#[tokio::test]
async fn a_wildcard_origin_without_credentials_answers_star() {
    let cli = TestClient::new(cors_app(CorsPolicy::new().allow_origins(["*"])));
    let resp = cli
        .get("/hello")
        .header("origin", "https://anyone.example")
        .send()
        .await;
    assert_eq!(resp.0.headers()["access-control-allow-origin"], "*");
    assert!(!resp
        .0
        .headers()
        .contains_key("access-control-allow-credentials"));
}
