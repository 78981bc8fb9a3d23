//! Throughput: N checks of one URL through the engine, timed from the first submit to the last result.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use jetmon_engine::{CheckRequest, Engine, EngineConfig, Verdict};

use crate::BenchError;

/// Longest a throughput run may take before it is aborted (the harness stays bounded even when the engine
/// stalls).
pub const LOAD_RUN_LIMIT: Duration = Duration::from_secs(60);
/// Longest wait for the next result before the run is declared stuck.
const RESULT_WAIT: Duration = Duration::from_secs(30);

/// One throughput run.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    /// The URL every check HEADs.
    pub url: String,
    /// How many checks.
    pub checks: usize,
    /// The engine's `max_in_flight`.
    pub max_in_flight: usize,
    /// Engine threads; 0 for one per core.
    pub threads: usize,
    /// CA file trusted instead of the web roots (HTTPS targets with a test certificate).
    pub ca_file: Option<PathBuf>,
}

impl LoadSpec {
    /// `checks` checks of `url` with `max_in_flight`, default threads, web roots.
    pub fn new(url: impl Into<String>, checks: usize, max_in_flight: usize) -> LoadSpec {
        LoadSpec {
            url: url.into(),
            checks,
            max_in_flight,
            threads: 0,
            ca_file: None,
        }
    }
}

/// What a throughput run measured.
#[derive(Debug, Clone)]
pub struct LoadOutcome {
    /// Results received.
    pub checks: usize,
    /// First submit to last result.
    pub elapsed: Duration,
    /// Results with verdict up.
    pub up: usize,
    /// Down results by error class (`http_4xx/5xx` when the server answered with an error code).
    pub failures: BTreeMap<String, usize>,
    /// Engine threads that ran the checks.
    pub threads: usize,
}

impl LoadOutcome {
    /// Completed checks per second.
    pub fn checks_per_sec(&self) -> f64 {
        self.checks as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }
}

/// The engine settings the benches share: the given cap and threads, trust in `ca_file` only when given.
pub fn bench_config(max_in_flight: usize, threads: usize, ca_file: Option<PathBuf>) -> EngineConfig {
    let mut config = EngineConfig::default();
    config.max_in_flight = max_in_flight;
    config.threads = threads;
    config.only_extra_ca = ca_file.is_some();
    config.extra_ca_file = ca_file;
    // Targets are IP literals; no name is ever resolved, so nothing reads the machine's hosts file.
    config.dns.hosts_file = None;
    config
}

/// Engine threads a config with `threads` gets (0 means one per core).
pub fn resolved_threads(threads: usize) -> usize {
    match threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
}

/// Starts an engine, submits `spec.checks` checks at once and waits for every result.
pub fn run_load(spec: &LoadSpec) -> Result<LoadOutcome, BenchError> {
    let urls = vec![spec.url.clone(); spec.checks];
    let config = bench_config(spec.max_in_flight, spec.threads, spec.ca_file.clone());
    run_urls(&urls, config)
}

/// Starts an engine with `config`, submits one check per URL of `urls` at once and waits for every result.
pub fn run_urls(urls: &[String], config: EngineConfig) -> Result<LoadOutcome, BenchError> {
    let threads = resolved_threads(config.threads);
    let engine = Engine::start(config)?;
    let requests: Vec<CheckRequest> = urls
        .iter()
        .enumerate()
        .map(|(id, url)| CheckRequest::new(id as u64, url.clone()))
        .collect();
    let checks = requests.len();
    let what = urls.first().cloned().unwrap_or_default();
    let started = Instant::now();
    engine.submitter().submit_many(requests)?;
    let mut up = 0;
    let mut failures = BTreeMap::new();
    let mut received = 0;
    while received < checks {
        let waited_out = started.elapsed() > LOAD_RUN_LIMIT;
        let result = match engine.results().recv_timeout(RESULT_WAIT) {
            Ok(result) if !waited_out => result,
            _ => {
                let limit = LOAD_RUN_LIMIT.min(started.elapsed());
                engine.abort();
                return Err(BenchError::Timeout {
                    what: format!("{checks} checks of {what}… ({received} finished)"),
                    limit,
                });
            }
        };
        received += 1;
        if result.verdict == Verdict::Up {
            up += 1;
        } else {
            let class = match result.error {
                Some(class) => class.as_str().to_string(),
                None => format!("http_{}", result.code),
            };
            *failures.entry(class).or_insert(0) += 1;
        }
    }
    let elapsed = started.elapsed();
    engine.shutdown();
    Ok(LoadOutcome {
        checks: received,
        elapsed,
        up,
        failures,
        threads,
    })
}
