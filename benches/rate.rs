//! Rate-limit checks (results in BENCHMARKS.md).
//!
//! - `memory_check`: ns per in-memory check, one hot key and 1M distinct
//!   keys, side by side with `governor`'s keyed limiter (every check
//!   admitted and recorded), keyed by the client's `String` alone and by
//!   `(bucket, String)` — the same work as poem-secure, which keeps every
//!   declaration's bucket apart in one limiter.
//! - `redis_check`: checks/s with 1, 8 and 64 concurrent
//!   callers against a `redis-server` the bench starts on a random loopback
//!   port.
//!
//! ```text
//! cargo bench -p poem-secure-benches --bench rate -- --quick
//! ```

use std::{
    hint::black_box,
    num::NonZeroU32,
    sync::atomic::{AtomicUsize, Ordering},
    time::Duration,
};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use secure_runtime::{MemoryRateLimiter, PartitionKey, Rate, RateQuery};

/// High enough that every check is admitted (both limiters then do the full
/// read-decide-write), at one key or a million.
const RATE: Rate = Rate::new(1_000_000_000, 1).with_burst(1_000_000_000);

fn governor_quota() -> governor::Quota {
    let n = NonZeroU32::new(1_000_000_000).unwrap_or(NonZeroU32::MIN);
    governor::Quota::per_second(n).allow_burst(n)
}

fn query(user: &str) -> RateQuery<'_> {
    RateQuery {
        bucket: "bench::handler",
        key: PartitionKey::User(user),
        rate: RATE,
        ip: None,
    }
}

const DISTINCT: usize = 1_000_000;

fn memory_check(c: &mut Criterion) {
    let mut g = c.benchmark_group("memory_check");
    g.measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1))
        .throughput(Throughput::Elements(1));

    let hot = "user:alice".to_owned();
    let ours = MemoryRateLimiter::new();
    g.bench_function(BenchmarkId::new("poem-secure", "hot key"), |b| {
        b.iter(|| black_box(ours.check_now(&query(black_box(&hot)))))
    });
    let gov = governor::RateLimiter::keyed(governor_quota());
    g.bench_function(BenchmarkId::new("governor", "hot key"), |b| {
        b.iter(|| black_box(gov.check_key(black_box(&hot)).is_ok()))
    });
    // The same work as poem-secure's: one limiter keyed by (bucket, key).
    let gov_pair = governor::RateLimiter::keyed(governor_quota());
    let pair = ("bench::handler", hot.clone());
    g.bench_function(BenchmarkId::new("governor (bucket, key)", "hot key"), |b| {
        b.iter(|| black_box(gov_pair.check_key(black_box(&pair)).is_ok()))
    });

    let keys: Vec<String> = (0..DISTINCT).map(|i| format!("user:{i}")).collect();
    let ours = MemoryRateLimiter::with_max_keys(2 * DISTINCT);
    let gov = governor::RateLimiter::keyed(governor_quota());
    // Both start with all the keys present: the steady state of a busy
    // service, measured as cycles over the million keys.
    for k in &keys {
        assert!(ours.check_now(&query(k)).allowed);
        assert!(gov.check_key(k).is_ok());
    }
    let next = AtomicUsize::new(0);
    g.bench_function(BenchmarkId::new("poem-secure", "1M keys"), |b| {
        b.iter(|| {
            let i = next.fetch_add(1, Ordering::Relaxed) % DISTINCT;
            black_box(ours.check_now(&query(&keys[i])))
        })
    });
    g.bench_function(BenchmarkId::new("governor", "1M keys"), |b| {
        b.iter(|| {
            let i = next.fetch_add(1, Ordering::Relaxed) % DISTINCT;
            black_box(gov.check_key(&keys[i]).is_ok())
        })
    });
    drop(gov);
    let pairs: Vec<(&str, String)> = keys.iter().map(|k| ("bench::handler", k.clone())).collect();
    drop(keys);
    let gov_pair = governor::RateLimiter::keyed(governor_quota());
    for p in &pairs {
        assert!(gov_pair.check_key(p).is_ok());
    }
    g.bench_function(BenchmarkId::new("governor (bucket, key)", "1M keys"), |b| {
        b.iter(|| {
            let i = next.fetch_add(1, Ordering::Relaxed) % DISTINCT;
            black_box(gov_pair.check_key(&pairs[i]).is_ok())
        })
    });
    assert_eq!(ours.evicted_live_keys(), 0);
    g.finish();
}

#[path = "../tests/support/redis_server.rs"]
mod redis_server;

fn redis_check(c: &mut Criterion) {
    use std::{sync::Arc, time::Instant};

    use secure_runtime::{RateLimiter, RedisRateLimiter};

    let server = redis_server::RedisServer::start();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => panic!("tokio runtime: {e}"),
    };
    let limiter = Arc::new(
        match RedisRateLimiter::builder(server.url())
            .timeout(Duration::from_secs(5))
            .build()
        {
            Ok(l) => l,
            Err(e) => panic!("{e}"),
        },
    );
    let mut g = c.benchmark_group("redis_check");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1))
        .throughput(Throughput::Elements(1));
    for callers in [1usize, 8, 64] {
        g.bench_function(BenchmarkId::new("callers", callers), |b| {
            b.to_async(&rt).iter_custom(|iters| {
                let limiter = limiter.clone();
                async move {
                    let per = iters.div_ceil(callers as u64);
                    let start = Instant::now();
                    let tasks: Vec<_> = (0..callers)
                        .map(|t| {
                            let limiter = limiter.clone();
                            tokio::spawn(async move {
                                let user = format!("caller-{t}");
                                for _ in 0..per {
                                    let r = limiter.check(query(&user)).await;
                                    assert!(matches!(r, Ok(d) if d.allowed));
                                }
                            })
                        })
                        .collect();
                    for t in tasks {
                        assert!(t.await.is_ok());
                    }
                    // Time per check: the batch ran `per × callers` checks.
                    start
                        .elapsed()
                        .mul_f64(iters as f64 / (per * callers as u64) as f64)
                }
            })
        });
    }
    g.finish();
    drop(server);
}

criterion_group!(benches, memory_check, redis_check);
criterion_main!(benches);
