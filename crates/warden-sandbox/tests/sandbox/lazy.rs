//! Plugins opened lazily: the manifest comes from the cache entry's
//! sidecar, the code is mapped at the first call, and nothing that does not
//! verify is used.

use std::path::{Path, PathBuf};

use serde_json::json;
use test_plugins_artifacts as guests;
use warden_sandbox::{Sandbox, SandboxConfig, SandboxError};

use crate::support::*;

const KEY: [u8; 32] = [0x6e; 32];

fn cached(dir: &Path) -> Sandbox {
    let mut config = SandboxConfig::default();
    config.cache_dir(dir).cache_key(KEY);
    Sandbox::new(&config).unwrap()
}

/// The one file in `dir` with extension `ext`.
fn only(dir: &Path, ext: &str) -> PathBuf {
    let found: Vec<PathBuf> = fs_err::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    assert_eq!(found.len(), 1, "{found:?}");
    found.into_iter().next().unwrap()
}

/// A cache in a new directory that knows `trivial` (loaded once, eagerly).
fn warmed() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let first = cached(dir.path()).open_file(guests::TRIVIAL).unwrap();
    assert!(first.is_loaded(), "with no entry yet it loads at once");
    dir
}

#[tokio::test(flavor = "multi_thread")]
async fn a_known_plugin_is_not_loaded_until_its_first_call() {
    let dir = warmed();
    let sandbox = cached(dir.path());
    let trivial = sandbox.open_file(guests::TRIVIAL).unwrap();
    assert_eq!(trivial.manifest().name, "trivial");
    assert!(trivial.was_cached());
    assert!(!trivial.is_loaded(), "opening read the code");
    assert!(trivial.validate_input(&json!({"text": 1})).is_err());
    assert!(!trivial.is_loaded(), "validating input read the code");

    let out = trivial
        .invoke(&ctx(), &json!({"text": "lazy"}), deny_all())
        .await
        .unwrap();
    assert_eq!(out.output["result"], "lazy");
    assert!(trivial.is_loaded());
    // Clones share the loaded code.
    assert!(trivial.clone().is_loaded());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plugin_that_is_never_called_is_never_loaded() {
    let dir = tempfile::tempdir().unwrap();
    cached(dir.path()).load_file(guests::TRIVIAL).unwrap();
    cached(dir.path()).load_file(guests::HTTP_FETCH).unwrap();

    let sandbox = cached(dir.path());
    let trivial = sandbox.open_file(guests::TRIVIAL).unwrap();
    let fetch = sandbox.open_file(guests::HTTP_FETCH).unwrap();
    trivial
        .invoke(&ctx(), &json!({"text": "x"}), deny_all())
        .await
        .unwrap();
    assert!(trivial.is_loaded());
    assert!(!fetch.is_loaded(), "calling one plugin loaded another");
    assert_eq!(fetch.manifest().name, "http-fetch");

    fetch.load().unwrap();
    assert!(fetch.is_loaded());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sidecar_with_a_forged_manifest_is_refused_and_the_plugin_recompiled() {
    let dir = warmed();
    let sidecar = only(dir.path(), "meta");
    let good = fs_err::read(&sidecar).unwrap();
    // Same length, other name: the tag no longer covers the body.
    let forged = String::from_utf8_lossy(&good).replace("\"trivial\"", "\"trivia1\"");
    assert_ne!(forged.as_bytes(), &good[..]);
    fs_err::write(&sidecar, forged.as_bytes()).unwrap();

    let plugin = cached(dir.path()).open_file(guests::TRIVIAL).unwrap();
    assert_eq!(
        plugin.manifest().name,
        "trivial",
        "the forged manifest was used"
    );
    assert!(!plugin.was_cached(), "a refused entry counted as a hit");
    assert!(plugin.is_loaded());
    // Rewritten: the next start opens it lazily again.
    assert!(
        !cached(dir.path())
            .open_file(guests::TRIVIAL)
            .unwrap()
            .is_loaded()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn another_plugins_sidecar_copied_under_this_name_is_refused() {
    let dir = warmed();
    let (payload, sidecar) = (only(dir.path(), "cwasm"), only(dir.path(), "meta"));
    let other = tempfile::tempdir().unwrap();
    cached(other.path()).load_file(guests::HTTP_FETCH).unwrap();
    fs_err::copy(only(other.path(), "cwasm"), &payload).unwrap();
    fs_err::copy(only(other.path(), "meta"), &sidecar).unwrap();

    let plugin = cached(dir.path()).open_file(guests::TRIVIAL).unwrap();
    assert_eq!(plugin.manifest().name, "trivial");
    assert!(!plugin.was_cached());
}

#[tokio::test(flavor = "multi_thread")]
async fn code_altered_after_opening_is_refused_at_the_first_call_by_name() {
    let dir = warmed();
    let plugin = cached(dir.path()).open_file(guests::TRIVIAL).unwrap();
    let payload = only(dir.path(), "cwasm");
    let mut bytes = fs_err::read(&payload).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x01;
    fs_err::write(&payload, &bytes).unwrap();

    let err = plugin
        .invoke(&ctx(), &json!({"text": "x"}), deny_all())
        .await
        .unwrap_err();
    let SandboxError::CacheEntry { plugin: name, .. } = &err else {
        panic!("expected a cache entry error, got {err}");
    };
    assert_eq!(name, "trivial");
    let message = err.to_string();
    assert!(message.starts_with("trivial: "), "{message}");
    assert!(message.contains("does not match its sidecar"), "{message}");
    assert!(!plugin.is_loaded());

    // The entry was dropped: the next start recompiles and runs it.
    let again = cached(dir.path()).open_file(guests::TRIVIAL).unwrap();
    assert!(again.is_loaded() && !again.was_cached());
    let out = again
        .invoke(&ctx(), &json!({"text": "ok"}), deny_all())
        .await
        .unwrap();
    assert_eq!(out.output["result"], "ok");
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn code_others_may_write_is_not_mapped() {
    use std::os::unix::fs::PermissionsExt;
    let dir = warmed();
    let plugin = cached(dir.path()).open_file(guests::TRIVIAL).unwrap();
    let payload = only(dir.path(), "cwasm");
    fs_err::set_permissions(&payload, std::fs::Permissions::from_mode(0o666)).unwrap();
    let err = plugin.load().unwrap_err();
    assert!(matches!(err, SandboxError::CacheEntry { .. }), "{err}");
    assert!(
        err.to_string().contains("writable by group or others"),
        "{err}"
    );
}

#[test]
fn cache_entries_are_private_to_their_owner() {
    let dir = warmed();
    #[cfg(unix)]
    for ext in ["cwasm", "meta"] {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs_err::metadata(only(dir.path(), ext))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "{ext} has mode {mode:o}");
    }
}
