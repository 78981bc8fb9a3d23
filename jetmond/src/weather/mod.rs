//! jetmond's side of the internet-weather guard (the detector itself is shared with veriflierd, in
//! [`veriflierd::weather`], and so are its `weather_*` config keys): what the control loop does with it.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn default_keys_are_the_documented_rule() {
        assert_eq!(Config::default().weather.settings(), WeatherSettings::default());
    }

    #[test]
    fn bad_canary_is_refused_naming_the_key() {
        let mut config = Config::default();
        config.weather.canaries = vec!["not a url".into()];
        assert!(matches!(config.weather.impossibility(), Some(("weather_canaries", _))));
    }
}
