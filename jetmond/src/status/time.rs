//! Wall-clock instants as the status machine sees them.
//!
//! The machine never reads a clock: every event carries the instant it happened at, as a [`UnixMillis`].
//! Milliseconds since the Unix epoch are what the original stored (`Date.valueOf()`), what the database's
//! `last_status_change` maps to without loss at our precision, and what a state file can keep as a plain
//! integer.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

const MILLIS_PER_SECOND: u64 = 1_000;
const MILLIS_PER_DAY: u64 = 86_400_000;
/// Days from 0000-03-01 (the start of the proleptic era used by the civil-date algorithm) to 1970-01-01.
const DAYS_FROM_ERA_TO_UNIX_EPOCH: i64 = 719_468;
const DAYS_PER_400_YEARS: i64 = 146_097;
/// `YYYY-MM-DDTHH:MM:SS.sssZ`: the only shape [`UnixMillis::parse_wpcom`] accepts.
const WPCOM_DATETIME_LEN: usize = 24;

/// An instant in UTC, as whole milliseconds since 1970-01-01T00:00:00Z.
///
/// Serialised (inside a [`Notification`](super::Notification)) as the original's wire format: JavaScript's
/// `Date.prototype.toJSON()`, i.e. ISO 8601 in UTC with milliseconds, `"2026-11-25T12:00:00.000Z"`. The
/// original built `last_check` and `last_status_change` as `new Date(..)` and `JSON.stringify`d them, so
/// this is what WPCOM's `/jetmon/` endpoint already parses; changing it would change the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct UnixMillis(u64);

impl UnixMillis {
    /// The Unix epoch itself.
    pub const EPOCH: UnixMillis = UnixMillis(0);

    /// The instant `millis` milliseconds after the Unix epoch.
    pub const fn from_millis(millis: u64) -> Self {
        UnixMillis(millis)
    }

    /// Milliseconds since the Unix epoch.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// The instant `duration` later, saturating at the end of representable time rather than wrapping,
    /// because a deadline that wrapped to the past would fire at once.
    pub fn saturating_add(self, duration: Duration) -> Self {
        let millis = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
        UnixMillis(self.0.saturating_add(millis))
    }

    /// How long after `earlier` this instant is; zero if it is not later (clocks can step back, and a
    /// negative age must not read as a huge one).
    pub fn saturating_duration_since(self, earlier: UnixMillis) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }

    /// Formats as the original's wire format, `YYYY-MM-DDTHH:MM:SS.sssZ` (UTC).
    pub fn to_wpcom_datetime(self) -> String {
        self.to_string()
    }

    /// Parses the format written by [`UnixMillis::to_wpcom_datetime`] (and by JavaScript's
    /// `Date.toJSON()` for years 1970–9999), so persisted notifications can be read back.
    pub fn parse_wpcom(text: &str) -> Result<Self, DateTimeParseError> {
        let invalid = || DateTimeParseError { text: text.to_owned() };
        let bytes = text.as_bytes();
        if bytes.len() != WPCOM_DATETIME_LEN {
            return Err(invalid());
        }
        // Separators at fixed offsets; digits everywhere else.
        let separators = [
            (4, b'-'),
            (7, b'-'),
            (10, b'T'),
            (13, b':'),
            (16, b':'),
            (19, b'.'),
            (23, b'Z'),
        ];
        if separators.iter().any(|&(at, byte)| bytes[at] != byte) {
            return Err(invalid());
        }
        let number = |range: std::ops::Range<usize>| -> Result<u64, DateTimeParseError> {
            let digits = &text[range];
            if digits.bytes().all(|b| b.is_ascii_digit()) {
                digits.parse().map_err(|_| invalid())
            } else {
                Err(invalid())
            }
        };
        let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
        let (hour, minute, second, millis) = (number(11..13)?, number(14..16)?, number(17..19)?, number(20..23)?);
        if year < 1970
            || !(1..=12).contains(&month)
            || day == 0
            || day > days_in_month(year, month)
            || hour > 23
            || minute > 59
            || second > 59
        {
            return Err(invalid());
        }
        let days = u64::try_from(days_from_civil(year as i64, month, day)).map_err(|_| invalid())?;
        let seconds_of_day = hour * 3_600 + minute * 60 + second;
        Ok(UnixMillis(
            days * MILLIS_PER_DAY + seconds_of_day * MILLIS_PER_SECOND + millis,
        ))
    }
}

impl From<SystemTime> for UnixMillis {
    /// Instants before 1970 (a badly set clock) become the epoch: the machine only compares instants,
    /// and "very old" is the safe reading of a nonsensical one.
    fn from(time: SystemTime) -> Self {
        let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
        UnixMillis(u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX))
    }
}

impl From<UnixMillis> for SystemTime {
    fn from(instant: UnixMillis) -> Self {
        UNIX_EPOCH + Duration::from_millis(instant.0)
    }
}

impl fmt::Display for UnixMillis {
    /// `YYYY-MM-DDTHH:MM:SS.sssZ`, see [`UnixMillis`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = self.0 / MILLIS_PER_DAY;
        let millis_of_day = self.0 % MILLIS_PER_DAY;
        let (year, month, day) = civil_from_days(days);
        let seconds_of_day = millis_of_day / MILLIS_PER_SECOND;
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
            seconds_of_day / 3_600,
            seconds_of_day / 60 % 60,
            seconds_of_day % 60,
            millis_of_day % MILLIS_PER_SECOND
        )
    }
}

impl Serialize for UnixMillis {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for UnixMillis {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        UnixMillis::parse_wpcom(&text).map_err(serde::de::Error::custom)
    }
}

/// A datetime string that is not `YYYY-MM-DDTHH:MM:SS.sssZ` with a real date from 1970 on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid datetime {text:?}: expected UTC `YYYY-MM-DDTHH:MM:SS.sssZ` from 1970 on")]
pub struct DateTimeParseError {
    text: String,
}

fn is_leap_year(year: u64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: u64, month: u64) -> u64 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Year, month, day of the `days`th day after 1970-01-01 (Howard Hinnant's `civil_from_days`, which
/// counts from March so the leap day is the last of its "year").
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = i64::try_from(days).unwrap_or(i64::MAX - DAYS_FROM_ERA_TO_UNIX_EPOCH) + DAYS_FROM_ERA_TO_UNIX_EPOCH;
    let era = z.div_euclid(DAYS_PER_400_YEARS);
    let day_of_era = z.rem_euclid(DAYS_PER_400_YEARS) as u64;
    let year_of_era = (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era as i64 + era * 400 + i64::from(month <= 2);
    (year.max(0) as u64, month, day)
}

/// Days from 1970-01-01 to the given civil date (inverse of [`civil_from_days`]).
fn days_from_civil(year: i64, month: u64, day: u64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400) as u64;
    let month_from_march = if month > 2 { month - 3 } else { month + 9 };
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * DAYS_PER_400_YEARS + day_of_era as i64 - DAYS_FROM_ERA_TO_UNIX_EPOCH
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_formats_like_javascript_to_json() {
        assert_eq!(UnixMillis::EPOCH.to_wpcom_datetime(), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn known_instant_formats_with_milliseconds() {
        // 2026-11-25T12:00:00.123Z, computed with `date -u`: 20_782 days after the epoch.
        let instant = UnixMillis::from_millis(20_782 * MILLIS_PER_DAY + 12 * 3_600_000 + 123);
        assert_eq!(instant.to_wpcom_datetime(), "2026-11-25T12:00:00.123Z");
    }

    #[test]
    fn leap_day_round_trips() {
        let parsed = UnixMillis::parse_wpcom("2024-02-29T23:59:59.999Z");
        assert_eq!(
            parsed.map(UnixMillis::to_wpcom_datetime).as_deref(),
            Ok("2024-02-29T23:59:59.999Z")
        );
    }

    #[test]
    fn every_day_over_several_centuries_round_trips() {
        // Covers the 2100 (not leap) and 2000 (leap) century rules.
        for day in (0..200_000u64).step_by(7) {
            let instant = UnixMillis::from_millis(day * MILLIS_PER_DAY + 45_296_789);
            assert_eq!(UnixMillis::parse_wpcom(&instant.to_wpcom_datetime()), Ok(instant));
        }
    }

    #[test]
    fn impossible_dates_are_rejected() {
        for text in [
            "2023-02-29T00:00:00.000Z",
            "2024-13-01T00:00:00.000Z",
            "2024-01-01T24:00:00.000Z",
            "1969-12-31T23:59:59.999Z",
            "2024-01-01 00:00:00.000Z",
            "2024-01-01T00:00:00Z",
            "+024-01-01T00:00:00.000Z",
        ] {
            assert!(UnixMillis::parse_wpcom(text).is_err(), "{text} accepted");
        }
    }

    #[test]
    fn system_time_before_epoch_becomes_epoch() {
        let before = UNIX_EPOCH - Duration::from_secs(5);
        assert_eq!(UnixMillis::from(before), UnixMillis::EPOCH);
    }

    #[test]
    fn age_of_a_future_instant_is_zero() {
        let earlier = UnixMillis::from_millis(1_000);
        assert_eq!(
            earlier.saturating_duration_since(UnixMillis::from_millis(5_000)),
            Duration::ZERO
        );
    }
}
