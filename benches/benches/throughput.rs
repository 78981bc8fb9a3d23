//! `cargo bench -p jetmon-benches`: engine checks/s against nginx beside `wrk -H 'Connection: close'` in the
//! same run (HTTP and HTTPS), and RSS per in-flight check at 10,000 in flight. Prints a Markdown table and
//! writes `target/bench-results.json`. See docs/performance.md.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use jetmon_benches::capacity::{run_capacity, CapacitySpec};
use jetmon_benches::farm::{Farm, FarmSpec};
use jetmon_benches::load::{resolved_threads, run_load, LoadOutcome, LoadSpec};
use jetmon_benches::machine::Machine;
use jetmon_benches::nginx::{Nginx, INSTALL_HINT};
use jetmon_benches::pki::write_server_pki;
use jetmon_benches::report::{results_path, CapacityRow, Report, ThroughputRow};
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
/// Checks held in flight for the memory measurement.
const CAPACITY_CHECKS: usize = 10_000;
/// How long the farm delays each answer: long enough to submit and connect all checks first.
const CAPACITY_DELAY: Duration = Duration::from_millis(3000);
const CAPACITY_CHECK_TIMEOUT: Duration = Duration::from_secs(30);
/// Delay servers in the farm, one per 127.0.0.x, so no single listen backlog takes the whole burst.
const CAPACITY_SERVERS: usize = 4;

fn main() -> ExitCode {
    // `cargo test --all-targets` runs bench targets without `--bench`; a smoke exit keeps tests fast.
    if !std::env::args().any(|arg| arg == "--bench") {
        println!("throughput: run with `cargo bench -p jetmon-benches`");
        return ExitCode::SUCCESS;
    }
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
    for tls in [false, true] {
        let scheme = if tls { "https" } else { "http" };
        eprintln!("capacity {scheme}: {CAPACITY_CHECKS} checks against {CAPACITY_DELAY:?} delays…");
        match capacity(scratch.path(), tls) {
            Ok(row) => report.capacity.push(row),
            Err(err) => {
                failed = true;
                report.skipped.push(format!("capacity {scheme} failed: {err}"));
            }
        }
    }
    if !Nginx::is_installed() || !wrk::is_installed() {
        eprintln!("{INSTALL_HINT}");
        report.skipped.push(format!("throughput against nginx: {INSTALL_HINT}"));
    } else if let Err(err) = throughput(scratch.path(), &mut report) {
        failed = true;
        report.skipped.push(format!("throughput failed: {err}"));
    }
    println!("\n{}", report.to_markdown());
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

fn capacity(dir: &Path, tls: bool) -> Result<CapacityRow, BenchError> {
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
            checks: CAPACITY_CHECKS,
            check_timeout: CAPACITY_CHECK_TIMEOUT,
            threads: 0,
            ca_file,
        },
    )?;
    Ok(CapacityRow {
        scheme: if tls { "https" } else { "http" },
        outcome,
    })
}

fn throughput(dir: &Path, report: &mut Report) -> Result<(), BenchError> {
    let pki = write_server_pki(dir, &["127.0.0.1"])?;
    let nginx = Nginx::start(dir, Some(&pki.server))?;
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
