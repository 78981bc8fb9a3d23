//! # jetmon-benches
//!
//! The pieces of `cargo bench -p jetmon-benches`: a local target farm (nginx for raw speed, the testkit's
//! delay server in a child process for capacity), the reference load generator (`wrk`), and the
//! measurements of the engine itself. Everything binds 127.0.0.0/8; nothing leaves the machine.
//!
//! ```no_run
//! use jetmon_benches::load::{run_load, LoadSpec};
//! use jetmon_benches::nginx::Nginx;
//! use jetmon_benches::scratch::ScratchDir;
//!
//! let scratch = ScratchDir::create("example")?;
//! let nginx = Nginx::start(scratch.path(), None)?;
//! let spec = LoadSpec::new(nginx.http_url(), 10_000, 256);
//! let outcome = run_load(&spec)?;
//! println!("{:.0} checks/s", outcome.checks_per_sec());
//! # Ok::<(), jetmon_benches::BenchError>(())
//! ```
//!
//! - [`nginx`]: a throwaway nginx answering `200` on every path, HTTP and HTTPS.
//! - [`wrk`]: runs `wrk` and reads its `Requests/sec`.
//! - [`load`]: N checks through the engine against one URL, timed from submit to last result.
//! - [`capacity`]: thousands of checks held in flight by slow targets, with the RSS they cost.
//! - [`farm`]: the delay-target child process (the `farm` binary) and its command line.
//! - [`peers`]: curl `--parallel`, the `reqcheck` binary (tokio + reqwest), blackbox_exporter, httpx.
//! - [`dns_mix`]: host names through a local DNS server vs IP literals.
//! - [`pki`], [`rss`], [`machine`], [`report`], [`scratch`]: certificates, memory, the host, the output.

pub mod capacity;
pub mod dns_mix;
mod error;
pub mod farm;
pub mod load;
pub mod machine;
pub mod nginx;
pub mod peers;
pub mod pki;
pub mod report;
pub mod rss;
pub mod scratch;
pub mod wrk;

pub use error::BenchError;
