use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::arm::{ArmBackend, ArmSlot};
use crate::cache::CacheKey;
use crate::outbox::Retry;
use crate::secret::Secrets;

/// How plugin instances get their memory, tables and stacks.
///
/// Both keep the address-space footprint proportional to
/// [`SandboxConfig::memory_limit`]: every memory reserves its cap plus small
/// guard regions, never the 4 GiB (plus guards) wasmtime reserves by
/// default, so the compiled code checks bounds explicitly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum InstanceAllocation {
    /// Map each instance's memory and stack when the call starts and unmap
    /// them when the call ends: nothing is reserved while no call runs, at
    /// the price of an `mmap`, `mprotect` and `munmap` of each per call and
    /// the page faults that follow.
    OnDemand,
    /// Reserve [`SandboxConfig::max_instances`] slots when the sandbox
    /// starts and reuse them (the default): instantiation skips `mmap`, and
    /// a slot's pages stay resident between calls, reset to the plugin's
    /// initial image. Measured on a 2-core x86 VM, an agent step (policy,
    /// sandboxed call, journal) costs ~195 µs pooled against ~245 µs on
    /// demand (`benches/agent_step.rs`); under qemu an instantiation costs
    /// ~0.17 ms pooled against ~69 ms on demand. The reservation (about
    /// 1.1 GiB of address space, not memory, with the defaults) is held for
    /// the life of the sandbox and fits a 2 GB `ulimit -v`.
    Pooling,
}

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
    pub(crate) allocation: InstanceAllocation,
    pub(crate) max_instances: u32,
    pub(crate) max_memories_per_instance: u32,
    pub(crate) max_tables_per_instance: u32,
    pub(crate) max_table_elements: u32,
    pub(crate) max_plugin_size: u64,
    pub(crate) epoch_tick: Duration,
    pub(crate) log_records_per_call: usize,
    pub(crate) kv_max_keys: usize,
    pub(crate) kv_max_value: usize,
    pub(crate) secrets: Secrets,
    pub(crate) arm: ArmSlot,
    pub(crate) outbox: Option<PathBuf>,
    pub(crate) retry: Retry,
    pub(crate) outbox_body_limit: usize,
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
            allocation: InstanceAllocation::Pooling,
            max_instances: 8,
            max_memories_per_instance: 1,
            max_tables_per_instance: 8,
            max_table_elements: 100_000,
            max_plugin_size: 64 << 20,
            epoch_tick: Duration::from_millis(5),
            log_records_per_call: 1000,
            kv_max_keys: 1024,
            kv_max_value: 64 << 10,
            secrets: Secrets::default(),
            arm: ArmSlot::default(),
            outbox: None,
            retry: Retry::default(),
            outbox_body_limit: crate::outbox::OUTBOX_BODY_LIMIT,
        }
    }
}

impl SandboxConfig {
    /// Settings for a small box: 1-2 cores, 512 MiB-1 GiB of RAM, maybe an
    /// emulator. Differences from the default:
    ///
    /// | setting | edge | default | why |
    /// | --- | --- | --- | --- |
    /// | [`max_instances`](Self::max_instances) | 2 | 8 | one call per core |
    /// | [`memory_limit`](Self::memory_limit) | 64 MiB | 128 MiB | Rust plugins use a few MiB |
    /// | [`max_table_elements`](Self::max_table_elements) | 20 000 | 100 000 | a Rust plugin needs a few hundred |
    /// | [`output_limit`](Self::output_limit) | 1 MiB | 4 MiB | |
    /// | [`max_plugin_size`](Self::max_plugin_size) | 16 MiB | 64 MiB | no Python or JS plugins here |
    /// | [`kv_max_keys`](Self::kv_max_keys) | 256 | 1024 | |
    ///
    /// The pool reserves about 2 × (64 + 4) MiB of address space (not
    /// memory) up front; resident memory grows only with what plugins touch.
    /// The memory limit shapes compiled code, so plugins precompiled for an
    /// edge box must be precompiled with this profile (`warden plugin build
    /// --target … --profile edge`): its [`EngineId`](crate::EngineId)
    /// differs from the default's.
    ///
    /// ```
    /// use warden_sandbox::{EngineId, SandboxConfig};
    ///
    /// let edge = SandboxConfig::edge();
    /// assert_ne!(EngineId::host(&edge), EngineId::host(&SandboxConfig::default()));
    /// ```
    pub fn edge() -> Self {
        let mut config = SandboxConfig::default();
        config.edge_sizing();
        config
    }

    /// The sizing of [`SandboxConfig::edge`], on top of whatever else is
    /// set here (secrets, cache, outbox, timeouts).
    fn edge_sizing(&mut self) -> &mut Self {
        self.max_instances(2)
            .memory_limit(64 << 20)
            .instance_allocation(InstanceAllocation::Pooling)
            .max_table_elements(20_000)
            .output_limit(1 << 20)
            .max_plugin_size(16 << 20)
            .kv_max_keys(256)
    }

    /// The settings named `name`: `default` ([`SandboxConfig::default`]) or
    /// `edge` ([`SandboxConfig::edge`]); `None` for any other name.
    ///
    /// ```
    /// use warden_sandbox::SandboxConfig;
    ///
    /// assert!(SandboxConfig::profile("edge").is_some());
    /// assert!(SandboxConfig::profile("huge").is_none());
    /// ```
    pub fn profile(name: &str) -> Option<Self> {
        match name {
            "default" => Some(Self::default()),
            "edge" => Some(Self::edge()),
            _ => None,
        }
    }

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
    ///
    /// Each instance reserves this much address space (plus small guard
    /// regions) for each of its memories, so it also sizes the footprint:
    /// at most [`max_instances`](Self::max_instances) ×
    /// [`max_memories_per_instance`](Self::max_memories_per_instance) ×
    /// `memory_limit` (about 1 GiB with the defaults), reserved up front
    /// with [`InstanceAllocation::Pooling`], as calls run with
    /// [`InstanceAllocation::OnDemand`].
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

    /// How instances get their memory. Default:
    /// [`InstanceAllocation::Pooling`], which reserves every slot when the
    /// sandbox starts and makes each call cheaper;
    /// [`InstanceAllocation::OnDemand`] reserves address space only for the
    /// calls that run, for a process under a tight address-space limit.
    pub fn instance_allocation(&mut self, allocation: InstanceAllocation) -> &mut Self {
        self.allocation = allocation;
        self
    }

    /// Instances that can run at once: calls beyond this wait for a free
    /// slot within their deadline, then fail with
    /// [`SandboxError::Busy`](crate::SandboxError::Busy). With
    /// [`InstanceAllocation::Pooling`] this is also the number of slots the
    /// pool reserves. Default: 8.
    pub fn max_instances(&mut self, n: u32) -> &mut Self {
        self.max_instances = n.max(1);
        self
    }

    /// Linear memories one plugin instance may have (a Rust plugin has one;
    /// components that link several modules may have more). A plugin that
    /// needs more is refused at load, naming this setting. Default: 1.
    pub fn max_memories_per_instance(&mut self, n: u32) -> &mut Self {
        self.max_memories_per_instance = n.max(1);
        self
    }

    /// Tables one plugin instance may have (a Rust plugin has two). A
    /// plugin that needs more is refused at load, naming this setting.
    /// Default: 8.
    pub fn max_tables_per_instance(&mut self, n: u32) -> &mut Self {
        self.max_tables_per_instance = n.max(1);
        self
    }

    /// Elements one table may hold (a table holds a plugin's function
    /// pointers; a Rust plugin needs a few hundred). Default: 100 000.
    pub fn max_table_elements(&mut self, n: u32) -> &mut Self {
        self.max_table_elements = n.max(1);
        self
    }

    /// Largest plugin file [`Sandbox::load_file`](crate::Sandbox::load_file)
    /// reads, in bytes; a larger file is refused before it is read. Default:
    /// 64 MiB (a Rust plugin is well under 1 MiB, a Python one about 40 MiB).
    pub fn max_plugin_size(&mut self, bytes: u64) -> &mut Self {
        self.max_plugin_size = bytes;
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
    /// secret, never the URL. The destination's answer reaches the plugin
    /// with the URL scrubbed, and everything a call returns (output JSON,
    /// tool errors, trap messages, guest logs) has the URL, its path and
    /// query, and each path segment or query value that carries a token,
    /// plain or percent-encoded, replaced by `[secret:<name>]`. `name` must be a DNS label (lowercase letters,
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

    /// Take the host's secrets, extra CA and profile from environment
    /// variables, as `warden run`, `warden serve` and `warden mcp` do: each
    /// `WARDEN_SECRET_<NAME>` becomes the secret `<name>` (lowercase, `_`
    /// as `-`), `WARDEN_EXTRA_CA_FILE` the
    /// [`extra_ca_file`](Self::extra_ca_file), and `WARDEN_PROFILE=edge`
    /// applies the sizing of [`SandboxConfig::edge`] (on a small box, where
    /// the installed plugins were precompiled with that profile; `default`
    /// or empty changes nothing, another name is logged and ignored).
    ///
    /// ```
    /// use warden_sandbox::{EngineId, SandboxConfig};
    ///
    /// let vars = [
    ///     ("WARDEN_SECRET_OPS_SLACK".to_string(), "https://hooks.example/T0/abc".to_string()),
    ///     ("WARDEN_PROFILE".to_string(), "edge".to_string()),
    /// ];
    /// let mut config = SandboxConfig::default();
    /// config.from_vars(vars);
    /// assert!(format!("{config:?}").contains("ops-slack"));
    /// // Plugins precompiled with `--profile edge` load here.
    /// assert_eq!(EngineId::host(&config), EngineId::host(&SandboxConfig::edge()));
    /// ```
    pub fn from_vars(&mut self, vars: impl IntoIterator<Item = (String, String)>) -> &mut Self {
        for (key, value) in vars {
            if let Some(name) = key.strip_prefix("WARDEN_SECRET_") {
                self.secret(&name.to_ascii_lowercase().replace('_', "-"), &value);
            } else if key == "WARDEN_EXTRA_CA_FILE" && !value.is_empty() {
                self.extra_ca_file(value);
            } else if key == "WARDEN_PROFILE" {
                match value.as_str() {
                    "edge" => {
                        self.edge_sizing();
                    }
                    "" | "default" => {}
                    other => tracing::warn!(
                        profile = other,
                        "WARDEN_PROFILE names no sandbox profile (default, edge); ignored"
                    ),
                }
            }
        }
        self
    }

    /// Keep requests to secrets that cannot be reached in a durable outbox
    /// in `dir` (created when the first one is queued), and deliver them later with
    /// [`Sandbox::deliver_outbox`](crate::Sandbox::deliver_outbox).
    /// Default: none (such a request fails, as any other).
    ///
    /// A request to `https://<name>.secret.warden/` whose name does not
    /// resolve or whose connection cannot be made (refused, unreachable,
    /// timed out) is written to the outbox with its method, its
    /// `content-type`, `content-encoding`, `accept` and `user-agent`
    /// headers, its body, the plugin and the call's task and step, and
    /// the guest gets `202 Accepted` with the header `x-warden-outbox:
    /// <id>` and `{"queued": true, "outbox_id": …}`. A TLS certificate
    /// error, an HTTP error status, a denial, a body over
    /// [`outbox_body_limit`](Self::outbox_body_limit) (256 KiB), a dry run
    /// and a request to any other host fail as before. Requests to secrets
    /// have their bodies read whole before they are sent.
    pub fn outbox(&mut self, dir: impl AsRef<Path>) -> &mut Self {
        self.outbox = Some(dir.as_ref().to_path_buf());
        self
    }

    /// The outbox directory, if one is configured.
    pub fn get_outbox(&self) -> Option<&Path> {
        self.outbox.as_deref()
    }

    /// Backoff of outbox entries: the first retry after about `base`,
    /// doubling with each failed attempt up to `cap`, each wait drawn
    /// from its upper half (jitter). Default: 5 s, capped at 10 minutes.
    pub fn outbox_backoff(&mut self, base: Duration, cap: Duration) -> &mut Self {
        self.retry.base = base;
        self.retry.cap = cap.max(base);
        self
    }

    /// Largest request body the outbox keeps, in bytes; a request with a
    /// larger body is not queued and fails as before. Default:
    /// [`OUTBOX_BODY_LIMIT`](crate::OUTBOX_BODY_LIMIT) (256 KiB).
    pub fn outbox_body_limit(&mut self, bytes: usize) -> &mut Self {
        self.outbox_body_limit = bytes;
        self
    }

    /// How long an outbox entry is retried before it is dropped (and the
    /// drop reported). Default: 24 hours.
    pub fn outbox_max_age(&mut self, age: Duration) -> &mut Self {
        self.retry.max_age = age;
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
