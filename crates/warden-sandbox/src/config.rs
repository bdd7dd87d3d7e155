use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::arm::{ArmBackend, ArmSlot};
use crate::cache::CacheKey;
use crate::secret::Secrets;

/// Limits and engine settings of a [`Sandbox`](crate::Sandbox).
///
/// Long-lived configuration with `&mut self` setters; each setter documents
/// its default.
///
/// ```
/// use std::time::Duration;
/// use warden_sandbox::SandboxConfig;
///
/// let mut config = SandboxConfig::default();
/// config.timeout(Duration::from_secs(2)).memory_limit(64 << 20);
/// assert_eq!(config.get_timeout(), Duration::from_secs(2));
/// ```
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    pub(crate) timeout: Duration,
    pub(crate) memory_limit: usize,
    pub(crate) output_limit: usize,
    pub(crate) fuel: Option<u64>,
    pub(crate) cache_dir: Option<PathBuf>,
    pub(crate) cache_key: Option<CacheKey>,
    pub(crate) extra_ca_file: Option<PathBuf>,
    pub(crate) max_instances: u32,
    pub(crate) epoch_tick: Duration,
    pub(crate) log_records_per_call: usize,
    pub(crate) kv_max_keys: usize,
    pub(crate) kv_max_value: usize,
    pub(crate) secrets: Secrets,
    pub(crate) arm: ArmSlot,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            memory_limit: 128 << 20,
            output_limit: 4 << 20,
            fuel: None,
            cache_dir: None,
            cache_key: None,
            extra_ca_file: None,
            max_instances: 64,
            epoch_tick: Duration::from_millis(5),
            log_records_per_call: 1000,
            kv_max_keys: 1024,
            kv_max_value: 64 << 10,
            secrets: Secrets::default(),
            arm: ArmSlot::default(),
        }
    }
}

impl SandboxConfig {
    /// Wall-time deadline of one call, enforced by epoch interruption (and by
    /// a host-side timer while the guest waits on the host). Default: 10 s.
    pub fn timeout(&mut self, timeout: Duration) -> &mut Self {
        self.timeout = timeout;
        self
    }

    /// The configured call deadline.
    pub fn get_timeout(&self) -> Duration {
        self.timeout
    }

    /// Cap on a guest's linear memory, in bytes. Default: 128 MiB.
    pub fn memory_limit(&mut self, bytes: usize) -> &mut Self {
        self.memory_limit = bytes;
        self
    }

    /// Cap on the size of a call's JSON output, in bytes. Default: 4 MiB.
    pub fn output_limit(&mut self, bytes: usize) -> &mut Self {
        self.output_limit = bytes;
        self
    }

    /// Fuel metering: `Some(units)` per call stops a guest after that much
    /// work. Default: `None` (off), because metering roughly halves guest
    /// speed and the epoch deadline already stops runaway guests.
    pub fn fuel(&mut self, fuel: Option<u64>) -> &mut Self {
        self.fuel = fuel;
        self
    }

    /// Directory for precompiled `.cwasm` files, keyed by content hash and
    /// engine configuration; each entry carries an HMAC under the
    /// [`cache_key`](Self::cache_key) and is only used when it verifies.
    /// Default: none (compile on every load).
    pub fn cache_dir(&mut self, dir: impl AsRef<Path>) -> &mut Self {
        self.cache_dir = Some(dir.as_ref().to_path_buf());
        self
    }

    /// Secret key that binds [`cache_dir`](Self::cache_dir) entries to this
    /// host. A `.cwasm` entry is native code that the host maps and runs, so
    /// each entry carries an HMAC-SHA256 over the `.wasm` it was compiled
    /// from, the engine configuration and the compiled bytes; an entry that
    /// does not verify under this key (planted, copied from another plugin,
    /// altered, written under another key) is recompiled and rewritten,
    /// never loaded. Whoever can write the cache directory therefore cannot
    /// get code into the host without the key.
    ///
    /// Keep the key outside the cache directory (a file only the host's user
    /// reads, a secret store) and give every process that shares the cache
    /// the same key.
    ///
    /// Default: a random key drawn once per process, so entries are reused
    /// within the process but never across processes: every new process
    /// recompiles each plugin once and overwrites its entry.
    ///
    /// ```
    /// use warden_sandbox::SandboxConfig;
    ///
    /// let key = [7u8; 32]; // in practice: 32 random bytes kept outside the cache
    /// let mut config = SandboxConfig::default();
    /// config.cache_dir("/var/cache/warden").cache_key(key);
    /// assert!(!format!("{config:?}").contains("7, 7"));
    /// ```
    pub fn cache_key(&mut self, key: [u8; 32]) -> &mut Self {
        self.cache_key = Some(CacheKey::configured(key));
        self
    }

    /// A PEM file of CA certificates that plugins' HTTPS servers may also
    /// chain to, besides the Mozilla roots built in (`webpki-roots`): an
    /// internal CA, a TLS-inspecting proxy's CA. Certificates are still
    /// checked for the host name the plugin asked for, while the connection
    /// goes to the address the gate approved. [`Sandbox::new`](crate::Sandbox::new)
    /// refuses a file it cannot read or that holds no valid certificate,
    /// naming the file. Default: none (the built-in roots only).
    pub fn extra_ca_file(&mut self, path: impl AsRef<Path>) -> &mut Self {
        self.extra_ca_file = Some(path.as_ref().to_path_buf());
        self
    }

    /// Instances that can run at once (pooling allocator slots). Default: 64.
    pub fn max_instances(&mut self, n: u32) -> &mut Self {
        self.max_instances = n.max(1);
        self
    }

    /// Log records a guest may emit per call before the rest are dropped.
    /// Default: 1000.
    pub fn log_records_per_call(&mut self, n: usize) -> &mut Self {
        self.log_records_per_call = n;
        self
    }

    /// Keys a plugin may keep in its key-value store. Default: 1024.
    pub fn kv_max_keys(&mut self, n: usize) -> &mut Self {
        self.kv_max_keys = n;
        self
    }

    /// Largest value a plugin may store under one key, in bytes. Default: 64 KiB.
    pub fn kv_max_value(&mut self, bytes: usize) -> &mut Self {
        self.kv_max_value = bytes;
        self
    }

    /// Hold `url` under the secret `name`: a webhook or other URL whose path
    /// or query carries a token, known only to the host (read it from an
    /// environment variable or a file the operator controls). Default: no
    /// secrets.
    ///
    /// A plugin sends to it as `https://<name>.secret.warden/` (path `/`,
    /// no query) and must declare the HTTP host `<name>.secret.warden` or
    /// `*.secret.warden`; a bare `*` does not cover secrets. The host swaps
    /// in the URL, then resolves, gates and pins the request like any other.
    /// The gate sees the host `<name>.secret.warden` with the resolved
    /// addresses, scheme and port of the URL; denials and errors name the
    /// secret, never the URL. `name` must be a DNS label (lowercase letters,
    /// digits, `-`); [`Sandbox::new`](crate::Sandbox::new) refuses a bad
    /// name or a URL that is not absolute `http`/`https`.
    ///
    /// ```
    /// use warden_sandbox::SandboxConfig;
    ///
    /// let mut config = SandboxConfig::default();
    /// config.secret("ops-slack", "https://hooks.slack.com/services/T0/B0/abc");
    /// assert!(!format!("{config:?}").contains("hooks.slack.com"));
    /// ```
    pub fn secret(&mut self, name: &str, url: &str) -> &mut Self {
        self.secrets.insert(name, url);
        self
    }

    /// Serve the `arm` import (Azure Resource Manager) with `backend`, which
    /// holds the credential; plugins send JSON requests and never see it.
    /// Each operation is decided by the capability gate
    /// ([`CapabilityUse::Arm`](warden_types::CapabilityUse::Arm)), mutating
    /// operations are refused in dry-run calls, and the backend gets a
    /// deadline a little before the call's [`timeout`](Self::timeout).
    /// Default: none, and plugins get "no Azure capability is configured on
    /// this host".
    pub fn arm(&mut self, backend: Arc<dyn ArmBackend>) -> &mut Self {
        self.arm = ArmSlot(Some(backend));
        self
    }
}
