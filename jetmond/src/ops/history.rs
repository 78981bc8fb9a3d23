//! The last results of one site, packed small enough to keep for a million sites.
//!
//! # Bytes per site
//!
//! A result packs into 8 bytes ([`PackedResult`]: Unix seconds `u32`, RTT `u16` in ms, and one `u16` holding
//! the HTTP code, the error class and the verdict). A site keeps [`HISTORY_LEN`] = 32 of them (256 bytes)
//! plus its status and last status change: `size_of::<SiteHistory>()` is 272 bytes, 280 with its `u64` key
//! in the map (asserted by `site_history_fits_the_budget` below). The hash table adds one control byte per
//! slot and keeps 1/8 to 9/16 of its slots free, so a million sites take about 320 to 640 MB at worst and
//! ~330 MB right after the map settles; the shards never shrink while sites stay tracked.

use jetmon_engine::{CheckResult, ErrorClass, Verdict};
use serde::Serialize;

use crate::status::{SiteStatus, UnixMillis};

/// Results kept per site.
pub const HISTORY_LEN: usize = 32;

/// Highest HTTP code the packing keeps exactly (10 bits); larger ones (which HTTP/1.x's three digits never
/// produce) are stored as this.
const MAX_PACKED_CODE: u16 = 0x3ff;
const ERROR_SHIFT: u16 = 10;
const ERROR_MASK: u16 = 0xf;
const UP_BIT: u16 = 1 << 15;
const MILLIS_PER_SECOND: u64 = 1000;
// The error class takes 4 bits, 0 meaning none: a 16th class needs a wider packing.
const _: () = assert!(ErrorClass::ALL.len() < ERROR_MASK as usize);

/// One check result in 8 bytes. The RTT saturates at 65,535 ms (beyond any sane `check_timeout_sec`), the
/// time at 2106 (`u32` seconds).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct PackedResult {
    at_secs: u32,
    rtt_ms: u16,
    /// Bits 0–9 the HTTP code, 10–13 the error class (0 none, else 1 + its index in [`ErrorClass::ALL`]),
    /// 15 the verdict (set = up).
    code_flags: u16,
}

impl PackedResult {
    fn pack(at: UnixMillis, result: &CheckResult) -> PackedResult {
        let error = result
            .error
            .and_then(|class| ErrorClass::ALL.iter().position(|c| *c == class))
            .map_or(0, |index| (index as u16 + 1) & ERROR_MASK);
        let up = if result.verdict == Verdict::Up { UP_BIT } else { 0 };
        PackedResult {
            at_secs: u32::try_from(at.as_millis() / MILLIS_PER_SECOND).unwrap_or(u32::MAX),
            rtt_ms: u16::try_from(result.rtt_ms()).unwrap_or(u16::MAX),
            code_flags: result.code.min(MAX_PACKED_CODE) | (error << ERROR_SHIFT) | up,
        }
    }

    fn unpack(self) -> RecordedResult {
        let error_index = (self.code_flags >> ERROR_SHIFT) & ERROR_MASK;
        RecordedResult {
            at: UnixMillis::from_millis(u64::from(self.at_secs) * MILLIS_PER_SECOND),
            up: self.code_flags & UP_BIT != 0,
            code: self.code_flags & MAX_PACKED_CODE,
            rtt_ms: self.rtt_ms,
            error: usize::from(error_index)
                .checked_sub(1)
                .and_then(|index| ErrorClass::ALL.get(index))
                .map(|class| class.as_str()),
        }
    }
}

/// One result as the API shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RecordedResult {
    /// When the result arrived, to the second (milliseconds since the Unix epoch).
    #[serde(serialize_with = "millis")]
    pub at: UnixMillis,
    /// The verdict.
    pub up: bool,
    /// The HTTP code, 0 without a response.
    pub code: u16,
    /// Round-trip time in milliseconds (saturating at 65,535).
    pub rtt_ms: u16,
    /// The error class name, when the check failed without a response.
    pub error: Option<&'static str>,
}

fn millis<S: serde::Serializer>(at: &UnixMillis, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_u64(at.as_millis())
}

/// A site's status and its last [`HISTORY_LEN`] results, oldest overwritten first.
#[derive(Debug, Clone)]
pub struct SiteHistory {
    results: [PackedResult; HISTORY_LEN],
    last_status_change_ms: u64,
    /// Where the next result goes.
    next: u8,
    /// Results held, up to `HISTORY_LEN`.
    len: u8,
    status: SiteStatus,
    has_status_change: bool,
}

impl SiteHistory {
    /// An empty history of a site in `status`.
    pub fn new(status: SiteStatus, last_status_change: Option<UnixMillis>) -> SiteHistory {
        SiteHistory {
            results: [PackedResult::default(); HISTORY_LEN],
            last_status_change_ms: last_status_change.map_or(0, UnixMillis::as_millis),
            next: 0,
            len: 0,
            status,
            has_status_change: last_status_change.is_some(),
        }
    }

    /// Adds a result received at `at`, dropping the oldest when full. O(1), no allocation.
    pub fn record(&mut self, at: UnixMillis, result: &CheckResult) {
        let slot = usize::from(self.next) % HISTORY_LEN;
        self.results[slot] = PackedResult::pack(at, result);
        self.next = ((slot + 1) % HISTORY_LEN) as u8;
        self.len = (usize::from(self.len) + 1).min(HISTORY_LEN) as u8;
    }

    /// Sets the status; returns the previous one.
    pub fn set_status(&mut self, status: SiteStatus, last_status_change: Option<UnixMillis>) -> SiteStatus {
        if let Some(at) = last_status_change {
            self.last_status_change_ms = at.as_millis();
            self.has_status_change = true;
        }
        std::mem::replace(&mut self.status, status)
    }

    /// The site's status.
    pub fn status(&self) -> SiteStatus {
        self.status
    }

    /// When the status last changed, if known.
    pub fn last_status_change(&self) -> Option<UnixMillis> {
        self.has_status_change
            .then_some(UnixMillis::from_millis(self.last_status_change_ms))
    }

    /// The results held, oldest first.
    pub fn results(&self) -> impl Iterator<Item = RecordedResult> + '_ {
        let len = usize::from(self.len);
        let start = (usize::from(self.next) + HISTORY_LEN - len) % HISTORY_LEN;
        (0..len).map(move |i| self.results[(start + i) % HISTORY_LEN].unpack())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use jetmon_engine::Timings;

    use super::*;

    fn result(code: u16, rtt_ms: u64, error: Option<ErrorClass>) -> CheckResult {
        let rtt = Duration::from_millis(rtt_ms);
        CheckResult {
            id: 1,
            url: "http://example.com/".into(),
            verdict: Verdict::from_response(code, rtt),
            code,
            rtt,
            timings: Timings::default(),
            redirects: 0,
            error,
            legacy_error_code: None,
            detail: String::new(),
        }
    }

    #[test]
    fn site_history_fits_the_budget() {
        assert_eq!(std::mem::size_of::<PackedResult>(), 8);
        assert_eq!(std::mem::size_of::<SiteHistory>(), 272);
        assert!(std::mem::size_of::<(u64, SiteHistory)>() <= 280);
    }

    #[test]
    fn results_round_trip_through_the_packing() {
        let mut history = SiteHistory::new(SiteStatus::Running, None);
        let at = UnixMillis::from_millis(1_700_000_000_123);
        history.record(at, &result(200, 87, None));
        history.record(at, &result(0, 0, Some(ErrorClass::Refused)));
        history.record(at, &result(503, 100_000, None));
        let seen: Vec<RecordedResult> = history.results().collect();
        assert_eq!(
            seen,
            vec![
                RecordedResult {
                    at: UnixMillis::from_millis(1_700_000_000_000),
                    up: true,
                    code: 200,
                    rtt_ms: 87,
                    error: None
                },
                RecordedResult {
                    at: UnixMillis::from_millis(1_700_000_000_000),
                    up: false,
                    code: 0,
                    rtt_ms: 0,
                    error: Some("refused")
                },
                RecordedResult {
                    at: UnixMillis::from_millis(1_700_000_000_000),
                    up: false,
                    code: 503,
                    rtt_ms: u16::MAX,
                    error: None
                },
            ]
        );
    }

    #[test]
    fn ring_keeps_the_newest_results_in_order() {
        let mut history = SiteHistory::new(SiteStatus::Running, None);
        for i in 0..(HISTORY_LEN as u64 + 5) {
            history.record(UnixMillis::from_millis(i * 1000), &result(200, i + 1, None));
        }
        let rtts: Vec<u16> = history.results().map(|r| r.rtt_ms).collect();
        let expected: Vec<u16> = (6..=(HISTORY_LEN as u16 + 5)).collect();
        assert_eq!(rtts, expected);
    }

    #[test]
    fn every_error_class_survives_the_packing() {
        for class in ErrorClass::ALL {
            let mut history = SiteHistory::new(SiteStatus::Down, Some(UnixMillis::from_millis(5)));
            history.record(UnixMillis::EPOCH, &result(0, 0, Some(class)));
            assert_eq!(history.results().next().and_then(|r| r.error), Some(class.as_str()));
        }
    }
}
