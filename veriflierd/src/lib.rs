//! # veriflierd
//!
//! A jetmon veriflier: a small HTTPS service that re-checks sites a monitor believes are down, from its own
//! vantage point, so that a site is only declared DOWN when independent hosts agree. It embeds the
//! [`jetmon_engine`] probe engine and replaces jetmon.js's Qt veriflier.
//!
//! ```no_run
//! use veriflierd::config::VeriflierConfig;
//! use veriflierd::server::{start, StartOptions};
//!
//! let loaded = VeriflierConfig::load("/etc/jetmon/veriflier.json".as_ref())?;
//! let server = start(loaded.config, StartOptions::default())?;
//! println!("listening on {}", server.local_addr());
//! server.shutdown();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Shape
//! - [`protocol`]: the wire types and the pure request parsers (also used by the fuzz targets). Two modes:
//!   our synchronous `POST /v1/check`, and the jetmon.js-compatible `POST /get/host-status` with its
//!   `/put/host-status` callback.
//! - [`config`]: the original's `veriflier.json` keys plus ours, with `VERIFLIER_<KEY>` overrides.
//! - [`config_file`]: the JSON config file machinery (comment keys, spellings, environment overrides, typed
//!   errors naming key, file and variable) shared with jetmond.
//! - [`server`]: the veriflier's routes and the bridge from the engine's result channel back to waiting
//!   requests.
//! - [`https`]: the HTTPS serving (axum, tokio-rustls, limits, certificate files) shared with jetmond's
//!   legacy-callback server.
//! - [`client`]: the blocking client jetmond uses (ureq), with a hard per-request deadline and typed errors.
//! - [`tls`]: PEM files to verified TLS client settings, shared with jetmond's WPCOM client.

#![warn(missing_docs)]

pub mod client;
pub mod config;
pub mod config_file;
pub mod https;
pub mod protocol;
pub mod server;
pub mod tls;
pub mod weather;
