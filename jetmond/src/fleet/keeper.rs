//! The lease keeper: a thread of its own that heartbeats every `lease_heartbeat_sec`, so a slow round or a
//! slow store on the control thread never lets our leases lapse.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::buckets::LeasedBuckets;
use super::lease_store::{ranges, LeaseStore};
use crate::store::StoreError;

/// Granularity of the keeper's sleep, so stop is noticed quickly.
const STOP_POLL: Duration = Duration::from_millis(100);

/// A running keeper. Dropping it stops the thread and gives the leases up.
pub struct LeaseKeeper {
    buckets: Arc<LeasedBuckets>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl LeaseKeeper {
    /// Heartbeats once (so the first round already has buckets), then keeps heartbeating every `interval`.
    pub fn start(mut store: LeaseStore, interval: Duration) -> Result<LeaseKeeper, StoreError> {
        store.ensure_rows()?;
        let buckets = Arc::new(LeasedBuckets::default());
        beat(&mut store, &buckets)?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (buckets, stop) = (Arc::clone(&buckets), Arc::clone(&stop));
            std::thread::Builder::new()
                .name("lease-keeper".into())
                .spawn(move || run(store, &buckets, &stop, interval))
                .map_err(|e| StoreError::Database(format!("cannot start the lease keeper: {e}")))?
        };
        Ok(LeaseKeeper {
            buckets,
            stop,
            thread: Some(thread),
        })
    }

    /// The buckets the store loads each round.
    pub fn buckets(&self) -> Arc<LeasedBuckets> {
        Arc::clone(&self.buckets)
    }
}

impl Drop for LeaseKeeper {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("the lease keeper panicked");
            }
        }
    }
}

fn beat(store: &mut LeaseStore, buckets: &LeasedBuckets) -> Result<(), StoreError> {
    let before = buckets.owned();
    let outcome = store.heartbeat(&buckets.drained())?;
    buckets.set(&outcome.owned, &outcome.excess);
    if outcome.owned != before {
        let owned: Vec<u16> = outcome.owned.iter().copied().collect();
        tracing::info!(
            hosts = outcome.hosts,
            buckets = owned.len(),
            owned = %ranges(&owned),
            draining = outcome.excess.len(),
            "bucket leases changed"
        );
    }
    Ok(())
}

fn run(mut store: LeaseStore, buckets: &LeasedBuckets, stop: &AtomicBool, interval: Duration) {
    let mut next = Instant::now() + interval;
    while !stop.load(Ordering::Relaxed) {
        if Instant::now() < next {
            std::thread::sleep(STOP_POLL.min(next.saturating_duration_since(Instant::now())));
            continue;
        }
        next = Instant::now() + interval;
        if let Err(e) = beat(&mut store, buckets) {
            // Keep checking the buckets we have; the leases are renewed as soon as the database answers.
            tracing::error!("lease heartbeat failed: {e}");
        }
    }
    match store.leave() {
        Ok(()) => tracing::info!("bucket leases released"),
        Err(e) => tracing::warn!("could not release the bucket leases (they expire by themselves): {e}"),
    }
}
