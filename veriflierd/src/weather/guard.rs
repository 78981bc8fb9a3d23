//! The guard a daemon owns: the [`Detector`], its canaries and a shared [`WeatherHandle`] that other
//! threads (status endpoint, metrics) read. It logs every change of mode with its reason.

use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant, SystemTime};

use jetmon_engine::{CheckRequest, CheckResult, Verdict};

use super::canary::CanarySchedule;
use super::detector::{DegradedReason, Detector, WeatherChange, WeatherSettings};
use super::tally::{Observation, Tally};

/// The guard's mode, as other threads see it.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum WeatherState {
    /// Failures are the sites' own: they become DOWN decisions as usual.
    #[default]
    Clear,
    /// The monitor's own network is unwell: failures are held back.
    Degraded {
        /// Why (kept current while degraded).
        reason: DegradedReason,
        /// When degraded mode was entered.
        since: SystemTime,
    },
}

/// A snapshot of the guard for status pages and metrics.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WeatherStatus {
    /// Clear or degraded, and why.
    pub state: WeatherState,
    /// Times degraded mode was entered since start.
    pub entered: u64,
    /// Failed results not turned into decisions (jetmond) or offline answers sent as unknown (veriflierd).
    pub held_back: u64,
    /// The learned usual failure ratio.
    pub baseline_failure_ratio: f64,
    /// The ratio that would start degraded mode now.
    pub threshold: f64,
    /// Counts over the recent checks the spike rule looks at.
    pub recent: Tally,
    /// Counts over the whole window.
    pub window: Tally,
    /// Canaries configured.
    pub canaries: usize,
}

/// A cheap, cloneable read handle on the guard's state.
#[derive(Debug, Clone, Default)]
pub struct WeatherHandle(Arc<RwLock<WeatherStatus>>);

impl WeatherHandle {
    /// The current status. A poisoned lock still holds a whole snapshot (it is replaced in one write).
    pub fn snapshot(&self) -> WeatherStatus {
        self.0.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Whether the guard is holding failures back.
    pub fn is_degraded(&self) -> bool {
        matches!(
            self.0.read().unwrap_or_else(PoisonError::into_inner).state,
            WeatherState::Degraded { .. }
        )
    }

    fn update(&self, change: impl FnOnce(&mut WeatherStatus)) {
        change(&mut self.0.write().unwrap_or_else(PoisonError::into_inner));
    }
}

/// The detector with its canaries, as one daemon runs it.
#[derive(Debug)]
pub struct WeatherGuard {
    detector: Detector,
    canaries: CanarySchedule,
    handle: WeatherHandle,
    /// When the shared status was last refreshed; it is refreshed on every change and at most every
    /// [`PUBLISH_INTERVAL`] otherwise, so evaluating after every result stays cheap.
    published_at: Option<Instant>,
}

/// How stale the shared counts may get between changes of mode.
const PUBLISH_INTERVAL: Duration = Duration::from_millis(250);

impl WeatherGuard {
    /// A clear guard; `canary_urls` are checked every `canary_interval`, the first time at `now`.
    pub fn new(
        mut settings: WeatherSettings,
        canary_urls: Vec<String>,
        canary_interval: Duration,
        now: Instant,
    ) -> WeatherGuard {
        let canaries = CanarySchedule::new(canary_urls, canary_interval, now);
        settings.canaries = canaries.len();
        let mut guard = WeatherGuard {
            detector: Detector::new(settings, now),
            canaries,
            handle: WeatherHandle::default(),
            published_at: None,
        };
        guard.publish(now);
        guard
    }

    /// A handle other threads can read.
    pub fn handle(&self) -> WeatherHandle {
        self.handle.clone()
    }

    /// The detector (thresholds, baseline).
    pub fn detector(&self) -> &Detector {
        &self.detector
    }

    /// How many canaries there are.
    pub fn canary_count(&self) -> usize {
        self.canaries.len()
    }

    /// Whether failures are held back now.
    pub fn is_degraded(&self) -> bool {
        self.detector.is_degraded()
    }

    /// Canary checks due at `now`, ready for the engine.
    pub fn due_canaries(&mut self, now: Instant) -> Vec<CheckRequest> {
        self.canaries
            .due(now)
            .into_iter()
            .map(|(id, url)| CheckRequest::new(id, url))
            .collect()
    }

    /// Counts one engine result. Returns `true` when it was a canary's: the caller must not treat it as a
    /// site's.
    pub fn observe(&mut self, now: Instant, result: &CheckResult) -> bool {
        if let Some(canary) = self.canaries.finished(result.id) {
            let ok = result.verdict == Verdict::Up;
            if !ok {
                tracing::debug!(url = %result.url, detail = %result.detail, "canary failed");
            }
            self.detector.observe_canary(now, canary, ok);
            return true;
        }
        if let Some(observation) = Observation::of(result) {
            self.detector.observe(now, observation);
        }
        false
    }

    /// Counts `count` failures held back because of the weather.
    pub fn count_held_back(&self, count: u64) {
        if count > 0 {
            self.handle.update(|status| status.held_back += count);
        }
    }

    /// Applies the rules at `now`, logs a change of mode and refreshes the shared status.
    pub fn evaluate(&mut self, now: Instant) -> Option<WeatherChange> {
        let change = self.detector.evaluate(now);
        match &change {
            Some(WeatherChange::Entered(reason)) => {
                tracing::warn!(
                    reason = reason.kind(),
                    "internet weather: entering degraded mode, failures are held back: {reason}"
                );
                self.handle.update(|status| {
                    status.entered += 1;
                    status.state = WeatherState::Degraded {
                        reason: reason.clone(),
                        since: SystemTime::now(),
                    };
                });
            }
            Some(WeatherChange::Left { lasted, reason }) => {
                let held_back = self.handle.snapshot().held_back;
                tracing::info!(
                    lasted_sec = lasted.as_secs(),
                    held_back_total = held_back,
                    reason = reason.kind(),
                    "internet weather: leaving degraded mode, the canaries and the failure rate recovered"
                );
                self.handle.update(|status| status.state = WeatherState::Clear);
            }
            None => {}
        }
        let stale = self
            .published_at
            .is_none_or(|at| now.saturating_duration_since(at) >= PUBLISH_INTERVAL);
        if change.is_some() || stale {
            self.publish(now);
        }
        change
    }

    fn publish(&mut self, now: Instant) {
        self.published_at = Some(now);
        let detector = &self.detector;
        let (baseline, threshold, recent, window) = (
            detector.baseline(),
            detector.threshold(),
            detector.recent(),
            detector.window(),
        );
        let canaries = self.canaries.len();
        let current_reason = detector.degraded().map(|(reason, _)| reason.clone());
        self.handle.update(|status| {
            status.baseline_failure_ratio = baseline;
            status.threshold = threshold;
            status.recent = recent;
            status.window = window;
            status.canaries = canaries;
            if let (WeatherState::Degraded { reason, .. }, Some(current)) = (&mut status.state, current_reason) {
                *reason = current;
            }
        });
    }
}
