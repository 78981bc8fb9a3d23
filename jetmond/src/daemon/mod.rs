//! The control thread of `jetmond run`: owns the site store, the schedule and the status machine, feeds
//! checks to the engine and turns results into status changes. It is synchronous on purpose: a slow
//! database or notifier stalls this thread only, never the engine's event loops, which keep checking
//! what they were given.

pub mod legacy_callback;
pub mod notify;
pub mod schedule;
pub mod verifliers;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use jetmon_engine::{CheckRequest, CheckResult, Engine, Verdict};

use crate::ops::{LoopState, OpsPublisher, OpsState};
use crate::status::{
    Action, BlogId, CheckOutcome, Event, LocalCheck, MachineConfig, StatusMachine, UnixMillis, VeriflierAnswer,
    VeriflierUnavailable,
};
use crate::store::{Site, SiteStore, StatusUpdate};
use crate::weather::{WeatherGuard, WeatherHandle, WeatherSettings};
use notify::Notifier;
use schedule::{Rechecks, RoundPlan};
use veriflierd::protocol::CheckItem;
use verifliers::{VeriflierPool, VeriflierReply};

/// Canary interval of the default guard (which has no canaries; `jetmond run` sets its own guard).
const DEFAULT_CANARY_INTERVAL: Duration = Duration::from_secs(10);
/// Longest the loop sleeps waiting for results, so schedules and signals are looked at often enough.
const LOOP_WAIT: Duration = Duration::from_millis(20);
/// Status updates are written back at least this often (and at the end of a round, and at shutdown).
const PERSIST_INTERVAL: Duration = Duration::from_secs(1);
/// The status machine's timeouts (veriflier requests) are looked at this often.
const TICK_INTERVAL: Duration = Duration::from_secs(1);
/// Retry delays after a store failure: doubling from the first to the last.
const STORE_RETRY_FIRST: Duration = Duration::from_secs(1);
const STORE_RETRY_MAX: Duration = Duration::from_secs(60);

/// Flags set from signal handlers.
#[derive(Debug, Default)]
pub struct Signals {
    /// SIGTERM/SIGINT: finish in-flight checks, flush, exit.
    pub stop: Arc<AtomicBool>,
    /// SIGHUP: start a new round now, re-reading the site list.
    pub reload: Arc<AtomicBool>,
}

/// Settings of the control loop.
#[derive(Debug, Clone)]
pub struct DaemonSettings {
    /// Time between round starts.
    pub round_interval: Duration,
    /// This host's name in the notifications' `checks`.
    pub host_name: String,
    /// Time between stats lines.
    pub stats_interval: Duration,
    /// How long shutdown waits for in-flight checks.
    pub drain_timeout: Duration,
    /// `USE_VARIABLE_CHECK_INTERVALS`: each site is due after its own interval (this one when it has none),
    /// and rounds tick every `round_interval` (one minute in the original) to pick up the sites due.
    pub variable_intervals: Option<Duration>,
    /// Stop after the first round has been checked (re-checks it asked for are not waited for).
    pub once: bool,
}

/// Counts kept for the stats line and the final report.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DaemonStats {
    /// Rounds started.
    pub rounds: u64,
    /// Checks sent to the engine (round and re-checks).
    pub checks: u64,
    /// Of those, re-checks.
    pub rechecks: u64,
    /// Results received.
    pub results: u64,
    /// Up results.
    pub up: u64,
    /// Down results.
    pub down: u64,
    /// Notifications handed to the notifier.
    pub notifications: u64,
    /// Rounds that were not fully dispatched when the next was due.
    pub overruns: u64,
    /// Sites skipped because their previous check was still running.
    pub skipped_in_flight: u64,
    /// Store errors (load or persist).
    pub store_errors: u64,
}

/// Re-reads the configuration on SIGHUP: the new loop settings and status-machine settings, or why the
/// file was refused (the running settings then stay).
pub type Reloader = Box<dyn FnMut() -> Result<(DaemonSettings, MachineConfig), String> + Send>;

/// The control loop and everything it owns.
pub struct Daemon {
    settings: DaemonSettings,
    engine: Engine,
    store: Box<dyn SiteStore>,
    notifier: Box<dyn Notifier>,
    machine: StatusMachine,
    signals: Arc<Signals>,
    round: Option<RoundPlan>,
    next_round_at: Instant,
    rechecks: Rechecks,
    in_flight: HashSet<BlogId>,
    current_sites: HashSet<BlogId>,
    /// When each site was last put in a round (variable intervals only).
    last_round_check: HashMap<BlogId, Instant>,
    pending_updates: Vec<StatusUpdate>,
    stats: DaemonStats,
    store_retry: Duration,
    reloader: Option<Reloader>,
    verifliers: Option<VeriflierPool>,
    /// Sites waiting to be sent to the verifliers, flushed in batches of `veriflier_batch_size`.
    pending_asks: Vec<CheckItem>,
    veriflier_batch_size: usize,
    /// Results counted at the last stats line, for the rate.
    results_at_last_stats: u64,
    /// Why the last store access failed; `None` after a success (readiness).
    last_store_error: Option<String>,
    /// Where the ops endpoint reads from, when it runs.
    ops: Option<OpsPublisher>,
    /// statsd output of each stats line, with the counts at the previous one (statsd counters are deltas).
    statsd: Option<(crate::ops::statsd::Statsd, DaemonStats)>,
    /// The internet-weather guard: canaries, and whether failures are held back (see `crate::weather`).
    weather: WeatherGuard,
}

impl Daemon {
    /// Wires the parts together; nothing runs until [`Daemon::run`].
    pub fn new(
        settings: DaemonSettings,
        engine: Engine,
        store: Box<dyn SiteStore>,
        notifier: Box<dyn Notifier>,
        machine: StatusMachine,
        signals: Arc<Signals>,
    ) -> Daemon {
        Daemon {
            settings,
            engine,
            store,
            notifier,
            machine,
            signals,
            round: None,
            next_round_at: Instant::now(),
            rechecks: Rechecks::default(),
            in_flight: HashSet::new(),
            current_sites: HashSet::new(),
            last_round_check: HashMap::new(),
            pending_updates: Vec::new(),
            stats: DaemonStats::default(),
            store_retry: STORE_RETRY_FIRST,
            reloader: None,
            verifliers: None,
            pending_asks: Vec::new(),
            veriflier_batch_size: 1,
            results_at_last_stats: 0,
            last_store_error: None,
            ops: None,
            statsd: None,
            weather: WeatherGuard::new(
                WeatherSettings::default(),
                Vec::new(),
                DEFAULT_CANARY_INTERVAL,
                Instant::now(),
            ),
        }
    }

    /// Replaces the internet-weather guard (the default one has the default thresholds and no canaries).
    pub fn with_weather(mut self, guard: WeatherGuard) -> Daemon {
        self.weather = guard;
        self
    }

    /// A read handle on the internet-weather guard: clear or degraded (why, since when), what was held back.
    pub fn weather(&self) -> WeatherHandle {
        self.weather.handle()
    }

    /// Confirms DOWN decisions with these verifliers, `batch_size` sites per request.
    pub fn with_verifliers(mut self, pool: VeriflierPool, batch_size: usize) -> Daemon {
        self.verifliers = Some(pool);
        self.veriflier_batch_size = batch_size.max(1);
        self
    }

    /// Also sends every stats line to statsd.
    pub fn with_statsd(mut self, statsd: crate::ops::statsd::Statsd) -> Daemon {
        self.statsd = Some((statsd, self.stats));
        self
    }

    /// Publishes counters, site histories and snapshots of the loop into `state` for the ops endpoint.
    pub fn with_ops(mut self, state: Arc<OpsState>) -> Daemon {
        self.ops = Some(OpsPublisher::new(state));
        self
    }

    /// Sets what SIGHUP re-reads besides the site list.
    pub fn with_reloader(mut self, reloader: Reloader) -> Daemon {
        self.reloader = Some(reloader);
        self
    }

    fn reload(&mut self, now: Instant) {
        if let Some(reloader) = &mut self.reloader {
            match reloader() {
                Ok((settings, machine)) => {
                    let once = self.settings.once;
                    self.settings = DaemonSettings { once, ..settings };
                    self.machine.set_config(machine);
                    tracing::info!("SIGHUP: configuration reloaded");
                }
                Err(e) => tracing::error!("SIGHUP: configuration not reloaded, the running one stays: {e}"),
            }
        }
        tracing::info!("SIGHUP: starting a new round with a fresh site list");
        self.next_round_at = now;
    }

    /// Runs until a stop signal; then lets in-flight checks finish (bounded), writes statuses back and
    /// returns the counts.
    pub fn run(mut self) -> DaemonStats {
        let mut last_persist = Instant::now();
        let mut last_tick = Instant::now();
        let mut last_stats = Instant::now();
        tracing::info!(interval = ?self.settings.round_interval, "jetmond running");
        while !self.signals.stop.load(Ordering::Relaxed) {
            let now = Instant::now();
            if self.signals.reload.swap(false, Ordering::Relaxed) {
                self.reload(now);
            }
            self.maybe_start_round(now);
            self.dispatch(now);
            self.tend_weather(now);
            self.collect_results(LOOP_WAIT);
            self.exchange_with_verifliers();
            self.publish_ops(now);
            if self.settings.once && self.first_round_done() {
                tracing::info!(rechecks_dropped = self.rechecks.len(), "--once: the round is checked");
                break;
            }
            if last_tick.elapsed() >= TICK_INTERVAL {
                last_tick = Instant::now();
                let actions = self.machine.handle(Event::Tick { now: wall_now() });
                self.act(actions);
            }
            if last_persist.elapsed() >= PERSIST_INTERVAL {
                last_persist = Instant::now();
                self.persist();
            }
            let since_stats = last_stats.elapsed();
            if since_stats >= self.settings.stats_interval {
                last_stats = Instant::now();
                self.log_stats(since_stats);
            }
        }
        self.shut_down()
    }

    fn first_round_done(&self) -> bool {
        self.stats.rounds >= 1 && self.in_flight.is_empty() && self.round.as_ref().is_some_and(RoundPlan::is_dispatched)
    }

    fn maybe_start_round(&mut self, now: Instant) {
        if self.settings.once && self.stats.rounds >= 1 {
            return;
        }
        if now < self.next_round_at {
            return;
        }
        if let Some(round) = &self.round {
            if !round.is_dispatched() {
                // Never overlap rounds: finish dispatching this one first, and say so.
                self.stats.overruns += 1;
                tracing::warn!(
                    dispatched = round.dispatched(),
                    total = round.len(),
                    late_by = ?now.saturating_duration_since(self.next_round_at),
                    "round overran its interval; the next round starts when this one is dispatched"
                );
                self.next_round_at = now + self.settings.round_interval / 10;
                return;
            }
        }
        let mut loaded: Vec<Site> = Vec::new();
        let mut bad = 0u64;
        let result = self.store.load_sites(&mut |page| loaded.extend(page), &mut |e| {
            bad += 1;
            tracing::warn!("skipping site: {e}");
        });
        if let Err(e) = result {
            self.stats.store_errors += 1;
            self.last_store_error = Some(e.to_string());
            tracing::error!(retry_in = ?self.store_retry, "cannot load sites: {e}; checking the previous list meanwhile");
            self.next_round_at = now + self.store_retry;
            self.store_retry = (self.store_retry * 2).min(STORE_RETRY_MAX);
            // Keep monitoring what we have: re-run the previous round's sites.
            if self.round.take().is_some() {
                self.round = Some(RoundPlan::new(self.tracked_sites(), now, self.settings.round_interval));
            }
            return;
        }
        self.store_retry = STORE_RETRY_FIRST;
        self.last_store_error = None;
        let mut order = Vec::with_capacity(loaded.len());
        let mut seen = HashSet::with_capacity(loaded.len());
        for site in loaded {
            if !seen.insert(site.blog_id) {
                continue;
            }
            self.machine.track(
                site.blog_id,
                site.monitor_url.clone(),
                site.status,
                site.last_status_change,
            );
            if self.is_due(&site, now) {
                order.push((site.blog_id, site.monitor_url));
            }
        }
        // Sites gone from the store (removed, deactivated, moved to another host's buckets) are forgotten.
        for gone in self.current_sites.difference(&seen) {
            self.machine.forget(*gone);
            if let Some(ops) = &self.ops {
                ops.state().forget(*gone);
            }
            self.last_round_check.remove(gone);
        }
        self.current_sites = seen;
        self.stats.rounds += 1;
        tracing::info!(
            round = self.stats.rounds,
            sites = order.len(),
            bad_records = bad,
            "round starts"
        );
        self.round = Some(RoundPlan::new(order, now, self.settings.round_interval));
        self.next_round_at = now + self.settings.round_interval;
    }

    /// With variable intervals, whether the site's own interval has passed since it was last in a round
    /// (and records that it is in this one).
    fn is_due(&mut self, site: &Site, now: Instant) -> bool {
        let Some(default) = self.settings.variable_intervals else {
            return true;
        };
        let interval = site.check_interval.unwrap_or(default);
        match self.last_round_check.get(&site.blog_id) {
            Some(last) if now.saturating_duration_since(*last) < interval => false,
            _ => {
                self.last_round_check.insert(site.blog_id, now);
                true
            }
        }
    }

    fn tracked_sites(&self) -> Vec<(BlogId, String)> {
        let mut sites: Vec<(BlogId, String)> = self
            .current_sites
            .iter()
            .filter_map(|id| self.machine.site(*id).map(|s| (*id, s.monitor_url().to_string())))
            .collect();
        sites.sort_unstable();
        sites
    }

    fn dispatch(&mut self, now: Instant) {
        let mut batch = Vec::new();
        if let Some(round) = &mut self.round {
            for (blog_id, url) in round.take_due(now) {
                if self.in_flight.insert(*blog_id) {
                    batch.push(CheckRequest::new(*blog_id, url.clone()));
                } else {
                    self.stats.skipped_in_flight += 1;
                }
            }
        }
        let wall = wall_now();
        while let Some(blog_id) = self.rechecks.pop_due(wall) {
            let Some(site) = self.machine.site(blog_id) else {
                continue;
            };
            if self.in_flight.insert(blog_id) {
                self.stats.rechecks += 1;
                batch.push(CheckRequest::new(blog_id, site.monitor_url().to_string()));
            }
        }
        if batch.is_empty() {
            return;
        }
        self.stats.checks += batch.len() as u64;
        if let Err(e) = self.engine.submitter().submit_many(batch) {
            tracing::error!("engine refused checks: {e}");
        }
    }

    /// Sends the canaries that are due and lets the guard leave degraded mode when no results come.
    fn tend_weather(&mut self, now: Instant) {
        let canaries = self.weather.due_canaries(now);
        if !canaries.is_empty() {
            if let Err(e) = self.engine.submitter().submit_many(canaries) {
                tracing::error!("engine refused canary checks: {e}");
            }
        }
        self.weather.evaluate(now);
    }

    fn collect_results(&mut self, wait: Duration) {
        let first = match self.engine.results().recv_timeout(wait) {
            Ok(r) => r,
            Err(_) => return,
        };
        self.on_result(first);
        while let Ok(r) = self.engine.results().try_recv() {
            self.on_result(r);
        }
    }

    fn on_result(&mut self, result: CheckResult) {
        let now = Instant::now();
        if self.weather.observe(now, &result) {
            // A canary's result: it only tells the guard about the network.
            self.weather.evaluate(now);
            return;
        }
        self.in_flight.remove(&result.id);
        self.stats.results += 1;
        match result.verdict {
            Verdict::Up => self.stats.up += 1,
            _ => self.stats.down += 1,
        }
        if !self.current_sites.contains(&result.id) {
            return; // Removed from the store while its check ran.
        }
        self.weather.evaluate(now);
        if result.verdict != Verdict::Up && self.weather.is_degraded() {
            // The monitor's own network is unwell: this failure says nothing about the site. Not feeding it
            // keeps it from becoming a re-check, a veriflier request or a DOWN decision.
            self.weather.count_held_back(1);
            return;
        }
        let event = Event::LocalCheck(LocalCheck {
            blog_id: result.id,
            monitor_url: result.url.clone(),
            host: self.settings.host_name.clone(),
            at: wall_now(),
            outcome: CheckOutcome {
                up: result.verdict == Verdict::Up,
                code: result.code,
                rtt_ms: result.rtt_ms(),
                error: result.error.map(|e| e.as_str().to_string()),
            },
        });
        let actions = self.machine.handle(event);
        self.act(actions);
        if let Some(ops) = &self.ops {
            let status = self
                .machine
                .site(result.id)
                .map(|s| (s.status(), s.last_status_change()));
            ops.state().record_result(&result, wall_now(), status);
        }
    }

    fn act(&mut self, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::ScheduleRecheck { blog_id, not_before } => self.rechecks.push(blog_id, not_before),
                Action::PersistStatus {
                    blog_id,
                    status,
                    last_status_change,
                } => {
                    if let Some(ops) = &self.ops {
                        ops.state().status_changed(blog_id, status, last_status_change);
                    }
                    self.pending_updates.push(StatusUpdate {
                        blog_id,
                        status,
                        last_status_change,
                    });
                }
                Action::Notify(notification) => {
                    self.stats.notifications += 1;
                    tracing::info!(
                        blog_id = notification.blog_id,
                        url = %notification.monitor_url,
                        status = ?notification.status_id,
                        "status change"
                    );
                    let accepted = self.notifier.notify(&notification);
                    if let Err(e) = &accepted {
                        tracing::error!("{e}");
                    }
                    if let Some(ops) = &self.ops {
                        ops.state().notified(&notification, accepted.is_ok());
                    }
                }
                Action::AskVerifliers { blog_id, monitor_url } => {
                    if self.verifliers.is_some() {
                        self.pending_asks.push(CheckItem { blog_id, monitor_url });
                    } else {
                        tracing::warn!(blog_id, url = %monitor_url, "verifliers requested but none is running");
                    }
                }
                Action::FalseAlarm {
                    blog_id,
                    offline,
                    online,
                } => {
                    tracing::info!(blog_id, offline, online, "false alarm: the verifliers see the site up");
                }
                Action::VerificationInconclusive {
                    blog_id,
                    offline,
                    online,
                    unavailable,
                } => {
                    tracing::warn!(
                        blog_id,
                        offline,
                        online,
                        unavailable,
                        "verification inconclusive: too few verifliers answered"
                    );
                }
                Action::VeriflierRequestExpired {
                    blog_id,
                    offline,
                    online,
                    ..
                } => {
                    tracing::warn!(blog_id, offline, online, "veriflier request expired without a decision");
                }
                other => tracing::debug!(?other, "status machine"),
            }
        }
    }

    /// Sends what the status machine wants confirmed and feeds back what the verifliers said.
    fn exchange_with_verifliers(&mut self) {
        let Some(pool) = &self.verifliers else { return };
        while !self.pending_asks.is_empty() {
            let take = self.pending_asks.len().min(self.veriflier_batch_size);
            pool.ask(self.pending_asks.drain(..take).collect());
        }
        let replies: Vec<VeriflierReply> = pool.replies().try_iter().collect();
        for reply in replies {
            let event = match reply {
                VeriflierReply::Answer {
                    veriflier,
                    blog_id,
                    monitor_url,
                    outcome,
                } => Event::VeriflierAnswer(VeriflierAnswer {
                    blog_id,
                    monitor_url,
                    veriflier,
                    at: wall_now(),
                    outcome,
                }),
                VeriflierReply::Unavailable {
                    veriflier,
                    blog_id,
                    reason,
                } => Event::VeriflierUnavailable(VeriflierUnavailable {
                    blog_id,
                    veriflier,
                    at: wall_now(),
                    reason,
                }),
            };
            let actions = self.machine.handle(event);
            self.act(actions);
        }
    }

    fn persist(&mut self) {
        if self.pending_updates.is_empty() {
            return;
        }
        match self.store.persist_statuses(&self.pending_updates) {
            Ok(()) => {
                self.pending_updates.clear();
                self.last_store_error = None;
            }
            Err(e) => {
                // Keep them: the next attempt writes them with whatever came since.
                self.stats.store_errors += 1;
                self.last_store_error = Some(e.to_string());
                tracing::error!(pending = self.pending_updates.len(), "cannot write statuses back: {e}");
            }
        }
    }

    fn log_stats(&mut self, since_last: Duration) {
        let engine = self.engine.stats();
        let (dispatched, total) = self.round.as_ref().map(|r| (r.dispatched(), r.len())).unwrap_or((0, 0));
        let rate = (self.stats.results - self.results_at_last_stats) as f64 / since_last.as_secs_f64().max(1e-3);
        self.results_at_last_stats = self.stats.results;
        let lag = self.round_lag(Instant::now());
        tracing::info!(
            round = self.stats.rounds,
            progress = format!("{dispatched}/{total}"),
            sites_per_sec = format!("{rate:.1}"),
            lag_ms = lag.as_millis() as u64,
            in_flight = engine.in_flight,
            queued = engine.queued,
            up = self.stats.up,
            down = self.stats.down,
            rechecks_waiting = self.rechecks.len(),
            notifications = self.stats.notifications,
            "stats"
        );
        if let Some((statsd, previous)) = &mut self.statsd {
            statsd.send(&crate::ops::statsd::StatsdSample {
                up: self.stats.up - previous.up,
                down: self.stats.down - previous.down,
                results_per_second: rate,
                in_flight: engine.in_flight,
                queued: engine.queued,
                round_dispatched: dispatched,
                round_total: total,
                rechecks_waiting: self.rechecks.len(),
                notifications: self.stats.notifications - previous.notifications,
            });
            *previous = self.stats;
        }
    }

    /// How far behind its start time the next round is because this one is still being dispatched.
    fn round_lag(&self, now: Instant) -> Duration {
        match &self.round {
            Some(round) if !round.is_dispatched() => now.saturating_duration_since(self.next_round_at),
            _ => Duration::ZERO,
        }
    }

    /// Tells the ops view how the loop is doing: cheap on every turn, a full snapshot every
    /// `ops::state::PUBLISH_INTERVAL`.
    fn publish_ops(&mut self, now: Instant) {
        let lag = self.round_lag(now);
        let Some(ops) = &mut self.ops else { return };
        let finished = self.in_flight.is_empty() && self.round.as_ref().is_some_and(RoundPlan::is_dispatched);
        ops.note_round(now, self.round.as_ref().map(RoundPlan::started), finished);
        if !ops.due(now) {
            return;
        }
        ops.publish(
            now,
            LoopState {
                daemon: self.stats,
                engine: self.engine.stats(),
                round_interval: self.settings.round_interval,
                round_progress: self.round.as_ref().map_or((0, 0), |r| (r.dispatched(), r.len())),
                round_lag: lag,
                sites_tracked: self.current_sites.len(),
                buckets_held: self.store.buckets_held(),
                rechecks_waiting: self.rechecks.len(),
                store_error: self.last_store_error.clone(),
                verifliers: self.verifliers.as_ref().map(VeriflierPool::health).unwrap_or_default(),
                outbox: self.notifier.delivery_stats(),
            },
        );
    }

    fn shut_down(mut self) -> DaemonStats {
        tracing::info!(
            in_flight = self.in_flight.len(),
            "stopping: letting in-flight checks finish"
        );
        let deadline = Instant::now() + self.settings.drain_timeout;
        while !self.in_flight.is_empty() && Instant::now() < deadline {
            self.collect_results(LOOP_WAIT);
        }
        self.persist();
        let stats = self.stats;
        self.engine.abort();
        tracing::info!(?stats, "stopped");
        stats
    }
}

fn wall_now() -> UnixMillis {
    UnixMillis::from(SystemTime::now())
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use jetmon_engine::EngineConfig;
    use jetmon_testkit::http::TargetServer;

    use super::*;
    use crate::status::{Notification, SiteStatus};
    use crate::store::StoreError;

    /// A store whose loads fail after the first one (a database that went away).
    struct FlakyStore {
        url: String,
        loads: Arc<Mutex<u32>>,
    }

    impl SiteStore for FlakyStore {
        fn load_sites(
            &mut self,
            page: &mut dyn FnMut(Vec<Site>),
            _bad: &mut dyn FnMut(StoreError),
        ) -> Result<(), StoreError> {
            let mut loads = self.loads.lock().unwrap();
            *loads += 1;
            if *loads > 1 {
                return Err(StoreError::Database("connection refused".into()));
            }
            page(vec![Site {
                blog_id: 7,
                monitor_url: self.url.clone(),
                status: SiteStatus::Running,
                last_status_change: None,
                check_interval: None,
            }]);
            Ok(())
        }

        fn persist_statuses(&mut self, _updates: &[StatusUpdate]) -> Result<(), StoreError> {
            Err(StoreError::Database("connection refused".into()))
        }
    }

    struct NoNotifier;

    impl Notifier for NoNotifier {
        fn notify(&mut self, _n: &Notification) -> Result<(), notify::NotifyError> {
            Ok(())
        }
    }

    #[test]
    fn store_outage_keeps_checking_the_loaded_sites() {
        let server = TargetServer::start("127.0.0.48:0".parse().unwrap(), None).unwrap();
        let loads = Arc::new(Mutex::new(0));
        let store = FlakyStore {
            url: server.url("/status/200"),
            loads: Arc::clone(&loads),
        };
        let mut engine_config = EngineConfig::default();
        engine_config.threads = 1;
        let engine = Engine::start(engine_config).unwrap();
        let settings = DaemonSettings {
            round_interval: Duration::from_millis(200),
            host_name: "test".into(),
            stats_interval: Duration::from_secs(60),
            drain_timeout: Duration::from_secs(5),
            variable_intervals: None,
            once: false,
        };
        let signals = Arc::new(Signals::default());
        let machine = StatusMachine::new(MachineConfig::default());
        let daemon = Daemon::new(
            settings,
            engine,
            Box::new(store),
            Box::new(NoNotifier),
            machine,
            Arc::clone(&signals),
        );
        let runner = std::thread::spawn(move || daemon.run());
        // The first failed load retries after 1 s, the next after 2 s: 3.5 s sees two failures.
        std::thread::sleep(Duration::from_millis(3500));
        signals.stop.store(true, Ordering::Relaxed);
        let stats = runner.join().unwrap();
        assert!(*loads.lock().unwrap() >= 3, "the store is retried");
        assert!(stats.store_errors >= 2, "{stats:?}");
        assert!(
            stats.results >= 3,
            "the loaded site is still checked during the outage: {stats:?}"
        );
        assert_eq!(stats.down, 0);
    }
}
