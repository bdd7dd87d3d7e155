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

/// Run `f` on a thread and fail if it does not finish in 10 s, so a
/// regression hangs no longer than that.
fn within_10s<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(std::time::Duration::from_secs(10))
        .expect("hung on a plugin path that is not a regular file")
}

fn mkfifo(path: &std::path::Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn a_fifo_named_like_a_plugin_is_refused_without_hanging() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("x.wasm");
    mkfifo(&fifo);
    let listed = dir.path().to_path_buf();
    let err = within_10s(move || warden_sandbox::plugin_files(&listed)).unwrap_err();
    assert!(matches!(err, SandboxError::NotAFile { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains("x.wasm"), "{text}");
    assert!(
        text.contains("a FIFO (named pipe), not a regular file"),
        "{text}"
    );

    let sandbox = sandbox();
    let err = within_10s(move || sandbox.load_file(&fifo)).unwrap_err();
    assert!(matches!(err, SandboxError::NotAFile { .. }), "{err}");
    assert!(err.to_string().contains("x.wasm"), "{err}");
}

#[test]
fn a_symlink_to_dev_zero_is_refused_before_it_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("x.wasm");
    std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
    let err = warden_sandbox::plugin_files(dir.path()).unwrap_err();
    assert!(
        err.to_string()
            .contains("is a character device, not a regular file"),
        "{err}"
    );
    let sandbox = sandbox();
    let err = within_10s(move || sandbox.load_file(&link)).unwrap_err();
    assert!(matches!(err, SandboxError::NotAFile { .. }), "{err}");
    assert!(err.to_string().contains("x.wasm"), "{err}");
}

#[test]
fn an_oversized_sparse_file_is_refused_naming_the_file_and_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.wasm");
    fs_err::File::create(&big)
        .unwrap()
        .set_len((64 << 20) + 1)
        .unwrap();
    // Listing does not read sizes; loading refuses it unread.
    assert_eq!(
        warden_sandbox::plugin_files(dir.path()).unwrap(),
        [big.as_path()]
    );
    let err = sandbox().load_file(&big).unwrap_err();
    match &err {
        SandboxError::FileTooLarge { size, limit, .. } => {
            assert_eq!((*size, *limit), ((64 << 20) + 1, 64 << 20));
        }
        other => panic!("expected FileTooLarge, got {other}"),
    }
    let text = err.to_string();
    assert!(text.contains("big.wasm"), "{text}");
    assert!(
        text.contains("67108864 bytes (SandboxConfig::max_plugin_size)"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_symlink_to_a_plugin_loads_and_the_size_cap_is_configurable() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("trivial.wasm");
    std::os::unix::fs::symlink(guests::TRIVIAL, &link).unwrap();
    assert_eq!(
        warden_sandbox::plugin_files(dir.path()).unwrap(),
        [link.as_path()]
    );
    let plugin = sandbox().load_file(&link).unwrap();
    assert_eq!(plugin.manifest().name, "trivial");

    let size = fs_err::metadata(guests::TRIVIAL).unwrap().len();
    let small = sandbox_with(|c| {
        c.max_plugin_size(size - 1);
    });
    let err = small.load_file(&link).unwrap_err();
    assert!(
        matches!(err, SandboxError::FileTooLarge { limit, .. } if limit == size - 1),
        "{err}"
    );
}
