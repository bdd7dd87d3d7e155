//! Precompiled-component cache.
//!
//! An entry is two files named `<sha256 of wasm>-<engine fingerprint>`:
//!
//! - `.cwasm`, exactly what `Component::serialize` wrote, so wasmtime can map
//!   it from the file (`Component::deserialize_file`) instead of copying it
//!   onto the heap: code pages a call never touches are never read;
//! - `.meta`, the sidecar: an HMAC-SHA256 tag followed by a small JSON body
//!   (the payload's SHA-256 and length, and the manifest `describe()`
//!   returned once the plugin was loaded). The tag is keyed by the host's
//!   cache key and covers a domain tag, this crate's version, the SHA-256 of
//!   the `.wasm` the entry was compiled from, the engine's compatibility hash
//!   and the body.
//!
//! Deserialising a payload maps native code into the host, so a plain
//! checksum is not enough: anyone who can write the directory could copy
//! another plugin's entry under this plugin's name (a self-consistent
//! checksum) or plant their own code. Only a payload whose SHA-256 matches a
//! sidecar whose tag verifies under our key is deserialised; anything else
//! (another key, another plugin's entry, flipped bits, a truncated file,
//! another engine) is recompiled and the entry rewritten, or, in a build
//! that cannot compile, refused with [`SandboxError::CacheEntry`].
//!
//! The payload is hashed through the same open file wasmtime then maps
//! (`/proc/self/fd/N` on Linux), so renaming another file into place between
//! the check and the mapping does not work; and only a file owned by this
//! user (or root) that nobody else may write is used, so nobody else can
//! change it in place while it is mapped.
//!
//! A verified sidecar that holds a manifest is what lets
//! [`Sandbox::open_file`](crate::Sandbox::open_file) register a plugin
//! without touching its code until the first call.
//!
//! The engine fingerprint is wasmtime's precompile compatibility hash where
//! the compiler is built in (`compile`), and the [`EngineId`](crate::EngineId)
//! in a runtime-only build, which has no such hash; a runtime-only build
//! never compiles, it only reads entries that
//! [`Sandbox::install_precompiled`](crate::Sandbox::install_precompiled)
//! wrote.

use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use hmac::{Hmac, Mac};
use rand::TryRngCore;
use sha2::{Digest, Sha256};
use warden_types::ToolManifest;
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::SandboxError;

/// Domain separation: a tag for one purpose and format version.
const DOMAIN: &[u8] = b"warden-cwasm-v3";
/// Length of the HMAC-SHA256 tag that starts a sidecar.
const TAG_LEN: usize = 32;
/// Largest sidecar read: a manifest with its schemas is a few KiB.
const META_LIMIT: u64 = 1 << 20;

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

/// What a verified sidecar vouches for.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct Meta {
    /// SHA-256 of the payload, hex.
    payload_sha256: String,
    /// Length of the payload in bytes.
    payload_len: u64,
    /// The manifest `describe()` returned, once the plugin was loaded from
    /// this entry.
    #[serde(default)]
    pub manifest: Option<ToolManifest>,
}

/// Where the entry for one `.wasm` under one engine lives, and what binds it.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    /// The serialised component.
    pub payload: PathBuf,
    /// The tagged sidecar.
    pub sidecar: PathBuf,
    wasm_digest: [u8; 32],
    compat: [u8; 32],
}

impl Entry {
    /// The entry for the `.wasm` with SHA-256 `wasm_digest` in `dir`.
    pub(crate) fn new(dir: &Path, wasm_digest: [u8; 32], compat: [u8; 32]) -> Self {
        let stem = format!("{}-{}", hex::encode(wasm_digest), hex::encode(&compat[..8]));
        Entry {
            payload: dir.join(format!("{stem}.cwasm")),
            sidecar: dir.join(format!("{stem}.meta")),
            wasm_digest,
            compat,
        }
    }

    /// The entry for `wasm` in `dir`.
    pub(crate) fn for_wasm(dir: &Path, wasm: &[u8], compat: [u8; 32]) -> Self {
        Self::new(dir, Sha256::digest(wasm).into(), compat)
    }

    /// The MAC over everything a sidecar is bound to, ready to finalise or
    /// verify. (HMAC takes keys of any length, so this is never `None`.)
    fn mac(&self, key: &CacheKey, body: &[u8]) -> Option<HmacSha256> {
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&key.bytes).ok()?;
        // All fields but the last are fixed-length (the version is
        // length-prefixed), so the concatenation is unambiguous.
        let version = env!("CARGO_PKG_VERSION").as_bytes();
        mac.update(DOMAIN);
        mac.update(&(version.len() as u64).to_le_bytes());
        mac.update(version);
        mac.update(&self.wasm_digest);
        mac.update(&self.compat);
        mac.update(body);
        Some(mac)
    }

    /// The sidecar, if there is one whose tag verifies under `key`.
    ///
    /// `Ok(None)`: there is none. `Err`: there is one, but it is not ours
    /// (another key, plugin or engine, altered, truncated); the reason says
    /// which check failed.
    pub(crate) fn read_meta(&self, key: &CacheKey) -> Result<Option<Meta>, String> {
        let file = match fs_err::File::open(&self.sidecar) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.to_string()),
        };
        let mut bytes = Vec::new();
        file.take(META_LIMIT + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| e.to_string())?;
        if bytes.len() as u64 > META_LIMIT {
            return Err(format!("sidecar is larger than {META_LIMIT} bytes"));
        }
        if bytes.len() <= TAG_LEN {
            return Err("sidecar is truncated".into());
        }
        let (tag, body) = bytes.split_at(TAG_LEN);
        // Constant-time comparison.
        let verified = self
            .mac(key, body)
            .is_some_and(|mac| mac.verify_slice(tag).is_ok());
        if !verified {
            return Err(if key.ephemeral {
                "sidecar does not verify under this process's random cache key \
                 (set SandboxConfig::cache_key to reuse entries across runs)"
                    .into()
            } else {
                "sidecar does not verify (written under another key, for another plugin \
                 or engine, or altered)"
                    .into()
            });
        }
        serde_json::from_slice(body)
            .map(Some)
            .map_err(|e| format!("sidecar body is not valid: {e}"))
    }

    /// Write `payload` and a sidecar for it (with `manifest`, if known),
    /// payload first: the sidecar is what makes the entry count.
    pub(crate) fn store(
        &self,
        key: &CacheKey,
        payload: &[u8],
        manifest: Option<&ToolManifest>,
    ) -> std::io::Result<Meta> {
        write_file(&self.payload, &[payload])?;
        let meta = Meta {
            payload_sha256: hex::encode(Sha256::digest(payload)),
            payload_len: payload.len() as u64,
            manifest: manifest.cloned(),
        };
        self.store_meta(key, &meta)?;
        Ok(meta)
    }

    /// (Re)write the sidecar with `meta`.
    pub(crate) fn store_meta(&self, key: &CacheKey, meta: &Meta) -> std::io::Result<()> {
        let body = serde_json::to_vec(meta).map_err(std::io::Error::other)?;
        let Some(mac) = self.mac(key, &body) else {
            return Err(std::io::Error::other("cannot key the cache MAC"));
        };
        write_file(&self.sidecar, &[&mac.finalize().into_bytes(), &body])
    }

    /// Drop the sidecar, so the entry stops counting (its payload failed).
    pub(crate) fn forget(&self) {
        let _ = fs_err::remove_file(&self.sidecar);
    }

    /// Map the payload that `meta` (a verified sidecar) vouches for.
    ///
    /// The file is opened once, checked (a regular file of the right length,
    /// owned by this user or root, writable by nobody else), hashed, and
    /// handed to wasmtime through that same descriptor.
    pub(crate) fn open_payload(&self, engine: &Engine, meta: &Meta) -> Result<Component, String> {
        let file = crate::files::open_nonblocking(&self.payload).map_err(|e| e.to_string())?;
        let stat = file.metadata().map_err(|e| e.to_string())?;
        if !stat.is_file() {
            return Err("payload is not a regular file".into());
        }
        if stat.len() != meta.payload_len {
            return Err(format!(
                "payload is {} bytes, its sidecar says {}",
                stat.len(),
                meta.payload_len
            ));
        }
        check_owner(&stat)?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 64 << 10];
        let mut reader = &file;
        loop {
            let n = reader.read(&mut buf).map_err(|e| e.to_string())?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        if hex::encode(hasher.finalize()) != meta.payload_sha256 {
            return Err("payload does not match its sidecar (altered or replaced)".into());
        }
        deserialize_open(engine, file).map_err(|e| format!("{e:#}"))
    }
}

/// Only a file nobody but this user (or root) can change in place may be
/// mapped as code: a mapping sees later writes to the file.
#[cfg(unix)]
fn check_owner(stat: &std::fs::Metadata) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: geteuid has no preconditions and cannot fail.
    #[allow(unsafe_code, reason = "geteuid is always safe to call")]
    let me = unsafe { libc::geteuid() };
    if stat.uid() != me && stat.uid() != 0 {
        return Err(format!(
            "payload is owned by uid {}, not by this user ({me}) or root",
            stat.uid()
        ));
    }
    if stat.mode() & 0o022 != 0 {
        return Err(format!(
            "payload is writable by group or others (mode {:o})",
            stat.mode() & 0o7777
        ));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_owner(_: &std::fs::Metadata) -> Result<(), String> {
    Ok(())
}

/// Deserialise the payload in the open, already-hashed `file`.
#[allow(
    unsafe_code,
    reason = "deserialising an artifact whose sidecar's HMAC under our key verified"
)]
fn deserialize_open(engine: &Engine, mut file: fs_err::File) -> wasmtime::Result<Component> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let by_fd = PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()));
        if by_fd.exists() {
            // SAFETY: the payload behind this descriptor is byte-for-byte
            // what `Component::serialize` wrote in a process holding our
            // cache key, for this very wasm and an engine with the same
            // compatibility hash: its SHA-256, read through this descriptor
            // just now, is in a sidecar whose tag verified. Reopening the
            // descriptor's own path reaches the same inode, which only its
            // owner (us or root) can write. wasmtime checks its own header.
            let component = unsafe { Component::deserialize_file(engine, &by_fd) };
            drop(file);
            return component;
        }
    }
    // Without /proc: read it back through the descriptor we hashed.
    file.rewind()?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    // SAFETY: as above; these are the bytes just hashed and verified.
    unsafe { Component::deserialize(engine, &bytes) }
}

/// A compiled component, whether the cache supplied it, and its entry.
pub(crate) struct Loaded {
    pub component: Component,
    pub cache_hit: bool,
    /// The entry and its sidecar, when there is a cache.
    pub entry: Entry,
    /// The sidecar the entry now has (`None` when it could not be written).
    pub meta: Option<Meta>,
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

/// Load `wasm` through the cache in `dir`, compiling and storing it on a
/// miss. `can_compile` is false in a runtime-only build: then an entry that
/// exists but does not verify is an error, not a miss.
#[allow(clippy::too_many_arguments, reason = "one call site; all are needed")]
pub(crate) fn load_cached(
    engine: &Engine,
    compat: &[u8; 32],
    dir: &Path,
    key: &CacheKey,
    wasm: &[u8],
    origin: &str,
    can_compile: bool,
    compile: impl FnOnce(&[u8]) -> Result<Component, SandboxError>,
) -> Result<Loaded, SandboxError> {
    let entry = Entry::for_wasm(dir, wasm, *compat);
    let refused = |reason: String| SandboxError::CacheEntry {
        plugin: origin.to_string(),
        path: entry.payload.clone(),
        reason,
    };
    match entry.read_meta(key) {
        Ok(Some(meta)) => match entry.open_payload(engine, &meta) {
            Ok(component) => {
                return Ok(Loaded {
                    component,
                    cache_hit: true,
                    entry,
                    meta: Some(meta),
                });
            }
            Err(reason) if !can_compile => return Err(refused(reason)),
            Err(reason) => {
                tracing::warn!(path = %entry.payload.display(), %reason, "plugin cache entry unusable; recompiling");
            }
        },
        Ok(None) => {}
        Err(reason) if !can_compile => return Err(refused(reason)),
        Err(reason) => {
            tracing::warn!(path = %entry.sidecar.display(), %reason, "plugin cache entry refused; recompiling");
        }
    }
    let component = compile(wasm)?;
    let payload = component.serialize().map_err(|e| SandboxError::Config {
        message: format!("{origin}: serialising compiled component: {e}"),
    })?;
    let meta = match entry.store(key, &payload, None) {
        Ok(meta) => Some(meta),
        Err(e) => {
            // A read-only or full cache disk must not stop the agent.
            tracing::warn!(path = %entry.payload.display(), error = %e, "could not write plugin cache entry");
            None
        }
    };
    Ok(Loaded {
        component,
        cache_hit: false,
        entry,
        meta,
    })
}

/// Write `parts` to `path` atomically (temporary file, fsync, rename),
/// readable and writable by this user only.
fn write_file(path: &Path, parts: &[&[u8]]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs_err::create_dir_all(dir)?;
    let (tmp_path, mut tmp) = tempfile_in(dir)?;
    let written = (|| {
        for part in parts {
            tmp.write_all(part)?;
        }
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
    let mut options = fs_err::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use fs_err::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let f = options.open(&p)?;
    Ok((p, f))
}
