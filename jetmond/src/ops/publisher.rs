//! [`OpsPublisher`]: the control thread's side of the ops view. It owns what only the loop needs to know
//! to build a [`ControlSnapshot`] (the throughput window, when the current round finished) and rate-limits
//! the snapshots to one per [`PUBLISH_INTERVAL`].

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jetmon_engine::EngineStats;

use super::state::{ControlSnapshot, OpsState, RoundSnapshot, PUBLISH_INTERVAL};
use crate::daemon::verifliers::VeriflierHealth;
use crate::daemon::DaemonStats;
use crate::outbox::OutboxStats;

/// The throughput is averaged over this long.
pub const RATE_WINDOW: Duration = Duration::from_secs(10);

/// What the control loop hands over for one snapshot.
#[derive(Debug, Clone)]
pub struct LoopState {
    /// The loop's counters.
    pub daemon: DaemonStats,
    /// The engine's counters.
    pub engine: EngineStats,
    /// Time between round starts.
    pub round_interval: Duration,
    /// `(dispatched, total)` of the current round.
    pub round_progress: (usize, usize),
    /// How late the next round is.
    pub round_lag: Duration,
    /// Sites loaded from the store.
    pub sites_tracked: usize,
    /// Buckets this host holds leases on (`bucket_leases` only).
    pub buckets_held: Option<usize>,
    /// Re-checks waiting.
    pub rechecks_waiting: usize,
    /// Why the last store access failed, if it did.
    pub store_error: Option<String>,
    /// Veriflier health by name.
    pub verifliers: Vec<(String, VeriflierHealth)>,
    /// The outbox's counts, if there is one.
    pub outbox: Option<OutboxStats>,
}

/// Builds and publishes snapshots for the ops server.
#[derive(Debug)]
pub struct OpsPublisher {
    state: Arc<OpsState>,
    last_publish: Option<Instant>,
    /// `(when, results so far)`, oldest first, spanning about [`RATE_WINDOW`].
    results_seen: VecDeque<(Instant, u64)>,
    round_started: Option<Instant>,
    round_finished: bool,
    last_round_duration: Option<Duration>,
}

impl OpsPublisher {
    /// Publishes into `state`.
    pub fn new(state: Arc<OpsState>) -> OpsPublisher {
        OpsPublisher {
            state,
            last_publish: None,
            results_seen: VecDeque::new(),
            round_started: None,
            round_finished: false,
            last_round_duration: None,
        }
    }

    /// Where per-result updates go.
    pub fn state(&self) -> &OpsState {
        &self.state
    }

    /// Called on every turn of the loop (cheap): notes when the current round, started at `started`, has
    /// nothing left to dispatch or wait for (`finished`).
    pub fn note_round(&mut self, now: Instant, started: Option<Instant>, finished: bool) {
        if started != self.round_started {
            self.round_started = started;
            self.round_finished = false;
        }
        if finished && !self.round_finished {
            self.round_finished = true;
            self.last_round_duration = started.map(|at| now.saturating_duration_since(at));
        }
    }

    /// Whether a snapshot is due.
    pub fn due(&self, now: Instant) -> bool {
        self.last_publish
            .is_none_or(|last| now.saturating_duration_since(last) >= PUBLISH_INTERVAL)
    }

    /// Publishes the loop's state as of `now`.
    pub fn publish(&mut self, now: Instant, loop_state: LoopState) {
        self.last_publish = Some(now);
        self.results_seen.push_back((now, loop_state.daemon.results));
        while self
            .results_seen
            .front()
            .is_some_and(|(at, _)| now.saturating_duration_since(*at) > RATE_WINDOW)
        {
            self.results_seen.pop_front();
        }
        let results_per_second = match (self.results_seen.front(), self.results_seen.back()) {
            (Some((first_at, first)), Some((last_at, last))) if last_at > first_at => {
                last.saturating_sub(*first) as f64 / last_at.saturating_duration_since(*first_at).as_secs_f64()
            }
            _ => 0.0,
        };
        let (dispatched, total) = loop_state.round_progress;
        self.state.publish(ControlSnapshot {
            at: now,
            daemon: loop_state.daemon,
            engine: loop_state.engine,
            round: RoundSnapshot {
                interval: loop_state.round_interval,
                started: self.round_started,
                dispatched,
                total,
                lag: loop_state.round_lag,
                last_duration: self.last_round_duration,
            },
            sites_tracked: loop_state.sites_tracked,
            buckets_held: loop_state.buckets_held,
            rechecks_waiting: loop_state.rechecks_waiting,
            results_per_second,
            store_error: loop_state.store_error,
            verifliers: loop_state.verifliers,
            outbox: loop_state.outbox,
        });
    }
}
