//! Plain data types of the public API; the `azure_mgmt_resources` wire
//! models are converted at the edge so they never leak out of the crate.

use std::collections::BTreeMap;

use azure_mgmt_resources::package_resources_2021_04::models as wire;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// An Azure resource group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceGroup {
    /// Full ARM id, `/subscriptions/{sub}/resourceGroups/{name}`.
    pub id: String,
    /// Resource group name.
    pub name: String,
    /// Azure region, e.g. `eastus`.
    pub location: String,
    /// Resource tags.
    pub tags: BTreeMap<String, String>,
    /// `properties.provisioningState`, e.g. `Succeeded` or `Deleting`.
    pub provisioning_state: String,
}

impl From<wire::ResourceGroup> for ResourceGroup {
    fn from(rg: wire::ResourceGroup) -> Self {
        Self {
            id: rg.id.unwrap_or_default(),
            name: rg.name.unwrap_or_default(),
            location: rg.location,
            tags: string_map(rg.tags),
            provisioning_state: rg
                .properties
                .and_then(|p| p.provisioning_state)
                .unwrap_or_default(),
        }
    }
}

/// How a template deployment treats resources missing from the template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum DeploymentMode {
    /// Leave resources that are not in the template alone (ARM's default).
    #[default]
    Incremental,
    /// Delete resources in the group that are not in the template.
    Complete,
}

impl DeploymentMode {
    pub(crate) fn to_wire(self) -> wire::deployment_properties::Mode {
        match self {
            Self::Incremental => wire::deployment_properties::Mode::Incremental,
            Self::Complete => wire::deployment_properties::Mode::Complete,
        }
    }
}

/// What to deploy: an inline ARM template, its parameters and the mode.
///
/// ```
/// use serde_json::json;
/// use warden_azure::{DeploymentMode, DeploymentSpec};
///
/// let spec = DeploymentSpec::new(json!({
///     "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
///     "contentVersion": "1.0.0.0",
///     "resources": []
/// }))
/// .with_parameters(json!({ "sku": { "value": "Standard_LRS" } }))
/// .with_mode(DeploymentMode::Complete);
/// assert_eq!(spec.mode, DeploymentMode::Complete);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeploymentSpec {
    /// The template JSON (`$schema`, `contentVersion`, `resources`, ...).
    pub template: Value,
    /// Parameter values in ARM's `{"name": {"value": ...}}` form; `{}` for none.
    pub parameters: Value,
    /// Deployment mode.
    pub mode: DeploymentMode,
}

impl DeploymentSpec {
    /// A spec with no parameters in [`DeploymentMode::Incremental`].
    pub fn new(template: Value) -> Self {
        Self {
            template,
            parameters: Value::Object(serde_json::Map::new()),
            mode: DeploymentMode::Incremental,
        }
    }

    /// Sets the parameters (default `{}`).
    #[must_use]
    pub fn with_parameters(mut self, parameters: Value) -> Self {
        self.parameters = parameters;
        self
    }

    /// Sets the mode (default [`DeploymentMode::Incremental`]).
    #[must_use]
    pub fn with_mode(mut self, mode: DeploymentMode) -> Self {
        self.mode = mode;
        self
    }

    pub(crate) fn to_wire(&self) -> wire::DeploymentProperties {
        let mut props = wire::DeploymentProperties::new(self.mode.to_wire());
        props.template = Some(self.template.clone());
        props.parameters = Some(self.parameters.clone());
        props
    }
}

/// A template deployment as ARM reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deployment {
    /// Full ARM id of the deployment.
    pub id: String,
    /// Deployment name.
    pub name: String,
    /// `properties.provisioningState`, e.g. `Running`, `Succeeded`, `Failed`.
    pub provisioning_state: String,
    /// `Incremental` or `Complete`, when reported.
    pub mode: Option<DeploymentMode>,
    /// Template outputs (`Value::Null` when none).
    pub outputs: Value,
    /// Ids of the resources the deployment created or updated.
    pub output_resources: Vec<String>,
    /// The deployment's error, when it failed.
    pub error: Option<ErrorDetail>,
}

impl From<wire::DeploymentExtended> for Deployment {
    fn from(d: wire::DeploymentExtended) -> Self {
        let props = d.properties.unwrap_or_default();
        Self {
            id: d.id.unwrap_or_default(),
            name: d.name.unwrap_or_default(),
            provisioning_state: props
                .provisioning_state
                .as_ref()
                .map(enum_name)
                .unwrap_or_default(),
            mode: props.mode.map(|m| match m {
                wire::deployment_properties_extended::Mode::Incremental => {
                    DeploymentMode::Incremental
                }
                wire::deployment_properties_extended::Mode::Complete => DeploymentMode::Complete,
            }),
            outputs: props.outputs.unwrap_or(Value::Null),
            output_resources: props
                .output_resources
                .into_iter()
                .filter_map(|r| r.id)
                .collect(),
            error: props.error.map(ErrorDetail::from),
        }
    }
}

/// One ARM error, `{"code","message","target","details"}`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// Error code, e.g. `InvalidTemplate`.
    pub code: String,
    /// Human-readable message.
    pub message: String,
    /// What the error is about, when ARM says.
    pub target: Option<String>,
    /// Nested errors.
    pub details: Vec<ErrorDetail>,
}

impl From<wire::ErrorResponse> for ErrorDetail {
    fn from(e: wire::ErrorResponse) -> Self {
        Self {
            code: e.code.unwrap_or_default(),
            message: e.message.unwrap_or_default(),
            target: e.target,
            details: e.details.into_iter().map(Self::from).collect(),
        }
    }
}

/// Outcome of a long-running ARM operation.
///
/// A deadline that passes while ARM still reports progress yields
/// [`OperationState::Running`]; it is never reported as success.
#[derive(Debug, Clone, PartialEq)]
pub enum OperationState {
    /// Finished successfully; `resource` is the final resource body
    /// (`Value::Null` for deletions).
    Succeeded {
        /// Final resource JSON.
        resource: Value,
    },
    /// Finished with `Failed` or `Canceled`.
    Failed {
        /// ARM error code (`Canceled` when ARM gave none for a cancellation).
        code: String,
        /// ARM error message.
        message: String,
        /// Nested errors, e.g. the resource that failed inside a `DeploymentFailed`.
        details: Vec<ErrorDetail>,
    },
    /// Still in progress when the deadline passed.
    Running {
        /// URL to poll later (`Azure-AsyncOperation`, `Location` or the resource).
        operation_url: String,
        /// Last status ARM reported, e.g. `Running` or `Accepted`.
        last_status: String,
    },
}

impl OperationState {
    /// True only for [`OperationState::Succeeded`].
    pub fn is_succeeded(&self) -> bool {
        matches!(self, Self::Succeeded { .. })
    }
}

/// Predicted changes of a what-if run.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct WhatIf {
    /// One entry per affected resource.
    pub changes: Vec<WhatIfChange>,
}

impl From<wire::WhatIfOperationResult> for WhatIf {
    fn from(r: wire::WhatIfOperationResult) -> Self {
        let changes = r.properties.map(|p| p.changes).unwrap_or_default();
        Self {
            changes: changes
                .into_iter()
                .map(|c| WhatIfChange {
                    resource_id: c.resource_id,
                    change_type: enum_name(&c.change_type),
                    delta: c.delta.into_iter().map(PropertyChange::from).collect(),
                })
                .collect(),
        }
    }
}

/// A predicted change to one resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WhatIfChange {
    /// Full ARM id of the resource.
    pub resource_id: String,
    /// `Create`, `Delete`, `Modify`, `NoChange`, `Ignore`, `Deploy` or `Unsupported`.
    pub change_type: String,
    /// Property-level changes (for `Modify`).
    pub delta: Vec<PropertyChange>,
}

/// A predicted change to one property of a resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PropertyChange {
    /// Property path, e.g. `tags.owner`.
    pub path: String,
    /// `Create`, `Delete`, `Modify`, `Array` or `NoEffect`.
    pub change_type: String,
    /// Value before, when any.
    pub before: Option<Value>,
    /// Value after, when any.
    pub after: Option<Value>,
}

impl From<wire::WhatIfPropertyChange> for PropertyChange {
    fn from(p: wire::WhatIfPropertyChange) -> Self {
        Self {
            path: p.path,
            change_type: enum_name(&p.property_change_type),
            before: p.before,
            after: p.after,
        }
    }
}

/// The wire name of a generated enum (they all serialize as plain strings).
fn enum_name<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

fn string_map(tags: Option<Value>) -> BTreeMap<String, String> {
    let Some(Value::Object(map)) = tags else {
        return BTreeMap::new();
    };
    map.into_iter()
        .map(|(k, v)| match v {
            Value::String(s) => (k, s),
            other => (k, other.to_string()),
        })
        .collect()
}
