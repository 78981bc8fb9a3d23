//! What one check says about the monitor's own network, and the counts kept of it. An HTTP answer of any
//! code (even 500) proves the path to the site worked; only failures below HTTP count against the network.

use jetmon_engine::{CheckResult, ErrorClass};

/// A failure class that can come from the monitor's own network as well as from the site.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FailureClass {
    /// NXDOMAIN or no address records.
    Dns,
    /// No DNS upstream gave a usable answer.
    DnsUnavailable,
    /// Connection refused.
    Refused,
    /// Connection could not be established (unreachable, reset).
    Connect,
    /// A deadline expired.
    Timeout,
    /// The TLS handshake failed.
    Tls,
    /// No HTTP response head (closed early, garbage).
    Protocol,
}

impl FailureClass {
    /// Every class, in the order of [`Tally::failed`].
    pub const ALL: [FailureClass; 7] = [
        FailureClass::Dns,
        FailureClass::DnsUnavailable,
        FailureClass::Refused,
        FailureClass::Connect,
        FailureClass::Timeout,
        FailureClass::Tls,
        FailureClass::Protocol,
    ];

    /// The engine's class name (`dns_unavailable`, `timeout`, ...), for logs and metric labels.
    pub fn as_str(self) -> &'static str {
        self.engine_class().as_str()
    }

    fn engine_class(self) -> ErrorClass {
        match self {
            FailureClass::Dns => ErrorClass::Dns,
            FailureClass::DnsUnavailable => ErrorClass::DnsUnavailable,
            FailureClass::Refused => ErrorClass::Refused,
            FailureClass::Connect => ErrorClass::Connect,
            FailureClass::Timeout => ErrorClass::Timeout,
            FailureClass::Tls => ErrorClass::Tls,
            FailureClass::Protocol => ErrorClass::Protocol,
        }
    }

    fn slot(self) -> usize {
        self as usize
    }
}

/// One check, as the detector sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observation {
    /// An HTTP response came back (any status code): the network path works.
    Reached,
    /// The check failed below HTTP.
    Failed(FailureClass),
}

impl Observation {
    /// What `result` says about the network; `None` when it says nothing (a bad URL, a refused redirect,
    /// the SSRF guard, an aborted check).
    pub fn of(result: &CheckResult) -> Option<Observation> {
        let class = match result.error {
            None if result.code != 0 => return Some(Observation::Reached),
            None => return None,
            Some(class) => class,
        };
        let failure = match class {
            ErrorClass::Dns => FailureClass::Dns,
            ErrorClass::DnsUnavailable => FailureClass::DnsUnavailable,
            ErrorClass::Refused => FailureClass::Refused,
            ErrorClass::Connect => FailureClass::Connect,
            ErrorClass::Timeout => FailureClass::Timeout,
            ErrorClass::Tls => FailureClass::Tls,
            ErrorClass::Protocol => FailureClass::Protocol,
            _ => return None,
        };
        Some(Observation::Failed(failure))
    }
}

/// Counts of checks that reached their site and of failures by class.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Checks that got an HTTP response.
    pub reached: u64,
    /// Failures, indexed like [`FailureClass::ALL`].
    pub failed: [u64; FailureClass::ALL.len()],
}

impl Tally {
    /// Counts one observation.
    pub fn record(&mut self, observation: Observation) {
        match observation {
            Observation::Reached => self.reached += 1,
            Observation::Failed(class) => self.failed[class.slot()] += 1,
        }
    }

    /// Adds another tally.
    pub fn add(&mut self, other: &Tally) {
        self.reached += other.reached;
        for (mine, theirs) in self.failed.iter_mut().zip(other.failed) {
            *mine += theirs;
        }
    }

    /// All failures.
    pub fn failures(&self) -> u64 {
        self.failed.iter().sum()
    }

    /// Failures of one class.
    pub fn of(&self, class: FailureClass) -> u64 {
        self.failed[class.slot()]
    }

    /// Checks counted.
    pub fn samples(&self) -> u64 {
        self.reached + self.failures()
    }

    /// Failures over samples; 0 without samples.
    pub fn failure_ratio(&self) -> f64 {
        ratio(self.failures(), self.samples())
    }

    /// The class with the most failures, if any failed.
    pub fn dominant(&self) -> Option<FailureClass> {
        FailureClass::ALL
            .into_iter()
            .filter(|class| self.of(*class) > 0)
            .max_by_key(|class| self.of(*class))
    }

    /// The non-zero classes as `timeout=120 connect=30`, for logs.
    pub fn breakdown(&self) -> String {
        FailureClass::ALL
            .into_iter()
            .filter(|class| self.of(*class) > 0)
            .map(|class| format!("{}={}", class.as_str(), self.of(class)))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// `part / whole`, 0 when `whole` is 0.
pub(crate) fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use jetmon_engine::{Timings, Verdict};

    use super::*;

    fn result(code: u16, error: Option<ErrorClass>) -> CheckResult {
        CheckResult {
            id: 1,
            url: "http://site.test/".into(),
            verdict: Verdict::from_response(code, Duration::from_millis(3)),
            code,
            rtt: Duration::from_millis(3),
            timings: Timings::default(),
            redirects: 0,
            error,
            legacy_error_code: None,
            detail: String::new(),
        }
    }

    #[test]
    fn http_errors_prove_the_network_works() {
        assert_eq!(Observation::of(&result(500, None)), Some(Observation::Reached));
        assert_eq!(Observation::of(&result(200, None)), Some(Observation::Reached));
    }

    #[test]
    fn resolver_down_is_its_own_class_and_policy_refusals_say_nothing() {
        assert_eq!(
            Observation::of(&result(0, Some(ErrorClass::DnsUnavailable))),
            Some(Observation::Failed(FailureClass::DnsUnavailable))
        );
        assert_eq!(
            Observation::of(&result(0, Some(ErrorClass::Dns))),
            Some(Observation::Failed(FailureClass::Dns))
        );
        assert_eq!(Observation::of(&result(0, Some(ErrorClass::Forbidden))), None);
        assert_eq!(Observation::of(&result(0, Some(ErrorClass::InvalidUrl))), None);
    }

    #[test]
    fn tally_names_the_dominant_class() {
        let mut tally = Tally::default();
        tally.record(Observation::Reached);
        tally.record(Observation::Failed(FailureClass::Timeout));
        tally.record(Observation::Failed(FailureClass::Timeout));
        tally.record(Observation::Failed(FailureClass::Connect));
        assert_eq!(tally.samples(), 4);
        assert_eq!(tally.dominant(), Some(FailureClass::Timeout));
        assert_eq!(tally.breakdown(), "connect=1 timeout=2");
        assert!((tally.failure_ratio() - 0.75).abs() < 1e-9);
    }
}
