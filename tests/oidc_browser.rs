//! Swagger UI in a real browser against a real OpenID provider. First that of
//! `examples/resource_server.rs`: `tests/browser/oidc_swagger.mjs` (playwright-core
//! driving Debian's Chromium) executes `GET /whoami` without logging in
//! (401), then logs in through "Authorize" — the `openIdConnect` scheme built
//! from `ISSUER`, authorization code with PKCE as the public client `spa`, the
//! provider's own login and consent pages — and executes it again (200, the
//! user's subject). Then an API whose `oauth2` scheme documents the
//! `authorizationCode` flow at the provider's discovered endpoints
//! (`OpenApiFlows::from_metadata`), logged in the same way.
//!
//! The provider is node-oidc-provider (`tests/support/oidc_provider.rs`),
//! with the example's `/docs/oauth-receiver.html` on its random port as a
//! redirect URI of `spa`. Needs `node`, `/usr/bin/chromium` (or `$CHROMIUM`),
//! `tests/browser/node_modules/playwright-core` and the provider's packages;
//! `scripts/test.sh` installs them. Missing any of them FAILS this test: it
//! never skips.

#[path = "support/oidc_provider.rs"]
mod oidc_provider;

use std::{
    io::Read,
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::Mutex,
    thread,
    time::{Duration, Instant},
};

use oidc_provider::{OidcProvider, TokenRequest, ADMIN, API};
use poem::{listener::TcpListener, Server};
use poem_openapi::{payload::Json, OpenApi};
use poem_secure::{
    deny_unprotected,
    openapi::{service, OpenApiFlows, SwaggerUi},
    route::{self, Route},
    secure, Catalogue, Hardening, JwtConfig, Principal, ProviderMetadata, Security,
};

/// The browser run is bounded (the script has its own 120 s watchdog).
const TIMEOUT: Duration = Duration::from_secs(150);
/// The user who logs in on the provider's (any-user) login page.
const USER: &str = "ada";

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A child process killed on drop, its output drained into a thread.
struct Running {
    child: Child,
    output: Option<thread::JoinHandle<String>>,
}

impl Running {
    fn spawn(cmd: &mut Command) -> Running {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("could not start {cmd:?}: {e}"));
        let mut out = child.stdout.take().unwrap();
        let mut err = child.stderr.take().unwrap();
        let output = thread::spawn(move || {
            let e = thread::spawn(move || {
                let mut s = String::new();
                let _ = err.read_to_string(&mut s);
                s
            });
            let mut s = String::new();
            let _ = out.read_to_string(&mut s);
            s + &e.join().unwrap_or_default()
        });
        Running {
            child,
            output: Some(output),
        }
    }

    /// Waits at most `timeout`; `None` (after killing it) when it did not end.
    fn wait(mut self, timeout: Duration) -> (Option<std::process::ExitStatus>, String) {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                break Some(status);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break None;
            }
            thread::sleep(Duration::from_millis(100));
        };
        let out = self.output.take().unwrap().join().unwrap_or_default();
        (status, out)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until `base` answers `GET /whoami` with a token of the provider
/// (503 until its keys are loaded).
fn wait_until_serving(base: &str, idp: &OidcProvider) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .http_status_as_error(false)
        .build()
        .into();
    let machine = idp.token(ADMIN, &TokenRequest::scope("notes:read"));
    let t0 = Instant::now();
    loop {
        let status = agent
            .get(format!("{base}/whoami"))
            .header("authorization", format!("Bearer {machine}"))
            .call()
            .map(|r| r.status().as_u16())
            .unwrap_or(0);
        if status == 200 {
            return;
        }
        assert!(status == 0 || status == 503, "before the keys: {status}");
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "{base} did not serve within 30 s"
        );
        thread::sleep(Duration::from_millis(50));
    }
}

/// One browser at a time: two Chromiums on a small machine slow both.
static BROWSER: Mutex<()> = Mutex::new(());

/// Runs `oidc_swagger.mjs` on the API at `base` with `flow`; returns its
/// output once it succeeded (else fails the test with it).
fn browser(base: &str, idp: &OidcProvider, flow: &str, shot: &str) -> String {
    let _one = BROWSER.lock().unwrap_or_else(|p| p.into_inner());
    let root = workspace();
    let chromium =
        PathBuf::from(std::env::var_os("CHROMIUM").unwrap_or_else(|| "/usr/bin/chromium".into()));
    assert!(
        chromium.is_file(),
        "no Chromium at {} (apt-get install chromium, or run scripts/test.sh)",
        chromium.display()
    );
    let pw = root.join("tests/browser/node_modules/playwright-core/package.json");
    assert!(
        pw.is_file(),
        "playwright-core is not installed: run `npm ci --prefix tests/browser` (scripts/test.sh does)"
    );
    let shot = root.join("target").join(shot);
    let _ = std::fs::remove_file(&shot);
    let script = Running::spawn(
        Command::new("node")
            .arg(root.join("tests/browser/oidc_swagger.mjs"))
            .arg(base)
            .arg(idp.issuer())
            .arg(USER)
            .arg(flow)
            .arg(&shot)
            .env("CHROMIUM", &chromium)
            .current_dir(&root),
    );
    let (status, out) = script.wait(TIMEOUT);
    let status = status.unwrap_or_else(|| {
        panic!(
            "oidc_swagger.mjs did not finish within {TIMEOUT:?}\n{out}\nprovider:\n{}",
            idp.stderr()
        )
    });
    assert!(
        status.success(),
        "oidc_swagger.mjs failed ({status}):\n{out}\nprovider:\n{}",
        idp.stderr()
    );
    assert!(
        out.contains("ok: before login GET /whoami → 401"),
        "unexpected output:\n{out}"
    );
    assert!(
        out.contains("ok: after login GET /whoami → 200"),
        "unexpected output:\n{out}"
    );
    assert!(shot.is_file(), "no screenshot at {}", shot.display());
    out
}

#[test]
fn swagger_ui_of_the_example_logs_in_with_openid_connect_and_pkce() {
    // The API's port first: its docs' redirect page is registered at the provider.
    let port = oidc_provider::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let redirect = format!("{base}/docs/oauth-receiver.html");
    let idp = OidcProvider::start_with(&[("OIDC_REDIRECT_URIS", &redirect)]);

    let app = Running::spawn(
        Command::new(oidc_provider::example_binary())
            .env("ISSUER", idp.issuer())
            .env("AUDIENCE", API)
            .env("PROVIDER", "standard")
            .env("DOCS_CLIENT_ID", "spa")
            .env("ADDR", format!("127.0.0.1:{port}"))
            .env("RUST_LOG", "info"),
    );

    wait_until_serving(&base, &idp);
    let out = browser(&base, &idp, "authorization_code", "oidc-swagger.png");
    assert!(
        out.contains(&format!("\"subject\": \"{USER}\"")),
        "unexpected output:\n{out}"
    );
    drop(app);
}

// ---------------------------------------------------------------------------
// The oauth2 scheme's authorizationCode flow, from the discovered endpoints
// ---------------------------------------------------------------------------

const ACCESS: Catalogue = Catalogue::new()
    .scopes(&[("notes:read", "Read notes")])
    .runtime_flows();

struct Api;

#[deny_unprotected(catalogue = ACCESS)]
#[OpenApi]
impl Api {
    #[secure(scopes = "notes:read")]
    #[oai(path = "/whoami", method = "get")]
    async fn whoami(&self, who: Principal) -> Json<String> {
        Json(who.subject().to_owned())
    }
}

#[test]
fn swagger_ui_logs_in_with_the_discovered_authorization_code_flow_and_pkce() {
    let port = oidc_provider::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let redirect = format!("{base}/docs/oauth-receiver.html");
    let idp = OidcProvider::start_with(&[("OIDC_REDIRECT_URIS", &redirect)]);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let meta = rt
        .block_on(ProviderMetadata::discover(idp.issuer()))
        .unwrap();
    OpenApiFlows::from_metadata(&meta)
        .unwrap()
        .install()
        .unwrap();
    let jwt = JwtConfig::from_metadata(&meta).unwrap().audience(API);
    let security = Security::builder().jwt(jwt).build().unwrap();
    let api = service(Api, "t", "1");
    let spec: serde_json::Value = serde_json::from_str(&api.spec()).unwrap();
    let flows = &spec["components"]["securitySchemes"]["oauth2"]["flows"];
    assert_eq!(
        flows["authorizationCode"]["authorizationUrl"],
        idp.url("/auth"),
        "{spec:#}"
    );
    assert_eq!(flows["authorizationCode"]["tokenUrl"], idp.url("/token"));
    let docs = SwaggerUi::new(&api)
        .pkce_client("spa")
        .scopes(["openid", "notes:read"])
        .endpoint()
        .unwrap();
    let app = Route::new()
        .nest("/docs", route::public(docs))
        .nest("/", api)
        .with(Hardening::new())
        .with(security);
    let server = rt.spawn(Server::new(TcpListener::bind(format!("127.0.0.1:{port}"))).run(app));

    wait_until_serving(&base, &idp);
    let out = browser(&base, &idp, "authorizationCode", "oauth2-swagger.png");
    assert!(
        out.contains(&format!("200 \"{USER}\"")),
        "unexpected output:\n{out}"
    );
    server.abort();
}
