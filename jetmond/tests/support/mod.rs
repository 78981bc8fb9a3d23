//! Shared pieces of jetmond's integration tests. Each test binary uses only some of them.
#![allow(dead_code)]

pub mod daemon;
pub mod db;
pub mod http;
pub mod receiver;
pub mod verifliers;
