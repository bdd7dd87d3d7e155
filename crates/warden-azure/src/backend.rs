//! [`AzureBackend`]: serves the sandbox's `arm` import with an [`Arm`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use serde_json::{Value, json};
use warden_sandbox::ArmBackend;

use crate::arm::Arm;
use crate::model::{DeploymentMode, DeploymentSpec, OperationState};

/// Serves plugins' Azure Resource Manager requests (the sandbox's `arm`
/// import) with an [`Arm`] client, which holds the credential.
///
/// Register it with `SandboxConfig::arm`. Long-running operations answer
/// `{"state": "succeeded", "resource"}`, `{"state": "failed", "code",
/// "message", "details"}` or, when the call's deadline comes first,
/// `{"state": "running", "operation_url", "last_status"}`.
///
/// ```no_run
/// use std::sync::Arc;
/// use warden_azure::{AzureArm, AzureBackend, Credential};
/// use warden_sandbox::SandboxConfig;
///
/// # fn demo() -> Result<(), warden_azure::ArmError> {
/// let arm = AzureArm::new("https://management.azure.com", Credential::AzureCli)?;
/// let mut config = SandboxConfig::default();
/// config.arm(Arc::new(AzureBackend::new(Arc::new(arm))));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct AzureBackend(Arc<dyn Arm>);

impl AzureBackend {
    /// A backend that runs every request through `arm`.
    pub fn new(arm: Arc<dyn Arm>) -> Self {
        Self(arm)
    }
}

impl std::fmt::Debug for AzureBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AzureBackend")
    }
}

/// The request's fields, read once with messages that name the field.
struct Request<'a> {
    op: &'a str,
    body: &'a Value,
}

impl<'a> Request<'a> {
    fn text(&self, field: &str) -> Result<&'a str, String> {
        self.body
            .get(field)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| format!("arm operation `{}` needs a string `{field}`", self.op))
    }

    fn spec(&self) -> Result<DeploymentSpec, String> {
        let template = self
            .body
            .get("template")
            .filter(|t| t.is_object())
            .ok_or_else(|| format!("arm operation `{}` needs an object `template`", self.op))?;
        let mut spec = DeploymentSpec::new(template.clone());
        if let Some(parameters) = self.body.get("parameters").filter(|p| !p.is_null()) {
            spec = spec.with_parameters(parameters.clone());
        }
        let mode = match self.body.get("mode").and_then(Value::as_str) {
            None => DeploymentMode::Incremental,
            Some(m) if m.eq_ignore_ascii_case("incremental") => DeploymentMode::Incremental,
            Some(m) if m.eq_ignore_ascii_case("complete") => DeploymentMode::Complete,
            Some(other) => {
                return Err(format!(
                    "unknown deployment mode `{other}`; expected Incremental or Complete"
                ));
            }
        };
        Ok(spec.with_mode(mode))
    }

    fn tags(&self) -> BTreeMap<String, String> {
        let Some(Value::Object(tags)) = self.body.get("tags") else {
            return BTreeMap::new();
        };
        tags.iter()
            .map(|(k, v)| match v {
                Value::String(s) => (k.clone(), s.clone()),
                other => (k.clone(), other.to_string()),
            })
            .collect()
    }
}

fn state_json(state: OperationState) -> Value {
    match state {
        OperationState::Succeeded { resource } => {
            json!({"state": "succeeded", "resource": resource})
        }
        OperationState::Failed {
            code,
            message,
            details,
        } => json!({"state": "failed", "code": code, "message": message, "details": details}),
        OperationState::Running {
            operation_url,
            last_status,
        } => {
            json!({"state": "running", "operation_url": operation_url, "last_status": last_status})
        }
    }
}

fn to_json<T: serde::Serialize>(value: T) -> Result<Value, String> {
    serde_json::to_value(value).map_err(|e| format!("cannot encode the arm answer: {e}"))
}

#[async_trait]
impl ArmBackend for AzureBackend {
    async fn call(&self, body: Value, deadline: Instant) -> Result<Value, String> {
        let op = body.get("op").and_then(Value::as_str).unwrap_or_default();
        let r = Request { op, body: &body };
        let arm = &self.0;
        let sub = r.text("subscription")?;
        let fail = |e: crate::ArmError| e.to_string();
        match op {
            "put-resource-group" => to_json(
                arm.put_resource_group(
                    sub,
                    r.text("resource_group")?,
                    r.text("location")?,
                    r.tags(),
                )
                .await
                .map_err(fail)?,
            ),
            "get-resource-group" => to_json(
                arm.get_resource_group(sub, r.text("resource_group")?)
                    .await
                    .map_err(fail)?,
            ),
            "delete-resource-group" => Ok(state_json(
                arm.delete_resource_group(sub, r.text("resource_group")?, deadline)
                    .await
                    .map_err(fail)?,
            )),
            "list-resource-groups" => to_json(arm.list_resource_groups(sub).await.map_err(fail)?),
            "deploy" => Ok(state_json(
                arm.deploy(
                    sub,
                    r.text("resource_group")?,
                    r.text("name")?,
                    &r.spec()?,
                    deadline,
                )
                .await
                .map_err(fail)?,
            )),
            "get-deployment" => to_json(
                arm.get_deployment(sub, r.text("resource_group")?, r.text("name")?)
                    .await
                    .map_err(fail)?,
            ),
            "delete-deployment" => Ok(state_json(
                arm.delete_deployment(sub, r.text("resource_group")?, r.text("name")?, deadline)
                    .await
                    .map_err(fail)?,
            )),
            "list-deployments" => to_json(
                arm.list_deployments(sub, r.text("resource_group")?)
                    .await
                    .map_err(fail)?,
            ),
            "what-if" => to_json(
                arm.what_if(sub, r.text("resource_group")?, &r.spec()?, deadline)
                    .await
                    .map_err(fail)?,
            ),
            other => Err(format!("unknown arm operation `{other}`")),
        }
    }
}
