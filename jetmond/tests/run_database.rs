//! `jetmond db init` and `jetmond run` against the real MariaDB: only this host's active sites in its bucket
//! range are checked, a failing site is declared DOWN and the status is written back to the table.

mod support;

use std::time::{Duration, Instant};

use jetmon_testkit::http::{refused_addr, TargetServer};
use mysql::prelude::Queryable;
use support::daemon::{notifications, wait_for_notifications, DaemonProcess, TempDir};
use support::db::{jetmond_db_init, ok, TestDb};

#[test]
fn database_mode_checks_its_buckets_and_writes_statuses_back() {
    let Some(db) = TestDb::create("run") else { return };
    let dir = TempDir::new("rundb");
    let config = dir.0.join("jetmond.json");
    db.write_config(
        &config,
        serde_json::json!({
            "BUCKET_NO_MIN": 0, "BUCKET_NO_MAX": 10, "BATCH_SIZE": 4, "DB_UPDATES_ENABLE": true,
            "NUM_OF_CHECKS": 2, "TIME_BETWEEN_CHECKS_SEC": 1, "MIN_TIME_BETWEEN_ROUNDS_SEC": 1,
            "check_timeout_sec": 3, "notifications_file": "notes.jsonl", "host_name": "db-test", "allow_networks": ["127.0.0.0/8"],
        }),
    );

    jetmond_db_init(&config);
    // Idempotent: a second init over the existing schema succeeds too.
    jetmond_db_init(&config);

    let up = TargetServer::start("127.0.0.42:0".parse().unwrap(), None).unwrap();
    let dead = format!("http://{}/", refused_addr("127.0.0.42".parse().unwrap()));
    let mut conn = db.conn();
    let rows = [
        (1u64, 3u16, up.url("/status/200"), 1u8), // in range, up
        (2, 3, dead.clone(), 1),                  // in range, down
        (3, 100, dead.clone(), 1),                // another host's bucket
        (4, 5, dead.clone(), 0),                  // inactive
    ];
    for (blog_id, bucket, url, active) in &rows {
        ok(
            conn.exec_drop(
                "INSERT INTO jetpack_monitor_subscription (blog_id, bucket_no, monitor_url, monitor_active) \
                 VALUES (?, ?, ?, ?)",
                (blog_id, bucket, url, active),
            ),
            "seeding sites",
        );
    }

    let notes = dir.0.join("notes.jsonl");
    let daemon = DaemonProcess::start(&config);
    let n = wait_for_notifications(&notes, "blog 2 DOWN", |n| !n.is_empty());
    assert_eq!(
        (n[0]["blog_id"].as_u64(), n[0]["status_id"].as_u64()),
        (Some(2), Some(0)),
        "{n:?}"
    );

    // Statuses are written back within a second or so.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let row: Option<(u8, Option<String>)> = ok(
            conn.query_first("SELECT site_status, CAST(last_status_change AS CHAR) FROM jetpack_monitor_subscription WHERE blog_id = 2"),
            "reading blog 2",
        );
        if let Some((0, Some(_))) = row {
            break;
        }
        assert!(Instant::now() < deadline, "blog 2 not written back as DOWN: {row:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(2500)); // a few more rounds
    assert!(daemon.terminate().success());
    let n = notifications(&notes);
    assert_eq!(
        n.len(),
        1,
        "only blog 2 changed: sites outside the range or inactive are never checked: {n:?}"
    );
    let untouched: Vec<(u64, u8)> = ok(
        conn.query(
            "SELECT blog_id, site_status FROM jetpack_monitor_subscription WHERE blog_id IN (1, 3, 4) ORDER BY blog_id",
        ),
        "reading others",
    );
    assert_eq!(untouched, vec![(1, 1), (3, 1), (4, 1)]);
}
