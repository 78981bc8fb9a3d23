//! Retry delays: exponential, capped, with jitter so that thousands of notifications failed by one
//! outage do not come back in one burst when it ends.

use std::time::Duration;

/// Delays between attempts: the ceiling doubles per failure from `initial` up to `max`, and each delay is
/// drawn between half the ceiling and the ceiling ("equal jitter"). Half is kept so that delays still grow
/// with every failure (full jitter could retry a notification that failed ten times right away).
///
/// ```
/// use std::time::Duration;
/// use jetmond::outbox::Backoff;
///
/// let backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(300));
/// assert_eq!(backoff.ceiling(3), Duration::from_secs(4));
/// let delay = backoff.delay(3, 12345);
/// assert!(delay >= Duration::from_secs(2) && delay <= Duration::from_secs(4));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
}

impl Backoff {
    /// Delays starting at `initial` and never above `max` (`max` below `initial` is read as `initial`).
    pub fn new(initial: Duration, max: Duration) -> Backoff {
        Backoff {
            initial,
            max: max.max(initial),
        }
    }

    /// The longest delay after `failures` failed attempts (1 for the first failure).
    pub fn ceiling(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(u32::BITS - 1);
        self.initial
            .checked_mul(1u32 << doublings)
            .map_or(self.max, |delay| delay.min(self.max))
    }

    /// The delay after `failures` failed attempts, placed within [ceiling / 2, ceiling] by `random` (any
    /// 64 random bits; passed in so the bounds can be tested without a random source).
    pub fn delay(&self, failures: u32, random: u64) -> Duration {
        let ceiling = u64::try_from(self.ceiling(failures).as_millis()).unwrap_or(u64::MAX);
        let half = ceiling / 2;
        let spread = ceiling - half;
        let jitter = if spread == u64::MAX {
            random
        } else {
            random % (spread + 1)
        };
        Duration::from_millis(half + jitter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn ceiling_doubles_from_initial_up_to_max() {
        let backoff = Backoff::new(SECOND, 60 * SECOND);
        let ceilings: Vec<u64> = (1..=9).map(|n| backoff.ceiling(n).as_secs()).collect();
        assert_eq!(ceilings, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(backoff.ceiling(0), SECOND, "no failure yet reads as the first");
        assert_eq!(
            backoff.ceiling(u32::MAX),
            60 * SECOND,
            "no overflow after many failures"
        );
    }

    #[test]
    fn delay_stays_within_half_and_whole_ceiling_for_any_random() {
        let backoff = Backoff::new(Duration::from_millis(250), 300 * SECOND);
        let randoms = [0, 1, 2, 499, 500, 12_345_678, u64::MAX / 2, u64::MAX - 1, u64::MAX];
        for failures in 1..=40 {
            let ceiling = backoff.ceiling(failures);
            for random in randoms {
                let delay = backoff.delay(failures, random);
                assert!(
                    delay >= ceiling / 2 && delay <= ceiling,
                    "failures {failures}, random {random}: {delay:?} outside [{:?}, {ceiling:?}]",
                    ceiling / 2
                );
            }
        }
    }

    #[test]
    fn jitter_spreads_delays_over_the_range() {
        let backoff = Backoff::new(SECOND, 300 * SECOND);
        let delays: std::collections::BTreeSet<Duration> = (0..200)
            .map(|_| backoff.delay(5, crate::outbox::random_u64()))
            .collect();
        assert!(delays.len() > 50, "only {} distinct delays", delays.len());
        assert!(delays.first().is_some_and(|d| *d < 10 * SECOND));
        assert!(delays.last().is_some_and(|d| *d > 14 * SECOND));
    }

    #[test]
    fn max_below_initial_is_read_as_initial() {
        let backoff = Backoff::new(10 * SECOND, SECOND);
        assert_eq!(backoff.ceiling(5), 10 * SECOND);
    }
}
