//! `jetmond check`: run checks on a list of URLs and print one JSON line per URL. The contract other tools
//! build on: stdout carries only results, everything else goes to stderr.

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, IsTerminal, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use jetmon_engine::{CheckRequest, CheckResult, Engine, EngineConfig, ResolveOverride};
use serde::Serialize;

use jetmond::sites;

/// Options of `jetmond check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// URLs to check.
    pub urls: Vec<String>,
    /// Read URLs from FILE (one per line, `#` comments, optional `BLOG_ID URL`); `-` for standard input.
    #[arg(short = 'i', long = "input", value_name = "FILE|-")]
    pub input: Option<String>,
    /// Checks in flight at once.
    #[arg(short = 'c', long = "concurrency", default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub concurrency: u32,
    /// Whole-check deadline in seconds (redirects included).
    #[arg(long, default_value_t = 20.0, value_parser = parse_seconds)]
    pub timeout: f64,
    /// Redirects to follow before the last 3xx counts as the answer.
    #[arg(long, default_value_t = jetmon_engine::DEFAULT_MAX_REDIRECTS)]
    pub max_redirects: u8,
    /// Extra CA certificates (PEM) to trust beside the built-in web roots.
    #[arg(long, value_name = "PEM")]
    pub cacert: Option<PathBuf>,
    /// Use ADDR for HOST:PORT instead of DNS (curl style; PORT 0 or * for any port). Repeatable.
    #[arg(long, value_name = "HOST:PORT:ADDR", value_parser = parse_resolve)]
    pub resolve: Vec<ResolveOverride>,
    /// DNS server to query instead of those in /etc/resolv.conf (IP or IP:PORT). Repeatable.
    #[arg(long, value_name = "ADDR", value_parser = parse_dns_server)]
    pub dns_server: Vec<SocketAddr>,
    /// Engine threads (default: one per core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Concurrent connections per destination IP per thread (0 = unlimited).
    #[arg(long, default_value_t = 0)]
    pub max_per_ip: usize,
    /// Start the built-in demo web server on ADDR first (for trying jetmond without internet access; see
    /// `jetmond/config/example-sites.txt`).
    #[arg(long, value_name = "ADDR")]
    pub demo_target: Option<SocketAddr>,
    /// Print totals, checks/s and RTT percentiles to stderr at the end.
    #[arg(long)]
    pub summary: bool,
}

fn parse_seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 3600.0 => Ok(v),
        Ok(_) => Err("must be more than 0 and at most 3600 seconds".to_string()),
        Err(_) => Err(format!("{s:?} is not a number of seconds")),
    }
}

fn parse_resolve(s: &str) -> Result<ResolveOverride, String> {
    s.parse()
        .map_err(|e: jetmon_engine::ResolveOverrideParseError| e.to_string())
}

fn parse_dns_server(s: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Ok(addr);
    }
    s.parse::<std::net::IpAddr>()
        .map(|ip| SocketAddr::new(ip, 53))
        .map_err(|_| format!("{s:?} is not an IP or IP:PORT"))
}

/// One line of output.
#[derive(Serialize)]
struct ResultLine<'a> {
    url: &'a str,
    status: &'static str,
    code: u16,
    rtt_ms: u64,
    error: Option<&'static str>,
    error_code: Option<u16>,
    timings: TimingsLine,
    redirects: u8,
    #[serde(skip_serializing_if = "str::is_empty")]
    detail: &'a str,
}

#[derive(Serialize)]
struct TimingsLine {
    dns_ms: Option<f64>,
    connect_ms: Option<f64>,
    tls_ms: Option<f64>,
    ttfb_ms: Option<f64>,
}

fn ms(d: Option<Duration>) -> Option<f64> {
    // Three decimals: microsecond resolution is what the clock gives, more digits are noise.
    d.map(|d| (d.as_secs_f64() * 1_000_000.0).round() / 1000.0)
}

impl<'a> From<&'a CheckResult> for ResultLine<'a> {
    fn from(r: &'a CheckResult) -> Self {
        ResultLine {
            url: &r.url,
            status: r.verdict.as_str(),
            code: r.code,
            rtt_ms: r.rtt_ms(),
            error: r.error.map(|e| e.as_str()),
            error_code: r.legacy_error_code,
            timings: TimingsLine {
                dns_ms: ms(r.timings.dns),
                connect_ms: ms(r.timings.connect),
                tls_ms: ms(r.timings.tls),
                ttfb_ms: ms(r.timings.ttfb),
            },
            redirects: r.redirects,
            detail: &r.detail,
        }
    }
}

/// Why `jetmond check` stopped early.
#[derive(Debug, thiserror::Error)]
pub enum CheckCommandError {
    /// No URL was given.
    #[error("no URLs given: pass URLs as arguments or use -i FILE (or -i - for standard input)")]
    NoInput,
    /// The input file cannot be opened.
    #[error("cannot open {path}: {source}")]
    Open {
        /// The path.
        path: String,
        /// The IO error.
        source: io::Error,
    },
    /// The demo target could not start.
    #[error("cannot start the demo target on {addr}: {source}")]
    Demo {
        /// The address.
        addr: SocketAddr,
        /// The IO error.
        source: io::Error,
    },
    /// The engine could not start.
    #[error(transparent)]
    Engine(#[from] jetmon_engine::EngineError),
    /// Standard output failed.
    #[error("cannot write results: {0}")]
    Output(io::Error),
}

impl CheckArgs {
    fn engine_config(&self) -> EngineConfig {
        let mut config = EngineConfig::default();
        config.threads = self.threads;
        config.max_in_flight = self.concurrency as usize;
        config.max_per_ip = self.max_per_ip;
        config.check_timeout = Duration::from_secs_f64(self.timeout);
        config.connect_timeout = config.connect_timeout.min(config.check_timeout);
        config.tls_timeout = config.tls_timeout.min(config.check_timeout);
        config.max_redirects = self.max_redirects;
        config.extra_ca_file = self.cacert.clone();
        config.dns.overrides = self.resolve.clone();
        config.dns.nameservers = self.dns_server.clone();
        config
    }
}

/// Runs the command. Returns the number of results printed.
pub fn run(args: CheckArgs) -> Result<u64, CheckCommandError> {
    if args.urls.is_empty() && args.input.is_none() {
        return Err(CheckCommandError::NoInput);
    }
    let input: Option<Box<dyn BufRead + Send>> = match args.input.as_deref() {
        None => None,
        Some("-") => Some(Box::new(BufReader::new(io::stdin()))),
        Some(path) => {
            let file = File::open(path).map_err(|source| CheckCommandError::Open {
                path: path.to_string(),
                source,
            })?;
            Some(Box::new(BufReader::new(file)))
        }
    };
    if let Some(addr) = args.demo_target {
        jetmond::demo::start(addr).map_err(|source| CheckCommandError::Demo { addr, source })?;
    }
    let engine = Engine::start(args.engine_config())?;
    let submitted = Arc::new(AtomicU64::new(0));
    let input_done = Arc::new(AtomicBool::new(false));
    let producer = {
        let submitter = engine.submitter();
        let submitted = Arc::clone(&submitted);
        let input_done = Arc::clone(&input_done);
        let urls = args.urls.clone();
        let backlog_limit = (engine.capacity() * 4).max(4096);
        std::thread::spawn(move || {
            let mut id = 0u64;
            let mut push = |url: String| {
                // Keep the queue short so a million-line list is streamed, not loaded.
                while submitter.queued() > backlog_limit {
                    std::thread::sleep(Duration::from_millis(1));
                }
                if submitter.submit(CheckRequest::new(id, url)).is_ok() {
                    id += 1;
                    submitted.store(id, Ordering::Relaxed);
                }
            };
            for url in urls {
                push(url);
            }
            if let Some(reader) = input {
                for (i, line) in reader.lines().enumerate() {
                    let line = match line {
                        Ok(line) => line,
                        Err(e) => {
                            tracing::error!("input line {}: {e}; stopping here", i + 1);
                            break;
                        }
                    };
                    match sites::parse_site_line(i + 1, &line) {
                        None => {}
                        Some(Ok(site)) => push(site.url),
                        // A malformed line still gets its result line: the engine reports it as invalid_url.
                        Some(Err(_)) => push(line.trim().to_string()),
                    }
                }
            }
            input_done.store(true, Ordering::Release);
        })
    };
    let printed = print_results(&engine, &submitted, &input_done, args.summary)?;
    let _ = producer.join();
    engine.shutdown();
    Ok(printed)
}

fn print_results(
    engine: &Engine,
    submitted: &AtomicU64,
    input_done: &AtomicBool,
    summary: bool,
) -> Result<u64, CheckCommandError> {
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(64 * 1024, stdout.lock());
    let started = Instant::now();
    let progress = io::stderr().is_terminal();
    let mut last_progress = Instant::now();
    let mut stats = Summary::default();
    let mut printed = 0u64;
    loop {
        if input_done.load(Ordering::Acquire) && printed >= submitted.load(Ordering::Relaxed) {
            break;
        }
        match engine.results().recv_timeout(Duration::from_millis(100)) {
            Ok(result) => {
                serde_json::to_writer(&mut out, &ResultLine::from(&result))
                    .map_err(|e| CheckCommandError::Output(e.into()))?;
                out.write_all(b"\n").map_err(CheckCommandError::Output)?;
                printed += 1;
                stats.add(&result);
                if engine.results().is_empty() {
                    out.flush().map_err(CheckCommandError::Output)?;
                }
            }
            Err(_) => out.flush().map_err(CheckCommandError::Output)?,
        }
        if progress && last_progress.elapsed() >= Duration::from_secs(1) {
            last_progress = Instant::now();
            let total = submitted.load(Ordering::Relaxed);
            eprint!("\r{printed}/{total} checked, {} in flight   ", engine.stats().in_flight);
        }
    }
    out.flush().map_err(CheckCommandError::Output)?;
    if progress {
        eprintln!();
    }
    if summary {
        stats.print(started.elapsed());
    }
    Ok(printed)
}

#[derive(Default)]
struct Summary {
    up: u64,
    down: u64,
    errors: std::collections::BTreeMap<&'static str, u64>,
    rtts_us: Vec<u64>,
}

impl Summary {
    fn add(&mut self, r: &CheckResult) {
        match r.verdict {
            jetmon_engine::Verdict::Up => self.up += 1,
            _ => self.down += 1,
        }
        if let Some(e) = r.error {
            *self.errors.entry(e.as_str()).or_default() += 1;
        } else {
            self.rtts_us.push(r.rtt.as_micros() as u64);
        }
    }

    fn print(&mut self, elapsed: Duration) {
        let total = self.up + self.down;
        let rate = total as f64 / elapsed.as_secs_f64().max(1e-9);
        eprintln!(
            "checked {total} in {:.3} s ({rate:.0} checks/s): {} up, {} down",
            elapsed.as_secs_f64(),
            self.up,
            self.down
        );
        for (class, n) in &self.errors {
            eprintln!("  error {class}: {n}");
        }
        self.rtts_us.sort_unstable();
        if !self.rtts_us.is_empty() {
            let pct = |p: f64| {
                let i = ((self.rtts_us.len() - 1) as f64 * p).round() as usize;
                self.rtts_us[i] as f64 / 1000.0
            };
            eprintln!(
                "  rtt of answered checks: p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
                pct(0.5),
                pct(0.9),
                pct(0.99),
                pct(1.0)
            );
        }
    }
}
