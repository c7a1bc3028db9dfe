//! Runs the reference service `examples/notes.rs` as a real process for the
//! black-box suites (`tests/notes_contract.rs`, `tests/notes_two_instances.rs`,
//! `tests/notes_browser.rs`), and talks to it over real sockets with `ureq`.
//!
//! ```text
//! #[path = "browser/notes_service.rs"]
//! mod notes_service;
//!
//! let svc = notes_service::Service::start();                      // default configuration
//! let svc = notes_service::Service::start_with(&[("JWT_SECRET", "...")]);
//! let r = svc.get("/health");                                      // every response is checked
//! ```
//!
//! Every response read through [`Service`] is checked against the rules that
//! hold for *every* response of the contract: `X-Content-Type-Options:
//! nosniff`, a frame-denying header, `Referrer-Policy`, and for errors no
//! panic message, backtrace or library error text in the body.
#![allow(dead_code)]

use std::{
    fs,
    io::{Read, Write},
    net::{Shutdown, TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        atomic::{AtomicU32, Ordering},
        OnceLock,
    },
    thread,
    time::{Duration, Instant, SystemTime},
};

use serde_json::Value;

/// How long the service may take to answer `/health` after it is spawned.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// Every request is bounded.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The environment variables of the contract: removed from the inherited
/// environment so that only what a test sets applies.
const CONTRACT_VARS: &[&str] = &[
    "NOTES_ADDR",
    "JWT_SECRET",
    "JWT_ISSUER",
    "JWT_AUDIENCE",
    "ACCESS_TOKEN_TTL_SECS",
    "REFRESH_TOKEN_TTL_SECS",
    "REDIS_URL",
    "CORS_ORIGINS",
    "TRUSTED_PROXIES",
    "SESSION_MAX_SECS",
    "REDIS_CA_FILE",
];

/// The workspace root (this file is `tests/browser/notes_service.rs`).
pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `target/<profile>/examples/notes`, next to `target/<profile>/deps/<this test>`.
/// Built with `cargo build --example notes` when missing or older than the
/// sources (a `cargo test --test X` does not build examples); a failed build
/// fails the test with cargo's output. `NOTES_BIN` overrides the path (e.g.
/// a release build), used as it is.
pub fn binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(bin) = std::env::var_os("NOTES_BIN") {
            let bin = PathBuf::from(bin);
            assert!(bin.is_file(), "NOTES_BIN={} is not a file", bin.display());
            return bin;
        }
        let exe = std::env::current_exe().expect("current_exe");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("the test binary lives in target/<profile>/deps");
        let bin = profile_dir
            .join("examples")
            .join(format!("notes{}", std::env::consts::EXE_SUFFIX));
        let built = fs::metadata(&bin).and_then(|m| m.modified()).ok();
        let newest_source = newest_mtime(&workspace());
        let fresh = matches!((built, newest_source), (Some(b), Some(s)) if b >= s);
        if !fresh {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
            let out = Command::new(&cargo)
                .args(["build", "--example", "notes", "--manifest-path"])
                .arg(workspace().join("Cargo.toml"))
                .stdin(Stdio::null())
                .output()
                .unwrap_or_else(|e| panic!("could not run `{cargo} build --example notes`: {e}"));
            assert!(
                out.status.success(),
                "`cargo build --example notes` failed; the notes binary is needed at {}:\n{}",
                bin.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        assert!(
            bin.is_file(),
            "the notes binary is missing at {} (run `cargo build --example notes`)",
            bin.display()
        );
        bin
    })
}

/// The newest modification time of the sources the example is built from.
fn newest_mtime(root: &Path) -> Option<SystemTime> {
    fn walk(dir: &Path, newest: &mut Option<SystemTime>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, newest);
            } else if let Ok(t) = e.metadata().and_then(|m| m.modified()) {
                if newest.is_none_or(|n| t > n) {
                    *newest = Some(t);
                }
            }
        }
    }
    let mut newest = None;
    for d in ["examples", "src", "secure-runtime/src", "secure-macros/src"] {
        walk(&root.join(d), &mut newest);
    }
    for f in [
        "Cargo.toml",
        "secure-runtime/Cargo.toml",
        "secure-macros/Cargo.toml",
    ] {
        if let Ok(t) = fs::metadata(root.join(f)).and_then(|m| m.modified()) {
            if newest.is_none_or(|n| t > n) {
                newest = Some(t);
            }
        }
    }
    newest
}

/// A `ureq` agent that returns 4xx/5xx as responses, follows no redirect,
/// bounds every request and opens a connection per request: the service
/// closes a connection after refusing a request whose body it did not read,
/// without saying so (`Connection: close`), and ureq does not retry a POST on
/// a pooled connection that turns out dead (see
/// `refusing_a_request_with_an_unread_body_signals_connection_close`).
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_idle_connections(0)
        .max_idle_connections_per_host(0)
        .max_redirects(0)
        .timeout_global(Some(REQUEST_TIMEOUT))
        .build()
        .into()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// One running `notes` process, killed on drop.
pub struct Service {
    child: Child,
    port: u16,
    base: String,
    log: PathBuf,
    agent: ureq::Agent,
    trusts_proxy: bool,
}

static SEQ: AtomicU32 = AtomicU32::new(0);

impl Service {
    /// The service with its embedded defaults (only `NOTES_ADDR` set).
    pub fn start() -> Service {
        Service::start_with(&[])
    }

    /// The service with these environment variables (plus `NOTES_ADDR`).
    /// Panics, with the service's log, when it does not answer `/health`.
    pub fn start_with(env: &[(&str, &str)]) -> Service {
        let bin = binary();
        let mut last = String::new();
        // The probed port could be taken before the service binds it.
        for _ in 0..3 {
            let port = free_port();
            let log = std::env::temp_dir().join(format!(
                "notes-test-{}-{}.log",
                std::process::id(),
                SEQ.fetch_add(1, Ordering::Relaxed)
            ));
            let out = fs::File::create(&log).expect("create the service log file");
            let err = out.try_clone().expect("clone the log file handle");
            let mut cmd = Command::new(bin);
            for v in CONTRACT_VARS {
                cmd.env_remove(v);
            }
            cmd.env("NOTES_ADDR", format!("127.0.0.1:{port}"))
                .env("RUST_BACKTRACE", "0")
                .envs(env.iter().map(|(k, v)| (*k, *v)))
                .current_dir(workspace())
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err);
            let child = cmd
                .spawn()
                .unwrap_or_else(|e| panic!("could not start {}: {e}", bin.display()));
            let mut svc = Service {
                child,
                port,
                base: format!("http://127.0.0.1:{port}"),
                log,
                agent: agent(),
                trusts_proxy: env.iter().any(|(k, _)| *k == "TRUSTED_PROXIES"),
            };
            match svc.wait_ready() {
                Ok(()) => return svc,
                Err(e) => last = format!("{e}\n--- service log ---\n{}", svc.log_text()),
            }
        }
        panic!("the notes service did not start: {last}");
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let probe: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(2)))
            .build()
            .into();
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("the service exited at start ({status})"));
            }
            if let Ok(r) = probe.get(format!("{}/health", self.base)).call() {
                if r.status() == 200 {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "/health did not answer 200 within {READY_TIMEOUT:?}"
                ));
            }
            thread::sleep(Duration::from_millis(25));
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `base + path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// What the service wrote to stdout and stderr so far.
    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn log_tail(&self) -> String {
        let log = self.log_text();
        let start = log.len().saturating_sub(4000);
        let start = (start..log.len())
            .find(|i| log.is_char_boundary(*i))
            .unwrap_or(0);
        log[start..].to_owned()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Any request. `body` is `(content type, bytes)`.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<(&str, Vec<u8>)>,
    ) -> Resp {
        let mut b = ureq::http::Request::builder()
            .method(method)
            .uri(self.url(path));
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let result = match body {
            Some((ct, bytes)) => self
                .agent
                .run(b.header("content-type", ct).body(bytes).expect("request")),
            None => self.agent.run(b.body(()).expect("request")),
        };
        let resp = result.unwrap_or_else(|e| {
            panic!(
                "{method} {path}: transport error: {e}\n--- service log ---\n{}",
                self.log_tail()
            )
        });
        let resp = Resp::read(resp, &format!("{method} {path}"));
        resp.assert_hardened();
        resp
    }

    /// A request with a large body over a raw socket, reading the answer
    /// while the body is still being written: a server may answer (413)
    /// before reading the whole body and close, which a client that writes
    /// the whole body first sees only as a broken pipe. `chunked` sends the
    /// body with `Transfer-Encoding: chunked` instead of `Content-Length`.
    pub fn send_large(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        content_type: &str,
        body: Vec<u8>,
        chunked: bool,
    ) -> Resp {
        let what = format!(
            "POST {path} ({} bytes{})",
            body.len(),
            if chunked { ", chunked" } else { "" }
        );
        let mut s = TcpStream::connect(("127.0.0.1", self.port))
            .unwrap_or_else(|e| panic!("{what}: connect: {e}"));
        s.set_read_timeout(Some(REQUEST_TIMEOUT)).expect("timeout");
        let mut head = format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: {content_type}\r\nConnection: close\r\n",
            self.port
        );
        if chunked {
            head.push_str("Transfer-Encoding: chunked\r\n");
        } else {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        let mut w = s.try_clone().expect("clone the socket");
        let writer = thread::spawn(move || {
            if w.write_all(head.as_bytes()).is_err() {
                return;
            }
            for chunk in body.chunks(64 * 1024) {
                let ok = if chunked {
                    w.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                        .and_then(|()| w.write_all(chunk))
                        .and_then(|()| w.write_all(b"\r\n"))
                } else {
                    w.write_all(chunk)
                };
                if ok.is_err() {
                    return;
                }
            }
            if chunked {
                let _ = w.write_all(b"0\r\n\r\n");
            }
        });
        let mut buf = Vec::new();
        let mut tmp = [0u8; 16 * 1024];
        let resp = loop {
            match s.read(&mut tmp) {
                Ok(0) | Err(_) => break parse_raw(&buf, &what),
                Ok(n) => buf.extend_from_slice(&tmp[..n]),
            }
            if let Some(r) = parse_raw(&buf, &what) {
                break Some(r);
            }
        };
        let _ = s.shutdown(Shutdown::Both);
        let _ = writer.join();
        let resp = resp.unwrap_or_else(|| {
            panic!(
                "{what}: no complete response: {:?}\n--- service log ---\n{}",
                String::from_utf8_lossy(&buf),
                self.log_tail()
            )
        });
        resp.assert_hardened();
        resp
    }

    /// `GET path`.
    pub fn get(&self, path: &str) -> Resp {
        self.send("GET", path, &[], None)
    }

    /// `GET path` with `Authorization: Bearer <token>`.
    pub fn get_bearer(&self, path: &str, token: &str) -> Resp {
        self.send(
            "GET",
            path,
            &[("authorization", &format!("Bearer {token}"))],
            None,
        )
    }

    /// `method path` with a bearer token (if any) and a JSON body (if any).
    pub fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        json: Option<&Value>,
    ) -> Resp {
        let auth = token.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> =
            auth.iter().map(|a| ("authorization", a.as_str())).collect();
        let body = json.map(|j| ("application/json", serde_json::to_vec(j).expect("json")));
        self.send(method, path, &headers, body)
    }

    /// A form POST (`application/x-www-form-urlencoded`).
    pub fn form(&self, path: &str, headers: &[(&str, &str)], fields: &[(&str, &str)]) -> Resp {
        self.send(
            "POST",
            path,
            headers,
            Some((
                "application/x-www-form-urlencoded",
                form_encode(fields).into_bytes(),
            )),
        )
    }

    /// `POST /auth/token` (password grant). When the service trusts the
    /// loopback proxy, each call comes from a fresh client IP
    /// (`X-Forwarded-For`), so the login limit does not get in the way.
    pub fn login(&self, username: &str, password: &str, scope: Option<&str>) -> Resp {
        let xff = self.trusts_proxy.then(fresh_ip);
        self.login_from(xff.as_deref(), username, password, scope)
    }

    /// `POST /auth/token` with `X-Forwarded-For: ip` when `ip` is given.
    pub fn login_from(
        &self,
        ip: Option<&str>,
        username: &str,
        password: &str,
        scope: Option<&str>,
    ) -> Resp {
        let mut fields = vec![
            ("grant_type", "password"),
            ("username", username),
            ("password", password),
        ];
        if let Some(s) = scope {
            fields.push(("scope", s));
        }
        let headers: Vec<(&str, &str)> = ip.iter().map(|ip| ("x-forwarded-for", *ip)).collect();
        self.form("/auth/token", &headers, &fields)
    }

    /// Logs in and returns the grant; panics unless it is 200.
    pub fn tokens(&self, username: &str, scope: Option<&str>) -> Grant {
        let password = format!("{username}-password-1");
        let r = self.login(username, &password, scope);
        assert_eq!(r.status, 200, "login as {username} failed: {}", r.body);
        Grant::from_json(&r.json())
    }

    /// `POST /auth/refresh`.
    pub fn refresh(&self, refresh_token: &str) -> Resp {
        self.form(
            "/auth/refresh",
            &[],
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
            ],
        )
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !thread::panicking() {
            let _ = fs::remove_file(&self.log);
        } else {
            eprintln!(
                "--- notes service log ({}) ---\n{}",
                self.base,
                self.log_tail()
            );
            let _ = fs::remove_file(&self.log);
        }
    }
}

/// A complete HTTP/1.1 response with a `Content-Length` body (or none).
fn parse_raw(buf: &[u8], what: &str) -> Option<Resp> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&buf[..end]);
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let body = buf.get(end + 4..end + 4 + len)?;
    Some(Resp {
        what: what.to_owned(),
        status,
        headers,
        body: String::from_utf8_lossy(body).into_owned(),
    })
}

/// A distinct documentation-range client IP per call (198.18.0.0/15).
pub fn fresh_ip() -> String {
    static N: AtomicU32 = AtomicU32::new(1);
    let n = N.fetch_add(1, Ordering::Relaxed);
    format!(
        "198.{}.{}.{}",
        18 + (n >> 16) % 2,
        (n >> 8) & 0xff,
        n & 0xff
    )
}

/// `application/x-www-form-urlencoded` encoding.
pub fn form_encode(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", pct(k), pct(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn pct(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// A successful token response.
#[derive(Debug, Clone)]
pub struct Grant {
    pub access: String,
    pub refresh: String,
    pub scope: String,
    pub expires_in: u64,
}

impl Grant {
    pub fn from_json(v: &Value) -> Grant {
        Grant {
            access: v["access_token"].as_str().expect("access_token").to_owned(),
            refresh: v["refresh_token"]
                .as_str()
                .expect("refresh_token")
                .to_owned(),
            scope: v["scope"].as_str().unwrap_or_default().to_owned(),
            expires_in: v["expires_in"].as_u64().expect("expires_in"),
        }
    }
}

/// A response, read whole.
#[derive(Debug, Clone)]
pub struct Resp {
    pub what: String,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// Fragments that would reveal a panic, a backtrace or a library's error
/// text in a response body (compared in lower case).
const LEAKS: &[&str] = &[
    "panicked",
    "panic",
    "backtrace",
    "rust_backtrace",
    "thread '",
    ".rs:",
    "src/",
    "/home/",
    "/root/",
    ".cargo",
    "unwrap()",
    "serde",
    "poem",
    "jsonwebtoken",
    "argon2",
    "redis",
    "tokio",
    "hyper",
    "invalid type:",
    "expected value",
    "at line",
    "column",
    "parse request",
    "failed to parse",
    "error(",
    "error {",
    "utf-8",
    "utf8",
];

impl Resp {
    fn read(mut resp: ureq::http::Response<ureq::Body>, what: &str) -> Resp {
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_ascii_lowercase(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let bytes = resp
            .body_mut()
            .with_config()
            .limit(16 * 1024 * 1024)
            .read_to_vec()
            .unwrap_or_else(|e| panic!("{what}: reading the body failed: {e}"));
        Resp {
            what: what.to_owned(),
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON; panics with the body when it is not.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("{}: body is not JSON ({e}): {:?}", self.what, self.body))
    }

    /// Panics unless the status is `status`.
    #[track_caller]
    pub fn expect(&self, status: u16) -> &Resp {
        assert_eq!(
            self.status, status,
            "{}: expected {status}, got {}: {}",
            self.what, self.status, self.body
        );
        self
    }

    /// The response is an RFC 9457 problem with this status:
    /// `application/problem+json`, a JSON object whose `status` matches.
    #[track_caller]
    pub fn assert_problem(&self, status: u16) -> &Resp {
        self.expect(status);
        let ct = self.header("content-type").unwrap_or_default();
        assert!(
            ct.starts_with("application/problem+json"),
            "{}: {status} must be application/problem+json, got {ct:?}: {}",
            self.what,
            self.body
        );
        let v = self.json();
        assert_eq!(
            v["status"].as_u64(),
            Some(u64::from(status)),
            "{}: problem status: {}",
            self.what,
            self.body
        );
        assert!(
            v["title"].is_string(),
            "{}: problem without title: {}",
            self.what,
            self.body
        );
        self
    }

    /// `X-Content-Type-Options: nosniff`, a frame-denying header
    /// (`X-Frame-Options: DENY`/`SAMEORIGIN` or CSP `frame-ancestors`) and
    /// `Referrer-Policy`; for errors, a body without internals.
    #[track_caller]
    pub fn assert_hardened(&self) {
        assert_eq!(
            self.header("x-content-type-options")
                .map(str::to_ascii_lowercase)
                .as_deref(),
            Some("nosniff"),
            "{} ({}): X-Content-Type-Options: nosniff missing; headers {:?}",
            self.what,
            self.status,
            self.headers
        );
        let xfo = self
            .header("x-frame-options")
            .unwrap_or_default()
            .to_ascii_lowercase();
        let csp = self
            .header("content-security-policy")
            .unwrap_or_default()
            .to_ascii_lowercase();
        assert!(
            xfo == "deny" || xfo == "sameorigin" || csp.contains("frame-ancestors 'none'"),
            "{} ({}): no frame-denying header; headers {:?}",
            self.what,
            self.status,
            self.headers
        );
        assert!(
            self.header("referrer-policy")
                .is_some_and(|v| !v.is_empty()),
            "{} ({}): Referrer-Policy missing; headers {:?}",
            self.what,
            self.status,
            self.headers
        );
        if self.status >= 400 {
            self.assert_no_leak();
        }
    }

    /// The body reveals no panic, backtrace or library error text.
    #[track_caller]
    pub fn assert_no_leak(&self) {
        let lower = self.body.to_ascii_lowercase();
        for leak in LEAKS {
            assert!(
                !lower.contains(leak),
                "{} ({}): the body reveals {leak:?}: {}",
                self.what,
                self.status,
                self.body
            );
        }
    }

    /// The `WWW-Authenticate` header, or a panic.
    #[track_caller]
    pub fn challenge(&self) -> &str {
        self.header("www-authenticate").unwrap_or_else(|| {
            panic!(
                "{}: no WWW-Authenticate; headers {:?}",
                self.what, self.headers
            )
        })
    }

    /// `Retry-After` as whole seconds, or a panic.
    #[track_caller]
    pub fn retry_after(&self) -> u64 {
        let v = self.header("retry-after").unwrap_or_else(|| {
            panic!(
                "{}: 429 without Retry-After; headers {:?}",
                self.what, self.headers
            )
        });
        v.trim()
            .parse::<u64>()
            .unwrap_or_else(|_| panic!("{}: Retry-After {v:?} is not whole seconds", self.what))
    }
}

/// The header and claims of a JWT, decoded without verification.
pub fn decode_jwt(token: &str) -> (Value, Value) {
    use base64::Engine;
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(
        parts.len(),
        3,
        "a JWS compact serialization has three parts: {token}"
    );
    let dec = |s: &str| -> Value {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(s)
            .expect("base64url");
        serde_json::from_slice(&bytes).expect("JSON")
    };
    (dec(parts[0]), dec(parts[1]))
}

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}
