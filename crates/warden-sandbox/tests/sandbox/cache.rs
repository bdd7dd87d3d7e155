//! The precompile cache: entries are reused only when their HMAC under the
//! host's cache key verifies.

use std::path::{Path, PathBuf};

use serde_json::json;
use test_plugins_artifacts as guests;
use warden_sandbox::{Plugin, Sandbox, SandboxConfig};

use crate::support::*;

const KEY_A: [u8; 32] = [0xa5; 32];
const KEY_B: [u8; 32] = [0x5b; 32];

/// A sandbox caching in `dir`, under `key` (or the per-process key).
fn cached(dir: &Path, key: Option<[u8; 32]>) -> Sandbox {
    let mut config = SandboxConfig::default();
    config.cache_dir(dir);
    if let Some(key) = key {
        config.cache_key(key);
    }
    Sandbox::new(&config).unwrap()
}

/// The `.cwasm` entries in `dir`, sorted.
fn entries(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<_> = fs_err::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .collect();
    found.sort();
    found
}

/// Load the `trivial` guest and check it runs as itself.
async fn load_trivial(sandbox: &Sandbox) -> Plugin {
    let plugin = sandbox.load_file(guests::TRIVIAL).unwrap();
    assert_eq!(plugin.manifest().name, "trivial");
    let out = plugin
        .invoke(&ctx(), &json!({"text": "ok"}), deny_all())
        .await
        .unwrap();
    assert_eq!(out.output["result"], "ok");
    plugin
}

#[tokio::test(flavor = "multi_thread")]
async fn another_plugins_entry_copied_under_this_plugins_name_is_not_run() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = cached(dir.path(), Some(KEY_A));
    assert!(!load_trivial(&sandbox).await.was_cached());
    let [trivial_entry] = <[PathBuf; 1]>::try_from(entries(dir.path())).unwrap();
    let other = sandbox.load_file(guests::HTTP_FETCH).unwrap();
    assert_eq!(other.manifest().name, "http-fetch");
    let other_entry = entries(dir.path())
        .into_iter()
        .find(|p| *p != trivial_entry)
        .unwrap();

    // The copied entry is validly tagged, but for other wasm: with a plain
    // checksum it would load and `describe()` would say `http-fetch`.
    let other_bytes = fs_err::read(&other_entry).unwrap();
    fs_err::write(&trivial_entry, &other_bytes).unwrap();
    let reloaded = load_trivial(&sandbox).await;
    assert!(
        !reloaded.was_cached(),
        "another plugin's entry was accepted"
    );

    // The entry was rewritten for `trivial` and is reused from now on.
    assert_ne!(fs_err::read(&trivial_entry).unwrap(), other_bytes);
    assert!(load_trivial(&sandbox).await.was_cached());
}

#[tokio::test(flavor = "multi_thread")]
async fn entry_written_under_one_key_is_not_used_under_another() {
    let dir = tempfile::tempdir().unwrap();
    let under_a = cached(dir.path(), Some(KEY_A));
    assert!(!load_trivial(&under_a).await.was_cached());
    assert!(load_trivial(&under_a).await.was_cached());

    let under_b = cached(dir.path(), Some(KEY_B));
    assert!(
        !load_trivial(&under_b).await.was_cached(),
        "an entry keyed by A was used under B"
    );
    // B rewrote the entry: now A refuses it in turn.
    assert!(load_trivial(&under_b).await.was_cached());
    assert!(!load_trivial(&under_a).await.was_cached());

    // Without a configured key the per-process key matches neither.
    let unkeyed = cached(dir.path(), None);
    assert!(!load_trivial(&unkeyed).await.was_cached());
    assert_eq!(entries(dir.path()).len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn altered_or_truncated_entry_is_recompiled() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = cached(dir.path(), Some(KEY_A));
    assert!(!load_trivial(&sandbox).await.was_cached());
    let [entry] = <[PathBuf; 1]>::try_from(entries(dir.path())).unwrap();
    let good = fs_err::read(&entry).unwrap();

    // A flipped byte anywhere in the payload (its SHA-256 is in the tagged
    // sidecar).
    for at in [good.len() / 2, good.len() - 1, 40, 0, 31] {
        let mut bytes = good.clone();
        bytes[at] ^= 0x01;
        fs_err::write(&entry, &bytes).unwrap();
        assert!(
            !load_trivial(&sandbox).await.was_cached(),
            "an entry with byte {at} flipped was trusted"
        );
        assert_eq!(fs_err::read(&entry).unwrap(), good, "entry not rewritten");
    }

    // Truncated: to nothing, to a few bytes, by one byte.
    for len in [0, 5, 32, good.len() - 1] {
        fs_err::write(&entry, &good[..len]).unwrap();
        assert!(
            !load_trivial(&sandbox).await.was_cached(),
            "an entry truncated to {len} bytes was trusted"
        );
    }
    assert!(load_trivial(&sandbox).await.was_cached());
}

#[tokio::test(flavor = "multi_thread")]
async fn valid_entry_under_the_same_key_is_a_cache_hit() {
    let dir = tempfile::tempdir().unwrap();
    assert!(
        !load_trivial(&cached(dir.path(), Some(KEY_A)))
            .await
            .was_cached()
    );
    // A new sandbox (as another process would) with the same key reuses it.
    assert!(
        load_trivial(&cached(dir.path(), Some(KEY_A)))
            .await
            .was_cached()
    );

    // Unkeyed sandboxes of one process share the per-process key.
    let other = tempfile::tempdir().unwrap();
    assert!(!load_trivial(&cached(other.path(), None)).await.was_cached());
    assert!(load_trivial(&cached(other.path(), None)).await.was_cached());
}

#[test]
fn debug_output_does_not_show_the_cache_key() {
    let mut config = SandboxConfig::default();
    config.cache_key([0x42; 32]);
    let shown = format!("{config:?}");
    assert!(shown.contains("cache_key"), "{shown}");
    assert!(
        !shown.contains("66, 66") && !shown.contains("4242"),
        "{shown}"
    );
}
