//! End-to-end tests of the `warden` binary.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test support code panics on setup failure"
)]

mod azure;
mod hostile;
mod incidents;
mod journal_cluster;
mod logs;
mod mcp;
mod otel;
mod outbox;
mod plugin;
mod policy;
mod run;
mod serve;
mod support;
mod trust;
