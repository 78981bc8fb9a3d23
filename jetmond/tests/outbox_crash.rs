//! `jetmond run` killed with SIGKILL in the middle of delivering to WPCOM, then restarted: every
//! notification it ever accepted reaches the receiver at least once. Duplicates are allowed (the receiver
//! dedupes by `notification_id`) and counted.

mod support;

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::time::Duration;

use jetmon_testkit::http::refused_addr;
use jetmon_testkit::tls::TestCa;
use serde_json::{json, Value};
use support::daemon::{notifications, wait_for_notifications, DaemonProcess, TempDir};
use support::receiver::{Answer, Receiver};

const SITES: u64 = 12;

/// What identifies one status change on the wire, without the id (the journal has no id).
fn change_key(n: &Value) -> (u64, u64, String) {
    (
        n["blog_id"].as_u64().unwrap_or_default(),
        n["status_id"].as_u64().unwrap_or_default(),
        n["last_status_change"].as_str().unwrap_or_default().to_string(),
    )
}

#[test]
fn sigkill_mid_delivery_then_restart_delivers_every_notification_at_least_once() {
    let dir = TempDir::new("outbox-crash");
    let ca = TestCa::new("outbox crash CA");
    // A slow receiver, so the kill lands while deliveries are in flight and others still wait.
    let receiver = Receiver::start_with(
        "127.0.0.67:0".parse().unwrap(),
        ca.server_config(&["127.0.0.67"]),
        Answer::Slow(Duration::from_millis(300)),
    );
    let ip: IpAddr = "127.0.0.68".parse().unwrap();
    let sites: String = (1..=SITES)
        .map(|blog_id| format!("{blog_id} http://{}/\n", refused_addr(ip)))
        .collect();
    std::fs::write(dir.0.join("sites.txt"), sites).unwrap();
    let config = dir.0.join("jetmond.json");
    let settings = json!({
        "sites_file": "sites.txt", "state_file": "state.json", "notifications_file": "notes.jsonl",
        "outbox_file": "outbox.jsonl", "min_time_between_rounds_sec": 1, "num_of_checks": 1,
        "check_timeout_sec": 2, "host_name": "crash-test", "auth_token": "tok",
        "wpcom_url": receiver.url(), "wpcom_mode": "post", "wpcom_ca_file": ca.write_pem(&dir.0),
        "wpcom_timeout_sec": 5, "outbox_concurrency": 2, "outbox_retry_initial_ms": 100, "outbox_retry_max_sec": 1,
    });
    std::fs::write(&config, settings.to_string()).unwrap();
    let notes = dir.0.join("notes.jsonl");

    let daemon = DaemonProcess::start(&config);
    wait_for_notifications(&notes, "every site DOWN", |n| n.len() as u64 >= SITES);
    receiver.wait_accepted("a few deliveries", Duration::from_secs(30), |a| a.len() >= 3);
    drop(daemon); // SIGKILL: no shutdown, deliveries in flight are cut off.
    let before_restart = receiver.received().len();
    assert!(
        (before_restart as u64) < SITES,
        "the kill must land before everything was delivered ({before_restart} received)"
    );

    let _daemon = DaemonProcess::start(&config);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let journal: HashSet<(u64, u64, String)> = notifications(&notes).iter().map(change_key).collect();
        let delivered: HashSet<(u64, u64, String)> = receiver.accepted().iter().map(change_key).collect();
        let missing: Vec<_> = journal.difference(&delivered).collect();
        if missing.is_empty() && journal.len() as u64 >= SITES {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never delivered: {missing:?}\nlog: {}",
            support::daemon::daemon_log(&config)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut per_id: HashMap<String, usize> = HashMap::new();
    for payload in receiver.received() {
        *per_id
            .entry(
                payload.payload["notification_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
            .or_default() += 1;
        assert_eq!(payload.payload["token"], "tok");
    }
    let duplicates: usize = per_id.values().map(|n| n - 1).sum();
    println!(
        "{} notifications, {} requests, {duplicates} duplicate(s) the receiver can drop by notification_id",
        per_id.len(),
        receiver.received().len()
    );
}
