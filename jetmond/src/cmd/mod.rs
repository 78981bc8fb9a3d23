//! The subcommands of the `jetmond` binary; each file is one command's wiring.

pub mod check;
pub mod outbox;
pub mod run;
