//! The status machine: what a check result or a veriflier answer means for a site's status.
//!
//! This module owns the original jetmon.js rules and nothing else. It is sans-IO in the way
//! `quinn-proto` is: the caller feeds [`Event`]s (each stamped with the instant it happened, because the
//! machine never reads a clock) into [`StatusMachine::handle`] and carries out the returned [`Action`]s:
//! schedule a re-check, ask the verifliers, persist a status, deliver a [`Notification`]. That keeps every
//! rule testable with plain values and a fake clock.
//!
//! # The rules (jetmon.js's, see `docs/` for where we deliberately differ)
//!
//! - A failed check on a RUNNING site starts local re-checks: `num_of_checks` failed local checks in all,
//!   each at least `time_between_checks` after the previous one. A success in between clears the
//!   suspicion without any notification.
//! - After the last local failure the verifliers are asked. When `peer_offline_limit` of them say
//!   offline the site becomes [`SiteStatus::Down`] and WPCOM is notified. When that can no longer happen
//!   (too many said online or were unavailable) the site stays RUNNING: a false alarm.
//! - With no verifliers configured, the local re-checks alone decide: the last one makes the site DOWN.
//! - A veriflier request older than `timeout_for_requests` is dropped without a notification.
//! - A failed check on a DOWN site whose last status change is older than `time_between_notices` makes
//!   it [`SiteStatus::ConfirmedDown`] and notifies.
//! - A successful check on a site that is not RUNNING makes it RUNNING and notifies.
//!
//! Each [`Notification`] lists, in `checks`, every check that led to it.

mod machine;
mod time;

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use machine::{LocalCheckRecord, Phase, SiteState, StatusMachine, VeriflierRecord, VeriflierRequest};
pub use time::{DateTimeParseError, UnixMillis};

/// A site's WPCOM blog id (`jetpack_monitor_subscription.blog_id`, a `bigint unsigned`).
pub type BlogId = u64;

/// The original's default number of failed local checks before the verifliers are asked.
pub const DEFAULT_NUM_OF_CHECKS: u32 = 3;
/// The original's default minimum spacing of local re-checks.
pub const DEFAULT_TIME_BETWEEN_CHECKS: Duration = Duration::from_secs(30);
/// The original's default number of verifliers that must say offline (its hard-coded constant and the
/// value of its sample config).
pub const DEFAULT_PEER_OFFLINE_LIMIT: u32 = 3;
/// The original's default age after which a veriflier request is dropped.
pub const DEFAULT_TIMEOUT_FOR_REQUESTS: Duration = Duration::from_secs(60);
/// The original's default time a site stays DOWN before a failed check confirms it.
pub const DEFAULT_TIME_BETWEEN_NOTICES: Duration = Duration::from_secs(59 * 60);

/// A site's status, with the numbers of the database's `site_status` column and the wire's `status_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "u8", try_from = "u8")]
#[repr(u8)]
pub enum SiteStatus {
    /// The site failed its checks and the verifliers (or the local re-checks alone) agreed.
    Down = 0,
    /// The site answers. Every site starts here.
    Running = 1,
    /// The site was still down `time_between_notices` after it went DOWN.
    ConfirmedDown = 2,
}

impl From<SiteStatus> for u8 {
    fn from(status: SiteStatus) -> u8 {
        status as u8
    }
}

impl TryFrom<u8> for SiteStatus {
    type Error = UnknownSiteStatus;

    fn try_from(value: u8) -> Result<Self, Self::Error> {
        match value {
            0 => Ok(SiteStatus::Down),
            1 => Ok(SiteStatus::Running),
            2 => Ok(SiteStatus::ConfirmedDown),
            other => Err(UnknownSiteStatus(other)),
        }
    }
}

impl fmt::Display for SiteStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The original's constant names, so logs read like the original's.
        f.write_str(match self {
            SiteStatus::Down => "SITE_DOWN",
            SiteStatus::Running => "SITE_RUNNING",
            SiteStatus::ConfirmedDown => "SITE_CONFIRMED_DOWN",
        })
    }
}

/// A `site_status` number that is not 0, 1 or 2 (a corrupt row or state file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("unknown site status {0}: expected 0 (down), 1 (running) or 2 (confirmed down)")]
pub struct UnknownSiteStatus(pub u8);

/// Who made a check listed in a notification (the wire's `checks[].type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "u8", try_from = "u8")]
#[repr(u8)]
pub enum CheckType {
    /// A check made by this monitor host.
    Local = 1,
    /// A check made by a veriflier on our request.
    Veriflier = 2,
}

impl From<CheckType> for u8 {
    fn from(check_type: CheckType) -> u8 {
        check_type as u8
    }
}

impl TryFrom<u8> for CheckType {
    type Error = UnknownCheckType;

    fn try_from(value: u8) -> Result<Self, Self::Error> {
        match value {
            1 => Ok(CheckType::Local),
            2 => Ok(CheckType::Veriflier),
            other => Err(UnknownCheckType(other)),
        }
    }
}

/// A `checks[].type` number that is not 1 or 2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("unknown check type {0}: expected 1 (local) or 2 (veriflier)")]
pub struct UnknownCheckType(pub u8);

/// The result of one HTTP check, local or by a veriflier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckOutcome {
    /// Whether the check counts as up (RTT > 0 and a status code in 1..400, per the original).
    pub up: bool,
    /// The HTTP status code, or one of the original's error codes (995–999), or 0.
    pub code: u16,
    /// Round-trip time in milliseconds.
    pub rtt_ms: u64,
    /// Why the check failed, for logs; not sent to WPCOM.
    pub error: Option<String>,
}

/// One entry of a notification's `checks`: a check that led to the status change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckEntry {
    /// Local or veriflier check.
    #[serde(rename = "type")]
    pub check_type: CheckType,
    /// The monitor host's name for local checks, the veriflier's configured name for veriflier checks.
    pub host: String,
    /// What this check saw: [`SiteStatus::Running`] (1, the original's `HOST_ONLINE`) when up,
    /// [`SiteStatus::Down`] (0, `HOST_OFFLINE`) otherwise.
    pub status: SiteStatus,
    /// Round-trip time in milliseconds.
    pub rtt: u64,
    /// HTTP status code or error code.
    pub code: u16,
}

impl CheckEntry {
    fn new(check_type: CheckType, host: &str, outcome: &CheckOutcome) -> Self {
        CheckEntry {
            check_type,
            host: host.to_owned(),
            status: if outcome.up {
                SiteStatus::Running
            } else {
                SiteStatus::Down
            },
            rtt: outcome.rtt_ms,
            code: outcome.code,
        }
    }
}

/// A status change to report to WPCOM, with the seed's field names.
///
/// The `token` field of the wire is added by the delivery layer, which owns the secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// The site.
    pub blog_id: BlogId,
    /// The URL that was checked.
    pub monitor_url: String,
    /// The new status.
    pub status_id: SiteStatus,
    /// When the most recent local check that led to this change was made.
    pub last_check: UnixMillis,
    /// When the status changed, i.e. the instant of the event that decided it. (The original sent the
    /// previous change's time here; the new one is what a reader of "last status change" expects.)
    pub last_status_change: UnixMillis,
    /// Every check that led to the change, local ones first, in the order they were made.
    pub checks: Vec<CheckEntry>,
}

/// The settings the status machine needs, in their typed form (built from the config file by
/// `config::Config::machine_config`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachineConfig {
    /// Failed local checks in all (the first included) before the verifliers are asked; at least 1.
    pub num_of_checks: u32,
    /// Minimum time between two local checks that count toward `num_of_checks`.
    pub time_between_checks: Duration,
    /// Names of the configured verifliers. Answers from other names are ignored, and the count bounds
    /// how many answers a request can get. Empty: the local re-checks alone decide.
    pub verifliers: Vec<String>,
    /// Offline answers needed to declare a site DOWN. Zero means the same as no verifliers (local
    /// re-checks decide), since asking for zero confirmations would be pointless.
    pub peer_offline_limit: u32,
    /// Age after which an unanswered veriflier request is dropped.
    pub timeout_for_requests: Duration,
    /// Time a site stays DOWN before a failed check makes it CONFIRMED_DOWN.
    pub time_between_notices: Duration,
}

impl Default for MachineConfig {
    /// The original's defaults, without verifliers (so the local re-checks decide).
    fn default() -> Self {
        MachineConfig {
            num_of_checks: DEFAULT_NUM_OF_CHECKS,
            time_between_checks: DEFAULT_TIME_BETWEEN_CHECKS,
            verifliers: Vec::new(),
            peer_offline_limit: DEFAULT_PEER_OFFLINE_LIMIT,
            timeout_for_requests: DEFAULT_TIMEOUT_FOR_REQUESTS,
            time_between_notices: DEFAULT_TIME_BETWEEN_NOTICES,
        }
    }
}

/// Something that happened to a site, fed into [`StatusMachine::handle`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// This host checked a site (a round's check or a scheduled re-check).
    LocalCheck(LocalCheck),
    /// A veriflier reported its check of a site we asked about.
    VeriflierAnswer(VeriflierAnswer),
    /// A veriflier could not answer for a site (request refused, connection failed, or an answer with
    /// a status other than 0/1). It does not count toward the offline quorum.
    VeriflierUnavailable(VeriflierUnavailable),
    /// Time passed; expires veriflier requests older than `timeout_for_requests`.
    Tick {
        /// The current time.
        now: UnixMillis,
    },
}

/// A check made by this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalCheck {
    /// The site.
    pub blog_id: BlogId,
    /// The URL checked. A URL different from the one the machine knows resets any pending suspicion,
    /// since failures of the old URL say nothing about the new one.
    pub monitor_url: String,
    /// This monitor host's name, reported in the notification's `checks`.
    pub host: String,
    /// When the check finished.
    pub at: UnixMillis,
    /// What it found.
    pub outcome: CheckOutcome,
}

/// A veriflier's answer for one site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VeriflierAnswer {
    /// The site.
    pub blog_id: BlogId,
    /// The URL the veriflier checked; an answer for another URL than the pending request's is stale.
    pub monitor_url: String,
    /// The veriflier's configured name.
    pub veriflier: String,
    /// When the answer arrived.
    pub at: UnixMillis,
    /// What the veriflier found (`status` 1 online → `up`).
    pub outcome: CheckOutcome,
}

/// A veriflier that will not answer for one site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VeriflierUnavailable {
    /// The site.
    pub blog_id: BlogId,
    /// The veriflier's configured name.
    pub veriflier: String,
    /// When this became known.
    pub at: UnixMillis,
    /// Why, for logs.
    pub reason: String,
}

/// What the caller must do (or may log) after an event. Returned in the order to carry them out.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// Check the site again locally, not before the given instant, and feed the result back.
    ScheduleRecheck {
        /// The site.
        blog_id: BlogId,
        /// Earliest instant for the re-check; an earlier failed check does not count.
        not_before: UnixMillis,
    },
    /// Ask every configured veriflier to check the site, and feed their answers back.
    AskVerifliers {
        /// The site.
        blog_id: BlogId,
        /// The URL to check.
        monitor_url: String,
    },
    /// Store the new status (database with `DB_UPDATES_ENABLE`, or the state file). Always comes before
    /// the matching [`Action::Notify`], so a crash between the two re-sends rather than forgets.
    PersistStatus {
        /// The site.
        blog_id: BlogId,
        /// Its new status.
        status: SiteStatus,
        /// When it changed.
        last_status_change: UnixMillis,
    },
    /// Deliver this notification to WPCOM.
    Notify(Notification),
    /// A success ended local re-checks or a veriflier request: the site is fine, nothing is notified.
    Recovered {
        /// The site.
        blog_id: BlogId,
        /// How many local checks had failed.
        failed_checks: usize,
    },
    /// The verifliers said online: the local failures were a false alarm, nothing is notified.
    FalseAlarm {
        /// The site.
        blog_id: BlogId,
        /// Verifliers that said offline (fewer than the limit).
        offline: usize,
        /// Verifliers that said online.
        online: usize,
    },
    /// The offline limit can no longer be reached because verifliers were unavailable: no decision, the
    /// site stays RUNNING. Worth an alert about the verifliers rather than the site.
    VerificationInconclusive {
        /// The site.
        blog_id: BlogId,
        /// Verifliers that said offline.
        offline: usize,
        /// Verifliers that said online.
        online: usize,
        /// Verifliers that could not answer.
        unavailable: usize,
    },
    /// A veriflier request got too old before a decision and was dropped, as the original did: no
    /// notification, the site stays RUNNING.
    VeriflierRequestExpired {
        /// The site.
        blog_id: BlogId,
        /// When the verifliers were asked.
        sent_at: UnixMillis,
        /// Offline answers received by then.
        offline: usize,
        /// Online answers received by then.
        online: usize,
    },
    /// A veriflier answer or unavailability report that changed nothing.
    AnswerIgnored {
        /// The site.
        blog_id: BlogId,
        /// Who sent it.
        veriflier: String,
        /// Why it was ignored.
        reason: IgnoredAnswer,
    },
    /// The site's URL changed; any pending re-checks or veriflier request for the old URL were dropped.
    UrlChanged {
        /// The site.
        blog_id: BlogId,
        /// The URL it had before.
        previous_url: String,
        /// How many local failures of the old URL were pending.
        dropped_failures: usize,
    },
}

/// Why a veriflier report was ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum IgnoredAnswer {
    /// No veriflier request is pending for the site (never asked, or already decided or expired).
    NoPendingRequest,
    /// The veriflier is not in the configuration; counting it would let anyone vote.
    UnknownVeriflier,
    /// This veriflier already answered this request; each veriflier counts once.
    Duplicate,
    /// The answer is for another URL than the pending request's (the site's URL changed).
    UrlMismatch,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn site_status_numbers_match_the_database() {
        for (number, status) in [
            (0, SiteStatus::Down),
            (1, SiteStatus::Running),
            (2, SiteStatus::ConfirmedDown),
        ] {
            assert_eq!(SiteStatus::try_from(number), Ok(status));
            assert_eq!(u8::from(status), number);
        }
        assert_eq!(SiteStatus::try_from(3), Err(UnknownSiteStatus(3)));
    }

    #[test]
    fn check_type_rejects_unknown_numbers() {
        assert_eq!(CheckType::try_from(2), Ok(CheckType::Veriflier));
        assert_eq!(CheckType::try_from(0), Err(UnknownCheckType(0)));
    }

    #[test]
    fn notification_serialises_to_the_seed_field_names() {
        let notification = Notification {
            blog_id: 42,
            monitor_url: "https://example.com".into(),
            status_id: SiteStatus::Down,
            last_check: UnixMillis::from_millis(1_000),
            last_status_change: UnixMillis::from_millis(2_500),
            checks: vec![CheckEntry {
                check_type: CheckType::Veriflier,
                host: "v1".into(),
                status: SiteStatus::Down,
                rtt: 20_000,
                code: 998,
            }],
        };
        let json = serde_json::to_value(&notification).ok();
        let expected = serde_json::json!({
            "blog_id": 42,
            "monitor_url": "https://example.com",
            "status_id": 0,
            "last_check": "1970-01-01T00:00:01.000Z",
            "last_status_change": "1970-01-01T00:00:02.500Z",
            "checks": [{"type": 2, "host": "v1", "status": 0, "rtt": 20000, "code": 998}],
        });
        assert_eq!(json, Some(expected.clone()));
        let back: Result<Notification, _> = serde_json::from_value(expected);
        assert_eq!(back.ok(), Some(notification));
    }

    #[test]
    fn notification_with_unknown_status_is_rejected() {
        let json = serde_json::json!({
            "blog_id": 1, "monitor_url": "u", "status_id": 7,
            "last_check": "1970-01-01T00:00:01.000Z", "last_status_change": "1970-01-01T00:00:01.000Z",
            "checks": [],
        });
        let result: Result<Notification, _> = serde_json::from_value(json);
        assert!(result.is_err_and(|error| error.to_string().contains("unknown site status 7")));
    }
}
