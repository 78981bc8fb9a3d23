//! When each check of a round goes out. A round's checks are spread evenly over most of the round
//! interval so 100,000 sites do not mean 100,000 connects in the first second; re-checks asked for by the
//! status machine wait in a min-heap until their time.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use crate::status::{BlogId, UnixMillis};

/// Share of the round interval over which a round's checks are spread. The rest is slack for the last
/// checks to finish (and their re-checks to start) before the next round begins.
pub const SPREAD_SHARE: f64 = 0.8;

/// One round: the sites in dispatch order and their pacing.
#[derive(Debug)]
pub struct RoundPlan {
    started: Instant,
    spacing: Duration,
    sites: Vec<(BlogId, String)>,
    next: usize,
}

impl RoundPlan {
    /// Plans `sites` over `SPREAD_SHARE` of `interval` from `started`.
    pub fn new(sites: Vec<(BlogId, String)>, started: Instant, interval: Duration) -> RoundPlan {
        let spread = interval.mul_f64(SPREAD_SHARE);
        let spacing = match u32::try_from(sites.len()) {
            Ok(n) if n > 0 => spread / n,
            _ => Duration::ZERO,
        };
        RoundPlan {
            started,
            spacing,
            sites,
            next: 0,
        }
    }

    /// The sites whose dispatch time has come, in order; each is returned once.
    pub fn take_due(&mut self, now: Instant) -> &[(BlogId, String)] {
        let elapsed = now.saturating_duration_since(self.started);
        let due = if self.spacing.is_zero() {
            self.sites.len()
        } else {
            // +1: the first site goes at once.
            ((elapsed.as_nanos() / self.spacing.as_nanos()) as usize + 1).min(self.sites.len())
        };
        let from = self.next;
        self.next = due.max(from);
        &self.sites[from..self.next]
    }

    /// Whether every site has been dispatched.
    pub fn is_dispatched(&self) -> bool {
        self.next >= self.sites.len()
    }

    /// Sites in the round.
    pub fn len(&self) -> usize {
        self.sites.len()
    }

    /// Whether the round has no sites.
    pub fn is_empty(&self) -> bool {
        self.sites.is_empty()
    }

    /// Sites dispatched so far.
    pub fn dispatched(&self) -> usize {
        self.next
    }

    /// When the round started.
    pub fn started(&self) -> Instant {
        self.started
    }
}

/// Re-checks waiting for their earliest time.
#[derive(Debug, Default)]
pub struct Rechecks {
    heap: BinaryHeap<Reverse<(UnixMillis, BlogId)>>,
}

impl Rechecks {
    /// Queues a re-check of `blog_id` not before `at`.
    pub fn push(&mut self, blog_id: BlogId, at: UnixMillis) {
        self.heap.push(Reverse((at, blog_id)));
    }

    /// Takes the next re-check due at `now`.
    pub fn pop_due(&mut self, now: UnixMillis) -> Option<BlogId> {
        match self.heap.peek() {
            Some(Reverse((at, _))) if *at <= now => self.heap.pop().map(|Reverse((_, id))| id),
            _ => None,
        }
    }

    /// Re-checks waiting.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Whether none is waiting.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sites(n: u64) -> Vec<(BlogId, String)> {
        (0..n).map(|i| (i, format!("http://s{i}.test/"))).collect()
    }

    #[test]
    fn round_is_spread_over_most_of_the_interval() {
        let t0 = Instant::now();
        let mut plan = RoundPlan::new(sites(100), t0, Duration::from_secs(100));
        assert_eq!(plan.take_due(t0).len(), 1, "first site at once");
        // 80 s spread over 100 sites: one every 0.8 s.
        assert_eq!(plan.take_due(t0 + Duration::from_secs(8)).len(), 10);
        assert_eq!(plan.take_due(t0 + Duration::from_secs(8)).len(), 0, "each site once");
        assert!(!plan.is_dispatched());
        assert_eq!(plan.take_due(t0 + Duration::from_secs(80)).len(), 89);
        assert!(plan.is_dispatched());
        assert_eq!(plan.dispatched(), 100);
    }

    #[test]
    fn empty_round_is_dispatched_at_once() {
        let mut plan = RoundPlan::new(Vec::new(), Instant::now(), Duration::from_secs(300));
        assert!(plan.take_due(Instant::now()).is_empty());
        assert!(plan.is_dispatched());
    }

    #[test]
    fn rechecks_come_out_in_time_order_when_due() {
        let mut r = Rechecks::default();
        r.push(1, UnixMillis::from_millis(3000));
        r.push(2, UnixMillis::from_millis(1000));
        assert_eq!(r.pop_due(UnixMillis::from_millis(500)), None);
        assert_eq!(r.pop_due(UnixMillis::from_millis(3000)), Some(2));
        assert_eq!(r.pop_due(UnixMillis::from_millis(3000)), Some(1));
        assert!(r.is_empty());
    }
}
