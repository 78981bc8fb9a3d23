//! The host a run happened on, recorded beside the figures: they mean little without it.

use std::process::Command;

/// A description of this machine at the time of the run.
#[derive(Debug, Clone)]
pub struct Machine {
    /// Cores available to this process.
    pub nproc: usize,
    /// `uname -r`.
    pub kernel: String,
    /// The first `model name` of `/proc/cpuinfo`.
    pub cpu: String,
    /// `/proc/loadavg` when the run started: other work on a shared machine shows here.
    pub loadavg: String,
    /// UTC date and time, ISO 8601.
    pub date: String,
}

impl Machine {
    /// Reads what this machine says about itself; unknown fields are `"unknown"`.
    pub fn detect() -> Machine {
        let read = |path: &str| std::fs::read_to_string(path).map(|s| s.trim().to_string()).ok();
        let cpu = read("/proc/cpuinfo").and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split_once(':'))
                .map(|(_, model)| model.trim().to_string())
        });
        let date = Command::new("date")
            .args(["-u", "+%Y-%m-%dT%H:%M:%SZ"])
            .output()
            .ok()
            .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string());
        let unknown = || "unknown".to_string();
        Machine {
            nproc: std::thread::available_parallelism().map_or(1, |n| n.get()),
            kernel: read("/proc/sys/kernel/osrelease").unwrap_or_else(unknown),
            cpu: cpu.unwrap_or_else(unknown),
            loadavg: read("/proc/loadavg").unwrap_or_else(unknown),
            date: date.filter(|d| !d.is_empty()).unwrap_or_else(unknown),
        }
    }
}
