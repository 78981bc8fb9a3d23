//! The detector: a pure state machine (observations and time in, transitions out) that decides whether the
//! monitor's own network is degraded. It never touches a socket or a clock.
//!
//! # The rule
//!
//! Degraded when any of these holds:
//! - **failure spike**: the newest checks of the window (at least `min_samples` of them) fail at a ratio of at
//!   least `clamp(baseline_factor × baseline + baseline_margin, min_failure_ratio, RATIO_CEILING)`. The
//!   baseline is a slow average of the failure ratio, learned only from buckets that were fully seen while
//!   clear, so an outage never teaches the detector that outages are normal;
//! - **canaries down**: every canary failed its last `canary_failures` checks;
//! - **resolver down**: among the newest checks (taken like the spike rule's, at least `dns_unavailable_min`
//!   of them), at least `dns_unavailable_min` failed because no DNS upstream answered, and they are at least
//!   `dns_unavailable_ratio` of those checks. A few sites with broken name servers also end as
//!   `dns_unavailable` (the engine counts an upstream's SERVFAIL as no answer); a dead resolver fails nearly
//!   every lookup. Sites' NXDOMAIN (`dns`) never counts here.
//!
//! It leaves when, for `hold` without a break, the canaries answer (when there are any), the recent failure
//! ratio is below `RECOVERY_FRACTION` of the entry threshold (hysteresis: a ratio hovering at the threshold
//! does not flap) and the resolver rule no longer holds.

use std::fmt;
use std::time::{Duration, Instant};

use super::tally::{ratio, FailureClass, Observation, Tally};
use super::window::Window;

/// Whatever the baseline, this failure ratio over enough checks is the monitor's own trouble.
pub const RATIO_CEILING: f64 = 0.95;
/// To leave, the failure ratio must fall below this fraction of the entry threshold.
pub const RECOVERY_FRACTION: f64 = 0.5;
/// Time constant of the baseline's moving average: a level that lasts about this long becomes normal.
pub const BASELINE_TIME_CONSTANT: Duration = Duration::from_secs(30 * 60);

/// The detector's thresholds. See the [module docs](self) for how they combine.
#[derive(Debug, Clone, PartialEq)]
pub struct WeatherSettings {
    /// Span of the sliding window (12 buckets).
    pub window: Duration,
    /// Checks needed before the failure ratio can decide; 0 turns the spike rule off.
    pub min_samples: u64,
    /// The entry threshold never goes below this failure ratio.
    pub min_failure_ratio: f64,
    /// The entry threshold is at least this many times the baseline...
    pub baseline_factor: f64,
    /// ...plus this margin.
    pub baseline_margin: f64,
    /// How many canaries there are (their results come through [`Detector::observe_canary`]).
    pub canaries: usize,
    /// Consecutive failures of every canary that make the network degraded.
    pub canary_failures: u32,
    /// `dns_unavailable` failures in the window for the resolver rule; 0 turns it off.
    pub dns_unavailable_min: u64,
    /// Share of the window's checks that must be `dns_unavailable` for the resolver rule.
    pub dns_unavailable_ratio: f64,
    /// How long every rule must stay clear before degraded mode is left.
    pub hold: Duration,
}

impl Default for WeatherSettings {
    /// jetmond's defaults: a 60 s window, ≥ 50 checks, threshold `max(0.5, 3 × baseline + 0.1)`, three
    /// failed rounds of every canary, ≥ 20 resolver failures making ≥ 25 % of the checks, 60 s hold.
    fn default() -> Self {
        WeatherSettings {
            window: Duration::from_secs(60),
            min_samples: 50,
            min_failure_ratio: 0.5,
            baseline_factor: 3.0,
            baseline_margin: 0.1,
            canaries: 0,
            canary_failures: 3,
            dns_unavailable_min: 20,
            dns_unavailable_ratio: 0.25,
            hold: Duration::from_secs(60),
        }
    }
}

/// Why the network is taken to be degraded.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum DegradedReason {
    /// Far more checks fail than usual.
    FailureSpike {
        /// Failure ratio of the recent checks.
        ratio: f64,
        /// The threshold it crossed.
        threshold: f64,
        /// The usual failure ratio.
        baseline: f64,
        /// Recent checks counted.
        samples: u64,
        /// The class with the most failures.
        dominant: Option<FailureClass>,
        /// Failures by class, as `timeout=120 connect=30`.
        breakdown: String,
    },
    /// Every canary failed its last checks.
    CanariesDown {
        /// How many canaries.
        canaries: usize,
        /// Consecutive failures of each, at least.
        consecutive_failures: u32,
    },
    /// The DNS resolver does not answer (not the sites' NXDOMAIN).
    ResolverDown {
        /// `dns_unavailable` failures among the recent checks.
        failures: u64,
        /// Recent checks counted.
        samples: u64,
    },
}

impl DegradedReason {
    /// A short stable name: `failure_spike`, `canaries_down`, `resolver_down` (for metric labels).
    pub fn kind(&self) -> &'static str {
        match self {
            DegradedReason::FailureSpike { .. } => "failure_spike",
            DegradedReason::CanariesDown { .. } => "canaries_down",
            DegradedReason::ResolverDown { .. } => "resolver_down",
        }
    }
}

impl fmt::Display for DegradedReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DegradedReason::FailureSpike {
                ratio,
                threshold,
                baseline,
                samples,
                breakdown,
                ..
            } => write!(
                f,
                "{:.0}% of the last {samples} checks failed ({breakdown}); threshold {:.0}%, usual {:.1}%",
                ratio * 100.0,
                threshold * 100.0,
                baseline * 100.0
            ),
            DegradedReason::CanariesDown {
                canaries,
                consecutive_failures,
            } => write!(
                f,
                "all {canaries} canaries failed their last {consecutive_failures} checks"
            ),
            DegradedReason::ResolverDown { failures, samples } => write!(
                f,
                "the DNS resolver does not answer: {failures} of {samples} checks found no upstream"
            ),
        }
    }
}

/// A change of the detector's state.
#[derive(Debug, Clone, PartialEq)]
pub enum WeatherChange {
    /// Degraded mode starts.
    Entered(DegradedReason),
    /// Degraded mode ends.
    Left {
        /// How long it lasted.
        lasted: Duration,
        /// What started it.
        reason: DegradedReason,
    },
}

#[derive(Debug, Clone, Copy, Default)]
struct CanaryHealth {
    consecutive_failures: u32,
    answered: bool,
}

#[derive(Debug, Clone, PartialEq)]
enum Mode {
    Clear {
        since: Instant,
    },
    Degraded {
        reason: DegradedReason,
        since: Instant,
        healthy_since: Option<Instant>,
    },
}

/// Moving averages of failures and samples per bucket; their quotient is the baseline ratio. Averaging
/// the counts (not the ratios) weights busy buckets more than quiet ones.
#[derive(Debug, Clone, Copy, Default)]
struct Baseline {
    failures: f64,
    samples: f64,
}

impl Baseline {
    fn fold(&mut self, tally: &Tally, weight: f64) {
        self.failures += weight * (tally.failures() as f64 - self.failures);
        self.samples += weight * (tally.samples() as f64 - self.samples);
    }

    fn ratio(&self) -> f64 {
        if self.samples <= f64::EPSILON {
            0.0
        } else {
            (self.failures / self.samples).clamp(0.0, 1.0)
        }
    }
}

/// The internet-weather detector. Feed it every check's [`Observation`] and every canary result, call
/// [`Detector::evaluate`] after each batch and on a timer, and act on the [`WeatherChange`]s it returns.
#[derive(Debug, Clone)]
pub struct Detector {
    settings: WeatherSettings,
    window: Window,
    baseline: Baseline,
    /// Weight of one bucket in the baseline's moving average.
    baseline_weight: f64,
    canaries: Vec<CanaryHealth>,
    mode: Mode,
}

impl Detector {
    /// A clear detector starting at `now`.
    pub fn new(settings: WeatherSettings, now: Instant) -> Detector {
        let window = Window::new(settings.window, now);
        let baseline_weight =
            (window.bucket_width().as_secs_f64() / BASELINE_TIME_CONSTANT.as_secs_f64()).clamp(0.0, 1.0);
        Detector {
            canaries: vec![CanaryHealth::default(); settings.canaries],
            settings,
            window,
            baseline: Baseline::default(),
            baseline_weight,
            mode: Mode::Clear { since: now },
        }
    }

    /// Starts from a known baseline failure ratio (e.g. one a test recorded), as if learned over a long
    /// quiet time.
    pub fn with_baseline(mut self, failure_ratio: f64) -> Detector {
        let samples = self.settings.min_samples.max(1) as f64;
        self.baseline = Baseline {
            failures: failure_ratio.clamp(0.0, 1.0) * samples,
            samples,
        };
        self
    }

    /// The settings in use.
    pub fn settings(&self) -> &WeatherSettings {
        &self.settings
    }

    /// Counts one check finished at `now`.
    pub fn observe(&mut self, now: Instant, observation: Observation) {
        self.advance(now);
        self.window.record(now, observation);
    }

    /// Counts one result of canary number `canary` (out-of-range numbers are ignored).
    pub fn observe_canary(&mut self, now: Instant, canary: usize, ok: bool) {
        self.advance(now);
        if let Some(health) = self.canaries.get_mut(canary) {
            health.answered = true;
            health.consecutive_failures = if ok {
                0
            } else {
                health.consecutive_failures.saturating_add(1)
            };
        }
    }

    /// Looks at the counts at `now` and changes mode if the rules say so.
    pub fn evaluate(&mut self, now: Instant) -> Option<WeatherChange> {
        self.advance(now);
        let trouble = self.trouble();
        let recovered = trouble.is_none() && self.recovered();
        let hold = self.settings.hold;
        match &mut self.mode {
            Mode::Clear { .. } => {
                let reason = trouble?;
                self.mode = Mode::Degraded {
                    reason: reason.clone(),
                    since: now,
                    healthy_since: None,
                };
                Some(WeatherChange::Entered(reason))
            }
            Mode::Degraded {
                reason,
                since,
                healthy_since,
            } => {
                if let Some(current) = trouble {
                    // Still degraded; keep the reason current so operators see what holds it.
                    *reason = current;
                }
                if !recovered {
                    *healthy_since = None;
                    return None;
                }
                let healthy_from = *healthy_since.get_or_insert(now);
                if now.saturating_duration_since(healthy_from) < hold {
                    return None;
                }
                let change = WeatherChange::Left {
                    lasted: now.saturating_duration_since(*since),
                    reason: reason.clone(),
                };
                self.mode = Mode::Clear { since: now };
                Some(change)
            }
        }
    }

    /// Whether failures should currently be held back.
    pub fn is_degraded(&self) -> bool {
        matches!(self.mode, Mode::Degraded { .. })
    }

    /// Why and since when the network is degraded; `None` while clear.
    pub fn degraded(&self) -> Option<(&DegradedReason, Instant)> {
        match &self.mode {
            Mode::Degraded { reason, since, .. } => Some((reason, *since)),
            Mode::Clear { .. } => None,
        }
    }

    /// The learned usual failure ratio.
    pub fn baseline(&self) -> f64 {
        self.baseline.ratio()
    }

    /// The failure ratio the spike rule looks at now, and over how many checks.
    pub fn recent(&self) -> Tally {
        self.window.recent(self.settings.min_samples)
    }

    /// Everything in the window.
    pub fn window(&self) -> Tally {
        self.window.total()
    }

    /// The failure ratio that makes a spike at the current baseline.
    pub fn threshold(&self) -> f64 {
        let s = &self.settings;
        (s.baseline_factor * self.baseline.ratio() + s.baseline_margin)
            .max(s.min_failure_ratio)
            .min(RATIO_CEILING)
    }

    fn advance(&mut self, now: Instant) {
        let clear_since = match self.mode {
            Mode::Clear { since } => Some(since),
            Mode::Degraded { .. } => None,
        };
        let (baseline, weight) = (&mut self.baseline, self.baseline_weight);
        self.window.advance(now, |began, tally| {
            // Learn only from buckets seen whole while clear: the run-up to a spike that tripped the rule
            // (and everything while degraded) never becomes "usual".
            if clear_since.is_some_and(|since| since <= began) {
                baseline.fold(tally, weight);
            }
        });
    }

    fn trouble(&self) -> Option<DegradedReason> {
        self.resolver_down()
            .or_else(|| self.canaries_down())
            .or_else(|| self.failure_spike())
    }

    fn failure_spike(&self) -> Option<DegradedReason> {
        let min_samples = self.settings.min_samples;
        if min_samples == 0 {
            return None;
        }
        let recent = self.recent();
        let threshold = self.threshold();
        let ratio = recent.failure_ratio();
        (recent.samples() >= min_samples && ratio >= threshold).then(|| DegradedReason::FailureSpike {
            ratio,
            threshold,
            baseline: self.baseline(),
            samples: recent.samples(),
            dominant: recent.dominant(),
            breakdown: recent.breakdown(),
        })
    }

    fn canaries_down(&self) -> Option<DegradedReason> {
        let needed = self.settings.canary_failures.max(1);
        let all_failed = !self.canaries.is_empty() && self.canaries.iter().all(|c| c.consecutive_failures >= needed);
        all_failed.then(|| DegradedReason::CanariesDown {
            canaries: self.canaries.len(),
            consecutive_failures: self
                .canaries
                .iter()
                .map(|c| c.consecutive_failures)
                .min()
                .unwrap_or(needed),
        })
    }

    fn resolver_down(&self) -> Option<DegradedReason> {
        let min = self.settings.dns_unavailable_min;
        if min == 0 {
            return None;
        }
        // The newest checks, like the spike rule, so a resolver dying shows at once on a busy monitor.
        let recent = self.window.recent(self.settings.min_samples.max(min));
        let failures = recent.of(FailureClass::DnsUnavailable);
        let samples = recent.samples();
        (failures >= min && ratio(failures, samples) >= self.settings.dns_unavailable_ratio)
            .then_some(DegradedReason::ResolverDown { failures, samples })
    }

    /// Every rule clear with margin: the canaries answer, the ratio is well below the entry threshold.
    fn recovered(&self) -> bool {
        let canaries_ok =
            self.canaries.is_empty() || self.canaries.iter().any(|c| c.answered && c.consecutive_failures == 0);
        let recent = self.recent();
        let ratio_ok = self.settings.min_samples == 0
            || recent.samples() < self.settings.min_samples
            || recent.failure_ratio() < self.threshold() * RECOVERY_FRACTION;
        canaries_ok && ratio_ok
    }
}
