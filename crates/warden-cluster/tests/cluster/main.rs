//! The cluster against real PostgreSQL and NATS servers on loopback.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr,
    reason = "tests, which say loudly what they skip"
)]

mod attempts;
mod bus;
mod failures;
mod fencing;
mod history;
mod incidents;
mod leaf;
mod record;
mod support;
mod tls;
