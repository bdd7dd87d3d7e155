//! `warden serve` in-process: real plugins in the sandbox, the shipped
//! policy bundle (loopback allowed), a loopback service to heal, and HTTP
//! requests as Alertmanager, Azure Monitor, a signer and API users send them.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test setup panics on failure"
)]

mod api;
mod approvals;
mod browser;
mod chat;
mod cluster;
mod cluster_approvals;
mod edge;
mod intake;
mod lifecycle;
mod mcp;
mod page;
/// The cluster crate's real-PostgreSQL harness.
#[allow(dead_code, reason = "not every helper of the harness is used here")]
#[allow(clippy::print_stderr, reason = "it says loudly what it skips")]
#[path = "../../../warden-cluster/tests/cluster/support.rs"]
mod pg;
mod support;
