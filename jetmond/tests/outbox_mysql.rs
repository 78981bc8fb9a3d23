//! The database outbox (`jetmon_notification_outbox`) against the real MariaDB, each test in a database of
//! its own (see `support::db`): its bookkeeping, host ownership, and delivery through an outage.

mod support;

use std::sync::Arc;
use std::time::Duration;

use jetmon_testkit::tls::TestCa;
use jetmond::config::WpcomMode;
use jetmond::daemon::notify::Notifier;
use jetmond::outbox::{
    Backoff, DeliverySettings, EntryState, MysqlOutbox, OutboxError, OutboxNotifier, OutboxStore, WpcomClient,
    WpcomSettings,
};
use jetmond::status::{Notification, SiteStatus, UnixMillis};
use mysql::prelude::Queryable;
use support::daemon::TempDir;
use support::db::{ok, shared_server, TestDb, ALL_BUCKETS};
use support::receiver::Receiver;

fn note(blog_id: u64, change_ms: u64) -> Notification {
    Notification {
        blog_id,
        monitor_url: format!("https://site-{blog_id}.example"),
        status_id: SiteStatus::Down,
        last_check: UnixMillis::from_millis(change_ms),
        last_status_change: UnixMillis::from_millis(change_ms),
        checks: vec![],
    }
}

fn outbox(db: &TestDb, owner: Option<&str>) -> MysqlOutbox {
    ok(
        MysqlOutbox::from_url(&db.url, owner.map(str::to_owned)),
        "opening the outbox",
    )
}

fn seqs(outbox: &mut MysqlOutbox, state: EntryState) -> Vec<u64> {
    ok(outbox.entries(state), "listing").iter().map(|e| e.seq).collect()
}

const NOW: UnixMillis = UnixMillis::from_millis(1_764_000_000_000);

#[test]
fn table_keeps_pending_failed_dead_and_replayed_entries_per_host() {
    let _server = shared_server();
    let Some(db) = TestDb::create("outbox_rows") else {
        return;
    };
    db.initialised_store(ALL_BUCKETS, 32, false, false);
    let mut host_a = outbox(&db, Some("host-a"));
    let mut host_b = outbox(&db, Some("host-b"));
    let first = ok(host_a.append(&note(1, 1_000), NOW), "append");
    let second = ok(host_a.append(&note(1, 2_000), NOW), "append");
    let third = ok(host_a.append(&note(2, 3_000), NOW), "append");
    ok(host_b.append(&note(3, 4_000), NOW), "append");
    assert!(
        first.seq < second.seq && second.seq < third.seq,
        "ids grow in acceptance order"
    );
    assert_eq!(
        seqs(&mut host_a, EntryState::Pending),
        [first.seq, second.seq, third.seq]
    );
    assert_eq!(
        seqs(&mut host_b, EntryState::Pending).len(),
        1,
        "each host sees its own rows"
    );

    ok(
        host_a.failed(first.seq, 2, UnixMillis::from_millis(NOW.as_millis() + 9), "HTTP 500"),
        "failed",
    );
    ok(host_a.delivered(second.seq), "delivered");
    ok(host_a.dead_letter(third.seq, 20, "HTTP 500"), "dead");
    let pending = ok(host_a.entries(EntryState::Pending), "pending");
    assert_eq!(pending.len(), 1);
    assert_eq!(
        pending[0].notification,
        note(1, 1_000),
        "the notification survives the round trip"
    );
    assert_eq!(pending[0].notification_id, first.notification_id);
    assert_eq!(
        (pending[0].attempts, pending[0].last_error.as_deref()),
        (2, Some("HTTP 500"))
    );
    assert_eq!(seqs(&mut host_a, EntryState::Dead), [third.seq]);

    // The CLI sees every host's rows and replays by id.
    let mut cli = outbox(&db, None);
    assert_eq!(seqs(&mut cli, EntryState::Pending).len(), 2);
    assert!(matches!(
        cli.replay(Some(first.seq), NOW),
        Err(OutboxError::NoSuchDeadLetter(_))
    ));
    let later = UnixMillis::from_millis(NOW.as_millis() + 60_000);
    assert_eq!(ok(cli.replay(Some(third.seq), later), "replay"), 1);
    let replayed = ok(host_a.entries(EntryState::Pending), "pending");
    let replayed = replayed
        .iter()
        .find(|e| e.seq == third.seq)
        .map(|e| (e.attempts, e.enqueued_at, e.dead));
    assert_eq!(replayed, Some((0, later, false)));
}

#[test]
fn notifications_outlive_a_receiver_outage_and_leave_the_table_empty() {
    let _server = shared_server();
    let Some(db) = TestDb::create("outbox_delivery") else {
        return;
    };
    db.initialised_store(ALL_BUCKETS, 32, false, false);
    let dir = TempDir::new("outbox-mysql");
    let ca = TestCa::new("outbox mysql CA");
    let tls = ca.server_config(&["127.0.0.66"]);
    let down = Receiver::start("127.0.0.66:0".parse().unwrap(), Arc::clone(&tls));
    let address = down.addr;
    drop(down);
    let client = WpcomClient::new(WpcomSettings {
        url: format!("https://{address}"),
        mode: WpcomMode::Original,
        ca_file: Some(ca.write_pem(&dir.0)),
        client_identity: None,
        timeout: Duration::from_secs(1),
        auth_token: "t".into(),
    })
    .unwrap();
    let settings = DeliverySettings {
        concurrency: 3,
        max_attempts: 1000,
        max_age: Duration::from_secs(3600),
        backoff: Backoff::new(Duration::from_millis(50), Duration::from_millis(200)),
        stats_interval: Duration::from_secs(60),
    };
    let mut notifier =
        OutboxNotifier::start(None, Box::new(outbox(&db, Some("host-a"))), Arc::new(client), settings).unwrap();
    for change in 0..10u64 {
        notifier.notify(&note(change % 3, 1_000 + change)).unwrap();
    }
    let count = |db: &TestDb| -> u64 {
        ok(
            db.conn().query_first("SELECT COUNT(*) FROM jetmon_notification_outbox"),
            "count",
        )
        .unwrap_or(0)
    };
    assert_eq!(count(&db), 10, "every notification is in the table before it is sent");
    std::thread::sleep(Duration::from_millis(800));

    let receiver = Receiver::start(address, tls);
    let accepted = receiver.wait_accepted("10 notifications", Duration::from_secs(20), |a| a.len() >= 10);
    for blog_id in 0..3u64 {
        let changes: Vec<&str> = accepted
            .iter()
            .filter(|p| p["blog_id"] == blog_id)
            .filter_map(|p| p["last_status_change"].as_str())
            .collect();
        let mut sorted = changes.clone();
        sorted.sort_unstable();
        assert_eq!(changes, sorted, "site {blog_id} in order");
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while count(&db) > 0 {
        assert!(std::time::Instant::now() < deadline, "delivered rows are deleted");
        std::thread::sleep(Duration::from_millis(50));
    }
    notifier.shutdown();
}
