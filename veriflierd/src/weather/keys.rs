//! The `weather_*` config keys both daemons accept, declared, read and checked one way: each daemon's config
//! holds a [`WeatherKeys`] flattened in (`#[serde(flatten)]`), so the keys sit at the top level of its file.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::canary::MAX_CANARIES;
use super::detector::WeatherSettings;
use super::guard::WeatherGuard;

const PERCENT: f64 = 100.0;

/// The `weather_*` keys. The defaults are the documented rule ([`WeatherSettings::default`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeatherKeys {
    /// `weather_canaries`: known-good URLs checked every `weather_canary_interval_sec`. When every one fails
    /// `weather_canary_failures` times in a row, the daemon's own network is taken to be down. Empty: only
    /// the failure-ratio and resolver rules.
    #[serde(rename = "weather_canaries")]
    pub canaries: Vec<String>,
    /// `weather_canary_interval_sec`: seconds between two checks of each canary.
    #[serde(rename = "weather_canary_interval_sec")]
    pub canary_interval_sec: u64,
    /// `weather_canary_failures`: consecutive failures of every canary that start degraded mode.
    #[serde(rename = "weather_canary_failures")]
    pub canary_failures: u32,
    /// `weather_window_sec`: span of the sliding window of check results, in seconds (12 buckets).
    #[serde(rename = "weather_window_sec")]
    pub window_sec: u64,
    /// `weather_min_samples`: recent checks needed before the failure ratio can start degraded mode; 0 turns
    /// that rule off.
    #[serde(rename = "weather_min_samples")]
    pub min_samples: u64,
    /// `weather_min_failure_pct`: degraded when at least this percentage of the recent checks failed...
    #[serde(rename = "weather_min_failure_pct")]
    pub min_failure_pct: u8,
    /// `weather_baseline_factor`: ...and at least this many times the usual failure ratio...
    #[serde(rename = "weather_baseline_factor")]
    pub baseline_factor: u32,
    /// `weather_baseline_margin_pct`: ...plus this many percentage points.
    #[serde(rename = "weather_baseline_margin_pct")]
    pub baseline_margin_pct: u8,
    /// `weather_dns_unavailable_min`: recent checks failing with `dns_unavailable` that make the resolver
    /// down; 0 turns that rule off.
    #[serde(rename = "weather_dns_unavailable_min")]
    pub dns_unavailable_min: u64,
    /// `weather_dns_unavailable_pct`: ...when they are at least this percentage of the recent checks.
    #[serde(rename = "weather_dns_unavailable_pct")]
    pub dns_unavailable_pct: u8,
    /// `weather_hold_sec`: seconds every rule must stay clear before degraded mode is left.
    #[serde(rename = "weather_hold_sec")]
    pub hold_sec: u64,
}

impl Default for WeatherKeys {
    fn default() -> Self {
        WeatherKeys {
            canaries: Vec::new(),
            canary_interval_sec: 10,
            canary_failures: 3,
            window_sec: 60,
            min_samples: 50,
            min_failure_pct: 50,
            baseline_factor: 3,
            baseline_margin_pct: 10,
            dns_unavailable_min: 20,
            dns_unavailable_pct: 25,
            hold_sec: 60,
        }
    }
}

impl WeatherKeys {
    /// The detector's thresholds.
    pub fn settings(&self) -> WeatherSettings {
        WeatherSettings {
            window: Duration::from_secs(self.window_sec),
            min_samples: self.min_samples,
            min_failure_ratio: f64::from(self.min_failure_pct) / PERCENT,
            baseline_factor: f64::from(self.baseline_factor),
            baseline_margin: f64::from(self.baseline_margin_pct) / PERCENT,
            canaries: self.canaries.len(),
            canary_failures: self.canary_failures,
            dns_unavailable_min: self.dns_unavailable_min,
            dns_unavailable_ratio: f64::from(self.dns_unavailable_pct) / PERCENT,
            hold: Duration::from_secs(self.hold_sec),
        }
    }

    /// A guard with these settings, its canaries due at `now`.
    pub fn guard(&self, now: Instant) -> WeatherGuard {
        WeatherGuard::new(
            self.settings(),
            self.canaries.clone(),
            Duration::from_secs(self.canary_interval_sec),
            now,
        )
    }

    /// The first key whose value cannot work, with the reason.
    pub fn impossibility(&self) -> Option<(&'static str, String)> {
        if self.canaries.len() > MAX_CANARIES {
            return Some(("weather_canaries", format!("at most {MAX_CANARIES} canaries")));
        }
        if let Some(problem) = self.canaries.iter().find_map(|url| canary_url_problem(url)) {
            return Some(("weather_canaries", problem));
        }
        let positive: [(&'static str, u64); 4] = [
            ("weather_canary_interval_sec", self.canary_interval_sec),
            ("weather_canary_failures", self.canary_failures.into()),
            ("weather_window_sec", self.window_sec),
            ("weather_hold_sec", self.hold_sec),
        ];
        if let Some((key, _)) = positive.iter().find(|(_, value)| *value == 0) {
            return Some((key, "must be at least 1".into()));
        }
        [
            ("weather_min_failure_pct", self.min_failure_pct),
            ("weather_baseline_margin_pct", self.baseline_margin_pct),
            ("weather_dns_unavailable_pct", self.dns_unavailable_pct),
        ]
        .into_iter()
        .find(|(_, value)| *value > 100)
        .map(|(key, value)| (key, format!("{value} is not a percentage (0 to 100)")))
    }
}

/// Why a canary URL cannot be checked: it must be `http://` or `https://` with a host.
fn canary_url_problem(url: &str) -> Option<String> {
    match url::Url::parse(url) {
        Ok(parsed) if matches!(parsed.scheme(), "http" | "https") && parsed.host().is_some() => None,
        Ok(_) => Some(format!("{url:?} is not an http:// or https:// URL")),
        Err(error) => Some(format!("{url:?} is not a URL: {error}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(canaries: &[String]) -> WeatherKeys {
        WeatherKeys {
            canaries: canaries.to_vec(),
            ..WeatherKeys::default()
        }
    }

    #[test]
    fn documented_values_make_the_default_settings() {
        assert_eq!(keys(&[]).settings(), WeatherSettings::default());
    }

    #[test]
    fn canary_that_is_not_an_http_url_is_refused() {
        let canaries = ["ftp://example.test/".to_string()];
        assert!(matches!(keys(&canaries).impossibility(), Some(("weather_canaries", _))));
    }

    #[test]
    fn percentage_above_100_is_refused() {
        let mut keys = keys(&[]);
        keys.min_failure_pct = 150;
        assert!(matches!(keys.impossibility(), Some(("weather_min_failure_pct", _))));
    }
}
