//! The fail-closed probe: on a correctly protected app every case is
//! refused and no handler body runs; on an endpoint that claims a policy it
//! does not enforce, the probe names the route and each case that got in.

use std::sync::atomic::{AtomicU64, Ordering};

use poem::{handler, Endpoint, Request, Response};
use poem_secure::{
    matrix::Declared,
    route::{get, post, Route},
    secure,
    testing::probe::{bearer, probe, Probe},
    ApiKeys, JwtConfig, MemoryApiKeyStore, Policy, Protected, Requirement, Security,
};

static BODIES: AtomicU64 = AtomicU64::new(0);

#[secure(scopes = "items:read")]
#[handler]
async fn list() -> &'static str {
    BODIES.fetch_add(1, Ordering::SeqCst);
    "items"
}

#[secure(
    scopes = "items:write",
    any(roles = "admin", permissions = "items:delete-any")
)]
#[handler]
async fn remove() -> &'static str {
    BODIES.fetch_add(1, Ordering::SeqCst);
    "removed"
}

#[secure(auth = any(bearer, api_key), roles = all("admin", "auditor"))]
#[handler]
async fn audit() -> &'static str {
    BODIES.fetch_add(1, Ordering::SeqCst);
    "audit"
}

fn security() -> Security {
    Security::builder()
        .jwt(
            JwtConfig::hs256(*b"probe-test-secret-of-32-bytes!!!")
                .unwrap()
                .issuer("probe")
                .audience("api"),
        )
        // `audit` accepts API keys: without a verifier an API key is a
        // configuration error (500), which the probe reports.
        .api_keys(ApiKeys::new(MemoryApiKeyStore::new()))
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_protected_app_refuses_every_case_and_no_body_runs() {
    let sec = security();
    let routes = Route::new()
        .at("/items", get(list).delete(remove))
        .at("/audit/:day", post(audit));
    let matrix = routes.security_matrix();
    let app = routes.with(sec.clone());
    let report = Probe::new(&app, &matrix)
        .mint(bearer(&sec))
        .body_counter(|| BODIES.load(Ordering::SeqCst))
        .run()
        .await;
    report.assert_fail_closed();
    assert_eq!(report.routes, 3);
    // GET /items: none, invalid bearer, without `items:read` = 3.
    // DELETE /items: none, invalid, without the scope, without both
    //   alternatives (dropping only one still admits: not sent) = 4.
    // POST /audit/{day}: none, invalid bearer, invalid key, without
    //   `admin`, without `auditor`, nothing = 6.
    assert_eq!(report.sent, 13, "{report}");
    assert_eq!(BODIES.load(Ordering::SeqCst), 0);
    // The API key cases need a key factory: listed, not silently dropped.
    assert_eq!(report.skipped.len(), 3, "{report}");
}

/// An endpoint that claims a policy but never runs the guard.
struct Leaky;

struct ClaimsAdmin;
impl Requirement for ClaimsAdmin {
    const POLICY: &'static Policy = &Policy::secured("tests::leaky").with_scopes(&["admin"]);
}

impl Protected for Leaky {
    fn declarations() -> Vec<Declared> {
        vec![Declared::handler::<ClaimsAdmin>()]
    }
}

impl Endpoint for Leaky {
    type Output = Response;
    async fn call(&self, _req: Request) -> poem::Result<Response> {
        Ok(Response::builder().body("secret"))
    }
}

#[tokio::test]
async fn a_leaking_route_is_named_with_every_case_that_got_in() {
    let sec = security();
    let routes = Route::new().at("/items", get(list)).at("/leak", get(Leaky));
    let matrix = routes.security_matrix();
    let app = routes.with(sec.clone());
    let report = probe(&app, &matrix, bearer(&sec)).await;
    assert_eq!(report.failures.len(), 3, "{report}");
    assert!(report
        .failures
        .iter()
        .all(|f| f.starts_with("GET /leak: ") && f.contains("status 200 OK")));
    assert!(report.failures[2].contains("valid bearer without scope `admin`"));
    let panic = std::panic::catch_unwind(|| report.assert_fail_closed()).unwrap_err();
    let msg = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains("FAIL GET /leak: no credential"), "{msg}");
    assert!(!msg.contains("FAIL GET /items"), "{msg}");
}
