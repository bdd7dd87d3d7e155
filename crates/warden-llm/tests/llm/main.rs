//! Integration tests of warden-llm: recorded wire bodies and a scripted
//! loopback server. One binary, so linking stays cheap.
#![allow(
    clippy::unwrap_used,
    clippy::print_stderr,
    reason = "test helpers: a failed unwrap is a failed test; skips are reported on stderr"
)]

mod client;
mod spans;
mod tls;
mod wire;
