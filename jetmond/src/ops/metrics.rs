//! `/metrics`: the Prometheus text exposition format, version 0.0.4.
//!
//! Rendered by hand rather than with `prometheus-client` or `metrics`: the values already live in
//! [`OpsState`]'s atomics and snapshot (the control thread's hot path must stay a few relaxed adds, with
//! label sets fixed at compile time), so a registry would only copy them once more; the format is a few
//! lines per family, pinned by the tests below.

use std::fmt::Write;
use std::time::{Duration, Instant, UNIX_EPOCH};

use super::histogram::{HistogramSnapshot, BUCKET_BOUNDS_MICROS};
use super::state::{status_name, OpsState, PHASES, STATUSES};

/// The `Content-Type` of the text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

const MICROS_PER_SECOND: f64 = 1e6;

/// Renders every metric.
pub fn render(state: &OpsState, now: Instant) -> String {
    let mut out = Metrics(String::with_capacity(16 * 1024));
    let (up, down) = state.verdicts();
    out.family("jetmond_checks_total", "counter", "Check results by verdict.");
    out.sample("jetmond_checks_total", &[("verdict", "up")], up);
    out.sample("jetmond_checks_total", &[("verdict", "down")], down);
    out.family(
        "jetmond_check_errors_total",
        "counter",
        "Checks that got no usable response, by error class.",
    );
    for (class, count) in state.errors() {
        out.sample("jetmond_check_errors_total", &[("class", class.as_str())], count);
    }
    out.family(
        "jetmond_check_rtt_seconds",
        "histogram",
        "Round-trip time of checks that got a response.",
    );
    out.histogram("jetmond_check_rtt_seconds", &[], &state.rtt().snapshot());
    out.family(
        "jetmond_check_phase_seconds",
        "histogram",
        "Time per phase of the last hop of a check.",
    );
    for (index, phase) in PHASES.iter().enumerate() {
        if let Some(histogram) = state.phase(index) {
            out.histogram(
                "jetmond_check_phase_seconds",
                &[("phase", phase)],
                &histogram.snapshot(),
            );
        }
    }
    out.family(
        "jetmond_sites",
        "gauge",
        "Sites checked at least once since start, by status.",
    );
    for (status, count) in STATUSES.iter().zip(state.sites_by_status()) {
        out.sample("jetmond_sites", &[("status", status_name(*status))], count);
    }
    out.family(
        "jetmond_notifications_failed_total",
        "counter",
        "Status-change notifications the notifier refused.",
    );
    out.sample("jetmond_notifications_failed_total", &[], state.notifications_failed());
    out.family("jetmond_uptime_seconds", "gauge", "Time since the daemon started.");
    out.sample("jetmond_uptime_seconds", &[], state.uptime().as_secs_f64());
    out.family(
        "jetmond_start_time_seconds",
        "gauge",
        "Start time of the daemon, seconds since the Unix epoch.",
    );
    let started = state.started_wall().duration_since(UNIX_EPOCH).unwrap_or_default();
    out.sample("jetmond_start_time_seconds", &[], started.as_secs_f64());
    let ready = state.readiness(now).is_ok();
    out.family("jetmond_ready", "gauge", "1 when /readyz answers 200.");
    out.sample("jetmond_ready", &[], u64::from(ready));

    let Some(snapshot) = state.snapshot() else {
        return out.0;
    };
    let daemon = &snapshot.daemon;
    let engine = &snapshot.engine;
    let counters: [(&str, &str, u64); 12] = [
        (
            "jetmond_checks_dispatched_total",
            "Checks sent to the engine (rounds and re-checks).",
            daemon.checks,
        ),
        (
            "jetmond_rechecks_total",
            "Re-checks sent to the engine.",
            daemon.rechecks,
        ),
        ("jetmond_rounds_total", "Rounds started.", daemon.rounds),
        (
            "jetmond_round_overruns_total",
            "Rounds still dispatching when the next was due.",
            daemon.overruns,
        ),
        (
            "jetmond_skipped_in_flight_total",
            "Round checks skipped because the site's previous check still ran.",
            daemon.skipped_in_flight,
        ),
        (
            "jetmond_notifications_total",
            "Status-change notifications handed to the notifier.",
            daemon.notifications,
        ),
        (
            "jetmond_store_errors_total",
            "Failed loads from and write-backs to the site store (database or files).",
            daemon.store_errors,
        ),
        (
            "jetmond_dns_cache_hits_total",
            "DNS answers from the cache, hosts file or overrides.",
            engine.dns_cache_hits,
        ),
        (
            "jetmond_dns_cache_misses_total",
            "DNS lookups sent to the network.",
            engine.dns_cache_misses,
        ),
        (
            "jetmond_dns_queries_total",
            "DNS questions sent (A and AAAA separately, retransmissions included).",
            engine.dns_queries,
        ),
        (
            "jetmond_dns_timeouts_total",
            "DNS questions that got no answer in time from the server they were sent to.",
            engine.dns_timeouts,
        ),
        (
            "jetmond_fd_exhausted_total",
            "Connects that hit the open-file limit and were queued.",
            engine.fd_exhausted,
        ),
    ];
    for (name, help, value) in counters {
        out.family(name, "counter", help);
        out.sample(name, &[], value);
    }
    let round = &snapshot.round;
    let gauges: [(&str, &str, f64); 12] = [
        (
            "jetmond_checks_in_flight",
            "Checks running in the engine now.",
            engine.in_flight as f64,
        ),
        (
            "jetmond_checks_queued",
            "Checks submitted and waiting for an in-flight slot.",
            engine.queued as f64,
        ),
        (
            "jetmond_open_sockets",
            "Sockets the engine holds open.",
            engine.open_sockets as f64,
        ),
        (
            "jetmond_rechecks_waiting",
            "Re-checks waiting for their time.",
            snapshot.rechecks_waiting as f64,
        ),
        (
            "jetmond_sites_tracked",
            "Sites loaded from the store.",
            snapshot.sites_tracked as f64,
        ),
        ("jetmond_round_sites", "Sites in the current round.", round.total as f64),
        (
            "jetmond_bucket_leases_held",
            "Buckets this host holds leases on (bucket_leases; 0 without).",
            snapshot.buckets_held.unwrap_or(0) as f64,
        ),
        (
            "jetmond_round_dispatched_sites",
            "Sites of the current round dispatched so far.",
            round.dispatched as f64,
        ),
        (
            "jetmond_round_lag_seconds",
            "How late the next round is because the current one is still dispatching.",
            round.lag.as_secs_f64(),
        ),
        (
            "jetmond_round_interval_seconds",
            "Time between round starts.",
            round.interval.as_secs_f64(),
        ),
        (
            "jetmond_results_per_second",
            "Check results per second over the last 10 s.",
            snapshot.results_per_second,
        ),
        (
            "jetmond_store_up",
            "1 when the last store access succeeded.",
            f64::from(u8::from(snapshot.store_error.is_none())),
        ),
    ];
    for (name, help, value) in gauges {
        out.family(name, "gauge", help);
        out.sample(name, &[], value);
    }
    if let Some(duration) = round.last_duration {
        out.family(
            "jetmond_round_duration_seconds",
            "gauge",
            "From the start of the last finished round until its checks (and re-checks then running) finished.",
        );
        out.sample("jetmond_round_duration_seconds", &[], duration.as_secs_f64());
    }
    if !snapshot.verifliers.is_empty() {
        out.family(
            "jetmond_veriflier_requests_total",
            "counter",
            "Batches sent to each veriflier, by outcome.",
        );
        for (name, health) in &snapshot.verifliers {
            out.sample(
                "jetmond_veriflier_requests_total",
                &[("veriflier", name), ("outcome", "ok")],
                health.ok,
            );
            out.sample(
                "jetmond_veriflier_requests_total",
                &[("veriflier", name), ("outcome", "failed")],
                health.failed,
            );
        }
        out.family(
            "jetmond_veriflier_up",
            "gauge",
            "1 when the veriflier's last request succeeded (or none was sent yet).",
        );
        for (name, health) in &snapshot.verifliers {
            out.sample(
                "jetmond_veriflier_up",
                &[("veriflier", name)],
                u64::from(health.last_error.is_none()),
            );
        }
        out.family(
            "jetmond_veriflier_latency_seconds",
            "gauge",
            "Latency of the veriflier's last answered batch.",
        );
        for (name, health) in &snapshot.verifliers {
            if let Some(latency) = health.last_latency {
                out.sample(
                    "jetmond_veriflier_latency_seconds",
                    &[("veriflier", name)],
                    latency.as_secs_f64(),
                );
            }
        }
    }
    if let Some(outbox) = &snapshot.outbox {
        let counters: [(&str, &str, u64); 4] = [
            (
                "jetmond_outbox_queued_total",
                "Notifications accepted into the WPCOM outbox.",
                outbox.queued,
            ),
            (
                "jetmond_outbox_delivered_total",
                "Notifications WPCOM accepted.",
                outbox.delivered,
            ),
            (
                "jetmond_outbox_retries_total",
                "Failed delivery attempts that will be retried.",
                outbox.retries,
            ),
            (
                "jetmond_outbox_dead_lettered_total",
                "Notifications given up on (dead letters).",
                outbox.dead_lettered,
            ),
        ];
        for (name, help, value) in counters {
            out.family(name, "counter", help);
            out.sample(name, &[], value);
        }
        out.family(
            "jetmond_outbox_pending",
            "gauge",
            "Undelivered notifications, in flight included.",
        );
        out.sample("jetmond_outbox_pending", &[], outbox.pending);
        out.family(
            "jetmond_outbox_oldest_undelivered_seconds",
            "gauge",
            "How long the oldest undelivered notification has waited.",
        );
        let oldest = outbox.oldest_undelivered.unwrap_or(Duration::ZERO);
        out.sample("jetmond_outbox_oldest_undelivered_seconds", &[], oldest.as_secs_f64());
    }
    out.0
}

/// A value the text format can print.
trait SampleValue {
    fn write_to(&self, out: &mut String);
}

impl SampleValue for u64 {
    fn write_to(&self, out: &mut String) {
        let _ = write!(out, "{self}");
    }
}

impl SampleValue for f64 {
    fn write_to(&self, out: &mut String) {
        // Rust prints non-finite values as `inf`/`NaN`; the format wants `+Inf`, `-Inf`, `NaN`.
        if self.is_nan() {
            out.push_str("NaN");
        } else if self.is_infinite() {
            out.push_str(if *self > 0.0 { "+Inf" } else { "-Inf" });
        } else {
            let _ = write!(out, "{self}");
        }
    }
}

/// The text being built. Writing to a `String` cannot fail, so `write!` results are ignored.
struct Metrics(String);

impl Metrics {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {}", escape(help, false));
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl SampleValue) {
        self.0.push_str(name);
        self.labels(labels, None);
        self.0.push(' ');
        value.write_to(&mut self.0);
        self.0.push('\n');
    }

    fn labels(&mut self, labels: &[(&str, &str)], le: Option<&str>) {
        if labels.is_empty() && le.is_none() {
            return;
        }
        self.0.push('{');
        let extra = le.map(|le| ("le", le));
        for (index, (key, value)) in labels.iter().copied().chain(extra).enumerate() {
            if index > 0 {
                self.0.push(',');
            }
            let _ = write!(self.0, "{key}=\"{}\"", escape(value, true));
        }
        self.0.push('}');
    }

    fn histogram(&mut self, name: &str, labels: &[(&str, &str)], snapshot: &HistogramSnapshot) {
        let bounds = BUCKET_BOUNDS_MICROS
            .iter()
            .map(|micros| (*micros as f64 / MICROS_PER_SECOND).to_string())
            .chain(std::iter::once("+Inf".to_string()));
        for (bound, count) in bounds.zip(snapshot.cumulative) {
            let _ = write!(self.0, "{name}_bucket");
            self.labels(labels, Some(&bound));
            let _ = writeln!(self.0, " {count}");
        }
        let sum = snapshot.sum_micros as f64 / MICROS_PER_SECOND;
        self.sample(&format!("{name}_sum"), labels, sum);
        self.sample(&format!("{name}_count"), labels, snapshot.count);
    }
}

/// Escapes a label value (`\`, `"`, newline) or help text (`\`, newline), as the format requires.
fn escape(text: &str, quote: bool) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            '\n' => escaped.push_str("\\n"),
            '"' if quote => escaped.push_str("\\\""),
            other => escaped.push(other),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::ops::histogram::Histogram;

    #[test]
    fn label_values_are_escaped() {
        let mut out = Metrics(String::new());
        out.sample("m", &[("veriflier", "a\"b\\c\nd")], 1u64);
        assert_eq!(out.0, "m{veriflier=\"a\\\"b\\\\c\\nd\"} 1\n");
    }

    #[test]
    fn histogram_lines_are_cumulative_with_inf_sum_and_count() {
        let histogram = Histogram::default();
        histogram.observe(Duration::from_millis(3));
        histogram.observe(Duration::from_secs(30));
        let mut out = Metrics(String::new());
        out.histogram("h_seconds", &[("phase", "dns")], &histogram.snapshot());
        assert!(
            out.0.contains("h_seconds_bucket{phase=\"dns\",le=\"0.001\"} 0\n"),
            "{}",
            out.0
        );
        assert!(
            out.0.contains("h_seconds_bucket{phase=\"dns\",le=\"0.005\"} 1\n"),
            "{}",
            out.0
        );
        assert!(
            out.0.contains("h_seconds_bucket{phase=\"dns\",le=\"20\"} 1\n"),
            "{}",
            out.0
        );
        assert!(
            out.0.contains("h_seconds_bucket{phase=\"dns\",le=\"+Inf\"} 2\n"),
            "{}",
            out.0
        );
        assert!(out.0.contains("h_seconds_sum{phase=\"dns\"} 30.003\n"), "{}", out.0);
        assert!(out.0.contains("h_seconds_count{phase=\"dns\"} 2\n"), "{}", out.0);
    }

    #[test]
    fn fresh_state_renders_zeroed_families_without_a_snapshot() {
        let state = OpsState::new();
        let text = render(&state, Instant::now());
        assert!(text.contains("# TYPE jetmond_checks_total counter\n"));
        assert!(text.contains("jetmond_checks_total{verdict=\"up\"} 0\n"));
        assert!(text.contains("jetmond_check_errors_total{class=\"refused\"} 0\n"));
        assert!(text.contains("jetmond_ready 0\n"));
        assert!(!text.contains("jetmond_rounds_total"), "needs a snapshot");
    }
}
