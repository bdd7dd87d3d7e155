//! Precompiled-component cache.
//!
//! An entry is `<sha256 of wasm>-<engine fingerprint>.cwasm`; its content is
//! the SHA-256 of the payload followed by the payload. Deserialising a
//! precompiled artifact runs native code, so an entry whose checksum does not
//! match (truncated, flipped bits, another engine's output) is rebuilt,
//! never trusted.

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::SandboxError;

/// A compiled component and whether the cache supplied it.
pub(crate) struct Loaded {
    pub component: Component,
    pub cache_hit: bool,
}

pub(crate) fn engine_fingerprint(engine: &Engine) -> String {
    struct Sha(Sha256);
    impl Hasher for Sha {
        fn finish(&self) -> u64 {
            0
        }
        fn write(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }
    }
    let mut h = Sha(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut h);
    hex::encode(&h.0.finalize()[..8])
}

pub(crate) fn entry_path(dir: &Path, wasm: &[u8], fingerprint: &str) -> PathBuf {
    let digest = hex::encode(Sha256::digest(wasm));
    dir.join(format!("{digest}-{fingerprint}.cwasm"))
}

/// Load `wasm` through the cache in `dir`, compiling and storing it on a miss.
pub(crate) fn load_cached(
    engine: &Engine,
    dir: &Path,
    wasm: &[u8],
    origin: &str,
    compile: impl FnOnce(&[u8]) -> Result<Component, SandboxError>,
) -> Result<Loaded, SandboxError> {
    let path = entry_path(dir, wasm, &engine_fingerprint(engine));
    if let Some(component) = read_entry(engine, &path) {
        return Ok(Loaded {
            component,
            cache_hit: true,
        });
    }
    let component = compile(wasm)?;
    let payload = component.serialize().map_err(|e| SandboxError::Config {
        message: format!("{origin}: serialising compiled component: {e}"),
    })?;
    if let Err(e) = write_entry(&path, &payload) {
        // A read-only or full cache disk must not stop the agent.
        tracing::warn!(path = %path.display(), error = %e, "could not write plugin cache entry");
    }
    Ok(Loaded {
        component,
        cache_hit: false,
    })
}

fn read_entry(engine: &Engine, path: &Path) -> Option<Component> {
    let bytes = match fs_err::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            tracing::warn!(error = %e, "plugin cache entry unreadable; recompiling");
            return None;
        }
    };
    if bytes.len() < 32 || Sha256::digest(&bytes[32..]).as_slice() != &bytes[..32] {
        tracing::warn!(path = %path.display(), "plugin cache entry is corrupt; recompiling");
        return None;
    }
    // SAFETY: the payload is byte-for-byte what `Component::serialize` wrote
    // for an engine with the same compatibility fingerprint (checked by the
    // checksum and the file name); wasmtime additionally checks its header.
    #[allow(unsafe_code, reason = "deserialising our own checksummed artifact")]
    let component = unsafe { Component::deserialize(engine, &bytes[32..]) };
    match component {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "plugin cache entry is stale; recompiling");
            None
        }
    }
}

fn write_entry(path: &Path, payload: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs_err::create_dir_all(dir)?;
    let mut tmp = tempfile_in(dir)?;
    tmp.1.write_all(&Sha256::digest(payload))?;
    tmp.1.write_all(payload)?;
    tmp.1.sync_all()?;
    drop(tmp.1);
    fs_err::rename(&tmp.0, path)
}

fn tempfile_in(dir: &Path) -> std::io::Result<(PathBuf, fs_err::File)> {
    let unique = format!(
        ".tmp-{}-{:?}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default()
    );
    let p = dir.join(unique);
    let f = fs_err::File::create(&p)?;
    Ok((p, f))
}
