//! Redis-backed paths beside their in-memory counterparts, in one run:
//! revocation look-ups per second with 1, 8 and 64 concurrent callers, and the
//! whole guard (HS256 + `jti` revocation check) per request with each store.
//! Starts its own redis-server on a random loopback port.
//!
//!   cargo bench --bench redis_paths

#[path = "../tests/support/redis_server.rs"]
mod redis_server;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use poem::Request;
use poem_secure::{
    testing::token, AuthKinds, JwtConfig, MemorySessionStore, Policy, RedisSessionStore, Security,
    SessionStore,
};

static POLICY: Policy = Policy::secured("bench::any").with_auth(AuthKinds::BEARER);

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
        security.authorize(&POLICY, &req).await.unwrap();
    }
    let n = 20_000u32;
    let start = Instant::now();
    for _ in 0..n {
        security.authorize(&POLICY, &req).await.unwrap();
    }
    start.elapsed() / n
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
}
