//! The internet-weather guard: never blame the sites for the monitor's own network.
//!
//! When the host running the checks loses its uplink, its DNS resolver or its file descriptors, thousands
//! of sites fail at once. Re-checks and verifliers handle one site's trouble, not that. The guard watches the
//! daemon's own failure rate by class and a few known-good canaries, and says when the network itself is
//! degraded; jetmond then stops turning failures into DOWN decisions and veriflier requests, and veriflierd
//! answers "unknown" instead of "offline". It lives here because both daemons run it (jetmond already
//! depends on this crate for the wire protocol).
//!
//! ```
//! use std::time::{Duration, Instant};
//! use veriflierd::weather::{Detector, FailureClass, Observation, WeatherChange, WeatherSettings};
//!
//! let start = Instant::now();
//! let mut detector = Detector::new(WeatherSettings::default(), start);
//! for _ in 0..60 {
//!     detector.observe(start, Observation::Failed(FailureClass::Connect));
//! }
//! assert!(matches!(detector.evaluate(start), Some(WeatherChange::Entered(_))));
//! ```
//!
//! - [`tally`]: what a check says about the network ([`Observation`]) and the counts by class.
//! - [`window`]: the sliding window of time buckets.
//! - [`detector`]: the pure rule, documented there with its defaults.
//! - [`canary`]: the canaries' schedule and their reserved check ids.
//! - [`keys`]: the `weather_*` config keys both daemons share, read and checked one way.
//! - [`guard`]: the detector and canaries as a daemon runs them, with a [`WeatherHandle`] for other threads.
//! - [`shared`]: the guard as veriflierd shares it between its dispatcher, canary thread and handlers.

pub mod canary;
pub mod detector;
pub mod guard;
pub mod keys;
pub mod shared;
pub mod tally;
pub mod window;

#[cfg(test)]
mod series_tests;

pub use canary::{canary_index, CanarySchedule, CANARY_ID_BASE, MAX_CANARIES};
pub use detector::{DegradedReason, Detector, WeatherChange, WeatherSettings};
pub use guard::{WeatherGuard, WeatherHandle, WeatherState, WeatherStatus};
pub use keys::WeatherKeys;
pub use shared::{CanaryThread, SharedGuard};
pub use tally::{FailureClass, Observation, Tally};
