use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use warden_types::{CallContext, CapabilityGate, ToolManifest};

use crate::bindings::{self, warden::plugin::types as wit};
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
    pub pre: bindings::ToolPre<State>,
    pub manifest: Arc<ToolManifest>,
    pub validator: jsonschema::Validator,
    pub origin: String,
    pub path: Option<PathBuf>,
    pub kv: KvMap,
    pub cache_hit: bool,
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

    /// Names of the component's imports (what it may ask the host for).
    pub fn imports(&self) -> Vec<String> {
        let engine = &self.inner.sandbox.engine;
        self.inner
            .pre
            .instance_pre()
            .component()
            .component_type()
            .imports(engine)
            .map(|(name, _)| name.to_string())
            .collect()
    }

    /// Check `input` against the tool's input schema without running it.
    pub fn validate_input(&self, input: &serde_json::Value) -> Result<(), SandboxError> {
        if self.inner.validator.is_valid(input) {
            return Ok(());
        }
        let errors: Vec<String> = self
            .inner
            .validator
            .iter_errors(input)
            .take(20)
            .map(|e| {
                let at = e.instance_path.to_string();
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
            let tool = inner.pre.instantiate_async(&mut store).await?;
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
