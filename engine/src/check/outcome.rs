//! Turning what went wrong into the error class, the original's numeric code and a readable detail.

use std::io;
use std::time::Duration;

use super::transport::TransportError;
use crate::result::{legacy_code, CheckResult, ErrorClass, Timings, Verdict};

/// A failed check, before it becomes a [`CheckResult`].
#[derive(Debug)]
pub(crate) struct Failure {
    class: ErrorClass,
    detail: String,
    /// Whether the failure happened after following a redirect (995 becomes 996).
    on_redirect_hop: bool,
}

impl Failure {
    pub(crate) fn new(class: ErrorClass, detail: String) -> Failure {
        Failure {
            class,
            detail,
            on_redirect_hop: false,
        }
    }

    pub(crate) fn timeout(detail: String) -> Failure {
        Failure::new(ErrorClass::Timeout, detail)
    }

    pub(crate) fn protocol(detail: String) -> Failure {
        Failure::new(ErrorClass::Protocol, detail)
    }

    pub(crate) fn bad_status_line(why: &str) -> Failure {
        Failure::new(ErrorClass::Protocol, format!("unparsable response: {why}"))
    }

    pub(crate) fn bad_redirect(detail: String) -> Failure {
        Failure::new(ErrorClass::Redirect, detail)
    }

    /// A failed TCP connect to `target`.
    pub(crate) fn connect(error: &io::Error, target: String) -> Failure {
        let class = match error.kind() {
            io::ErrorKind::ConnectionRefused => ErrorClass::Refused,
            io::ErrorKind::TimedOut => ErrorClass::Timeout,
            _ => ErrorClass::Connect,
        };
        Failure::new(class, format!("connect to {target}: {error}"))
    }

    /// A socket or TLS failure once connected.
    pub(crate) fn transport(error: TransportError, when: &str) -> Failure {
        match error {
            TransportError::Tls(e) => Failure::new(ErrorClass::Tls, format!("TLS error {when}: {e}")),
            TransportError::Io(e) if e.kind() == io::ErrorKind::UnexpectedEof && when.contains("TLS") => {
                Failure::new(ErrorClass::Tls, format!("{e} {when}"))
            }
            TransportError::Io(e) => Failure::new(ErrorClass::Protocol, format!("connection failed {when}: {e}")),
        }
    }

    pub(crate) fn on_hop(mut self, redirects: u8) -> Failure {
        self.on_redirect_hop = redirects > 0;
        self
    }

    /// The original jetmon's numeric code for this failure, where it had one.
    fn legacy_code(&self) -> Option<u16> {
        let cannot_connect = if self.on_redirect_hop {
            legacy_code::REDIRECT_CONNECT
        } else {
            legacy_code::CONNECT
        };
        match self.class {
            ErrorClass::Dns
            | ErrorClass::DnsUnavailable
            | ErrorClass::Refused
            | ErrorClass::Connect
            | ErrorClass::Tls => Some(cannot_connect),
            ErrorClass::Timeout => Some(legacy_code::TIMEOUT),
            ErrorClass::Redirect => Some(legacy_code::BAD_REDIRECT),
            ErrorClass::Protocol => Some(legacy_code::BAD_STATUS_LINE),
            _ => None,
        }
    }
}

/// Builds the result of a failed check. The verdict is always down; `code` keeps the last status received
/// (a 3xx whose Location was unusable) for diagnosis.
pub(crate) fn failed_result(
    id: u64,
    url: String,
    failure: Failure,
    code: u16,
    rtt: Duration,
    timings: Timings,
    redirects: u8,
) -> CheckResult {
    let legacy_error_code = failure.legacy_code();
    CheckResult {
        id,
        url,
        verdict: Verdict::Down,
        code,
        rtt,
        timings,
        redirects,
        error: Some(failure.class),
        legacy_error_code,
        detail: failure.detail,
    }
}
