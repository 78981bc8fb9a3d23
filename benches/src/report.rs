//! The run's figures: a Markdown table for the terminal (and `docs/performance.md`) and a JSON file for
//! machines.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::capacity::CapacityOutcome;
use crate::machine::Machine;
use crate::BenchError;

/// The JSON file's name inside the workspace's target directory.
pub const RESULTS_FILE_NAME: &str = "bench-results.json";

/// One client's rate against one nginx listener.
#[derive(Debug, Clone)]
pub struct ThroughputRow {
    /// `http` or `https`.
    pub scheme: &'static str,
    /// Who made the requests, e.g. `wrk -t1 -c64` or `engine c=256 t=2`.
    pub client: String,
    /// Completed checks (or wrk requests) per second.
    pub per_sec: f64,
    /// wrk's rate against the same listener in this run, when this row is the engine's.
    pub wrk_per_sec: Option<f64>,
    /// Anything off: failed checks by class, wrk's socket errors.
    pub note: String,
}

impl ThroughputRow {
    /// Engine rate over wrk rate.
    pub fn ratio_to_wrk(&self) -> Option<f64> {
        self.wrk_per_sec.filter(|wrk| *wrk > 0.0).map(|wrk| self.per_sec / wrk)
    }
}

/// One in-flight capacity measurement (a point of the cost curve).
#[derive(Debug, Clone)]
pub struct CapacityRow {
    /// `http` or `https`.
    pub scheme: &'static str,
    /// What was measured.
    pub outcome: CapacityOutcome,
    /// How long the targets delayed each answer: `checks / delay` is the best possible rate.
    pub delay: std::time::Duration,
}

impl CapacityRow {
    /// Checks per second, submit to last result.
    pub fn per_sec(&self) -> f64 {
        self.outcome.checks as f64 / self.outcome.elapsed.as_secs_f64().max(f64::EPSILON)
    }

    /// [`CapacityRow::per_sec`] over the ideal `checks / delay` (1.0: no time spent beyond the delay).
    pub fn ratio_to_ideal(&self) -> f64 {
        let ideal = self.outcome.checks as f64 / self.delay.as_secs_f64().max(f64::EPSILON);
        self.per_sec() / ideal
    }
}

/// One client on the shared URL list of a peer scenario.
#[derive(Debug, Clone)]
pub struct PeerRow {
    /// `http` or `https`.
    pub scheme: &'static str,
    /// Who made the requests.
    pub client: String,
    /// Requests on the list (0 when the client did not run).
    pub checks: usize,
    /// Successful requests.
    pub ok: usize,
    /// Requests per second; `None` when the client did not run.
    pub per_sec: Option<f64>,
    /// The engine's rate on the same list, the scenario's 1.0.
    pub engine_per_sec: Option<f64>,
    /// Failures, or why the client did not run.
    pub note: String,
}

impl PeerRow {
    /// This client's rate over the engine's.
    pub fn ratio_to_engine(&self) -> Option<f64> {
        let engine = self.engine_per_sec.filter(|e| *e > 0.0)?;
        self.per_sec.map(|p| p / engine)
    }
}

/// One run of the DNS-heavy vs IP-only comparison.
#[derive(Debug, Clone)]
pub struct DnsRow {
    /// What the URLs were, e.g. `IP literals` or `2000 names`.
    pub mix: String,
    /// Checks.
    pub checks: usize,
    /// Distinct host names (0 for IP literals).
    pub names: usize,
    /// Questions the DNS server received.
    pub queries: usize,
    /// Checks per second.
    pub per_sec: f64,
    /// The IP-only rate, the 1.0.
    pub ip_per_sec: Option<f64>,
    /// Failures.
    pub note: String,
}

impl DnsRow {
    /// This mix's rate over the IP-only one.
    pub fn ratio_to_ip(&self) -> Option<f64> {
        self.ip_per_sec.filter(|ip| *ip > 0.0).map(|ip| self.per_sec / ip)
    }
}

/// Everything one `cargo bench` run measured.
#[derive(Debug, Clone)]
pub struct Report {
    /// Where it ran.
    pub machine: Machine,
    /// Rates against nginx.
    pub throughput: Vec<ThroughputRow>,
    /// Memory at peak in flight, and checks/s, at each point of the cost curve.
    pub capacity: Vec<CapacityRow>,
    /// Peers on the same URL lists.
    pub peers: Vec<PeerRow>,
    /// DNS-heavy mixes vs IP literals.
    pub dns: Vec<DnsRow>,
    /// Versions of the external tools that ran.
    pub tools: Vec<String>,
    /// Parts that did not run, and why.
    pub skipped: Vec<String>,
    /// The exact external commands (wrk) that ran.
    pub commands: Vec<String>,
}

impl Report {
    /// An empty report for `machine`.
    pub fn new(machine: Machine) -> Report {
        Report {
            machine,
            throughput: Vec::new(),
            capacity: Vec::new(),
            peers: Vec::new(),
            dns: Vec::new(),
            tools: Vec::new(),
            skipped: Vec::new(),
            commands: Vec::new(),
        }
    }

    /// The tables in Markdown.
    pub fn to_markdown(&self) -> String {
        let m = &self.machine;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Machine: {} cores ({}), kernel {}, load {} at start, {}\n",
            m.nproc, m.cpu, m.kernel, m.loadavg, m.date
        );
        if !self.throughput.is_empty() {
            out.push_str("| scheme | client | checks/s | wrk req/s | engine/wrk | note |\n");
            out.push_str("|---|---|---:|---:|---:|---|\n");
            for row in &self.throughput {
                let wrk = row.wrk_per_sec.map_or("".to_string(), |w| format!("{w:.0}"));
                let ratio = row.ratio_to_wrk().map_or("".to_string(), |r| format!("{r:.2}"));
                let _ = writeln!(
                    out,
                    "| {} | {} | {:.0} | {wrk} | {ratio} | {} |",
                    row.scheme, row.client, row.per_sec, row.note
                );
            }
            out.push('\n');
        }
        if !self.peers.is_empty() {
            out.push_str("| scheme | client | checks | checks/s | vs engine | note |\n");
            out.push_str("|---|---|---:|---:|---:|---|\n");
            for row in &self.peers {
                let rate = row.per_sec.map_or("".to_string(), |r| format!("{r:.0}"));
                let ratio = row.ratio_to_engine().map_or("".to_string(), |r| format!("{r:.2}"));
                let checks = if row.per_sec.is_some() {
                    row.checks.to_string()
                } else {
                    String::new()
                };
                let _ = writeln!(
                    out,
                    "| {} | {} | {checks} | {rate} | {ratio} | {} |",
                    row.scheme, row.client, row.note
                );
            }
            out.push('\n');
        }
        if !self.capacity.is_empty() {
            out.push_str(
                "| scheme | checks in flight | peak in flight | idle RSS MiB | peak RSS MiB | KiB per in-flight check \
                 | checks/s | vs checks/delay |\n",
            );
            out.push_str("|---|---:|---:|---:|---:|---:|---:|---:|\n");
            for row in &self.capacity {
                let o = &row.outcome;
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {:.1} | {:.1} | {:.1} | {:.0} | {:.2} |",
                    row.scheme,
                    o.checks,
                    o.peak_in_flight,
                    o.baseline_rss_kib as f64 / 1024.0,
                    o.peak_rss_kib as f64 / 1024.0,
                    o.rss_per_check_kib(),
                    row.per_sec(),
                    row.ratio_to_ideal()
                );
            }
            out.push('\n');
        }
        if !self.dns.is_empty() {
            out.push_str("| URLs | checks | distinct names | DNS queries | checks/s | vs IP-only | note |\n");
            out.push_str("|---|---:|---:|---:|---:|---:|---|\n");
            for row in &self.dns {
                let ratio = row.ratio_to_ip().map_or("".to_string(), |r| format!("{r:.2}"));
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {:.0} | {ratio} | {} |",
                    row.mix, row.checks, row.names, row.queries, row.per_sec, row.note
                );
            }
            out.push('\n');
        }
        for skipped in &self.skipped {
            let _ = writeln!(out, "skipped: {skipped}");
        }
        out
    }

    /// The report as JSON.
    pub fn to_json(&self) -> Value {
        let m = &self.machine;
        json!({
            "machine": {
                "nproc": m.nproc,
                "cpu": m.cpu,
                "kernel": m.kernel,
                "loadavg_at_start": m.loadavg,
                "date": m.date,
            },
            "throughput": self.throughput.iter().map(|row| json!({
                "scheme": row.scheme,
                "client": row.client,
                "per_sec": round2(row.per_sec),
                "wrk_per_sec": row.wrk_per_sec.map(round2),
                "ratio_to_wrk": row.ratio_to_wrk().map(round2),
                "note": row.note,
            })).collect::<Vec<_>>(),
            "capacity": self.capacity.iter().map(|row| {
                let o = &row.outcome;
                json!({
                    "scheme": row.scheme,
                    "checks": o.checks,
                    "threads": o.threads,
                    "peak_in_flight": o.peak_in_flight,
                    "peak_open_sockets": o.peak_open_sockets,
                    "baseline_rss_kib": o.baseline_rss_kib,
                    "peak_rss_kib": o.peak_rss_kib,
                    "rss_per_in_flight_check_kib": round2(o.rss_per_check_kib()),
                    "up": o.up,
                    "elapsed_s": round2(o.elapsed.as_secs_f64()),
                    "delay_ms": row.delay.as_millis() as u64,
                    "checks_per_sec": round2(row.per_sec()),
                    "ratio_to_checks_over_delay": round2(row.ratio_to_ideal()),
                })
            }).collect::<Vec<_>>(),
            "peers": self.peers.iter().map(|row| json!({
                "scheme": row.scheme,
                "client": row.client,
                "checks": row.checks,
                "ok": row.ok,
                "per_sec": row.per_sec.map(round2),
                "engine_per_sec": row.engine_per_sec.map(round2),
                "ratio_to_engine": row.ratio_to_engine().map(round2),
                "note": row.note,
            })).collect::<Vec<_>>(),
            "dns": self.dns.iter().map(|row| json!({
                "urls": row.mix,
                "checks": row.checks,
                "distinct_names": row.names,
                "dns_queries": row.queries,
                "per_sec": round2(row.per_sec),
                "ip_only_per_sec": row.ip_per_sec.map(round2),
                "ratio_to_ip_only": row.ratio_to_ip().map(round2),
                "note": row.note,
            })).collect::<Vec<_>>(),
            "tools": self.tools,
            "skipped": self.skipped,
            "commands": self.commands,
        })
    }

    /// Writes [`Report::to_json`] to `path`.
    pub fn write_json(&self, path: &Path) -> Result<(), BenchError> {
        let text = serde_json::to_string_pretty(&self.to_json()).unwrap_or_default();
        std::fs::write(path, text + "\n").map_err(BenchError::io(format!("write {}", path.display())))
    }
}

/// `$CARGO_TARGET_DIR/bench-results.json`, or `target/bench-results.json` at the workspace root.
pub fn results_path() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
            manifest.parent().unwrap_or(manifest).join("target")
        });
    target.join(RESULTS_FILE_NAME)
}

fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratio_needs_a_positive_wrk_rate() {
        let mut row = ThroughputRow {
            scheme: "http",
            client: "engine".to_string(),
            per_sec: 5000.0,
            wrk_per_sec: Some(10000.0),
            note: String::new(),
        };
        assert_eq!(row.ratio_to_wrk(), Some(0.5));
        row.wrk_per_sec = Some(0.0);
        assert_eq!(row.ratio_to_wrk(), None);
    }
}
