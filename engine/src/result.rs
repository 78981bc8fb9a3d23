//! What a finished check reports: the verdict by the original jetmon rule, the HTTP code, the round-trip
//! time, per-phase timings and, when the check failed, a coarse error class plus the original's numeric
//! error code (995–999) so downstream consumers of jetmon.js data keep working.

use std::fmt;
use std::time::Duration;

/// The up/down verdict of one check.
///
/// The rule is the original's: a site is up when the check finished with an RTT above zero and an HTTP status
/// code that is not 0 and below 400. Everything else is down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Verdict {
    /// The site answered with a status below 400.
    Up,
    /// The site did not answer, or answered with 400 or above.
    Down,
}

impl Verdict {
    /// Applies the original jetmon rule to a status code and a round-trip time.
    pub fn from_response(code: u16, rtt: Duration) -> Verdict {
        if code != 0 && code < 400 && !rtt.is_zero() {
            Verdict::Up
        } else {
            Verdict::Down
        }
    }

    /// `"up"` or `"down"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Up => "up",
            Verdict::Down => "down",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a check did not produce a usable HTTP response. Coarse on purpose: these are the buckets an operator
/// graphs and alerts on. The human-readable detail travels in [`CheckResult::detail`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorClass {
    /// The URL could not be parsed, or is not http/https.
    InvalidUrl,
    /// The name does not exist (NXDOMAIN) or has no address records.
    Dns,
    /// No DNS server answered: the monitor's resolver is down, not the site.
    DnsUnavailable,
    /// The destination actively refused the connection (RST on SYN).
    Refused,
    /// The connection could not be established (unreachable, reset during connect, ...).
    Connect,
    /// A deadline expired: the whole-check deadline or a per-phase limit.
    Timeout,
    /// The TLS handshake failed: bad certificate, wrong host name, alert from the server.
    Tls,
    /// The server answered with something that is not an HTTP/1.x response head, closed before answering,
    /// or sent a response head larger than the engine accepts.
    Protocol,
    /// A redirect could not be followed: missing or unparsable `Location`, or an unsupported scheme.
    Redirect,
    /// The destination address is not allowed by the engine's address policy (SSRF guard).
    Forbidden,
    /// The engine shut down before the check finished.
    Aborted,
}

impl ErrorClass {
    /// The stable lower-case name used in JSON output and metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::InvalidUrl => "invalid_url",
            ErrorClass::Dns => "dns",
            ErrorClass::DnsUnavailable => "dns_unavailable",
            ErrorClass::Refused => "refused",
            ErrorClass::Connect => "connect",
            ErrorClass::Timeout => "timeout",
            ErrorClass::Tls => "tls",
            ErrorClass::Protocol => "protocol",
            ErrorClass::Redirect => "redirect",
            ErrorClass::Forbidden => "forbidden",
            ErrorClass::Aborted => "aborted",
        }
    }

    /// Every class, for exhaustive metric label sets.
    pub const ALL: [ErrorClass; 11] = [
        ErrorClass::InvalidUrl,
        ErrorClass::Dns,
        ErrorClass::DnsUnavailable,
        ErrorClass::Refused,
        ErrorClass::Connect,
        ErrorClass::Timeout,
        ErrorClass::Tls,
        ErrorClass::Protocol,
        ErrorClass::Redirect,
        ErrorClass::Forbidden,
        ErrorClass::Aborted,
    ];
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The original jetmon.js numeric error codes, reported beside the HTTP code.
pub mod legacy_code {
    /// Cannot connect to host.
    pub const CONNECT: u16 = 995;
    /// Cannot connect to the redirect host.
    pub const REDIRECT_CONNECT: u16 = 996;
    /// Bad redirect `Location`.
    pub const BAD_REDIRECT: u16 = 997;
    /// Timeout.
    pub const TIMEOUT: u16 = 998;
    /// Unparsable status line.
    pub const BAD_STATUS_LINE: u16 = 999;
}

/// Time spent in each phase of the last hop of a check (after redirects, the hop that gave the verdict).
/// A phase that did not happen (no DNS for an IP literal, no TLS for plain HTTP) is `None`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timings {
    /// Name resolution (cache hits count as zero).
    pub dns: Option<Duration>,
    /// TCP connect, including tries of further addresses.
    pub connect: Option<Duration>,
    /// TLS handshake.
    pub tls: Option<Duration>,
    /// From the request being written to the first byte of the response.
    pub ttfb: Option<Duration>,
}

/// The outcome of one check, as delivered on the engine's result channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckResult {
    /// The caller's identifier from [`crate::CheckRequest::id`].
    pub id: u64,
    /// The URL as submitted.
    pub url: String,
    /// Up or down, by the original rule.
    pub verdict: Verdict,
    /// The HTTP status code of the last response, 0 when none was received.
    pub code: u16,
    /// Round-trip time of the whole check (all hops), from start to the parsed response head.
    pub rtt: Duration,
    /// Phase timings of the last hop.
    pub timings: Timings,
    /// How many redirects were followed.
    pub redirects: u8,
    /// Why the check failed, when it did not produce a response.
    pub error: Option<ErrorClass>,
    /// The original's numeric error code (995–999) where one applies.
    pub legacy_error_code: Option<u16>,
    /// A human-readable detail for logs (`"connection refused by 127.0.0.1:80"`), empty when up.
    pub detail: String,
}

impl CheckResult {
    /// Round-trip time in whole milliseconds, as the original reported it. A check that received a
    /// response reports at least 1 ms so that the original's `rtt > 0` rule holds for very fast targets.
    pub fn rtt_ms(&self) -> u64 {
        duration_ms(self.rtt)
    }
}

/// Milliseconds with sub-millisecond durations rounded up to 1 (and zero kept as zero).
pub fn duration_ms(d: Duration) -> u64 {
    let ms = d.as_millis() as u64;
    if ms == 0 && !d.is_zero() {
        1
    } else {
        ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdict_follows_original_rule() {
        let ms = Duration::from_millis(5);
        assert_eq!(Verdict::from_response(200, ms), Verdict::Up);
        assert_eq!(Verdict::from_response(399, ms), Verdict::Up);
        assert_eq!(Verdict::from_response(400, ms), Verdict::Down);
        assert_eq!(Verdict::from_response(0, ms), Verdict::Down);
        assert_eq!(Verdict::from_response(200, Duration::ZERO), Verdict::Down);
    }

    #[test]
    fn sub_millisecond_rtt_reports_one_ms() {
        assert_eq!(duration_ms(Duration::from_micros(300)), 1);
        assert_eq!(duration_ms(Duration::ZERO), 0);
        assert_eq!(duration_ms(Duration::from_millis(1500)), 1500);
    }
}
