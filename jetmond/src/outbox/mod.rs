//! WPCOM notifications that are never lost: a durable outbox between the status machine and WPCOM.
//!
//! The control thread hands each [`Notification`] to [`OutboxNotifier`], which writes it to the outbox
//! (a committed row of `jetmon_notification_outbox` with a database, an fsynced line of `outbox_file` in
//! embedded mode) and returns; only then does the notification count as sent. A delivery thread owned by
//! the notifier sends it to WPCOM with a few worker threads, retries with exponential backoff and jitter,
//! removes it after WPCOM accepted it and dead-letters it after `outbox_max_attempts` failed attempts or
//! `outbox_max_age_sec`. A crash at any point re-sends rather than forgets: delivery is at least once,
//! and every payload carries a `notification_id` for the receiver to drop duplicates.
//!
//! - [`backoff`]: retry delays (sans-IO).
//! - [`queue`]: which notification goes next, one site at a time and in order (sans-IO, fake clock).
//! - [`store_file`] / [`store_mysql`]: the two [`OutboxStore`]s.
//! - [`wpcom`]: the HTTPS client and the wire format of both delivery modes.
//! - [`delivery`]: the delivery thread and its workers.
//! - [`notifier`]: the [`Notifier`](crate::daemon::notify::Notifier) that ties them together.
//!
//! Why an append-only log for embedded mode rather than SQLite: it needs no C build and no new
//! dependency, an fsynced append is crash-safe by construction (a torn last line is detected and skipped),
//! it reads with `jq` like the other files jetmond writes, and the set of undelivered notifications is
//! small enough to index in memory, rebuilt at start by replaying the log (which is compacted when it
//! is mostly delivered entries).

pub mod backoff;
pub mod delivery;
pub mod notifier;
pub mod queue;
pub mod store_file;
pub mod store_mysql;
pub mod wpcom;

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::daemon::notify::{FileNotifier, Notifier};
use crate::status::{BlogId, Notification, UnixMillis};

pub use backoff::Backoff;
pub use delivery::{DeliverySettings, OutboxStats};
pub use notifier::OutboxNotifier;
pub use queue::DeliveryQueue;
pub use store_file::FileOutbox;
pub use store_mysql::MysqlOutbox;
pub use wpcom::{Deliver, DeliveryError, WpcomClient, WpcomSettings};

/// One notification in the outbox, with its delivery state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxEntry {
    /// The outbox's own number: increasing in the order notifications were accepted, so it orders a
    /// site's notifications; what `jetmond outbox replay ID` takes.
    pub seq: u64,
    /// Globally unique id sent as the payload's `notification_id`, for the receiver to drop duplicates.
    pub notification_id: String,
    /// What is delivered.
    pub notification: Notification,
    /// When the notifier accepted it.
    pub created_at: UnixMillis,
    /// When it was last (re)queued: `created_at`, or the time of a replay. `outbox_max_age_sec` counts
    /// from here, so a replayed dead letter gets a fresh life.
    pub enqueued_at: UnixMillis,
    /// Failed attempts so far.
    pub attempts: u32,
    /// Not to be tried before this instant.
    pub next_attempt_at: UnixMillis,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// A dead letter: kept, not retried, until replayed.
    pub dead: bool,
}

impl OutboxEntry {
    /// A new entry for `notification`, accepted at `now`, due at once.
    pub fn new(seq: u64, notification: Notification, now: UnixMillis) -> OutboxEntry {
        OutboxEntry {
            seq,
            notification_id: new_notification_id(now),
            notification,
            created_at: now,
            enqueued_at: now,
            attempts: 0,
            next_attempt_at: now,
            last_error: None,
            dead: false,
        }
    }

    /// The site.
    pub fn blog_id(&self) -> BlogId {
        self.notification.blog_id
    }
}

/// Which entries to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryState {
    /// Waiting for delivery (including those being retried).
    Pending,
    /// Dead letters.
    Dead,
}

/// Where undelivered notifications are kept. Every method returns only once its change is durable.
pub trait OutboxStore: Send {
    /// Stores `notification`, accepted at `now`, and returns its entry.
    fn append(&mut self, notification: &Notification, now: UnixMillis) -> Result<OutboxEntry, OutboxError>;
    /// The entries in `state`, in `seq` order.
    fn entries(&mut self, state: EntryState) -> Result<Vec<OutboxEntry>, OutboxError>;
    /// WPCOM accepted entry `seq`: forget it.
    fn delivered(&mut self, seq: u64) -> Result<(), OutboxError>;
    /// An attempt failed; `attempts` failed in all, the next is due at `next_attempt_at`.
    fn failed(&mut self, seq: u64, attempts: u32, next_attempt_at: UnixMillis, error: &str) -> Result<(), OutboxError>;
    /// Entry `seq` is given up on after `attempts` failed attempts.
    fn dead_letter(&mut self, seq: u64, attempts: u32, error: &str) -> Result<(), OutboxError>;
    /// Puts dead letter `seq` (or every dead letter, with `None`) back to pending with no failed
    /// attempts, due at `now`. Returns how many.
    fn replay(&mut self, seq: Option<u64>, now: UnixMillis) -> Result<usize, OutboxError>;
    /// Housekeeping the delivery thread runs now and then (the file store compacts its log).
    fn maintain(&mut self) -> Result<(), OutboxError> {
        Ok(())
    }
    /// Where the outbox is, for messages.
    fn location(&self) -> String;
}

/// Why the outbox could not store, read or deliver.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OutboxError {
    /// The outbox file could not be read or written.
    #[error("outbox file {}: {source}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
    /// The database outbox failed.
    #[error("notification outbox: {0}")]
    Database(String),
    /// A certificate or key file for WPCOM could not be used.
    #[error("{what} {}: {reason}", path.display())]
    Tls {
        /// Which file (CA, client certificate, client key).
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// `replay ID` named no dead letter.
    #[error("no dead letter with id {0} (see `jetmond outbox list --dead`)")]
    NoSuchDeadLetter(u64),
}

impl From<crate::store::StoreError> for OutboxError {
    fn from(error: crate::store::StoreError) -> Self {
        OutboxError::Database(error.to_string())
    }
}

/// Opens the outbox the config names: the database's table when `database` is set (rows of `owner`
/// only, or of every host with `None`, as the CLI wants), else `outbox_file`.
pub fn open_store(config: &Config, owner: Option<&str>) -> Result<Box<dyn OutboxStore>, OutboxError> {
    match &config.database {
        Some(db) => Ok(Box::new(MysqlOutbox::connect(db, owner.map(str::to_owned))?)),
        None => Ok(Box::new(FileOutbox::open(&config.outbox_file)?)),
    }
}

/// The notifier `jetmond run` uses: with `wpcom_url` set, an [`OutboxNotifier`] delivering to it (its
/// rows owned by `host_name`); without, a [`FileNotifier`] writing `notifications_file` only. Both keep
/// `notifications_file` as the local journal.
pub fn notifier_from_config(config: &Config, host_name: &str) -> Result<Box<dyn Notifier>, OutboxError> {
    let journal = FileNotifier::open(&config.notifications_file).map_err(|source| OutboxError::File {
        path: config.notifications_file.clone(),
        source,
    })?;
    if config.wpcom_url.is_empty() {
        tracing::warn!("wpcom_url is empty: notifications are only written to notifications_file");
        return Ok(Box::new(journal));
    }
    let client = WpcomClient::new(WpcomSettings::from_config(config))?;
    let store = open_store(config, Some(host_name))?;
    tracing::info!(url = %config.wpcom_url, mode = ?config.wpcom_mode, outbox = %store.location(), "delivering notifications to WPCOM");
    let notifier = OutboxNotifier::start(
        Some(journal),
        store,
        Arc::new(client),
        DeliverySettings::from_config(config),
    )?;
    Ok(Box::new(notifier))
}

/// 32 hex digits: the acceptance time in nanoseconds and 64 random bits, unique across hosts and restarts
/// without any coordination.
fn new_notification_id(now: UnixMillis) -> String {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|since| since.as_nanos() as u64)
        .unwrap_or_else(|_| now.as_millis().saturating_mul(1_000_000));
    format!("{nanos:016x}{:016x}", random_u64())
}

/// 64 random bits from the standard library's per-process random hash keys, mixed with a counter so
/// successive calls differ. Good for jitter and ids; not for secrets.
pub(crate) fn random_u64() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notification_ids_are_32_hex_digits_and_distinct() {
        let now = UnixMillis::from_millis(1_700_000_000_000);
        let ids: std::collections::HashSet<String> = (0..1000).map(|_| new_notification_id(now)).collect();
        assert_eq!(ids.len(), 1000);
        assert!(ids
            .iter()
            .all(|id| id.len() == 32 && id.chars().all(|c| c.is_ascii_hexdigit())));
    }
}
