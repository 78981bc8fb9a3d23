//! In-flight capacity: submit thousands of checks at once against targets that answer only after a delay,
//! and measure what holding them all costs this process in resident memory.
//!
//! RSS is sampled before the submit (engine started, idle) and repeatedly until the first result arrives;
//! the targets' delay keeps every check in flight over that window, so the largest sample is the cost of
//! the peak. The targets live in another process ([`crate::farm`]), so the delta is the engine's alone
//! (plus the queued requests themselves, which a caller pays for too).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use jetmon_engine::{CheckRequest, Engine, Verdict};

use crate::load::{bench_config, resolved_threads};
use crate::rss::current_rss_kib;
use crate::BenchError;

/// How often RSS and the engine's counters are sampled.
const SAMPLE_INTERVAL: Duration = Duration::from_millis(20);
/// Time for the idle engine's threads to settle before the baseline sample.
const SETTLE: Duration = Duration::from_millis(200);
/// Extra time beyond the check timeout before the run is declared stuck.
const RUN_GRACE: Duration = Duration::from_secs(10);

/// One capacity run.
#[derive(Debug, Clone)]
pub struct CapacitySpec {
    /// Checks submitted at once (and the engine's `max_in_flight`).
    pub checks: usize,
    /// The engine's whole-check deadline; longer than the targets' delay.
    pub check_timeout: Duration,
    /// Engine threads; 0 for one per core.
    pub threads: usize,
    /// CA file for HTTPS targets.
    pub ca_file: Option<PathBuf>,
}

/// What a capacity run measured.
#[derive(Debug, Clone)]
pub struct CapacityOutcome {
    /// Checks submitted.
    pub checks: usize,
    /// Largest `in_flight` seen before the first result.
    pub peak_in_flight: usize,
    /// Largest `open_sockets` seen before the first result.
    pub peak_open_sockets: usize,
    /// VmRSS of the idle engine, KiB.
    pub baseline_rss_kib: u64,
    /// Largest VmRSS before the first result, KiB.
    pub peak_rss_kib: u64,
    /// Results with verdict up.
    pub up: usize,
    /// Submit to last result.
    pub elapsed: Duration,
    /// Engine threads.
    pub threads: usize,
}

impl CapacityOutcome {
    /// RSS growth per in-flight check, KiB.
    pub fn rss_per_check_kib(&self) -> f64 {
        self.peak_rss_kib.saturating_sub(self.baseline_rss_kib) as f64 / self.peak_in_flight.max(1) as f64
    }
}

/// Submits `spec.checks` checks spread over `urls` and samples memory while they are in flight.
pub fn run_capacity(urls: &[String], spec: &CapacitySpec) -> Result<CapacityOutcome, BenchError> {
    let unavailable = || BenchError::Parse {
        tool: "/proc/self/status",
        field: "VmRSS",
        output: String::new(),
    };
    let mut config = bench_config(spec.checks, spec.threads, spec.ca_file.clone());
    config.check_timeout = spec.check_timeout;
    let engine = Engine::start(config)?;
    let requests: Vec<CheckRequest> = (0..spec.checks)
        .map(|i| CheckRequest::new(i as u64, urls[i % urls.len()].clone()))
        .collect();
    // Hand pages freed by an earlier run back to the system, so this run's growth is not hidden by reuse.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free heap memory; it has no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
    std::thread::sleep(SETTLE);
    let baseline_rss_kib = current_rss_kib().ok_or_else(unavailable)?;
    let started = Instant::now();
    engine.submitter().submit_many(requests)?;
    let limit = spec.check_timeout + RUN_GRACE;
    let mut outcome = CapacityOutcome {
        checks: spec.checks,
        peak_in_flight: 0,
        peak_open_sockets: 0,
        baseline_rss_kib,
        peak_rss_kib: baseline_rss_kib,
        up: 0,
        elapsed: Duration::ZERO,
        threads: resolved_threads(spec.threads),
    };
    let mut received = 0;
    while received < spec.checks {
        if started.elapsed() > limit {
            engine.abort();
            return Err(BenchError::Timeout {
                what: format!("{} delayed checks ({received} finished)", spec.checks),
                limit,
            });
        }
        if received == 0 {
            let stats = engine.stats();
            outcome.peak_in_flight = outcome.peak_in_flight.max(stats.in_flight);
            outcome.peak_open_sockets = outcome.peak_open_sockets.max(stats.open_sockets);
            outcome.peak_rss_kib = outcome.peak_rss_kib.max(current_rss_kib().ok_or_else(unavailable)?);
        }
        if let Ok(result) = engine.results().recv_timeout(SAMPLE_INTERVAL) {
            received += 1;
            outcome.up += usize::from(result.verdict == Verdict::Up);
            received += engine
                .results()
                .try_iter()
                .map(|result| outcome.up += usize::from(result.verdict == Verdict::Up))
                .count();
        }
    }
    outcome.elapsed = started.elapsed();
    engine.shutdown();
    Ok(outcome)
}
