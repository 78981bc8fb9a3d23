//! Where sites and their statuses live: MySQL (`jetpack_monitor_subscription`, the production setup) or a
//! site-list file plus a local state file (the embedded default). The control thread sees only
//! [`SiteStore`]; it never blocks the engine's loops.

use std::time::Duration;

use crate::status::{SiteStatus, UnixMillis};

/// A site to check in a round, as the store knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    /// WPCOM blog id (the primary key).
    pub blog_id: u64,
    /// The URL to HEAD.
    pub monitor_url: String,
    /// Status as last persisted.
    pub status: SiteStatus,
    /// When that status began, if known.
    pub last_status_change: Option<UnixMillis>,
    /// The site's own check interval (`USE_VARIABLE_CHECK_INTERVALS`); `None` uses the round interval.
    pub check_interval: Option<Duration>,
}

/// A status change to write back (with `DB_UPDATES_ENABLE`, or always for the state file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusUpdate {
    /// The site.
    pub blog_id: u64,
    /// Its new status.
    pub status: SiteStatus,
    /// When it changed.
    pub last_status_change: UnixMillis,
}

/// Why the store failed. The control thread logs it, keeps checking what it has loaded and retries with
/// backoff; it never exits for a store error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database could not be reached or answered with an error.
    #[error("database error: {0}")]
    Database(String),
    /// A row or line holds a value we cannot use; the site is skipped, the rest goes on.
    #[error("bad record for blog {blog_id}: {reason}")]
    BadRecord {
        /// The site's id (0 when unknown).
        blog_id: u64,
        /// What is wrong.
        reason: String,
    },
    /// A local file could not be read or written.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: std::path::PathBuf,
        /// The IO error.
        source: std::io::Error,
    },
}

pub mod file;
pub mod mysql;

pub use file::FileStore;

/// A source of sites and a sink for their statuses.
pub trait SiteStore: Send {
    /// Loads the active sites of this host, page by page (bounded memory per page), calling `page` for each.
    /// A record that cannot be used is reported through `bad` and skipped.
    fn load_sites(
        &mut self,
        page: &mut dyn FnMut(Vec<Site>),
        bad: &mut dyn FnMut(StoreError),
    ) -> Result<(), StoreError>;

    /// With bucket leases, how many buckets this host holds right now; `None` without leases.
    fn buckets_held(&self) -> Option<usize> {
        None
    }

    /// Writes status changes back, in one batch.
    fn persist_statuses(&mut self, updates: &[StatusUpdate]) -> Result<(), StoreError>;
}
