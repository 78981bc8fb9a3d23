//! Asking the verifliers. Each veriflier gets a few worker threads of its own, so one that hangs delays
//! only its own answers (bounded by the request timeout) and never the control loop: the loop hands
//! batches over a channel and picks replies up from another one.
//!
//! A `v1` veriflier's answer carries the results. A `legacy` (jetmon.js) veriflier only acknowledges the
//! batch; its results arrive later at the [`legacy_callback`](super::legacy_callback) server, which puts
//! them on the same reply channel ([`VeriflierPool::reply_sender`]).

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use veriflierd::client::VeriflierClient;
use veriflierd::protocol::{CheckItem, RemoteStatus, ResultItem};

use crate::config::VeriflierMode;
use crate::status::{BlogId, CheckOutcome};

/// Requests in flight to one veriflier at once.
pub const WORKERS_PER_VERIFLIER: usize = 4;

/// What came back from a veriflier about one site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VeriflierReply {
    /// The veriflier checked the site.
    Answer {
        /// The veriflier's configured name.
        veriflier: String,
        /// The site.
        blog_id: BlogId,
        /// The URL it checked.
        monitor_url: String,
        /// What it saw.
        outcome: CheckOutcome,
    },
    /// The veriflier could not be asked, or could not tell (unknown): does not count towards the quorum.
    Unavailable {
        /// The veriflier's configured name.
        veriflier: String,
        /// The site.
        blog_id: BlogId,
        /// Why.
        reason: String,
    },
}

impl VeriflierReply {
    /// The reply for one site's result from `veriflier`: an answer when it saw the site up or down, else
    /// (unknown: its own network is degraded) no vote.
    pub fn from_result(veriflier: &str, result: ResultItem) -> VeriflierReply {
        match result.status {
            RemoteStatus::Online | RemoteStatus::Offline => VeriflierReply::Answer {
                veriflier: veriflier.to_string(),
                blog_id: result.blog_id,
                monitor_url: result.monitor_url,
                outcome: CheckOutcome {
                    up: result.status == RemoteStatus::Online,
                    code: result.code,
                    rtt_ms: result.rtt,
                    error: result.error,
                },
            },
            _ => VeriflierReply::Unavailable {
                veriflier: veriflier.to_string(),
                blog_id: result.blog_id,
                reason: "veriflier could not tell (unknown)".to_string(),
            },
        }
    }
}

/// Health of one veriflier, for logs and metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VeriflierHealth {
    /// Batches answered (for a legacy veriflier: accepted; its results come by callback).
    pub ok: u64,
    /// Batches that failed (timeout, refused, TLS, HTTP error).
    pub failed: u64,
    /// The last failure, if the last request failed.
    pub last_error: Option<String>,
    /// Latency of the last answered batch.
    pub last_latency: Option<Duration>,
}

struct Veriflier {
    name: String,
    batches: Sender<Vec<CheckItem>>,
    health: Arc<std::sync::Mutex<VeriflierHealth>>,
}

/// The verifliers and their workers.
pub struct VeriflierPool {
    verifliers: Vec<Veriflier>,
    replies: Receiver<VeriflierReply>,
    reply_sender: Sender<VeriflierReply>,
    workers: Vec<JoinHandle<()>>,
}

impl VeriflierPool {
    /// Starts `WORKERS_PER_VERIFLIER` threads per client, each speaking the client's mode.
    pub fn start(clients: Vec<(VeriflierClient, VeriflierMode)>) -> VeriflierPool {
        let (reply_tx, replies) = crossbeam_channel::unbounded();
        let mut verifliers = Vec::with_capacity(clients.len());
        let mut workers = Vec::new();
        for (client, mode) in clients {
            let client = Arc::new(client);
            let (batches, batch_rx) = crossbeam_channel::unbounded::<Vec<CheckItem>>();
            let health = Arc::new(std::sync::Mutex::new(VeriflierHealth::default()));
            for i in 0..WORKERS_PER_VERIFLIER {
                let (worker_client, batch_rx, reply_tx, health) = (
                    Arc::clone(&client),
                    batch_rx.clone(),
                    reply_tx.clone(),
                    Arc::clone(&health),
                );
                let spawned = std::thread::Builder::new()
                    .name(format!("veriflier-{}-{i}", client.name()))
                    .spawn(move || work(&worker_client, mode, &batch_rx, &reply_tx, &health));
                match spawned {
                    Ok(handle) => workers.push(handle),
                    Err(e) => tracing::error!(veriflier = client.name(), "cannot start a worker thread: {e}"),
                }
            }
            verifliers.push(Veriflier {
                name: client.name().to_string(),
                batches,
                health,
            });
        }
        VeriflierPool {
            verifliers,
            replies,
            reply_sender: reply_tx,
            workers,
        }
    }

    /// Where replies that do not come from the workers go: the legacy callback server's.
    pub fn reply_sender(&self) -> Sender<VeriflierReply> {
        self.reply_sender.clone()
    }

    /// Sends one batch to every veriflier. Never blocks.
    pub fn ask(&self, batch: Vec<CheckItem>) {
        for v in &self.verifliers {
            if v.batches.send(batch.clone()).is_err() {
                tracing::error!(veriflier = %v.name, "veriflier workers are gone");
            }
        }
    }

    /// Replies received so far.
    pub fn replies(&self) -> &Receiver<VeriflierReply> {
        &self.replies
    }

    /// Health of each veriflier, by name.
    pub fn health(&self) -> Vec<(String, VeriflierHealth)> {
        self.verifliers
            .iter()
            .map(|v| (v.name.clone(), v.health.lock().map(|h| h.clone()).unwrap_or_default()))
            .collect()
    }

    /// Whether any veriflier is configured.
    pub fn is_empty(&self) -> bool {
        self.verifliers.is_empty()
    }
}

impl Drop for VeriflierPool {
    fn drop(&mut self) {
        // Closing the batch channels ends the workers once their current request returns (bounded by the
        // client timeout); they are not joined so shutdown never waits on a hung veriflier.
        self.verifliers.clear();
        self.workers.clear();
    }
}

fn work(
    client: &VeriflierClient,
    mode: VeriflierMode,
    batches: &Receiver<Vec<CheckItem>>,
    replies: &Sender<VeriflierReply>,
    health: &std::sync::Mutex<VeriflierHealth>,
) {
    let name = client.name().to_string();
    let send = |reply| {
        // The control loop is gone: nothing left to tell.
        let _ = replies.send(reply);
    };
    for batch in batches.iter() {
        let started = Instant::now();
        let outcome = match mode {
            VeriflierMode::V1 => client.check(&batch).map(Some),
            // Accepted: the results come by callback, or never, and then the request expires.
            VeriflierMode::Legacy => client.send_legacy(&batch).map(|()| None),
        };
        let elapsed = started.elapsed();
        match outcome {
            Ok(results) => {
                if let Ok(mut h) = health.lock() {
                    h.ok += 1;
                    h.last_error = None;
                    h.last_latency = Some(elapsed);
                }
                if let Some(results) = results {
                    answer(&name, &batch, results, &send);
                }
            }
            Err(e) => {
                let reason = e.to_string();
                tracing::warn!(veriflier = %name, sites = batch.len(), ?elapsed, "veriflier request failed: {reason}");
                if let Ok(mut h) = health.lock() {
                    h.failed += 1;
                    h.last_error = Some(reason.clone());
                }
                for item in &batch {
                    send(VeriflierReply::Unavailable {
                        veriflier: name.clone(),
                        blog_id: item.blog_id,
                        reason: reason.clone(),
                    });
                }
            }
        }
    }
}

/// Turns a v1 answer into one reply per site of the batch.
fn answer(name: &str, batch: &[CheckItem], results: Vec<ResultItem>, send: &impl Fn(VeriflierReply)) {
    let mut answered = std::collections::HashSet::new();
    for r in results {
        answered.insert(r.blog_id);
        send(VeriflierReply::from_result(name, r));
    }
    for item in batch.iter().filter(|i| !answered.contains(&i.blog_id)) {
        send(VeriflierReply::Unavailable {
            veriflier: name.to_string(),
            blog_id: item.blog_id,
            reason: "missing from the veriflier's answer".to_string(),
        });
    }
}
