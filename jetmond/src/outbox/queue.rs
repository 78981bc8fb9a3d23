//! Which notification is delivered next. Sans-IO: entries and instants in, entries out.
//!
//! The rule that keeps each site's story in order: only the oldest undelivered notification of a site
//! (its *head*, lowest `seq`) may be sent, and never while a delivery of that site is in flight. A newer
//! notification therefore never reaches WPCOM before an older one of the same site, while different
//! sites proceed in parallel, so one failing site does not hold the others back.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use super::OutboxEntry;
use crate::status::{BlogId, UnixMillis};

/// The undelivered notifications and the per-site order they go out in.
///
/// ```
/// use jetmond::outbox::{DeliveryQueue, OutboxEntry};
/// use jetmond::status::{Notification, SiteStatus, UnixMillis};
///
/// let now = UnixMillis::from_millis(1_000);
/// let notification = Notification {
///     blog_id: 7, monitor_url: "https://a.example".into(), status_id: SiteStatus::Down,
///     last_check: now, last_status_change: now, checks: vec![],
/// };
/// let mut queue = DeliveryQueue::default();
/// queue.push(OutboxEntry::new(1, notification.clone(), now));
/// queue.push(OutboxEntry::new(2, notification, now));
/// let first = queue.next_ready(now).map(|entry| entry.seq);
/// assert_eq!(first, Some(1));
/// assert!(queue.next_ready(now).is_none(), "site 7 has a delivery in flight");
/// ```
#[derive(Debug, Default)]
pub struct DeliveryQueue {
    entries: BTreeMap<u64, OutboxEntry>,
    /// Each site's undelivered `seq`s, oldest first.
    per_site: HashMap<BlogId, VecDeque<u64>>,
    /// The `seq` being delivered, per site.
    in_flight: HashMap<BlogId, u64>,
    /// Heads of the sites without a delivery in flight, by due time.
    ready: BTreeSet<(UnixMillis, u64)>,
}

impl DeliveryQueue {
    /// Adds `entry` in its site's order. Returns false (and changes nothing) if its `seq` is already here,
    /// so re-reading the store merges rather than duplicates.
    pub fn push(&mut self, entry: OutboxEntry) -> bool {
        if self.entries.contains_key(&entry.seq) {
            return false;
        }
        let blog_id = entry.blog_id();
        let seq = entry.seq;
        self.unmark_head(blog_id);
        self.entries.insert(seq, entry);
        let queue = self.per_site.entry(blog_id).or_default();
        // An in-flight head stays first: an older entry appearing now (a replayed dead letter) goes right
        // after it rather than jumping a delivery that may already have reached WPCOM.
        let floor = usize::from(self.in_flight.contains_key(&blog_id));
        let position = queue.iter().skip(floor).take_while(|other| **other < seq).count() + floor;
        queue.insert(position.min(queue.len()), seq);
        self.mark_head(blog_id);
        true
    }

    /// The next entry to deliver at `now`, marked in flight until [`DeliveryQueue::finish`] or
    /// [`DeliveryQueue::retry_at`]: the head of the site that has been due longest.
    pub fn next_ready(&mut self, now: UnixMillis) -> Option<OutboxEntry> {
        let (due, seq) = *self.ready.first()?;
        if due > now {
            return None;
        }
        self.ready.remove(&(due, seq));
        let entry = self.entries.get(&seq)?.clone();
        self.in_flight.insert(entry.blog_id(), seq);
        Some(entry)
    }

    /// Entry `seq` is done with (delivered or dead-lettered): its site's next entry becomes ready.
    pub fn finish(&mut self, seq: u64) -> Option<OutboxEntry> {
        let entry = self.entries.remove(&seq)?;
        let blog_id = entry.blog_id();
        self.unmark_head(blog_id);
        if self.in_flight.get(&blog_id) == Some(&seq) {
            self.in_flight.remove(&blog_id);
        }
        if let Some(queue) = self.per_site.get_mut(&blog_id) {
            queue.retain(|other| *other != seq);
            if queue.is_empty() {
                self.per_site.remove(&blog_id);
            }
        }
        self.mark_head(blog_id);
        Some(entry)
    }

    /// Entry `seq` failed: it stays its site's head, with `attempts` failures, due again at `next`.
    pub fn retry_at(&mut self, seq: u64, attempts: u32, next: UnixMillis, error: String) {
        let Some(entry) = self.entries.get_mut(&seq) else {
            return;
        };
        entry.attempts = attempts;
        entry.next_attempt_at = next;
        entry.last_error = Some(error);
        let blog_id = entry.blog_id();
        if self.in_flight.get(&blog_id) == Some(&seq) {
            self.in_flight.remove(&blog_id);
        }
        self.unmark_head(blog_id);
        self.mark_head(blog_id);
    }

    /// When the next entry becomes due (`None`: nothing is waiting to be sent).
    pub fn next_due(&self) -> Option<UnixMillis> {
        self.ready.first().map(|(due, _)| *due)
    }

    /// Whether entry `seq` is here.
    pub fn contains(&self, seq: u64) -> bool {
        self.entries.contains_key(&seq)
    }

    /// Undelivered entries, in flight included.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is undelivered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Deliveries in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// The undelivered entry accepted first (lowest `seq`; both stores hand out `seq`s in acceptance
    /// order), whose age is the outbox's delay.
    pub fn oldest(&self) -> Option<&OutboxEntry> {
        self.entries.values().next()
    }

    fn head(&self, blog_id: BlogId) -> Option<&OutboxEntry> {
        let seq = self.per_site.get(&blog_id)?.front()?;
        self.entries.get(seq)
    }

    fn unmark_head(&mut self, blog_id: BlogId) {
        if let Some(key) = self.head(blog_id).map(|head| (head.next_attempt_at, head.seq)) {
            self.ready.remove(&key);
        }
    }

    fn mark_head(&mut self, blog_id: BlogId) {
        if self.in_flight.contains_key(&blog_id) {
            return;
        }
        if let Some(key) = self.head(blog_id).map(|head| (head.next_attempt_at, head.seq)) {
            self.ready.insert(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::{Notification, SiteStatus};

    fn at(millis: u64) -> UnixMillis {
        UnixMillis::from_millis(millis)
    }

    fn entry(seq: u64, blog_id: BlogId, now: u64) -> OutboxEntry {
        let notification = Notification {
            blog_id,
            monitor_url: format!("https://{blog_id}.example"),
            status_id: SiteStatus::Down,
            last_check: at(now),
            last_status_change: at(now),
            checks: vec![],
        };
        OutboxEntry::new(seq, notification, at(now))
    }

    fn drain(queue: &mut DeliveryQueue, now: u64) -> Vec<u64> {
        std::iter::from_fn(|| queue.next_ready(at(now)).map(|entry| entry.seq)).collect()
    }

    #[test]
    fn one_delivery_per_site_at_a_time_and_sites_in_parallel() {
        let mut queue = DeliveryQueue::default();
        for (seq, blog) in [(1, 10), (2, 20), (3, 10), (4, 30), (5, 20)] {
            assert!(queue.push(entry(seq, blog, 0)));
        }
        assert_eq!(drain(&mut queue, 0), [1, 2, 4], "the head of each site");
        queue.finish(1);
        assert_eq!(
            drain(&mut queue, 0),
            [3],
            "site 10's next, only after its first is done"
        );
        queue.finish(2);
        queue.finish(4);
        assert_eq!(drain(&mut queue, 0), [5]);
        assert_eq!((queue.len(), queue.in_flight()), (2, 2));
    }

    #[test]
    fn a_failing_head_holds_back_its_site_only_until_its_retry_succeeds() {
        let mut queue = DeliveryQueue::default();
        queue.push(entry(1, 10, 0));
        queue.push(entry(2, 10, 0));
        queue.push(entry(3, 20, 0));
        assert_eq!(drain(&mut queue, 0), [1, 3]);
        queue.retry_at(1, 1, at(1_000), "500".into());
        queue.finish(3);
        assert_eq!(drain(&mut queue, 999), Vec::<u64>::new(), "seq 2 must wait for seq 1");
        assert_eq!(queue.next_due(), Some(at(1_000)));
        assert_eq!(drain(&mut queue, 1_000), [1]);
        queue.finish(1);
        assert_eq!(drain(&mut queue, 1_000), [2]);
    }

    #[test]
    fn order_per_site_holds_over_a_fake_clock_with_random_failures() {
        // A fake clock and a deterministic "receiver" failing every third attempt: whatever the timing,
        // each site's deliveries come out in seq order.
        let mut queue = DeliveryQueue::default();
        let sites = [1u64, 2, 3, 4];
        for seq in 1..=40u64 {
            queue.push(entry(seq, sites[(seq % 4) as usize], 0));
        }
        let mut delivered: HashMap<BlogId, Vec<u64>> = HashMap::new();
        let mut attempt = 0u64;
        let mut now = 0u64;
        while !queue.is_empty() {
            let batch: Vec<OutboxEntry> = std::iter::from_fn(|| queue.next_ready(at(now))).collect();
            for sent in batch {
                attempt += 1;
                if attempt % 3 == 0 {
                    queue.retry_at(sent.seq, sent.attempts + 1, at(now + 7), "flaky".into());
                } else {
                    delivered.entry(sent.blog_id()).or_default().push(sent.seq);
                    queue.finish(sent.seq);
                }
            }
            now += 5;
            assert!(now < 100_000, "queue never drained");
        }
        for (blog_id, seqs) in delivered {
            let mut sorted = seqs.clone();
            sorted.sort_unstable();
            assert_eq!(seqs, sorted, "site {blog_id} delivered out of order");
            assert_eq!(seqs.len(), 10);
        }
    }

    #[test]
    fn pushing_a_known_seq_is_a_no_op() {
        let mut queue = DeliveryQueue::default();
        assert!(queue.push(entry(1, 10, 0)));
        assert!(!queue.push(entry(1, 10, 0)));
        assert_eq!(queue.len(), 1);
    }

    #[test]
    fn an_older_entry_pushed_later_goes_first_unless_its_site_is_in_flight() {
        let mut queue = DeliveryQueue::default();
        queue.push(entry(5, 10, 0));
        queue.push(entry(3, 10, 0));
        assert_eq!(drain(&mut queue, 0), [3]);
        queue.push(entry(1, 10, 0));
        queue.finish(3);
        assert_eq!(drain(&mut queue, 0), [1], "the replayed older entry goes before seq 5");
    }

    #[test]
    fn entries_not_yet_due_are_not_handed_out() {
        let mut queue = DeliveryQueue::default();
        let mut late = entry(1, 10, 0);
        late.next_attempt_at = at(500);
        queue.push(late);
        assert!(queue.next_ready(at(499)).is_none());
        assert_eq!(queue.next_ready(at(500)).map(|e| e.seq), Some(1));
    }
}
