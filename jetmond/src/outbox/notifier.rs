//! [`OutboxNotifier`]: the [`Notifier`] of `jetmond run` when `wpcom_url` is set.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use super::delivery::{DeliveryThread, SharedStore};
use super::{Deliver, DeliverySettings, OutboxError, OutboxStats, OutboxStore};
use crate::daemon::notify::{FileNotifier, Notifier, NotifyError};
use crate::status::{Notification, UnixMillis};

/// How long dropping the notifier waits for the delivery thread.
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// Persists each notification in the outbox, then returns; a delivery thread it owns sends them to WPCOM.
///
/// `notify` costs one durable write to the outbox (plus one to the journal): the control thread never
/// waits for WPCOM. When the outbox cannot be written (the database is down), the notification is held in
/// memory and written, in order, before the next one; until then it is not durable, and `notify` says so.
pub struct OutboxNotifier {
    journal: Option<FileNotifier>,
    store: SharedStore,
    location: String,
    unsaved: VecDeque<(Notification, UnixMillis)>,
    delivery: DeliveryThread,
}

impl OutboxNotifier {
    /// Starts delivering what `store` holds and what is notified from now on, with `deliverer`. Each
    /// notification is also appended to `journal` (`notifications_file`) when one is given.
    pub fn start(
        journal: Option<FileNotifier>,
        store: Box<dyn OutboxStore>,
        deliverer: Arc<dyn Deliver>,
        settings: DeliverySettings,
    ) -> Result<OutboxNotifier, OutboxError> {
        let location = store.location();
        let store: SharedStore = Arc::new(Mutex::new(store));
        let delivery =
            DeliveryThread::start(Arc::clone(&store), deliverer, settings).map_err(|source| OutboxError::File {
                path: location.clone().into(),
                source,
            })?;
        Ok(OutboxNotifier {
            journal,
            store,
            location,
            unsaved: VecDeque::new(),
            delivery,
        })
    }

    /// Counts for metrics.
    pub fn stats(&self) -> OutboxStats {
        self.delivery.stats()
    }

    /// Stops delivery, waiting at most [`SHUTDOWN_TIMEOUT`]; undelivered notifications stay in the outbox.
    pub fn shutdown(mut self) {
        self.delivery.stop(SHUTDOWN_TIMEOUT);
    }

    /// Writes the held-back notifications, oldest first, stopping at the first failure (order matters).
    fn save_unsaved(&mut self) -> Result<(), OutboxError> {
        let mut store = self.store.lock().unwrap_or_else(PoisonError::into_inner);
        while let Some((notification, accepted_at)) = self.unsaved.front() {
            let entry = store.append(notification, *accepted_at)?;
            self.unsaved.pop_front();
            self.delivery.queued(entry);
        }
        Ok(())
    }
}

impl Notifier for OutboxNotifier {
    fn delivery_stats(&self) -> Option<crate::outbox::OutboxStats> {
        Some(self.stats())
    }

    fn notify(&mut self, notification: &Notification) -> Result<(), NotifyError> {
        let journaled = match &mut self.journal {
            Some(journal) => journal.notify(notification),
            None => Ok(()),
        };
        self.unsaved
            .push_back((notification.clone(), UnixMillis::from(SystemTime::now())));
        if let Err(error) = self.save_unsaved() {
            return Err(NotifyError {
                blog_id: notification.blog_id,
                path: self.location.clone().into(),
                source: std::io::Error::other(format!(
                    "{error}; {} notification(s) held in memory until the outbox can be written",
                    self.unsaved.len()
                )),
            });
        }
        journaled
    }
}

impl Drop for OutboxNotifier {
    fn drop(&mut self) {
        if !self.unsaved.is_empty() {
            // A last try: these are in the journal, but only the outbox gets them delivered.
            if let Err(error) = self.save_unsaved() {
                tracing::error!(
                    lost = self.unsaved.len(),
                    "notifications never written to the outbox (see notifications_file): {error}"
                );
            }
        }
        self.delivery.stop(SHUTDOWN_TIMEOUT);
    }
}
