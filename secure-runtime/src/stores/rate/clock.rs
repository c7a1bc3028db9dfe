//! Time sources of the in-memory limiter: a shared millisecond clock (the
//! default, one atomic load per check) and a manual clock for tests.

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex, OnceLock, PoisonError,
    },
    thread,
    time::{Duration, Instant},
};

/// How often the shared clock advances.
pub(crate) const TICK: Duration = Duration::from_millis(1);

/// A clock that moves only when told to, for tests of time-dependent limits
/// without sleeping. Clones share the same time.
///
/// ```
/// use std::time::Duration;
/// use secure_runtime::{ManualClock, MemoryRateLimiter, PartitionKey, Rate, RateQuery};
///
/// let clock = ManualClock::new();
/// let limiter = MemoryRateLimiter::new().with_clock(clock.clone());
/// let q = RateQuery { bucket: "b", key: PartitionKey::User("u"),
///     rate: Rate::new(1, 10), ip: None };
/// assert!(limiter.check_now(&q).allowed);
/// let refused = limiter.check_now(&q);
/// assert_eq!(refused.retry_after(), Some(Duration::from_secs(10)));
/// clock.advance(Duration::from_secs(10));
/// assert!(limiter.check_now(&q).allowed);
/// ```
#[derive(Debug, Clone, Default)]
pub struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    /// A clock at zero.
    pub fn new() -> ManualClock {
        ManualClock::default()
    }
    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        let ns = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        let _ = self
            .0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |t| {
                Some(t.saturating_add(ns))
            });
    }
    /// The time elapsed since the clock was created (as advanced).
    pub fn now(&self) -> Duration {
        Duration::from_nanos(self.0.load(Ordering::SeqCst))
    }
}

/// The time source of a limiter, in nanoseconds.
#[derive(Debug)]
pub(crate) enum Clock {
    /// The shared millisecond clock.
    Coarse(Coarse),
    /// The system's monotonic clock, read at every check (only when the
    /// shared clock's thread could not be started).
    Precise(Instant),
    /// Moved by hand.
    Manual(ManualClock),
}

impl Clock {
    /// The shared millisecond clock, or the precise one when its thread
    /// cannot be started.
    pub(crate) fn shared() -> Clock {
        match Coarse::acquire() {
            Some(c) => Clock::Coarse(c),
            None => Clock::Precise(Instant::now()),
        }
    }

    pub(crate) fn nanos(&self) -> u64 {
        match self {
            Clock::Coarse(_) => COARSE_NOW.load(Ordering::Acquire),
            Clock::Precise(start) => nanos_since(*start),
            Clock::Manual(m) => m.0.load(Ordering::SeqCst),
        }
    }

    /// Whether [`nanos`](Self::nanos) may trail real time.
    pub(crate) fn is_coarse(&self) -> bool {
        matches!(self, Clock::Coarse(_))
    }

    /// The exact time on the same scale as [`nanos`](Self::nanos) (never
    /// less than it).
    pub(crate) fn precise_nanos(&self) -> u64 {
        match self {
            Clock::Coarse(_) => {
                let base = *BASE.get_or_init(Instant::now);
                nanos_since(base).max(COARSE_NOW.load(Ordering::Acquire))
            }
            Clock::Precise(start) => nanos_since(*start),
            Clock::Manual(m) => m.0.load(Ordering::SeqCst),
        }
    }
}

fn nanos_since(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// Reading `Instant::now()` costs 20–30 ns on common virtual machines, as
/// much as the rest of a check. Instead, one background thread
/// (`poem-secure-clock`) stores the time every millisecond while at least one
/// limiter uses it, and a check reads it with one atomic load. The clock can
/// only trail real time; a check it would refuse is decided again with the
/// exact time, so refusals and `Retry-After` are exact.
static BASE: OnceLock<Instant> = OnceLock::new();
static COARSE_NOW: AtomicU64 = AtomicU64::new(0);
static TICKER: Mutex<Ticker> = Mutex::new(Ticker {
    users: 0,
    running: false,
});

struct Ticker {
    users: usize,
    running: bool,
}

/// A registered user of the shared clock; the ticker thread stops when the
/// last one is dropped.
#[derive(Debug)]
pub(crate) struct Coarse(());

impl Coarse {
    fn acquire() -> Option<Coarse> {
        let mut t = TICKER.lock().unwrap_or_else(PoisonError::into_inner);
        refresh();
        if !t.running {
            let spawned = thread::Builder::new()
                .name("poem-secure-clock".to_owned())
                .spawn(run);
            if spawned.is_err() {
                return None;
            }
            t.running = true;
        }
        t.users += 1;
        Some(Coarse(()))
    }
}

impl Drop for Coarse {
    fn drop(&mut self) {
        let mut t = TICKER.lock().unwrap_or_else(PoisonError::into_inner);
        t.users = t.users.saturating_sub(1);
    }
}

fn refresh() {
    let base = *BASE.get_or_init(Instant::now);
    COARSE_NOW.fetch_max(nanos_since(base), Ordering::Release);
}

fn run() {
    loop {
        thread::sleep(TICK);
        refresh();
        let mut t = TICKER.lock().unwrap_or_else(PoisonError::into_inner);
        if t.users == 0 {
            t.running = false;
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_clock_advances_and_never_goes_back() {
        let c = Clock::shared();
        let a = c.nanos();
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut last = a;
        while last - a < 10_000_000 {
            assert!(
                Instant::now() < deadline,
                "the shared clock did not advance"
            );
            thread::sleep(Duration::from_millis(5));
            let b = c.nanos();
            assert!(b >= last, "went back: {last} -> {b}");
            last = b;
        }
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let m = ManualClock::new();
        let c = Clock::Manual(m.clone());
        assert_eq!(c.nanos(), 0);
        m.advance(Duration::from_millis(1500));
        assert_eq!(c.nanos(), 1_500_000_000);
        assert_eq!(m.now(), Duration::from_millis(1500));
    }
}
