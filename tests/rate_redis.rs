//! The Redis rate limiter against a real `redis-server` started on a random
//! port for each test (the tests FAIL when it cannot start): exact admission
//! under concurrency across two instances, exact `Retry-After`, idle keys
//! expiring, Redis killed mid-test and restarted (fail closed, fail open,
//! recovery without restart), and failure-driven limits.
//!
//! Every test is bounded by a timeout so that a broken one cannot hang CI.

#[path = "support/redis_server.rs"]
mod redis_server;

#[path = "support/peer.rs"]
mod peer;
use peer::with_peer;
use std::{
    future::Future,
    sync::Arc,
    time::{Duration, Instant},
};

use poem::{handler, http::StatusCode, test::TestClient, Endpoint};
use poem_secure::{
    public,
    route::{get, Route},
    FailureLimit, LimiterUnavailable, ManualClock, PartitionKey, Rate, RateLimiter, RateQuery,
    RedisRateLimiter, Security,
};
use redis_server::RedisServer;

/// Runs a test body with a hard deadline.
async fn bounded<F: Future<Output = ()>>(body: F) {
    tokio::time::timeout(Duration::from_secs(90), body)
        .await
        .expect("test exceeded its 90 s bound");
}

fn rate(count: u32, period_secs: u32, burst: Option<u32>) -> Rate {
    let r = Rate::new(count, period_secs);
    match burst {
        Some(b) => r.with_burst(b),
        None => r,
    }
}

/// A limiter with a 300 ms bound per call (the outage tests measure it).
fn limiter(server: &RedisServer) -> RedisRateLimiter {
    RedisRateLimiter::builder(server.url())
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap()
}

/// A limiter for tests about exactness, not latency: hundreds of checks at
/// once may queue on a loaded machine, and a timeout would be a refusal.
fn patient_limiter(server: &RedisServer) -> RedisRateLimiter {
    RedisRateLimiter::builder(server.url())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

fn query<'a>(bucket: &'a str, user: &'a str, rate: Rate) -> RateQuery<'a> {
    RateQuery {
        bucket,
        key: PartitionKey::User(user),
        rate,
        ip: None,
    }
}

#[public(rate = "5/min")]
#[handler]
async fn limited() -> &'static str {
    "ok"
}

/// The app of one service instance; `x-test-peer` sets the socket peer.
fn instance(sec: &Security) -> TestClient<impl Endpoint> {
    let app = Route::new().at("/limited", get(limited)).with(sec.clone());
    let app = with_peer(app);
    TestClient::new(app)
}

async fn status(cli: &TestClient<impl Endpoint>, peer: &str) -> StatusCode {
    cli.get("/limited")
        .header("x-test-peer", peer)
        .send()
        .await
        .0
        .status()
}

// ---------------------------------------------------------------------------
// Exactness
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_sharing_redis_admit_exactly_the_quota_under_concurrency() {
    bounded(async {
        let server = RedisServer::start();
        let instances = [
            Arc::new(patient_limiter(&server)),
            Arc::new(patient_limiter(&server)),
        ];
        let r = rate(1, 3600, Some(50));
        let mut tasks = Vec::new();
        for i in 0..400 {
            let lim = instances[i % 2].clone();
            tasks.push(tokio::spawn(async move {
                lim.check(query("exact", "hot", r)).await
            }));
        }
        let mut admitted = 0;
        for t in tasks {
            if t.await.unwrap().unwrap().allowed {
                admitted += 1;
            }
        }
        assert_eq!(admitted, 50, "no over- or under-admission");
    })
    .await;
}

#[tokio::test]
async fn two_app_instances_share_one_limit_over_http() {
    bounded(async {
        let server = RedisServer::start();
        let a = Security::builder()
            .rate_limiter(limiter(&server))
            .build()
            .unwrap();
        let b = Security::builder()
            .rate_limiter(limiter(&server))
            .build()
            .unwrap();
        let (ca, cb) = (instance(&a), instance(&b));
        let mut admitted = 0;
        for i in 0..20 {
            let cli_status = if i % 2 == 0 {
                status(&ca, "192.0.2.1:1").await
            } else {
                status(&cb, "192.0.2.1:1").await
            };
            match cli_status {
                StatusCode::OK => admitted += 1,
                StatusCode::TOO_MANY_REQUESTS => {}
                s => panic!("unexpected {s}"),
            }
        }
        assert_eq!(admitted, 5, "5/min across both instances");
        assert_eq!(status(&cb, "192.0.2.2:1").await, StatusCode::OK);
    })
    .await;
}

// ---------------------------------------------------------------------------
// Retry-After
// ---------------------------------------------------------------------------

#[tokio::test]
async fn retry_after_is_exact_with_a_shared_clock() {
    bounded(async {
        let server = RedisServer::start();
        let clock = ManualClock::new();
        clock.advance(Duration::from_secs(1_000_000));
        let mk = || {
            RedisRateLimiter::builder(server.url())
                .clock(clock.clone())
                .build()
                .unwrap()
        };
        let (one, two) = (mk(), mk());
        let r = rate(5, 60, None);
        let q = query("retry", "alice", r);
        for i in 0..5 {
            let lim = if i % 2 == 0 { &one } else { &two };
            let d = lim.check(q).await.unwrap();
            assert!(d.allowed);
            assert_eq!(d.remaining, 4 - i);
        }
        clock.advance(Duration::from_millis(2_500));
        let d = two.check(q).await.unwrap();
        assert_eq!(d.retry_after(), Some(Duration::from_millis(9_500)));
        assert_eq!(d.retry_after_secs(), Some(10));
        clock.advance(Duration::from_millis(9_500) - Duration::from_micros(1));
        assert!(!one.check(q).await.unwrap().allowed, "1 µs early");
        clock.advance(Duration::from_micros(1));
        assert!(one.check(q).await.unwrap().allowed, "on time");
    })
    .await;
}

#[tokio::test]
async fn with_server_time_waiting_retry_after_is_enough() {
    bounded(async {
        let server = RedisServer::start();
        let lim = limiter(&server);
        // One request every 200 ms, no burst.
        let r = rate(5, 1, Some(1));
        let q = query("server-time", "alice", r);
        assert!(lim.check(q).await.unwrap().allowed);
        let d = lim.check(q).await.unwrap();
        let wait = d.retry_after().expect("refused");
        assert!(wait > Duration::ZERO && wait <= Duration::from_millis(200));
        assert_eq!(d.retry_after_secs(), Some(1));
        tokio::time::sleep(wait).await;
        assert!(lim.check(q).await.unwrap().allowed);
    })
    .await;
}

// ---------------------------------------------------------------------------
// Keys and eviction
// ---------------------------------------------------------------------------

#[tokio::test]
async fn keys_are_namespaced_digests_that_expire_when_idle() {
    bounded(async {
        let server = RedisServer::start();
        let lim = Arc::new(
            RedisRateLimiter::builder(server.url())
                .prefix("test:rl:")
                // This test is about keys, not latency: 500 checks at once
                // may queue on a loaded machine.
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap(),
        );
        // A key is active for five seconds after its admission.
        let r = rate(1, 5, None);
        let mut tasks = Vec::new();
        for i in 0..500 {
            let lim = lim.clone();
            tasks.push(tokio::spawn(async move {
                let user = format!("user-{i}");
                lim.check(query("spray", &user, r)).await.unwrap().allowed
            }));
        }
        for t in tasks {
            assert!(t.await.unwrap());
        }
        assert_eq!(server.dbsize(), 500);
        assert_eq!(
            server.cmd("KEYS *user*").unwrap(),
            "*0\r\n",
            "raw keys never reach Redis"
        );
        let key = lim.key_of(&query("spray", "user-7", r));
        assert!(key.starts_with("test:rl:spray:"), "{key}");
        assert_eq!(server.cmd(&format!("EXISTS {key}")).unwrap(), ":1\r\n");
        let pttl = server.cmd(&format!("PTTL {key}")).unwrap();
        let pttl: i64 = pttl.trim().trim_start_matches(':').parse().unwrap();
        assert!((1..=5000).contains(&pttl), "PTTL {pttl}");
        // Idle keys leave Redis on their own.
        let deadline = Instant::now() + Duration::from_secs(20);
        while server.dbsize() > 0 {
            assert!(Instant::now() < deadline, "keys did not expire");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
}

// ---------------------------------------------------------------------------
// Outages
// ---------------------------------------------------------------------------

#[tokio::test]
async fn redis_killed_mid_test_fails_closed_then_recovers_without_restart() {
    bounded(async {
        let server = RedisServer::start();
        let sec = Security::builder()
            .rate_limiter(limiter(&server))
            .build()
            .unwrap();
        let cli = instance(&sec);
        assert_eq!(status(&cli, "192.0.2.1:1").await, StatusCode::OK);

        server.kill();
        for _ in 0..5 {
            let started = Instant::now();
            assert_eq!(
                status(&cli, "192.0.2.1:1").await,
                StatusCode::SERVICE_UNAVAILABLE,
                "fail closed"
            );
            // Bounded by the 300 ms timeout (generous slack for a loaded CI).
            assert!(started.elapsed() < Duration::from_secs(3));
        }

        server.restart();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match status(&cli, "192.0.2.1:1").await {
                StatusCode::OK => break,
                StatusCode::SERVICE_UNAVAILABLE => {
                    assert!(Instant::now() < deadline, "did not recover");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                s => panic!("unexpected {s}"),
            }
        }
        // Limits apply again (the restarted Redis is empty: a fresh quota).
        for _ in 0..4 {
            assert_eq!(status(&cli, "192.0.2.1:1").await, StatusCode::OK);
        }
        assert_eq!(
            status(&cli, "192.0.2.1:1").await,
            StatusCode::TOO_MANY_REQUESTS
        );
    })
    .await;
}

#[tokio::test]
async fn fail_open_admits_while_redis_is_down_and_limits_again_after() {
    bounded(async {
        let server = RedisServer::start();
        let lim = RedisRateLimiter::builder(server.url())
            .timeout(Duration::from_millis(300))
            .fail_open(true)
            .build()
            .unwrap();
        let sec = Security::builder().rate_limiter(lim).build().unwrap();
        let cli = instance(&sec);
        for _ in 0..5 {
            assert_eq!(status(&cli, "192.0.2.1:1").await, StatusCode::OK);
        }
        assert_eq!(
            status(&cli, "192.0.2.1:1").await,
            StatusCode::TOO_MANY_REQUESTS
        );

        server.kill();
        for _ in 0..10 {
            assert_eq!(
                status(&cli, "192.0.2.1:1").await,
                StatusCode::OK,
                "fail open"
            );
        }

        server.restart();
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut refused = false;
        while !refused {
            assert!(Instant::now() < deadline, "limits did not come back");
            refused = status(&cli, "192.0.2.3:1").await == StatusCode::TOO_MANY_REQUESTS;
        }
    })
    .await;
}

#[tokio::test]
async fn redis_down_at_startup_fails_closed_and_recovers_when_it_comes_up() {
    bounded(async {
        let server = RedisServer::start();
        server.kill();
        let lim = limiter(&server);
        let q = query("startup", "alice", rate(1, 60, None));
        for _ in 0..3 {
            assert_eq!(lim.check(q).await, Err(LimiterUnavailable));
        }
        server.restart();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match lim.check(q).await {
                Ok(d) => {
                    assert!(d.allowed);
                    break;
                }
                Err(LimiterUnavailable) => {
                    assert!(Instant::now() < deadline, "did not recover");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        assert!(!lim.check(q).await.unwrap().allowed);
    })
    .await;
}

// ---------------------------------------------------------------------------
// Failure-driven limits
// ---------------------------------------------------------------------------

const GUESSES: FailureLimit = FailureLimit::new("guesses", Rate::new(3, 3600));

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failure_limit_in_redis_is_exact_across_instances_and_ignores_successes() {
    bounded(async {
        let server = RedisServer::start();
        let a = Security::builder()
            .rate_limiter(patient_limiter(&server))
            .build()
            .unwrap();
        let b = Security::builder()
            .rate_limiter(patient_limiter(&server))
            .build()
            .unwrap();
        let ip = Some("192.0.2.50".parse().unwrap());
        let key = PartitionKey::IpUser(ip, "alice");

        // Successes never count, whichever instance serves them.
        for i in 0..30 {
            let sec = if i % 2 == 0 { &a } else { &b };
            GUESSES.guard(sec, key, ip).await.unwrap().succeeded().await;
        }

        // 40 parallel guesses on two instances: exactly 3 are let through.
        let mut tasks = Vec::new();
        for i in 0..40 {
            let sec = if i % 2 == 0 { a.clone() } else { b.clone() };
            tasks.push(tokio::spawn(async move {
                let ip = Some("192.0.2.50".parse().unwrap());
                match GUESSES
                    .guard(&sec, PartitionKey::IpUser(ip, "alice"), ip)
                    .await
                {
                    Ok(attempt) => {
                        // Hold the reservation while the "password" is checked.
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        attempt.failed();
                        true
                    }
                    Err(r) => {
                        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
                        false
                    }
                }
            }));
        }
        let mut through = 0;
        for t in tasks {
            through += usize::from(t.await.unwrap());
        }
        assert_eq!(through, 3);
        // Another user from the same IP is unaffected.
        GUESSES
            .guard(&b, PartitionKey::IpUser(ip, "bob"), ip)
            .await
            .unwrap()
            .succeeded()
            .await;
    })
    .await;
}
