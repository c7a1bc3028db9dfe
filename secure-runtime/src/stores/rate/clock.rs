//! Time sources of the in-memory limiter: the system's monotonic clock (the
//! default) and a manual clock for tests.
//!
//! An earlier version read a millisecond clock advanced by a background
//! thread, to save ~26 ns per check on virtual machines; a thread running
//! in every app that has a limiter costs more than it saves, so a check
//! reads `Instant` once.

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

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
    /// The system's monotonic clock, from the limiter's creation.
    System(Instant),
    /// Moved by hand.
    Manual(ManualClock),
}

impl Clock {
    /// The system's monotonic clock.
    pub(crate) fn system() -> Clock {
        Clock::System(Instant::now())
    }

    pub(crate) fn nanos(&self) -> u64 {
        match self {
            Clock::System(start) => u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX),
            Clock::Manual(m) => m.0.load(Ordering::SeqCst),
        }
    }
}
