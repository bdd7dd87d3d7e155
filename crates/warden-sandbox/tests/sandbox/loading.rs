//! Loading bad files and the precompile cache.

use serde_json::json;
use test_plugins_artifacts as guests;
use warden_sandbox::{Sandbox, SandboxConfig, SandboxError};

use crate::support::*;

#[tokio::test(flavor = "multi_thread")]
async fn truncated_wasm_is_refused_with_its_name() {
    let bytes = fs_err::read(guests::TRIVIAL).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("truncated.wasm");
    fs_err::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let sandbox = sandbox();
    let err = sandbox.load_file(&path).unwrap_err();
    assert!(matches!(err, SandboxError::InvalidWasm { .. }), "{err}");
    assert!(err.to_string().contains("truncated.wasm"), "{err}");
    assert_still_serves(&sandbox).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn core_module_is_refused_as_not_a_component() {
    // The smallest valid core module: magic + version 1.
    let err = sandbox()
        .load_bytes(b"\0asm\x01\0\0\0", "core.wasm")
        .unwrap_err();
    assert!(matches!(err, SandboxError::NotAComponent { .. }), "{err}");
    assert!(err.to_string().contains("core.wasm"));
}

#[tokio::test(flavor = "multi_thread")]
async fn garbage_is_refused_as_invalid_wasm() {
    let err = sandbox()
        .load_bytes(b"#!/bin/sh\necho", "script.wasm")
        .unwrap_err();
    assert!(matches!(err, SandboxError::InvalidWasm { .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn second_load_uses_the_cache_and_a_corrupt_entry_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = SandboxConfig::default();
    config.cache_dir(dir.path());
    let sandbox = Sandbox::new(&config).unwrap();
    let first = sandbox.load_file(guests::TRIVIAL).unwrap();
    assert!(!first.was_cached());
    let second = sandbox.load_file(guests::TRIVIAL).unwrap();
    assert!(second.was_cached());

    // Flip a byte in the middle of every entry: it must be rebuilt.
    let entries: Vec<_> = fs_err::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .collect();
    assert_eq!(entries.len(), 1);
    let mut bytes = fs_err::read(&entries[0]).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    fs_err::write(&entries[0], &bytes).unwrap();
    let third = sandbox.load_file(guests::TRIVIAL).unwrap();
    assert!(!third.was_cached(), "a corrupt cache entry was trusted");
    let out = third
        .invoke(&ctx(), &json!({"text": "ok"}), deny_all())
        .await
        .unwrap();
    assert_eq!(out.output["result"], "ok");
    assert!(sandbox.load_file(guests::TRIVIAL).unwrap().was_cached());

    // A truncated entry too.
    fs_err::write(&entries[0], b"short").unwrap();
    assert!(!sandbox.load_file(guests::TRIVIAL).unwrap().was_cached());
}

#[tokio::test(flavor = "multi_thread")]
async fn shipped_plugins_load_with_valid_manifests() {
    let sandbox = sandbox();
    let mut names = Vec::new();
    for path in guests::PLUGINS {
        let plugin = sandbox.load_file(path).unwrap();
        let m = plugin.manifest();
        assert_eq!(m.input_schema["type"], "object", "{}", m.name);
        assert!(!m.description.is_empty());
        names.push(m.name.clone());
    }
    names.sort();
    assert_eq!(
        names,
        [
            "azure-deploy",
            "disk-forecast",
            "http-action",
            "http-probe",
            "log-templates",
            "metric-anomaly",
            "notify",
            "rightsize",
            "summarize"
        ]
    );
}
