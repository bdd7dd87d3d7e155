//! Loading bad files and the shipped plugins.

use test_plugins_artifacts as guests;
use warden_sandbox::SandboxError;

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
