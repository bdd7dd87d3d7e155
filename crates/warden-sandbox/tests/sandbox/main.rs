//! Sandbox integration tests: hostile guests, loading, caching, gating.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test support code panics on setup failure"
)]
// Without `compile` only the precompiled-plugin tests run; the shared
// helpers go partly unused.
#![cfg_attr(
    not(feature = "compile"),
    allow(dead_code, unused_imports, reason = "helpers of the compiling tests")
)]

#[cfg(feature = "compile")]
mod cache;
#[cfg(feature = "compile")]
mod footprint;
#[cfg(feature = "compile")]
mod guests;
#[cfg(feature = "compile")]
mod https;
#[cfg(feature = "compile")]
mod lazy;
#[cfg(feature = "compile")]
mod loading;
#[cfg(feature = "compile")]
mod notify;
#[cfg(feature = "compile")]
mod ops_plugins;
#[cfg(feature = "compile")]
mod outbox;
mod precompiled;
#[cfg(feature = "compile")]
mod secrets;
#[cfg(feature = "compile")]
mod ssrf;
mod support;
