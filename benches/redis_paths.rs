//! Redis-backed paths beside their in-memory counterparts, in one run:
//! revocation look-ups per second with 1, 8 and 64 concurrent callers, and the
//! whole guard (HS256 + `jti` revocation check) per request with each store;
//! then, on one server, TLS and a three-master cluster: the commands a client
//! sends per operation (counted with `MONITOR`, which marks the ones a Lua
//! script runs; one command is one round trip)
//! and operations per second with 8 callers.
//! Starts its own Redis deployments on random loopback ports.
//!
//!   cargo bench -p poem-secure-benches --bench redis_paths

mod common;
#[path = "../tests/support/redis_server.rs"]
mod redis_server;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use common::ANY_BEARER;
use poem::Request;
use poem_secure::{
    testing::token, JwtConfig, MemorySessionStore, PartitionKey, Rate, RateLimiter, RateQuery,
    RedisRateLimiter, RedisSessionStore, RedisTarget, Rotation, Security, Session, SessionStore,
};
use redis_server::{RedisCluster, RedisServer};

const WINDOW: Duration = Duration::from_secs(3);

async fn lookups_per_sec(store: Arc<dyn SessionStore>, callers: usize) -> f64 {
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    store.revoke_access("revoked-jti", exp).await.unwrap();
    let start = Instant::now();
    let tasks: Vec<_> = (0..callers)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut n = 0u64;
                let jti = format!("live-jti-{i}");
                while start.elapsed() < WINDOW {
                    assert!(!store.is_access_revoked(&jti).await.unwrap());
                    n += 1;
                }
                n
            })
        })
        .collect();
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    total as f64 / start.elapsed().as_secs_f64()
}

async fn guard_latency(store: Arc<dyn SessionStore>) -> Duration {
    let security = Security::builder()
        .jwt(
            JwtConfig::hs256([4u8; 32])
                .unwrap()
                .issuer("b")
                .audience("a"),
        )
        .sessions(store)
        .build()
        .unwrap();
    let jwt = token(&security, "alice").expires_in(3600).sign();
    let req = Request::builder()
        .header("authorization", format!("Bearer {jwt}"))
        .finish();
    for _ in 0..1000 {
        security.authorize(&ANY_BEARER, &req).await.unwrap();
    }
    let n = 20_000u32;
    let start = Instant::now();
    for _ in 0..n {
        security.authorize(&ANY_BEARER, &req).await.unwrap();
    }
    start.elapsed() / n
}

fn session(family: &str) -> Session {
    Session {
        family: family.into(),
        subject: "alice".into(),
        scopes: vec![],
        roles: vec![],
        permissions: vec![],
    }
}

/// What one deployment is measured with.
struct Subject {
    limiter: Arc<RedisRateLimiter>,
    store: Arc<RedisSessionStore>,
}

async fn subject(target: RedisTarget) -> Subject {
    let limiter = RedisRateLimiter::builder_for(target.clone())
        .prefix("bench:rl:")
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let conn = target.connect(Duration::from_secs(5)).await.unwrap();
    let store = RedisSessionStore::new(conn, "bench:")
        .unwrap()
        .timeout(Duration::from_secs(2));
    Subject {
        limiter: Arc::new(limiter),
        store: Arc::new(store),
    }
}

const CALLERS: usize = 8;

/// One operation of a deployment's bench, by caller `i` and iteration `n`.
#[derive(Clone, Copy)]
enum Op {
    RateCheck,
    RevocationCheck,
    Rotation,
}

async fn run_op(s: &Subject, op: Op, i: usize, n: u64) {
    match op {
        Op::RateCheck => {
            let user = format!("user-{i}");
            let q = RateQuery {
                bucket: "bench",
                key: PartitionKey::User(&user),
                rate: Rate::new(1_000_000, 1),
                ip: None,
            };
            assert!(s.limiter.check(q).await.unwrap().allowed);
        }
        Op::RevocationCheck => {
            let sid = format!("fam-{i}");
            assert!(!s.store.is_token_revoked("jti", Some(&sid)).await.unwrap());
        }
        Op::Rotation => {
            let fam = format!("fam-{i}");
            let r = s
                .store
                .rotate(&fam, &format!("h{n}"), &format!("h{}", n + 1), 600)
                .await
                .unwrap();
            assert!(matches!(r, Rotation::Rotated(_)));
        }
    }
}

/// Creates each caller's family with its first token "h0".
async fn reset_families(s: &Subject) {
    for i in 0..CALLERS {
        s.store
            .create(&session(&format!("fam-{i}")), "h0", 600)
            .await
            .unwrap();
    }
}

async fn ops_per_sec(s: &Arc<Subject>, op: Op) -> f64 {
    reset_families(s).await;
    let start = Instant::now();
    let tasks: Vec<_> = (0..CALLERS)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move {
                let mut n = 0u64;
                while start.elapsed() < WINDOW {
                    run_op(&s, op, i, n).await;
                    n += 1;
                }
                n
            })
        })
        .collect();
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    total as f64 / start.elapsed().as_secs_f64()
}

/// Round trips per operation on a plain server: the commands its clients
/// sent while `N` operations ran, as `MONITOR` saw them (commands run by a
/// Lua script are marked `lua` there, and not counted).
fn round_trips(rt: &tokio::runtime::Runtime, server: &RedisServer, s: &Subject, op: Op) -> f64 {
    const N: u64 = 200;
    rt.block_on(async {
        reset_families(s).await;
        // Warm up: scripts loaded, connections open.
        run_op(s, op, 0, 0).await;
        run_op(s, op, 0, 1).await;
    });
    let log = std::env::temp_dir().join(format!("bench-monitor-{}.log", std::process::id()));
    let mut monitor = std::process::Command::new("redis-cli")
        .args(["-p", &server.port().to_string(), "monitor"])
        .stdout(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    rt.block_on(async {
        for n in 2..N + 2 {
            run_op(s, op, 0, n).await;
        }
    });
    std::thread::sleep(Duration::from_millis(300));
    let _ = monitor.kill();
    let _ = monitor.wait();
    let text = std::fs::read_to_string(&log).unwrap();
    let _ = std::fs::remove_file(&log);
    let sent = text
        .lines()
        .filter(|l| l.contains("] \"") && !l.contains(" lua]"))
        .count();
    sent as f64 / N as f64
}

fn deployments(rt: &tokio::runtime::Runtime) {
    let plain = RedisServer::start();
    let tls = RedisServer::start_tls();
    let cluster = RedisCluster::start();
    let subjects = rt.block_on(async {
        vec![
            (
                "one server",
                Arc::new(subject(RedisTarget::parse(&plain.url()).unwrap()).await),
            ),
            (
                "TLS",
                Arc::new(
                    subject(
                        RedisTarget::parse(&tls.url())
                            .unwrap()
                            .ca_file(tls.ca_file().unwrap())
                            .unwrap(),
                    )
                    .await,
                ),
            ),
            (
                "cluster (3 masters)",
                Arc::new(subject(RedisTarget::parse(&cluster.seeds()).unwrap()).await),
            ),
        ]
    });
    let ops = [
        ("rate-limit check", Op::RateCheck),
        ("revocation check (jti + sid)", Op::RevocationCheck),
        ("refresh rotation", Op::Rotation),
    ];
    println!();
    println!("| client commands (= round trips) per operation, one server (MONITOR) | commands |");
    println!("|---|---|");
    for (name, op) in ops {
        println!(
            "| {name} | {:.2} |",
            round_trips(rt, &plain, &subjects[0].1, op)
        );
    }
    println!();
    println!("| operations/s, {CALLERS} callers | one server | TLS | cluster (3 masters) |");
    println!("|---|---|---|---|");
    for (name, op) in ops {
        let mut row = format!("| {name} |");
        for (_, s) in &subjects {
            row.push_str(&format!(" {:.0} |", rt.block_on(ops_per_sec(s, op))));
        }
        println!("{row}");
    }
}

fn main() {
    let redis = redis_server::RedisServer::start();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let memory: Arc<dyn SessionStore> = Arc::new(MemorySessionStore::new());
        let remote: Arc<dyn SessionStore> = Arc::new(
            RedisSessionStore::connect(&redis.url(), "bench:")
                .await
                .unwrap()
                .timeout(Duration::from_secs(2)),
        );
        println!("| revocation look-ups/s | 1 caller | 8 callers | 64 callers |");
        println!("|---|---|---|---|");
        for (name, store) in [("in-memory", &memory), ("Redis (loopback)", &remote)] {
            let mut row = format!("| {name} |");
            for callers in [1, 8, 64] {
                row.push_str(&format!(
                    " {:.0} |",
                    lookups_per_sec(store.clone(), callers).await
                ));
            }
            println!("{row}");
        }
        let m = guard_latency(memory.clone()).await;
        let r = guard_latency(remote.clone()).await;
        println!();
        println!("| guard per request (HS256 + jti check) | in-memory | Redis | added by Redis |");
        println!("|---|---|---|---|");
        println!(
            "| mean, 1 caller | {:.2} µs | {:.2} µs | {:.2} µs |",
            m.as_secs_f64() * 1e6,
            r.as_secs_f64() * 1e6,
            (r.as_secs_f64() - m.as_secs_f64()) * 1e6
        );
    });
    deployments(&rt);
}
