//! Sandbox integration tests: hostile guests, loading, caching, gating.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test support code panics on setup failure"
)]

mod cache;
mod footprint;
mod guests;
mod https;
mod loading;
mod notify;
mod ops_plugins;
mod outbox;
mod secrets;
mod ssrf;
mod support;
