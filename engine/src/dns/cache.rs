//! Answers remembered until their TTL runs out, so a round of checks over thousands of sites on the
//! same few hosts asks upstream once per name rather than once per check.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::{Addrs, DnsError};

/// Share of the cache evicted at once when it is full of live entries, so the O(n) scan that picks
/// victims runs once per `capacity / EVICT_DIVISOR` inserts rather than on every one.
const EVICT_DIVISOR: usize = 8;

/// A bounded TTL cache keyed by normalized (lowercase, no trailing dot) name.
#[derive(Debug)]
pub(crate) struct Cache {
    entries: HashMap<String, Entry>,
    capacity: usize,
    max_ttl: Duration,
    negative_ttl: Duration,
}

#[derive(Debug)]
struct Entry {
    answer: Result<Addrs, DnsError>,
    expires: Instant,
}

impl Cache {
    /// A cache holding at most `capacity` names; positive answers live at most `max_ttl`, negative ones
    /// (NXDOMAIN, no records) exactly `negative_ttl`.
    pub(crate) fn new(capacity: usize, max_ttl: Duration, negative_ttl: Duration) -> Cache {
        Cache {
            entries: HashMap::new(),
            capacity: capacity.max(1),
            max_ttl,
            negative_ttl,
        }
    }

    /// The live answer for `key`, if any. An expired entry is dropped on the way.
    pub(crate) fn get(&mut self, key: &str, now: Instant) -> Option<Result<Addrs, DnsError>> {
        let entry = self.entries.get(key)?;
        if entry.expires <= now {
            self.entries.remove(key);
            return None;
        }
        Some(entry.answer.clone())
    }

    /// Remembers `answer` for `key`. `answer_ttl` is the smallest TTL of the records behind a positive
    /// answer. Resolver-side failures are never stored: the next check should ask again.
    pub(crate) fn store(&mut self, key: &str, answer: &Result<Addrs, DnsError>, answer_ttl: Duration, now: Instant) {
        let ttl = match answer {
            Ok(_) => answer_ttl.min(self.max_ttl),
            Err(DnsError::NotFound { .. } | DnsError::NoRecords { .. }) => self.negative_ttl,
            Err(_) => return,
        };
        // TTL 0 means "do not cache" (RFC 1035 §3.2.1).
        if ttl.is_zero() {
            return;
        }
        if self.entries.len() >= self.capacity && !self.entries.contains_key(key) {
            self.make_room(now);
        }
        let entry = Entry {
            answer: answer.clone(),
            expires: now + ttl,
        };
        self.entries.insert(key.to_string(), entry);
    }

    /// Number of entries, live or not yet purged.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Drops expired entries; if that frees nothing, drops the soonest-expiring eighth, which is the
    /// data least worth keeping.
    fn make_room(&mut self, now: Instant) {
        self.entries.retain(|_, entry| entry.expires > now);
        if self.entries.len() < self.capacity {
            return;
        }
        let evict = (self.capacity / EVICT_DIVISOR).max(1);
        let mut expiries: Vec<Instant> = self.entries.values().map(|entry| entry.expires).collect();
        let (_, threshold, _) = expiries.select_nth_unstable(evict - 1);
        let threshold = *threshold;
        let mut evicted = 0;
        self.entries.retain(|_, entry| {
            if evicted < evict && entry.expires <= threshold {
                evicted += 1;
                false
            } else {
                true
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;
    use std::sync::Arc;

    const MAX_TTL: Duration = Duration::from_secs(3600);
    const NEGATIVE_TTL: Duration = Duration::from_secs(60);

    fn addrs(addr: &str) -> Result<Addrs, DnsError> {
        Ok(Arc::from(vec![addr.parse::<IpAddr>().unwrap()]))
    }

    #[test]
    fn positive_answer_lives_for_its_ttl() {
        let start = Instant::now();
        let mut cache = Cache::new(16, MAX_TTL, NEGATIVE_TTL);
        cache.store("a.test", &addrs("192.0.2.1"), Duration::from_secs(30), start);
        assert_eq!(
            cache.get("a.test", start + Duration::from_secs(29)),
            Some(addrs("192.0.2.1"))
        );
        assert_eq!(cache.get("a.test", start + Duration::from_secs(30)), None);
        assert_eq!(cache.len(), 0, "expired entry is dropped on lookup");
    }

    #[test]
    fn positive_ttl_is_capped_by_max_ttl() {
        let start = Instant::now();
        let mut cache = Cache::new(16, Duration::from_secs(10), NEGATIVE_TTL);
        cache.store("a.test", &addrs("192.0.2.1"), Duration::from_secs(86_400), start);
        assert!(cache.get("a.test", start + Duration::from_secs(9)).is_some());
        assert!(cache.get("a.test", start + Duration::from_secs(10)).is_none());
    }

    #[test]
    fn negative_answers_live_for_negative_ttl() {
        let start = Instant::now();
        let mut cache = Cache::new(16, MAX_TTL, NEGATIVE_TTL);
        let missing = Err(DnsError::NotFound {
            name: "gone.test".into(),
        });
        cache.store("gone.test", &missing, Duration::ZERO, start);
        assert_eq!(
            cache.get("gone.test", start + NEGATIVE_TTL - Duration::from_millis(1)),
            Some(missing)
        );
        assert_eq!(cache.get("gone.test", start + NEGATIVE_TTL), None);
    }

    #[test]
    fn resolver_failures_and_zero_ttl_are_not_cached() {
        let start = Instant::now();
        let mut cache = Cache::new(16, MAX_TTL, NEGATIVE_TTL);
        let unavailable = Err(DnsError::Unavailable {
            name: "x.test".into(),
            detail: "timeout".into(),
        });
        cache.store("x.test", &unavailable, Duration::from_secs(60), start);
        cache.store("y.test", &addrs("192.0.2.1"), Duration::ZERO, start);
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn full_cache_evicts_expired_then_soonest_expiring() {
        let start = Instant::now();
        let mut cache = Cache::new(8, MAX_TTL, NEGATIVE_TTL);
        for i in 0..8u64 {
            cache.store(
                &format!("n{i}.test"),
                &addrs("192.0.2.1"),
                Duration::from_secs(10 + i),
                start,
            );
        }
        assert_eq!(cache.len(), 8);
        cache.store("new.test", &addrs("192.0.2.2"), Duration::from_secs(100), start);
        assert_eq!(cache.len(), 8, "one live entry made room");
        assert!(
            cache.get("n0.test", start).is_none(),
            "the soonest-expiring entry went first"
        );
        assert!(cache.get("n1.test", start).is_some());

        // Later, everything but new.test has expired: one purge frees the lot.
        cache.store(
            "later.test",
            &addrs("192.0.2.3"),
            Duration::from_secs(100),
            start + Duration::from_secs(50),
        );
        assert_eq!(cache.len(), 2);
    }
}
