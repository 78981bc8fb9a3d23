//! Self-organising fleets: jetmond hosts share the bucket space (0–511, or the configured range) through
//! expiring leases in the database they already use, instead of fixed `BUCKET_NO_MIN..BUCKET_NO_MAX`
//! ranges. See `docs/operations.md` ("Fleets") for what is guaranteed.
//!
//! - [`plan`]: the pure rule every host applies (fair shares, claim free or expired buckets, give up the
//!   excess), simulated over thousands of steps in its tests;
//! - [`lease_store`]: the lease tables, one locked transaction per heartbeat, database clock only;
//! - [`buckets`]: what the rounds may load, with draining so a bucket changes hands between rounds;
//! - [`keeper`]: the heartbeat thread.

pub mod buckets;
pub mod keeper;
pub mod lease_store;
pub mod plan;

pub use buckets::LeasedBuckets;
pub use keeper::LeaseKeeper;
pub use lease_store::{HostStatus, LeaseStore};
