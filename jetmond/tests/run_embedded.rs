//! `jetmond run` in embedded mode, as a real process: a site goes down and comes back, and the daemon
//! writes exactly the original's notification sequence, keeps its state across a restart, and stops
//! cleanly on SIGTERM.

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use jetmon_testkit::http::TargetServer;
use support::daemon::{notifications, wait_for_notifications as wait_for, DaemonProcess as Daemon, TempDir};

#[test]
fn site_down_then_up_notifies_in_order_and_state_survives_restart() {
    let dir = TempDir::new("run");
    let bind: SocketAddr = "127.0.0.40:0".parse().unwrap();
    let server = TargetServer::start(bind, None).unwrap();
    let addr = server.addr();
    let steady = TargetServer::start("127.0.0.41:0".parse().unwrap(), None).unwrap();
    std::fs::write(
        dir.0.join("sites.txt"),
        format!(
            "# test sites\n10 http://{addr}/status/200\n11 {}\n",
            steady.url("/status/200")
        ),
    )
    .unwrap();
    let config = dir.0.join("jetmond.json");
    std::fs::write(
        &config,
        r#"{"sites_file": "sites.txt", "state_file": "state.json", "notifications_file": "notes.jsonl",
            "min_time_between_rounds_sec": 1, "time_between_checks_sec": 1, "num_of_checks": 2,
            "check_timeout_sec": 3, "stats_update_interval_ms": 1000, "host_name": "test-host", "allow_networks": ["127.0.0.0/8"]}"#,
    )
    .unwrap();
    let notes = dir.0.join("notes.jsonl");

    let daemon = Daemon::start(&config);
    std::thread::sleep(Duration::from_millis(1500));
    assert!(notifications(&notes).is_empty(), "healthy sites change nothing");

    drop(server); // the site goes down: connections are refused
    let n = wait_for(&notes, "the DOWN notification", |n| !n.is_empty());
    assert_eq!(n.len(), 1, "{n:?}");
    assert_eq!(
        (n[0]["blog_id"].as_u64(), n[0]["status_id"].as_u64()),
        (Some(10), Some(0))
    );
    assert_eq!(
        n[0]["monitor_url"].as_str(),
        Some(format!("http://{addr}/status/200").as_str())
    );
    let checks = n[0]["checks"].as_array().unwrap();
    assert_eq!(checks.len(), 2, "one entry per failed local check: {checks:?}");
    for c in checks {
        assert_eq!(
            (c["type"].as_u64(), c["host"].as_str(), c["status"].as_u64()),
            (Some(1), Some("test-host"), Some(0))
        );
    }
    for field in ["last_check", "last_status_change"] {
        assert!(
            n[0][field].as_str().is_some_and(|t| t.ends_with('Z')),
            "{field} is a UTC datetime"
        );
    }

    let _back = TargetServer::start(addr, None).unwrap(); // the site comes back on the same address
    let n = wait_for(&notes, "the RUNNING notification", |n| n.len() >= 2);
    assert_eq!(
        (n[1]["blog_id"].as_u64(), n[1]["status_id"].as_u64()),
        (Some(10), Some(1)),
        "{n:?}"
    );
    assert_eq!(n[1]["checks"].as_array().unwrap().len(), 1);

    assert!(daemon.terminate().success(), "SIGTERM exits 0");
    assert_eq!(
        notifications(&notes).len(),
        2,
        "exactly DOWN then RUNNING, nothing for the steady site"
    );
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.0.join("state.json")).unwrap()).unwrap();
    assert_eq!(state["10"]["status"].as_u64(), Some(1), "{state}");

    // A restart reads the state: the site is RUNNING already, so staying up notifies nothing.
    let daemon = Daemon::start(&config);
    std::thread::sleep(Duration::from_millis(2500));
    assert!(daemon.terminate().success());
    assert_eq!(notifications(&notes).len(), 2);
}

#[test]
fn bad_config_is_rejected_naming_key_and_file() {
    let dir = TempDir::new("badcfg");
    let config = dir.0.join("bad.json");
    std::fs::write(&config, r#"{"NUM_OF_CHECKS": 0}"#).unwrap();
    for args in [vec!["run", "--config"], vec!["config", "check"]] {
        let out = Command::new(env!("CARGO_BIN_EXE_jetmond"))
            .args(&args)
            .arg(&config)
            .output()
            .unwrap();
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("num_of_checks") && stderr.contains("bad.json"),
            "{args:?}: {stderr}"
        );
    }
    let out = Command::new(env!("CARGO_BIN_EXE_jetmond"))
        .args(["config", "check"])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("config/jetmond.json"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn sighup_rereads_the_site_list_and_the_config() {
    let dir = TempDir::new("sighup");
    let steady = TargetServer::start("127.0.0.44:0".parse().unwrap(), None).unwrap();
    let sites = dir.0.join("sites.txt");
    std::fs::write(&sites, format!("1 {}\n", steady.url("/status/200"))).unwrap();
    let config = dir.0.join("jetmond.json");
    let write_config = |num_of_checks: u32| {
        std::fs::write(
            &config,
            format!(
                r#"{{"sites_file": "sites.txt", "state_file": "state.json", "notifications_file": "notes.jsonl",
                    "min_time_between_rounds_sec": 300, "time_between_checks_sec": 1, "num_of_checks": {num_of_checks},
                    "check_timeout_sec": 3, "allow_networks": ["127.0.0.0/8"]}}"#
            ),
        )
        .unwrap();
    };
    write_config(3);
    let notes = dir.0.join("notes.jsonl");
    let daemon = Daemon::start(&config);
    std::thread::sleep(Duration::from_millis(1000));

    // A new, dead site and a lower re-check count: with 300 s rounds only SIGHUP makes them count now. The
    // new site comes first in the list because a round spreads its sites over the interval.
    let dead = jetmon_testkit::http::refused_addr("127.0.0.44".parse().unwrap());
    std::fs::write(&sites, format!("2 http://{dead}/\n1 {}\n", steady.url("/status/200"))).unwrap();
    write_config(1);
    daemon.signal("HUP");
    let n = wait_for(&notes, "blog 2 DOWN after SIGHUP", |n| !n.is_empty());
    assert_eq!(
        (n[0]["blog_id"].as_u64(), n[0]["status_id"].as_u64()),
        (Some(2), Some(0)),
        "{n:?}"
    );
    assert_eq!(
        n[0]["checks"].as_array().map(Vec::len),
        Some(1),
        "num_of_checks 1 from the reloaded config"
    );
    assert!(daemon.terminate().success());
}
