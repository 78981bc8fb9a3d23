//! The operations view: Prometheus metrics, health and readiness, a JSON API and a status page, served over
//! plain HTTP on `ops_listen`.
//!
//! The control thread writes, the server only reads (see [`state`] for what is published how often);
//! the engine's loops are not involved at all. One concept per file:
//!
//! - [`history`]: a site's last results, packed to 8 bytes each (272 bytes per site).
//! - [`histogram`]: fixed-bucket duration histograms on relaxed atomics.
//! - [`state`]: [`OpsState`], shared between the control thread and the server.
//! - [`publisher`]: [`OpsPublisher`], the control thread's side.
//! - [`metrics`]: the Prometheus text rendering.
//! - [`api`]: the JSON answers.
//! - [`server`]: the axum routes and their thread; `page.html` is the status page.
//!
//! ```
//! use std::sync::Arc;
//! use jetmond::ops::{OpsServer, OpsState};
//!
//! let state = Arc::new(OpsState::new());
//! let server = OpsServer::start("127.0.0.1:0".parse()?, Arc::clone(&state))?;
//! println!("metrics on http://{}/metrics", server.local_addr());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod api;
pub mod histogram;
pub mod history;
pub mod metrics;
pub mod publisher;
pub mod server;
pub mod state;
pub mod statsd;

pub use publisher::{LoopState, OpsPublisher};
pub use server::{OpsServer, OpsServerError};
pub use state::OpsState;
