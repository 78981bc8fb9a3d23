//! The production store: `jetpack_monitor_subscription` in MySQL/MariaDB, read one page of buckets at a
//! time and written back in batches.
//!
//! The control thread calls this synchronously, so every wait is bounded: connecting gives up after
//! [`DB_CONNECT_TIMEOUT`], a stalled read or write after [`DB_READ_TIMEOUT`]/[`DB_WRITE_TIMEOUT`]. The
//! [`Pool`] replaces a connection that died (a database restart, a dropped TCP session) by itself: a
//! pooled connection is pinged before reuse, so the first call after an outage either gets a fresh
//! connection or fails fast, and the next call after the database is back succeeds.
//!
//! ```no_run
//! use jetmond::config::DatabaseConfig;
//! use jetmond::store::{mysql::MysqlStore, SiteStore};
//!
//! # fn main() -> Result<(), jetmond::store::StoreError> {
//! let mut store = MysqlStore::connect(&DatabaseConfig::default(), 0..=511, 32, false, true)?;
//! store.init_schema()?;
//! store.load_sites(&mut |page| println!("{} sites", page.len()), &mut |bad| eprintln!("{bad}"))?;
//! # Ok(())
//! # }
//! ```

use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::Duration;

use mysql::prelude::{FromValue, Queryable};
use mysql::{Opts, OptsBuilder, Pool, PoolConstraints, PoolOpts, PooledConn, Row, TxOpts, Value};

use super::{Site, SiteStore, StatusUpdate, StoreError};
use crate::config::DatabaseConfig;
use crate::fleet::LeasedBuckets;
use crate::status::{SiteStatus, UnixMillis};

/// How long to wait for the TCP connection to the database: a dead host must not stall the control
/// thread for the kernel's two minutes.
pub const DB_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long one read from the database may stall. Generous enough for the server to sort a page of
/// buckets before the first row, short enough that a half-open connection is noticed within a round.
pub const DB_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one write to the database may stall.
pub const DB_WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Most rows per `UPDATE` statement: 500 rows are 2,500 placeholders, far below the protocol's 65,535,
/// and a statement small enough to keep row locks short.
pub const MAX_ROWS_PER_UPDATE: usize = 500;

/// The seed's DDL, applied by [`MysqlStore::init_schema`].
pub const MIGRATION_001_SQL: &str = include_str!("../../migrations/001_jetpack_monitor_subscription.sql");
/// The optional `check_interval` column, applied by [`MysqlStore::init_schema`].
pub const MIGRATION_002_SQL: &str = include_str!("../../migrations/002_check_interval.sql");
/// The notification outbox (`crate::outbox`), applied by [`MysqlStore::init_schema`].
pub const MIGRATION_003_SQL: &str = include_str!("../../migrations/003_notification_outbox.sql");
/// The bucket-lease tables of self-organising fleets.
pub const MIGRATION_004_SQL: &str = include_str!("../../migrations/004_bucket_leases.sql");

/// The control thread uses one connection at a time; the second slot lets `db init` or a status write
/// overlap a page read without waiting for it.
const POOL_CONSTRAINTS: PoolConstraints = PoolConstraints::new_const::<1, 2>();
/// Every connection speaks UTC, so `FROM_UNIXTIME` and any TIMESTAMP read as text mean the same instant
/// whatever the server's or the host's zone is (and no DST hour is ambiguous).
const SESSION_UTC: &str = "SET time_zone = '+00:00'";
/// TIMESTAMP holds 1970-01-01 00:00:01 to 2038-01-19 03:14:07 UTC; an instant outside is written as NULL
/// ("unknown") rather than the zero date or an error that would lose the whole batch.
const TIMESTAMP_SECS: RangeInclusive<u64> = 1..=2_147_483_647;
const MILLIS_PER_SECOND: u64 = 1_000;

// `UNIX_TIMESTAMP` of a TIMESTAMP column is the stored UTC instant as an integer: no calendar arithmetic on
// our side and no dependence on the session zone. ORDER BY keeps pages deterministic, which makes a round
// reproducible and its logs comparable.
const SELECT_SITES: &str = "SELECT blog_id, monitor_url, site_status, UNIX_TIMESTAMP(last_status_change) \
     FROM jetpack_monitor_subscription \
     WHERE monitor_active = 1 AND bucket_no BETWEEN ? AND ? ORDER BY blog_id";
const SELECT_SITES_WITH_INTERVAL: &str = "SELECT blog_id, monitor_url, site_status, \
     UNIX_TIMESTAMP(last_status_change), check_interval \
     FROM jetpack_monitor_subscription \
     WHERE monitor_active = 1 AND bucket_no BETWEEN ? AND ? ORDER BY blog_id";

/// Sites and statuses in `jetpack_monitor_subscription`, for one host's bucket range.
#[derive(Debug)]
pub struct MysqlStore {
    pool: Pool,
    /// `host:port`, named in every error. Never the URL: it may carry the password.
    server: String,
    buckets: RangeInclusive<u16>,
    /// With bucket leases, the buckets this host holds replace `buckets` at each round.
    leased: Option<Arc<LeasedBuckets>>,
    batch_buckets: u32,
    variable_intervals: bool,
    db_updates: bool,
}

impl MysqlStore {
    /// Connects to the database of `cfg` for the buckets `range`, reading `batch_buckets` buckets per query
    /// (`BATCH_SIZE`; 0 is read as 1). `variable_intervals` reads the `check_interval` column
    /// (`USE_VARIABLE_CHECK_INTERVALS`); without `db_updates` (`DB_UPDATES_ENABLE`) statuses are never
    /// written.
    ///
    /// One connection is opened at once, so a wrong host, port or password is reported here rather than at
    /// the first round.
    pub fn connect(
        cfg: &DatabaseConfig,
        range: RangeInclusive<u16>,
        batch_buckets: u32,
        variable_intervals: bool,
        db_updates: bool,
    ) -> Result<Self, StoreError> {
        let (builder, server) = config_opts(cfg);
        Self::open(builder, server, range, batch_buckets, variable_intervals, db_updates)
    }

    /// As [`MysqlStore::connect`], with the connection given as a URL
    /// (`mysql://user:password@host:port/database`), as the tests do.
    pub fn from_url(
        url: &str,
        range: RangeInclusive<u16>,
        batch_buckets: u32,
        variable_intervals: bool,
        db_updates: bool,
    ) -> Result<Self, StoreError> {
        let (builder, server) = url_opts(url)?;
        Self::open(builder, server, range, batch_buckets, variable_intervals, db_updates)
    }

    fn open(
        builder: OptsBuilder,
        server: String,
        buckets: RangeInclusive<u16>,
        batch_buckets: u32,
        variable_intervals: bool,
        db_updates: bool,
    ) -> Result<Self, StoreError> {
        let pool = open_pool(builder, &server)?;
        Ok(MysqlStore {
            pool,
            server,
            buckets,
            leased: None,
            batch_buckets: batch_buckets.max(1),
            variable_intervals,
            db_updates,
        })
    }

    /// Loads the buckets this host leases (see [`crate::fleet`]) instead of the fixed range.
    pub fn with_leased_buckets(mut self, leased: Arc<LeasedBuckets>) -> Self {
        self.leased = Some(leased);
        self
    }

    /// The connection pool and the `host:port` for errors, shared with the lease keeper.
    pub fn pool(&self) -> (Pool, String) {
        (self.pool.clone(), self.server.clone())
    }

    /// Creates the table, its index and the `check_interval` column, each only if it is missing, so it can
    /// run any number of times (it is `jetmond db init`). The column is added even when
    /// `use_variable_check_intervals` is off: it is nullable and unread then, and switching the option on
    /// later needs no second migration.
    pub fn init_schema(&mut self) -> Result<(), StoreError> {
        let steps = migration_steps()
            .map_err(|reason| StoreError::Database(format!("embedded migration not understood: {reason}")))?;
        let mut conn = self.conn()?;
        for step in &steps {
            if self.schema_has(&mut conn, &step.guard)? {
                continue;
            }
            conn.query_drop(&step.statement)
                .map_err(|error| self.error(&format!("applying `{}`", step.guard), error))?;
        }
        Ok(())
    }

    fn schema_has(&self, conn: &mut PooledConn, guard: &SchemaGuard) -> Result<bool, StoreError> {
        let (sql, params): (&str, Vec<Value>) = match guard {
            SchemaGuard::Table { table } => (
                "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?",
                vec![table.as_str().into()],
            ),
            SchemaGuard::Index { table, index } => (
                "SELECT COUNT(*) FROM information_schema.STATISTICS \
                 WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND INDEX_NAME = ?",
                vec![table.as_str().into(), index.as_str().into()],
            ),
            SchemaGuard::Column { table, column } => (
                "SELECT COUNT(*) FROM information_schema.COLUMNS \
                 WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND COLUMN_NAME = ?",
                vec![table.as_str().into(), column.as_str().into()],
            ),
        };
        let context = format!("looking for {guard}");
        // A `Row` result cannot fail to convert (typed results panic on a surprise value); the count is
        // decoded by hand.
        let row: Option<Row> = conn
            .exec_first(sql, params)
            .map_err(|error| self.error(&context, error))?;
        match row.and_then(|mut row| row.take_opt::<u64, _>(0)) {
            Some(Ok(count)) => Ok(count > 0),
            Some(Err(error)) => Err(StoreError::Database(format!(
                "{context} on {}: unexpected count {:?}",
                self.server, error.0
            ))),
            None => Err(StoreError::Database(format!(
                "{context} on {}: no count returned",
                self.server
            ))),
        }
    }

    fn conn(&self) -> Result<PooledConn, StoreError> {
        self.pool.get_conn().map_err(|error| self.error("connecting", error))
    }

    fn error(&self, context: &str, error: mysql::Error) -> StoreError {
        StoreError::Database(format!("{context} on {}: {error}", self.server))
    }
}

impl SiteStore for MysqlStore {
    /// One query per page of `batch_buckets` buckets; its rows are streamed from the server and only that
    /// page is held before `page` gets it. Empty pages are not passed on. A connection lost mid-page
    /// returns the error: pages already passed stay valid, the broken one is dropped whole.
    fn load_sites(
        &mut self,
        page: &mut dyn FnMut(Vec<Site>),
        bad: &mut dyn FnMut(StoreError),
    ) -> Result<(), StoreError> {
        let sql = if self.variable_intervals {
            SELECT_SITES_WITH_INTERVAL
        } else {
            SELECT_SITES
        };
        let mut conn = self.conn()?;
        let pages: Vec<(u16, u16)> = match &self.leased {
            Some(leased) => set_pages(&leased.begin_round(), self.batch_buckets),
            None => bucket_pages(&self.buckets, self.batch_buckets).collect(),
        };
        for (first, last) in pages {
            let context = format!("reading buckets {first}..={last}");
            let rows = conn
                .exec_iter(sql, (first, last))
                .map_err(|error| self.error(&context, error))?;
            let mut sites = Vec::new();
            for row in rows {
                let row = row.map_err(|error| self.error(&context, error))?;
                match decode_site(row.unwrap(), self.variable_intervals) {
                    Ok(site) => sites.push(site),
                    Err(error) => bad(error),
                }
            }
            if !sites.is_empty() {
                page(sites);
            }
        }
        Ok(())
    }

    /// With `db_updates` off, does nothing. Otherwise writes all `updates` in one transaction, as multi-row
    /// `UPDATE … SET col = CASE blog_id WHEN … END WHERE blog_id IN (…)` statements of at most
    /// [`MAX_ROWS_PER_UPDATE`] rows. `UPDATE` rather than `INSERT … ON DUPLICATE KEY UPDATE` because it can
    /// only touch rows that exist: a site deleted from the table while it was being checked must stay
    /// deleted, where an upsert would bring it back (without its URL). When one site appears several times,
    /// its last update wins.
    fn buckets_held(&self) -> Option<usize> {
        self.leased.as_ref().map(|leased| leased.owned().len())
    }

    fn persist_statuses(&mut self, updates: &[StatusUpdate]) -> Result<(), StoreError> {
        if !self.db_updates || updates.is_empty() {
            return Ok(());
        }
        let updates = last_update_per_site(updates);
        let mut conn = self.conn()?;
        let mut transaction = conn
            .start_transaction(TxOpts::default())
            .map_err(|error| self.error("starting the status transaction", error))?;
        for chunk in updates.chunks(MAX_ROWS_PER_UPDATE) {
            let (sql, params) = update_statement(chunk);
            transaction
                .exec_drop(sql, params)
                .map_err(|error| self.error(&format!("writing {} statuses", chunk.len()), error))?;
        }
        // Dropping an uncommitted transaction rolls it back, so an error above leaves the table as it was.
        transaction
            .commit()
            .map_err(|error| self.error(&format!("committing {} statuses", updates.len()), error))
    }
}

/// Connection options for `cfg`, and the `host:port` to name in errors (never the URL: it may carry the
/// password). Shared with the notification outbox, which talks to the same database.
pub(crate) fn config_opts(cfg: &DatabaseConfig) -> (OptsBuilder, String) {
    let non_empty = |text: &str| (!text.is_empty()).then(|| text.to_owned());
    let builder = OptsBuilder::new()
        .ip_or_hostname(Some(cfg.host.clone()))
        .tcp_port(cfg.port)
        .user(non_empty(&cfg.user))
        .pass(non_empty(&cfg.password))
        .db_name(non_empty(&cfg.name));
    (builder, format!("{}:{}", cfg.host, cfg.port))
}

/// As [`config_opts`], from a `mysql://user:password@host:port/database` URL.
pub(crate) fn url_opts(url: &str) -> Result<(OptsBuilder, String), StoreError> {
    // The parser's errors name a parameter or its value, never the credentials.
    let opts = Opts::from_url(url).map_err(|error| StoreError::Database(format!("invalid database URL: {error}")))?;
    let server = format!("{}:{}", opts.get_ip_or_hostname(), opts.get_tcp_port());
    Ok((OptsBuilder::from_opts(opts), server))
}

/// A pool with the bounded timeouts and the UTC session every jetmond connection uses; one connection is
/// opened at once so a wrong host, port or password is reported by the caller's constructor.
pub(crate) fn open_pool(builder: OptsBuilder, server: &str) -> Result<Pool, StoreError> {
    // No reset on return to the pool: we never change session state beyond `SESSION_UTC`, and a reset
    // would cost two round trips per call and empty the prepared-statement cache.
    let pool_opts = PoolOpts::new()
        .with_constraints(POOL_CONSTRAINTS)
        .with_reset_connection(false);
    let builder = builder
        .tcp_connect_timeout(Some(DB_CONNECT_TIMEOUT))
        .read_timeout(Some(DB_READ_TIMEOUT))
        .write_timeout(Some(DB_WRITE_TIMEOUT))
        .init(vec![SESSION_UTC])
        .pool_opts(pool_opts);
    Pool::new(builder).map_err(|error| StoreError::Database(format!("connecting to {server}: {error}")))
}

/// The `(first, last)` buckets of each page: `per_page` buckets at a time over `range`, the last page
/// cut at the range's end. Computed in `u32` so a range ending at `u16::MAX` cannot overflow.
fn bucket_pages(range: &RangeInclusive<u16>, per_page: u32) -> impl Iterator<Item = (u16, u16)> {
    let (start, end) = (u32::from(*range.start()), u32::from(*range.end()));
    let per_page = per_page.max(1);
    let mut next = (start <= end).then_some(start);
    std::iter::from_fn(move || {
        let first = next?;
        let last = first.saturating_add(per_page - 1).min(end);
        next = (last < end).then_some(last + 1);
        // Both bounds lie within `range`, whose ends are u16.
        Some((u16::try_from(first).ok()?, u16::try_from(last).ok()?))
    })
}

/// Pages over a sorted set of buckets: runs of consecutive buckets, cut every `per_page` buckets, so each
/// page is still one `BETWEEN` query.
fn set_pages(buckets: &[u16], per_page: u32) -> Vec<(u16, u16)> {
    let per_page = usize::try_from(per_page.max(1)).unwrap_or(usize::MAX);
    let mut pages = Vec::new();
    let mut start = 0;
    while start < buckets.len() {
        let mut end = start;
        while end + 1 < buckets.len() && end + 1 - start < per_page && buckets[end + 1] == buckets[end].wrapping_add(1)
        {
            end += 1;
        }
        pages.push((buckets[start], buckets[end]));
        start = end + 1;
    }
    pages
}

/// Turns one row of [`SELECT_SITES`] (or [`SELECT_SITES_WITH_INTERVAL`]) into a [`Site`], or says what is
/// wrong with it.
fn decode_site(values: Vec<Value>, with_interval: bool) -> Result<Site, StoreError> {
    let mut values = values.into_iter();
    let mut next = || values.next().unwrap_or(Value::NULL);
    let blog_id_value = next();
    let Ok(blog_id) = u64::from_value_opt(blog_id_value.clone()) else {
        return Err(bad_record(
            0,
            format!("blog_id {blog_id_value:?} is not an unsigned integer"),
        ));
    };
    let bad = |reason: String| bad_record(blog_id, reason);

    let monitor_url = match next() {
        Value::NULL => return Err(bad("monitor_url is NULL".into())),
        value => String::from_value_opt(value).map_err(|_| bad("monitor_url is not UTF-8 text".into()))?,
    };
    if monitor_url.trim().is_empty() {
        return Err(bad("monitor_url is empty".into()));
    }

    let status_value = next();
    let status = u8::from_value_opt(status_value.clone())
        .ok()
        .and_then(|number| SiteStatus::try_from(number).ok())
        .ok_or_else(|| bad(format!("site_status {status_value:?} is not 0, 1 or 2")))?;

    let change_value = next();
    let last_status_change = match Option::<u64>::from_value_opt(change_value.clone()) {
        // NULL, and the zero date some servers store for an unset TIMESTAMP, both mean "unknown".
        Ok(None | Some(0)) => None,
        Ok(Some(seconds)) => Some(UnixMillis::from_millis(
            seconds
                .checked_mul(MILLIS_PER_SECOND)
                .ok_or_else(|| bad(format!("last_status_change {seconds} s is out of range")))?,
        )),
        Err(_) => return Err(bad(format!("last_status_change {change_value:?} is not a Unix time"))),
    };

    let check_interval = if with_interval {
        let interval_value = next();
        match Option::<u64>::from_value_opt(interval_value.clone()) {
            // 0 would mean "check continuously"; read it as "no interval of its own", like NULL.
            Ok(None | Some(0)) => None,
            Ok(Some(seconds)) => Some(Duration::from_secs(seconds)),
            Err(_) => {
                return Err(bad(format!(
                    "check_interval {interval_value:?} is not a number of seconds"
                )))
            }
        }
    } else {
        None
    };

    Ok(Site {
        blog_id,
        monitor_url,
        status,
        last_status_change,
        check_interval,
    })
}

fn bad_record(blog_id: u64, reason: String) -> StoreError {
    StoreError::BadRecord { blog_id, reason }
}

/// `updates` with only the last update of each site, in the order of those last updates. A multi-row
/// `CASE` would apply the first `WHEN` that matches, i.e. the oldest status.
fn last_update_per_site(updates: &[StatusUpdate]) -> Vec<StatusUpdate> {
    let mut seen = std::collections::HashSet::with_capacity(updates.len());
    let mut latest: Vec<StatusUpdate> = updates
        .iter()
        .rev()
        .filter(|update| seen.insert(update.blog_id))
        .copied()
        .collect();
    latest.reverse();
    latest
}

/// One multi-row `UPDATE` for `chunk` (distinct sites), with its positional parameters.
fn update_statement(chunk: &[StatusUpdate]) -> (String, Vec<Value>) {
    let mut sql = String::from("UPDATE jetpack_monitor_subscription SET site_status = CASE blog_id");
    let mut params = Vec::with_capacity(chunk.len() * 5);
    for update in chunk {
        sql.push_str(" WHEN ? THEN ?");
        params.push(Value::from(update.blog_id));
        params.push(Value::from(u8::from(update.status)));
    }
    sql.push_str(" END, last_status_change = CASE blog_id");
    for update in chunk {
        sql.push_str(" WHEN ? THEN FROM_UNIXTIME(?)");
        params.push(Value::from(update.blog_id));
        params.push(timestamp_seconds(update.last_status_change).map_or(Value::NULL, Value::from));
    }
    sql.push_str(" END WHERE blog_id IN (");
    for (index, update) in chunk.iter().enumerate() {
        sql.push_str(if index == 0 { "?" } else { ", ?" });
        params.push(Value::from(update.blog_id));
    }
    sql.push(')');
    (sql, params)
}

/// Whole seconds of `instant` if a TIMESTAMP column can hold them. The column has no fraction, so the
/// milliseconds are dropped (truncated, as the original's `Date` to MySQL conversion did not round up into
/// the next second either).
fn timestamp_seconds(instant: UnixMillis) -> Option<u64> {
    let seconds = instant.as_millis() / MILLIS_PER_SECOND;
    TIMESTAMP_SECS.contains(&seconds).then_some(seconds)
}

/// One DDL statement of a migration file and the schema object whose presence means it was applied.
#[derive(Debug, PartialEq, Eq)]
struct MigrationStep {
    guard: SchemaGuard,
    statement: String,
}

/// A schema object a migration statement creates.
#[derive(Debug, PartialEq, Eq)]
enum SchemaGuard {
    Table { table: String },
    Index { table: String, index: String },
    Column { table: String, column: String },
}

impl std::fmt::Display for SchemaGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SchemaGuard::Table { table } => write!(f, "table {table}"),
            SchemaGuard::Index { table, index } => write!(f, "index {index} on {table}"),
            SchemaGuard::Column { table, column } => write!(f, "column {table}.{column}"),
        }
    }
}

/// The statements of the migration files, in order, each with its guard. The guard is read from the
/// statement itself (its backquoted names) so the files stay the single place that names things.
fn migration_steps() -> Result<Vec<MigrationStep>, String> {
    [
        MIGRATION_001_SQL,
        MIGRATION_002_SQL,
        MIGRATION_003_SQL,
        MIGRATION_004_SQL,
    ]
    .into_iter()
    .flat_map(sql_statements)
    .map(|statement| {
        let guard = guard_for(&statement)?;
        Ok(MigrationStep { guard, statement })
    })
    .collect()
}

/// The `;`-separated statements of a migration file, without its `--` comment lines.
fn sql_statements(sql: &str) -> Vec<String> {
    let code: String = sql
        .lines()
        .filter(|line| !line.trim_start().starts_with("--"))
        .flat_map(|line| [line, "\n"])
        .collect();
    code.split(';')
        .map(str::trim)
        .filter(|statement| !statement.is_empty())
        .map(str::to_owned)
        .collect()
}

fn guard_for(statement: &str) -> Result<SchemaGuard, String> {
    let names: Vec<String> = statement.split('`').skip(1).step_by(2).map(str::to_owned).collect();
    let name = |index: usize| {
        names
            .get(index)
            .cloned()
            .ok_or_else(|| format!("too few `names` in {statement:?}"))
    };
    let upper = statement.to_ascii_uppercase();
    if upper.starts_with("CREATE TABLE") {
        Ok(SchemaGuard::Table { table: name(0)? })
    } else if upper.starts_with("CREATE INDEX") {
        Ok(SchemaGuard::Index {
            index: name(0)?,
            table: name(1)?,
        })
    } else if upper.starts_with("ALTER TABLE") && upper.contains("ADD COLUMN") {
        Ok(SchemaGuard::Column {
            table: name(0)?,
            column: name(1)?,
        })
    } else {
        Err(format!("no guard for {statement:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "jetpack_monitor_subscription";

    fn row(blog_id: Value, url: Value, status: Value, change: Value) -> Vec<Value> {
        vec![blog_id, url, status, change]
    }

    fn reason(result: Result<Site, StoreError>) -> String {
        match result {
            Err(StoreError::BadRecord { reason, .. }) => reason,
            other => panic!("expected a bad record, got {other:?}"),
        }
    }

    #[test]
    fn migrations_are_the_table_its_index_the_interval_column_the_outbox_and_the_leases() {
        let guards: Vec<SchemaGuard> = migration_steps()
            .unwrap_or_default()
            .into_iter()
            .map(|step| step.guard)
            .collect();
        assert_eq!(
            guards,
            vec![
                SchemaGuard::Table { table: TABLE.into() },
                SchemaGuard::Index {
                    table: TABLE.into(),
                    index: "bucket_no_monitor_active".into()
                },
                SchemaGuard::Column {
                    table: TABLE.into(),
                    column: "check_interval".into()
                },
                SchemaGuard::Table {
                    table: "jetmon_notification_outbox".into()
                },
                SchemaGuard::Table {
                    table: "jetmon_fleet_host".into()
                },
                SchemaGuard::Table {
                    table: "jetmon_bucket_lease".into()
                },
            ]
        );
    }

    #[test]
    fn migration_001_keeps_the_seed_statements_verbatim() {
        let statements = sql_statements(MIGRATION_001_SQL);
        assert_eq!(statements.len(), 2);
        assert!(statements[0].starts_with("CREATE TABLE `jetpack_monitor_subscription` (\n\t`blog_id`"));
        assert!(
            statements[0].contains("\t`last_status_change` timestamp NULL DEFAULT NULL,\n\tPRIMARY KEY (`blog_id`)\n)")
        );
        assert_eq!(
            statements[1],
            "CREATE INDEX `bucket_no_monitor_active` ON `jetpack_monitor_subscription` (`bucket_no`, `monitor_active`)"
        );
    }

    #[test]
    fn bucket_pages_cover_the_range_once_with_a_short_last_page() {
        let pages: Vec<_> = bucket_pages(&(5..=14), 4).collect();
        assert_eq!(pages, vec![(5, 8), (9, 12), (13, 14)]);
    }

    #[test]
    fn bucket_pages_of_zero_buckets_are_read_as_one() {
        let pages: Vec<_> = bucket_pages(&(3..=4), 0).collect();
        assert_eq!(pages, vec![(3, 3), (4, 4)]);
    }

    #[test]
    fn bucket_pages_end_at_u16_max_without_overflow() {
        let pages: Vec<_> = bucket_pages(&(65_530..=u16::MAX), 4).collect();
        assert_eq!(pages, vec![(65_530, 65_533), (65_534, 65_535)]);
    }

    #[test]
    fn leased_bucket_sets_page_by_runs() {
        assert_eq!(
            set_pages(&[0, 1, 2, 3, 4, 9, 10, 20], 2),
            vec![(0, 1), (2, 3), (4, 4), (9, 10), (20, 20)]
        );
        assert!(set_pages(&[], 4).is_empty());
    }

    #[test]
    fn empty_bucket_range_has_no_pages() {
        #[allow(clippy::reversed_empty_ranges)]
        let range = 9..=5;
        assert_eq!(bucket_pages(&range, 4).count(), 0);
    }

    #[test]
    fn row_decodes_with_unix_seconds_as_millis() {
        let site = decode_site(
            vec![
                Value::UInt(42),
                Value::Bytes(b"https://example.com".to_vec()),
                Value::Int(2),
                Value::Int(1_700_000_000),
                Value::UInt(120),
            ],
            true,
        );
        assert_eq!(
            site.ok(),
            Some(Site {
                blog_id: 42,
                monitor_url: "https://example.com".into(),
                status: SiteStatus::ConfirmedDown,
                last_status_change: Some(UnixMillis::from_millis(1_700_000_000_000)),
                check_interval: Some(Duration::from_secs(120)),
            })
        );
    }

    #[test]
    fn null_or_zero_change_and_interval_are_unknown() {
        for (change, interval) in [(Value::NULL, Value::NULL), (Value::Int(0), Value::UInt(0))] {
            let url = Value::Bytes(b"http://a".to_vec());
            let mut values = row(Value::UInt(1), url, Value::Int(1), change);
            values.push(interval);
            let site = decode_site(values, true);
            assert_eq!(
                site.ok().map(|site| (site.last_status_change, site.check_interval)),
                Some((None, None))
            );
        }
    }

    #[test]
    fn unknown_status_is_a_bad_record() {
        let url = Value::Bytes(b"http://a".to_vec());
        let reason = reason(decode_site(row(Value::UInt(7), url, Value::Int(7), Value::NULL), false));
        assert!(reason.contains("site_status"), "{reason}");
    }

    #[test]
    fn blank_null_and_non_utf8_urls_are_bad_records() {
        for url in [
            Value::Bytes(b"  ".to_vec()),
            Value::NULL,
            Value::Bytes(vec![0xff, 0xfe]),
        ] {
            let reason = reason(decode_site(row(Value::UInt(3), url, Value::Int(1), Value::NULL), false));
            assert!(reason.contains("monitor_url"), "{reason}");
        }
    }

    #[test]
    fn negative_blog_id_is_a_bad_record_without_an_id() {
        let url = Value::Bytes(b"http://a".to_vec());
        let result = decode_site(row(Value::Int(-1), url, Value::Int(1), Value::NULL), false);
        assert!(
            matches!(result, Err(StoreError::BadRecord { blog_id: 0, .. })),
            "{result:?}"
        );
    }

    #[test]
    fn last_update_of_a_site_wins() {
        let update = |blog_id, millis| StatusUpdate {
            blog_id,
            status: SiteStatus::Down,
            last_status_change: UnixMillis::from_millis(millis),
        };
        let latest = last_update_per_site(&[update(1, 10), update(2, 20), update(1, 30)]);
        assert_eq!(latest, vec![update(2, 20), update(1, 30)]);
    }

    #[test]
    fn update_statement_has_five_parameters_per_site() {
        let update = StatusUpdate {
            blog_id: 9,
            status: SiteStatus::Running,
            last_status_change: UnixMillis::from_millis(1_700_000_000_999),
        };
        let (sql, params) = update_statement(&[update, StatusUpdate { blog_id: 10, ..update }]);
        assert_eq!(sql.matches('?').count(), 10);
        assert_eq!(params.len(), 10);
        assert_eq!(params[5], Value::from(1_700_000_000u64));
    }

    #[test]
    fn instants_a_timestamp_cannot_hold_are_written_as_null() {
        assert_eq!(timestamp_seconds(UnixMillis::EPOCH), None);
        assert_eq!(timestamp_seconds(UnixMillis::from_millis(4_000_000_000_000)), None);
        assert_eq!(timestamp_seconds(UnixMillis::from_millis(1_500)), Some(1));
    }
}
