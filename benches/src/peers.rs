//! The clients a user would pick instead of the engine, run on the same URL list against the same nginx:
//! `curl --parallel`, the `reqcheck` binary (tokio + reqwest), Prometheus blackbox_exporter driven over its
//! `/probe` endpoint, and ProjectDiscovery httpx where a package registry has it.
//!
//! Every client makes one new connection (and, over HTTPS, one full handshake) per check, as the engine
//! does: curl and reqcheck send `Connection: close`, reqcheck keeps no idle connection, blackbox_exporter
//! builds a new HTTP client per probe, and nginx resumes no TLS session.

use std::fmt::Write as _;
use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::scratch::free_port;
use crate::BenchError;

/// Debian's curl.
pub const CURL_BINARY: &str = "curl";
/// Debian's `prometheus-blackbox-exporter` package installs the exporter here.
pub const BLACKBOX_BINARY: &str = "/usr/bin/prometheus-blackbox-exporter";
/// What to tell the user when the exporter is missing.
pub const BLACKBOX_HINT: &str = "blackbox_exporter not installed: apt-get install -y prometheus-blackbox-exporter";
/// Why httpx has no row when no `httpx` of ProjectDiscovery's is on `PATH`.
pub const HTTPX_HINT: &str = "ProjectDiscovery httpx: not installable from the package registries here \
    (no `httpx-toolkit` in Debian 12, PyPI's and npm's `httpx` are unrelated HTTP client libraries; the \
    binary ships only as a GitHub release / Go module)";
/// Longest a peer run may take before it is killed.
pub const PEER_RUN_LIMIT: Duration = Duration::from_secs(60);
const POLL_INTERVAL: Duration = Duration::from_millis(20);
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// Per-request timeout every peer gets, as the engine's check timeout bounds a check.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// What one peer run measured.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerOutcome {
    /// Requests made.
    pub checks: usize,
    /// Requests that succeeded (2xx; for blackbox, `probe_success 1`).
    pub ok: usize,
    /// First request to last answer.
    pub elapsed: Duration,
    /// Failures by class, as text.
    pub failures: String,
}

impl PeerOutcome {
    /// Completed requests per second.
    pub fn per_sec(&self) -> f64 {
        self.checks as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }
}

/// Whether `program --version` runs.
pub fn runs(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// Writes one URL per line (for `reqcheck`).
pub fn write_url_list(path: &Path, urls: &[String]) -> Result<(), BenchError> {
    let mut text = String::with_capacity(urls.len() * 32);
    for url in urls {
        text.push_str(url);
        text.push('\n');
    }
    std::fs::write(path, text).map_err(BenchError::io(format!("write {}", path.display())))
}

/// A curl `-K` config: one `url` and `output = /dev/null` per URL.
pub fn curl_config(urls: &[String]) -> String {
    let mut text = String::with_capacity(urls.len() * 48);
    for url in urls {
        let _ = writeln!(text, "url = \"{url}\"\noutput = \"/dev/null\"");
    }
    text
}

/// The curl invocation for `config` (`-K`) at `parallel` transfers at once.
pub fn curl_args(config: &Path, parallel: usize, ca_file: Option<&Path>) -> Vec<String> {
    let mut args = vec![
        "--parallel".to_string(),
        "--parallel-max".to_string(),
        parallel.to_string(),
        "-s".to_string(),
        "-I".to_string(),
        "-H".to_string(),
        "Connection: close".to_string(),
        "--max-time".to_string(),
        REQUEST_TIMEOUT.as_secs().to_string(),
        "-w".to_string(),
        "%{http_code}\\n".to_string(),
    ];
    if let Some(ca) = ca_file {
        args.push("--cacert".to_string());
        args.push(ca.display().to_string());
    }
    args.push("-K".to_string());
    args.push(config.display().to_string());
    args
}

/// The command line as a user would type it.
pub fn command_line(program: &str, args: &[String]) -> String {
    let args: Vec<String> = args
        .iter()
        .map(|arg| {
            if arg.contains([' ', '%', '\\', '{']) {
                format!("'{arg}'")
            } else {
                arg.clone()
            }
        })
        .collect();
    format!("{program} {}", args.join(" "))
}

/// Runs curl in parallel mode over `urls` and counts the `200`s it reports.
pub fn run_curl(
    dir: &Path,
    tag: &str,
    urls: &[String],
    parallel: usize,
    ca_file: Option<&Path>,
) -> Result<(PeerOutcome, String), BenchError> {
    let config = dir.join(format!("curl-{tag}.conf"));
    std::fs::write(&config, curl_config(urls)).map_err(BenchError::io(format!("write {}", config.display())))?;
    let args = curl_args(&config, parallel, ca_file);
    let line = command_line(CURL_BINARY, &args);
    let (stdout, elapsed) = run_bounded(CURL_BINARY, "curl", &args, PEER_RUN_LIMIT)?;
    let mut ok = 0;
    let mut failures = std::collections::BTreeMap::<String, usize>::new();
    for code in stdout.lines() {
        if code.starts_with('2') {
            ok += 1;
        } else {
            *failures.entry(format!("http_{code}")).or_default() += 1;
        }
    }
    let counted: usize = ok + failures.values().sum::<usize>();
    if counted < urls.len() {
        *failures.entry("no_output".to_string()).or_default() += urls.len() - counted;
    }
    let failures = failures
        .iter()
        .map(|(k, v)| format!("{v} {k}"))
        .collect::<Vec<_>>()
        .join(", ");
    Ok((
        PeerOutcome {
            checks: urls.len(),
            ok,
            elapsed,
            failures,
        },
        line,
    ))
}

/// Arguments of the `reqcheck` binary.
#[derive(Debug, Clone, Default)]
pub struct ReqcheckSpec {
    /// At most this many requests at once.
    pub concurrency: usize,
    /// Trust only this CA.
    pub ca_file: Option<PathBuf>,
    /// Reuse connections (to drive blackbox_exporter, not for checks).
    pub keep_alive: bool,
    /// `GET` instead of `HEAD`.
    pub get: bool,
    /// A request is ok only when the body contains this.
    pub expect_body: Option<String>,
}

/// Runs the `reqcheck` binary over `urls` and reads its JSON line.
pub fn run_reqcheck(
    binary: &Path,
    dir: &Path,
    tag: &str,
    urls: &[String],
    spec: &ReqcheckSpec,
) -> Result<(PeerOutcome, String), BenchError> {
    let list = dir.join(format!("urls-{tag}.txt"));
    write_url_list(&list, urls)?;
    let mut args = vec![
        "--urls".to_string(),
        list.display().to_string(),
        "--concurrency".to_string(),
        spec.concurrency.to_string(),
        "--timeout-ms".to_string(),
        REQUEST_TIMEOUT.as_millis().to_string(),
    ];
    if let Some(ca) = &spec.ca_file {
        args.extend(["--ca-file".to_string(), ca.display().to_string()]);
    }
    if spec.keep_alive {
        args.push("--keep-alive".to_string());
    }
    if spec.get {
        args.push("--get".to_string());
    }
    if let Some(expect) = &spec.expect_body {
        args.extend(["--expect-body".to_string(), expect.clone()]);
    }
    let line = command_line("reqcheck", &args);
    let (stdout, _) = run_bounded(&binary.display().to_string(), "reqcheck", &args, PEER_RUN_LIMIT)?;
    let outcome = parse_reqcheck(&stdout)?;
    Ok((outcome, line))
}

/// Reads `reqcheck`'s JSON line.
pub fn parse_reqcheck(output: &str) -> Result<PeerOutcome, BenchError> {
    let parse_error = || BenchError::Parse {
        tool: "reqcheck",
        field: "JSON result line",
        output: output.to_string(),
    };
    let value: serde_json::Value = output
        .lines()
        .rev()
        .find_map(|line| serde_json::from_str(line).ok())
        .ok_or_else(parse_error)?;
    let checks = value["checks"].as_u64().ok_or_else(parse_error)? as usize;
    let ok = value["ok"].as_u64().ok_or_else(parse_error)? as usize;
    let elapsed = value["elapsed_s"].as_f64().ok_or_else(parse_error)?;
    let failures = value["failures"]
        .as_object()
        .map(|map| {
            map.iter()
                .map(|(k, v)| format!("{} {k}", v.as_u64().unwrap_or(0)))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    Ok(PeerOutcome {
        checks,
        ok,
        elapsed: Duration::from_secs_f64(elapsed),
        failures,
    })
}

/// Starts `program args`, waits at most `limit`, returns its stdout and run time.
fn run_bounded(
    program: &str,
    tool: &'static str,
    args: &[String],
    limit: Duration,
) -> Result<(String, Duration), BenchError> {
    let started = Instant::now();
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(BenchError::io(format!("start {program}")))?;
    // Drain stdout on a thread: curl writes a line per URL, more than a pipe buffer holds.
    let mut out = child.stdout.take();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(out) = out.as_mut() {
            let _ = out.read_to_string(&mut text);
        }
        text
    });
    let status = loop {
        if let Some(status) = child
            .try_wait()
            .map_err(BenchError::io(format!("wait for {program}")))?
        {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return Err(BenchError::Timeout {
                what: command_line(program, args),
                limit,
            });
        }
        std::thread::sleep(POLL_INTERVAL);
    };
    let elapsed = started.elapsed();
    let stdout = reader.join().unwrap_or_default();
    let mut stderr = String::new();
    if let Some(mut err) = child.stderr.take() {
        let _ = err.read_to_string(&mut stderr);
    }
    if !status.success() {
        stderr.truncate(2000);
        return Err(BenchError::ToolFailed {
            tool,
            status: status.to_string(),
            stderr,
        });
    }
    Ok((stdout, elapsed))
}

/// The blackbox_exporter module the bench probes with: HEAD, no redirects, IPv4, HTTP/1.1, the test CA.
pub fn blackbox_config(ca_file: Option<&Path>) -> String {
    let tls = ca_file
        .map(|ca| format!("      tls_config:\n        ca_file: {}\n", ca.display()))
        .unwrap_or_default();
    format!(
        "modules:\n\
         \x20 head:\n\
         \x20   prober: http\n\
         \x20   timeout: {}s\n\
         \x20   http:\n\
         \x20     method: HEAD\n\
         \x20     no_follow_redirects: true\n\
         \x20     preferred_ip_protocol: ip4\n\
         \x20     ip_protocol_fallback: false\n\
         \x20     valid_http_versions: [\"HTTP/1.1\"]\n\
         \x20     valid_status_codes: [200]\n\
         \x20     headers:\n\
         \x20       Connection: close\n\
         {tls}",
        REQUEST_TIMEOUT.as_secs()
    )
}

/// A running blackbox_exporter on 127.0.0.1; killed on drop.
#[derive(Debug)]
pub struct Blackbox {
    child: Child,
    addr: SocketAddr,
}

impl Blackbox {
    /// Whether the Debian package's binary is present.
    pub fn is_installed() -> bool {
        Path::new(BLACKBOX_BINARY).is_file()
    }

    /// Writes the module config into `dir` and starts the exporter on a free port of 127.0.0.1.
    pub fn start(dir: &Path, ca_file: Option<&Path>) -> Result<Blackbox, BenchError> {
        let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let addr = SocketAddr::new(loopback, free_port(loopback)?);
        let config = dir.join("blackbox.yml");
        std::fs::write(&config, blackbox_config(ca_file))
            .map_err(BenchError::io(format!("write {}", config.display())))?;
        let log = std::fs::File::create(dir.join("blackbox.log")).map_err(BenchError::io("create blackbox.log"))?;
        let child = Command::new(BLACKBOX_BINARY)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--log.level=error")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(BenchError::io(format!("start {BLACKBOX_BINARY}")))?;
        let mut blackbox = Blackbox { child, addr };
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = blackbox.child.try_wait() {
                return Err(BenchError::ToolFailed {
                    tool: "blackbox_exporter",
                    status: status.to_string(),
                    stderr: std::fs::read_to_string(dir.join("blackbox.log")).unwrap_or_default(),
                });
            }
            if TcpStream::connect_timeout(&addr, POLL_INTERVAL).is_ok() {
                return Ok(blackbox);
            }
            if started.elapsed() > READY_TIMEOUT {
                return Err(BenchError::Timeout {
                    what: "blackbox_exporter start".to_string(),
                    limit: READY_TIMEOUT,
                });
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    /// `/probe` URL for `target` with the bench's module.
    pub fn probe_url(&self, target: &str) -> String {
        format!("http://{}/probe?module=head&target={target}", self.addr)
    }

    /// The exporter's version line.
    pub fn version() -> String {
        Command::new(BLACKBOX_BINARY)
            .arg("--version")
            .output()
            .ok()
            .map(|out| {
                let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
                text.lines().next().unwrap_or("").trim().to_string()
            })
            .unwrap_or_default()
    }
}

impl Drop for Blackbox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `httpx` on `PATH` if it is ProjectDiscovery's (Python's httpx also installs an `httpx` command).
pub fn projectdiscovery_httpx() -> Option<PathBuf> {
    let out = Command::new("httpx").arg("-version").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    text.to_ascii_lowercase()
        .contains("projectdiscovery")
        .then(|| PathBuf::from("httpx"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curl_config_pairs_each_url_with_an_output() {
        let config = curl_config(&["http://127.0.0.1:1/".to_string(), "http://127.0.0.1:2/".to_string()]);
        assert_eq!(config.matches("output = \"/dev/null\"").count(), 2);
        assert!(config.starts_with("url = \"http://127.0.0.1:1/\"\n"));
    }

    #[test]
    fn curl_command_line_is_quoted() {
        let args = curl_args(Path::new("/tmp/c.conf"), 256, None);
        let line = command_line("curl", &args);
        assert!(line.starts_with("curl --parallel --parallel-max 256 -s -I -H 'Connection: close'"));
        assert!(line.ends_with("-K /tmp/c.conf"));
    }

    #[test]
    fn reqcheck_line_is_read() {
        let outcome =
            parse_reqcheck("{\"checks\":10,\"ok\":9,\"elapsed_s\":0.5,\"failures\":{\"connect\":1}}\n").unwrap();
        assert_eq!(outcome.checks, 10);
        assert_eq!(outcome.ok, 9);
        assert_eq!(outcome.per_sec(), 20.0);
        assert_eq!(outcome.failures, "1 connect");
        assert!(parse_reqcheck("garbage").is_err());
    }

    #[test]
    fn blackbox_module_is_head_without_redirects() {
        let config = blackbox_config(Some(Path::new("/tmp/ca.pem")));
        assert!(config.contains("method: HEAD"));
        assert!(config.contains("no_follow_redirects: true"));
        assert!(config.contains("ca_file: /tmp/ca.pem"));
    }
}
