//! Three, then two, then three `jetmond run` processes sharing 512 buckets through leases in the real
//! MariaDB: even shares, a SIGKILLed host's buckets taken over within the lease time, a newcomer given its
//! share, a database restart survived, and every site still checked.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use jetmon_testkit::http::TargetServer;
use mysql::prelude::Queryable;
use support::daemon::{DaemonProcess, TempDir};
use support::db::{ok, StoppedServer, TestDb, SERVER};

const SITES: u64 = 40;
const LEASE_TTL_SEC: u64 = 3;

fn write_config(dir: &Path, db: &TestDb, host: &str, ops_listen: String) -> std::path::PathBuf {
    let opts = mysql::Opts::from_url(&db.url).expect("test URL parses");
    let path = dir.join(format!("{host}.json"));
    std::fs::write(
        &path,
        serde_json::json!({
            "database": {
                "host": opts.get_ip_or_hostname(), "port": opts.get_tcp_port(),
                "user": opts.get_user().unwrap_or(""), "password": opts.get_pass().unwrap_or(""), "name": db.name,
            },
            "bucket_leases": true, "lease_ttl_sec": LEASE_TTL_SEC, "lease_heartbeat_sec": 1,
            "min_time_between_rounds_sec": 1, "check_timeout_sec": 2, "host_name": host,
            "notifications_file": format!("{host}-notes.jsonl"), "outbox_file": format!("{host}-outbox.jsonl"),
            "allow_networks": ["127.0.0.0/8"], "ops_listen": ops_listen,
        })
        .to_string(),
    )
    .unwrap();
    // Each daemon logs beside its own config file.
    let sub = dir.join(host);
    std::fs::create_dir_all(&sub).unwrap();
    let moved = sub.join("jetmond.json");
    std::fs::rename(&path, &moved).unwrap();
    moved
}

/// Live leases per host, or `None` while the database cannot be reached (a fresh connection each time, so
/// a restarted server is simply reconnected to).
fn shares(db: &TestDb) -> Option<BTreeMap<String, usize>> {
    let mut conn = support::db::connect(&db.url).ok()?;
    let rows: Vec<(String, usize)> = conn
        .query("SELECT owner, COUNT(*) FROM jetmon_bucket_lease WHERE owner IS NOT NULL AND expires_at > NOW(3) GROUP BY owner")
        .ok()?;
    Some(rows.into_iter().collect())
}

fn wait_for_shares(db: &TestDb, what: &str, expected: &[(&str, usize)]) {
    let expected: BTreeMap<String, usize> = expected.iter().map(|(h, n)| (h.to_string(), *n)).collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = shares(db);
        if got.as_ref() == Some(&expected) {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: expected {expected:?}, got {got:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The text of `GET /metrics` from an ops endpoint (a published snapshot is at most 250 ms old).
fn metrics(addr: std::net::SocketAddr) -> String {
    use std::io::{Read, Write};
    std::thread::sleep(Duration::from_millis(600));
    let mut stream = std::net::TcpStream::connect(addr).expect("ops endpoint answers");
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: ops\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    let _ = stream.read_to_string(&mut text);
    text
}

/// Every site was requested among the target's most recent requests (the rounds run every second).
fn every_site_checked_lately(target: &TargetServer) {
    std::thread::sleep(Duration::from_secs(3));
    let recent = target.requests();
    let recent = &recent[recent.len().saturating_sub(SITES as usize * 3)..];
    for i in 0..SITES {
        let path = format!("/status/200?site={i}");
        assert!(
            recent.iter().any(|r| r.path == path),
            "site {i} was not checked in the last rounds"
        );
    }
}

#[test]
fn hosts_share_buckets_take_over_from_the_dead_and_rebalance() {
    let _exclusive = SERVER.write().unwrap_or_else(std::sync::PoisonError::into_inner); // it restarts MariaDB
    let Some(db) = TestDb::create("fleet") else { return };
    let dir = TempDir::new("fleet");
    let target = TargetServer::start("127.0.0.45:0".parse().unwrap(), None).unwrap();
    // host-a serves its ops endpoint, to read its lease metric.
    let ops_addr = std::net::TcpListener::bind("127.0.0.46:0")
        .and_then(|l| l.local_addr())
        .unwrap();
    let configs: Vec<_> = ["host-a", "host-b", "host-c", "host-d"]
        .iter()
        .map(|h| {
            write_config(
                &dir.0,
                &db,
                h,
                if *h == "host-a" {
                    ops_addr.to_string()
                } else {
                    String::new()
                },
            )
        })
        .collect();
    let init = Command::new(env!("CARGO_BIN_EXE_jetmond"))
        .args(["db", "init", "--config"])
        .arg(&configs[0])
        .output()
        .unwrap();
    assert!(init.status.success(), "{}", String::from_utf8_lossy(&init.stderr));
    let mut conn = db.conn();
    for i in 0..SITES {
        // Spread over the whole bucket space so every host gets some.
        let bucket = (i * 512 / SITES) as u16;
        ok(
            conn.exec_drop(
                "INSERT INTO jetpack_monitor_subscription (blog_id, bucket_no, monitor_url) VALUES (?, ?, ?)",
                (i, bucket, target.url(&format!("/status/200?site={i}"))),
            ),
            "seeding",
        );
    }

    let a = DaemonProcess::start(&configs[0]);
    let b = DaemonProcess::start(&configs[1]);
    let c = DaemonProcess::start(&configs[2]);
    wait_for_shares(
        &db,
        "three hosts share evenly",
        &[("host-a", 171), ("host-b", 171), ("host-c", 170)],
    );
    every_site_checked_lately(&target);
    assert!(
        metrics(ops_addr).lines().any(|l| l == "jetmond_bucket_leases_held 171"),
        "host-a's /metrics shows its share:\n{}",
        metrics(ops_addr)
    );

    drop(c); // SIGKILL: no clean release, its leases must expire
    let killed_at = Instant::now();
    wait_for_shares(
        &db,
        "the dead host's buckets are taken over",
        &[("host-a", 256), ("host-b", 256)],
    );
    assert!(
        killed_at.elapsed() < Duration::from_secs(LEASE_TTL_SEC * 4 + 5),
        "takeover took {:?} with a {LEASE_TTL_SEC} s lease",
        killed_at.elapsed()
    );
    every_site_checked_lately(&target);

    let d = DaemonProcess::start(&configs[3]);
    wait_for_shares(
        &db,
        "a newcomer gets its share",
        &[("host-a", 171), ("host-b", 171), ("host-d", 170)],
    );

    // The database goes away for a moment and comes back: the hosts keep checking and keep their shares.
    {
        let (server_url, _) = support::db::server_url();
        let mut stopped = StoppedServer::stop(&server_url);
        std::thread::sleep(Duration::from_secs(1));
        assert!(stopped.start_and_wait(), "MariaDB came back");
    }
    wait_for_shares(
        &db,
        "shares after the restart",
        &[("host-a", 171), ("host-b", 171), ("host-d", 170)],
    );
    every_site_checked_lately(&target);

    // A clean stop gives the leases up at once.
    assert!(d.terminate().success());
    wait_for_shares(&db, "a clean leave", &[("host-a", 256), ("host-b", 256)]);
    let status = Command::new(env!("CARGO_BIN_EXE_jetmond"))
        .args(["fleet", "status", "--config"])
        .arg(&configs[0])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(
        status.status.success() && text.contains("host-a") && text.contains("256 bucket(s)"),
        "{text}"
    );
    assert!(a.terminate().success() && b.terminate().success());
}
