//! Paths of the test guests and shipped plugins, built for wasm32-wasip2 by
//! this crate's build script. Dev-only.
#![allow(missing_docs, reason = "generated constants carry their own docs")]

include!(concat!(env!("OUT_DIR"), "/artifacts.rs"));

/// A directory for the sandbox's precompiled-plugin cache
/// (`SandboxConfig::cache_dir`) that the tests of one build share, so a test
/// process compiles each plugin once instead of once per test. Entries are
/// bound to each process's random cache key, so nothing carries over
/// between test processes unverified.
pub const PLUGIN_CACHE: &str = concat!(env!("OUT_DIR"), "/plugin-cache");
