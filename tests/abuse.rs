//! Abuse resistance (issue #14): each test tries the attack.

use poem::{handler, http::StatusCode, test::TestClient, Endpoint, Request};
use poem_secure::{
    public,
    route::{get, Route},
    secure,
    testing::token,
    JwtConfig, LoginLimits, ManualClock, MemoryRateLimiter, Rate, Security, SecurityBuilder,
};

#[path = "support/peer.rs"]
mod peer;

const SECRET: &[u8; 32] = b"abuse-tests-secret-32-bytes-long";

fn security(configure: impl FnOnce(SecurityBuilder) -> SecurityBuilder) -> Security {
    let b = Security::builder()
        .jwt(
            JwtConfig::hs256(SECRET)
                .unwrap()
                .issuer("abuse")
                .audience("api"),
        )
        .rate_limiter(MemoryRateLimiter::new().with_clock(ManualClock::new()));
    configure(b).build().unwrap()
}

#[public(rate = "2/min")]
#[handler]
async fn open_limited() -> &'static str {
    "ok"
}

#[secure(rate = "2/min", rate_key = ip)]
#[handler]
async fn by_ip() -> &'static str {
    "ok"
}

/// Per (IP, user name): 2 failures; no per-IP limit, so only the pair counts.
const LOGIN: LoginLimits = LoginLimits::new()
    .per_ip_and_username(Some(Rate::new(2, 300)))
    .per_ip(None);

#[public]
#[handler]
async fn login(req: &Request) -> poem::Result<&'static str> {
    let sec = req.extensions().get::<Security>().expect("installed");
    let user = req
        .headers()
        .get("x-user")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let attempt = LOGIN.guard(sec, req, user).await?;
    attempt.failed();
    Err(poem::Error::from_status(StatusCode::UNAUTHORIZED))
}

fn client(sec: &Security) -> TestClient<impl Endpoint> {
    TestClient::new(peer::with_peer(
        Route::new()
            .at("/open", get(open_limited))
            .at("/by-ip", get(by_ip))
            .at("/login", get(login))
            .with(sec.clone()),
    ))
}

async fn status(cli: &TestClient<impl Endpoint>, path: &str, peer: &str, auth: &str) -> u16 {
    let mut req = cli.get(path).header("x-test-peer", peer);
    if !auth.is_empty() {
        req = req.header("authorization", auth);
    }
    req.send().await.0.status().as_u16()
}

#[tokio::test]
async fn the_addresses_of_one_ipv6_64_share_a_bucket_and_another_64_does_not() {
    let sec = security(|b| b);
    let cli = client(&sec);
    // Eight addresses of 2001:db8:1:2::/64 spend one bucket of 2.
    let mut statuses = Vec::new();
    for i in 1..=8 {
        statuses.push(status(&cli, "/open", &format!("[2001:db8:1:2::{i}]:5000"), "").await);
    }
    assert_eq!(&statuses[..2], [200, 200]);
    assert!(statuses[2..].iter().all(|s| *s == 429), "{statuses:?}");
    // The next /64 has its own.
    assert_eq!(
        status(&cli, "/open", "[2001:db8:1:3::1]:5000", "").await,
        200
    );

    // The same for an authenticated route keyed by IP.
    let alice = token(&sec, "alice").bearer();
    assert_eq!(
        status(&cli, "/by-ip", "[2001:db8:9:9::1]:5000", &alice).await,
        200
    );
    assert_eq!(
        status(&cli, "/by-ip", "[2001:db8:9:9::2]:5000", &alice).await,
        200
    );
    assert_eq!(
        status(&cli, "/by-ip", "[2001:db8:9:9:ffff::3]:5000", &alice).await,
        429
    );
}

#[tokio::test]
async fn the_ipv6_prefix_is_configurable_and_ipv4_counts_by_address() {
    let sec = security(|b| b.client_ip_prefix(32, 128));
    let cli = client(&sec);
    for i in 1..=3 {
        // /128: each address its own bucket.
        assert_eq!(
            status(&cli, "/open", &format!("[2001:db8::{i}]:5000"), "").await,
            200
        );
    }
    for i in 1..=2 {
        assert_eq!(
            status(&cli, "/open", &format!("192.0.2.{i}:5000"), "").await,
            200
        );
        assert_eq!(
            status(&cli, "/open", &format!("192.0.2.{i}:5000"), "").await,
            200
        );
    }
    assert_eq!(status(&cli, "/open", "192.0.2.1:5000", "").await, 429);
    assert_eq!(status(&cli, "/open", "192.0.2.3:5000", "").await, 200);
    assert!(Security::builder()
        .client_ip_prefix(32, 40)
        .build()
        .is_err());
}

#[tokio::test]
async fn an_allow_listed_username_submitted_to_a_login_is_still_limited() {
    let sec = security(|b| b.rate_limit_allow_keys(["svc-monitor"]));
    let cli = client(&sec);
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let resp = cli
            .get("/login")
            .header("x-test-peer", "198.51.100.7:4000")
            .header("x-user", "svc-monitor")
            .send()
            .await;
        statuses.push(resp.0.status().as_u16());
    }
    assert_eq!(statuses, [401, 401, 429, 429]);
}

#[tokio::test]
async fn an_allow_listed_address_is_exempt_everywhere() {
    let sec = security(|b| b.rate_limit_allow_ips(["198.51.100.0/24"]));
    let cli = client(&sec);
    for _ in 0..5 {
        assert_eq!(status(&cli, "/open", "198.51.100.9:4000", "").await, 200);
    }
}

#[tokio::test]
async fn an_authorization_scheme_the_route_does_not_take_is_a_401_not_absent() {
    let sec = security(|b| b);
    let cli = client(&sec);
    for (path, scheme) in [
        ("/by-ip", "Digest x=1"),
        ("/by-ip", "Basic YTpi"),
        ("/open", "Negotiate abc"),
    ] {
        let resp = cli
            .get(path)
            .header("x-test-peer", "192.0.2.50:1000")
            .header("authorization", scheme)
            .send()
            .await;
        resp.assert_status(StatusCode::UNAUTHORIZED);
        resp.assert_header("www-authenticate", "Bearer");
    }
}

#[tokio::test]
async fn no_store_follows_the_configured_api_key_header() {
    let sec = security(|b| b.api_key_header("X-Service-Key"));
    let cli = client(&sec);
    let resp = cli
        .get("/open")
        .header("x-test-peer", "192.0.2.60:1000")
        .header("x-service-key", "k1.secret")
        .send()
        .await;
    resp.assert_header("cache-control", "no-store");
    let plain = cli
        .get("/open")
        .header("x-test-peer", "192.0.2.61:1000")
        .send()
        .await;
    assert!(plain.0.headers().get("cache-control").is_none());
}

#[tokio::test]
async fn an_overlong_user_name_is_refused_as_unknown() {
    use poem_secure::{
        Authenticator, LoginError, MemoryUserStore, PasswordHasher, MAX_USERNAME_BYTES,
    };
    let auth = Authenticator::new(
        std::sync::Arc::new(MemoryUserStore::new(Vec::new())),
        PasswordHasher::new(),
    );
    let long = "u".repeat(MAX_USERNAME_BYTES + 1);
    assert!(matches!(
        auth.authenticate(&long, "pw").await,
        Err(LoginError::Invalid)
    ));
}

// ---------------------------------------------------------------------------
// Failure budgets of guessable credentials (HTTP Basic, API keys)
// ---------------------------------------------------------------------------

mod guessing {
    use std::sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    };

    use poem::{handler, http::StatusCode, test::TestClient, Endpoint};
    use poem_secure::{
        route::{get, Route},
        secure, Answer, ApiKeyVerifier, BasicVerifier, CredentialError, CredentialKind, JwtConfig,
        ManualClock, MemoryRateLimiter, Principal, Rate, Security,
    };
    use proptest::prelude::*;

    use super::peer;

    thread_local! {
        /// The last `setup()`'s Security, to mint valid tokens.
        static SEC: std::cell::RefCell<Option<Security>> = const { std::cell::RefCell::new(None) };
    }

    /// A Basic verifier that counts every verification it is asked for (each
    /// would be an argon2 run) and records the failed ones per (ip, user).
    #[derive(Clone, Default)]
    struct Counting {
        calls: Arc<AtomicUsize>,
        failures: Arc<Mutex<Vec<String>>>,
    }

    impl BasicVerifier for Counting {
        fn verify<'a>(
            &'a self,
            username: &'a str,
            password: &'a str,
        ) -> Answer<'a, Result<Principal, CredentialError>> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            Answer::later(async move {
                if password == "right" {
                    Ok(Principal::builder(CredentialKind::Basic, username).build())
                } else {
                    self.failures.lock().unwrap().push(username.to_owned());
                    Err(CredentialError::Invalid)
                }
            })
        }
    }

    impl ApiKeyVerifier for Counting {
        fn verify<'a>(&'a self, key: &'a str) -> Answer<'a, Result<Principal, CredentialError>> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            Answer::Ready(if key == "k1.right" {
                Ok(Principal::builder(CredentialKind::ApiKey, "svc")
                    .key_id("k1")
                    .build())
            } else {
                Err(CredentialError::Invalid)
            })
        }
    }

    #[secure(auth = basic)]
    #[handler]
    async fn basic_route() -> &'static str {
        "ok"
    }

    #[secure(auth = api_key)]
    #[handler]
    async fn key_route() -> &'static str {
        "ok"
    }

    #[secure]
    #[handler]
    async fn bearer_route() -> &'static str {
        "ok"
    }

    /// 4 failures per client, 2 per (client, identity), on a clock that
    /// never moves (no refill during a test).
    fn setup() -> (Counting, Counting, TestClient<impl Endpoint>) {
        let (basic, keys) = (Counting::default(), Counting::default());
        let sec = Security::builder()
            .jwt(
                JwtConfig::hs256([9u8; 32])
                    .unwrap()
                    .issuer("g")
                    .audience("a"),
            )
            .basic(basic.clone())
            .api_keys(keys.clone())
            .rate_limiter(MemoryRateLimiter::new().with_clock(ManualClock::new()))
            .credential_failure_limits(Some(Rate::new(4, 300)), Some(Rate::new(2, 300)))
            .build()
            .unwrap();
        let cli = TestClient::new(peer::with_peer(
            Route::new()
                .at("/basic", get(basic_route))
                .at("/key", get(key_route))
                .at("/bearer", get(bearer_route))
                .with(sec.clone()),
        ));
        SEC.with(|s| *s.borrow_mut() = Some(sec));
        (basic, keys, cli)
    }

    fn basic(user: &str, pass: &str) -> String {
        use base64::Engine as _;
        let raw = format!("{user}:{pass}");
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }

    async fn basic_status(
        cli: &TestClient<impl Endpoint>,
        ip: &str,
        user: &str,
        pass: &str,
    ) -> u16 {
        cli.get("/basic")
            .header("x-test-peer", format!("{ip}:1000"))
            .header("authorization", basic(user, pass))
            .send()
            .await
            .0
            .status()
            .as_u16()
    }

    #[tokio::test]
    async fn basic_password_guesses_are_refused_before_hashing_once_over_budget() {
        let (counter, _, cli) = setup();
        let mut statuses = Vec::new();
        for _ in 0..10 {
            statuses.push(basic_status(&cli, "198.51.100.1", "carol", "guess").await);
        }
        assert_eq!(&statuses[..2], [401, 401], "{statuses:?}");
        assert!(statuses[2..].iter().all(|s| *s == 429), "{statuses:?}");
        assert_eq!(counter.calls.load(Ordering::SeqCst), 2, "verifications run");
        // Even the right password waits: the budget is for the pair.
        assert_eq!(
            basic_status(&cli, "198.51.100.1", "carol", "right").await,
            429
        );
        // Another client is not affected.
        assert_eq!(
            basic_status(&cli, "198.51.100.2", "carol", "right").await,
            200
        );
    }

    #[tokio::test]
    async fn a_429_carries_retry_after() {
        let (_, _, cli) = setup();
        for _ in 0..2 {
            basic_status(&cli, "198.51.100.3", "dave", "guess").await;
        }
        let resp = cli
            .get("/basic")
            .header("x-test-peer", "198.51.100.3:1000")
            .header("authorization", basic("dave", "guess"))
            .send()
            .await;
        resp.assert_status(StatusCode::TOO_MANY_REQUESTS);
        assert!(resp.0.headers().get("retry-after").is_some());
    }

    #[tokio::test]
    async fn successes_give_their_reservation_back() {
        let (_, _, cli) = setup();
        let ip = "198.51.100.4";
        let got = [
            basic_status(&cli, ip, "erin", "guess").await,
            basic_status(&cli, ip, "erin", "right").await,
            basic_status(&cli, ip, "erin", "right").await,
            basic_status(&cli, ip, "erin", "guess").await,
            basic_status(&cli, ip, "erin", "guess").await,
        ];
        assert_eq!(got, [401, 200, 200, 401, 429]);
    }

    #[tokio::test]
    async fn spraying_many_user_names_hits_the_per_client_budget() {
        let (counter, _, cli) = setup();
        let mut statuses = Vec::new();
        for i in 0..8 {
            statuses
                .push(basic_status(&cli, "[2001:db8:5:5::1]", &format!("user{i}"), "guess").await);
        }
        assert_eq!(&statuses[..4], [401; 4], "{statuses:?}");
        assert!(statuses[4..].iter().all(|s| *s == 429), "{statuses:?}");
        assert_eq!(counter.calls.load(Ordering::SeqCst), 4);
        // The same /64 from another address: the same budget.
        assert_eq!(
            basic_status(&cli, "[2001:db8:5:5::99]", "user9", "guess").await,
            429
        );
    }

    #[tokio::test]
    async fn api_key_guesses_are_limited_too() {
        let (_, keys, cli) = setup();
        let mut statuses = Vec::new();
        for i in 0..8 {
            let resp = cli
                .get("/key")
                .header("x-test-peer", "203.0.113.9:1000")
                .header("x-api-key", format!("k{i}.wrong"))
                .send()
                .await;
            statuses.push(resp.0.status().as_u16());
        }
        assert_eq!(&statuses[..4], [401; 4], "{statuses:?}");
        assert!(statuses[4..].iter().all(|s| *s == 429), "{statuses:?}");
        assert_eq!(keys.calls.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn invalid_bearer_tokens_spend_the_client_budget_valid_ones_never_touch_it() {
        let (_, _, cli) = setup();
        let mut statuses = Vec::new();
        for i in 0..6 {
            let resp = cli
                .get("/bearer")
                .header("x-test-peer", "203.0.113.44:1000")
                .header("authorization", format!("Bearer not.a.token{i}"))
                .send()
                .await;
            statuses.push(resp.0.status().as_u16());
        }
        assert_eq!(statuses, [401, 401, 401, 401, 429, 429]);
        // A valid token is verified and served without asking the limiter.
        let sec = SEC.with(|s| s.borrow().clone()).expect("setup ran");
        let valid = poem_secure::testing::token(&sec, "alice").bearer();
        let resp = cli
            .get("/bearer")
            .header("x-test-peer", "203.0.113.44:1000")
            .header("authorization", valid)
            .send()
            .await;
        assert_eq!(resp.0.status(), StatusCode::OK);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        /// Whatever the sequence of Basic attempts, no client gets more
        /// than its budget of failed verifications (argon2 runs), none per
        /// (client, user) more than that budget.
        #[test]
        fn no_sequence_of_bad_passwords_runs_more_verifications_than_the_budget(
            attempts in proptest::collection::vec((0u8..2, 0u8..3, proptest::bool::weighted(0.2)), 1..40)
        ) {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                let (counter, _, cli) = setup();
                for (ip, user, right) in &attempts {
                    let ip = format!("192.0.2.{}", 10 + ip);
                    let pass = if *right { "right" } else { "guess" };
                    basic_status(&cli, &ip, &format!("u{user}"), pass).await;
                }
                let failures = counter.failures.lock().unwrap().clone();
                // Per user (each user name is tried from both clients at
                // most: 2 clients × 2 per pair).
                for u in 0..3 {
                    let n = failures.iter().filter(|f| **f == format!("u{u}")).count();
                    prop_assert!(n <= 4, "user u{u}: {n} failed verifications");
                }
                prop_assert!(failures.len() <= 8, "{} failed verifications", failures.len());
                Ok(())
            })?;
        }
    }
}

#[tokio::test]
async fn clients_without_an_address_share_a_bucket_by_default_or_are_refused_when_asked() {
    use poem_secure::UnknownClient;
    // Default: pooled (and a warning logged once), never unlimited.
    let cli = client(&security(|b| b));
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(cli.get("/open").send().await.0.status().as_u16());
    }
    assert_eq!(got, [200, 200, 429]);
    // Refuse: such a request is refused; a client with an address is served.
    let cli = client(&security(|b| b.unknown_client(UnknownClient::Refuse)));
    cli.get("/open")
        .send()
        .await
        .assert_status(StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(status(&cli, "/open", "192.0.2.70:1000", "").await, 200);
}
