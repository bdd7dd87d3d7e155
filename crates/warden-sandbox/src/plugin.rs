use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use warden_types::{CallContext, CapabilityGate, ToolManifest};

use crate::bindings::{self, warden::plugin::types as wit};
use crate::cache::{Entry, Meta};
use crate::sandbox::{SandboxInner, finish};
use crate::state::{Denial, KvMap, State};
use crate::{SandboxError, ToolErrorKind};

/// A loaded, validated plugin, ready to be called any number of times.
///
/// Every call gets a fresh instance from the pre-linked component, so no
/// state leaks between calls (except the plugin's own key-value store,
/// which is gated). Cheap to clone.
#[derive(Clone)]
pub struct Plugin {
    pub(crate) inner: Arc<PluginInner>,
}

pub(crate) struct PluginInner {
    pub sandbox: Arc<SandboxInner>,
    /// The pre-linked component: set at load, or at the first call of a
    /// plugin opened lazily.
    pub pre: OnceLock<bindings::ToolPre<State>>,
    /// Where the code of a lazily opened plugin is, and what vouches for it.
    pub lazy: Option<Lazy>,
    /// Held while the code is being loaded, so it is loaded once.
    pub loading: Mutex<()>,
    pub manifest: Arc<ToolManifest>,
    /// Built at load, or at the first validation of a plugin opened lazily.
    pub validator: OnceLock<jsonschema::Validator>,
    pub origin: String,
    pub path: Option<PathBuf>,
    pub kv: KvMap,
    pub cache_hit: bool,
}

/// The cache entry a lazily opened plugin loads its code from.
pub(crate) struct Lazy {
    pub entry: Entry,
    pub meta: Meta,
}

impl PluginInner {
    /// The pre-linked component, loading it first if the plugin was opened
    /// lazily and this is its first use.
    pub(crate) fn pre(&self) -> Result<&bindings::ToolPre<State>, SandboxError> {
        if let Some(pre) = self.pre.get() {
            return Ok(pre);
        }
        let _guard = self.loading.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(pre) = self.pre.get() {
            return Ok(pre);
        }
        let name = &self.manifest.name;
        let Some(lazy) = &self.lazy else {
            return Err(SandboxError::Config {
                message: format!("{name}: plugin has no code to load"),
            });
        };
        let started = Instant::now();
        let component = lazy
            .entry
            .open_payload(&self.sandbox.engine, &lazy.meta)
            .map_err(|reason| {
                // The next start recompiles it, or says how to reinstall it.
                lazy.entry.forget();
                SandboxError::CacheEntry {
                    plugin: name.clone(),
                    path: lazy.entry.payload.clone(),
                    reason,
                }
            })?;
        let pre = self
            .sandbox
            .prepare(&component, &format!("{name} ({})", self.origin))?;
        tracing::debug!(plugin = %name, elapsed = ?started.elapsed(), "plugin code loaded at first use");
        Ok(self.pre.get_or_init(|| pre))
    }
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("name", &self.inner.manifest.name)
            .field("origin", &self.inner.origin)
            .finish_non_exhaustive()
    }
}

/// The result of one successful call.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CallOutput {
    /// The tool's JSON output.
    pub output: serde_json::Value,
    /// Capability uses the host refused during the call (the tool may still
    /// have succeeded, e.g. by reporting the failure in its output).
    pub denials: Vec<Denial>,
    /// Wall time of the call, instantiation included.
    #[serde(with = "duration_micros")]
    pub duration: Duration,
}

mod duration_micros {
    pub fn serialize<S: serde::Serializer>(
        d: &std::time::Duration,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_u128(d.as_micros())
    }
}

impl Plugin {
    /// The manifest the plugin returned from `describe()`.
    pub fn manifest(&self) -> &ToolManifest {
        &self.inner.manifest
    }

    /// The sandbox the plugin runs in (a cheap handle on it).
    pub fn sandbox(&self) -> crate::Sandbox {
        crate::Sandbox {
            inner: self.inner.sandbox.clone(),
        }
    }

    /// The file the plugin was loaded from, if any.
    pub fn path(&self) -> Option<&Path> {
        self.inner.path.as_deref()
    }

    /// Whether loading reused a precompiled cache entry.
    pub fn was_cached(&self) -> bool {
        self.inner.cache_hit
    }

    /// Whether the plugin's code is loaded: always after
    /// [`Sandbox::load_file`](crate::Sandbox::load_file); after
    /// [`Sandbox::open_file`](crate::Sandbox::open_file) only once it was
    /// called or [`load`](Self::load)ed.
    pub fn is_loaded(&self) -> bool {
        self.inner.pre.get().is_some()
    }

    /// Load the plugin's code now, if [`Sandbox::open_file`](crate::Sandbox::open_file)
    /// deferred it, so a broken entry shows up here rather than at the
    /// first call (what a configuration check wants). Does nothing for a
    /// loaded plugin.
    ///
    /// # Errors
    /// [`SandboxError::CacheEntry`] when the code no longer matches the
    /// cache entry that vouched for it, naming the plugin; the checks of
    /// [`Sandbox::load_file`](crate::Sandbox::load_file) otherwise.
    pub fn load(&self) -> Result<(), SandboxError> {
        self.inner.pre().map(|_| ())
    }

    /// Names of the component's imports (what it may ask the host for).
    /// Loads the code of a plugin opened lazily; empty if that fails (the
    /// error shows at [`load`](Self::load) or the first call).
    pub fn imports(&self) -> Vec<String> {
        let engine = &self.inner.sandbox.engine;
        let Ok(pre) = self.inner.pre() else {
            return Vec::new();
        };
        pre.instance_pre()
            .component()
            .component_type()
            .imports(engine)
            .map(|(name, _)| name.to_string())
            .collect()
    }

    /// Check `input` against the tool's input schema without running it.
    pub fn validate_input(&self, input: &serde_json::Value) -> Result<(), SandboxError> {
        let validator = match self.inner.validator.get() {
            Some(v) => v,
            None => {
                let built = crate::schema::compile(&self.inner.manifest, &self.inner.origin)?;
                self.inner.validator.get_or_init(|| built)
            }
        };
        if validator.is_valid(input) {
            return Ok(());
        }
        let errors: Vec<String> = validator
            .iter_errors(input)
            .take(20)
            .map(|e| {
                let at = e.instance_path().to_string();
                if at.is_empty() {
                    e.to_string()
                } else {
                    format!("at {at}: {e}")
                }
            })
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(SandboxError::InvalidInput {
                plugin: self.inner.manifest.name.clone(),
                errors,
            })
        }
    }

    /// Run the tool once on `input`, with every capability use decided by
    /// `gate`.
    ///
    /// The input is validated against the schema first; the guest runs in a
    /// fresh instance under the sandbox's deadline, memory and output caps.
    pub async fn invoke(
        &self,
        ctx: &CallContext,
        input: &serde_json::Value,
        gate: Arc<dyn CapabilityGate>,
    ) -> Result<CallOutput, SandboxError> {
        self.validate_input(input)?;
        let inner = &self.inner;
        let name = inner.manifest.name.as_str();
        let config = &inner.sandbox.config;
        let text = serde_json::to_string(input).map_err(|e| SandboxError::InvalidInput {
            plugin: name.to_string(),
            errors: vec![e.to_string()],
        })?;
        let started = Instant::now();
        let pre = inner.pre()?;
        // Declared before the store, so it is released after the store.
        let _slot = inner.sandbox.slot(name).await?;
        let mut store =
            inner
                .sandbox
                .new_store(inner.manifest.clone(), ctx.clone(), gate, inner.kv.clone());
        let wit_ctx = wit::CallContext {
            task_id: ctx.task_id.clone(),
            step_id: ctx.step_id.clone(),
            dry_run: ctx.dry_run,
        };
        // The epoch deadline stops a guest that computes; this timer stops
        // one that waits on the host (a slow HTTP response).
        let result = tokio::time::timeout(config.timeout + config.epoch_tick * 4, async {
            let tool = pre.instantiate_async(&mut store).await?;
            tool.warden_plugin_handler()
                .call_invoke(&mut store, &wit_ctx, &text)
                .await
        })
        .await;
        let outcome = finish(result, &mut store, name, config)?;
        let denials = store
            .data()
            .scope
            .denials
            .lock()
            .map(|d| d.clone())
            .unwrap_or_default();
        let duration = started.elapsed();
        let output = match outcome {
            Ok(output) => output,
            Err(e) => {
                let (kind, mut message) = match e {
                    wit::ToolError::InvalidInput(m) => (ToolErrorKind::InvalidInput, m),
                    wit::ToolError::Denied(m) => (ToolErrorKind::Denied, m),
                    wit::ToolError::Failed(m) => (ToolErrorKind::Failed, m),
                };
                // The guest only learns *that* it was denied; add the host's why.
                if let Some(d) = denials.last() {
                    message = format!("{message}: {}", d.reason);
                }
                store.data().scope.scrub.string(&mut message);
                tracing::info!(plugin = name, %kind, %message, ?duration, "tool reported an error");
                return Err(SandboxError::Tool {
                    plugin: name.to_string(),
                    kind,
                    message,
                });
            }
        };
        if output.len() > config.output_limit {
            return Err(SandboxError::OutputTooLarge {
                plugin: name.to_string(),
                size: output.len(),
                limit: config.output_limit,
            });
        }
        let mut output =
            serde_json::from_str(&output).map_err(|e| SandboxError::InvalidOutput {
                plugin: name.to_string(),
                message: e.to_string(),
            })?;
        store.data().scope.scrub.json(&mut output);
        tracing::debug!(plugin = name, task = %ctx.task_id, step = %ctx.step_id, ?duration, denials = denials.len(), "tool call finished");
        Ok(CallOutput {
            output,
            denials,
            duration,
        })
    }
}
