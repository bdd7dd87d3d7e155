//! The `arm` import: Azure Resource Manager operations through a backend
//! the embedder supplies, so the credential stays on the host.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde_json::Value;
use warden_types::CapabilityUse;

use crate::bindings::warden::plugin::arm;
use crate::state::{CallScope, State};

/// Operations a plugin may ask for; the backend maps each to ARM.
const OPERATIONS: [&str; 9] = [
    "put-resource-group",
    "get-resource-group",
    "delete-resource-group",
    "list-resource-groups",
    "deploy",
    "get-deployment",
    "delete-deployment",
    "list-deployments",
    "what-if",
];

/// Operations that change Azure; a dry-run call never reaches them.
const MUTATING: [&str; 4] = [
    "put-resource-group",
    "delete-resource-group",
    "deploy",
    "delete-deployment",
];

/// Prefix of the error a plugin gets when the host refuses an operation.
const DENIED_PREFIX: &str = "denied: ";

/// Runs the ARM operations plugins ask for through the `arm` import.
///
/// The request is the plugin's JSON (`{"op": "deploy", "subscription": ...}`,
/// see `wit/world.wit`), already checked by the sandbox and the capability
/// gate; the answer goes back to the plugin as JSON. Implementations hold
/// the credential, must stop waiting at `deadline`, and report a
/// long-running operation that is still going as running, never as done.
///
/// ```
/// use std::time::Instant;
/// use serde_json::{Value, json};
/// use warden_sandbox::ArmBackend;
///
/// /// Answers every request with an empty list.
/// struct Empty;
///
/// #[async_trait::async_trait]
/// impl ArmBackend for Empty {
///     async fn call(&self, _request: Value, _deadline: Instant) -> Result<Value, String> {
///         Ok(json!([]))
///     }
/// }
/// ```
#[async_trait]
pub trait ArmBackend: Send + Sync {
    /// Run one operation; `Err` carries a message for the plugin.
    async fn call(&self, request: Value, deadline: Instant) -> Result<Value, String>;
}

/// The configured backend, if any; `Debug` without exposing it.
#[derive(Clone, Default)]
pub(crate) struct ArmSlot(pub Option<Arc<dyn ArmBackend>>);

impl std::fmt::Debug for ArmSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "ArmBackend(configured)"
        } else {
            "ArmBackend(none)"
        })
    }
}

fn text(request: &Value, field: &str) -> Option<String> {
    request
        .get(field)
        .and_then(Value::as_str)
        .map(str::to_string)
}

impl CallScope {
    /// When the backend must give up, and when the host stops waiting for a
    /// backend that overran: both before the call's own deadline, so the
    /// plugin still has time to report a running operation.
    fn arm_deadlines(&self) -> (Instant, Instant) {
        let margin = (self.timeout / 5).min(Duration::from_secs(2));
        let end = self.started + self.timeout;
        (end - margin, end - margin / 2)
    }

    async fn arm_call(&self, request: &str) -> Result<String, String> {
        let request: Value = serde_json::from_str(request)
            .map_err(|e| format!("arm request is not valid JSON: {e}"))?;
        let operation = text(&request, "op").ok_or("arm request has no string field `op`")?;
        if !OPERATIONS.contains(&operation.as_str()) {
            return Err(format!(
                "unknown arm operation `{operation}`; expected one of {}",
                OPERATIONS.join(", ")
            ));
        }
        let subscription = text(&request, "subscription")
            .ok_or_else(|| format!("arm operation `{operation}` needs a string `subscription`"))?;
        let Some(backend) = self.arm.clone() else {
            return Err("no Azure capability is configured on this host".to_string());
        };
        let capability = CapabilityUse::Arm {
            operation: operation.clone(),
            subscription,
            resource_group: text(&request, "resource_group"),
            name: text(&request, "name"),
        };
        // The plugin should already have turned these into a what-if; a
        // plugin that forgets must still not change anything.
        if self.ctx.dry_run && MUTATING.contains(&operation.as_str()) {
            let reason = format!(
                "plugin `{}` asked for the mutating arm operation `{operation}` in a dry run",
                self.manifest.name
            );
            return Err(format!(
                "{DENIED_PREFIX}{}",
                self.deny(capability, reason, false)
            ));
        }
        self.ask(capability)
            .map_err(|reason| format!("{DENIED_PREFIX}{reason}"))?;
        let (deadline, give_up) = self.arm_deadlines();
        let answer = tokio::time::timeout_at(give_up.into(), backend.call(request, deadline))
            .await
            .map_err(|_| {
                format!("arm operation `{operation}` did not answer before the call's deadline")
            })??;
        serde_json::to_string(&answer).map_err(|e| format!("arm answer is not JSON: {e}"))
    }
}

impl arm::Host for State {
    async fn call(&mut self, request: String) -> Result<String, String> {
        let scope = self.scope.clone();
        scope.arm_call(&request).await
    }
}
