//! The rate-limit hook and the embedded in-memory GCRA limiter.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use crate::{credentials::BoxFuture, Rate};

/// The outcome of one rate-limit check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateDecision {
    /// Admitted.
    Allowed,
    /// Refused; the next admission is possible after this long.
    Limited {
        /// Time until the next request would be admitted.
        retry_after: Duration,
    },
}

/// The limiter unreachable (e.g. Redis down): refused with 503 unless the
/// limiter itself is configured to fail open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimiterUnavailable;

/// Counts requests per (declaration, key) and decides admission.
pub trait RateLimiter: Send + Sync + 'static {
    /// Checks and records one request of `key` against `rate` in the bucket
    /// of the declaration `bucket`.
    fn check<'a>(
        &'a self,
        bucket: &'a str,
        key: &'a str,
        rate: Rate,
    ) -> BoxFuture<'a, Result<RateDecision, LimiterUnavailable>>;
}

/// The embedded in-memory GCRA limiter: exact, O(1) per key.
///
/// ```
/// use secure_runtime::{MemoryRateLimiter, Rate, RateDecision};
/// let lim = MemoryRateLimiter::new();
/// let r = Rate { count: 2, period_secs: 60, burst: None };
/// assert_eq!(lim.check_now("h", "ip1", r), RateDecision::Allowed);
/// assert_eq!(lim.check_now("h", "ip1", r), RateDecision::Allowed);
/// assert!(matches!(lim.check_now("h", "ip1", r), RateDecision::Limited { .. }));
/// assert_eq!(lim.check_now("h", "ip2", r), RateDecision::Allowed); // another key
/// ```
pub struct MemoryRateLimiter {
    start: Instant,
    // (bucket, key) -> theoretical arrival time in nanoseconds since `start`.
    tat: Mutex<HashMap<(String, String), u64>>,
}

impl Default for MemoryRateLimiter {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryRateLimiter {
    /// An empty limiter.
    pub fn new() -> Self {
        MemoryRateLimiter {
            start: Instant::now(),
            tat: Mutex::new(HashMap::new()),
        }
    }

    /// The synchronous check behind [`RateLimiter::check`].
    pub fn check_now(&self, bucket: &str, key: &str, rate: Rate) -> RateDecision {
        let now = self.start.elapsed().as_nanos() as u64;
        let interval = rate.emission_interval_nanos().max(1);
        let tolerance = interval.saturating_mul(u64::from(rate.burst().saturating_sub(1)));
        // A poisoned lock only means another thread panicked mid-update; the map
        // of u64s is still consistent, so keep serving.
        let mut map = self.tat.lock().unwrap_or_else(|p| p.into_inner());
        let k = (bucket.to_owned(), key.to_owned());
        let tat = map.get(&k).copied().unwrap_or(now).max(now);
        if tat - now > tolerance {
            return RateDecision::Limited {
                retry_after: Duration::from_nanos(tat - now - tolerance),
            };
        }
        map.insert(k, tat + interval);
        RateDecision::Allowed
    }
}

impl RateLimiter for MemoryRateLimiter {
    fn check<'a>(
        &'a self,
        bucket: &'a str,
        key: &'a str,
        rate: Rate,
    ) -> BoxFuture<'a, Result<RateDecision, LimiterUnavailable>> {
        let d = self.check_now(bucket, key, rate);
        Box::pin(async move { Ok(d) })
    }
}
