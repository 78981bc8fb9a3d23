//! A fixed-bucket histogram of durations that the control thread fills with relaxed atomic adds and the
//! ops server reads while it is being filled (a scrape may see one observation half-counted; Prometheus
//! tolerates that, and no lock is taken on the control thread for it).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the buckets, in microseconds: 1 ms to 20 s (the original's check deadline), roughly
/// 1-2.5-5 per decade, which resolves both loopback checks and slow TLS handshakes.
pub const BUCKET_BOUNDS_MICROS: [u64; 14] = [
    1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000, 5_000_000,
    10_000_000, 20_000_000,
];

/// Counts of durations per bucket (not cumulative: the renderer sums), their sum and their number.
#[derive(Debug, Default)]
pub struct Histogram {
    /// One per bound, plus the overflow (`+Inf`) bucket.
    buckets: [AtomicU64; BUCKET_BOUNDS_MICROS.len() + 1],
    sum_micros: AtomicU64,
    count: AtomicU64,
}

/// What a reader sees of a [`Histogram`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistogramSnapshot {
    /// Cumulative counts, one per bound of [`BUCKET_BOUNDS_MICROS`], then `+Inf`.
    pub cumulative: [u64; BUCKET_BOUNDS_MICROS.len() + 1],
    /// Sum of the observations in microseconds.
    pub sum_micros: u64,
    /// Number of observations.
    pub count: u64,
}

impl Histogram {
    /// Counts one duration.
    pub fn observe(&self, duration: Duration) {
        let micros = u64::try_from(duration.as_micros()).unwrap_or(u64::MAX);
        let bucket = BUCKET_BOUNDS_MICROS.partition_point(|bound| *bound < micros);
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// The counts now.
    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut cumulative = [0u64; BUCKET_BOUNDS_MICROS.len() + 1];
        let mut running = 0u64;
        for (out, bucket) in cumulative.iter_mut().zip(&self.buckets) {
            running = running.saturating_add(bucket.load(Ordering::Relaxed));
            *out = running;
        }
        HistogramSnapshot {
            cumulative,
            sum_micros: self.sum_micros.load(Ordering::Relaxed),
            count: self.count.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_the_first_bucket_that_holds_them() {
        let histogram = Histogram::default();
        histogram.observe(Duration::from_micros(1_000)); // exactly on the 1 ms bound: le="0.001"
        histogram.observe(Duration::from_millis(30));
        histogram.observe(Duration::from_secs(60));
        let snapshot = histogram.snapshot();
        assert_eq!(snapshot.cumulative[0], 1);
        assert_eq!(snapshot.cumulative[4], 1, "25 ms bucket");
        assert_eq!(snapshot.cumulative[5], 2, "50 ms bucket");
        assert_eq!(snapshot.cumulative[BUCKET_BOUNDS_MICROS.len() - 1], 2, "20 s bucket");
        assert_eq!(snapshot.cumulative[BUCKET_BOUNDS_MICROS.len()], 3, "+Inf");
        assert_eq!(snapshot.count, 3);
        assert_eq!(snapshot.sum_micros, 1_000 + 30_000 + 60_000_000);
    }
}
