//! Where status-change notifications go. The daemon hands each [`Notification`] to a [`Notifier`]; the
//! embedded default appends them to a JSON Lines file and logs them. Delivery to WPCOM with a durable
//! outbox is a notifier of its own.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::status::Notification;

/// Why a notification could not be handed on.
#[derive(Debug, thiserror::Error)]
#[error("cannot record notification for blog {blog_id} in {path}: {source}")]
pub struct NotifyError {
    /// The site.
    pub blog_id: u64,
    /// Where it was going.
    pub path: PathBuf,
    /// The IO error.
    pub source: std::io::Error,
}

/// Receives every status change, in order.
pub trait Notifier: Send {
    /// Takes one notification. An error is logged by the caller; the notifier must not lose what it
    /// already accepted.
    fn notify(&mut self, notification: &Notification) -> Result<(), NotifyError>;

    /// Delivery counts for the ops view, for a notifier that delivers through the WPCOM outbox.
    fn delivery_stats(&self) -> Option<crate::outbox::OutboxStats> {
        None
    }
}

/// Appends notifications to a JSON Lines file (one object per line, flushed and synced per line so a crash
/// loses nothing already written).
pub struct FileNotifier {
    path: PathBuf,
    file: File,
}

impl FileNotifier {
    /// Opens (creating) the file for appending.
    pub fn open(path: &Path) -> std::io::Result<FileNotifier> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(FileNotifier {
            path: path.to_path_buf(),
            file,
        })
    }
}

impl Notifier for FileNotifier {
    fn notify(&mut self, n: &Notification) -> Result<(), NotifyError> {
        let err = |source| NotifyError {
            blog_id: n.blog_id,
            path: self.path.clone(),
            source,
        };
        let mut line = serde_json::to_vec(n).map_err(|e| err(std::io::Error::other(e)))?;
        line.push(b'\n');
        self.file.write_all(&line).map_err(err)?;
        self.file.sync_data().map_err(err)
    }
}
