//! Integration tests of warden-policy: one binary, one module per topic.
#![allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers outside #[test] functions"
)]

mod cases;
mod default_bundle;
mod environments;
mod fail_closed;
mod gate;
mod limits;
mod plan_equivalence;
mod reload;

use std::path::PathBuf;

/// The default bundle shipped in `policies/`.
pub fn policies_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../policies")
}

/// A temporary bundle made of `files` (name, contents).
pub fn bundle(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        let path = dir.path().join(name);
        fs_err::create_dir_all(path.parent().unwrap()).unwrap();
        fs_err::write(path, text).unwrap();
    }
    dir
}

/// A `data.warden.call` entry returning `value` (Rego term).
pub fn call_returning(value: &str) -> String {
    format!("package warden\n\ncall := {value}\n")
}
