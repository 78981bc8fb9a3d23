//! Canaries: known-good URLs checked on a fixed interval through the same engine as the sites, so they
//! share the monitor's resolver, routes and file descriptors. Their checks carry ids from a reserved range
//! at the top of `u64` that no site uses (blog ids stay below 2^53), so their results are recognised and
//! never reach the status machine.

use std::time::{Duration, Instant};

/// Most canaries a daemon accepts.
pub const MAX_CANARIES: usize = 64;
/// The first reserved check id; canary `i` runs as `CANARY_ID_BASE + i`.
pub const CANARY_ID_BASE: u64 = u64::MAX - MAX_CANARIES as u64 + 1;

/// The canary number of a check id, if the id is a canary's.
pub fn canary_index(id: u64) -> Option<usize> {
    id.checked_sub(CANARY_ID_BASE).and_then(|i| usize::try_from(i).ok())
}

/// When each canary is due. A canary whose previous check is still running is not sent again, so a dead
/// link (checks that time out) never piles checks up.
#[derive(Debug, Clone)]
pub struct CanarySchedule {
    urls: Vec<String>,
    interval: Duration,
    next_due: Instant,
    in_flight: Vec<bool>,
}

impl CanarySchedule {
    /// The first round is due at `now`. At most [`MAX_CANARIES`] URLs are kept.
    pub fn new(mut urls: Vec<String>, interval: Duration, now: Instant) -> CanarySchedule {
        urls.truncate(MAX_CANARIES);
        CanarySchedule {
            in_flight: vec![false; urls.len()],
            urls,
            interval,
            next_due: now,
        }
    }

    /// How many canaries there are.
    pub fn len(&self) -> usize {
        self.urls.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.urls.is_empty()
    }

    /// The canary checks to send at `now`, as `(check id, url)`, marked in flight.
    pub fn due(&mut self, now: Instant) -> Vec<(u64, String)> {
        if self.urls.is_empty() || now < self.next_due {
            return Vec::new();
        }
        self.next_due = now + self.interval;
        let mut due = Vec::new();
        for (index, (url, in_flight)) in self.urls.iter().zip(self.in_flight.iter_mut()).enumerate() {
            if !*in_flight {
                *in_flight = true;
                due.push((CANARY_ID_BASE + index as u64, url.clone()));
            }
        }
        due
    }

    /// Marks the canary of check `id` finished; returns its number, or `None` when `id` is not a canary
    /// check this schedule sent.
    pub fn finished(&mut self, id: u64) -> Option<usize> {
        let index = canary_index(id)?;
        let in_flight = self.in_flight.get_mut(index)?;
        if !*in_flight {
            return None;
        }
        *in_flight = false;
        Some(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canaries_run_on_their_interval_and_never_twice_at_once() {
        let start = Instant::now();
        let urls = vec!["http://a.test/".to_string(), "http://b.test/".to_string()];
        let mut schedule = CanarySchedule::new(urls, Duration::from_secs(10), start);
        let first = schedule.due(start);
        assert_eq!(first.len(), 2);
        assert_eq!(canary_index(first[1].0), Some(1));
        assert!(schedule.due(start + Duration::from_secs(5)).is_empty(), "not yet due");
        assert_eq!(schedule.finished(first[0].0), Some(0));
        let second = schedule.due(start + Duration::from_secs(10));
        assert_eq!(second.len(), 1, "b is still in flight: {second:?}");
        assert_eq!(second[0].1, "http://a.test/");
    }

    #[test]
    fn site_ids_are_never_canaries() {
        assert_eq!(canary_index(1 << 53), None);
        let mut schedule = CanarySchedule::new(vec!["http://a.test/".into()], Duration::from_secs(1), Instant::now());
        assert_eq!(schedule.finished(CANARY_ID_BASE), None, "not sent, so not ours");
    }
}
