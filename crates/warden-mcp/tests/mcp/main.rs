//! The MCP server end to end: rmcp's own client over an in-memory duplex
//! stream, the real plugins in the real sandbox, the shipped policy bundle,
//! a real journal.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code panics on setup failure"
)]

mod approval;
mod calls;
mod catalog;
mod progress;
mod support;
mod tools;
