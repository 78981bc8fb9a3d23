//! Soak: one `jetmond run --once` round over 20,000 sites in MariaDB against local targets. Ignored by
//! default (it takes about 15 s and loads the machine); run it with
//! `cargo test -p jetmond --release --test soak_database -- --ignored --nocapture` for the figures.

mod support;

use std::process::{Command, Stdio};
use std::time::Instant;

use jetmon_testkit::http::TargetServer;
use mysql::prelude::Queryable;
use support::daemon::TempDir;
use support::db::{jetmond_db_init, ok, TestDb};

const SITES: u64 = 20_000;
const ROUND_SECONDS: u64 = 10;

#[test]
#[ignore = "soak: 20,000 checks; run explicitly for the figures"]
fn one_round_over_20000_database_sites() {
    let Some(db) = TestDb::create("soak") else { return };
    let servers: Vec<TargetServer> = (43..47)
        .map(|i| TargetServer::start(format!("127.0.0.{i}:0").parse().unwrap(), None).unwrap())
        .collect();
    let dir = TempDir::new("soak");
    let config = dir.0.join("jetmond.json");
    db.write_config(
        &config,
        serde_json::json!({
            "min_time_between_rounds_sec": ROUND_SECONDS, "notifications_file": "notes.jsonl",
            "log_format": "json", "stats_update_interval_ms": 2000, "allow_networks": ["127.0.0.0/8"],
        }),
    );
    jetmond_db_init(&config);
    let mut conn = db.conn();
    for chunk in (0..SITES).collect::<Vec<_>>().chunks(1000) {
        let values: Vec<String> = chunk
            .iter()
            .map(|i| {
                format!(
                    "({i}, {}, '{}')",
                    i % 512,
                    servers[*i as usize % servers.len()].url(&format!("/status/200?site={i}"))
                )
            })
            .collect();
        ok(
            conn.query_drop(format!(
                "INSERT INTO jetpack_monitor_subscription (blog_id, bucket_no, monitor_url) VALUES {}",
                values.join(",")
            )),
            "seeding",
        );
    }
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_jetmond"))
        .args(["run", "--once", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .output()
        .unwrap();
    let elapsed = started.elapsed();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains(&format!("results: {SITES}")),
        "every site checked once: {log}"
    );
    assert!(log.contains("down: 0"), "no local target failed: {log}");
    let accepted: u64 = servers.iter().map(|s| s.connections()).sum();
    println!(
        "soak: {SITES} sites over a {ROUND_SECONDS} s round (spread over 80%): finished in {:.2} s, {:.0} checks/s \
         while spreading; {accepted} connections accepted by the targets",
        elapsed.as_secs_f64(),
        SITES as f64 / (ROUND_SECONDS as f64 * 0.8)
    );
}
