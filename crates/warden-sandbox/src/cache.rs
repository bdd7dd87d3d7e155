//! Precompiled-component cache.
//!
//! An entry is `<sha256 of wasm>-<engine fingerprint>.cwasm`; its content is
//! an HMAC-SHA256 tag followed by the payload `Component::serialize` wrote.
//! The tag is keyed by the host's cache key and covers a domain tag, the
//! SHA-256 of the `.wasm` the entry was compiled from, the engine's
//! compatibility hash and the SHA-256 of the payload.
//!
//! Deserialising a payload maps native code into the host, so a plain
//! checksum is not enough: anyone who can write the directory could copy
//! another plugin's entry under this plugin's name (a self-consistent
//! checksum) or plant their own code. Only an entry whose tag verifies under
//! our key is deserialised; anything else (another key, another plugin's
//! entry, flipped bits, a truncated file, another engine) is recompiled and
//! the entry rewritten.
//!
//! The engine fingerprint is wasmtime's precompile compatibility hash where
//! the compiler is built in (`compile`), and the [`EngineId`](crate::EngineId)
//! in a runtime-only build, which has no such hash; a runtime-only build
//! never compiles, it only reads entries that
//! [`Sandbox::install_precompiled`](crate::Sandbox::install_precompiled)
//! wrote.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use hmac::{Hmac, Mac};
use rand::TryRngCore;
use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::SandboxError;

/// Domain separation: a tag for one purpose and format version.
const DOMAIN: &[u8] = b"warden-cwasm-v2";
/// Length of the HMAC-SHA256 tag that starts an entry.
const TAG_LEN: usize = 32;

type HmacSha256 = Hmac<Sha256>;

/// The key that binds cache entries to this host. Its `Debug` never shows
/// the bytes, so a logged [`SandboxConfig`](crate::SandboxConfig) does not
/// leak it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct CacheKey {
    bytes: [u8; 32],
    /// True for the random per-process key (no key configured).
    ephemeral: bool,
}

impl std::fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.ephemeral {
            "CacheKey(per-process)"
        } else {
            "CacheKey(<redacted>)"
        })
    }
}

impl CacheKey {
    /// A key the embedder configured.
    pub(crate) fn configured(bytes: [u8; 32]) -> Self {
        CacheKey {
            bytes,
            ephemeral: false,
        }
    }

    /// The random key of this process, drawn from the OS once.
    pub(crate) fn per_process() -> Result<Self, SandboxError> {
        static KEY: OnceLock<[u8; 32]> = OnceLock::new();
        if let Some(bytes) = KEY.get() {
            return Ok(Self::ephemeral(*bytes));
        }
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng
            .try_fill_bytes(&mut bytes)
            .map_err(|e| SandboxError::Config {
                message: format!("drawing a random plugin cache key from the OS: {e}"),
            })?;
        // Another thread may have won the race; everyone uses the winner.
        Ok(Self::ephemeral(*KEY.get_or_init(|| bytes)))
    }

    fn ephemeral(bytes: [u8; 32]) -> Self {
        CacheKey {
            bytes,
            ephemeral: true,
        }
    }
}

/// A compiled component and whether the cache supplied it.
pub(crate) struct Loaded {
    pub component: Component,
    pub cache_hit: bool,
}

/// The fingerprint entries of `engine` are filed and bound under: equal for
/// engines whose artifacts are interchangeable.
pub(crate) fn engine_compat(engine: &Engine, id: &crate::EngineId) -> [u8; 32] {
    #[cfg(feature = "compile")]
    {
        let _ = id;
        compiler_compat(engine)
    }
    #[cfg(not(feature = "compile"))]
    {
        let _ = engine;
        *id.bytes()
    }
}

/// SHA-256 of the engine's precompile compatibility hash (which only an
/// engine with a compiler has).
#[cfg(feature = "compile")]
fn compiler_compat(engine: &Engine) -> [u8; 32] {
    use std::hash::{Hash, Hasher};
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
    h.0.finalize().into()
}

fn entry_path(dir: &Path, wasm_digest: &[u8; 32], compat: &[u8; 32]) -> PathBuf {
    dir.join(format!(
        "{}-{}.cwasm",
        hex::encode(wasm_digest),
        hex::encode(&compat[..8])
    ))
}

/// The MAC over everything an entry is bound to, ready to finalise or
/// verify. (HMAC takes keys of any length, so this is never `None`.)
fn entry_mac(
    key: &CacheKey,
    wasm_digest: &[u8; 32],
    compat: &[u8; 32],
    payload: &[u8],
) -> Option<HmacSha256> {
    let mut mac = <HmacSha256 as Mac>::new_from_slice(&key.bytes).ok()?;
    // All fields are fixed-length, so the concatenation is unambiguous.
    mac.update(DOMAIN);
    mac.update(wasm_digest);
    mac.update(compat);
    mac.update(&Sha256::digest(payload));
    Some(mac)
}

/// Load `wasm` through the cache in `dir`, compiling and storing it on a miss.
pub(crate) fn load_cached(
    engine: &Engine,
    compat: &[u8; 32],
    dir: &Path,
    key: &CacheKey,
    wasm: &[u8],
    origin: &str,
    compile: impl FnOnce(&[u8]) -> Result<Component, SandboxError>,
) -> Result<Loaded, SandboxError> {
    let compat = *compat;
    let wasm_digest: [u8; 32] = Sha256::digest(wasm).into();
    let path = entry_path(dir, &wasm_digest, &compat);
    if let Some(component) = read_entry(engine, &path, key, &wasm_digest, &compat) {
        return Ok(Loaded {
            component,
            cache_hit: true,
        });
    }
    let component = compile(wasm)?;
    let payload = component.serialize().map_err(|e| SandboxError::Config {
        message: format!("{origin}: serialising compiled component: {e}"),
    })?;
    if let Err(e) = store(&path, key, &wasm_digest, &compat, &payload) {
        // A read-only or full cache disk must not stop the agent.
        tracing::warn!(path = %path.display(), error = %e, "could not write plugin cache entry");
    }
    Ok(Loaded {
        component,
        cache_hit: false,
    })
}

/// File `payload`, compiled from `wasm` by an engine with fingerprint
/// `compat`, as the entry for `wasm` in `dir`, bound under `key`.
pub(crate) fn store_entry(
    dir: &Path,
    key: &CacheKey,
    wasm: &[u8],
    compat: &[u8; 32],
    payload: &[u8],
) -> std::io::Result<PathBuf> {
    let wasm_digest: [u8; 32] = Sha256::digest(wasm).into();
    let path = entry_path(dir, &wasm_digest, compat);
    store(&path, key, &wasm_digest, compat, payload)?;
    Ok(path)
}

fn store(
    path: &Path,
    key: &CacheKey,
    wasm_digest: &[u8; 32],
    compat: &[u8; 32],
    payload: &[u8],
) -> std::io::Result<()> {
    match entry_mac(key, wasm_digest, compat, payload) {
        Some(mac) => write_entry(path, &mac.finalize().into_bytes(), payload),
        None => Err(std::io::Error::other("cannot key the cache MAC")),
    }
}

fn read_entry(
    engine: &Engine,
    path: &Path,
    key: &CacheKey,
    wasm_digest: &[u8; 32],
    compat: &[u8; 32],
) -> Option<Component> {
    let bytes = match fs_err::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "plugin cache entry unreadable; recompiling");
            return None;
        }
    };
    let verified = bytes.len() > TAG_LEN && {
        let (tag, payload) = bytes.split_at(TAG_LEN);
        // Constant-time comparison.
        entry_mac(key, wasm_digest, compat, payload)
            .is_some_and(|mac| mac.verify_slice(tag).is_ok())
    };
    if !verified {
        if key.ephemeral {
            tracing::warn!(
                path = %path.display(),
                "plugin cache entry does not verify under this process's random cache key \
                 (set SandboxConfig::cache_key to reuse entries across runs); recompiling"
            );
        } else {
            tracing::warn!(
                path = %path.display(),
                "plugin cache entry does not verify (written under another key, for another \
                 plugin or engine, or altered); recompiling"
            );
        }
        return None;
    }
    let payload = &bytes[TAG_LEN..];
    // SAFETY: the payload is byte-for-byte what `Component::serialize` wrote
    // in a process holding our cache key, for this very wasm and an engine
    // with the same compatibility hash: the HMAC tag over all of these was
    // verified above. wasmtime additionally checks its own header.
    #[allow(
        unsafe_code,
        reason = "deserialising an artifact whose HMAC under our key verified"
    )]
    let component = unsafe { Component::deserialize(engine, payload) };
    match component {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "plugin cache entry is stale; recompiling");
            None
        }
    }
}

fn write_entry(path: &Path, tag: &[u8], payload: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs_err::create_dir_all(dir)?;
    let (tmp_path, mut tmp) = tempfile_in(dir)?;
    let written = (|| {
        tmp.write_all(tag)?;
        tmp.write_all(payload)?;
        tmp.sync_all()
    })();
    drop(tmp);
    if let Err(e) = written.and_then(|()| fs_err::rename(&tmp_path, path)) {
        let _ = fs_err::remove_file(&tmp_path);
        return Err(e);
    }
    Ok(())
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
