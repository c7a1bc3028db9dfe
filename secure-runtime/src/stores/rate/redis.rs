//! The Redis-backed GCRA limiter (feature `redis`), for several instances of
//! one service sharing their limits.

use std::{
    fmt,
    sync::{
        atomic::{AtomicU64, AtomicUsize, Ordering},
        OnceLock,
    },
    time::{Duration, Instant},
};

use ::redis::Script;
use sha2::{Digest, Sha256};

use super::{
    gcra::{refuse_all, Gcra},
    ManualClock,
};
use crate::model::rate::{LimiterUnavailable, RateLimiter, RateOutcome, RateQuery};
use crate::{
    model::answer::Answer,
    model::config::ConfigError,
    stores::redis_conn::{RedisConnection, RedisTarget},
};

const MICROS: u64 = 1_000_000;

/// GCRA in one atomic round trip, timed by the server's clock (`TIME`), so
/// that instances with skewed clocks still share one schedule. Times are in
/// microseconds; every value stays below 2^53, exact in a Lua number.
///
/// KEYS[1] the key; ARGV: interval, tolerance, "check" | "refund", and the
/// current time or "" for the server's. Returns {admitted, tat, now}.
const GCRA_LUA: &str = r"
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local now
if ARGV[4] == '' then
  if redis.replicate_commands then redis.replicate_commands() end
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
else
  now = tonumber(ARGV[4])
end
local stored = redis.call('GET', KEYS[1])
local tat = now
if stored then
  tat = math.max(tonumber(stored) or now, now)
end
if ARGV[3] == 'refund' then
  if not stored then return {1, 0, now} end
  tat = tat - interval
  if tat <= now then
    redis.call('DEL', KEYS[1])
    return {1, 0, now}
  end
  redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000))
  return {1, tat, now}
end
if tat - now > tolerance then
  return {0, tat, now}
end
tat = tat + interval
redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000))
return {1, tat, now}
";

/// The rate limiter for several instances of one service: GCRA in Redis,
/// exact across instances.
///
/// - **One atomic round trip per check**: a Lua script (`EVALSHA`) reads,
///   decides and writes the key's state, timed by the Redis server's clock.
/// - **Deployments**: one server, TLS (`rediss://`) or a Redis Cluster
///   (see [`RedisTarget`]); each key is one slot, so the script runs on the
///   node that serves it.
/// - **Connections**: a small pool (default 2) of multiplexed,
///   auto-reconnecting connections ([`RedisConnection`]), opened lazily, so
///   a service starts even while Redis is down and recovers without a
///   restart when it (or a failed-over cluster node) returns.
/// - **Bounded**: every call is bounded by [`timeout`](RedisRateLimiterBuilder::timeout)
///   (default 100 ms). An error or timeout refuses the request with 503
///   (fail closed, the default) or, with
///   [`fail_open(true)`](RedisRateLimiterBuilder::fail_open), admits it and
///   logs an error (at most one line a second, with a count of the others).
/// - **Keys**: `{prefix}{bucket}:{digest}` where the digest is the first 128
///   bits of SHA-256 of the partition key (no user names or IPs stored in
///   clear), with a TTL equal to the time until the key is idle again, so
///   Redis holds only active keys.
///
/// Rates faster than one request per microsecond per key are rounded down to
/// that.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use secure_runtime::{RedisRateLimiter, Security};
///
/// let limiter = RedisRateLimiter::builder("redis://127.0.0.1:6379/")
///     .prefix("notes-api:rl:")
///     .timeout(Duration::from_millis(50))
///     .build()?;
/// let security = Security::builder().rate_limiter(limiter).build()?;
/// # let _ = security; Ok(()) }
/// ```
pub struct RedisRateLimiter {
    target: RedisTarget,
    pool: Box<[OnceLock<RedisConnection>]>,
    next: AtomicUsize,
    script: Script,
    prefix: String,
    timeout: Duration,
    fail_open: bool,
    clock: Option<ManualClock>,
    started: Instant,
    last_report: AtomicU64,
    suppressed: AtomicU64,
}

impl fmt::Debug for RedisRateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisRateLimiter")
            .field("prefix", &self.prefix)
            .field("pool", &self.pool.len())
            .field("timeout", &self.timeout)
            .field("fail_open", &self.fail_open)
            .finish_non_exhaustive()
    }
}

/// Configures a [`RedisRateLimiter`]; see [`RedisRateLimiter::builder`].
#[derive(Debug, Clone)]
pub struct RedisRateLimiterBuilder {
    target: Result<RedisTarget, ConfigError>,
    prefix: String,
    timeout: Duration,
    fail_open: bool,
    pool_size: usize,
    clock: Option<ManualClock>,
}

impl RedisRateLimiter {
    /// Starts a configuration for the Redis at `url`: one server
    /// (`redis://[user:password@]host[:port][/db]`), TLS (`rediss://`), or
    /// the comma-separated seed nodes of a cluster; see [`RedisTarget`]. A
    /// malformed `url` is reported by [`build`](RedisRateLimiterBuilder::build).
    pub fn builder(url: impl AsRef<str>) -> RedisRateLimiterBuilder {
        Self::builder_with(RedisTarget::parse(url.as_ref()))
    }

    /// Starts a configuration for `target` (e.g. with a CA file).
    ///
    /// ```no_run
    /// # fn demo() -> Result<(), secure_runtime::ConfigError> {
    /// use secure_runtime::{RedisRateLimiter, RedisTarget};
    /// let target = RedisTarget::parse("rediss://redis.internal:6380/")?.ca_file("/etc/redis-ca.pem")?;
    /// let limiter = RedisRateLimiter::builder_for(target).build()?;
    /// # let _ = limiter; Ok(()) }
    /// ```
    pub fn builder_for(target: RedisTarget) -> RedisRateLimiterBuilder {
        Self::builder_with(Ok(target))
    }

    fn builder_with(target: Result<RedisTarget, ConfigError>) -> RedisRateLimiterBuilder {
        RedisRateLimiterBuilder {
            target,
            prefix: "poem-secure:rl:".to_owned(),
            timeout: Duration::from_millis(100),
            fail_open: false,
            pool_size: 2,
            clock: None,
        }
    }

    /// The Redis key of a query (for inspection in tests and operations).
    pub fn key_of(&self, q: &RateQuery<'_>) -> String {
        let mut buf = Vec::with_capacity(64);
        q.key.encode(&mut buf);
        let digest = Sha256::digest(&buf);
        let mut key = String::with_capacity(self.prefix.len() + q.bucket.len() + 33);
        key.push_str(&self.prefix);
        key.push_str(q.bucket);
        key.push(':');
        for b in &digest[..16] {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            key.push(char::from(HEX[usize::from(b >> 4)]));
            key.push(char::from(HEX[usize::from(b & 15)]));
        }
        key
    }

    fn connection(&self) -> Result<RedisConnection, String> {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.pool.len();
        if let Some(c) = self.pool[i].get() {
            return Ok(c.clone());
        }
        let c = self
            .target
            .connect_lazy(self.timeout)
            .map_err(|e| e.to_string())?;
        // A concurrent first call may have won the race: use its connection.
        Ok(self.pool[i].get_or_init(|| c).clone())
    }

    async fn eval(&self, key: String, g: &Gcra, op: &'static str) -> Result<[u64; 3], String> {
        let mut conn = self.connection()?;
        let now = self
            .clock
            .as_ref()
            .map(|c| (u64::try_from(c.now().as_micros()).unwrap_or(u64::MAX)).to_string())
            .unwrap_or_default();
        let mut inv = self.script.key(key);
        inv.arg(g.interval).arg(g.tolerance).arg(op).arg(now);
        match tokio::time::timeout(self.timeout, inv.invoke_async::<Vec<i64>>(&mut conn)).await {
            Err(_) => Err(format!("no answer within {:?}", self.timeout)),
            // The error's kind and code only: a message could quote a URL.
            Ok(Err(e)) => Err(format!("{:?} {}", e.kind(), e.code().unwrap_or_default())),
            Ok(Ok(v)) => match v[..] {
                [a, t, n] => Ok([a, t, n].map(|x| u64::try_from(x).unwrap_or(0))),
                _ => Err("unexpected script reply".to_owned()),
            },
        }
    }

    /// Logs a failure loudly, but at most once a second.
    fn report(&self, error: &str) {
        let now = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let last = self.last_report.load(Ordering::Relaxed);
        if (last == 0 || now.saturating_sub(last) >= 1000)
            && self
                .last_report
                .compare_exchange(last, now.max(1), Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            let suppressed = self.suppressed.swap(0, Ordering::Relaxed);
            if self.fail_open {
                tracing::error!(target: crate::AUDIT_TARGET, event = "rate_limiter_unavailable",
                    fail_open = true, suppressed, error,
                    "Redis rate limiter unavailable: ADMITTING requests without rate limits (fail open)");
            } else {
                tracing::error!(target: crate::AUDIT_TARGET, event = "rate_limiter_unavailable",
                    fail_open = false, suppressed, error,
                    "Redis rate limiter unavailable: refusing rate-limited requests with 503 (fail closed)");
            }
        } else {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
        }
    }

    async fn check_async(&self, q: &RateQuery<'_>) -> Result<RateOutcome, LimiterUnavailable> {
        let Some(g) = Gcra::new(q.rate, MICROS) else {
            return Ok(refuse_all(q.rate));
        };
        match self.eval(self.key_of(q), &g, "check").await {
            Ok([admitted, tat, now]) => {
                let ahead = tat.saturating_sub(now);
                Ok(if admitted == 1 {
                    let (remaining, wait) = g.status(ahead);
                    RateOutcome {
                        allowed: true,
                        remaining,
                        reset_after: g.duration(wait),
                    }
                } else {
                    RateOutcome {
                        allowed: false,
                        remaining: 0,
                        reset_after: g.duration(ahead.saturating_sub(g.tolerance).max(1)),
                    }
                })
            }
            Err(e) => {
                self.report(&e);
                if self.fail_open {
                    Ok(RateOutcome {
                        allowed: true,
                        remaining: q.rate.burst().saturating_sub(1),
                        reset_after: g.duration(g.interval),
                    })
                } else {
                    Err(LimiterUnavailable)
                }
            }
        }
    }

    async fn refund_async(&self, q: &RateQuery<'_>) -> Result<(), LimiterUnavailable> {
        let Some(g) = Gcra::new(q.rate, MICROS) else {
            return Ok(());
        };
        match self.eval(self.key_of(q), &g, "refund").await {
            Ok(_) => Ok(()),
            Err(e) => {
                self.report(&e);
                Err(LimiterUnavailable)
            }
        }
    }
}

impl RedisRateLimiterBuilder {
    /// The prefix of every key (default `poem-secure:rl:`).
    #[must_use]
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The most a check may take, connecting included (default 100 ms).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// When Redis cannot be reached: `false` (the default) refuses
    /// rate-limited requests with 503; `true` admits them without a limit
    /// and logs an error. Fail open only where availability matters more
    /// than the limit (never for login protection).
    #[must_use]
    pub fn fail_open(mut self, fail_open: bool) -> Self {
        self.fail_open = fail_open;
        self
    }

    /// The number of multiplexed connections (default 2, at least 1).
    #[must_use]
    pub fn pool_size(mut self, n: usize) -> Self {
        self.pool_size = n.max(1);
        self
    }

    /// Times checks with `clock` instead of the server's clock (tests only:
    /// every instance sharing the keys must then share the clock).
    #[must_use]
    pub fn clock(mut self, clock: ManualClock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Validates the configuration. No connection is made until the first
    /// check.
    ///
    /// # Errors
    /// A [`ConfigError`] for a malformed URL or a zero timeout.
    pub fn build(self) -> Result<RedisRateLimiter, ConfigError> {
        let target = self.target?;
        if self.timeout.is_zero() {
            return Err(ConfigError::new(
                "the Redis rate limiter timeout must not be zero",
            ));
        }
        Ok(RedisRateLimiter {
            target,
            pool: (0..self.pool_size).map(|_| OnceLock::new()).collect(),
            next: AtomicUsize::new(0),
            script: Script::new(GCRA_LUA),
            prefix: self.prefix,
            timeout: self.timeout,
            fail_open: self.fail_open,
            clock: self.clock,
            started: Instant::now(),
            last_report: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        })
    }
}

impl RateLimiter for RedisRateLimiter {
    fn check<'a>(
        &'a self,
        query: RateQuery<'a>,
    ) -> Answer<'a, Result<RateOutcome, LimiterUnavailable>> {
        Answer::later(async move { self.check_async(&query).await })
    }

    fn refund<'a>(&'a self, query: RateQuery<'a>) -> Answer<'a, Result<(), LimiterUnavailable>> {
        Answer::later(async move { self.refund_async(&query).await })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{model::rate::PartitionKey, Rate};

    #[test]
    fn keys_are_namespaced_digests() {
        let lim = RedisRateLimiter::builder("redis://127.0.0.1:1/")
            .prefix("app:")
            .build()
            .unwrap();
        let q = RateQuery {
            bucket: "b",
            key: PartitionKey::User("alice"),
            rate: Rate::new(1, 1),
            ip: None,
        };
        let k = lim.key_of(&q);
        assert!(k.starts_with("app:b:"));
        assert_eq!(k.len(), "app:b:".len() + 32);
        assert!(!k.contains("alice"));
        let other = RateQuery {
            key: PartitionKey::ApiKey("alice"),
            ..q
        };
        assert_ne!(lim.key_of(&other), k);
    }

    #[test]
    fn bad_configuration_is_refused() {
        assert!(RedisRateLimiter::builder("not a url").build().is_err());
        assert!(RedisRateLimiter::builder("redis://127.0.0.1/")
            .timeout(Duration::ZERO)
            .build()
            .is_err());
    }

    #[tokio::test]
    async fn unreachable_redis_fails_closed_within_the_timeout() {
        // Port 1 on loopback: connection refused (or nothing listening).
        let lim = RedisRateLimiter::builder("redis://127.0.0.1:1/")
            .timeout(Duration::from_millis(200))
            .build()
            .unwrap();
        let q = RateQuery {
            bucket: "b",
            key: PartitionKey::User("u"),
            rate: Rate::new(1, 1),
            ip: None,
        };
        let r = tokio::time::timeout(Duration::from_secs(5), lim.check(q)).await;
        assert_eq!(r, Ok(Err(LimiterUnavailable)));
    }

    #[test]
    fn fail_open_admits_and_logs_an_error() {
        let open = RedisRateLimiter::builder("redis://127.0.0.1:1/")
            .timeout(Duration::from_millis(200))
            .fail_open(true)
            .build()
            .unwrap();
        let q = RateQuery {
            bucket: "b",
            key: PartitionKey::User("u"),
            rate: Rate::new(1, 1),
            ip: None,
        };
        let log = crate::model::audit::capture::Capture::default();
        let r = log.run(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(async {
                    let mut out = Vec::new();
                    for _ in 0..3 {
                        out.push(tokio::time::timeout(Duration::from_secs(5), open.check(q)).await);
                    }
                    out
                })
        });
        assert!(r.iter().all(|r| matches!(r, Ok(Ok(d)) if d.allowed)));
        let events = log.events();
        assert!(!events.is_empty(), "the outage is logged");
        assert!(events
            .iter()
            .all(|e| *e == (tracing::Level::ERROR, "rate_limiter_unavailable".to_owned())));
    }
}
