//! The embedded in-memory GCRA limiter.

use std::{
    cell::Cell,
    collections::HashMap,
    fmt,
    hash::{BuildHasherDefault, Hasher, RandomState},
    sync::{
        atomic::{AtomicU64, Ordering},
        Mutex, MutexGuard, PoisonError,
    },
};

use super::{
    gcra::{refuse_all, Gcra},
    Clock, ManualClock,
};
use crate::model::rate::{fingerprint, LimiterUnavailable, RateLimiter, RateOutcome, RateQuery};
use crate::{model::answer::Answer, Rate};

const NANOS: u64 = 1_000_000_000;
const MAX_SHARDS: usize = 64;

/// The embedded rate limiter: GCRA in memory, exact, O(1) per check, sharded
/// and memory-bounded. The default of [`crate::Security`].
///
/// # Memory bound
///
/// The limiter never holds more than `max_keys` keys (default
/// [`DEFAULT_MAX_KEYS`](Self::DEFAULT_MAX_KEYS) = 1,048,576), however many
/// distinct keys it sees. A key costs 16 bytes (a 64-bit keyed fingerprint
/// of bucket and key, and a 64-bit timestamp), never the key text; with the
/// hash tables' headroom (17 bytes a slot, tables never above 4 × the keys
/// they may hold, see [`capacity`](Self::capacity)) the whole limiter stays
/// under **68 bytes × `max_keys`** at the default — 68 MiB — and under about
/// 78 bytes × `max_keys` for any other bound.
///
/// The bound is enforced when a key is added to a full shard (there are up to
/// 64 shards of `max_keys / shards` keys):
///
/// 1. keys whose GCRA state has expired are dropped — losslessly, since an
///    idle key behaves exactly like a key never seen;
/// 2. if the shard is still full, the eighth of its keys closest to idle
///    (earliest theoretical arrival time) are dropped, so a spray of fresh
///    keys evicts other fresh keys before the state of a client that is
///    being throttled. Each such eviction is counted
///    ([`evicted_live_keys`](Self::evicted_live_keys)) and logged (at most
///    once every 10 s).
///
/// So limits are exact while fewer than about `max_keys` keys are active at
/// once (a key stays active for at most `burst × period / count` after its
/// last admission); beyond that, the keys with the least recorded usage are
/// forgotten first.
///
/// # Time
///
/// Admissions read the system's monotonic clock once per check (no
/// background thread); limits and `Retry-After` are exact.
/// [`with_clock`](Self::with_clock) replaces it with a [`ManualClock`] in
/// tests.
///
/// Two keys share a counter only if their 64-bit SipHash fingerprints
/// (keyed with a random per-process key) collide: with `n` keys stored,
/// probability `n / 2^64` per new key.
///
/// ```
/// use secure_runtime::{MemoryRateLimiter, PartitionKey, Rate, RateQuery};
/// let lim = MemoryRateLimiter::new();
/// let q = |ip: &str| RateQuery {
///     bucket: "h",
///     key: PartitionKey::Ip(Some(ip.parse().unwrap())),
///     rate: Rate::new(2, 60),
///     ip: None,
/// };
/// assert!(lim.check_now(&q("192.0.2.1")).allowed);
/// assert!(lim.check_now(&q("192.0.2.1")).allowed);
/// assert!(!lim.check_now(&q("192.0.2.1")).allowed);
/// assert!(lim.check_now(&q("192.0.2.2")).allowed); // another key
/// ```
pub struct MemoryRateLimiter {
    clock: Clock,
    hasher: RandomState,
    shards: Box<[Shard]>,
    shard_mask: usize,
    shard_cap: usize,
    max_keys: usize,
    evicted_live: AtomicU64,
    last_warn: AtomicU64,
}

/// One shard, on its own cache lines.
#[repr(align(128))]
struct Shard(Mutex<Table>);

type Table = HashMap<u64, u64, BuildHasherDefault<Prehashed>>;

/// The keys are already keyed hashes: use them as they are.
#[derive(Default)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8)) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

impl Default for MemoryRateLimiter {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for MemoryRateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryRateLimiter")
            .field("max_keys", &self.max_keys)
            .field("shards", &self.shards.len())
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

impl MemoryRateLimiter {
    /// The default bound on stored keys.
    pub const DEFAULT_MAX_KEYS: usize = 1 << 20;

    /// An empty limiter holding at most [`DEFAULT_MAX_KEYS`](Self::DEFAULT_MAX_KEYS) keys.
    pub fn new() -> Self {
        Self::with_max_keys(Self::DEFAULT_MAX_KEYS)
    }

    /// An empty limiter holding at most `max_keys` keys (at least 1).
    ///
    /// ```
    /// use secure_runtime::{MemoryRateLimiter, PartitionKey, Rate, RateQuery};
    /// let lim = MemoryRateLimiter::with_max_keys(1000);
    /// let rate = Rate::new(1, 3600);
    /// for i in 0..10_000 {
    ///     let user = i.to_string();
    ///     let q = RateQuery { bucket: "b", key: PartitionKey::User(&user), rate, ip: None };
    ///     assert!(lim.check_now(&q).allowed);
    /// }
    /// assert!(lim.len() <= 1000);
    /// ```
    pub fn with_max_keys(max_keys: usize) -> Self {
        let max_keys = max_keys.max(1);
        let shards = (max_keys / 256).next_power_of_two().clamp(1, MAX_SHARDS);
        MemoryRateLimiter {
            clock: Clock::system(),
            hasher: RandomState::new(),
            shards: (0..shards)
                .map(|_| Shard(Mutex::new(Table::default())))
                .collect(),
            shard_mask: shards - 1,
            shard_cap: (max_keys / shards).max(1),
            max_keys,
            evicted_live: AtomicU64::new(0),
            last_warn: AtomicU64::new(0),
        }
    }

    /// Uses `clock` instead of the system's monotonic clock (tests).
    #[must_use]
    pub fn with_clock(mut self, clock: ManualClock) -> Self {
        self.clock = Clock::Manual(clock);
        self
    }

    /// The bound on stored keys.
    pub fn max_keys(&self) -> usize {
        self.max_keys
    }

    /// The number of keys stored now (active or not yet swept).
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).len()).sum()
    }

    /// Whether no key is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many keys the hash tables can hold without reallocating: what the
    /// memory actually held is proportional to it (17 bytes per slot, slots
    /// = 8/7 × capacity). Stays below `4 × max_keys`.
    pub fn capacity(&self) -> usize {
        self.shards.iter().map(|s| lock(s).capacity()).sum()
    }

    /// How many keys that were still active had to be forgotten to respect
    /// the bound (see the type's documentation); zero unless more than about
    /// `max_keys` keys were active at once.
    pub fn evicted_live_keys(&self) -> u64 {
        self.evicted_live.load(Ordering::Relaxed)
    }

    fn shard(&self, fp: u64) -> &Shard {
        // The middle bits pick the shard; the table uses the low bits (slot)
        // and the top bits (tag), which stay uniform inside a shard.
        let i = usize::try_from(fp >> 32).unwrap_or(0) & self.shard_mask;
        &self.shards[i]
    }

    /// The synchronous check behind [`RateLimiter::check`].
    pub fn check_now(&self, q: &RateQuery<'_>) -> RateOutcome {
        let Some(g) = params(q.rate) else {
            return refuse_all(q.rate);
        };
        let fp = fingerprint(&self.hasher, q.bucket, &q.key);
        let shard = self.shard(fp);
        let mut table = lock(shard);
        let now = self.clock.nanos();
        let o = match table.get_mut(&fp) {
            Some(tat) => {
                let o = g.check(Some(*tat), now);
                *tat = o.tat;
                o
            }
            None => {
                // A key not stored is idle: always admitted.
                let o = g.check(None, now);
                if table.len() >= self.shard_cap {
                    self.make_room(&mut table, now);
                }
                table.insert(fp, o.tat);
                o
            }
        };
        drop(table);
        RateOutcome {
            allowed: o.allowed,
            remaining: o.remaining,
            reset_after: g.duration(o.wait),
        }
    }

    /// The synchronous refund behind [`RateLimiter::refund`].
    pub fn refund_now(&self, q: &RateQuery<'_>) {
        let Some(g) = params(q.rate) else {
            return;
        };
        let fp = fingerprint(&self.hasher, q.bucket, &q.key);
        let mut table = lock(self.shard(fp));
        let now = self.clock.nanos();
        if let Some(tat) = table.get_mut(&fp) {
            match g.refund(Some(*tat), now) {
                Some(t) => *tat = t,
                None => {
                    table.remove(&fp);
                }
            }
        }
    }

    /// Frees room in a full shard: drops idle keys, then if needed the
    /// eighth of the keys closest to idle.
    #[cold]
    fn make_room(&self, table: &mut Table, now: u64) {
        table.retain(|_, tat| *tat > now);
        if table.len() >= self.shard_cap {
            let keep = self.shard_cap - (self.shard_cap / 8).max(1);
            let drop_n = table.len() - keep;
            let mut tats: Vec<u64> = table.values().copied().collect();
            let (_, &mut threshold, _) = tats.select_nth_unstable(drop_n - 1);
            let before = table.len();
            table.retain(|_, tat| *tat > threshold);
            let evicted = (before - table.len()) as u64;
            self.evicted_live.fetch_add(evicted, Ordering::Relaxed);
            self.warn_eviction(now);
        }
        if table.capacity() > 2 * self.shard_cap {
            table.shrink_to(self.shard_cap);
        }
    }

    fn warn_eviction(&self, now: u64) {
        let last = self.last_warn.load(Ordering::Relaxed);
        if (last == 0 || now.saturating_sub(last) >= 10 * NANOS)
            && self
                .last_warn
                .compare_exchange(last, now.max(1), Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                target: crate::AUDIT_TARGET,
                event = "rate_limiter_full",
                max_keys = self.max_keys,
                evicted_live_keys = self.evicted_live.load(Ordering::Relaxed),
                "in-memory rate limiter full: forgetting the least-used active keys \
                 (a spray of distinct keys, or raise max_keys)"
            );
        }
    }
}

/// The GCRA parameters of `rate`, memoized per thread: a service checks a
/// handful of rates, and this spares a 64-bit division on every check.
fn params(rate: Rate) -> Option<Gcra> {
    thread_local! {
        static LAST: Cell<Option<(Rate, Option<Gcra>)>> = const { Cell::new(None) };
    }
    LAST.with(|last| match last.get() {
        Some((r, g)) if r == rate => g,
        _ => {
            let g = Gcra::new(rate, NANOS);
            last.set(Some((rate, g)));
            g
        }
    })
}

fn lock(shard: &Shard) -> MutexGuard<'_, Table> {
    // A poisoned lock only means a thread panicked mid-update; a table of
    // integers is still consistent, so keep serving.
    shard.0.lock().unwrap_or_else(PoisonError::into_inner)
}

impl RateLimiter for MemoryRateLimiter {
    fn check<'a>(
        &'a self,
        query: RateQuery<'a>,
    ) -> Answer<'a, Result<RateOutcome, LimiterUnavailable>> {
        Answer::Ready(Ok(self.check_now(&query)))
    }

    fn refund<'a>(&'a self, query: RateQuery<'a>) -> Answer<'a, Result<(), LimiterUnavailable>> {
        self.refund_now(&query);
        Answer::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use std::{sync::Arc, time::Duration};

    use super::*;
    use crate::model::rate::PartitionKey;

    fn rate(count: u32, period_secs: u32) -> Rate {
        Rate::new(count, period_secs)
    }

    fn q<'a>(bucket: &'a str, user: &'a str, rate: Rate) -> RateQuery<'a> {
        RateQuery {
            bucket,
            key: PartitionKey::User(user),
            rate,
            ip: None,
        }
    }

    #[test]
    fn buckets_and_key_kinds_are_separate() {
        let lim = MemoryRateLimiter::new();
        let r = rate(1, 60);
        assert!(lim.check_now(&q("a", "u", r)).allowed);
        assert!(!lim.check_now(&q("a", "u", r)).allowed);
        assert!(lim.check_now(&q("b", "u", r)).allowed);
        let custom = RateQuery {
            key: PartitionKey::Custom("u"),
            ..q("a", "u", r)
        };
        assert!(lim.check_now(&custom).allowed);
    }

    #[test]
    fn retry_after_is_exact_with_a_manual_clock() {
        let clock = ManualClock::new();
        let lim = MemoryRateLimiter::new().with_clock(clock.clone());
        let r = rate(5, 60);
        for _ in 0..5 {
            assert!(lim.check_now(&q("b", "u", r)).allowed);
        }
        clock.advance(Duration::from_millis(500));
        let d = lim.check_now(&q("b", "u", r));
        assert_eq!(d.retry_after(), Some(Duration::from_millis(11_500)));
        assert_eq!(d.retry_after_secs(), Some(12));
        clock.advance(Duration::from_millis(11_500) - Duration::from_nanos(1));
        assert!(!lim.check_now(&q("b", "u", r)).allowed);
        clock.advance(Duration::from_nanos(1));
        assert!(lim.check_now(&q("b", "u", r)).allowed);
    }

    #[test]
    fn with_the_shared_clock_waiting_retry_after_is_enough() {
        // With the system clock, waiting the announced time is enough.
        let lim = MemoryRateLimiter::new();
        let r = Rate::new(20, 1).with_burst(1);
        for _ in 0..20 {
            assert!(lim.check_now(&q("b", "u", r)).allowed);
            let d = lim.check_now(&q("b", "u", r));
            let wait = d.retry_after().expect("refused right after an admission");
            assert!(wait <= Duration::from_millis(50), "{wait:?}");
            std::thread::sleep(wait);
        }
    }

    #[test]
    fn spray_of_distinct_keys_respects_the_bound_and_keeps_throttled_clients() {
        let clock = ManualClock::new();
        let lim = MemoryRateLimiter::with_max_keys(4096).with_clock(clock.clone());
        let r = rate(3, 3600);
        // A throttled client.
        for _ in 0..3 {
            assert!(lim.check_now(&q("b", "victim-of-own-limit", r)).allowed);
        }
        assert!(!lim.check_now(&q("b", "victim-of-own-limit", r)).allowed);
        // 100,000 distinct keys, all active (one hour each).
        for i in 0..100_000u32 {
            let k = i.to_string();
            assert!(lim.check_now(&q("b", &k, r)).allowed);
            assert!(lim.len() <= 4096);
        }
        assert!(lim.capacity() <= 4 * 4096, "capacity {}", lim.capacity());
        assert!(lim.evicted_live_keys() > 0);
        // The spray evicted fresh keys first: the throttled client is still throttled.
        assert!(!lim.check_now(&q("b", "victim-of-own-limit", r)).allowed);
    }

    #[test]
    fn idle_keys_are_swept_without_evicting_live_ones() {
        let clock = ManualClock::new();
        let lim = MemoryRateLimiter::with_max_keys(1000).with_clock(clock.clone());
        // One admission keeps a key active for 500 ms.
        let r = rate(2, 1);
        for i in 0..600u32 {
            assert!(lim.check_now(&q("b", &i.to_string(), r)).allowed);
        }
        clock.advance(Duration::from_secs(1));
        // 20,000 new keys 1 ms apart: never more than ~500 active at once.
        for i in 600..20_600u32 {
            assert!(lim.check_now(&q("b", &i.to_string(), r)).allowed);
            assert!(lim.len() <= 1000);
            clock.advance(Duration::from_millis(1));
        }
        assert_eq!(lim.evicted_live_keys(), 0, "only idle keys were dropped");
    }

    #[test]
    fn refund_gives_back_exactly_one() {
        let lim = MemoryRateLimiter::new();
        let r = rate(2, 60);
        assert!(lim.check_now(&q("b", "u", r)).allowed);
        assert!(lim.check_now(&q("b", "u", r)).allowed);
        assert!(!lim.check_now(&q("b", "u", r)).allowed);
        lim.refund_now(&q("b", "u", r));
        assert!(lim.check_now(&q("b", "u", r)).allowed);
        assert!(!lim.check_now(&q("b", "u", r)).allowed);
        // Refunding a key never seen is a no-op.
        lim.refund_now(&q("b", "nobody", r));
        assert_eq!(lim.len(), 1);
    }

    #[test]
    fn zero_rate_refuses() {
        let lim = MemoryRateLimiter::new();
        assert!(!lim.check_now(&q("b", "u", rate(0, 60))).allowed);
    }

    #[test]
    fn exact_under_concurrency() {
        let lim = Arc::new(MemoryRateLimiter::new());
        let r = Rate::new(1, 3600).with_burst(1000);
        let admitted = AtomicU64::new(0);
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    for _ in 0..500 {
                        if lim.check_now(&q("b", "hot", r)).allowed {
                            admitted.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        assert_eq!(admitted.load(Ordering::Relaxed), 1000);
    }
}
