//! # jetmon-engine
//!
//! A probe engine that keeps tens of thousands of HTTP(S) `HEAD` checks in flight on a few threads. Each
//! thread runs one hand-rolled [mio] event loop with non-blocking DNS, connect, rustls and an httparse-based
//! response reader; deadlines live in a timer wheel. It judges sites by the original jetmon rule (status
//! code below 400 is up) and reports why a check failed.
//!
//! ```
//! use jetmon_engine::{CheckRequest, Engine, EngineConfig, ErrorClass, Verdict};
//! # use std::io::{Read, Write};
//! # let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
//! # let addr = listener.local_addr()?;
//! # std::thread::spawn(move || {
//! #     let (mut s, _) = listener.accept().unwrap();
//! #     let _ = s.read(&mut [0u8; 1024]);
//! #     s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").unwrap();
//! # });
//!
//! let engine = Engine::start(EngineConfig::default())?;
//! // `addr` is a local web server; port 9 has nobody listening.
//! engine.submit(CheckRequest::new(1, format!("http://{addr}/")))?;
//! engine.submit(CheckRequest::new(2, "http://127.0.0.1:9/"))?;
//! for _ in 0..2 {
//!     let result = engine.results().recv()?;
//!     println!("{} is {} (HTTP {}, {} ms)", result.url, result.verdict, result.code, result.rtt_ms());
//!     match result.id {
//!         1 => assert_eq!((result.verdict, result.code), (Verdict::Up, 200)),
//!         _ => assert_eq!(result.error, Some(ErrorClass::Refused)),
//!     }
//! }
//! engine.shutdown();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Runnable against a local server of its own: `cargo run -p jetmon-engine --example check_local`.
//!
//! ## Shape
//! - [`Engine`] starts the threads; [`Submitter`] queues checks from any thread; results arrive once per
//!   check on [`Engine::results`].
//! - [`EngineConfig`] holds the limits: whole-check deadline (20 s like the original), per-phase limits,
//!   redirects (2), in-flight cap (fitted to the open-file limit), per-destination-IP cap, DNS and TLS trust.
//! - [`CheckResult`] carries the [`Verdict`], HTTP code, RTT, [`Timings`], and on failure an [`ErrorClass`]
//!   plus the original's numeric code (995–999).
//! - [`http`] exposes the request framing and response-head parser (also used by the fuzz targets).
//!
//! Inside: `check` is the per-check state machine (no IO), `reactor` the mio loop, `dns` the
//! non-blocking resolver, `tls` the shared rustls configuration.

#![warn(missing_docs)]

mod check;
mod config;
pub(crate) mod dns;
mod engine;
pub mod http;
mod policy;
mod reactor;
mod result;
mod tls;

pub use check::parse_check_url;
pub use config::{
    DnsConfig, EngineConfig, ResolveOverride, ResolveOverrideParseError, DEFAULT_CHECK_TIMEOUT,
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_REDIRECTS, DEFAULT_TLS_TIMEOUT, DEFAULT_USER_AGENT,
};
pub use engine::{CheckRequest, Engine, EngineError, EngineStats, Submitter};
pub use policy::{AddressPolicy, IpNet, IpNetParseError, NON_PUBLIC_NETWORKS};
pub use result::{duration_ms, legacy_code, CheckResult, ErrorClass, Timings, Verdict};
pub use tls::TlsConfigError;
