//! The Redis deployments the tests start (tests/support/redis_server.rs):
//! a plain server, a TLS-only server with a CA of its own, and a three-master
//! Redis Cluster, each of which can lose a node and get it back.
//!
//! Nothing is skipped: a missing `redis-server`, `redis-cli` or `openssl`
//! FAILS these tests (CI installs them: `scripts/test.sh`).

#[path = "support/redis_server.rs"]
mod redis_server;

use redis_server::{key_slot, RedisCluster, RedisServer};

#[test]
fn a_tls_only_server_answers_over_tls_and_not_in_clear() {
    let tls = RedisServer::start_tls();
    assert!(tls.url().starts_with("rediss://127.0.0.1:"));
    let ca = std::fs::read_to_string(tls.ca_file().unwrap()).unwrap();
    assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"));
    assert_eq!(tls.cli(&["SET", "k", "v"]).unwrap(), "OK");
    assert_eq!(tls.dbsize(), 1);
    // No plain port: a clear-text PING gets no PONG.
    assert!(!tls.cmd("PING").is_ok_and(|r| r.starts_with("+PONG")));
    tls.kill();
    assert!(tls.cli(&["PING"]).is_err());
    tls.restart();
    assert_eq!(tls.dbsize(), 0, "a restart comes back empty");
}

#[test]
fn a_three_master_cluster_routes_keys_and_survives_a_node_restart() {
    let cluster = RedisCluster::start();
    assert_eq!(cluster.nodes().len(), 3);
    assert_eq!(cluster.seeds().split(',').count(), 3);
    // Our slot function agrees with the server's, hash tags included.
    for key in ["a", "{fam}:x", "{fam}:y", "poem:{f1}rt"] {
        let server = cluster.nodes()[0]
            .cmd(&format!("CLUSTER KEYSLOT {key}"))
            .unwrap();
        assert_eq!(
            server.trim(),
            format!(":{}", key_slot(key.as_bytes())),
            "{key}"
        );
    }
    assert_eq!(key_slot(b"{fam}:x"), key_slot(b"{fam}:y"));
    // Each node accepts the keys it serves, and redirects the others.
    let owner = cluster.node_for_key("some-key");
    assert!(cluster.nodes()[owner]
        .cmd("SET some-key 1")
        .unwrap()
        .starts_with("+OK"));
    let other = (owner + 1) % 3;
    assert!(cluster.nodes()[other]
        .cmd("SET some-key 1")
        .unwrap()
        .starts_with("-MOVED"));
    assert_eq!(cluster.dbsize(), 1);

    cluster.kill_node(owner);
    assert!(!cluster.nodes()[owner].is_running());
    cluster.restart_node(owner);
    assert_eq!(
        cluster.node_for_key("some-key"),
        owner,
        "same slots after a restart"
    );
    assert_eq!(cluster.dbsize(), 0);
}

// ---------------------------------------------------------------------------
// The Redis-backed stores, the same tests on each deployment
// ---------------------------------------------------------------------------

use std::{
    future::Future,
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use poem_secure::{
    ApiKeyVerifier, ApiKeys, CredentialError, LimiterUnavailable, PartitionKey, Peek, Rate,
    RateLimiter, RateQuery, RedisApiKeyStore, RedisConnection, RedisRateLimiter, RedisSessionStore,
    RedisTarget, Rotation, Session, SessionStore,
};

const PREFIX: &str = "t:";

/// One of the three deployments.
enum Deployment {
    Plain(RedisServer),
    Tls(RedisServer),
    Cluster(RedisCluster),
}

impl Deployment {
    fn target(&self) -> RedisTarget {
        match self {
            Deployment::Plain(s) => RedisTarget::parse(&s.url()).unwrap(),
            Deployment::Tls(s) => RedisTarget::parse(&s.url())
                .unwrap()
                .ca_file(s.ca_file().unwrap())
                .unwrap(),
            Deployment::Cluster(c) => RedisTarget::parse(&c.seeds()).unwrap(),
        }
    }

    async fn conn(&self) -> RedisConnection {
        self.target().connect(Duration::from_secs(5)).await.unwrap()
    }

    fn dbsize(&self) -> u64 {
        match self {
            Deployment::Plain(s) | Deployment::Tls(s) => s.dbsize(),
            Deployment::Cluster(c) => c.dbsize(),
        }
    }
}

fn session(family: &str) -> Session {
    Session {
        family: family.into(),
        subject: "alice".into(),
        scopes: vec!["me".into()],
        roles: vec!["user".into()],
        permissions: vec![],
    }
}

fn query<'a>(bucket: &'a str, user: &'a str) -> RateQuery<'a> {
    RateQuery {
        bucket,
        key: PartitionKey::User(user),
        rate: Rate::new(3, 60),
        ip: None,
    }
}

/// Bounds a whole test: a hang fails it instead of stalling CI.
async fn bounded<F: Future<Output = ()>>(secs: u64, body: F) {
    tokio::time::timeout(Duration::from_secs(secs), body)
        .await
        .expect("the test did not finish in time");
}

/// Sessions, the denylist, API keys and the rate limiter, as a service
/// uses them, and the number of keys they leave.
async fn the_stores_behave_the_same(d: &Deployment) {
    let conn = d.conn().await;
    let store = RedisSessionStore::new(conn.clone(), PREFIX).unwrap();

    // Rotation, peek, reuse detection, revocation.
    let s = session("fam-a");
    store.create(&s, "h1", 60).await.unwrap();
    assert_eq!(
        store.peek("fam-a", "h1").await.unwrap(),
        Peek::Current(s.clone())
    );
    assert_eq!(
        store.rotate("fam-a", "h1", "h2", 60).await.unwrap(),
        Rotation::Rotated(s.clone())
    );
    assert_eq!(store.peek("fam-a", "h1").await.unwrap(), Peek::NotCurrent);
    assert_eq!(
        store.rotate("fam-a", "h1", "x", 60).await.unwrap(),
        Rotation::Reused
    );
    assert_eq!(
        store.rotate("fam-a", "h2", "h3", 60).await.unwrap(),
        Rotation::Invalid,
        "reuse revoked the family"
    );
    assert_eq!(
        store.rotate("no-such", "h1", "h2", 60).await.unwrap(),
        Rotation::Invalid
    );
    let b = session("fam-b");
    store.create(&b, "g1", 60).await.unwrap();
    store.revoke_family("fam-b").await.unwrap();
    assert_eq!(store.peek("fam-b", "g1").await.unwrap(), Peek::NotCurrent);
    store.revoke_family("never-existed").await.unwrap();

    // The denylist.
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 60;
    store.revoke_access("jti-1", exp).await.unwrap();
    assert!(store.is_access_revoked("jti-1").await.unwrap());
    assert!(!store.is_access_revoked("jti-2").await.unwrap());

    // API keys.
    let keys = ApiKeys::new(RedisApiKeyStore::new(conn.clone(), PREFIX).unwrap());
    let issued = keys.issue("k", "svc", &["stats:read"], None).await.unwrap();
    assert_eq!(keys.verify(&issued.key).await.unwrap().subject(), "svc");
    assert_eq!(keys.list().await.unwrap().len(), 1);
    assert!(keys.revoke(&issued.record.id).await.unwrap());
    assert!(!keys.revoke("no-such-key").await.unwrap());
    assert_eq!(
        keys.verify(&issued.key).await.unwrap_err(),
        CredentialError::Invalid
    );

    // The rate limiter: 3 a minute, then refused.
    let lim = RedisRateLimiter::builder_for(d.target())
        .prefix("t:rl:")
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let q = query("b", "alice");
    for i in 0..3 {
        assert!(lim.check(q).await.unwrap().allowed, "check {i}");
    }
    assert!(!lim.check(q).await.unwrap().allowed);

    // Two families, a jti, an API key and its revocation flag and index,
    // one rate-limit key: nothing else.
    assert_eq!(d.dbsize(), 7);

    // A rotation storm leaves the number of keys unchanged.
    let storm = session("fam-storm");
    store.create(&storm, "r0", 60).await.unwrap();
    let before = d.dbsize();
    for i in 0..100 {
        let r = store
            .rotate("fam-storm", &format!("r{i}"), &format!("r{}", i + 1), 60)
            .await
            .unwrap();
        assert!(matches!(r, Rotation::Rotated(_)), "rotation {i}: {r:?}");
    }
    assert_eq!(d.dbsize(), before, "what is stored per family is bounded");

    // Session-wide revocation: reuse (fam-a) and revocation (fam-b) end
    // every access token naming the family; others are untouched.
    for sid in ["fam-a", "fam-b"] {
        assert!(store.is_token_revoked("any-jti", Some(sid)).await.unwrap());
    }
    assert!(!store
        .is_token_revoked("any-jti", Some("fam-storm"))
        .await
        .unwrap());
    assert!(store
        .is_token_revoked("jti-1", Some("fam-storm"))
        .await
        .unwrap());
    assert!(!store.is_token_revoked("jti-2", None).await.unwrap());

    // A denied jti outlives `exp` by the largest leeway: denied "until
    // exp + 60 s" even for a token that expired 5 s ago.
    let expired = exp - 65;
    store.revoke_access("jti-expired", expired).await.unwrap();
    assert!(store.is_access_revoked("jti-expired").await.unwrap());

    // The absolute lifetime: a store whose sessions end at once refuses
    // to rotate a fresh token.
    let short = RedisSessionStore::new(conn.clone(), PREFIX)
        .unwrap()
        .max_secs(0);
    short.create(&session("fam-end"), "e1", 600).await.unwrap();
    assert_eq!(short.peek("fam-end", "e1").await.unwrap(), Peek::NotCurrent);
    assert_eq!(
        short.rotate("fam-end", "e1", "e2", 600).await.unwrap(),
        Rotation::Invalid
    );
}

#[tokio::test]
async fn the_stores_on_one_plain_server() {
    bounded(60, async {
        the_stores_behave_the_same(&Deployment::Plain(RedisServer::start())).await;
    })
    .await;
}

#[tokio::test]
async fn the_stores_on_a_tls_server() {
    bounded(60, async {
        the_stores_behave_the_same(&Deployment::Tls(RedisServer::start_tls())).await;
    })
    .await;
}

#[tokio::test]
async fn the_stores_on_a_cluster() {
    bounded(60, async {
        the_stores_behave_the_same(&Deployment::Cluster(RedisCluster::start())).await;
    })
    .await;
}

#[tokio::test]
async fn tls_is_verified_against_the_given_ca_or_the_system_roots() {
    bounded(60, async {
        let tls = RedisServer::start_tls();
        // Without the CA: the system's roots do not know the test CA.
        let untrusted = RedisTarget::parse(&tls.url()).unwrap();
        assert!(untrusted.connect(Duration::from_secs(2)).await.is_err());
        // Plain text to a TLS-only port: refused too.
        let plain = RedisTarget::parse(&tls.url().replace("rediss://", "redis://")).unwrap();
        assert!(plain.connect(Duration::from_secs(2)).await.is_err());
        // With it: connected.
        let trusted = untrusted.ca_file(tls.ca_file().unwrap()).unwrap();
        assert!(trusted.connect(Duration::from_secs(2)).await.is_ok());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_concurrent_refresh_race_on_the_cluster_has_exactly_one_winner() {
    bounded(90, async {
        let d = Deployment::Cluster(RedisCluster::start());
        // Several connections, as several instances would have.
        let mut stores = Vec::new();
        for _ in 0..4 {
            stores.push(Arc::new(
                RedisSessionStore::new(d.conn().await, PREFIX).unwrap(),
            ));
        }
        for round in 0..5 {
            let fam = format!("race-{round}");
            stores[0].create(&session(&fam), "first", 60).await.unwrap();
            let tasks: Vec<_> = (0..24)
                .map(|i| {
                    let store = stores[i % stores.len()].clone();
                    let fam = fam.clone();
                    tokio::spawn(async move {
                        store
                            .rotate(&fam, "first", &format!("n{i}"), 60)
                            .await
                            .unwrap()
                    })
                })
                .collect();
            let mut outcomes = Vec::new();
            for t in tasks {
                outcomes.push(t.await.unwrap());
            }
            let winners = outcomes
                .iter()
                .filter(|o| matches!(o, Rotation::Rotated(_)))
                .count();
            assert_eq!(winners, 1, "round {round}: {outcomes:?}");
            assert!(outcomes.contains(&Rotation::Reused));
        }
    })
    .await;
}

// ---------------------------------------------------------------------------
// Outages: refusals while down, no panic, back when Redis is back
// ---------------------------------------------------------------------------

/// Counts of what a traffic loop saw.
#[derive(Default)]
struct Seen {
    ok: AtomicUsize,
    refused: AtomicUsize,
}

/// Until `stop`: rate-limit checks and session peeks on `family`, as fast
/// as they answer; every call must answer within 2 s, Ok or refused.
fn traffic(
    lim: Arc<RedisRateLimiter>,
    store: Arc<RedisSessionStore>,
    family: &'static str,
    stop: Arc<AtomicBool>,
    seen: Arc<Seen>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while !stop.load(Ordering::Relaxed) {
            let q = RateQuery {
                rate: Rate::new(1_000_000, 1),
                ..query("traffic", family)
            };
            let started = Instant::now();
            let rate = lim.check(q).await;
            let peek = store.peek(family, "h").await;
            assert!(
                started.elapsed() < Duration::from_secs(2),
                "a call took {:?}",
                started.elapsed()
            );
            match (rate, peek) {
                (Ok(_), Ok(_)) => seen.ok.fetch_add(1, Ordering::Relaxed),
                (Err(LimiterUnavailable), _) | (_, Err(CredentialError::Unavailable)) => {
                    seen.refused.fetch_add(1, Ordering::Relaxed)
                }
                (_, Err(e)) => panic!("unexpected {e:?}"),
            };
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
}

/// Waits until `probe` succeeds, for at most `secs`.
async fn until_ok<F, Fut>(secs: u64, what: &str, mut probe: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !probe().await {
        assert!(
            Instant::now() < deadline,
            "{what}: not back within {secs} s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn outage_and_recovery(d: &Deployment, family: &'static str, down: impl Fn(), up: impl Fn()) {
    let lim = Arc::new(
        RedisRateLimiter::builder_for(d.target())
            .prefix("t:rl:")
            .timeout(Duration::from_millis(300))
            .build()
            .unwrap(),
    );
    let store = Arc::new(
        RedisSessionStore::new(d.conn().await, PREFIX)
            .unwrap()
            .timeout(Duration::from_millis(300)),
    );
    store.create(&session(family), "h", 600).await.unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Seen::default());
    let tasks: Vec<_> = (0..3)
        .map(|_| {
            traffic(
                lim.clone(),
                store.clone(),
                family,
                stop.clone(),
                seen.clone(),
            )
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(seen.ok.load(Ordering::Relaxed) > 0, "traffic flows");
    assert_eq!(seen.refused.load(Ordering::Relaxed), 0);

    down();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        seen.refused.load(Ordering::Relaxed) > 0,
        "refused while Redis is down"
    );
    // Writes fail closed as well.
    assert_eq!(
        store.rotate(family, "h", "h2", 600).await,
        Err(CredentialError::Unavailable)
    );

    up();
    // Back without a restart of the client: new data is written and read.
    until_ok(15, "sessions", || {
        let store = store.clone();
        async move { store.create(&session(family), "h", 600).await.is_ok() }
    })
    .await;
    assert!(matches!(
        store.rotate(family, "h", "h2", 600).await,
        Ok(Rotation::Rotated(_))
    ));
    let ok = seen.ok.load(Ordering::Relaxed);
    until_ok(15, "traffic", || {
        let seen = seen.clone();
        async move { seen.ok.load(Ordering::Relaxed) > ok + 5 }
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.expect("no panic in the traffic");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tls_server_killed_mid_traffic_refuses_then_recovers() {
    bounded(90, async {
        let d = Deployment::Tls(RedisServer::start_tls());
        let Deployment::Tls(server) = &d else {
            unreachable!()
        };
        outage_and_recovery(&d, "fam-tls", || server.kill(), || server.restart()).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_node_killed_mid_traffic_refuses_then_recovers() {
    bounded(120, async {
        let d = Deployment::Cluster(RedisCluster::start());
        let Deployment::Cluster(cluster) = &d else {
            unreachable!()
        };
        // The node that serves this family's key.
        let family = "fam-cluster";
        let node = cluster.node_for_key(&format!("{PREFIX}fam:{{{family}}}"));
        outage_and_recovery(
            &d,
            family,
            || cluster.kill_node(node),
            || cluster.restart_node(node),
        )
        .await;
    })
    .await;
}
