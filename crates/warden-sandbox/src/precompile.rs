//! Plugins precompiled for another machine: what their code is bound to
//! ([`EngineId`]) and, with the `compile` feature, how to make them
//! ([`Precompiler`]).
//!
//! A runtime-only build (no `compile` feature, no Cranelift) cannot turn a
//! `.wasm` into native code. A build machine precompiles each plugin for the
//! device's target with the device's engine settings; the device installs the
//! result with [`Sandbox::install_precompiled`](crate::Sandbox::install_precompiled),
//! which binds it to the device's cache key, and loads it from then on like
//! any cached plugin.

use sha2::{Digest, Sha256};

use crate::SandboxConfig;
use crate::engine;

/// The wasmtime release this crate is built against (checked against
/// `Cargo.lock` by a test). Precompiled code only loads in the same release.
const WASMTIME_VERSION: &str = "48.0.8";

/// Domain separation and format version of the engine hash.
const DOMAIN: &str = "warden-engine-v1";

/// The target triple this crate was built for.
pub(crate) const HOST_TARGET: &str = env!("WARDEN_SANDBOX_TARGET");

/// What precompiled plugin code is bound to: the target triple, the wasmtime
/// release and the engine settings that shape compiled code (memory
/// reservation and guards from [`SandboxConfig::memory_limit`], fuel
/// metering on or off, epoch interruption).
///
/// Code precompiled for one id loads in any sandbox with an equal id;
/// wasmtime checks the same properties again when it maps the code. The
/// instance allocation strategy, timeouts and other limits do not change the
/// code and are not part of it.
///
/// ```
/// use warden_sandbox::{EngineId, SandboxConfig};
///
/// let mut small = SandboxConfig::default();
/// small.memory_limit(32 << 20);
/// let here = EngineId::host(&SandboxConfig::default());
/// assert_ne!(here, EngineId::host(&small));
/// assert_ne!(here, EngineId::for_target(&SandboxConfig::default(), "riscv64gc-unknown-linux-gnu"));
/// assert_eq!(here.hash().len(), 64);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EngineId {
    target: String,
    hash: [u8; 32],
}

impl EngineId {
    /// The id of a sandbox built with `config` on this host.
    pub fn host(config: &SandboxConfig) -> Self {
        Self::for_target(config, HOST_TARGET)
    }

    /// The id of a sandbox built with `config` for `target` (a Rust target
    /// triple such as `aarch64-unknown-linux-gnu`).
    pub fn for_target(config: &SandboxConfig, target: &str) -> Self {
        let mut h = Sha256::new();
        h.update(format!(
            "{DOMAIN}\nwasmtime={WASMTIME_VERSION}\ntarget={target}\n{}",
            engine::engine_settings(config)
        ));
        EngineId {
            target: target.to_string(),
            hash: h.finalize().into(),
        }
    }

    /// The target triple.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The hash over target, wasmtime release and engine settings, as 64
    /// hex digits.
    pub fn hash(&self) -> String {
        hex::encode(self.hash)
    }

    /// The wasmtime release the id includes.
    pub fn wasmtime_version() -> &'static str {
        WASMTIME_VERSION
    }

    /// The hash, as the runtime-only cache files entries under it.
    #[cfg(not(feature = "compile"))]
    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.hash
    }
}

impl std::fmt::Display for EngineId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} (wasmtime {WASMTIME_VERSION}, engine {})",
            self.target,
            &self.hash()[..16]
        )
    }
}

#[cfg(feature = "compile")]
pub use compile::Precompiler;

#[cfg(feature = "compile")]
mod compile {
    use wasmtime::Engine;

    use super::EngineId;
    use crate::{SandboxConfig, SandboxError, engine};

    /// Compiles plugins ahead of time for a target, possibly another
    /// architecture than this host's, with the engine settings of a
    /// [`SandboxConfig`]. Needs the `compile` feature.
    ///
    /// The output is wasmtime's serialized component: native code for the
    /// target. Ship it to the device in a checksummed (or signed) bundle and
    /// install it there with
    /// [`Sandbox::install_precompiled`](crate::Sandbox::install_precompiled).
    ///
    /// ```no_run
    /// # fn demo() -> Result<(), warden_sandbox::SandboxError> {
    /// use warden_sandbox::{Precompiler, SandboxConfig};
    ///
    /// let pre = Precompiler::new(&SandboxConfig::edge(), "aarch64-unknown-linux-gnu")?;
    /// let wasm = std::fs::read("http_probe.wasm").unwrap_or_default();
    /// let code = pre.precompile(&wasm, "http_probe.wasm")?;
    /// println!("{} bytes for {}", code.len(), pre.engine_id());
    /// # Ok(()) }
    /// ```
    #[derive(Clone)]
    pub struct Precompiler {
        engine: Engine,
        id: EngineId,
    }

    impl std::fmt::Debug for Precompiler {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("Precompiler")
                .field("engine", &self.id)
                .finish_non_exhaustive()
        }
    }

    impl Precompiler {
        /// A precompiler for `target` with the engine settings of `config`.
        ///
        /// CPU features are not taken from this host: the code runs on any
        /// CPU of the target architecture.
        ///
        /// # Errors
        /// [`SandboxError::Config`] for a target wasmtime cannot compile for.
        pub fn new(config: &SandboxConfig, target: &str) -> Result<Self, SandboxError> {
            // On-demand allocation: a precompiler runs no instances, so it
            // reserves no pool (the code does not depend on the strategy).
            let mut wasm = engine::wasm_config_without_pool(config);
            let cfg_err = |e: wasmtime::Error| SandboxError::Config {
                message: format!("precompiling for `{target}`: {e:#}"),
            };
            wasm.target(target).map_err(cfg_err)?;
            let engine = Engine::new(&wasm).map_err(cfg_err)?;
            Ok(Precompiler {
                engine,
                id: EngineId::for_target(config, target),
            })
        }

        /// The engine the output is for.
        pub fn engine_id(&self) -> &EngineId {
            &self.id
        }

        /// Compile the component `wasm` (named `origin` in errors) to
        /// native code for the target.
        ///
        /// # Errors
        /// [`SandboxError::InvalidWasm`] or [`SandboxError::NotAComponent`]
        /// for bytes that are not a component wasmtime can compile.
        pub fn precompile(&self, wasm: &[u8], origin: &str) -> Result<Vec<u8>, SandboxError> {
            crate::sandbox::check_header(wasm, origin)?;
            self.engine
                .precompile_component(wasm)
                .map_err(|e| SandboxError::InvalidWasm {
                    origin: origin.to_string(),
                    message: format!("{e:#}"),
                })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wasmtime_version_matches_the_lock_file() {
        let lock = include_str!("../../../Cargo.lock");
        let pinned = lock
            .split("[[package]]")
            .find(|p| p.contains("\nname = \"wasmtime\"\n"))
            .and_then(|p| p.lines().find_map(|l| l.strip_prefix("version = ")))
            .map(|v| v.trim_matches('"'));
        assert_eq!(pinned, Some(WASMTIME_VERSION));
    }

    #[test]
    fn engine_id_changes_with_memory_fuel_and_target_but_not_allocation() {
        let base = SandboxConfig::default();
        let id = EngineId::host(&base);
        let mut fuel = base.clone();
        fuel.fuel(Some(1));
        let mut pooled = base.clone();
        pooled.instance_allocation(crate::InstanceAllocation::Pooling);
        pooled.max_instances(2);
        assert_ne!(id, EngineId::host(&fuel));
        assert_ne!(
            id,
            EngineId::for_target(&base, "aarch64-unknown-linux-gnu-x")
        );
        assert_eq!(id, EngineId::host(&pooled));
        assert_eq!(id.target(), HOST_TARGET);
    }
}
