//! `jetmond outbox list|replay`: look at and resend the notifications the outbox holds.
//!
//! Both work beside a running daemon: `replay` only marks dead letters pending again, and the daemon picks
//! them up at its next re-read of the outbox (within `outbox::delivery::RESCAN_INTERVAL`).

use std::path::PathBuf;
use std::time::SystemTime;

use jetmond::outbox::{open_store, EntryState, OutboxEntry};
use jetmond::status::UnixMillis;

use super::run::{load_config, RunError};

/// Options of `jetmond outbox list`.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// List the dead letters instead of the notifications waiting for delivery.
    #[arg(long)]
    pub dead: bool,
    /// The JSON config file naming the outbox (`database` or `outbox_file`).
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: PathBuf,
}

/// Options of `jetmond outbox replay`.
#[derive(Debug, clap::Args)]
#[command(group = clap::ArgGroup::new("which").required(true))]
pub struct ReplayArgs {
    /// The dead letter to send again (its `id` in `jetmond outbox list --dead`).
    #[arg(group = "which")]
    pub id: Option<u64>,
    /// Send every dead letter again.
    #[arg(long, group = "which")]
    pub all: bool,
    /// The JSON config file naming the outbox (`database` or `outbox_file`).
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: PathBuf,
}

/// Prints one JSON object per entry, oldest first, to stdout.
pub fn list(args: ListArgs) -> Result<(), RunError> {
    let config = load_config(Some(&args.config))?;
    let mut store = open_store(&config, None)?;
    let state = if args.dead {
        EntryState::Dead
    } else {
        EntryState::Pending
    };
    let entries = store.entries(state)?;
    for entry in &entries {
        println!("{}", listing(entry));
    }
    eprintln!(
        "{} {} in {}",
        entries.len(),
        if args.dead {
            "dead letter(s)"
        } else {
            "pending notification(s)"
        },
        store.location()
    );
    Ok(())
}

/// Puts one or every dead letter back to pending.
pub fn replay(args: ReplayArgs) -> Result<(), RunError> {
    let config = load_config(Some(&args.config))?;
    let mut store = open_store(&config, None)?;
    let which = if args.all { None } else { args.id };
    let replayed = store.replay(which, UnixMillis::from(SystemTime::now()))?;
    println!(
        "{replayed} dead letter(s) of {} queued for delivery again",
        store.location()
    );
    Ok(())
}

fn listing(entry: &OutboxEntry) -> serde_json::Value {
    serde_json::json!({
        "id": entry.seq,
        "notification_id": entry.notification_id,
        "blog_id": entry.notification.blog_id,
        "status_id": entry.notification.status_id,
        "monitor_url": entry.notification.monitor_url,
        "created_at": entry.created_at,
        "attempts": entry.attempts,
        "next_attempt_at": entry.next_attempt_at,
        "last_error": entry.last_error,
        "dead": entry.dead,
    })
}
