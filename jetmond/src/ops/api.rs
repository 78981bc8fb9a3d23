//! The JSON answers of `/api/sites/{blog_id}` and `/api/status`.

use std::time::Instant;

use serde::Serialize;

use super::history::{RecordedResult, SiteHistory, HISTORY_LEN};
use super::state::{status_name, OpsState, StatusChange, STATUSES};
use crate::status::{BlogId, SiteStatus};

/// One site: its status and its last results, oldest first.
#[derive(Debug, Clone, Serialize)]
pub struct SiteView {
    /// The site.
    pub blog_id: BlogId,
    /// `running`, `down` or `confirmed_down`.
    pub status: &'static str,
    /// The status number of the database and the wire (0 down, 1 running, 2 confirmed down).
    pub status_id: u8,
    /// When the status last changed (ms since the Unix epoch), if known.
    pub last_status_change: Option<u64>,
    /// How many results the ring keeps.
    pub history_len: usize,
    /// The last results, oldest first.
    pub results: Vec<RecordedResult>,
}

impl SiteView {
    /// The view of `history`.
    pub fn new(blog_id: BlogId, history: &SiteHistory) -> SiteView {
        let status: SiteStatus = history.status();
        SiteView {
            blog_id,
            status: status_name(status),
            status_id: status.into(),
            last_status_change: history.last_status_change().map(|at| at.as_millis()),
            history_len: HISTORY_LEN,
            results: history.results().collect(),
        }
    }
}

/// The fleet at a glance.
#[derive(Debug, Clone, Serialize)]
pub struct FleetView {
    /// Seconds since start.
    pub uptime_seconds: u64,
    /// Whether `/readyz` answers 200, and if not, why.
    pub ready: bool,
    /// Reasons for not being ready.
    pub not_ready: Vec<String>,
    /// Rounds started.
    pub rounds: u64,
    /// The current round.
    pub round: RoundView,
    /// Results per second over the last 10 s.
    pub results_per_second: f64,
    /// Results by verdict since start.
    pub checks: CheckCounts,
    /// Sites by status (those checked at least once), and how many the store lists.
    pub sites: SiteCounts,
    /// Checks running in the engine now.
    pub in_flight: usize,
    /// Notifications handed to the notifier since start.
    pub notifications: u64,
    /// The latest status changes, newest first.
    pub recent_changes: Vec<StatusChange>,
}

/// The round part of [`FleetView`].
#[derive(Debug, Clone, Serialize)]
pub struct RoundView {
    /// Sites dispatched so far.
    pub dispatched: usize,
    /// Sites in the round.
    pub total: usize,
    /// How late the next round is, in ms.
    pub lag_ms: u64,
    /// Time between round starts, in seconds.
    pub interval_seconds: u64,
    /// Duration of the last finished round, in ms.
    pub last_duration_ms: Option<u64>,
}

/// Results by verdict.
#[derive(Debug, Clone, Serialize)]
pub struct CheckCounts {
    /// Up results.
    pub up: u64,
    /// Down results.
    pub down: u64,
}

/// Sites by status.
#[derive(Debug, Clone, Serialize)]
pub struct SiteCounts {
    /// Sites the store lists.
    pub tracked: usize,
    /// Running.
    pub running: u64,
    /// Down.
    pub down: u64,
    /// Confirmed down.
    pub confirmed_down: u64,
}

impl FleetView {
    /// The view of `state` at `now`.
    pub fn new(state: &OpsState, now: Instant) -> FleetView {
        let snapshot = state.snapshot();
        let not_ready = state.readiness(now).err().unwrap_or_default();
        let (up, down) = state.verdicts();
        let by_status = state.sites_by_status();
        let count = |wanted: SiteStatus| {
            STATUSES
                .iter()
                .zip(by_status)
                .find(|(status, _)| **status == wanted)
                .map_or(0, |(_, count)| count)
        };
        let round = snapshot.as_ref().map(|s| s.round);
        FleetView {
            uptime_seconds: state.uptime().as_secs(),
            ready: not_ready.is_empty(),
            not_ready,
            rounds: snapshot.as_ref().map_or(0, |s| s.daemon.rounds),
            round: RoundView {
                dispatched: round.map_or(0, |r| r.dispatched),
                total: round.map_or(0, |r| r.total),
                lag_ms: round.map_or(0, |r| r.lag.as_millis() as u64),
                interval_seconds: round.map_or(0, |r| r.interval.as_secs()),
                last_duration_ms: round.and_then(|r| r.last_duration).map(|d| d.as_millis() as u64),
            },
            results_per_second: snapshot.as_ref().map_or(0.0, |s| s.results_per_second),
            checks: CheckCounts { up, down },
            sites: SiteCounts {
                tracked: snapshot.as_ref().map_or(0, |s| s.sites_tracked),
                running: count(SiteStatus::Running),
                down: count(SiteStatus::Down),
                confirmed_down: count(SiteStatus::ConfirmedDown),
            },
            in_flight: snapshot.as_ref().map_or(0, |s| s.engine.in_flight),
            notifications: snapshot.as_ref().map_or(0, |s| s.daemon.notifications),
            recent_changes: state.recent_changes(),
        }
    }
}
