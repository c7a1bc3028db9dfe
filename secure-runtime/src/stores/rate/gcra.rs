//! The generic cell rate algorithm (GCRA), as integer arithmetic over "ticks"
//! (nanoseconds in memory, microseconds in Redis), shared by every backend.
//!
//! The whole state of a key is one number, its theoretical arrival time
//! (`tat`): the instant at which the key's bucket is empty again. A request at
//! `now` is admitted when `tat - now <= tolerance`, and then pushes `tat` one
//! emission interval further. A key whose `tat` is in the past is
//! indistinguishable from a key never seen, which is what makes eviction of
//! idle keys lossless.

use std::time::Duration;

use crate::Rate;

/// The longest interval or tolerance, in seconds (about 35 years): keeps
/// every sum far from overflow in nanoseconds, and exact in a Lua double in
/// microseconds (2^50 µs).
pub(crate) const MAX_SECS: u64 = (1 << 50) / 1_000_000;

/// A rate converted to ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Gcra {
    /// Time between two steady admissions.
    pub(crate) interval: u64,
    /// How far ahead of `now` the `tat` may run: `interval × (burst − 1)`.
    pub(crate) tolerance: u64,
    ticks_per_sec: u64,
}

/// The result of one admission check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Outcome {
    pub(crate) allowed: bool,
    /// Requests that would still be admitted right now.
    pub(crate) remaining: u32,
    /// Ticks until `remaining` grows by one (for a refusal: until the next
    /// admission).
    pub(crate) wait: u64,
    /// The `tat` to store (unchanged on a refusal).
    pub(crate) tat: u64,
}

impl Gcra {
    /// `None` for a rate that admits nothing (`count` or `period_secs` zero,
    /// which the macros never produce): such a limit refuses every request.
    pub(crate) fn new(rate: Rate, ticks_per_sec: u64) -> Option<Gcra> {
        if rate.count() == 0 || rate.period_secs() == 0 {
            return None;
        }
        let max_ticks = MAX_SECS * ticks_per_sec;
        let period = u64::from(rate.period_secs()).saturating_mul(ticks_per_sec);
        // Rounded up: never admit faster than declared.
        let interval = period.div_ceil(u64::from(rate.count())).clamp(1, max_ticks);
        let burst = u64::from(rate.burst().max(1));
        let tolerance = interval.saturating_mul(burst - 1).min(max_ticks);
        Some(Gcra {
            interval,
            tolerance,
            ticks_per_sec,
        })
    }

    /// Checks one request at `now` against the stored `tat` (`None`: a new
    /// key) and records it when admitted.
    pub(crate) fn check(&self, tat: Option<u64>, now: u64) -> Outcome {
        let tat = tat.map_or(now, |t| t.max(now));
        let ahead = tat - now;
        if ahead > self.tolerance {
            return Outcome {
                allowed: false,
                remaining: 0,
                wait: ahead - self.tolerance,
                tat,
            };
        }
        let tat = tat.saturating_add(self.interval);
        let (remaining, wait) = self.status(tat - now);
        Outcome {
            allowed: true,
            remaining,
            wait,
            tat,
        }
    }

    /// What an admitted request reports, given `ahead = tat - now` after it.
    pub(crate) fn status(&self, ahead: u64) -> (u32, u64) {
        let slack = (self.tolerance + self.interval).saturating_sub(ahead);
        let remaining = u32::try_from(slack / self.interval).unwrap_or(u32::MAX);
        (remaining, self.interval - slack % self.interval)
    }

    /// Gives back one admission (a reservation that turned out not to count);
    /// `None`: the key is idle again and can be forgotten.
    pub(crate) fn refund(&self, tat: Option<u64>, now: u64) -> Option<u64> {
        let t = tat?.saturating_sub(self.interval);
        (t > now).then_some(t)
    }

    pub(crate) fn duration(&self, ticks: u64) -> Duration {
        // Constant divisors: cheaper than dividing by `ticks_per_sec`.
        match self.ticks_per_sec {
            1_000_000_000 => Duration::from_nanos(ticks),
            1_000_000 => Duration::from_micros(ticks),
            tps => Duration::new(
                ticks / tps,
                u32::try_from((ticks % tps) * (1_000_000_000 / tps)).unwrap_or(0),
            ),
        }
    }
}

/// The decision for a rate that admits nothing.
pub(crate) fn refuse_all(rate: Rate) -> crate::RateOutcome {
    crate::RateOutcome {
        allowed: false,
        remaining: 0,
        reset_after: Duration::from_secs(u64::from(rate.period_secs().max(1))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NS: u64 = 1_000_000_000;

    fn rate(count: u32, period_secs: u32, burst: Option<u32>) -> Rate {
        let r = Rate::new(count, period_secs);
        match burst {
            Some(b) => r.with_burst(b),
            None => r,
        }
    }

    #[test]
    fn five_per_minute_is_a_burst_of_five_then_one_every_twelve_seconds() {
        let g = Gcra::new(rate(5, 60, None), NS).unwrap();
        assert_eq!(g.interval, 12 * NS);
        let mut tat = None;
        for left in (0..5).rev() {
            let o = g.check(tat, 0);
            assert!(o.allowed);
            assert_eq!(o.remaining, left);
            tat = Some(o.tat);
        }
        let o = g.check(tat, 0);
        assert!(!o.allowed);
        assert_eq!(o.wait, 12 * NS);
        assert!(!g.check(tat, 12 * NS - 1).allowed);
        let o = g.check(tat, 12 * NS);
        assert!(o.allowed);
        assert_eq!(o.remaining, 0);
        assert_eq!(o.wait, 12 * NS);
    }

    #[test]
    fn burst_overrides_the_count() {
        let g = Gcra::new(rate(10, 60, Some(20)), NS).unwrap();
        let mut tat = None;
        for _ in 0..20 {
            let o = g.check(tat, 0);
            assert!(o.allowed);
            tat = Some(o.tat);
        }
        assert!(!g.check(tat, 0).allowed);
        assert!(g.check(tat, 6 * NS).allowed);
    }

    #[test]
    fn zero_rates_refuse_everything() {
        assert!(Gcra::new(rate(0, 60, None), NS).is_none());
        assert!(Gcra::new(rate(5, 0, None), NS).is_none());
        assert!(!refuse_all(rate(0, 60, None)).allowed);
    }

    #[test]
    fn refund_returns_one_admission_and_forgets_idle_keys() {
        let g = Gcra::new(rate(2, 60, None), NS).unwrap();
        let a = g.check(None, 0);
        let b = g.check(Some(a.tat), 0);
        assert!(!g.check(Some(b.tat), 0).allowed);
        let t = g.refund(Some(b.tat), 0);
        assert_eq!(t, Some(a.tat));
        assert!(g.check(t, 0).allowed);
        assert_eq!(g.refund(Some(a.tat), 0), None);
        assert_eq!(g.refund(None, 0), None);
    }

    #[test]
    fn extreme_rates_do_not_overflow() {
        let g = Gcra::new(rate(1, u32::MAX, Some(u32::MAX)), NS).unwrap();
        assert!(g.interval <= MAX_SECS * NS && g.tolerance <= MAX_SECS * NS);
        let g = Gcra::new(rate(1, u32::MAX, Some(u32::MAX)), 1_000_000).unwrap();
        assert!(g.tolerance + g.interval < 1 << 51, "exact in a Lua double");
        let o = g.check(Some(u64::MAX), u64::MAX - 1);
        let _ = g.duration(o.wait);
        let g = Gcra::new(rate(u32::MAX, 1, None), 1_000_000).unwrap();
        assert_eq!(g.interval, 1);
        assert_eq!(g.duration(1_500_000), Duration::from_millis(1500));
    }

    proptest! {
        /// GCRA's guarantee: over any window of length `w` starting at an
        /// admission, at most `burst + floor(w / interval)` requests are
        /// admitted — and a refusal's wait is exact: one tick earlier is
        /// still refused, at the wait it is admitted.
        #[test]
        fn admissions_are_bounded_and_waits_exact(
            count in 1u32..20,
            burst in proptest::option::of(1u32..20),
            steps in proptest::collection::vec(0u64..5_000, 1..200),
        ) {
            let g = Gcra::new(rate(count, 1, burst), 1000).unwrap();
            let b = u64::from(burst.unwrap_or(count));
            let mut now = 0;
            let mut tat = None;
            let mut admitted = Vec::new();
            for s in steps {
                now += s / 10;
                let o = g.check(tat, now);
                if o.allowed {
                    admitted.push(now);
                    tat = Some(o.tat);
                    prop_assert!(u64::from(o.remaining) < b);
                } else {
                    prop_assert!(o.wait > 0);
                    prop_assert!(!g.check(tat, now + o.wait - 1).allowed);
                    prop_assert!(g.check(tat, now + o.wait).allowed);
                }
            }
            for (i, &start) in admitted.iter().enumerate() {
                for (j, &end) in admitted.iter().enumerate().skip(i) {
                    let n = (j - i + 1) as u64;
                    prop_assert!(n <= b + (end - start) / g.interval,
                        "{} admissions in {} ticks", n, end - start);
                }
            }
        }

        /// `remaining` is exactly the number of immediate admissions left.
        #[test]
        fn remaining_is_what_is_left(count in 1u32..10, burst in 1u32..10, used in 0u32..10) {
            let g = Gcra::new(rate(count, 60, Some(burst)), NS).unwrap();
            let mut tat = None;
            let mut last = None;
            for _ in 0..used.min(burst) {
                let o = g.check(tat, 0);
                tat = Some(o.tat);
                last = Some(o);
            }
            if let Some(o) = last {
                let mut left = 0;
                let mut t = tat;
                loop {
                    let p = g.check(t, 0);
                    if !p.allowed { break; }
                    left += 1;
                    t = Some(p.tat);
                }
                prop_assert_eq!(o.remaining, left);
            }
        }
    }
}
