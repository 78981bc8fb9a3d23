//! The buckets this host may load, shared between the lease keeper (which changes them) and the site store
//! (which reads them at the start of every round).
//!
//! A bucket the keeper must give up is first taken out of the rounds ("draining"); only once a round has
//! started without it is the lease released, so the host that takes it over never checks it while a round
//! of ours still does.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

#[derive(Debug, Default)]
struct Inner {
    owned: BTreeSet<u16>,
    /// Bucket -> the round count when it was taken out of the rounds.
    draining: BTreeMap<u16, u64>,
    rounds: u64,
}

/// Owned buckets, as the rounds see them.
#[derive(Debug, Default)]
pub struct LeasedBuckets {
    inner: Mutex<Inner>,
}

impl LeasedBuckets {
    /// Called by the store when a round starts: the buckets to load (owned and not draining).
    pub fn begin_round(&self) -> Vec<u16> {
        let mut inner = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        inner.rounds += 1;
        inner
            .owned
            .iter()
            .filter(|b| !inner.draining.contains_key(b))
            .copied()
            .collect()
    }

    /// Excess buckets that no running round uses any more: a round has started since they were taken out.
    /// Their leases may be given up now.
    pub fn drained(&self) -> BTreeSet<u16> {
        let inner = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        inner
            .draining
            .iter()
            .filter(|(_, marked)| inner.rounds > **marked)
            .map(|(b, _)| *b)
            .collect()
    }

    /// The keeper's view after a heartbeat: `owned` now held, `excess` of those to give up (taken out of
    /// the next rounds from now on).
    pub fn set(&self, owned: &BTreeSet<u16>, excess: &BTreeSet<u16>) {
        let mut inner = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        inner.owned = owned.clone();
        let rounds = inner.rounds;
        inner.draining.retain(|b, _| excess.contains(b));
        for b in excess {
            inner.draining.entry(*b).or_insert(rounds);
        }
    }

    /// Buckets held right now.
    pub fn owned(&self) -> BTreeSet<u16> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .owned
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excess_is_released_only_after_a_round_started_without_it() {
        let leased = LeasedBuckets::default();
        let all: BTreeSet<u16> = (0..4).collect();
        leased.set(&all, &BTreeSet::new());
        assert_eq!(leased.begin_round(), vec![0, 1, 2, 3]);
        let excess = BTreeSet::from([3]);
        leased.set(&all, &excess);
        assert!(leased.drained().is_empty(), "the running round still uses bucket 3");
        assert_eq!(leased.begin_round(), vec![0, 1, 2], "the next round leaves it out");
        assert_eq!(leased.drained(), excess, "now it can go");
        leased.set(&BTreeSet::from([0, 1, 2]), &BTreeSet::new());
        assert_eq!(leased.owned(), BTreeSet::from([0, 1, 2]));
        assert!(leased.drained().is_empty());
    }
}
