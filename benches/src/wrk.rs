//! The reference: `wrk -H 'Connection: close'` opens a new connection per request, which is the work a
//! check does, so its request rate against the same nginx is the practical ceiling for checks/s here.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::BenchError;

/// The program, looked up on `PATH`.
pub const WRK_BINARY: &str = "wrk";
/// wrk's own per-request timeout, so a stuck connection cannot hold a slot for the whole run.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// Extra time beyond `-d` before the harness gives up on wrk.
const EXIT_GRACE: Duration = Duration::from_secs(15);
const EXIT_POLL_INTERVAL: Duration = Duration::from_millis(50);

/// One wrk invocation.
#[derive(Debug, Clone)]
pub struct WrkSpec {
    /// `-t`: threads.
    pub threads: u32,
    /// `-c`: connections kept open at once.
    pub connections: u32,
    /// `-d`: how long to run.
    pub duration: Duration,
}

impl Default for WrkSpec {
    /// `-t1 -c64 -d5s`.
    fn default() -> WrkSpec {
        WrkSpec {
            threads: 1,
            connections: 64,
            duration: Duration::from_secs(5),
        }
    }
}

impl WrkSpec {
    fn args(&self, url: &str) -> Vec<String> {
        vec![
            format!("-t{}", self.threads),
            format!("-c{}", self.connections),
            format!("-d{}s", self.duration.as_secs().max(1)),
            format!("--timeout={}s", REQUEST_TIMEOUT.as_secs()),
            "-H".to_string(),
            "Connection: close".to_string(),
            url.to_string(),
        ]
    }

    /// The command line as a user would type it.
    pub fn command_line(&self, url: &str) -> String {
        let args: Vec<String> = self
            .args(url)
            .into_iter()
            .map(|arg| if arg.contains(' ') { format!("'{arg}'") } else { arg })
            .collect();
        format!("{WRK_BINARY} {}", args.join(" "))
    }
}

/// What one wrk run measured.
#[derive(Debug, Clone, PartialEq)]
pub struct WrkOutcome {
    /// `Requests/sec`: completed requests, each on its own connection.
    pub requests_per_sec: f64,
    /// The `Socket errors:` line, if wrk printed one.
    pub socket_errors: Option<String>,
}

/// Whether `wrk` can be started.
pub fn is_installed() -> bool {
    Command::new(WRK_BINARY)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// Runs wrk against `url` and reads its request rate.
pub fn run(spec: &WrkSpec, url: &str) -> Result<WrkOutcome, BenchError> {
    let mut child = Command::new(WRK_BINARY)
        .args(spec.args(url))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(BenchError::io("start wrk"))?;
    let limit = spec.duration + EXIT_GRACE;
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().map_err(BenchError::io("wait for wrk"))? {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return Err(BenchError::Timeout {
                what: spec.command_line(url),
                limit,
            });
        }
        std::thread::sleep(EXIT_POLL_INTERVAL);
    };
    // wrk prints a few hundred bytes, far below the pipe buffer, so reading after exit cannot deadlock.
    let mut stdout = String::new();
    let mut stderr = String::new();
    if let Some(mut out) = child.stdout.take() {
        out.read_to_string(&mut stdout)
            .map_err(BenchError::io("read wrk output"))?;
    }
    if let Some(mut err) = child.stderr.take() {
        err.read_to_string(&mut stderr)
            .map_err(BenchError::io("read wrk errors"))?;
    }
    if !status.success() {
        return Err(BenchError::ToolFailed {
            tool: "wrk",
            status: status.to_string(),
            stderr,
        });
    }
    parse_output(&stdout)
}

/// Reads `Requests/sec:` and `Socket errors:` from wrk's report.
pub fn parse_output(output: &str) -> Result<WrkOutcome, BenchError> {
    let requests_per_sec = output
        .lines()
        .find_map(|line| line.trim().strip_prefix("Requests/sec:"))
        .and_then(|value| value.trim().parse().ok())
        .ok_or_else(|| BenchError::Parse {
            tool: "wrk",
            field: "Requests/sec",
            output: output.to_string(),
        })?;
    let socket_errors = output
        .lines()
        .find_map(|line| line.trim().strip_prefix("Socket errors:"))
        .map(|errors| errors.trim().to_string());
    Ok(WrkOutcome {
        requests_per_sec,
        socket_errors,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPORT: &str = "Running 5s test @ http://127.0.0.1:8080/\n  1 threads and 64 connections\n  \
        Thread Stats   Avg      Stdev     Max   +/- Stdev\n    Latency     3.1ms    1.0ms  20.0ms   90.00%\n  \
        45678 requests in 5.00s, 3.50MB read\n  Socket errors: connect 0, read 12, write 0, timeout 0\n\
        Requests/sec:   9135.60\nTransfer/sec:    716.11KB\n";

    #[test]
    fn requests_per_sec_and_socket_errors_are_read() {
        let outcome = parse_output(REPORT).unwrap();
        assert_eq!(outcome.requests_per_sec, 9135.60);
        assert_eq!(
            outcome.socket_errors.as_deref(),
            Some("connect 0, read 12, write 0, timeout 0")
        );
    }

    #[test]
    fn report_without_rate_is_a_parse_error() {
        assert!(matches!(
            parse_output("unable to connect to 127.0.0.1:1 Connection refused"),
            Err(BenchError::Parse { .. })
        ));
    }

    #[test]
    fn command_line_quotes_the_header() {
        let line = WrkSpec::default().command_line("http://127.0.0.1:1/");
        assert_eq!(
            line,
            "wrk -t1 -c64 -d5s --timeout=2s -H 'Connection: close' http://127.0.0.1:1/"
        );
    }
}
