//! The embedded mode's outbox: an append-only JSON Lines log, indexed in memory.
//!
//! Each change is one line, written and fsynced before the call returns: `entry` (a whole entry, as
//! accepted or as rewritten by compaction), `done`, `fail`, `dead`, `replay`. The index of live entries is
//! rebuilt by replaying the log at open. A crash can only tear the last line; such a line does not parse
//! and is skipped with a warning (it was never acknowledged). Reading the log back after each write also
//! picks up what another process appended (`jetmond outbox replay` while the daemon runs).
//!
//! The log is compacted (live entries rewritten to a new file, fsynced, renamed over the old one) when
//! most of it is about entries already delivered. Only the delivery thread compacts, never the CLI:
//! a process still appending to the old file after the rename would write into a deleted file.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{EntryState, OutboxEntry, OutboxError, OutboxStore};
use crate::status::{Notification, UnixMillis};

/// Compaction is not worth it below this many lines.
const COMPACT_MIN_LINES: u64 = 10_000;
/// Compact when the log has this many lines per live entry or more.
const COMPACT_LINES_PER_LIVE_ENTRY: u64 = 4;

/// One line of the log.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
enum Record {
    /// A whole entry: accepted, or rewritten by compaction.
    Entry(OutboxEntry),
    /// Delivered: the entry is gone.
    Done { seq: u64 },
    /// An attempt failed.
    Fail {
        seq: u64,
        attempts: u32,
        next_attempt_at: UnixMillis,
        error: String,
    },
    /// Dead-lettered.
    Dead { seq: u64, attempts: u32, error: String },
    /// A dead letter put back to pending.
    Replay { seq: u64, at: UnixMillis },
}

/// The outbox of embedded mode, in `outbox_file`.
#[derive(Debug)]
pub struct FileOutbox {
    path: PathBuf,
    appender: File,
    reader: File,
    /// How far the log has been applied to `entries` (always the end of a line).
    applied: u64,
    /// Lines in the log, for the compaction rule.
    lines: u64,
    entries: BTreeMap<u64, OutboxEntry>,
    next_seq: u64,
    /// [`COMPACT_MIN_LINES`], lowered by tests.
    compact_min_lines: u64,
}

impl FileOutbox {
    /// Opens (creating) the log at `path` and rebuilds the index from it.
    pub fn open(path: &Path) -> Result<FileOutbox, OutboxError> {
        let io = |source| OutboxError::File {
            path: path.to_owned(),
            source,
        };
        let mut appender = OpenOptions::new().create(true).append(true).open(path).map_err(io)?;
        let reader = File::open(path).map_err(io)?;
        let mut outbox = FileOutbox {
            path: path.to_owned(),
            appender: appender.try_clone().map_err(io)?,
            reader,
            applied: 0,
            lines: 0,
            entries: BTreeMap::new(),
            next_seq: 1,
            compact_min_lines: COMPACT_MIN_LINES,
        };
        let torn = outbox.refresh()?;
        if torn {
            // End the torn line so the next record starts on a line of its own.
            appender
                .write_all(b"\n")
                .and_then(|()| appender.sync_data())
                .map_err(io)?;
            outbox.refresh()?;
        }
        Ok(outbox)
    }

    /// Applies what was appended since the last call. Returns whether the log ends in a partial line.
    fn refresh(&mut self) -> Result<bool, OutboxError> {
        let mut tail = Vec::new();
        self.reader
            .seek(SeekFrom::Start(self.applied))
            .and_then(|_| self.reader.read_to_end(&mut tail))
            .map_err(|source| self.io(source))?;
        let complete = tail.iter().rposition(|byte| *byte == b'\n').map_or(0, |last| last + 1);
        for line in tail[..complete].split(|byte| *byte == b'\n') {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            self.lines += 1;
            match serde_json::from_slice::<Record>(line) {
                Ok(record) => self.apply(record),
                Err(error) => tracing::warn!(
                    file = %self.path.display(),
                    "skipping an unreadable outbox line (torn by a crash?): {error}"
                ),
            }
        }
        self.applied += complete as u64;
        Ok(complete < tail.len())
    }

    fn apply(&mut self, record: Record) {
        match record {
            Record::Entry(entry) => {
                self.next_seq = self.next_seq.max(entry.seq.saturating_add(1));
                self.entries.insert(entry.seq, entry);
            }
            Record::Done { seq } => {
                self.entries.remove(&seq);
            }
            Record::Fail {
                seq,
                attempts,
                next_attempt_at,
                error,
            } => {
                if let Some(entry) = self.entries.get_mut(&seq) {
                    entry.attempts = attempts;
                    entry.next_attempt_at = next_attempt_at;
                    entry.last_error = Some(error);
                }
            }
            Record::Dead { seq, attempts, error } => {
                if let Some(entry) = self.entries.get_mut(&seq) {
                    entry.attempts = attempts;
                    entry.last_error = Some(error);
                    entry.dead = true;
                }
            }
            Record::Replay { seq, at } => {
                if let Some(entry) = self.entries.get_mut(&seq).filter(|entry| entry.dead) {
                    entry.dead = false;
                    entry.attempts = 0;
                    entry.enqueued_at = at;
                    entry.next_attempt_at = at;
                }
            }
        }
    }

    /// Appends `records` as lines, fsyncs, and applies them (with anything another process appended).
    fn write(&mut self, records: &[Record]) -> Result<(), OutboxError> {
        let mut text = Vec::new();
        for record in records {
            serde_json::to_writer(&mut text, record).map_err(|error| self.io(std::io::Error::other(error)))?;
            text.push(b'\n');
        }
        self.appender
            .write_all(&text)
            .and_then(|()| self.appender.sync_data())
            .map_err(|source| self.io(source))?;
        self.refresh().map(|_| ())
    }

    /// Rewrites the log with only the live entries when most of it is history.
    fn compact_if_worthwhile(&mut self) -> Result<(), OutboxError> {
        let live = self.entries.len() as u64;
        if self.lines < self.compact_min_lines || self.lines < live.saturating_mul(COMPACT_LINES_PER_LIVE_ENTRY) {
            return Ok(());
        }
        self.refresh()?;
        let mut compacted = self.path.clone().into_os_string();
        compacted.push(".compact");
        let compacted = PathBuf::from(compacted);
        let io = |source| OutboxError::File {
            path: compacted.clone(),
            source,
        };
        let mut text = Vec::new();
        for entry in self.entries.values() {
            serde_json::to_writer(&mut text, &Record::Entry(entry.clone()))
                .map_err(|error| io(std::io::Error::other(error)))?;
            text.push(b'\n');
        }
        let mut file = File::create(&compacted).map_err(io)?;
        file.write_all(&text).and_then(|()| file.sync_all()).map_err(io)?;
        std::fs::rename(&compacted, &self.path).map_err(|source| self.io(source))?;
        // The rename is durable only once the directory is synced.
        if let Some(dir) = self.path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            File::open(dir)
                .and_then(|dir| dir.sync_all())
                .map_err(|source| self.io(source))?;
        }
        let before = self.lines;
        self.appender = OpenOptions::new()
            .append(true)
            .open(&self.path)
            .map_err(|source| self.io(source))?;
        self.reader = File::open(&self.path).map_err(|source| self.io(source))?;
        self.applied = text.len() as u64;
        self.lines = live;
        tracing::info!(file = %self.path.display(), lines_before = before, live, "outbox log compacted");
        Ok(())
    }

    fn io(&self, source: std::io::Error) -> OutboxError {
        OutboxError::File {
            path: self.path.clone(),
            source,
        }
    }
}

impl OutboxStore for FileOutbox {
    fn append(&mut self, notification: &Notification, now: UnixMillis) -> Result<OutboxEntry, OutboxError> {
        let entry = OutboxEntry::new(self.next_seq, notification.clone(), now);
        self.write(&[Record::Entry(entry.clone())])?;
        Ok(entry)
    }

    fn entries(&mut self, state: EntryState) -> Result<Vec<OutboxEntry>, OutboxError> {
        self.refresh()?;
        let dead = state == EntryState::Dead;
        Ok(self
            .entries
            .values()
            .filter(|entry| entry.dead == dead)
            .cloned()
            .collect())
    }

    fn delivered(&mut self, seq: u64) -> Result<(), OutboxError> {
        self.write(&[Record::Done { seq }])
    }

    fn failed(&mut self, seq: u64, attempts: u32, next_attempt_at: UnixMillis, error: &str) -> Result<(), OutboxError> {
        self.write(&[Record::Fail {
            seq,
            attempts,
            next_attempt_at,
            error: error.to_owned(),
        }])
    }

    fn dead_letter(&mut self, seq: u64, attempts: u32, error: &str) -> Result<(), OutboxError> {
        self.write(&[Record::Dead {
            seq,
            attempts,
            error: error.to_owned(),
        }])
    }

    fn replay(&mut self, seq: Option<u64>, now: UnixMillis) -> Result<usize, OutboxError> {
        self.refresh()?;
        let dead: Vec<u64> = self
            .entries
            .values()
            .filter(|entry| entry.dead && seq.is_none_or(|wanted| entry.seq == wanted))
            .map(|entry| entry.seq)
            .collect();
        if let (Some(wanted), true) = (seq, dead.is_empty()) {
            return Err(OutboxError::NoSuchDeadLetter(wanted));
        }
        let records: Vec<Record> = dead.iter().map(|seq| Record::Replay { seq: *seq, at: now }).collect();
        if !records.is_empty() {
            self.write(&records)?;
        }
        Ok(records.len())
    }

    fn maintain(&mut self) -> Result<(), OutboxError> {
        self.compact_if_worthwhile()
    }

    fn location(&self) -> String {
        self.path.display().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::SiteStatus;

    struct TempLog(PathBuf);

    impl TempLog {
        fn new(tag: &str) -> TempLog {
            let path = std::env::temp_dir().join(format!("jetmond-outbox-{tag}-{}.jsonl", std::process::id()));
            let _ = std::fs::remove_file(&path);
            TempLog(path)
        }

        fn open(&self) -> FileOutbox {
            match FileOutbox::open(&self.0) {
                Ok(outbox) => outbox,
                Err(error) => panic!("{error}"),
            }
        }
    }

    impl Drop for TempLog {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn note(blog_id: u64) -> Notification {
        Notification {
            blog_id,
            monitor_url: "https://a.example".into(),
            status_id: SiteStatus::Down,
            last_check: UnixMillis::from_millis(5),
            last_status_change: UnixMillis::from_millis(6),
            checks: vec![],
        }
    }

    fn seqs(outbox: &mut FileOutbox, state: EntryState) -> Vec<u64> {
        outbox
            .entries(state)
            .map(|entries| entries.iter().map(|entry| entry.seq).collect())
            .unwrap_or_default()
    }

    const NOW: UnixMillis = UnixMillis::from_millis(1_000);

    #[test]
    fn state_survives_reopening() {
        let log = TempLog::new("reopen");
        let mut outbox = log.open();
        for blog in 1..=4 {
            assert!(outbox.append(&note(blog), NOW).is_ok());
        }
        assert!(outbox.delivered(2).is_ok());
        assert!(outbox.failed(3, 1, UnixMillis::from_millis(9_000), "HTTP 500").is_ok());
        assert!(outbox.dead_letter(4, 20, "HTTP 500").is_ok());
        drop(outbox);

        let mut outbox = log.open();
        assert_eq!(seqs(&mut outbox, EntryState::Pending), [1, 3]);
        assert_eq!(seqs(&mut outbox, EntryState::Dead), [4]);
        let failed = outbox
            .entries(EntryState::Pending)
            .ok()
            .and_then(|e| e.into_iter().nth(1));
        assert_eq!(
            failed.map(|e| (e.attempts, e.next_attempt_at.as_millis(), e.last_error)),
            Some((1, 9_000, Some("HTTP 500".into())))
        );
        assert_eq!(
            outbox.append(&note(5), NOW).map(|e| e.seq).ok(),
            Some(5),
            "seq keeps growing"
        );
    }

    #[test]
    fn torn_last_line_is_skipped_and_the_log_stays_usable() {
        let log = TempLog::new("torn");
        let mut outbox = log.open();
        assert!(outbox.append(&note(1), NOW).is_ok());
        drop(outbox);
        let mut file = OpenOptions::new().append(true).open(&log.0).ok();
        let torn = file
            .as_mut()
            .map(|file| file.write_all(br#"{"op":"entry","seq":2,"notif"#));
        assert!(matches!(torn, Some(Ok(()))));

        let mut outbox = log.open();
        assert_eq!(seqs(&mut outbox, EntryState::Pending), [1]);
        assert!(outbox.append(&note(3), NOW).is_ok());
        drop(outbox);
        assert_eq!(seqs(&mut log.open(), EntryState::Pending), [1, 2]);
    }

    #[test]
    fn replay_puts_dead_letters_back_with_a_fresh_life() {
        let log = TempLog::new("replay");
        let mut outbox = log.open();
        for blog in 1..=3 {
            assert!(outbox.append(&note(blog), NOW).is_ok());
        }
        assert!(outbox.dead_letter(1, 20, "gone").is_ok());
        assert!(outbox.dead_letter(2, 20, "gone").is_ok());
        assert!(matches!(
            outbox.replay(Some(3), NOW),
            Err(OutboxError::NoSuchDeadLetter(3))
        ));
        let later = UnixMillis::from_millis(50_000);
        assert_eq!(outbox.replay(Some(1), later).ok(), Some(1));
        assert_eq!(seqs(&mut outbox, EntryState::Dead), [2]);
        let replayed = outbox
            .entries(EntryState::Pending)
            .ok()
            .and_then(|e| e.into_iter().next());
        assert_eq!(
            replayed.map(|e| (e.seq, e.attempts, e.enqueued_at, e.created_at)),
            Some((1, 0, later, NOW))
        );
        assert_eq!(outbox.replay(None, later).ok(), Some(1));
        assert_eq!(seqs(&mut log.open(), EntryState::Pending), [1, 2, 3]);
    }

    #[test]
    fn another_writer_is_seen_without_reopening() {
        let log = TempLog::new("two-writers");
        let mut daemon = log.open();
        assert!(daemon.append(&note(1), NOW).is_ok());
        assert!(daemon.dead_letter(1, 3, "x").is_ok());
        let mut cli = log.open();
        assert_eq!(cli.replay(None, NOW).ok(), Some(1));
        assert_eq!(seqs(&mut daemon, EntryState::Pending), [1]);
    }

    #[test]
    fn compaction_keeps_exactly_the_live_entries() {
        let log = TempLog::new("compact");
        let mut outbox = log.open();
        outbox.compact_min_lines = 100;
        let total = 400;
        for blog in 1..=total {
            assert!(outbox.append(&note(blog), NOW).is_ok());
            if blog % 10 != 0 {
                assert!(outbox.delivered(blog).is_ok());
            }
        }
        assert!(outbox.dead_letter(200, 5, "gone").is_ok());
        assert!(outbox.maintain().is_ok());
        let size = std::fs::metadata(&log.0).map(|meta| meta.len()).unwrap_or(u64::MAX);
        assert!(size < 20 * 1024, "log not compacted: {size} bytes");
        let live: Vec<u64> = (1..=total).filter(|blog| blog % 10 == 0 && *blog != 200).collect();
        assert_eq!(seqs(&mut outbox, EntryState::Pending), live);
        assert!(outbox.append(&note(1), NOW).is_ok());
        let mut reopened = log.open();
        assert_eq!(seqs(&mut reopened, EntryState::Dead), [200]);
        assert_eq!(seqs(&mut reopened, EntryState::Pending).len(), live.len() + 1);
    }
}
