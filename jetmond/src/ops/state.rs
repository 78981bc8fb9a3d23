//! [`OpsState`]: what the control thread publishes and the ops server reads.
//!
//! Three kinds of data, each published as cheaply as its rate allows:
//! - per result (thousands a second): relaxed atomic counters and histograms, and the site's history ring
//!   behind one of [`SITE_SHARDS`] mutexes (a reader locks one shard for one site's copy, never the map);
//! - per status change (rare): the bounded list of recent changes;
//! - every [`PUBLISH_INTERVAL`]: a [`ControlSnapshot`] of the loop's own state, swapped in whole.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant, SystemTime};

use jetmon_engine::{CheckResult, EngineStats, ErrorClass, Verdict};
use serde::Serialize;

use super::histogram::Histogram;
use super::history::SiteHistory;
use crate::daemon::verifliers::VeriflierHealth;
use crate::daemon::DaemonStats;
use crate::outbox::OutboxStats;
use crate::status::{BlogId, Notification, SiteStatus, UnixMillis};

/// Shards of the per-site map: the control thread writes one shard per result while the server may read
/// another, so they rarely meet on a lock.
pub const SITE_SHARDS: usize = 64;
/// Status changes kept for `/api/status` and the page.
pub const RECENT_CHANGES: usize = 100;
/// Longest time between two [`ControlSnapshot`]s while the loop runs.
pub const PUBLISH_INTERVAL: Duration = Duration::from_millis(250);
/// A round that has not started for this many round intervals makes `/readyz` fail.
pub const STALLED_ROUNDS: u32 = 2;
/// The check phases with a histogram each, in the order of [`OpsState::phase`].
pub const PHASES: [&str; 4] = ["dns", "connect", "tls", "ttfb"];
/// Statuses counted by [`OpsState::sites_by_status`], in its order.
pub const STATUSES: [SiteStatus; 3] = [SiteStatus::Running, SiteStatus::Down, SiteStatus::ConfirmedDown];

/// The control loop's state at one instant.
#[derive(Debug, Clone)]
pub struct ControlSnapshot {
    /// When it was taken.
    pub at: Instant,
    /// The loop's counters.
    pub daemon: DaemonStats,
    /// The engine's counters.
    pub engine: EngineStats,
    /// The current round.
    pub round: RoundSnapshot,
    /// Sites loaded from the store.
    pub sites_tracked: usize,
    /// Buckets this host holds leases on (`bucket_leases` only).
    pub buckets_held: Option<usize>,
    /// Re-checks waiting for their time.
    pub rechecks_waiting: usize,
    /// Results per second over the last few seconds.
    pub results_per_second: f64,
    /// Why the last store access (load or write-back) failed; `None` when it succeeded.
    pub store_error: Option<String>,
    /// Health of each veriflier, by name.
    pub verifliers: Vec<(String, VeriflierHealth)>,
    /// The WPCOM outbox's counts, when notifications go through one.
    pub outbox: Option<OutboxStats>,
}

/// The round part of a [`ControlSnapshot`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RoundSnapshot {
    /// Time between round starts.
    pub interval: Duration,
    /// When the current round started; `None` before the first.
    pub started: Option<Instant>,
    /// Sites of the current round dispatched so far.
    pub dispatched: usize,
    /// Sites in the current round.
    pub total: usize,
    /// How late the next round is because this one is still being dispatched.
    pub lag: Duration,
    /// From start until every check it sent (and any re-check then in flight) finished, for the last round
    /// that got there.
    pub last_duration: Option<Duration>,
}

/// One status change, for the recent-changes list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatusChange {
    /// The site.
    pub blog_id: BlogId,
    /// Its URL.
    pub monitor_url: String,
    /// The new status (`running`, `down`, `confirmed_down`).
    pub status: &'static str,
    /// When it changed, in milliseconds since the Unix epoch.
    pub at: u64,
}

/// Shared between the control thread (writes) and the ops server (reads).
#[derive(Debug)]
pub struct OpsState {
    started: Instant,
    started_wall: SystemTime,
    /// Results by verdict: `[up, down]`.
    verdicts: [AtomicU64; 2],
    /// Failed results by class, in the order of [`ErrorClass::ALL`].
    errors: [AtomicU64; ErrorClass::ALL.len()],
    rtt: Histogram,
    phases: [Histogram; PHASES.len()],
    notifications_failed: AtomicU64,
    /// Sites with a history, by status, in the order of [`STATUSES`].
    by_status: [AtomicU64; STATUSES.len()],
    sites: Box<[Mutex<HashMap<BlogId, SiteHistory>>]>,
    recent_changes: Mutex<VecDeque<StatusChange>>,
    snapshot: RwLock<Option<Arc<ControlSnapshot>>>,
}

impl Default for OpsState {
    fn default() -> Self {
        OpsState::new()
    }
}

impl OpsState {
    /// Empty state; `/readyz` says "starting" until the first snapshot.
    pub fn new() -> OpsState {
        OpsState {
            started: Instant::now(),
            started_wall: SystemTime::now(),
            verdicts: Default::default(),
            errors: Default::default(),
            rtt: Histogram::default(),
            phases: Default::default(),
            notifications_failed: AtomicU64::new(0),
            by_status: Default::default(),
            sites: (0..SITE_SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            recent_changes: Mutex::new(VecDeque::with_capacity(RECENT_CHANGES)),
            snapshot: RwLock::new(None),
        }
    }

    // --- written by the control thread ---

    /// Counts one result and, for a tracked site (`status` is its state after the result), adds it to the
    /// site's history. O(1): a few relaxed adds, one shard lock, one hash lookup.
    pub fn record_result(
        &self,
        result: &CheckResult,
        at: UnixMillis,
        status: Option<(SiteStatus, Option<UnixMillis>)>,
    ) {
        let verdict = usize::from(result.verdict != Verdict::Up);
        self.verdicts[verdict].fetch_add(1, Ordering::Relaxed);
        if let Some(index) = result
            .error
            .and_then(|class| ErrorClass::ALL.iter().position(|c| *c == class))
        {
            self.errors[index].fetch_add(1, Ordering::Relaxed);
        }
        // Checks that never got a response have no meaningful round trip; their time is the timeout.
        if result.code != 0 {
            self.rtt.observe(result.rtt);
        }
        let timings = result.timings;
        for (histogram, phase) in self
            .phases
            .iter()
            .zip([timings.dns, timings.connect, timings.tls, timings.ttfb])
        {
            if let Some(duration) = phase {
                histogram.observe(duration);
            }
        }
        let Some((status, last_change)) = status else {
            return;
        };
        self.with_site(result.id, status, last_change, |history| history.record(at, result));
    }

    /// A site's status changed (or was written back).
    pub fn status_changed(&self, blog_id: BlogId, status: SiteStatus, last_status_change: UnixMillis) {
        self.with_site(blog_id, status, Some(last_status_change), |_| {});
    }

    /// A notification went to the notifier; `accepted` is whether the notifier took it.
    pub fn notified(&self, notification: &Notification, accepted: bool) {
        if !accepted {
            self.notifications_failed.fetch_add(1, Ordering::Relaxed);
        }
        let mut changes = self.recent_changes.lock().unwrap_or_else(PoisonError::into_inner);
        if changes.len() >= RECENT_CHANGES {
            changes.pop_back();
        }
        changes.push_front(StatusChange {
            blog_id: notification.blog_id,
            monitor_url: notification.monitor_url.clone(),
            status: status_name(notification.status_id),
            at: notification.last_status_change.as_millis(),
        });
    }

    /// The site left the store: its history goes too.
    pub fn forget(&self, blog_id: BlogId) {
        let removed = self.shard(blog_id).remove(&blog_id);
        if let Some(history) = removed {
            self.by_status[status_index(history.status())].fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Replaces the control snapshot.
    pub fn publish(&self, snapshot: ControlSnapshot) {
        *self.snapshot.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(snapshot));
    }

    fn with_site(
        &self,
        blog_id: BlogId,
        status: SiteStatus,
        last_change: Option<UnixMillis>,
        update: impl FnOnce(&mut SiteHistory),
    ) {
        let mut shard = self.shard(blog_id);
        let history = shard.entry(blog_id).or_insert_with(|| {
            self.by_status[status_index(status)].fetch_add(1, Ordering::Relaxed);
            SiteHistory::new(status, last_change)
        });
        let previous = history.set_status(status, last_change);
        if previous != status {
            self.by_status[status_index(previous)].fetch_sub(1, Ordering::Relaxed);
            self.by_status[status_index(status)].fetch_add(1, Ordering::Relaxed);
        }
        update(history);
    }

    fn shard(&self, blog_id: BlogId) -> std::sync::MutexGuard<'_, HashMap<BlogId, SiteHistory>> {
        // `sites` has SITE_SHARDS entries, never zero; the modulo keeps the index in range.
        let index = (blog_id % self.sites.len() as u64) as usize;
        self.sites[index].lock().unwrap_or_else(PoisonError::into_inner)
    }

    // --- read by the ops server ---

    /// A copy of one site's history, if the site has had a result.
    pub fn site(&self, blog_id: BlogId) -> Option<SiteHistory> {
        self.shard(blog_id).get(&blog_id).cloned()
    }

    /// The latest control snapshot.
    pub fn snapshot(&self) -> Option<Arc<ControlSnapshot>> {
        self.snapshot.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Recent status changes, newest first.
    pub fn recent_changes(&self) -> Vec<StatusChange> {
        let changes = self.recent_changes.lock().unwrap_or_else(PoisonError::into_inner);
        changes.iter().cloned().collect()
    }

    /// Results by verdict: `(up, down)`.
    pub fn verdicts(&self) -> (u64, u64) {
        (
            self.verdicts[0].load(Ordering::Relaxed),
            self.verdicts[1].load(Ordering::Relaxed),
        )
    }

    /// Failed results by class.
    pub fn errors(&self) -> impl Iterator<Item = (ErrorClass, u64)> + '_ {
        ErrorClass::ALL
            .iter()
            .zip(&self.errors)
            .map(|(class, count)| (*class, count.load(Ordering::Relaxed)))
    }

    /// The RTT histogram (checks that got a response).
    pub fn rtt(&self) -> &Histogram {
        &self.rtt
    }

    /// The histogram of phase `index` of [`PHASES`].
    pub fn phase(&self, index: usize) -> Option<&Histogram> {
        self.phases.get(index)
    }

    /// Notifications the notifier refused.
    pub fn notifications_failed(&self) -> u64 {
        self.notifications_failed.load(Ordering::Relaxed)
    }

    /// Sites with a history, by status, in the order of [`STATUSES`].
    pub fn sites_by_status(&self) -> [u64; STATUSES.len()] {
        let mut counts = [0; STATUSES.len()];
        for (count, atomic) in counts.iter_mut().zip(&self.by_status) {
            *count = atomic.load(Ordering::Relaxed);
        }
        counts
    }

    /// How long the process has run.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// When the process started.
    pub fn started_wall(&self) -> SystemTime {
        self.started_wall
    }

    /// `Ok` when the store answered at the last attempt and rounds keep starting; else every reason not.
    pub fn readiness(&self, now: Instant) -> Result<(), Vec<String>> {
        let Some(snapshot) = self.snapshot() else {
            return Err(vec![
                "starting: the control loop has not published its state yet".to_string()
            ]);
        };
        let mut reasons = Vec::new();
        if let Some(error) = &snapshot.store_error {
            reasons.push(format!("store unreachable at the last attempt: {error}"));
        }
        let limit = snapshot.round.interval * STALLED_ROUNDS;
        let since_round = now.saturating_duration_since(snapshot.round.started.unwrap_or(self.started));
        if since_round > limit {
            reasons.push(format!(
                "round stalled: no round started for {} s (limit {} s, {STALLED_ROUNDS} round intervals)",
                since_round.as_secs(),
                limit.as_secs()
            ));
        }
        let since_publish = now.saturating_duration_since(snapshot.at);
        if since_publish > limit.max(PUBLISH_INTERVAL * 20) {
            reasons.push(format!(
                "control loop stalled: no update for {} s",
                since_publish.as_secs()
            ));
        }
        if reasons.is_empty() {
            Ok(())
        } else {
            Err(reasons)
        }
    }
}

/// The name the API and metrics give a status.
pub fn status_name(status: SiteStatus) -> &'static str {
    match status {
        SiteStatus::Running => "running",
        SiteStatus::Down => "down",
        SiteStatus::ConfirmedDown => "confirmed_down",
    }
}

fn status_index(status: SiteStatus) -> usize {
    match status {
        SiteStatus::Running => 0,
        SiteStatus::Down => 1,
        SiteStatus::ConfirmedDown => 2,
    }
}
