//! The delivery thread: takes accepted notifications, hands them to a few worker threads in the order
//! [`DeliveryQueue`] allows, and records each outcome in the store.
//!
//! One thread owns the queue and all store writes after acceptance, so the queue needs no lock and the
//! store sees one writer besides the notifier's appends. Workers only do HTTP; a slow receiver occupies a
//! worker, never the delivery thread. At start (and every [`RESCAN_INTERVAL`]) the store's pending
//! entries are merged in: what a crash left behind, and dead letters replayed by `jetmond outbox replay`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::{Receiver, Sender};

use super::{random_u64, Backoff, Deliver, DeliveryError, DeliveryQueue, EntryState, OutboxEntry, OutboxStore};
use crate::config::Config;
use crate::status::UnixMillis;

/// How often the store is re-read for entries the delivery thread does not know (replayed dead letters).
pub const RESCAN_INTERVAL: Duration = Duration::from_secs(10);
/// Longest the delivery thread sleeps, so a stop request is seen promptly.
const IDLE_WAIT: Duration = Duration::from_millis(500);
/// After a stop request, how long the delivery thread waits for in-flight attempts to report, so a
/// notification delivered just before shutdown is not sent again at the next start.
const STOP_GRACE: Duration = Duration::from_secs(2);
/// After a store error, how long before the delivery thread tries to read the store again.
const STORE_RETRY: Duration = Duration::from_secs(5);

/// The store, shared by the notifier (appends) and the delivery thread (everything else).
pub type SharedStore = Arc<Mutex<Box<dyn OutboxStore>>>;

/// The rules of delivery, in typed form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliverySettings {
    /// Deliveries in flight at once (at least 1).
    pub concurrency: usize,
    /// Failed attempts after which an entry is dead-lettered.
    pub max_attempts: u32,
    /// Age (since `enqueued_at`) after which an entry whose attempt failed is dead-lettered.
    pub max_age: Duration,
    /// Delays between attempts.
    pub backoff: Backoff,
    /// Time between stats lines.
    pub stats_interval: Duration,
}

impl DeliverySettings {
    /// The settings of `config`.
    pub fn from_config(config: &Config) -> DeliverySettings {
        DeliverySettings {
            concurrency: usize::try_from(config.outbox_concurrency).unwrap_or(1).max(1),
            max_attempts: config.outbox_max_attempts,
            max_age: Duration::from_secs(config.outbox_max_age_sec),
            backoff: Backoff::new(
                Duration::from_millis(config.outbox_retry_initial_ms),
                Duration::from_secs(config.outbox_retry_max_sec),
            ),
            stats_interval: Duration::from_millis(config.stats_update_interval_ms),
        }
    }
}

/// Counts for metrics, since the notifier started (gauges: `pending`, `in_flight`, `oldest_undelivered`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OutboxStats {
    /// Notifications accepted into the outbox.
    pub queued: u64,
    /// Notifications the receiver accepted.
    pub delivered: u64,
    /// Failed attempts that will be retried.
    pub retries: u64,
    /// Notifications dead-lettered.
    pub dead_lettered: u64,
    /// Undelivered notifications now, in flight included.
    pub pending: u64,
    /// Deliveries in flight now.
    pub in_flight: u64,
    /// How long the oldest undelivered notification has waited.
    pub oldest_undelivered: Option<Duration>,
}

/// What the notifier tells the delivery thread.
pub(crate) enum Command {
    /// A notification was accepted into the store.
    Queued(OutboxEntry),
}

/// The running delivery thread; stops it on drop.
pub(crate) struct DeliveryThread {
    stop: Arc<AtomicBool>,
    commands: Option<Sender<Command>>,
    finished: Receiver<()>,
    thread: Option<JoinHandle<()>>,
    stats: Arc<Mutex<OutboxStats>>,
}

impl DeliveryThread {
    /// Starts the delivery thread and its workers.
    pub(crate) fn start(
        store: SharedStore,
        deliverer: Arc<dyn Deliver>,
        settings: DeliverySettings,
    ) -> std::io::Result<DeliveryThread> {
        let (commands, command_rx) = crossbeam_channel::unbounded();
        let (finished_tx, finished) = crossbeam_channel::bounded(1);
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(Mutex::new(OutboxStats::default()));
        let (jobs, job_rx) = crossbeam_channel::unbounded::<OutboxEntry>();
        let (results_tx, results) = crossbeam_channel::unbounded();
        for index in 0..settings.concurrency {
            let job_rx = job_rx.clone();
            let results_tx = results_tx.clone();
            let deliverer = Arc::clone(&deliverer);
            // Workers are not joined: one may be stuck in a request for up to `wpcom_timeout_sec`, and its
            // entry is simply delivered again at the next start. They end when the job channel closes.
            std::thread::Builder::new()
                .name(format!("outbox-worker-{index}"))
                .spawn(move || {
                    for entry in job_rx {
                        let outcome = deliverer.deliver(&entry);
                        if results_tx.send((entry, outcome)).is_err() {
                            break;
                        }
                    }
                })?;
        }
        let mut coordinator = Coordinator {
            store,
            settings,
            queue: DeliveryQueue::default(),
            commands: command_rx,
            jobs: Some(jobs),
            results,
            stop: Arc::clone(&stop),
            stats: Arc::clone(&stats),
            counts: OutboxStats::default(),
        };
        let thread = std::thread::Builder::new()
            .name("outbox-delivery".into())
            .spawn(move || {
                coordinator.run();
                let _ = finished_tx.send(());
            })?;
        Ok(DeliveryThread {
            stop,
            commands: Some(commands),
            finished,
            thread: Some(thread),
            stats,
        })
    }

    /// Hands an accepted entry over. Never blocks.
    pub(crate) fn queued(&self, entry: OutboxEntry) {
        if let Some(commands) = &self.commands {
            // A closed channel means the thread is gone; the entry is in the store for the next start.
            let _ = commands.send(Command::Queued(entry));
        }
    }

    /// The latest counts.
    pub(crate) fn stats(&self) -> OutboxStats {
        *self.stats.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Stops the thread, waiting at most `timeout` for it.
    pub(crate) fn stop(&mut self, timeout: Duration) {
        if self.thread.is_none() {
            return;
        }
        self.stop.store(true, Ordering::Relaxed);
        self.commands = None;
        match self.finished.recv_timeout(timeout) {
            Ok(()) => {
                if let Some(thread) = self.thread.take() {
                    let _ = thread.join();
                }
            }
            Err(_) => tracing::warn!(
                ?timeout,
                "outbox delivery thread did not stop in time; undelivered notifications stay in the outbox"
            ),
        }
    }
}

impl Drop for DeliveryThread {
    fn drop(&mut self) {
        self.stop(STOP_GRACE * 2);
    }
}

struct Coordinator {
    store: SharedStore,
    settings: DeliverySettings,
    queue: DeliveryQueue,
    commands: Receiver<Command>,
    jobs: Option<Sender<OutboxEntry>>,
    results: Receiver<(OutboxEntry, Result<(), DeliveryError>)>,
    stop: Arc<AtomicBool>,
    stats: Arc<Mutex<OutboxStats>>,
    counts: OutboxStats,
}

impl Coordinator {
    fn run(&mut self) {
        let mut next_rescan = Instant::now();
        let mut next_stats = Instant::now() + self.settings.stats_interval;
        while !self.stop.load(Ordering::Relaxed) {
            if Instant::now() >= next_rescan {
                next_rescan = Instant::now() + if self.rescan() { RESCAN_INTERVAL } else { STORE_RETRY };
            }
            self.dispatch();
            self.publish_stats();
            let wait = self
                .queue
                .next_due()
                .filter(|_| self.queue.in_flight() < self.settings.concurrency)
                .map_or(IDLE_WAIT, |due| {
                    due.saturating_duration_since(wall_now()).min(IDLE_WAIT)
                });
            crossbeam_channel::select! {
                recv(self.commands) -> command => match command {
                    Ok(Command::Queued(entry)) => {
                        self.counts.queued += 1;
                        self.queue.push(entry);
                    }
                    Err(_) => break,
                },
                recv(self.results) -> result => {
                    if let Ok((entry, outcome)) = result {
                        self.record(entry, outcome);
                    }
                },
                default(wait) => {}
            }
            if Instant::now() >= next_stats {
                next_stats = Instant::now() + self.settings.stats_interval;
                self.log_stats();
            }
        }
        self.drain_after_stop();
    }

    /// Merges the store's pending entries into the queue. Returns false when the store could not be read.
    fn rescan(&mut self) -> bool {
        let pending = {
            let mut store = self.store.lock().unwrap_or_else(PoisonError::into_inner);
            if let Err(error) = store.maintain() {
                tracing::warn!("outbox maintenance failed: {error}");
            }
            store.entries(EntryState::Pending)
        };
        match pending {
            Ok(entries) => {
                let mut merged = 0usize;
                for entry in entries {
                    merged += usize::from(self.queue.push(entry));
                }
                if merged > 0 {
                    tracing::info!(merged, "undelivered notifications taken from the outbox");
                }
                true
            }
            Err(error) => {
                tracing::error!(retry_in = ?STORE_RETRY, "cannot read the notification outbox: {error}");
                false
            }
        }
    }

    fn dispatch(&mut self) {
        let Some(jobs) = &self.jobs else {
            return;
        };
        let now = wall_now();
        while self.queue.in_flight() < self.settings.concurrency {
            let Some(entry) = self.queue.next_ready(now) else {
                break;
            };
            if jobs.send(entry).is_err() {
                break;
            }
        }
    }

    fn record(&mut self, entry: OutboxEntry, outcome: Result<(), DeliveryError>) {
        let now = wall_now();
        let seq = entry.seq;
        let mut store = self.store.lock().unwrap_or_else(PoisonError::into_inner);
        match outcome {
            Ok(()) => {
                self.counts.delivered += 1;
                self.queue.finish(seq);
                tracing::debug!(seq, notification_id = %entry.notification_id, blog_id = entry.blog_id(), "delivered");
                if let Err(error) = store.delivered(seq) {
                    // It stays in the store and is sent again after a restart: a duplicate, not a loss.
                    tracing::error!(seq, "delivered, but cannot remove it from the outbox: {error}");
                }
            }
            Err(failure) => {
                let attempts = entry.attempts.saturating_add(1);
                let age = now.saturating_duration_since(entry.enqueued_at);
                let error = failure.to_string();
                if attempts >= self.settings.max_attempts || age >= self.settings.max_age {
                    self.counts.dead_lettered += 1;
                    self.queue.finish(seq);
                    tracing::error!(
                        seq,
                        notification_id = %entry.notification_id,
                        blog_id = entry.blog_id(),
                        attempts,
                        ?age,
                        "WPCOM notification dead-lettered after its last failed attempt ({error}); \
                         `jetmond outbox replay {seq}` sends it again"
                    );
                    if let Err(store_error) = store.dead_letter(seq, attempts, &error) {
                        tracing::error!(seq, "cannot record the dead letter: {store_error}");
                    }
                } else {
                    self.counts.retries += 1;
                    let delay = self.settings.backoff.delay(attempts, random_u64());
                    let next = now.saturating_add(delay);
                    tracing::warn!(
                        seq,
                        notification_id = %entry.notification_id,
                        blog_id = entry.blog_id(),
                        attempt = attempts,
                        retry_in = ?delay,
                        "WPCOM notification delivery failed: {error}"
                    );
                    self.queue.retry_at(seq, attempts, next, error.clone());
                    if let Err(store_error) = store.failed(seq, attempts, next, &error) {
                        tracing::error!(seq, "cannot record the failed attempt: {store_error}");
                    }
                }
            }
        }
    }

    /// Lets in-flight attempts report for a moment, so their outcome is recorded.
    fn drain_after_stop(&mut self) {
        self.jobs = None;
        let deadline = Instant::now() + STOP_GRACE;
        while self.queue.in_flight() > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.results.recv_timeout(left) {
                Ok((entry, outcome)) => self.record(entry, outcome),
                Err(_) => break,
            }
        }
        self.publish_stats();
    }

    fn publish_stats(&mut self) {
        self.counts.pending = self.queue.len() as u64;
        self.counts.in_flight = self.queue.in_flight() as u64;
        let now = wall_now();
        self.counts.oldest_undelivered = self
            .queue
            .oldest()
            .map(|entry| now.saturating_duration_since(entry.created_at));
        *self.stats.lock().unwrap_or_else(PoisonError::into_inner) = self.counts;
    }

    fn log_stats(&self) {
        let counts = self.counts;
        tracing::info!(
            queued = counts.queued,
            delivered = counts.delivered,
            retries = counts.retries,
            dead_lettered = counts.dead_lettered,
            pending = counts.pending,
            in_flight = counts.in_flight,
            oldest_undelivered = ?counts.oldest_undelivered,
            "outbox stats"
        );
    }
}

fn wall_now() -> UnixMillis {
    UnixMillis::from(SystemTime::now())
}
