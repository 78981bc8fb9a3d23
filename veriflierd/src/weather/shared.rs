//! The guard as veriflierd runs it: shared by the result dispatcher (which feeds it every result), a small
//! canary thread, and the request handlers (which ask it before answering "offline").

use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use jetmon_engine::{CheckResult, Submitter};

use super::guard::{WeatherGuard, WeatherHandle, WeatherState};
use crate::protocol::{LegacyResultItem, RemoteStatus, ResultItem};

/// How often the canary thread looks for due canaries and lets the guard leave degraded mode.
const CANARY_TICK: Duration = Duration::from_millis(250);

/// A [`WeatherGuard`] behind a lock, cheap to clone.
#[derive(Debug, Clone)]
pub struct SharedGuard(Arc<Mutex<WeatherGuard>>);

impl SharedGuard {
    /// Shares `guard`.
    pub fn new(guard: WeatherGuard) -> SharedGuard {
        SharedGuard(Arc::new(Mutex::new(guard)))
    }

    /// The guard stays consistent under a panic elsewhere (every change is one call), so a poisoned lock
    /// is still usable.
    fn lock(&self) -> MutexGuard<'_, WeatherGuard> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A read handle on the state.
    pub fn handle(&self) -> WeatherHandle {
        self.lock().handle()
    }

    /// Counts one engine result; `true` when it was a canary's (not a request's).
    pub fn observe(&self, result: &CheckResult) -> bool {
        let now = Instant::now();
        let mut guard = self.lock();
        let canary = guard.observe(now, result);
        guard.evaluate(now);
        canary
    }

    /// Whether the network is degraded now.
    pub fn is_degraded(&self) -> bool {
        let now = Instant::now();
        let mut guard = self.lock();
        guard.evaluate(now);
        guard.is_degraded()
    }

    /// While degraded, turns every "offline" answer into "unknown" (2): this veriflier cannot tell.
    pub fn hold_back(&self, results: &mut [ResultItem]) {
        if !self.is_degraded() {
            return;
        }
        let mut held = 0;
        for item in results.iter_mut().filter(|r| r.status == RemoteStatus::Offline) {
            item.status = RemoteStatus::Unknown;
            held += 1;
        }
        self.note_held_back(held);
    }

    /// The jetmon.js-compatible answer has no "unknown": while degraded, "offline" items are left out, so
    /// the monitor's request runs into its timeout and decides nothing, as if this veriflier had not
    /// answered about them.
    pub fn hold_back_legacy(&self, items: &mut Vec<LegacyResultItem>) {
        if !self.is_degraded() {
            return;
        }
        let before = items.len();
        items.retain(|item| item.status != RemoteStatus::Offline);
        self.note_held_back((before - items.len()) as u64);
    }

    fn note_held_back(&self, held: u64) {
        if held > 0 {
            tracing::info!(
                held,
                "internet weather: offline answers held back, this veriflier's network is degraded"
            );
            self.lock().count_held_back(held);
        }
    }

    /// The state for `/healthz`.
    pub fn describe(&self) -> serde_json::Value {
        let status = self.handle().snapshot();
        let (state, reason, since) = match &status.state {
            WeatherState::Clear => ("clear", None, None),
            WeatherState::Degraded { reason, since } => (
                "degraded",
                Some(reason.to_string()),
                since.duration_since(std::time::UNIX_EPOCH).ok().map(|d| d.as_secs()),
            ),
        };
        serde_json::json!({
            "state": state,
            "reason": reason,
            "since_unix": since,
            "entered": status.entered,
            "held_back": status.held_back,
            "canaries": status.canaries,
        })
    }

    /// Starts the thread that sends the canaries through `submitter`; `None` without canaries.
    pub fn start_canaries(&self, submitter: Submitter) -> std::io::Result<Option<CanaryThread>> {
        if self.lock().canary_count() == 0 {
            return Ok(None);
        }
        let (stop, stopped) = mpsc::channel::<()>();
        let guard = self.clone();
        let thread = std::thread::Builder::new()
            .name("veriflierd-canaries".into())
            .spawn(move || loop {
                let due = {
                    let now = Instant::now();
                    let mut locked = guard.lock();
                    locked.evaluate(now);
                    locked.due_canaries(now)
                };
                if !due.is_empty() {
                    if let Err(error) = submitter.submit_many(due) {
                        tracing::warn!(%error, "canary checks not sent");
                    }
                }
                match stopped.recv_timeout(CANARY_TICK) {
                    Err(RecvTimeoutError::Timeout) => {}
                    // Stopped, or the server is gone.
                    Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
                }
            })?;
        Ok(Some(CanaryThread { stop, thread }))
    }
}

/// The running canary thread; [`CanaryThread::stop`] ends it.
#[derive(Debug)]
pub struct CanaryThread {
    stop: mpsc::Sender<()>,
    thread: JoinHandle<()>,
}

impl CanaryThread {
    /// Stops the thread and waits for it (at most one tick).
    pub fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.thread.join();
    }
}
