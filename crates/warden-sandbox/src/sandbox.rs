use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime::component::{Component, Linker, types::ComponentItem};
use wasmtime::{Engine, Store, Trap};

use crate::bindings::{self, HANDLER_INTERFACE, HANDLER_PREFIX};

/// Epoch ticks between a computing guest's yields to the async runtime.
const YIELD_TICKS: u64 = 2;
use crate::cache::{self, CacheKey};
use crate::engine;
use crate::files;
use crate::outbound;
use crate::outbox::Outbox;
use crate::plugin::{Lazy, Plugin, PluginInner};
use crate::schema;
use crate::scrub::Scrubber;
use crate::state::{CallScope, KvMap, State};
use crate::{EngineId, SandboxConfig, SandboxError};
use warden_types::{CallContext, CapabilityGate, DenyAll, ToolManifest};

/// The component host: one engine, one linker, an epoch ticker, and the
/// limits every call runs under.
///
/// Cheap to clone; clones share the engine.
///
/// ```no_run
/// # async fn demo() -> Result<(), warden_sandbox::SandboxError> {
/// use std::sync::Arc;
/// use warden_sandbox::{Sandbox, SandboxConfig};
/// use warden_types::{CallContext, DenyAll};
///
/// let sandbox = Sandbox::new(&SandboxConfig::default())?;
/// let plugin = sandbox.load_file("plugins/log_templates.wasm")?;
/// let out = plugin
///     .invoke(
///         &CallContext::default(),
///         &serde_json::json!({"lines": ["a 1", "a 2"]}),
///         Arc::new(DenyAll),
///     )
///     .await?;
/// println!("{}", out.output);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Sandbox {
    pub(crate) inner: Arc<SandboxInner>,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

pub(crate) struct SandboxInner {
    pub engine: Engine,
    pub linker: Linker<State>,
    pub config: SandboxConfig,
    /// The configured cache key, or this process's random one.
    pub cache_key: CacheKey,
    /// What precompiled code must have been built for.
    engine_id: EngineId,
    /// The engine fingerprint cache entries are filed and bound under.
    compat: [u8; 32],
    /// TLS client for plugins' `https` requests.
    pub tls: Arc<rustls::ClientConfig>,
    /// Replaces secret URLs and their parts in what guests return.
    pub scrub: Scrubber,
    /// One permit per instance that may exist at once.
    slots: Arc<Semaphore>,
    ticker_stop: Arc<AtomicBool>,
    /// Where requests to unreachable secrets wait.
    pub outbox: Option<Outbox>,
}

impl Drop for SandboxInner {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

impl Sandbox {
    /// Build a sandbox with `config`.
    ///
    /// Fails on a bad [`secret`](SandboxConfig::secret), an unusable
    /// [`extra_ca_file`](SandboxConfig::extra_ca_file), or an engine
    /// wasmtime cannot build.
    ///
    /// The first sandbox of a process also installs ring as the process's
    /// default rustls crypto provider, unless the embedder installed one
    /// before: with more than one provider compiled in, rustls otherwise
    /// panics wherever a default is needed.
    pub fn new(config: &SandboxConfig) -> Result<Self, SandboxError> {
        config.secrets.check()?;
        let scrub = config.secrets.scrubber()?;
        outbound::install_crypto_provider();
        let tls = outbound::client_config(config.extra_ca_file.as_deref())?;
        let cache_key = match config.cache_key {
            Some(key) => key,
            None => CacheKey::per_process()?,
        };
        let cfg_err = |e: wasmtime::Error| SandboxError::Config {
            message: format!("{e:#}"),
        };
        let outbox = config.outbox.as_deref().map(Outbox::open).transpose()?;
        let engine = engine::build(config)?;

        let mut linker = Linker::<State>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(cfg_err)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker).map_err(cfg_err)?;
        bindings::warden::plugin::types::add_to_linker::<_, wasmtime::component::HasSelf<State>>(
            &mut linker,
            |s| s,
        )
        .map_err(cfg_err)?;
        bindings::warden::plugin::log::add_to_linker::<_, wasmtime::component::HasSelf<State>>(
            &mut linker,
            |s| s,
        )
        .map_err(cfg_err)?;
        bindings::warden::plugin::kv::add_to_linker::<_, wasmtime::component::HasSelf<State>>(
            &mut linker,
            |s| s,
        )
        .map_err(cfg_err)?;
        bindings::warden::plugin::arm::add_to_linker::<_, wasmtime::component::HasSelf<State>>(
            &mut linker,
            |s| s,
        )
        .map_err(cfg_err)?;

        let ticker_stop = Arc::new(AtomicBool::new(false));
        spawn_ticker(engine.clone(), config.epoch_tick, ticker_stop.clone())?;
        let engine_id = EngineId::host(config);
        let compat = cache::engine_compat(&engine, &engine_id);
        Ok(Sandbox {
            inner: Arc::new(SandboxInner {
                engine,
                linker,
                config: config.clone(),
                cache_key,
                engine_id,
                compat,
                tls,
                scrub,
                slots: Arc::new(Semaphore::new(config.max_instances as usize)),
                ticker_stop,
                outbox,
            }),
        })
    }

    /// Load, validate and (through the cache, if configured) compile a
    /// plugin file; calls its `describe()` to read the manifest, unless the
    /// cache entry it came from already holds it.
    ///
    /// The path must lead (through any symlinks) to a regular file of at
    /// most [`max_plugin_size`](SandboxConfig::max_plugin_size) bytes; a
    /// FIFO, a device or a larger file is refused before it is read
    /// ([`SandboxError::NotAFile`], [`SandboxError::FileTooLarge`]).
    pub fn load_file(&self, path: impl AsRef<Path>) -> Result<Plugin, SandboxError> {
        let path = path.as_ref();
        let bytes = files::read_plugin(path, self.inner.config.max_plugin_size)?;
        let mut plugin = self.load_bytes(&bytes, &path.display().to_string())?;
        if let Some(inner) = Arc::get_mut(&mut plugin.inner) {
            inner.path = Some(path.to_path_buf());
        }
        Ok(plugin)
    }

    /// Like [`load_file`](Self::load_file), but when the
    /// [`cache_dir`](SandboxConfig::cache_dir) holds a verified entry for
    /// this exact file that already knows its manifest (any earlier load on
    /// this host with the same key and engine wrote one), only the manifest
    /// is read now: the code is mapped, checked and pre-linked at the first
    /// call ([`Plugin::invoke`], [`Plugin::load`]). A plugin that is never
    /// called then costs no memory for its code and no start-up time.
    ///
    /// Without such an entry the plugin is loaded at once, as by
    /// [`load_file`](Self::load_file), which writes the entry for next
    /// time. A sidecar that does not verify is never used: the plugin is
    /// recompiled, or, in a runtime-only build, refused with
    /// [`SandboxError::CacheEntry`]. Code that no longer matches its
    /// sidecar is reported at the first call, naming the plugin
    /// ([`SandboxError::CacheEntry`]).
    ///
    /// ```no_run
    /// # fn demo() -> Result<(), warden_sandbox::SandboxError> {
    /// use warden_sandbox::{Sandbox, SandboxConfig};
    ///
    /// let mut config = SandboxConfig::default();
    /// config.cache_dir("plugins/.cache").cache_key([7; 32]);
    /// let sandbox = Sandbox::new(&config)?;
    /// let plugin = sandbox.open_file("plugins/log_templates.wasm")?;
    /// println!("{} (code loaded: {})", plugin.manifest().name, plugin.is_loaded());
    /// # Ok(()) }
    /// ```
    pub fn open_file(&self, path: impl AsRef<Path>) -> Result<Plugin, SandboxError> {
        let path = path.as_ref();
        let origin = path.display().to_string();
        let bytes = files::read_plugin(path, self.inner.config.max_plugin_size)?;
        check_header(&bytes, &origin)?;
        if let Some(dir) = &self.inner.config.cache_dir {
            let entry = cache::Entry::for_wasm(dir, &bytes, self.inner.compat);
            match entry.read_meta(&self.inner.cache_key) {
                Ok(Some(meta)) => {
                    if let Some(manifest) = meta.manifest.clone() {
                        // Its schema compiled when the sidecar was written;
                        // the validator is built at the first validation.
                        tracing::debug!(plugin = %manifest.name, origin, "plugin opened; code loads at first call");
                        return Ok(Plugin {
                            inner: Arc::new(PluginInner {
                                sandbox: self.inner.clone(),
                                pre: OnceLock::new(),
                                lazy: Some(Lazy { entry, meta }),
                                loading: Mutex::new(()),
                                manifest: Arc::new(manifest),
                                validator: OnceLock::new(),
                                origin,
                                path: Some(path.to_path_buf()),
                                kv: KvMap::default(),
                                cache_hit: true,
                            }),
                        });
                    }
                }
                Ok(None) => {}
                Err(reason) if !cfg!(feature = "compile") => {
                    return Err(SandboxError::CacheEntry {
                        plugin: origin,
                        path: entry.sidecar,
                        reason,
                    });
                }
                // `load_bytes` meets it again, warns and recompiles.
                Err(_) => {}
            }
        }
        let mut plugin = self.load_bytes(&bytes, &origin)?;
        if let Some(inner) = Arc::get_mut(&mut plugin.inner) {
            inner.path = Some(path.to_path_buf());
        }
        Ok(plugin)
    }

    /// Like [`Sandbox::load_file`], from bytes; `origin` names them in errors.
    pub fn load_bytes(&self, bytes: &[u8], origin: &str) -> Result<Plugin, SandboxError> {
        check_header(bytes, origin)?;
        let engine = &self.inner.engine;
        #[cfg(feature = "compile")]
        let compile = |wasm: &[u8]| {
            Component::new(engine, wasm).map_err(|e| {
                engine::pooled_compile_error(&self.inner.config, &e, wasm, origin).unwrap_or_else(
                    || SandboxError::InvalidWasm {
                        origin: origin.to_string(),
                        message: format!("{e:#}"),
                    },
                )
            })
        };
        #[cfg(not(feature = "compile"))]
        let compile = |_: &[u8]| -> Result<Component, SandboxError> {
            Err(SandboxError::NotPrecompiled {
                origin: origin.to_string(),
                engine: self.inner.engine_id.to_string(),
                target: self.inner.engine_id.target().to_string(),
                cache_dir: self.inner.config.cache_dir.clone(),
            })
        };
        let started = Instant::now();
        let (component, cache_hit, cached) = match &self.inner.config.cache_dir {
            Some(dir) => {
                let loaded = cache::load_cached(
                    engine,
                    &self.inner.compat,
                    dir,
                    &self.inner.cache_key,
                    bytes,
                    origin,
                    cfg!(feature = "compile"),
                    compile,
                )?;
                (
                    loaded.component,
                    loaded.cache_hit,
                    loaded.meta.map(|m| (loaded.entry, m)),
                )
            }
            None => (compile(bytes)?, false, None),
        };
        let pre = self.inner.prepare(&component, origin)?;
        drop(component);
        let manifest = match cached {
            Some((
                _,
                cache::Meta {
                    manifest: Some(manifest),
                    ..
                },
            )) => manifest,
            cached => {
                let manifest = self.describe(&pre, origin)?;
                // Remembered, so the next start can open it lazily.
                if let Some((entry, mut meta)) = cached {
                    meta.manifest = Some(manifest.clone());
                    if let Err(e) = entry.store_meta(&self.inner.cache_key, &meta) {
                        tracing::warn!(path = %entry.sidecar.display(), error = %e, "could not write plugin cache sidecar");
                    }
                }
                manifest
            }
        };
        let validator = schema::compile(&manifest, origin)?;
        tracing::debug!(
            plugin = %manifest.name,
            origin,
            cache_hit,
            elapsed = ?started.elapsed(),
            "plugin loaded"
        );
        Ok(Plugin {
            inner: Arc::new(PluginInner {
                sandbox: self.inner.clone(),
                pre: OnceLock::from(pre),
                lazy: None,
                loading: Mutex::new(()),
                manifest: Arc::new(manifest),
                validator: OnceLock::from(validator),
                origin: origin.to_string(),
                path: None,
                kv: KvMap::default(),
                cache_hit,
            }),
        })
    }

    /// What code precompiled for this sandbox must have been built for:
    /// this host's target and the engine settings of its configuration.
    pub fn engine_id(&self) -> &EngineId {
        &self.inner.engine_id
    }

    /// Install `precompiled`, the code a [`Precompiler`](crate::Precompiler)
    /// for this sandbox's [`engine_id`](Self::engine_id) made from the
    /// plugin `wasm` (named `origin` in errors), into the
    /// [`cache_dir`](SandboxConfig::cache_dir), bound under this host's
    /// [`cache_key`](SandboxConfig::cache_key), and return the plugin
    /// loaded from it. From then on [`load_file`](Self::load_file) of the `.wasm` loads it
    /// without compiling, which is the only way a runtime-only build (no
    /// `compile` feature) loads plugins.
    ///
    /// wasmtime checks that the code fits this engine (release, target, CPU
    /// features, settings) before anything is written; then the plugin is
    /// loaded once from the new entry to check it is a warden plugin.
    ///
    /// # Errors
    /// [`SandboxError::Config`] without a cache directory;
    /// [`SandboxError::Precompiled`] for code built for another engine;
    /// [`SandboxError::Io`] when the entry cannot be written; any load error
    /// of the plugin.
    ///
    /// # Safety
    /// `precompiled` is native code that this process maps and runs, with
    /// no more than wasmtime's format checks: it must come from a
    /// [`Precompiler`](crate::Precompiler) (or `Component::serialize`) of
    /// the same wasmtime release, from this very `wasm`, by someone you
    /// trust, e.g. in a bundle whose checksums (or signature) you verified.
    #[allow(
        unsafe_code,
        reason = "deserialising native code the caller vouches for (see # Safety)"
    )]
    pub unsafe fn install_precompiled(
        &self,
        wasm: &[u8],
        precompiled: &[u8],
        origin: &str,
    ) -> Result<Plugin, SandboxError> {
        check_header(wasm, origin)?;
        let Some(dir) = &self.inner.config.cache_dir else {
            return Err(SandboxError::Config {
                message: format!(
                    "{origin}: installing precompiled code needs a cache directory (SandboxConfig::cache_dir)"
                ),
            });
        };
        // SAFETY: the caller vouches for the bytes (see # Safety); wasmtime
        // checks its header, release, target and settings.
        let component = unsafe { Component::deserialize(&self.inner.engine, precompiled) }
            .map_err(|e| SandboxError::Precompiled {
                origin: origin.to_string(),
                engine: self.inner.engine_id.to_string(),
                message: format!("{e:#}"),
            })?;
        check_exports(&self.inner.engine, &component, origin)?;
        drop(component);
        cache::Entry::for_wasm(dir, wasm, self.inner.compat)
            .store(&self.inner.cache_key, precompiled, None)
            .map_err(|error| SandboxError::Io {
                path: dir.clone(),
                error,
            })?;
        self.load_bytes(wasm, origin)
    }

    fn describe(
        &self,
        pre: &bindings::ToolPre<State>,
        origin: &str,
    ) -> Result<ToolManifest, SandboxError> {
        let placeholder = Arc::new(ToolManifest {
            name: origin.to_string(),
            version: String::new(),
            description: String::new(),
            input_schema: serde_json::Value::Null,
            output_schema: serde_json::Value::Null,
            effect: warden_types::Effect::ReadOnly,
            supports_dry_run: false,
            capabilities: Vec::new(),
        });
        let raw = run_blocking_on_runtime(async {
            let _slot = self.inner.slot(&placeholder.name).await?;
            let mut store = self.inner.new_store(
                placeholder.clone(),
                CallContext::default(),
                Arc::new(DenyAll),
                KvMap::default(),
            );
            let result = tokio::time::timeout(self.inner.config.timeout * 2, async {
                let tool = pre.instantiate_async(&mut store).await?;
                tool.warden_plugin_handler().call_describe(&mut store).await
            })
            .await;
            finish(result, &mut store, &placeholder.name, &self.inner.config)
        })?;
        manifest_from_wit(raw, origin)
    }
}

impl Sandbox {
    /// The outbox, when [`SandboxConfig::outbox`] is set.
    pub fn outbox(&self) -> Option<&Outbox> {
        self.inner.outbox.as_ref()
    }

    /// Whether `other` is this sandbox or a clone of it.
    pub fn same_as(&self, other: &Sandbox) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl SandboxInner {
    /// Check that `component` is a warden plugin this sandbox can run and
    /// pre-link it.
    pub(crate) fn prepare(
        &self,
        component: &Component,
        origin: &str,
    ) -> Result<bindings::ToolPre<State>, SandboxError> {
        check_exports(&self.engine, component, origin)?;
        engine::check_shape(component, &self.config, origin)?;
        let pre = self
            .linker
            .instantiate_pre(component)
            .map_err(|e| SandboxError::Link {
                origin: origin.to_string(),
                message: format!("{e:#}"),
            })?;
        bindings::ToolPre::new(pre).map_err(|e| SandboxError::NotAPlugin {
            origin: origin.to_string(),
            reason: format!("{e:#}"),
        })
    }

    /// Wait, within the call deadline, for one of the
    /// [`max_instances`](SandboxConfig::max_instances) slots; hold the
    /// permit until the instance's store is dropped.
    pub(crate) async fn slot(&self, plugin: &str) -> Result<OwnedSemaphorePermit, SandboxError> {
        let started = Instant::now();
        let busy = || SandboxError::Busy {
            plugin: plugin.to_string(),
            limit: self.config.max_instances,
            waited: started.elapsed(),
        };
        match tokio::time::timeout(self.config.timeout, self.slots.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            // The semaphore is never closed; treat it like a full one.
            Ok(Err(_)) | Err(_) => Err(busy()),
        }
    }

    pub(crate) fn new_store(
        &self,
        manifest: Arc<ToolManifest>,
        ctx: CallContext,
        gate: Arc<dyn CapabilityGate>,
        kv: KvMap,
    ) -> Store<State> {
        let config = &self.config;
        let scope = Arc::new(CallScope {
            manifest,
            gate,
            ctx,
            denials: Mutex::new(Vec::new()),
            kv,
            kv_max_keys: config.kv_max_keys,
            kv_max_value: config.kv_max_value,
            timeout: config.timeout,
            secrets: config.secrets.clone(),
            arm: config.arm.0.clone(),
            tls: self.tls.clone(),
            scrub: self.scrub.clone(),
            started: Instant::now(),
            outbox: self.outbox.clone(),
            retry: config.retry,
            outbox_body_limit: config.outbox_body_limit,
        });
        let state = State::new(scope, config);
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        // A computing guest yields to the async runtime every few ticks, so
        // the caller can drop the call (cancellation) and other tasks on the
        // thread run; past its deadline it traps.
        let deadline = Instant::now() + config.timeout;
        store.set_epoch_deadline(YIELD_TICKS);
        store.epoch_deadline_callback(move |_| {
            if Instant::now() >= deadline {
                Err(Trap::Interrupt.into())
            } else {
                Ok(wasmtime::UpdateDeadline::Yield(YIELD_TICKS))
            }
        });
        if let Some(fuel) = config.fuel {
            // Fuel is only configured when the engine meters it.
            let _ = store.set_fuel(fuel);
        }
        store
    }
}

/// Map the outcome of a guest call (timer, trap, success) to our errors.
pub(crate) fn finish<T>(
    result: Result<wasmtime::Result<T>, tokio::time::error::Elapsed>,
    store: &mut Store<State>,
    plugin: &str,
    config: &SandboxConfig,
) -> Result<T, SandboxError> {
    let err = match result {
        Err(_) => {
            return Err(SandboxError::Timeout {
                plugin: plugin.to_string(),
                limit: config.timeout,
            });
        }
        Ok(Ok(v)) => return Ok(v),
        Ok(Err(e)) => e,
    };
    if let Some(err) = engine::instantiation_error(config, &err) {
        return Err(err);
    }
    if let Some(Trap::Interrupt | Trap::OutOfFuel) = err.downcast_ref::<Trap>() {
        return Err(SandboxError::Timeout {
            plugin: plugin.to_string(),
            limit: config.timeout,
        });
    }
    if store.data().limiter.memory_hit {
        return Err(SandboxError::MemoryLimit {
            plugin: plugin.to_string(),
            limit: config.memory_limit,
        });
    }
    let stderr = store.data().stderr_tail();
    let mut message = format!("{err:#}");
    if let Some(trap) = err.downcast_ref::<Trap>() {
        message = trap.to_string();
    }
    if !stderr.is_empty() {
        message = format!("{message}; guest stderr: {stderr}");
    }
    // The guest wrote its stderr (a panic message may quote anything).
    store.data().scope.scrub.string(&mut message);
    Err(SandboxError::Trapped {
        plugin: plugin.to_string(),
        message,
    })
}

/// `describe()` runs at load time, which may be outside any runtime (the CLI
/// loads plugins before it starts one); run it on a small private runtime
/// then, or in place on the caller's multi-threaded runtime.
fn run_blocking_on_runtime<T: Send>(
    fut: impl Future<Output = Result<T, SandboxError>> + Send,
) -> Result<T, SandboxError> {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(|| handle.block_on(fut))
        }
        _ => std::thread::scope(|s| {
            s.spawn(|| {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| SandboxError::Config {
                        message: format!("starting a runtime for describe(): {e}"),
                    })?;
                rt.block_on(fut)
            })
            .join()
            .unwrap_or_else(|_| {
                Err(SandboxError::Config {
                    message: "describe() thread panicked".into(),
                })
            })
        }),
    }
}

fn spawn_ticker(engine: Engine, tick: Duration, stop: Arc<AtomicBool>) -> Result<(), SandboxError> {
    std::thread::Builder::new()
        .name("warden-epoch".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(tick);
                engine.increment_epoch();
            }
        })
        .map(|_| ())
        .map_err(|e| SandboxError::Config {
            message: format!("starting the epoch ticker: {e}"),
        })
}

/// Tell a core module, a component and garbage apart before compiling, so
/// each gets the error that helps.
pub(crate) fn check_header(bytes: &[u8], origin: &str) -> Result<(), SandboxError> {
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err(SandboxError::InvalidWasm {
            origin: origin.to_string(),
            message: if bytes.len() < 8 {
                format!(
                    "file is {} bytes, too short for a WebAssembly header",
                    bytes.len()
                )
            } else {
                "missing the `\\0asm` magic number".to_string()
            },
        });
    }
    // Bytes 4..6: version, 6..8: layer (0 = core module, 1 = component).
    if bytes[6] == 0 && bytes[7] == 0 {
        return Err(SandboxError::NotAComponent {
            origin: origin.to_string(),
        });
    }
    Ok(())
}

fn check_exports(engine: &Engine, component: &Component, origin: &str) -> Result<(), SandboxError> {
    let ty = component.component_type();
    let mut found = Vec::new();
    for (name, item) in ty.exports(engine) {
        if name == HANDLER_INTERFACE && matches!(item.ty, ComponentItem::ComponentInstance(_)) {
            return Ok(());
        }
        if name.starts_with(HANDLER_PREFIX) {
            found.push(name.to_string());
        }
    }
    if let Some(other) = found.into_iter().next() {
        let compatible = semver_compatible(&other[HANDLER_PREFIX.len()..]);
        if !compatible {
            return Err(SandboxError::IncompatibleAbi {
                origin: origin.to_string(),
                found: other,
                expected: HANDLER_INTERFACE.to_string(),
            });
        }
        return Ok(());
    }
    Err(SandboxError::NotAPlugin {
        origin: origin.to_string(),
        reason: format!("it does not export `{HANDLER_INTERFACE}`"),
    })
}

/// 0.1.x is compatible with 0.1.0 (semver for 0.x: same minor).
fn semver_compatible(version: &str) -> bool {
    let mut parts = version.split('.');
    matches!((parts.next(), parts.next()), (Some("0"), Some("1")))
}

fn manifest_from_wit(
    raw: bindings::warden::plugin::types::Manifest,
    origin: &str,
) -> Result<ToolManifest, SandboxError> {
    use bindings::warden::plugin::types::{Capability as WitCap, Effect as WitEffect};
    let bad = |message: String| SandboxError::InvalidManifest {
        origin: origin.to_string(),
        message,
    };
    if raw.name.is_empty()
        || !raw
            .name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
    {
        return Err(bad(format!(
            "name `{}` must be non-empty lowercase letters, digits, `-` or `_`",
            raw.name
        )));
    }
    let parse = |what: &str, text: &str| {
        serde_json::from_str::<serde_json::Value>(text)
            .map_err(|e| bad(format!("{what} is not valid JSON: {e}")))
    };
    let input_schema = parse("input schema", &raw.input_schema)?;
    let output_schema = parse("output schema", &raw.output_schema)?;
    Ok(ToolManifest {
        name: raw.name,
        version: raw.version,
        description: raw.description,
        input_schema,
        output_schema,
        effect: match raw.effect {
            WitEffect::ReadOnly => warden_types::Effect::ReadOnly,
            WitEffect::Mutating => warden_types::Effect::Mutating,
            WitEffect::Destructive => warden_types::Effect::Destructive,
        },
        supports_dry_run: raw.supports_dry_run,
        capabilities: raw
            .capabilities
            .into_iter()
            .map(|c| match c {
                WitCap::Http(hosts) => warden_types::Capability::Http { hosts },
                WitCap::Kv => warden_types::Capability::Kv,
            })
            .collect(),
    })
}
