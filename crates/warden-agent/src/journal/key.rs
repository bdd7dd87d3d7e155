//! The host key that makes the journal (and the plugin cache) tamper-evident
//! against whoever can write the data directory.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac as _};
use sha2::Sha256;

use crate::error::AgentError;

type HmacSha256 = Hmac<Sha256>;

/// A secret 256-bit key kept outside the journal's directory.
///
/// Journal records are keyed with HMAC-SHA256 under this key, not signed.
/// Why HMAC rather than ed25519: the threat is a local user or process that
/// can write the data directory but not the key file (mode 0600, in another
/// directory). A keyed chain stops them from recomputing it after an edit,
/// which a plain hash chain does not; verification happens on the host that
/// holds the key, so a public key buys nothing there, and outside auditors
/// check the head they were given by `warden journal anchor` instead. HMAC
/// is also ~20x cheaper per record than a signature on a small ARM box.
///
/// The key file holds 64 hex digits. [`HostKey::load_or_create`] makes it
/// on first use with mode 0600 and refuses a key file that others can read.
///
/// ```
/// use warden_agent::HostKey;
///
/// let dir = tempfile::tempdir().map_err(|e| warden_agent::AgentError::Config { reason: e.to_string() })?;
/// let path = dir.path().join("keys/host.key");
/// let first = HostKey::load_or_create(&path)?;
/// let again = HostKey::load_or_create(&path)?;
/// assert_eq!(first.fingerprint(), again.fingerprint());
/// # Ok::<(), warden_agent::AgentError>(())
/// ```
#[derive(Clone)]
pub struct HostKey {
    bytes: [u8; 32],
}

impl std::fmt::Debug for HostKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostKey")
            .field("fingerprint", &self.fingerprint())
            .finish_non_exhaustive()
    }
}

impl HostKey {
    /// The key file: `$WARDEN_KEY_FILE`, else `<config dir>/warden/host.key`
    /// (`~/.config/warden/host.key` on Linux).
    pub fn default_path() -> Result<PathBuf, AgentError> {
        if let Some(p) = std::env::var_os("WARDEN_KEY_FILE").filter(|p| !p.is_empty()) {
            return Ok(PathBuf::from(p));
        }
        dirs::config_dir()
            .map(|d| d.join("warden").join("host.key"))
            .ok_or_else(|| AgentError::Config {
                reason: "no configuration directory for the host key; set WARDEN_KEY_FILE".into(),
            })
    }

    /// The key at [`HostKey::default_path`] (created on first use) for the
    /// journal at `journal`; refused when it lives in the journal's own
    /// directory, where whoever can write the journal could replace it.
    pub fn for_journal(journal: impl AsRef<Path>) -> Result<Self, AgentError> {
        HostKey::at_for_journal(HostKey::default_path()?, journal)
    }

    /// The key in `path` (created on first use) for `journal`: refused
    /// when it sits in the journal's folder, where whoever can rewrite the
    /// journal could read it.
    pub fn at_for_journal(
        path: impl AsRef<Path>,
        journal: impl AsRef<Path>,
    ) -> Result<Self, AgentError> {
        let path = path.as_ref();
        check_key_outside(path, journal.as_ref())?;
        HostKey::load_or_create(path)
    }

    /// A key from raw bytes (for embedders that keep keys elsewhere, and tests).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        HostKey { bytes }
    }

    /// Load the key at `path`, creating it (mode 0600, its folder 0700) if
    /// it does not exist. A key file that group or others can read or write
    /// is refused.
    pub fn load_or_create(path: impl AsRef<Path>) -> Result<Self, AgentError> {
        let path = path.as_ref();
        let err = |reason: String| AgentError::Key {
            path: path.to_path_buf(),
            reason,
        };
        match fs_err::read_to_string(path) {
            Ok(text) => {
                check_mode(path).map_err(err)?;
                let bytes = hex::decode(text.trim())
                    .ok()
                    .and_then(|b| <[u8; 32]>::try_from(b).ok())
                    .ok_or_else(|| err("not a host key (64 hex digits expected)".into()))?;
                Ok(HostKey { bytes })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => create(path),
            Err(e) => Err(err(e.to_string())),
        }
    }

    /// A short public name for the key (not secret): the first 8 bytes of
    /// its HMAC over a fixed label, hex.
    pub fn fingerprint(&self) -> String {
        hex::encode(&self.derive(b"warden-key-fingerprint")[..8])
    }

    /// The key the plugin cache binds precompiled code with, derived from
    /// this one so the journal key itself never leaves this crate.
    pub fn cache_key(&self) -> [u8; 32] {
        self.derive(b"warden-cwasm-cache")
    }

    fn derive(&self, label: &[u8]) -> [u8; 32] {
        let mut mac = self.mac();
        mac.update(label);
        mac.finalize().into_bytes().into()
    }

    pub(crate) fn mac(&self) -> HmacSha256 {
        // HMAC takes keys of any length, so this cannot fail.
        <HmacSha256 as hmac::Mac>::new_from_slice(&self.bytes)
            .unwrap_or_else(|_| unreachable_hmac())
    }

    /// HMAC-SHA256 of `data`, hex.
    pub(crate) fn tag(&self, data: &[u8]) -> String {
        let mut mac = self.mac();
        mac.update(data);
        hex::encode(mac.finalize().into_bytes())
    }

    /// Constant-time check of a hex tag.
    pub(crate) fn check(&self, data: &[u8], tag: &str) -> bool {
        let Ok(raw) = hex::decode(tag) else {
            return false;
        };
        let mut mac = self.mac();
        mac.update(data);
        mac.verify_slice(&raw).is_ok()
    }
}

#[allow(
    clippy::panic,
    reason = "HMAC accepts every key length; this is never reached"
)]
fn unreachable_hmac() -> HmacSha256 {
    panic!("HMAC rejected a 32-byte key")
}

fn create(path: &Path) -> Result<HostKey, AgentError> {
    use fs_err::os::unix::fs::OpenOptionsExt as _;
    use std::os::unix::fs::DirBuilderExt as _;
    let err = |e: std::io::Error| AgentError::Key {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .map_err(err)?;
    }
    let mut bytes = [0u8; 32];
    rand::Rng::fill(&mut rand::rng(), &mut bytes);
    let file = fs_err::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path);
    match file {
        Ok(mut f) => {
            f.write_all(format!("{}\n", hex::encode(bytes)).as_bytes())
                .map_err(err)?;
            f.sync_all().map_err(err)?;
            tracing::info!(key = %path.display(), "created the host key");
            Ok(HostKey { bytes })
        }
        // Another process created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => HostKey::load_or_create(path),
        Err(e) => Err(err(e)),
    }
}

fn check_mode(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = fs_err::metadata(path)
        .map_err(|e| e.to_string())?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(format!(
            "the key file is open to group or others (mode {:o}); run `chmod 600 {}`",
            mode & 0o777,
            path.display()
        ));
    }
    Ok(())
}

/// Refuse a key file inside the journal's own directory: whoever can write
/// the journal could then read or replace the key.
pub(crate) fn check_key_outside(key: &Path, journal: &Path) -> Result<(), AgentError> {
    let dir = |p: &Path| {
        let parent = p
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        fs_err::canonicalize(parent).unwrap_or_else(|_| parent.to_path_buf())
    };
    if dir(key) == dir(journal) {
        return Err(AgentError::Key {
            path: key.to_path_buf(),
            reason: format!(
                "the host key must not live in the journal's directory ({}); set WARDEN_KEY_FILE to a path elsewhere",
                dir(journal).display()
            ),
        });
    }
    Ok(())
}
