//! The public face of the engine: start threads, submit checks from anywhere, receive results.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};
use mio::Waker;

use crate::config::{EngineConfig, RESERVED_FDS};
use crate::dns::DnsStats;
use crate::reactor::{fd_limit, Reactor, ReactorSetup};
use crate::result::{CheckResult, Verdict};
use crate::tls::{self, TlsConfigError};

/// One check to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckRequest {
    /// Any number the caller wants back in [`CheckResult::id`] (a blog id, a row number).
    pub id: u64,
    /// The `http://` or `https://` URL to HEAD.
    pub url: String,
}

impl CheckRequest {
    /// A request for `url`, tagged with `id`.
    pub fn new(id: u64, url: impl Into<String>) -> CheckRequest {
        CheckRequest { id, url: url.into() }
    }
}

/// Why the engine could not start or take a check.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// A setting is out of range.
    #[error("invalid engine setting `{setting}`: {reason}")]
    Config {
        /// The setting's field name.
        setting: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The TLS configuration could not be built (CA file).
    #[error(transparent)]
    Tls(#[from] TlsConfigError),
    /// An event loop could not be created (DNS setup, epoll, threads).
    #[error("cannot start engine thread {thread}: {reason}")]
    Start {
        /// Index of the thread.
        thread: usize,
        /// What failed.
        reason: String,
    },
    /// The engine is shutting down and takes no more checks.
    #[error("the engine is shut down")]
    ShutDown,
}

/// Counters shared by the engine threads; read through [`Engine::stats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    submitted: AtomicU64,
    in_flight: AtomicUsize,
    completed: AtomicU64,
    up: AtomicU64,
    down: AtomicU64,
    open_sockets: AtomicUsize,
    fd_exhausted: AtomicU64,
    dns_cache_hits: AtomicU64,
    dns_cache_misses: AtomicU64,
    dns_queries: AtomicU64,
    dns_timeouts: AtomicU64,
}

impl Counters {
    pub(crate) fn started(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn finished(&self, result: &CheckResult) {
        // Results of invalid URLs never went in flight; they are counted as completed all the same.
        if result.error != Some(crate::ErrorClass::InvalidUrl) {
            self.in_flight.fetch_sub(1, Ordering::Relaxed);
        }
        self.completed.fetch_add(1, Ordering::Relaxed);
        match result.verdict {
            Verdict::Up => self.up.fetch_add(1, Ordering::Relaxed),
            _ => self.down.fetch_add(1, Ordering::Relaxed),
        };
    }

    pub(crate) fn socket_opened(&self) {
        self.open_sockets.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn socket_closed(&self) {
        self.open_sockets.fetch_sub(1, Ordering::Relaxed);
    }

    pub(crate) fn fd_exhausted(&self) {
        self.fd_exhausted.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds what a thread's resolver did since `before`.
    pub(crate) fn record_dns(&self, before: DnsStats, now: DnsStats) {
        self.dns_cache_hits
            .fetch_add(now.cache_hits.saturating_sub(before.cache_hits), Ordering::Relaxed);
        self.dns_cache_misses
            .fetch_add(now.cache_misses.saturating_sub(before.cache_misses), Ordering::Relaxed);
        self.dns_queries
            .fetch_add(now.queries_sent.saturating_sub(before.queries_sent), Ordering::Relaxed);
        self.dns_timeouts
            .fetch_add(now.timeouts.saturating_sub(before.timeouts), Ordering::Relaxed);
    }
}

/// A snapshot of what the engine is doing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct EngineStats {
    /// Checks accepted by [`Submitter::submit`].
    pub submitted: u64,
    /// Checks submitted but not yet started (waiting for an in-flight slot).
    pub queued: usize,
    /// Checks started and not finished.
    pub in_flight: usize,
    /// Checks finished (results sent).
    pub completed: u64,
    /// Of those, up.
    pub up: u64,
    /// Of those, down.
    pub down: u64,
    /// Sockets open right now.
    pub open_sockets: usize,
    /// Connects that hit the file-descriptor limit and were queued.
    pub fd_exhausted: u64,
    /// DNS answers served from the cache, hosts file or overrides.
    pub dns_cache_hits: u64,
    /// DNS lookups that went to the network.
    pub dns_cache_misses: u64,
    /// DNS questions sent (A and AAAA count separately; retransmissions count again).
    pub dns_queries: u64,
    /// DNS questions that got no answer in time from the server they were sent to (each costs the
    /// attempt timeout; a rising count means the resolver or the path to it is in trouble).
    pub dns_timeouts: u64,
}

struct Lane {
    sender: Sender<CheckRequest>,
    waker: Arc<Waker>,
}

/// A cheap, cloneable handle that submits checks from any thread.
#[derive(Clone)]
pub struct Submitter {
    lanes: Arc<[Lane]>,
    next: Arc<AtomicUsize>,
    counters: Arc<Counters>,
}

impl Submitter {
    /// Queues one check. Never blocks: checks beyond the in-flight cap wait in the queue.
    pub fn submit(&self, request: CheckRequest) -> Result<(), EngineError> {
        let lane = &self.lanes[self.next.fetch_add(1, Ordering::Relaxed) % self.lanes.len()];
        lane.sender.send(request).map_err(|_| EngineError::ShutDown)?;
        self.counters.submitted.fetch_add(1, Ordering::Relaxed);
        // A failed wake-up only delays the check until the loop's next idle tick.
        let _ = lane.waker.wake();
        Ok(())
    }

    /// Checks submitted and not yet taken by an engine thread.
    pub fn queued(&self) -> usize {
        self.lanes.iter().map(|l| l.sender.len()).sum()
    }

    /// Queues many checks, spreading them over the threads and waking each thread once.
    pub fn submit_many(&self, requests: impl IntoIterator<Item = CheckRequest>) -> Result<usize, EngineError> {
        let start = self.next.load(Ordering::Relaxed);
        let mut count = 0;
        for request in requests {
            let lane = &self.lanes[(start + count) % self.lanes.len()];
            lane.sender.send(request).map_err(|_| EngineError::ShutDown)?;
            count += 1;
            if count % 256 == 0 {
                let _ = lane.waker.wake();
            }
        }
        self.next.fetch_add(count, Ordering::Relaxed);
        self.counters.submitted.fetch_add(count as u64, Ordering::Relaxed);
        for lane in self.lanes.iter() {
            let _ = lane.waker.wake();
        }
        Ok(count)
    }
}

/// The probe engine: event-loop threads that run checks.
///
/// Dropping the engine closes the queue; checks already submitted still finish in the background. Call
/// [`Engine::shutdown`] to wait for them, or [`Engine::abort`] to stop at once.
pub struct Engine {
    submitter: Option<Submitter>,
    results: Receiver<CheckResult>,
    threads: Vec<JoinHandle<()>>,
    abort: Arc<AtomicBool>,
    counters: Arc<Counters>,
    capacity: usize,
}

impl Engine {
    /// Starts the engine threads.
    pub fn start(config: EngineConfig) -> Result<Engine, EngineError> {
        validate(&config)?;
        let threads = match config.threads {
            0 => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            n => n,
        };
        let fd_limit = fd_limit::raise_nofile_limit().unwrap_or(1024);
        // Each check holds one socket; DNS and the loop itself need a few per thread.
        let fd_budget = fd_limit
            .saturating_sub(RESERVED_FDS + 8 * threads as u64)
            .max(threads as u64) as usize;
        let capacity = config.max_in_flight.min(fd_budget);
        let per_thread = capacity.div_ceil(threads).max(1);
        if capacity < config.max_in_flight {
            tracing::warn!(
                requested = config.max_in_flight,
                granted = capacity,
                fd_limit,
                "in-flight cap lowered to fit the open-file limit"
            );
        }
        let tls = tls::client_config(config.extra_ca_file.as_deref(), config.only_extra_ca)?;
        let config = Arc::new(config);
        let (result_tx, results) = crossbeam_channel::unbounded();
        let abort = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(Counters::default());
        let mut lanes = Vec::with_capacity(threads);
        let mut reactors = Vec::with_capacity(threads);
        for thread in 0..threads {
            let (sender, incoming) = crossbeam_channel::unbounded();
            let setup = ReactorSetup {
                config: Arc::clone(&config),
                tls: Arc::clone(&tls),
                capacity: per_thread,
                incoming,
                results: result_tx.clone(),
                abort: Arc::clone(&abort),
                counters: Arc::clone(&counters),
            };
            let (reactor, waker) = Reactor::new(setup).map_err(|e| EngineError::Start {
                thread,
                reason: e.to_string(),
            })?;
            lanes.push(Lane { sender, waker });
            reactors.push(reactor);
        }
        let mut handles = Vec::with_capacity(threads);
        for (thread, reactor) in reactors.into_iter().enumerate() {
            let handle = std::thread::Builder::new()
                .name(format!("jetmon-engine-{thread}"))
                .spawn(move || reactor.run())
                .map_err(|e| EngineError::Start {
                    thread,
                    reason: e.to_string(),
                })?;
            handles.push(handle);
        }
        Ok(Engine {
            submitter: Some(Submitter {
                lanes: lanes.into(),
                next: Arc::new(AtomicUsize::new(0)),
                counters: Arc::clone(&counters),
            }),
            results,
            threads: handles,
            abort,
            counters,
            capacity: per_thread * threads,
        })
    }

    /// Queues one check (see [`Submitter::submit`]).
    pub fn submit(&self, request: CheckRequest) -> Result<(), EngineError> {
        self.submitter.as_ref().ok_or(EngineError::ShutDown)?.submit(request)
    }

    /// A handle for submitting from other threads.
    pub fn submitter(&self) -> Submitter {
        match &self.submitter {
            Some(s) => s.clone(),
            None => unreachable!("the submitter is only taken by shutdown, which consumes the engine"),
        }
    }

    /// The channel on which every submitted check's result arrives exactly once.
    pub fn results(&self) -> &Receiver<CheckResult> {
        &self.results
    }

    /// The number of checks that can be in flight at once (after fitting the open-file limit).
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> EngineStats {
        let c = &self.counters;
        let queued = self.submitter.as_ref().map(Submitter::queued).unwrap_or(0);
        EngineStats {
            submitted: c.submitted.load(Ordering::Relaxed),
            queued,
            in_flight: c.in_flight.load(Ordering::Relaxed),
            completed: c.completed.load(Ordering::Relaxed),
            up: c.up.load(Ordering::Relaxed),
            down: c.down.load(Ordering::Relaxed),
            open_sockets: c.open_sockets.load(Ordering::Relaxed),
            fd_exhausted: c.fd_exhausted.load(Ordering::Relaxed),
            dns_cache_hits: c.dns_cache_hits.load(Ordering::Relaxed),
            dns_cache_misses: c.dns_cache_misses.load(Ordering::Relaxed),
            dns_queries: c.dns_queries.load(Ordering::Relaxed),
            dns_timeouts: c.dns_timeouts.load(Ordering::Relaxed),
        }
    }

    /// Stops taking checks, lets every submitted check finish (each is bounded by the check timeout) and
    /// joins the threads. Results stay readable on the returned receiver.
    pub fn shutdown(mut self) -> Receiver<CheckResult> {
        self.close_and_join();
        self.results.clone()
    }

    /// Stops at once: checks in flight finish with [`crate::ErrorClass::Aborted`]; queued ones are dropped.
    pub fn abort(mut self) -> Receiver<CheckResult> {
        self.abort.store(true, Ordering::Relaxed);
        self.close_and_join();
        self.results.clone()
    }

    fn close_and_join(&mut self) {
        if let Some(submitter) = self.submitter.take() {
            let wakers: Vec<Arc<Waker>> = submitter.lanes.iter().map(|l| Arc::clone(&l.waker)).collect();
            drop(submitter);
            for waker in wakers {
                let _ = waker.wake();
            }
        }
        for handle in self.threads.drain(..) {
            if handle.join().is_err() {
                tracing::error!("an engine thread panicked");
            }
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        // Closing the lanes lets the threads finish what they hold and exit on their own; no join here so
        // dropping never blocks.
        self.submitter.take();
    }
}

fn validate(config: &EngineConfig) -> Result<(), EngineError> {
    let bad = |setting, reason: &str| {
        Err(EngineError::Config {
            setting,
            reason: reason.to_string(),
        })
    };
    if config.max_in_flight == 0 {
        return bad("max_in_flight", "must be at least 1");
    }
    if config.check_timeout.is_zero() {
        return bad("check_timeout", "must be longer than zero");
    }
    if config.connect_timeout.is_zero() || config.tls_timeout.is_zero() {
        return bad("connect_timeout/tls_timeout", "must be longer than zero");
    }
    if config.max_response_head_bytes < 256 {
        return bad("max_response_head_bytes", "must be at least 256");
    }
    if config.user_agent.bytes().any(|b| b == b'\r' || b == b'\n') {
        return bad("user_agent", "must not contain line breaks");
    }
    Ok(())
}
