//! Paths of the test guests and shipped plugins, built for wasm32-wasip2 by
//! this crate's build script. Dev-only.
#![allow(missing_docs, reason = "generated constants carry their own docs")]

include!(concat!(env!("OUT_DIR"), "/artifacts.rs"));
