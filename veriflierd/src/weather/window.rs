//! The sliding window: a ring of [`BUCKETS`] time buckets of equal width. Old buckets fall off as time
//! moves on; each one that falls off is handed to the caller (the detector folds it into its baseline).

use std::time::{Duration, Instant};

use super::tally::{Observation, Tally};

/// Buckets in the window: 12 × 5 s for the default 60 s window.
pub const BUCKETS: usize = 12;

#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    /// Which bucket of time (counted from the window's origin) this slot holds.
    index: u64,
    tally: Tally,
}

/// Counts over the last `BUCKETS` buckets of time.
#[derive(Debug, Clone)]
pub struct Window {
    origin: Instant,
    bucket_width: Duration,
    slots: [Bucket; BUCKETS],
    /// The newest bucket index seen; slots older than `current - BUCKETS` are expired.
    current: u64,
}

impl Window {
    /// A window of `span` (at least `BUCKETS` ms) starting at `now`.
    pub fn new(span: Duration, now: Instant) -> Window {
        let bucket_width = (span / BUCKETS as u32).max(Duration::from_millis(1));
        Window {
            origin: now,
            bucket_width,
            slots: [Bucket::default(); BUCKETS],
            current: 0,
        }
    }

    /// The width of one bucket.
    pub fn bucket_width(&self) -> Duration {
        self.bucket_width
    }

    fn index_at(&self, now: Instant) -> u64 {
        let elapsed = now.saturating_duration_since(self.origin);
        (elapsed.as_nanos() / self.bucket_width.as_nanos().max(1)) as u64
    }

    /// Moves the window to `now`, handing each bucket that falls off (oldest first, with the instant it
    /// began) to `expired`. Time never goes back: an earlier `now` is taken as the current bucket.
    pub fn advance(&mut self, now: Instant, mut expired: impl FnMut(Instant, &Tally)) {
        let target = self.index_at(now).max(self.current);
        if target == self.current {
            return;
        }
        // Slots in order of age: the one after the current is the oldest.
        for step in 1..=BUCKETS as u64 {
            let slot = ((self.current + step) % BUCKETS as u64) as usize;
            let bucket = &mut self.slots[slot];
            if bucket.index + (BUCKETS as u64) <= target {
                if bucket.tally.samples() > 0 {
                    let offset = self
                        .bucket_width
                        .saturating_mul(u32::try_from(bucket.index).unwrap_or(u32::MAX));
                    expired(self.origin.checked_add(offset).unwrap_or(self.origin), &bucket.tally);
                }
                *bucket = Bucket::default();
            }
        }
        self.current = target;
    }

    /// Counts one observation at `now` (call [`Window::advance`] first).
    pub fn record(&mut self, now: Instant, observation: Observation) {
        let index = self.index_at(now).max(self.current);
        let slot = (index % BUCKETS as u64) as usize;
        let bucket = &mut self.slots[slot];
        if bucket.index != index {
            *bucket = Bucket {
                index,
                tally: Tally::default(),
            };
        }
        bucket.tally.record(observation);
    }

    /// Everything in the window.
    pub fn total(&self) -> Tally {
        let mut total = Tally::default();
        for bucket in self.live() {
            total.add(&bucket.tally);
        }
        total
    }

    /// The newest buckets, as few as hold at least `min_samples` checks; the whole window when it holds
    /// fewer. With much traffic this looks at the last few seconds only, so a link loss shows at once;
    /// with little traffic it widens to the whole window, so a handful of failures cannot decide.
    pub fn recent(&self, min_samples: u64) -> Tally {
        let mut tally = Tally::default();
        for age in 0..BUCKETS as u64 {
            let Some(index) = self.current.checked_sub(age) else {
                break;
            };
            let bucket = &self.slots[(index % BUCKETS as u64) as usize];
            if bucket.index == index {
                tally.add(&bucket.tally);
            }
            if tally.samples() >= min_samples {
                break;
            }
        }
        tally
    }

    fn live(&self) -> impl Iterator<Item = &Bucket> {
        let oldest = (self.current + 1).saturating_sub(BUCKETS as u64);
        self.slots
            .iter()
            .filter(move |b| b.index >= oldest && b.index <= self.current)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::weather::tally::FailureClass;

    const SPAN: Duration = Duration::from_secs(60);

    #[test]
    fn buckets_fall_off_after_the_span_oldest_first() {
        let start = Instant::now();
        let mut window = Window::new(SPAN, start);
        window.record(start, Observation::Reached);
        window.advance(start + Duration::from_secs(5), |_, _| {});
        window.record(
            start + Duration::from_secs(5),
            Observation::Failed(FailureClass::Timeout),
        );
        assert_eq!(window.total().samples(), 2);
        let mut fell = Vec::new();
        window.advance(start + Duration::from_secs(66), |began, tally| {
            fell.push((began.duration_since(start), tally.samples()))
        });
        assert_eq!(fell, vec![(Duration::ZERO, 1), (Duration::from_secs(5), 1)]);
        assert_eq!(window.total().samples(), 0);
    }

    #[test]
    fn recent_takes_the_newest_buckets_that_hold_enough_checks() {
        let start = Instant::now();
        let mut window = Window::new(SPAN, start);
        for _ in 0..100 {
            window.record(start, Observation::Reached);
        }
        let later = start + Duration::from_secs(10);
        window.advance(later, |_, _| {});
        for _ in 0..60 {
            window.record(later, Observation::Failed(FailureClass::Connect));
        }
        assert_eq!(window.recent(50).samples(), 60, "the newest bucket alone is enough");
        assert_eq!(window.recent(100).samples(), 160, "widens to older buckets");
        assert_eq!(window.recent(1_000).samples(), 160, "never beyond the window");
    }
}
