//! `MysqlStore` against a real MariaDB/MySQL server.
//!
//! The server comes from `JETMON_TEST_MYSQL_URL` (default `mysql://root@127.0.0.1:3306/test`). When the
//! variable is unset and the server cannot be reached, each test says it is skipping and passes, so a
//! laptop without MariaDB can still run `cargo test`; when the variable is set (CI), an unreachable server
//! fails the test. Each test works in its own database, `jetmon_test_<name>_<pid>`, dropped at the end.

mod support;

use std::collections::BTreeSet;
use std::sync::PoisonError;
use std::time::{Duration, Instant};

use jetmond::status::{SiteStatus, UnixMillis};
use jetmond::store::mysql::MysqlStore;
use jetmond::store::{Site, SiteStore, StatusUpdate, StoreError};
use mysql::prelude::Queryable;
use mysql::{Conn, Value};
use support::db::*;

/// One row of the table, for seeding.
#[derive(Clone)]
struct Row {
    blog_id: u64,
    bucket_no: u16,
    monitor_url: String,
    monitor_active: u8,
    site_status: u8,
}

fn site_row(blog_id: u64, bucket_no: u16) -> Row {
    Row {
        blog_id,
        bucket_no,
        monitor_url: format!("https://site-{blog_id}.example"),
        monitor_active: 1,
        site_status: 1,
    }
}

/// Multi-row INSERTs of [`ROWS_PER_INSERT`] rows, as a bulk import would do it.
fn insert(conn: &mut Conn, rows: &[Row]) {
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        let placeholders = vec!["(?, ?, ?, ?, ?)"; chunk.len()].join(", ");
        let sql = format!(
            "INSERT INTO jetpack_monitor_subscription \
             (blog_id, bucket_no, monitor_url, monitor_active, site_status) VALUES {placeholders}"
        );
        let params: Vec<Value> = chunk
            .iter()
            .flat_map(|row| {
                [
                    row.blog_id.into(),
                    row.bucket_no.into(),
                    row.monitor_url.as_str().into(),
                    row.monitor_active.into(),
                    row.site_status.into(),
                ]
            })
            .collect();
        ok(conn.exec_drop(sql, params), "inserting sites");
    }
}

/// Every page and every bad record of one `load_sites`.
struct Loaded {
    pages: Vec<Vec<Site>>,
    bad: Vec<StoreError>,
}

impl Loaded {
    fn sites(&self) -> Vec<&Site> {
        self.pages.iter().flatten().collect()
    }

    fn blog_ids(&self) -> Vec<u64> {
        self.sites().iter().map(|site| site.blog_id).collect()
    }
}

fn load(store: &mut MysqlStore) -> Result<Loaded, StoreError> {
    let mut pages = Vec::new();
    let mut bad = Vec::new();
    store.load_sites(&mut |page| pages.push(page), &mut |error| bad.push(error))?;
    Ok(Loaded { pages, bad })
}

fn count(conn: &mut Conn, sql: &str) -> u64 {
    ok(conn.query_first::<u64, _>(sql), sql).unwrap_or(0)
}

#[test]
fn schema_init_is_idempotent() {
    let _server = shared_server();
    let Some(db) = TestDb::create("schema") else { return };
    let mut store = db.store(ALL_BUCKETS, 32, false, false);
    ok(store.init_schema(), "first init_schema");
    ok(store.init_schema(), "second init_schema");
    let mut conn = db.conn();
    let in_schema = |table: &str| format!("FROM information_schema.{table} WHERE TABLE_SCHEMA = DATABASE()");
    // The sites table, the notification outbox (migration 003) and the two lease tables (004).
    assert_eq!(count(&mut conn, &format!("SELECT COUNT(*) {}", in_schema("TABLES"))), 4);
    assert_eq!(
        count(
            &mut conn,
            &format!(
                "SELECT COUNT(DISTINCT INDEX_NAME) {} AND INDEX_NAME = 'bucket_no_monitor_active'",
                in_schema("STATISTICS")
            )
        ),
        1
    );
    assert_eq!(
        count(
            &mut conn,
            &format!(
                "SELECT COUNT(*) {} AND COLUMN_NAME = 'check_interval'",
                in_schema("COLUMNS")
            )
        ),
        1
    );
}

#[test]
fn schema_init_completes_a_table_created_by_the_seed_alone() {
    let _server = shared_server();
    let Some(db) = TestDb::create("seedonly") else { return };
    // A database set up by jetmon.js: the seed's table, no interval column, and sites already in it.
    let mut conn = db.conn();
    let code: Vec<&str> = jetmond::store::mysql::MIGRATION_001_SQL
        .lines()
        .filter(|line| !line.starts_with("--"))
        .collect();
    for statement in code
        .join("\n")
        .split(';')
        .filter(|statement| !statement.trim().is_empty())
    {
        ok(conn.query_drop(statement), "applying the seed DDL");
    }
    insert(&mut conn, &[site_row(1, 0)]);
    let mut store = db.initialised_store(ALL_BUCKETS, 32, true, false);
    let loaded = ok(load(&mut store), "load_sites");
    assert_eq!(loaded.blog_ids(), vec![1]);
}

#[test]
fn only_sites_in_the_bucket_range_are_loaded() {
    let _server = shared_server();
    let Some(db) = TestDb::create("range") else { return };
    let mut store = db.initialised_store(5..=9, 32, false, false);
    // Two sites in each of the buckets 0..20.
    let rows: Vec<Row> = (0..40u64)
        .map(|blog_id| site_row(blog_id + 1, (blog_id / 2) as u16))
        .collect();
    insert(&mut db.conn(), &rows);
    let loaded = ok(load(&mut store), "load_sites");
    let expected: Vec<u64> = rows
        .iter()
        .filter(|row| (5..=9).contains(&row.bucket_no))
        .map(|row| row.blog_id)
        .collect();
    assert_eq!(loaded.blog_ids(), expected);
    assert!(loaded.bad.is_empty(), "{:?}", loaded.bad);
}

#[test]
fn inactive_sites_are_skipped() {
    let _server = shared_server();
    let Some(db) = TestDb::create("inactive") else { return };
    let mut store = db.initialised_store(ALL_BUCKETS, 32, false, false);
    let mut inactive = site_row(2, 3);
    inactive.monitor_active = 0;
    insert(&mut db.conn(), &[site_row(1, 3), inactive, site_row(3, 4)]);
    let loaded = ok(load(&mut store), "load_sites");
    assert_eq!(loaded.blog_ids(), vec![1, 3]);
}

#[test]
fn paging_by_two_buckets_returns_every_site_exactly_once() {
    let _server = shared_server();
    let Some(db) = TestDb::create("paging") else { return };
    let mut store = db.initialised_store(0..=19, 2, false, false);
    // Blog ids run against the bucket order, so a page boundary cannot coincide with an id boundary.
    let rows: Vec<Row> = (0..100u64).map(|n| site_row(1_000 - n, (n % 20) as u16)).collect();
    insert(&mut db.conn(), &rows);
    let loaded = ok(load(&mut store), "load_sites");
    assert_eq!(loaded.pages.len(), 10, "one page per two buckets");
    let ids = loaded.blog_ids();
    let distinct: BTreeSet<u64> = ids.iter().copied().collect();
    assert_eq!(ids.len(), rows.len(), "no site twice");
    assert_eq!(distinct, rows.iter().map(|row| row.blog_id).collect());
    for page in &loaded.pages {
        assert_eq!(page.len(), 10);
        assert!(
            page.windows(2).all(|pair| pair[0].blog_id < pair[1].blog_id),
            "pages ordered by blog_id"
        );
    }
}

#[test]
fn bad_rows_are_reported_and_skipped_while_the_others_load() {
    let _server = shared_server();
    let Some(db) = TestDb::create("badrows") else { return };
    let mut store = db.initialised_store(ALL_BUCKETS, 32, false, false);
    let mut unknown_status = site_row(2, 1);
    unknown_status.site_status = 7;
    let mut empty_url = site_row(3, 1);
    empty_url.monitor_url = String::new();
    insert(
        &mut db.conn(),
        &[site_row(1, 1), unknown_status, empty_url, site_row(4, 1)],
    );
    let loaded = ok(load(&mut store), "load_sites");
    assert_eq!(loaded.blog_ids(), vec![1, 4]);
    let mut bad: Vec<(u64, String)> = loaded
        .bad
        .iter()
        .map(|error| match error {
            StoreError::BadRecord { blog_id, reason } => (*blog_id, reason.clone()),
            other => panic!("expected a bad record, got {other}"),
        })
        .collect();
    bad.sort();
    assert_eq!(bad.len(), 2, "{bad:?}");
    assert!(bad[0].0 == 2 && bad[0].1.contains("site_status"), "{bad:?}");
    assert!(bad[1].0 == 3 && bad[1].1.contains("monitor_url"), "{bad:?}");
}

#[test]
fn persisted_status_and_change_time_round_trip_in_utc() {
    let _server = shared_server();
    let Some(db) = TestDb::create("persist") else { return };
    let mut store = db.initialised_store(ALL_BUCKETS, 32, false, true);
    let mut conn = db.conn();
    insert(&mut conn, &[site_row(1, 0), site_row(2, 0), site_row(3, 0)]);
    // 2026-11-25T12:00:00.123Z: the milliseconds do not survive a TIMESTAMP, the second does.
    let at = UnixMillis::parse_wpcom("2026-11-25T12:00:00.123Z");
    let at = ok(at, "parsing the instant");
    let updates = [
        StatusUpdate {
            blog_id: 1,
            status: SiteStatus::Down,
            last_status_change: at,
        },
        StatusUpdate {
            blog_id: 2,
            status: SiteStatus::ConfirmedDown,
            last_status_change: at,
        },
        // A site deleted while it was checked: must not come back.
        StatusUpdate {
            blog_id: 99,
            status: SiteStatus::Down,
            last_status_change: at,
        },
    ];
    ok(store.persist_statuses(&updates), "persist_statuses");

    let loaded = ok(load(&mut store), "load_sites");
    let whole_second = Some(UnixMillis::from_millis(at.as_millis() / 1_000 * 1_000));
    let summary: Vec<(u64, SiteStatus, Option<UnixMillis>)> = loaded
        .sites()
        .iter()
        .map(|site| (site.blog_id, site.status, site.last_status_change))
        .collect();
    assert_eq!(
        summary,
        vec![
            (1, SiteStatus::Down, whole_second),
            (2, SiteStatus::ConfirmedDown, whole_second),
            (3, SiteStatus::Running, None),
        ]
    );
    // The stored value is the UTC wall time, whatever zone the reading session uses.
    ok(conn.query_drop("SET time_zone = '+00:00'"), "setting the session zone");
    let stored: Option<String> = ok(
        conn.query_first("SELECT CAST(last_status_change AS CHAR) FROM jetpack_monitor_subscription WHERE blog_id = 1"),
        "reading the stored time",
    );
    assert_eq!(stored.as_deref(), Some("2026-11-25 12:00:00"));
    assert_eq!(count(&mut conn, "SELECT COUNT(*) FROM jetpack_monitor_subscription"), 3);
}

#[test]
fn many_statuses_are_written_in_chunks_within_one_call() {
    let _server = shared_server();
    let Some(db) = TestDb::create("chunks") else { return };
    let mut store = db.initialised_store(ALL_BUCKETS, 32, false, true);
    let mut conn = db.conn();
    let rows: Vec<Row> = (1..=1_234u64).map(|blog_id| site_row(blog_id, 0)).collect();
    insert(&mut conn, &rows);
    let at = UnixMillis::from_millis(1_700_000_000_000);
    let updates: Vec<StatusUpdate> = rows
        .iter()
        .map(|row| StatusUpdate {
            blog_id: row.blog_id,
            status: SiteStatus::Down,
            last_status_change: at,
        })
        .collect();
    ok(store.persist_statuses(&updates), "persist_statuses");
    assert_eq!(
        count(
            &mut conn,
            "SELECT COUNT(*) FROM jetpack_monitor_subscription \
             WHERE site_status = 0 AND UNIX_TIMESTAMP(last_status_change) = 1700000000"
        ),
        1_234
    );
}

#[test]
fn persist_is_a_no_op_without_db_updates() {
    let _server = shared_server();
    let Some(db) = TestDb::create("noupdates") else { return };
    let mut store = db.initialised_store(ALL_BUCKETS, 32, false, false);
    let mut conn = db.conn();
    insert(&mut conn, &[site_row(1, 0)]);
    let update = StatusUpdate {
        blog_id: 1,
        status: SiteStatus::Down,
        last_status_change: UnixMillis::from_millis(1_700_000_000_000),
    };
    ok(store.persist_statuses(&[update]), "persist_statuses");
    assert_eq!(
        count(
            &mut conn,
            "SELECT COUNT(*) FROM jetpack_monitor_subscription WHERE site_status = 1 AND last_status_change IS NULL"
        ),
        1
    );
}

#[test]
fn variable_intervals_are_read_only_when_enabled() {
    let _server = shared_server();
    let Some(db) = TestDb::create("intervals") else { return };
    let mut with_intervals = db.initialised_store(ALL_BUCKETS, 32, true, false);
    let mut conn = db.conn();
    insert(&mut conn, &[site_row(1, 0), site_row(2, 0)]);
    ok(
        conn.query_drop("UPDATE jetpack_monitor_subscription SET check_interval = 120 WHERE blog_id = 1"),
        "setting an interval",
    );
    let intervals =
        |loaded: &Loaded| -> Vec<Option<Duration>> { loaded.sites().iter().map(|site| site.check_interval).collect() };
    let loaded = ok(load(&mut with_intervals), "load_sites with intervals");
    assert_eq!(intervals(&loaded), vec![Some(Duration::from_secs(120)), None]);
    let mut without = db.store(ALL_BUCKETS, 32, false, false);
    let loaded = ok(load(&mut without), "load_sites without intervals");
    assert_eq!(intervals(&loaded), vec![None, None]);
}

#[test]
fn unreachable_server_fails_fast_without_showing_the_password() {
    // Port 1 on loopback refuses at once; no MariaDB needed.
    let started = Instant::now();
    let result = MysqlStore::from_url(
        "mysql://jetmon:s3cret-pw@127.0.0.1:1/jetmon",
        ALL_BUCKETS,
        32,
        false,
        false,
    );
    let Err(StoreError::Database(message)) = result else {
        panic!("expected a database error, got {result:?}");
    };
    assert!(started.elapsed() < PROMPT_FAILURE, "took {:?}", started.elapsed());
    assert!(message.contains("127.0.0.1:1"), "{message}");
    assert!(!message.contains("s3cret-pw"), "{message}");
}

#[test]
fn load_figure_for_20000_sites() {
    let _server = shared_server();
    let Some(db) = TestDb::create("figure") else { return };
    let mut store = db.initialised_store(ALL_BUCKETS, 32, false, false);
    let rows: Vec<Row> = (1..=20_000u64)
        .map(|blog_id| site_row(blog_id, (blog_id % 512) as u16))
        .collect();
    let inserting = Instant::now();
    insert(&mut db.conn(), &rows);
    let insert_time = inserting.elapsed();
    let loading = Instant::now();
    let mut sites = 0usize;
    let mut pages = 0usize;
    let mut bad = 0usize;
    ok(
        store.load_sites(
            &mut |page| {
                pages += 1;
                sites += page.len();
            },
            &mut |_| bad += 1,
        ),
        "load_sites",
    );
    let load_time = loading.elapsed();
    assert_eq!((sites, bad), (rows.len(), 0));
    println!(
        "figure: inserted {} sites in {insert_time:?} ({ROWS_PER_INSERT} rows per INSERT); \
         load_sites over buckets 0..=511, 32 per page: {sites} sites in {pages} pages in {load_time:?} \
         ({:.0} sites/s)",
        rows.len(),
        sites as f64 / load_time.as_secs_f64()
    );
}

#[test]
fn database_restart_mid_way_is_survived() {
    // Alone on the server: no other test may see it down.
    let _exclusive = SERVER.write().unwrap_or_else(PoisonError::into_inner);
    let Some(db) = TestDb::create("restart") else { return };
    let (url, _) = server_url();
    let local = url.contains("@127.0.0.1") || url.contains("@localhost") || url.contains("//127.0.0.1");
    if !local {
        println!(
            "skipping: {} is not the local server this test can restart",
            redacted(&url)
        );
        return;
    }
    let mut store = db.initialised_store(ALL_BUCKETS, 32, false, true);
    insert(
        &mut db.conn(),
        &(1..=10).map(|blog_id| site_row(blog_id, 0)).collect::<Vec<_>>(),
    );
    assert_eq!(ok(load(&mut store), "load before the restart").blog_ids().len(), 10);

    let mut server = StoppedServer::stop(&url);
    let update = StatusUpdate {
        blog_id: 1,
        status: SiteStatus::Down,
        last_status_change: UnixMillis::from_millis(1_700_000_000_000),
    };
    let started = Instant::now();
    let loading = load(&mut store);
    let persisting = store.persist_statuses(&[update]);
    let failing_took = started.elapsed();
    assert!(matches!(loading, Err(StoreError::Database(_))), "{:?}", loading.err());
    assert!(matches!(persisting, Err(StoreError::Database(_))), "{persisting:?}");
    assert!(
        failing_took < PROMPT_FAILURE,
        "two calls against a stopped server took {failing_took:?}"
    );
    println!(
        "figure: against the stopped server, load_sites and persist_statuses failed in {failing_took:?}: {}",
        loading.err().map(|error| error.to_string()).unwrap_or_default()
    );

    let restarting = Instant::now();
    assert!(
        server.start_and_wait(),
        "the server is not back after {SERVER_STATE_TIMEOUT:?}"
    );
    println!("figure: MariaDB back after {:?}", restarting.elapsed());
    // The same store, without reopening: the pool replaces its dead connection.
    assert_eq!(ok(load(&mut store), "load after the restart").blog_ids().len(), 10);
    ok(store.persist_statuses(&[update]), "persist after the restart");
    let down = ok(load(&mut store), "load after persisting");
    assert_eq!(down.sites().first().map(|site| site.status), Some(SiteStatus::Down));
}
