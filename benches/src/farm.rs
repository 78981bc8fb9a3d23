//! The delay-target farm as a child process.
//!
//! The testkit's `TargetServer` runs a thread per connection; 10,000 held connections mean 10,000 threads
//! and their stacks. In the bench process they would be counted as the engine's memory, so the `farm`
//! binary runs them instead and the bench talks to it over stdin/stdout: the farm prints one URL per server,
//! then [`READY_LINE`], and exits when its stdin closes (when the bench ends, however it ends).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use crate::BenchError;

/// Printed by the farm after the last URL.
pub const READY_LINE: &str = "ready";
/// Servers bind 127.0.0.2, 127.0.0.3, …: one listen backlog per address, and the bench's own
/// 127.0.0.1 services stay apart.
pub const FIRST_HOST_OCTET: u8 = 2;
/// The most servers a farm starts (127.0.0.2 to 127.0.0.201).
pub const MAX_SERVERS: usize = 200;

/// What the farm serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FarmSpec {
    /// How many servers, each on its own 127.0.0.x.
    pub servers: usize,
    /// How long each answer (`200`) is delayed.
    pub delay: Duration,
    /// Serve HTTPS with a fresh test CA, whose certificate is written here.
    pub tls_ca_file: Option<PathBuf>,
}

impl FarmSpec {
    /// The farm's command-line arguments for this spec.
    pub fn to_args(&self) -> Vec<String> {
        let mut args = vec![
            "--servers".to_string(),
            self.servers.to_string(),
            "--delay-ms".to_string(),
            self.delay.as_millis().to_string(),
        ];
        if let Some(path) = &self.tls_ca_file {
            args.push("--tls-ca-file".to_string());
            args.push(path.display().to_string());
        }
        args
    }

    /// Parses what [`FarmSpec::to_args`] wrote.
    pub fn from_args(args: impl IntoIterator<Item = String>) -> Result<FarmSpec, String> {
        let mut spec = FarmSpec {
            servers: 1,
            delay: Duration::from_secs(3),
            tls_ca_file: None,
        };
        let mut args = args.into_iter();
        while let Some(flag) = args.next() {
            let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
            match flag.as_str() {
                "--servers" => {
                    spec.servers = value.parse().map_err(|_| format!("--servers: not a number: {value}"))?;
                }
                "--delay-ms" => {
                    let millis = value
                        .parse()
                        .map_err(|_| format!("--delay-ms: not a number: {value}"))?;
                    spec.delay = Duration::from_millis(millis);
                }
                "--tls-ca-file" => spec.tls_ca_file = Some(PathBuf::from(value)),
                _ => return Err(format!("unknown argument {flag}")),
            }
        }
        if spec.servers == 0 || spec.servers > MAX_SERVERS {
            return Err(format!("--servers must be 1..={MAX_SERVERS}"));
        }
        Ok(spec)
    }

    /// The `default_route` every server answers with.
    pub fn route(&self) -> String {
        format!("/delay?ms={}", self.delay.as_millis())
    }
}

/// A running farm child; killed on drop.
#[derive(Debug)]
pub struct Farm {
    child: Child,
    // Held open: the farm exits when this closes.
    _stdin: Option<ChildStdin>,
    urls: Vec<String>,
}

impl Farm {
    /// Starts `binary` (the `farm` executable) with `spec` and waits for its URLs.
    pub fn spawn(binary: &Path, spec: &FarmSpec) -> Result<Farm, BenchError> {
        let mut child = Command::new(binary)
            .args(spec.to_args())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(BenchError::io(format!("start {}", binary.display())))?;
        let stdin = child.stdin.take();
        let mut farm = Farm {
            child,
            _stdin: stdin,
            urls: Vec::new(),
        };
        let Some(stdout) = farm.child.stdout.take() else {
            return Err(BenchError::Parse {
                tool: "farm",
                field: "stdout",
                output: String::new(),
            });
        };
        // The farm prints its URLs within milliseconds or exits (closing stdout), so this cannot hang.
        for line in BufReader::new(stdout).lines() {
            let line = line.map_err(BenchError::io("read farm output"))?;
            if line == READY_LINE {
                return Ok(farm);
            }
            farm.urls.push(line);
        }
        Err(BenchError::Parse {
            tool: "farm",
            field: "ready line",
            output: farm.urls.join("\n"),
        })
    }

    /// One URL per server.
    pub fn urls(&self) -> &[String] {
        &self.urls
    }
}

impl Drop for Farm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_round_trip() {
        let spec = FarmSpec {
            servers: 4,
            delay: Duration::from_millis(3000),
            tls_ca_file: Some(PathBuf::from("/tmp/ca.pem")),
        };
        assert_eq!(FarmSpec::from_args(spec.to_args()).unwrap(), spec);
        assert_eq!(spec.route(), "/delay?ms=3000");
    }

    #[test]
    fn bad_args_are_rejected() {
        let args = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(FarmSpec::from_args(args(&["--servers", "0"])).is_err());
        assert!(FarmSpec::from_args(args(&["--servers"])).is_err());
        assert!(FarmSpec::from_args(args(&["--color", "red"])).is_err());
    }
}
