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
