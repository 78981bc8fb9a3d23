//! The database mode's outbox: the table `jetmon_notification_outbox` (migration 003, created by
//! `jetmond db init`) in the same MySQL/MariaDB as the sites.
//!
//! Every method is one autocommitted statement, so it is durable when it returns. Connections have the
//! same bounded timeouts as the site store. A row belongs to the host that wrote it (`owner`, its
//! `host_name`): hosts sharing one database each deliver their own notifications only.

use mysql::prelude::{FromValue, Queryable};
use mysql::{Pool, PooledConn, Row, Value};

use super::{EntryState, OutboxEntry, OutboxError, OutboxStore};
use crate::config::DatabaseConfig;
use crate::status::{Notification, UnixMillis};
use crate::store::mysql::{config_opts, open_pool, url_opts};

/// The table, as migration 003 names it.
pub const OUTBOX_TABLE: &str = "jetmon_notification_outbox";
/// `last_error` is a `varchar(1000)`; longer messages are cut (on a character boundary).
const LAST_ERROR_MAX_CHARS: usize = 1000;

const COLUMNS: &str = "id, notification_id, notification, created_at_ms, enqueued_at_ms, attempts, \
     next_attempt_at_ms, last_error, dead";

/// The outbox in `jetmon_notification_outbox`.
#[derive(Debug)]
pub struct MysqlOutbox {
    pool: Pool,
    server: String,
    /// Whose rows are read and replayed; `None`: every host's (the CLI).
    owner: Option<String>,
}

impl MysqlOutbox {
    /// Connects to the database of `cfg`, for the rows of `owner` (all rows with `None`; appending then
    /// writes an empty owner, which no daemon delivers, so only the daemon should append).
    pub fn connect(cfg: &DatabaseConfig, owner: Option<String>) -> Result<MysqlOutbox, OutboxError> {
        let (builder, server) = config_opts(cfg);
        Self::open(open_pool(builder, &server)?, server, owner)
    }

    /// As [`MysqlOutbox::connect`], with the connection given as a URL
    /// (`mysql://user:password@host:port/database`), as the tests do.
    pub fn from_url(url: &str, owner: Option<String>) -> Result<MysqlOutbox, OutboxError> {
        let (builder, server) = url_opts(url)?;
        Self::open(open_pool(builder, &server)?, server, owner)
    }

    fn open(pool: Pool, server: String, owner: Option<String>) -> Result<MysqlOutbox, OutboxError> {
        let outbox = MysqlOutbox { pool, server, owner };
        // Fail at start, with the fix, rather than at the first status change.
        let mut conn = outbox.conn()?;
        conn.query_drop(format!("SELECT 1 FROM {OUTBOX_TABLE} LIMIT 0"))
            .map_err(|error| {
                OutboxError::Database(format!(
                    "{OUTBOX_TABLE} is not usable on {} (run `jetmond db init`): {error}",
                    outbox.server
                ))
            })?;
        Ok(outbox)
    }

    fn conn(&self) -> Result<PooledConn, OutboxError> {
        self.pool.get_conn().map_err(|error| self.error("connecting", error))
    }

    fn error(&self, context: &str, error: mysql::Error) -> OutboxError {
        OutboxError::Database(format!("{context} on {}: {error}", self.server))
    }

    fn owner_filter(&self) -> (&'static str, Vec<Value>) {
        match &self.owner {
            Some(owner) => (" AND owner = ?", vec![Value::from(owner.as_str())]),
            None => ("", Vec::new()),
        }
    }
}

impl OutboxStore for MysqlOutbox {
    fn append(&mut self, notification: &Notification, now: UnixMillis) -> Result<OutboxEntry, OutboxError> {
        let json = serde_json::to_string(notification)
            .map_err(|error| OutboxError::Database(format!("cannot encode notification: {error}")))?;
        let mut entry = OutboxEntry::new(0, notification.clone(), now);
        let mut conn = self.conn()?;
        conn.exec_drop(
            format!(
                "INSERT INTO {OUTBOX_TABLE} (notification_id, owner, blog_id, notification, created_at_ms, \
                 enqueued_at_ms, attempts, next_attempt_at_ms) VALUES (?, ?, ?, ?, ?, ?, 0, ?)"
            ),
            (
                &entry.notification_id,
                self.owner.as_deref().unwrap_or_default(),
                notification.blog_id,
                json,
                now.as_millis(),
                now.as_millis(),
                now.as_millis(),
            ),
        )
        .map_err(|error| {
            self.error(
                &format!("storing a notification of blog {}", notification.blog_id),
                error,
            )
        })?;
        entry.seq = conn.last_insert_id();
        Ok(entry)
    }

    fn entries(&mut self, state: EntryState) -> Result<Vec<OutboxEntry>, OutboxError> {
        let (filter, mut params) = self.owner_filter();
        params.insert(0, Value::from(u8::from(state == EntryState::Dead)));
        let sql = format!("SELECT {COLUMNS} FROM {OUTBOX_TABLE} WHERE dead = ?{filter} ORDER BY id");
        let mut conn = self.conn()?;
        let rows: Vec<Row> = conn
            .exec(sql, params)
            .map_err(|error| self.error("reading the outbox", error))?;
        let mut entries = Vec::with_capacity(rows.len());
        for row in rows {
            match decode_entry(row.unwrap()) {
                Ok(entry) => entries.push(entry),
                // One bad row must not stop every other delivery; it stays in the table for a human.
                Err(reason) => tracing::error!(table = OUTBOX_TABLE, "skipping an unreadable outbox row: {reason}"),
            }
        }
        Ok(entries)
    }

    fn delivered(&mut self, seq: u64) -> Result<(), OutboxError> {
        let mut conn = self.conn()?;
        conn.exec_drop(format!("DELETE FROM {OUTBOX_TABLE} WHERE id = ?"), (seq,))
            .map_err(|error| self.error(&format!("removing delivered notification {seq}"), error))
    }

    fn failed(&mut self, seq: u64, attempts: u32, next_attempt_at: UnixMillis, error: &str) -> Result<(), OutboxError> {
        let mut conn = self.conn()?;
        conn.exec_drop(
            format!("UPDATE {OUTBOX_TABLE} SET attempts = ?, next_attempt_at_ms = ?, last_error = ? WHERE id = ?"),
            (attempts, next_attempt_at.as_millis(), truncated(error), seq),
        )
        .map_err(|e| self.error(&format!("recording a failed attempt of notification {seq}"), e))
    }

    fn dead_letter(&mut self, seq: u64, attempts: u32, error: &str) -> Result<(), OutboxError> {
        let mut conn = self.conn()?;
        conn.exec_drop(
            format!("UPDATE {OUTBOX_TABLE} SET dead = 1, attempts = ?, last_error = ? WHERE id = ?"),
            (attempts, truncated(error), seq),
        )
        .map_err(|e| self.error(&format!("dead-lettering notification {seq}"), e))
    }

    fn replay(&mut self, seq: Option<u64>, now: UnixMillis) -> Result<usize, OutboxError> {
        let (filter, owner_params) = self.owner_filter();
        let mut params = vec![Value::from(now.as_millis()), Value::from(now.as_millis())];
        let sql = match seq {
            Some(seq) => {
                params.push(Value::from(seq));
                format!(
                    "UPDATE {OUTBOX_TABLE} SET dead = 0, attempts = 0, enqueued_at_ms = ?, next_attempt_at_ms = ? \
                     WHERE dead = 1 AND id = ?"
                )
            }
            None => {
                params.extend(owner_params);
                format!(
                    "UPDATE {OUTBOX_TABLE} SET dead = 0, attempts = 0, enqueued_at_ms = ?, next_attempt_at_ms = ? \
                     WHERE dead = 1{filter}"
                )
            }
        };
        let mut conn = self.conn()?;
        conn.exec_drop(sql, params)
            .map_err(|error| self.error("replaying dead letters", error))?;
        let replayed = usize::try_from(conn.affected_rows()).unwrap_or(usize::MAX);
        match seq {
            Some(seq) if replayed == 0 => Err(OutboxError::NoSuchDeadLetter(seq)),
            _ => Ok(replayed),
        }
    }

    fn location(&self) -> String {
        format!("{}/{OUTBOX_TABLE}", self.server)
    }
}

/// `error` cut to fit `last_error`.
fn truncated(error: &str) -> &str {
    match error.char_indices().nth(LAST_ERROR_MAX_CHARS) {
        Some((end, _)) => &error[..end],
        None => error,
    }
}

/// One row of `SELECT {COLUMNS}`, or what is wrong with it.
fn decode_entry(values: Vec<Value>) -> Result<OutboxEntry, String> {
    let mut values = values.into_iter();
    let mut next = || values.next().unwrap_or(Value::NULL);
    fn take<T: FromValue>(value: Value, column: &str) -> Result<T, String> {
        T::from_value_opt(value.clone()).map_err(|_| format!("{column} {value:?} has an unexpected type"))
    }
    let seq: u64 = take(next(), "id")?;
    let context = |reason: String| format!("row {seq}: {reason}");
    let notification_id: String = take(next(), "notification_id").map_err(context)?;
    let json: String = take(next(), "notification").map_err(context)?;
    let notification: Notification =
        serde_json::from_str(&json).map_err(|error| context(format!("notification is not readable: {error}")))?;
    let created_at: u64 = take(next(), "created_at_ms").map_err(context)?;
    let enqueued_at: u64 = take(next(), "enqueued_at_ms").map_err(context)?;
    let attempts: u32 = take(next(), "attempts").map_err(context)?;
    let next_attempt_at: u64 = take(next(), "next_attempt_at_ms").map_err(context)?;
    let last_error: Option<String> = take(next(), "last_error").map_err(context)?;
    let dead: u8 = take(next(), "dead").map_err(context)?;
    Ok(OutboxEntry {
        seq,
        notification_id,
        notification,
        created_at: UnixMillis::from_millis(created_at),
        enqueued_at: UnixMillis::from_millis(enqueued_at),
        attempts,
        next_attempt_at: UnixMillis::from_millis(next_attempt_at),
        last_error,
        dead: dead != 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_errors_are_cut_on_a_character_boundary() {
        let long = "é".repeat(LAST_ERROR_MAX_CHARS + 5);
        assert_eq!(truncated(&long).chars().count(), LAST_ERROR_MAX_CHARS);
        assert_eq!(truncated("short"), "short");
    }

    #[test]
    fn a_row_with_a_broken_notification_is_reported_not_panicked_on() {
        let row = vec![
            Value::from(7u64),
            Value::from("abc"),
            Value::from("{not json"),
            Value::from(1u64),
            Value::from(1u64),
            Value::from(0u32),
            Value::from(1u64),
            Value::NULL,
            Value::from(0u8),
        ];
        assert!(decode_entry(row).is_err_and(|reason| reason.starts_with("row 7: notification")));
    }
}
