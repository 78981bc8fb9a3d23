//! `cargo bench -p jetmon-benches`: in one run, engine checks/s against nginx beside
//! `wrk -H 'Connection: close'` (HTTP and HTTPS); the engine beside its peers on the same URL lists (curl
//! `--parallel`, a tokio + reqwest checker, blackbox_exporter, httpx where installable); the cost curve
//! (checks/s and RSS at 1k, 5k, 10k and 15k in flight against delay targets, HTTPS at 10k); and a DNS-heavy
//! mix against IP literals. Prints Markdown tables and writes `target/bench-results.json`. See
//! docs/performance.md.
//!
//! `JETMON_BENCH_PARTS=capacity,throughput,peers,dns` (any subset, comma-separated) runs only those parts,
//! e.g. to profile one of them.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use jetmon_benches::capacity::{run_capacity, CapacitySpec};
use jetmon_benches::dns_mix::{self, run_mix};
use jetmon_benches::farm::{Farm, FarmSpec};
use jetmon_benches::load::{resolved_threads, run_load, LoadOutcome, LoadSpec};
use jetmon_benches::machine::Machine;
use jetmon_benches::nginx::{Nginx, INSTALL_HINT};
use jetmon_benches::peers::{self, Blackbox, PeerOutcome, ReqcheckSpec};
use jetmon_benches::pki::{write_server_pki, ServerPki};
use jetmon_benches::report::{results_path, CapacityRow, DnsRow, PeerRow, Report, ThroughputRow};
use jetmon_benches::scratch::ScratchDir;
use jetmon_benches::wrk::{self, WrkSpec};
use jetmon_benches::BenchError;

/// Checks per plain-HTTP throughput run.
const HTTP_CHECKS: usize = 50_000;
/// Checks per HTTPS run: a full handshake each, several times slower, so fewer keep the run short.
const HTTPS_CHECKS: usize = 20_000;
/// `max_in_flight` settings measured, with default threads.
const CONCURRENCIES: [usize; 2] = [256, 1024];
/// One engine thread beside `wrk -t1`: the like-for-like row.
const SINGLE_THREAD_CONCURRENCY: usize = 256;
/// The cost curve: plain-HTTP checks held in flight at once, each a separate run.
const CURVE_CHECKS: [usize; 4] = [1_000, 5_000, 10_000, 15_000];
/// HTTPS checks held in flight for the memory measurement.
const HTTPS_CAPACITY_CHECKS: usize = 10_000;
/// How long the farm delays each answer: long enough to submit and connect all checks first.
const CAPACITY_DELAY: Duration = Duration::from_millis(3000);
const CAPACITY_CHECK_TIMEOUT: Duration = Duration::from_secs(30);
/// Delay servers in the farm, one per 127.0.0.x, so no single listen backlog takes the whole burst.
const CAPACITY_SERVERS: usize = 4;
/// Peers: requests at once, for every client (the engine's `max_in_flight`, curl's `--parallel-max`, …).
const PEER_CONCURRENCY: usize = 256;
/// Peers: URLs on the plain-HTTP list and on the HTTPS list (the same nginx URL repeated).
const PEER_HTTP_CHECKS: usize = 20_000;
const PEER_HTTPS_CHECKS: usize = 5_000;
/// blackbox_exporter probes per scheme: each is a Go HTTP client, a probe registry and a metrics page.
const BLACKBOX_HTTP_PROBES: usize = 4_000;
const BLACKBOX_HTTPS_PROBES: usize = 2_000;
/// DNS mix: checks per run, and the distinct names of the two name-based runs.
const DNS_CHECKS: usize = 10_000;
const DNS_NAME_COUNTS: [usize; 2] = [2_000, 10_000];
const DNS_CONCURRENCY: usize = 256;

fn main() -> ExitCode {
    // `cargo test --all-targets` runs bench targets without `--bench`; a smoke exit keeps tests fast.
    if !std::env::args().any(|arg| arg == "--bench") {
        println!("throughput: run with `cargo bench -p jetmon-benches`");
        return ExitCode::SUCCESS;
    }
    let parts = std::env::var("JETMON_BENCH_PARTS").unwrap_or_default();
    let wanted = |part: &str| parts.is_empty() || parts.split(',').any(|p| p.trim() == part);
    let mut report = Report::new(Machine::detect());
    let mut failed = false;
    let scratch = match ScratchDir::create("throughput") {
        Ok(scratch) => scratch,
        Err(err) => {
            eprintln!("{err}");
            return ExitCode::FAILURE;
        }
    };
    // Memory first, while the heap is fresh: later runs would leave freed pages the allocator reuses.
    if wanted("capacity") {
        let points = CURVE_CHECKS
            .iter()
            .map(|&checks| (checks, false))
            .chain([(HTTPS_CAPACITY_CHECKS, true)]);
        for (checks, tls) in points {
            let scheme = if tls { "https" } else { "http" };
            eprintln!("capacity {scheme}: {checks} checks against {CAPACITY_DELAY:?} delays…");
            match capacity(scratch.path(), checks, tls) {
                Ok(row) => report.capacity.push(row),
                Err(err) => {
                    failed = true;
                    report.skipped.push(format!("capacity {scheme} {checks} failed: {err}"));
                }
            }
        }
    }
    let needs_nginx = wanted("throughput") || wanted("peers") || wanted("dns");
    if needs_nginx && !Nginx::is_installed() {
        eprintln!("{INSTALL_HINT}");
        report
            .skipped
            .push(format!("throughput, peers and DNS mix against nginx: {INSTALL_HINT}"));
    } else if needs_nginx {
        match start_nginx(scratch.path()) {
            Ok((nginx, pki)) => {
                if wanted("throughput") {
                    if !wrk::is_installed() {
                        eprintln!("{INSTALL_HINT}");
                        report.skipped.push(format!("engine vs wrk: {INSTALL_HINT}"));
                    } else if let Err(err) = throughput(&nginx, &pki, &mut report) {
                        failed = true;
                        report.skipped.push(format!("throughput failed: {err}"));
                    }
                }
                if wanted("peers") {
                    failed |= peer_runs(scratch.path(), &nginx, &pki, &mut report);
                }
                if wanted("dns") {
                    if let Err(err) = dns(&nginx, &mut report) {
                        failed = true;
                        report.skipped.push(format!("DNS mix failed: {err}"));
                    }
                }
            }
            Err(err) => {
                failed = true;
                report.skipped.push(format!("nginx failed to start: {err}"));
            }
        }
    }
    println!("\n{}", report.to_markdown());
    for tool in &report.tools {
        println!("tool: {tool}");
    }
    for command in &report.commands {
        println!("ran: {command}");
    }
    let path = results_path();
    match report.write_json(&path) {
        Ok(()) => println!("wrote {}", path.display()),
        Err(err) => {
            eprintln!("{err}");
            failed = true;
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn capacity(dir: &Path, checks: usize, tls: bool) -> Result<CapacityRow, BenchError> {
    let ca_file = tls.then(|| dir.join("farm-ca.pem"));
    let farm = Farm::spawn(
        Path::new(env!("CARGO_BIN_EXE_farm")),
        &FarmSpec {
            servers: CAPACITY_SERVERS,
            delay: CAPACITY_DELAY,
            tls_ca_file: ca_file.clone(),
        },
    )?;
    let outcome = run_capacity(
        farm.urls(),
        &CapacitySpec {
            checks,
            check_timeout: CAPACITY_CHECK_TIMEOUT,
            threads: 0,
            ca_file,
        },
    )?;
    Ok(CapacityRow {
        scheme: if tls { "https" } else { "http" },
        outcome,
        delay: CAPACITY_DELAY,
    })
}

/// One nginx for every part: HTTP and HTTPS on 127.0.0.1, plain HTTP also on the DNS mix's addresses.
fn start_nginx(dir: &Path) -> Result<(Nginx, ServerPki), BenchError> {
    let pki = write_server_pki(dir, &["127.0.0.1"])?;
    let nginx = Nginx::start_with_hosts(dir, Some(&pki.server), &dns_mix::target_hosts())?;
    Ok((nginx, pki))
}

fn throughput(nginx: &Nginx, pki: &ServerPki, report: &mut Report) -> Result<(), BenchError> {
    let wrk_spec = WrkSpec::default();
    let targets = [
        ("http", nginx.http_url(), HTTP_CHECKS, None),
        (
            "https",
            nginx.https_url().unwrap_or_default(),
            HTTPS_CHECKS,
            Some(pki.ca_file.clone()),
        ),
    ];
    for (scheme, url, checks, ca_file) in targets {
        eprintln!("{scheme}: {} …", wrk_spec.command_line(&url));
        report.commands.push(wrk_spec.command_line(&url));
        let wrk = wrk::run(&wrk_spec, &url)?;
        report.throughput.push(ThroughputRow {
            scheme,
            client: format!("wrk -t{} -c{}", wrk_spec.threads, wrk_spec.connections),
            per_sec: wrk.requests_per_sec,
            wrk_per_sec: None,
            note: wrk
                .socket_errors
                .map(|e| format!("socket errors: {e}"))
                .unwrap_or_default(),
        });
        let runs = CONCURRENCIES
            .iter()
            .map(|&c| (c, 0))
            .chain([(SINGLE_THREAD_CONCURRENCY, 1)]);
        for (concurrency, threads) in runs {
            let spec = LoadSpec {
                url: url.clone(),
                checks,
                max_in_flight: concurrency,
                threads,
                ca_file: ca_file.clone(),
            };
            eprintln!(
                "{scheme}: engine {checks} checks, c={concurrency} t={} …",
                resolved_threads(threads)
            );
            let outcome = run_load(&spec)?;
            report.throughput.push(ThroughputRow {
                scheme,
                client: format!("engine c={concurrency} t={}", outcome.threads),
                per_sec: outcome.checks_per_sec(),
                wrk_per_sec: Some(wrk.requests_per_sec),
                note: load_note(&outcome),
            });
        }
    }
    Ok(())
}

fn load_note(outcome: &LoadOutcome) -> String {
    let mut note = format!("{} checks in {:.2} s", outcome.checks, outcome.elapsed.as_secs_f64());
    for (class, count) in &outcome.failures {
        note.push_str(&format!(", {count} {class}"));
    }
    note
}

/// The engine, curl, reqcheck, blackbox_exporter and httpx on the same URL lists. Returns whether a part
/// that should have run failed.
fn peer_runs(dir: &Path, nginx: &Nginx, pki: &ServerPki, report: &mut Report) -> bool {
    let mut failed = false;
    let curl = peers::runs(peers::CURL_BINARY);
    let blackbox = Blackbox::is_installed();
    if curl {
        report.tools.push(tool_version(peers::CURL_BINARY, "--version"));
    }
    if blackbox {
        report.tools.push(Blackbox::version());
    }
    let targets = [
        ("http", nginx.http_url(), PEER_HTTP_CHECKS, BLACKBOX_HTTP_PROBES, None),
        (
            "https",
            nginx.https_url().unwrap_or_default(),
            PEER_HTTPS_CHECKS,
            BLACKBOX_HTTPS_PROBES,
            Some(pki.ca_file.clone()),
        ),
    ];
    for (scheme, url, checks, probes, ca_file) in targets {
        let urls = vec![url.clone(); checks];
        let c = PEER_CONCURRENCY;
        // The scenario's 1.0: the engine on this list.
        eprintln!("peers {scheme}: engine {checks} checks, c={c} …");
        let spec = LoadSpec {
            url: url.clone(),
            checks,
            max_in_flight: c,
            threads: 0,
            ca_file: ca_file.clone(),
        };
        let engine = match run_load(&spec) {
            Ok(outcome) => outcome,
            Err(err) => {
                failed = true;
                report.skipped.push(format!("peers {scheme}: engine failed: {err}"));
                continue;
            }
        };
        let engine_rate = engine.checks_per_sec();
        let row = |client: String, checks: usize, outcome: Option<PeerOutcome>, note: String| PeerRow {
            scheme,
            client,
            checks,
            ok: outcome.as_ref().map_or(0, |o| o.ok),
            per_sec: outcome.as_ref().map(PeerOutcome::per_sec),
            engine_per_sec: Some(engine_rate),
            note,
        };
        let engine_row = row(
            format!("engine c={c} t={}", engine.threads),
            checks,
            Some(PeerOutcome {
                checks: engine.checks,
                ok: engine.up,
                elapsed: engine.elapsed,
                failures: String::new(),
            }),
            load_note(&engine),
        );
        report.peers.push(engine_row);
        if curl {
            eprintln!("peers {scheme}: curl --parallel --parallel-max {c}, {checks} URLs …");
            match peers::run_curl(dir, scheme, &urls, c, ca_file.as_deref()) {
                Ok((outcome, line)) => {
                    report.commands.push(line);
                    let note = peer_note(&outcome);
                    report
                        .peers
                        .push(row(format!("curl --parallel-max {c}"), checks, Some(outcome), note));
                }
                Err(err) => {
                    failed = true;
                    report.peers.push(row(
                        format!("curl --parallel-max {c}"),
                        checks,
                        None,
                        format!("failed: {err}"),
                    ));
                }
            }
        } else {
            report.peers.push(row(
                "curl".to_string(),
                checks,
                None,
                "curl not installed: apt-get install -y curl".to_string(),
            ));
        }
        eprintln!("peers {scheme}: reqcheck (tokio + reqwest) c={c}, {checks} URLs …");
        let reqcheck = Path::new(env!("CARGO_BIN_EXE_reqcheck"));
        let spec = ReqcheckSpec {
            concurrency: c,
            ca_file: ca_file.clone(),
            ..ReqcheckSpec::default()
        };
        match peers::run_reqcheck(reqcheck, dir, scheme, &urls, &spec) {
            Ok((outcome, line)) => {
                report.commands.push(line);
                let note = peer_note(&outcome);
                report
                    .peers
                    .push(row(format!("tokio+reqwest c={c}"), checks, Some(outcome), note));
            }
            Err(err) => {
                failed = true;
                report.peers.push(row(
                    format!("tokio+reqwest c={c}"),
                    checks,
                    None,
                    format!("failed: {err}"),
                ));
            }
        }
        if blackbox {
            eprintln!("peers {scheme}: blackbox_exporter, {probes} probes at {c} concurrent /probe requests …");
            match blackbox_run(dir, scheme, &url, probes, ca_file.as_deref(), reqcheck) {
                Ok((outcome, line)) => {
                    report.commands.push(line);
                    let note = format!("{} probes via /probe; {}", probes, peer_note(&outcome));
                    report
                        .peers
                        .push(row(format!("blackbox_exporter c={c}"), probes, Some(outcome), note));
                }
                Err(err) => {
                    failed = true;
                    report.peers.push(row(
                        "blackbox_exporter".to_string(),
                        probes,
                        None,
                        format!("failed: {err}"),
                    ));
                }
            }
        } else {
            report.peers.push(row(
                "blackbox_exporter".to_string(),
                probes,
                None,
                peers::BLACKBOX_HINT.to_string(),
            ));
        }
        // httpx: a row either way, so the table says what happened to it.
        match peers::projectdiscovery_httpx() {
            Some(_) => report.peers.push(row(
                "ProjectDiscovery httpx".to_string(),
                checks,
                None,
                "found on PATH but not wired into the bench".to_string(),
            )),
            None => report.peers.push(row(
                "ProjectDiscovery httpx".to_string(),
                checks,
                None,
                peers::HTTPX_HINT.to_string(),
            )),
        }
    }
    failed
}

/// Starts blackbox_exporter for this scheme and drives `probes` probes of `url` through `/probe` with
/// reqcheck (keep-alive to the exporter; a probe is ok when its page says `probe_success 1`).
fn blackbox_run(
    dir: &Path,
    scheme: &str,
    url: &str,
    probes: usize,
    ca_file: Option<&Path>,
    reqcheck: &Path,
) -> Result<(PeerOutcome, String), BenchError> {
    let exporter_dir = dir.join(format!("blackbox-{scheme}"));
    std::fs::create_dir_all(&exporter_dir).map_err(|source| BenchError::Io {
        what: format!("create {}", exporter_dir.display()),
        source,
    })?;
    let exporter = Blackbox::start(&exporter_dir, ca_file)?;
    let urls = vec![exporter.probe_url(url); probes];
    let spec = ReqcheckSpec {
        concurrency: PEER_CONCURRENCY,
        ca_file: None,
        keep_alive: true,
        get: true,
        expect_body: Some("probe_success 1".to_string()),
    };
    let (outcome, line) = peers::run_reqcheck(reqcheck, dir, &format!("blackbox-{scheme}"), &urls, &spec)?;
    drop(exporter);
    Ok((outcome, line))
}

fn peer_note(outcome: &PeerOutcome) -> String {
    let mut note = format!(
        "{}/{} ok in {:.2} s",
        outcome.ok,
        outcome.checks,
        outcome.elapsed.as_secs_f64()
    );
    if !outcome.failures.is_empty() {
        note.push_str(&format!(", {}", outcome.failures));
    }
    note
}

fn tool_version(program: &str, flag: &str) -> String {
    std::process::Command::new(program)
        .arg(flag)
        .output()
        .ok()
        .and_then(|out| String::from_utf8_lossy(&out.stdout).lines().next().map(str::to_string))
        .unwrap_or_else(|| program.to_string())
}

/// The same checks by IP literal, then by names through a local DNS server.
fn dns(nginx: &Nginx, report: &mut Report) -> Result<(), BenchError> {
    let port = nginx.http_port();
    let hosts = dns_mix::target_hosts();
    eprintln!("dns: {DNS_CHECKS} checks by IP literal …");
    let ip = run_mix(&dns_mix::ip_urls(DNS_CHECKS, &hosts, port), None, DNS_CONCURRENCY)?;
    let ip_rate = ip.load.checks_per_sec();
    report.dns.push(DnsRow {
        mix: format!("IP literals ({} addresses)", hosts.len()),
        checks: ip.load.checks,
        names: 0,
        queries: 0,
        per_sec: ip_rate,
        ip_per_sec: Some(ip_rate),
        note: load_note(&ip.load),
    });
    for names in DNS_NAME_COUNTS {
        eprintln!("dns: {DNS_CHECKS} checks over {names} names …");
        let mix = run_mix(
            &dns_mix::name_urls(DNS_CHECKS, names, port),
            Some(names),
            DNS_CONCURRENCY,
        )?;
        report.dns.push(DnsRow {
            mix: format!("names via local DNS ({} checks per name)", DNS_CHECKS / names),
            checks: mix.load.checks,
            names,
            queries: mix.queries,
            per_sec: mix.load.checks_per_sec(),
            ip_per_sec: Some(ip_rate),
            note: load_note(&mix.load),
        });
    }
    Ok(())
}
