//! Azure Resource Manager capability for warden hosts: resource groups,
//! template deployments and what-if predictions.
//!
//! The [`Arm`] trait is the seam: agents and plugins depend on it, while
//! [`AzureArm`] implements it against the real ARM REST API (api-version
//! `2021-04-01`) using the `azure_mgmt_resources` wire models, `azure_core`'s
//! HTTP client and `azure_identity` credentials. No `azure_*` type appears
//! in the public API, so the unmaintained 0.21 SDK can be swapped out.
//!
//! [`AzureBackend`] serves warden plugins' `arm` import with an [`Arm`], so
//! a plugin deploys through the host's credential without ever seeing it.
//! [`backend_from_env`] builds one from the variables Azure tooling uses
//! (`AZURE_SUBSCRIPTION_ID`, `AZURE_TENANT_ID`, `AZURE_CLIENT_ID`,
//! `AZURE_CLIENT_SECRET`, ...), for hosts that turn the capability on from
//! their environment.
//!
//! HTTPS, to ARM and to the token endpoints, goes through one rustls setup
//! (ring, the Mozilla roots and an optional extra CA bundle,
//! `WARDEN_EXTRA_CA_FILE`), the same as the sandbox's, so the client never
//! depends on which crypto provider a process happens to have installed.
//!
//! Long-running operations (deployments, deletions, what-if) poll
//! `Azure-AsyncOperation` or `Location` until a terminal state or the
//! caller's deadline; a deadline yields [`OperationState::Running`] with the
//! URL to resume from, never a success.
//!
//! ```no_run
//! use std::collections::BTreeMap;
//! use std::time::{Duration, Instant};
//! use serde_json::json;
//! use warden_azure::{Arm, AzureArm, Credential, DeploymentSpec, OperationState};
//!
//! # async fn run() -> Result<(), warden_azure::ArmError> {
//! let arm = AzureArm::new("https://management.azure.com", Credential::AzureCli)?;
//! let sub = "00000000-0000-0000-0000-000000000000";
//! arm.put_resource_group(sub, "web", "eastus", BTreeMap::new()).await?;
//! let spec = DeploymentSpec::new(json!({
//!     "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
//!     "contentVersion": "1.0.0.0",
//!     "resources": []
//! }));
//! let preview = arm.what_if(sub, "web", &spec, Instant::now() + Duration::from_secs(120)).await?;
//! if preview.changes.iter().all(|c| c.change_type != "Delete") {
//!     match arm.deploy(sub, "web", "release-42", &spec, Instant::now() + Duration::from_secs(900)).await? {
//!         OperationState::Succeeded { .. } => tracing::info!("deployed"),
//!         OperationState::Failed { code, message, .. } => tracing::warn!(%code, %message, "deployment failed"),
//!         // Not an error yet: resume later by polling `operation_url`.
//!         OperationState::Running { operation_url, .. } => tracing::info!(%operation_url, "still running"),
//!     }
//! }
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

mod arm;
mod backend;
mod client;
mod env;
mod error;
mod lro;
mod model;
mod ops;
mod tls;

pub use arm::Arm;
pub use backend::AzureBackend;
pub use client::{AzureArm, Credential};
pub use env::{backend_from_env, backend_from_vars};
pub use error::ArmError;
pub use model::{
    Deployment, DeploymentMode, DeploymentSpec, ErrorDetail, OperationState, PropertyChange,
    ResourceGroup, WhatIf, WhatIfChange,
};
