//! `jetmond`: the jetmon daemon's library half.
//!
//! The binary (`main.rs`) wires sockets, threads and the database together; the logic it relies on lives
//! here, in modules that can be tested with plain values:
//!
//! - [`status`]: the status machine that turns check results and veriflier answers into status changes
//!   and WPCOM notifications, following the rules of the original jetmon.js.
//! - [`config`]: the JSON configuration, compatible with jetmon.js's `config.json`, with `JETMON_<KEY>`
//!   environment overrides and validation that names the offending key and file.
//! - [`sites`]: the sites file of embedded mode.
//! - [`outbox`]: the durable outbox that delivers notifications to WPCOM, at least once and in order per site.
//! - [`ops`]: the operations view: `/metrics`, `/healthz`, `/readyz`, the JSON API and the status page.
//! - [`weather`]: the internet-weather guard: the monitor's own network trouble never becomes DOWN decisions.
//!
//! ```
//! use jetmond::status::{CheckOutcome, Event, LocalCheck, MachineConfig, StatusMachine, UnixMillis};
//!
//! let mut machine = StatusMachine::new(MachineConfig::default());
//! let actions = machine.handle(Event::LocalCheck(LocalCheck {
//!     blog_id: 42,
//!     monitor_url: "https://example.com".into(),
//!     host: "jetmon-1".into(),
//!     at: UnixMillis::from_millis(1_700_000_000_000),
//!     outcome: CheckOutcome { up: true, code: 200, rtt_ms: 87, error: None },
//! }));
//! // A healthy site that was already running changes nothing.
//! assert!(actions.is_empty());
//! ```

// Every public item is documented; this keeps it so.
#![warn(missing_docs)]

pub mod config;
pub mod daemon;
pub mod demo;
pub mod fleet;
pub mod ops;
pub mod outbox;
pub mod sites;
pub mod status;
pub mod store;
pub mod weather;
