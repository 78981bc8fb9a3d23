//! jetmond's side of the internet-weather guard (the detector itself is shared with veriflierd, in
//! [`veriflierd::weather`]): its settings from the config, and what the control loop does with it.
//!
//! The control thread owns a [`WeatherGuard`]. Every engine result goes through it first: canary results
//! (reserved ids, see [`veriflierd::weather::canary`]) stop there and never reach the status machine. While
//! the guard is degraded, failed results are not handed to the status machine, so they never become
//! re-checks, veriflier requests or DOWN decisions; successes still are, checking goes on, and what was held
//! back is counted. Other threads read the state through the [`WeatherHandle`] from `Daemon::weather`.

pub use veriflierd::weather::{
    DegradedReason, FailureClass, Tally, WeatherChange, WeatherGuard, WeatherHandle, WeatherKeys, WeatherSettings,
    WeatherState, WeatherStatus,
};

use crate::config::Config;

impl Config {
    /// The `weather_*` keys, for the internet-weather guard.
    pub fn weather_keys(&self) -> WeatherKeys<'_> {
        WeatherKeys {
            canaries: &self.weather_canaries,
            canary_interval_sec: self.weather_canary_interval_sec,
            canary_failures: self.weather_canary_failures,
            window_sec: self.weather_window_sec,
            min_samples: self.weather_min_samples,
            min_failure_pct: self.weather_min_failure_pct,
            baseline_factor: self.weather_baseline_factor,
            baseline_margin_pct: self.weather_baseline_margin_pct,
            dns_unavailable_min: self.weather_dns_unavailable_min,
            dns_unavailable_pct: self.weather_dns_unavailable_pct,
            hold_sec: self.weather_hold_sec,
        }
    }

    /// A guard for this config, its canaries due at `now`.
    pub fn weather_guard(&self, now: std::time::Instant) -> WeatherGuard {
        let keys = self.weather_keys();
        WeatherGuard::new(
            keys.settings(),
            self.weather_canaries.clone(),
            keys.canary_interval(),
            now,
        )
    }

    /// The first weather key whose value cannot work, with the reason.
    pub(crate) fn weather_impossibility(&self) -> Option<(&'static str, String)> {
        self.weather_keys().impossibility()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_keys_are_the_documented_rule() {
        assert_eq!(Config::default().weather_keys().settings(), WeatherSettings::default());
    }

    #[test]
    fn bad_canary_is_refused_naming_the_key() {
        let config = Config {
            weather_canaries: vec!["not a url".into()],
            ..Config::default()
        };
        assert!(matches!(config.weather_impossibility(), Some(("weather_canaries", _))));
    }
}
