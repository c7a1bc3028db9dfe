//! Rate limiting through real handlers: GCRA admission (burst, then steady),
//! `Retry-After` and the `RateLimit` header fields, buckets per declaration
//! and shared groups, the key kinds, the client IP behind trusted proxies
//! (spoofing included, over `TestClient` and over real TCP), allow-lists,
//! dry-run, failure-driven login limits and the in-memory eviction bound.
//!
//! Time is moved with the limiter's [`ManualClock`], never with sleeps.

#[path = "support/peer.rs"]
mod peer;
use peer::with_peer;
use std::{
    io::{Read, Write},
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use poem::{
    handler,
    http::{header, StatusCode},
    test::{TestClient, TestResponse},
    Endpoint, Request,
};
use poem_secure::{
    public,
    route::{get, Route},
    secure,
    testing::token,
    JwtConfig, LoginLimits, ManualClock, MemoryRateLimiter, Principal, Rate, Security,
    SecurityBuilder,
};
use serde_json::Value;

// ---------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------

const SECRET: &[u8; 32] = b"rate-limit-test-secret-32-bytes!";

/// A `Security` with its own limiter on a manual clock; `configure` adds the
/// options under test.
fn security_with(
    clock: &ManualClock,
    configure: impl FnOnce(SecurityBuilder) -> SecurityBuilder,
) -> Security {
    let b = Security::builder()
        .jwt(
            JwtConfig::hs256(SECRET)
                .unwrap()
                .issuer("rate-test")
                .audience("rate-api"),
        )
        .rate_limiter(MemoryRateLimiter::new().with_clock(clock.clone()));
    configure(b).build().unwrap()
}

fn app(sec: &Security) -> impl Endpoint + 'static {
    Route::new()
        .at("/five", get(five_per_min))
        .at("/burst", get(ten_per_min_burst_twenty))
        .at("/a", get(limited_a))
        .at("/b", get(limited_b))
        .at("/group-a", get(group_a))
        .at("/group-b", get(group_b))
        .at("/by-ip", get(by_ip))
        .at("/by-user", get(by_user))
        .at("/by-ip-user", get(by_ip_user))
        .at("/by-tenant", get(by_tenant))
        .at("/public", get(public_limited))
        .at("/login", get(login))
        .at("/open", get(unlimited))
        .with(sec.clone())
}

fn client(sec: &Security, test: &'static str) -> TestClient<impl Endpoint> {
    TestClient::new(with_peer(app(sec))).default_header("x-test-id", test)
}

static RUNS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Called by handler bodies: notes that a request of test `x-test-id` ran.
fn record(req: &Request) {
    if let Some(id) = req.headers().get("x-test-id").and_then(|v| v.to_str().ok()) {
        RUNS.lock().unwrap().push(id.to_owned());
    }
}

/// How many requests of test `id` reached a handler body.
fn runs(id: &str) -> usize {
    RUNS.lock().unwrap().iter().filter(|r| *r == id).count()
}

fn header_str<'r>(resp: &'r TestResponse, name: &str) -> Option<&'r str> {
    resp.0.headers().get(name).map(|v| v.to_str().unwrap())
}

fn retry_after(resp: &TestResponse) -> u64 {
    let v = header_str(resp, header::RETRY_AFTER.as_str()).expect("Retry-After");
    v.parse()
        .unwrap_or_else(|_| panic!("Retry-After is not whole seconds: {v:?}"))
}

/// Asserts a 429 problem response and returns its `Retry-After`.
async fn assert_429(resp: TestResponse) -> u64 {
    resp.assert_status(StatusCode::TOO_MANY_REQUESTS);
    resp.assert_content_type("application/problem+json");
    let secs = retry_after(&resp);
    let body: Value = serde_json::from_str(&resp.0.into_body().into_string().await.unwrap())
        .expect("problem body is JSON");
    assert_eq!(body["status"], 429);
    secs
}

fn peer(n: u32) -> String {
    format!("{}:4000", std::net::Ipv4Addr::from(0xC633_6400 + n)) // 198.51.100.n
}

// ---------------------------------------------------------------------------
// Handlers
// ---------------------------------------------------------------------------

#[secure(rate = "5/min")]
#[handler]
async fn five_per_min(req: &Request) -> &'static str {
    record(req);
    "five"
}

#[secure(rate = "10/min, burst = 20")]
#[handler]
async fn ten_per_min_burst_twenty() -> &'static str {
    "burst"
}

#[secure(rate = "2/min")]
#[handler]
async fn limited_a() -> &'static str {
    "a"
}

#[secure(rate = "2/min")]
#[handler]
async fn limited_b() -> &'static str {
    "b"
}

#[secure(rate = "2/min", rate_group = "reports")]
#[handler]
async fn group_a() -> &'static str {
    "group-a"
}

#[secure(rate = "2/min", rate_group = "reports")]
#[handler]
async fn group_b() -> &'static str {
    "group-b"
}

#[secure(rate = "2/min", rate_key = ip)]
#[handler]
async fn by_ip() -> &'static str {
    "ip"
}

#[secure(rate = "2/min", rate_key = user)]
#[handler]
async fn by_user() -> &'static str {
    "user"
}

#[secure(rate = "2/min", rate_key = ip_user)]
#[handler]
async fn by_ip_user() -> &'static str {
    "ip-user"
}

fn tenant(req: &Request, _p: Option<&Principal>) -> String {
    req.headers()
        .get("x-tenant")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("none")
        .to_owned()
}

#[secure(rate = "2/min", rate_key = tenant)]
#[handler]
async fn by_tenant() -> &'static str {
    "tenant"
}

#[public(rate = "2/min")]
#[handler]
async fn public_limited(req: &Request) -> &'static str {
    record(req);
    "public"
}

#[public]
#[handler]
async fn unlimited() -> &'static str {
    "open"
}

/// Per (IP, user name): 3 failures, then one every 100 s; per IP: 6.
const LOGIN: LoginLimits = LoginLimits::new()
    .per_ip_and_username(Some(Rate::new(3, 300)))
    .per_ip(Some(Rate::new(6, 300)));

/// A toy login: the password is right when it is "right". The limit guards
/// the check, counting failures only.
#[public]
#[handler]
async fn login(req: &Request) -> poem::Result<&'static str> {
    let sec = req
        .extensions()
        .get::<Security>()
        .expect("Security installed");
    let h = |n: &str| {
        req.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let attempt = LOGIN.guard(sec, req, &h("x-user")).await?;
    record(req);
    if h("x-pass") == "right" {
        attempt.succeeded().await;
        Ok("welcome")
    } else {
        attempt.failed();
        Err(poem::Error::from_status(StatusCode::UNAUTHORIZED))
    }
}

// ---------------------------------------------------------------------------
// GCRA admission, Retry-After, RateLimit fields
// ---------------------------------------------------------------------------

#[tokio::test]
async fn five_per_minute_is_a_burst_of_five_then_one_every_twelve_seconds() {
    const T: &str = "five_per_minute_is_a_burst_of_five_then_one_every_twelve_seconds";
    let clock = ManualClock::new();
    let sec = security_with(&clock, |b| b);
    let cli = client(&sec, T);
    let alice = token(&sec, "alice").bearer();
    for _ in 0..5 {
        cli.get("/five")
            .header("authorization", &alice)
            .send()
            .await
            .assert_status_is_ok();
    }
    let resp = cli
        .get("/five")
        .header("authorization", &alice)
        .send()
        .await;
    assert_eq!(
        header_str(&resp, "ratelimit-policy"),
        Some("\"default\";q=5;w=60")
    );
    assert_eq!(header_str(&resp, "ratelimit"), Some("\"default\";r=0;t=12"));
    assert_eq!(assert_429(resp).await, 12);
    assert_eq!(runs(T), 5, "a refused request never reaches the handler");

    // Steady state: one every 12 s, never earlier.
    for _ in 0..3 {
        clock.advance(Duration::from_secs(11));
        let resp = cli
            .get("/five")
            .header("authorization", &alice)
            .send()
            .await;
        assert_eq!(assert_429(resp).await, 1);
        clock.advance(Duration::from_secs(1));
        cli.get("/five")
            .header("authorization", &alice)
            .send()
            .await
            .assert_status_is_ok();
        let resp = cli
            .get("/five")
            .header("authorization", &alice)
            .send()
            .await;
        assert_eq!(assert_429(resp).await, 12);
    }
    assert_eq!(runs(T), 8);
}

#[tokio::test]
async fn burst_overrides_the_count_but_not_the_rate() {
    let clock = ManualClock::new();
    let sec = security_with(&clock, |b| b);
    let cli = client(&sec, "burst");
    let alice = token(&sec, "alice").bearer();
    for _ in 0..20 {
        cli.get("/burst")
            .header("authorization", &alice)
            .send()
            .await
            .assert_status_is_ok();
    }
    let resp = cli
        .get("/burst")
        .header("authorization", &alice)
        .send()
        .await;
    assert_eq!(
        header_str(&resp, "ratelimit-policy"),
        Some("\"default\";q=10;w=60")
    );
    assert_eq!(assert_429(resp).await, 6); // 10/min: one every 6 s
    clock.advance(Duration::from_secs(6));
    cli.get("/burst")
        .header("authorization", &alice)
        .send()
        .await
        .assert_status_is_ok();
}

#[tokio::test]
async fn retry_after_is_never_earlier_than_the_next_admission() {
    let alice_of = |sec: &Security| token(sec, "alice").bearer();
    // After the burst is spent, wait a fractional time; Retry-After must be
    // rounded up, and waiting exactly Retry-After must be enough.
    for offset_ms in [1u64, 499, 6_000, 11_999] {
        let clock = ManualClock::new();
        let sec = security_with(&clock, |b| b);
        let cli = client(&sec, "retry_after_never_early");
        let alice = alice_of(&sec);
        for _ in 0..5 {
            cli.get("/five")
                .header("authorization", &alice)
                .send()
                .await
                .assert_status_is_ok();
        }
        clock.advance(Duration::from_millis(offset_ms));
        let resp = cli
            .get("/five")
            .header("authorization", &alice)
            .send()
            .await;
        let secs = assert_429(resp).await;
        let real_ms = 12_000 - offset_ms;
        assert!(
            secs * 1000 >= real_ms,
            "Retry-After {secs} s < {real_ms} ms"
        );
        assert!(
            secs * 1000 < real_ms + 1000,
            "Retry-After {secs} s is not tight"
        );
        // One millisecond short of the real admission time: still refused.
        clock.advance(Duration::from_millis(real_ms - 1));
        assert_429(
            cli.get("/five")
                .header("authorization", &alice)
                .send()
                .await,
        )
        .await;
        // At Retry-After (measured from the refusal): admitted.
        clock.advance(Duration::from_millis(secs * 1000 - (real_ms - 1)));
        cli.get("/five")
            .header("authorization", &alice)
            .send()
            .await
            .assert_status_is_ok();
    }
}

#[tokio::test]
async fn ratelimit_fields_on_every_response_only_when_enabled() {
    let clock = ManualClock::new();
    let off = security_with(&clock, |b| b);
    let cli = client(&off, "fields_off");
    let alice = token(&off, "alice").bearer();
    let resp = cli
        .get("/five")
        .header("authorization", &alice)
        .send()
        .await;
    resp.assert_status_is_ok();
    assert_eq!(header_str(&resp, "ratelimit"), None);

    let on = security_with(&clock, |b| b.rate_limit_headers(true));
    let cli = client(&on, "fields_on");
    let alice = token(&on, "alice").bearer();
    let resp = cli
        .get("/five")
        .header("authorization", &alice)
        .send()
        .await;
    resp.assert_status_is_ok();
    assert_eq!(
        header_str(&resp, "ratelimit-policy"),
        Some("\"default\";q=5;w=60")
    );
    assert_eq!(header_str(&resp, "ratelimit"), Some("\"default\";r=4;t=12"));
    clock.advance(Duration::from_secs(5));
    let resp = cli
        .get("/five")
        .header("authorization", &alice)
        .send()
        .await;
    // Two of five used, 5 s of the 12 s refill elapsed.
    assert_eq!(header_str(&resp, "ratelimit"), Some("\"default\";r=3;t=7"));
    // A grouped route is named after its group.
    let resp = cli
        .get("/group-a")
        .header("authorization", &alice)
        .send()
        .await;
    resp.assert_status_is_ok();
    assert_eq!(
        header_str(&resp, "ratelimit-policy"),
        Some("\"reports\";q=2;w=60")
    );
    // A route without a limit gets no fields.
    let resp = cli.get("/open").send().await;
    resp.assert_status_is_ok();
    assert_eq!(header_str(&resp, "ratelimit"), None);
    // A response refused after the limit (here: 401 is before it, so none).
    let resp = cli.get("/five").send().await;
    resp.assert_status(StatusCode::UNAUTHORIZED);
    assert_eq!(header_str(&resp, "ratelimit"), None);
}

// ---------------------------------------------------------------------------
// Buckets and keys
// ---------------------------------------------------------------------------

async fn spend(cli: &TestClient<impl Endpoint>, path: &str, auth: &str, peer: &str, n: usize) {
    for i in 0..n {
        let resp = cli
            .get(path)
            .header("authorization", auth)
            .header("x-test-peer", peer)
            .send()
            .await;
        assert_eq!(resp.0.status(), StatusCode::OK, "{path} request {i}");
    }
}

async fn refused(cli: &TestClient<impl Endpoint>, path: &str, auth: &str, peer: &str) {
    let resp = cli
        .get(path)
        .header("authorization", auth)
        .header("x-test-peer", peer)
        .send()
        .await;
    assert_429(resp).await;
}

#[tokio::test]
async fn each_declaration_has_its_own_bucket_unless_it_names_a_group() {
    let clock = ManualClock::new();
    let sec = security_with(&clock, |b| b);
    let cli = client(&sec, "buckets");
    let alice = token(&sec, "alice").bearer();
    let p = peer(1);
    spend(&cli, "/a", &alice, &p, 2).await;
    refused(&cli, "/a", &alice, &p).await;
    // Same rate, same user, another declaration: its own bucket.
    spend(&cli, "/b", &alice, &p, 2).await;
    refused(&cli, "/b", &alice, &p).await;
    // Two declarations naming one group share it.
    spend(&cli, "/group-a", &alice, &p, 1).await;
    spend(&cli, "/group-b", &alice, &p, 1).await;
    refused(&cli, "/group-a", &alice, &p).await;
    refused(&cli, "/group-b", &alice, &p).await;
}

#[tokio::test]
async fn ip_key_is_shared_by_the_users_of_one_ip() {
    let clock = ManualClock::new();
    let sec = security_with(&clock, |b| b);
    let cli = client(&sec, "ip_key");
    let (alice, bob) = (token(&sec, "alice").bearer(), token(&sec, "bob").bearer());
    spend(&cli, "/by-ip", &alice, &peer(1), 1).await;
    spend(&cli, "/by-ip", &bob, &peer(1), 1).await;
    refused(&cli, "/by-ip", &bob, &peer(1)).await;
    spend(&cli, "/by-ip", &alice, &peer(2), 2).await;
}

#[tokio::test]
async fn user_key_follows_the_user_across_ips() {
    let clock = ManualClock::new();
    let sec = security_with(&clock, |b| b);
    let cli = client(&sec, "user_key");
    let (alice, bob) = (token(&sec, "alice").bearer(), token(&sec, "bob").bearer());
    spend(&cli, "/by-user", &alice, &peer(1), 1).await;
    spend(&cli, "/by-user", &alice, &peer(2), 1).await;
    // A fresh token of alice from a third IP: still alice's quota.
    let alice2 = token(&sec, "alice").bearer();
    refused(&cli, "/by-user", &alice2, &peer(3)).await;
    spend(&cli, "/by-user", &bob, &peer(1), 2).await;
}

#[tokio::test]
async fn ip_user_key_separates_both_the_ip_and_the_user() {
    let clock = ManualClock::new();
    let sec = security_with(&clock, |b| b);
    let cli = client(&sec, "ip_user_key");
    let (alice, bob) = (token(&sec, "alice").bearer(), token(&sec, "bob").bearer());
    spend(&cli, "/by-ip-user", &alice, &peer(1), 2).await;
    refused(&cli, "/by-ip-user", &alice, &peer(1)).await;
    spend(&cli, "/by-ip-user", &alice, &peer(2), 2).await;
    spend(&cli, "/by-ip-user", &bob, &peer(1), 2).await;
}

#[tokio::test]
async fn custom_key_function_partitions_the_quota() {
    let clock = ManualClock::new();
    let sec = security_with(&clock, |b| b);
    let cli = client(&sec, "custom_key");
    let (alice, bob) = (token(&sec, "alice").bearer(), token(&sec, "bob").bearer());
    for who in [&alice, &bob] {
        cli.get("/by-tenant")
            .header("authorization", who)
            .header("x-tenant", "t1")
            .send()
            .await
            .assert_status_is_ok();
    }
    let resp = cli
        .get("/by-tenant")
        .header("authorization", &alice)
        .header("x-tenant", "t1")
        .send()
        .await;
    assert_429(resp).await;
    cli.get("/by-tenant")
        .header("authorization", &alice)
        .header("x-tenant", "t2")
        .send()
        .await
        .assert_status_is_ok();
}

// ---------------------------------------------------------------------------
// Client IP behind proxies
// ---------------------------------------------------------------------------

#[tokio::test]
async fn spoofed_forwarded_headers_from_an_untrusted_peer_change_nothing() {
    let clock = ManualClock::new();
    let sec = security_with(&clock, |b| b.trusted_proxies(["10.0.0.0/8"]));
    let cli = client(&sec, "spoof_untrusted");
    // The attacker connects directly and claims a new address every time.
    for i in 0..2 {
        cli.get("/public")
            .header("x-test-peer", "203.0.113.66:5000")
            .header("x-forwarded-for", format!("192.0.2.{i}"))
            .header("forwarded", format!("for=192.0.2.{i}"))
            .send()
            .await
            .assert_status_is_ok();
    }
    for i in 2..10 {
        let resp = cli
            .get("/public")
            .header("x-test-peer", "203.0.113.66:5000")
            .header("x-forwarded-for", format!("192.0.2.{i}, 10.0.0.1"))
            .send()
            .await;
        assert_429(resp).await;
    }
}

#[tokio::test]
async fn forwarded_for_from_a_trusted_proxy_uses_the_right_most_untrusted_hop() {
    let clock = ManualClock::new();
    let sec = security_with(&clock, |b| b.trusted_proxies(["10.0.0.0/8"]));
    let cli = client(&sec, "trusted_proxy");
    // Through two trusted proxies; the client prepends junk of its choice.
    let via = |spoof: &str, real: &str| format!("{spoof}, {real}, 10.1.1.1");
    for spoof in ["1.1.1.1", "2.2.2.2"] {
        cli.get("/public")
            .header("x-test-peer", "10.0.0.2:443")
            .header("x-forwarded-for", via(spoof, "198.51.100.20"))
            .send()
            .await
            .assert_status_is_ok();
    }
    // New spoofed prefix, same real client: still its quota.
    let resp = cli
        .get("/public")
        .header("x-test-peer", "10.0.0.2:443")
        .header("x-forwarded-for", via("3.3.3.3", "198.51.100.20"))
        .send()
        .await;
    assert_429(resp).await;
    // Another real client behind the same proxy has its own quota.
    cli.get("/public")
        .header("x-test-peer", "10.0.0.2:443")
        .header("x-forwarded-for", via("1.1.1.1", "198.51.100.21"))
        .send()
        .await
        .assert_status_is_ok();
    assert_eq!(
        sec.client_ip(
            &Request::builder()
                .header("x-forwarded-for", "198.51.100.9")
                .finish()
        ),
        None,
        "no socket peer, no client IP"
    );
}

/// Serves `sec`'s app on a real loopback socket.
async fn serve(sec: &Security) -> SocketAddr {
    let acceptor =
        poem::listener::Listener::into_acceptor(poem::listener::TcpListener::bind("127.0.0.1:0"))
            .await
            .unwrap();
    let addr = *poem::listener::Acceptor::local_addr(&acceptor)[0]
        .as_socket_addr()
        .unwrap();
    let ep = app(sec);
    tokio::spawn(poem::Server::new_with_acceptor(acceptor).run(ep));
    addr
}

/// One HTTP/1.1 GET over a fresh connection; returns the status code.
async fn raw_get(addr: SocketAddr, path: &str, xff: &str) -> u16 {
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: test\r\nX-Forwarded-For: {xff}\r\nConnection: close\r\n\r\n"
    );
    tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(req.as_bytes()).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out.split(' ').nth(1).unwrap().parse().unwrap()
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn over_real_tcp_forwarded_for_is_believed_only_from_trusted_peers() {
    let clock = ManualClock::new();
    // Nobody trusted: every request from 127.0.0.1 is one client, whatever
    // it claims.
    let untrusting = security_with(&clock, |b| b);
    let addr = serve(&untrusting).await;
    assert_eq!(raw_get(addr, "/public", "192.0.2.1").await, 200);
    assert_eq!(raw_get(addr, "/public", "192.0.2.2").await, 200);
    assert_eq!(raw_get(addr, "/public", "192.0.2.3").await, 429);

    // Loopback trusted as the proxy: the header's client is the key.
    let trusting = security_with(&clock, |b| b.trusted_proxies(["127.0.0.1/32"]));
    let addr = serve(&trusting).await;
    for client in ["192.0.2.1", "192.0.2.2", "192.0.2.3"] {
        assert_eq!(raw_get(addr, "/public", client).await, 200);
        assert_eq!(
            raw_get(addr, "/public", &format!("6.6.6.6, {client}")).await,
            200
        );
        assert_eq!(raw_get(addr, "/public", client).await, 429);
    }
}

// ---------------------------------------------------------------------------
// Allow-lists and dry-run
// ---------------------------------------------------------------------------

#[tokio::test]
async fn allow_listed_networks_and_keys_bypass_limits() {
    let clock = ManualClock::new();
    let sec = security_with(&clock, |b| {
        b.rate_limit_allow_ips(["192.0.2.0/24"])
            .rate_limit_allow_keys(["svc-monitor"])
    });
    let cli = client(&sec, "allow");
    let alice = token(&sec, "alice").bearer();
    let monitor = token(&sec, "svc-monitor").bearer();
    // From an allowed network, anyone is unlimited.
    spend(&cli, "/a", &alice, "192.0.2.77:1", 20).await;
    // An allowed subject is unlimited from anywhere.
    spend(&cli, "/a", &monitor, &peer(5), 20).await;
    // Everyone else is limited.
    spend(&cli, "/a", &alice, &peer(5), 2).await;
    refused(&cli, "/a", &alice, &peer(5)).await;
}

#[tokio::test]
async fn dry_run_admits_what_it_would_refuse() {
    const T: &str = "dry_run_admits_what_it_would_refuse";
    let clock = ManualClock::new();
    let sec = security_with(&clock, |b| {
        b.rate_limit_dry_run(true).rate_limit_headers(true)
    });
    let cli = client(&sec, T);
    for _ in 0..10 {
        let resp = cli
            .get("/public")
            .header("x-test-peer", peer(9))
            .send()
            .await;
        resp.assert_status_is_ok();
    }
    assert_eq!(runs(T), 10);
    // The fields still tell the truth: the quota is spent.
    let resp = cli
        .get("/public")
        .header("x-test-peer", peer(9))
        .send()
        .await;
    resp.assert_status_is_ok();
    assert_eq!(header_str(&resp, "ratelimit"), Some("\"default\";r=0;t=30"));
    // (The warning each of these logs is asserted in secure-runtime's unit
    // tests, which can install a tracing subscriber.)
}

// ---------------------------------------------------------------------------
// Failure-driven login limits
// ---------------------------------------------------------------------------

async fn login_as(
    cli: &TestClient<impl Endpoint>,
    peer: &str,
    user: &str,
    pass: &str,
) -> TestResponse {
    cli.get("/login")
        .header("x-test-peer", peer)
        .header("x-user", user)
        .header("x-pass", pass)
        .send()
        .await
}

#[tokio::test]
async fn login_limit_counts_failures_only() {
    const T: &str = "login_limit_counts_failures_only";
    let clock = ManualClock::new();
    let sec = security_with(&clock, |b| b);
    let cli = client(&sec, T);
    let ip = peer(30);
    // A hundred honest logins are never throttled.
    for _ in 0..100 {
        login_as(&cli, &ip, "alice", "right")
            .await
            .assert_status_is_ok();
    }
    // Three wrong passwords for alice from this IP...
    for _ in 0..3 {
        login_as(&cli, &ip, "alice", "wrong")
            .await
            .assert_status(StatusCode::UNAUTHORIZED);
    }
    // ...and even the right password is not checked any more.
    let before = runs(T);
    let secs = assert_429(login_as(&cli, &ip, "Alice", "right").await).await;
    assert_eq!(secs, 100);
    assert_eq!(runs(T), before, "the password was not checked");
    // Not a lockout: alice from elsewhere, and bob from here, still get in.
    login_as(&cli, &peer(31), "alice", "right")
        .await
        .assert_status_is_ok();
    login_as(&cli, &ip, "bob", "right")
        .await
        .assert_status_is_ok();
    // After the refill interval, one more guess.
    clock.advance(Duration::from_secs(100));
    login_as(&cli, &ip, "alice", "right")
        .await
        .assert_status_is_ok();
}

#[tokio::test]
async fn login_limit_per_ip_stops_spraying_user_names() {
    let clock = ManualClock::new();
    let sec = security_with(&clock, |b| b);
    let cli = client(&sec, "login_spray");
    let ip = peer(40);
    for i in 0..6 {
        login_as(&cli, &ip, &format!("user{i}"), "wrong")
            .await
            .assert_status(StatusCode::UNAUTHORIZED);
    }
    assert_429(login_as(&cli, &ip, "user99", "wrong").await).await;
    // Spoofing X-Forwarded-For from an untrusted peer does not escape it.
    let resp = cli
        .get("/login")
        .header("x-test-peer", &ip)
        .header("x-forwarded-for", "192.0.2.200")
        .header("x-user", "user100")
        .send()
        .await;
    assert_429(resp).await;
}

// ---------------------------------------------------------------------------
// Memory bound
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_spray_of_distinct_client_ips_cannot_grow_the_limiter_past_its_bound() {
    let limiter = Arc::new(MemoryRateLimiter::with_max_keys(1000));
    let sec = Security::builder()
        .rate_limiter(limiter.clone())
        .build()
        .unwrap();
    let cli = client(&sec, "spray");
    // A client being throttled before the spray...
    for _ in 0..2 {
        cli.get("/public")
            .header("x-test-peer", "192.0.2.1:1")
            .send()
            .await
            .assert_status_is_ok();
    }
    // ...then 10,000 distinct addresses, each admitted once.
    for i in 0..10_000u32 {
        let p = format!("{}:1", std::net::Ipv4Addr::from(0x0a00_0000 + i));
        cli.get("/public")
            .header("x-test-peer", p)
            .send()
            .await
            .assert_status_is_ok();
        assert!(limiter.len() <= 1000);
    }
    assert!(limiter.capacity() <= 4 * 1000);
    // The throttled client was not forgotten.
    let resp = cli
        .get("/public")
        .header("x-test-peer", "192.0.2.1:1")
        .send()
        .await;
    assert_429(resp).await;
}
