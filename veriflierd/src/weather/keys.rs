//! The `weather_*` config keys both daemons accept, read one way: to [`WeatherSettings`], and checked one
//! way. Each daemon's config lends its values through [`WeatherKeys`].

use std::time::Duration;

use super::canary::MAX_CANARIES;
use super::detector::WeatherSettings;

const PERCENT: f64 = 100.0;

/// The raw values of the `weather_*` keys (see either daemon's config for their meaning).
#[derive(Debug, Clone, Copy)]
pub struct WeatherKeys<'a> {
    /// `weather_canaries`.
    pub canaries: &'a [String],
    /// `weather_canary_interval_sec`.
    pub canary_interval_sec: u64,
    /// `weather_canary_failures`.
    pub canary_failures: u32,
    /// `weather_window_sec`.
    pub window_sec: u64,
    /// `weather_min_samples`.
    pub min_samples: u64,
    /// `weather_min_failure_pct`.
    pub min_failure_pct: u8,
    /// `weather_baseline_factor`.
    pub baseline_factor: u32,
    /// `weather_baseline_margin_pct`.
    pub baseline_margin_pct: u8,
    /// `weather_dns_unavailable_min`.
    pub dns_unavailable_min: u64,
    /// `weather_dns_unavailable_pct`.
    pub dns_unavailable_pct: u8,
    /// `weather_hold_sec`.
    pub hold_sec: u64,
}

impl WeatherKeys<'_> {
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

    /// The canary interval.
    pub fn canary_interval(&self) -> Duration {
        Duration::from_secs(self.canary_interval_sec)
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

    fn keys(canaries: &[String]) -> WeatherKeys<'_> {
        WeatherKeys {
            canaries,
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
