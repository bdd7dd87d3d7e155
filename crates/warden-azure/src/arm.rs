//! The [`Arm`] trait: the seam between warden and Azure Resource Manager.

use std::collections::BTreeMap;
use std::time::Instant;

use async_trait::async_trait;

use crate::error::ArmError;
use crate::model::{Deployment, DeploymentSpec, OperationState, ResourceGroup, WhatIf};

/// Resource groups and template deployments in Azure Resource Manager.
///
/// [`AzureArm`](crate::AzureArm) is the real implementation; tests and
/// embedders can supply their own. Long-running calls take a `deadline` and
/// return [`OperationState::Running`] when it passes, never a false success.
///
/// ```
/// use std::collections::BTreeMap;
/// use std::time::{Duration, Instant};
/// use serde_json::json;
/// use warden_azure::{Arm, ArmError, DeploymentSpec, OperationState};
///
/// async fn roll_out(arm: &dyn Arm) -> Result<bool, ArmError> {
///     let sub = "00000000-0000-0000-0000-000000000000";
///     arm.put_resource_group(sub, "web", "eastus", BTreeMap::new()).await?;
///     let spec = DeploymentSpec::new(json!({ "resources": [] }));
///     let deadline = Instant::now() + Duration::from_secs(600);
///     let state = arm.deploy(sub, "web", "release-42", &spec, deadline).await?;
///     Ok(matches!(state, OperationState::Succeeded { .. }))
/// }
/// ```
#[async_trait]
pub trait Arm: Send + Sync {
    /// Creates or updates a resource group (`PUT .../resourcegroups/{rg}`).
    async fn put_resource_group(
        &self,
        subscription: &str,
        resource_group: &str,
        location: &str,
        tags: BTreeMap<String, String>,
    ) -> Result<ResourceGroup, ArmError>;

    /// Reads a resource group; `None` when ARM answers 404.
    async fn get_resource_group(
        &self,
        subscription: &str,
        resource_group: &str,
    ) -> Result<Option<ResourceGroup>, ArmError>;

    /// Deletes a resource group and everything in it, polling until `deadline`.
    async fn delete_resource_group(
        &self,
        subscription: &str,
        resource_group: &str,
        deadline: Instant,
    ) -> Result<OperationState, ArmError>;

    /// Lists the subscription's resource groups, following `nextLink`.
    async fn list_resource_groups(
        &self,
        subscription: &str,
    ) -> Result<Vec<ResourceGroup>, ArmError>;

    /// Starts a template deployment (`PUT .../deployments/{name}`) and polls it until `deadline`.
    async fn deploy(
        &self,
        subscription: &str,
        resource_group: &str,
        name: &str,
        spec: &DeploymentSpec,
        deadline: Instant,
    ) -> Result<OperationState, ArmError>;

    /// Reads a deployment; `None` when ARM answers 404.
    async fn get_deployment(
        &self,
        subscription: &str,
        resource_group: &str,
        name: &str,
    ) -> Result<Option<Deployment>, ArmError>;

    /// Deletes a deployment record (not its resources), polling until `deadline`.
    async fn delete_deployment(
        &self,
        subscription: &str,
        resource_group: &str,
        name: &str,
        deadline: Instant,
    ) -> Result<OperationState, ArmError>;

    /// Lists a resource group's deployments, following `nextLink`.
    async fn list_deployments(
        &self,
        subscription: &str,
        resource_group: &str,
    ) -> Result<Vec<Deployment>, ArmError>;

    /// Predicts what `spec` would change (`POST .../whatIf`, then polls `Location`).
    ///
    /// Fails with [`ArmError::DeadlineExceeded`] when the prediction is not
    /// ready by `deadline`.
    async fn what_if(
        &self,
        subscription: &str,
        resource_group: &str,
        spec: &DeploymentSpec,
        deadline: Instant,
    ) -> Result<WhatIf, ArmError>;
}
