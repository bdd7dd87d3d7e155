//! `impl Arm for AzureArm`: URLs, wire models and answer handling per operation.

use std::collections::BTreeMap;
use std::time::Instant;

use async_trait::async_trait;
use azure_core::{Method, Url};
use azure_mgmt_resources::package_resources_2021_04::models as wire;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::arm::Arm;
use crate::client::AzureArm;
use crate::error::ArmError;
use crate::model::{Deployment, DeploymentSpec, OperationState, ResourceGroup, WhatIf};

/// Deployment name used for what-if requests; ARM requires one in the path
/// but creates nothing under it.
const WHAT_IF_NAME: &str = "warden-what-if";

/// Upper bound on `nextLink` pages, against a server that loops.
const MAX_PAGES: usize = 1000;

impl AzureArm {
    fn group_url(&self, sub: &str, rg: &str) -> Result<Url, ArmError> {
        self.url(&["subscriptions", sub, "resourcegroups", rg])
    }

    fn deployment_url(&self, sub: &str, rg: &str, tail: &[&str]) -> Result<Url, ArmError> {
        let mut segments = vec![
            "subscriptions",
            sub,
            "resourcegroups",
            rg,
            "providers",
            "Microsoft.Resources",
            "deployments",
        ];
        segments.extend_from_slice(tail);
        self.url(&segments)
    }

    /// GET that maps 404 to `None`.
    async fn get_optional<T: DeserializeOwned>(&self, url: &Url) -> Result<Option<T>, ArmError> {
        let reply = self.send(Method::Get, url, None, None).await?;
        match reply.status {
            404 => Ok(None),
            _ if reply.is_success() => reply.json(url).map(Some),
            _ => Err(reply.into_error(Method::Get, url)),
        }
    }

    /// GETs every page of a `{"value": [...], "nextLink"}` list.
    async fn get_pages(&self, first: Url) -> Result<Vec<Value>, ArmError> {
        let mut items = Vec::new();
        let mut next = Some(first);
        let mut pages = 0;
        while let Some(url) = next.take() {
            pages += 1;
            if pages > MAX_PAGES {
                return Err(ArmError::InvalidUrl {
                    url: url.to_string(),
                    message: format!("more than {MAX_PAGES} pages"),
                });
            }
            let reply = self.send(Method::Get, &url, None, None).await?;
            if !reply.is_success() {
                return Err(reply.into_error(Method::Get, &url));
            }
            let page: Value = reply.json(&url)?;
            if let Some(Value::Array(values)) = page.get("value") {
                items.extend(values.iter().cloned());
            }
            if let Some(link) = page["nextLink"].as_str().filter(|l| !l.is_empty()) {
                next = Some(self.operation_url(link)?);
            }
        }
        Ok(items)
    }

    fn decode_all<W, T>(url: &Url, values: Vec<Value>) -> Result<Vec<T>, ArmError>
    where
        W: DeserializeOwned,
        T: From<W>,
    {
        values
            .into_iter()
            .map(|v| {
                serde_json::from_value::<W>(v)
                    .map(T::from)
                    .map_err(|e| ArmError::Decode {
                        url: url.to_string(),
                        message: e.to_string(),
                    })
            })
            .collect()
    }
}

#[async_trait]
impl Arm for AzureArm {
    async fn put_resource_group(
        &self,
        subscription: &str,
        resource_group: &str,
        location: &str,
        tags: BTreeMap<String, String>,
    ) -> Result<ResourceGroup, ArmError> {
        let url = self.group_url(subscription, resource_group)?;
        let mut body = wire::ResourceGroup::new(location.to_owned());
        if !tags.is_empty() {
            body.tags = Some(Value::Object(
                tags.into_iter()
                    .map(|(k, v)| (k, Value::String(v)))
                    .collect(),
            ));
        }
        let reply = self.send_json(Method::Put, &url, &body, None).await?;
        if !reply.is_success() {
            return Err(reply.into_error(Method::Put, &url));
        }
        reply
            .json::<wire::ResourceGroup>(&url)
            .map(ResourceGroup::from)
    }

    async fn get_resource_group(
        &self,
        subscription: &str,
        resource_group: &str,
    ) -> Result<Option<ResourceGroup>, ArmError> {
        let url = self.group_url(subscription, resource_group)?;
        Ok(self
            .get_optional::<wire::ResourceGroup>(&url)
            .await?
            .map(ResourceGroup::from))
    }

    async fn delete_resource_group(
        &self,
        subscription: &str,
        resource_group: &str,
        deadline: Instant,
    ) -> Result<OperationState, ArmError> {
        let url = self.group_url(subscription, resource_group)?;
        let reply = self
            .send(Method::Delete, &url, None, Some(deadline))
            .await?;
        self.drive(Method::Delete, &url, reply, None, deadline)
            .await
    }

    async fn list_resource_groups(
        &self,
        subscription: &str,
    ) -> Result<Vec<ResourceGroup>, ArmError> {
        let url = self.url(&["subscriptions", subscription, "resourcegroups"])?;
        let values = self.get_pages(url.clone()).await?;
        Self::decode_all::<wire::ResourceGroup, _>(&url, values)
    }

    async fn deploy(
        &self,
        subscription: &str,
        resource_group: &str,
        name: &str,
        spec: &DeploymentSpec,
        deadline: Instant,
    ) -> Result<OperationState, ArmError> {
        let url = self.deployment_url(subscription, resource_group, &[name])?;
        let body = wire::Deployment::new(spec.to_wire());
        let reply = self
            .send_json(Method::Put, &url, &body, Some(deadline))
            .await?;
        self.drive(Method::Put, &url, reply, Some(&url), deadline)
            .await
    }

    async fn get_deployment(
        &self,
        subscription: &str,
        resource_group: &str,
        name: &str,
    ) -> Result<Option<Deployment>, ArmError> {
        let url = self.deployment_url(subscription, resource_group, &[name])?;
        Ok(self
            .get_optional::<wire::DeploymentExtended>(&url)
            .await?
            .map(Deployment::from))
    }

    async fn delete_deployment(
        &self,
        subscription: &str,
        resource_group: &str,
        name: &str,
        deadline: Instant,
    ) -> Result<OperationState, ArmError> {
        let url = self.deployment_url(subscription, resource_group, &[name])?;
        let reply = self
            .send(Method::Delete, &url, None, Some(deadline))
            .await?;
        self.drive(Method::Delete, &url, reply, None, deadline)
            .await
    }

    async fn list_deployments(
        &self,
        subscription: &str,
        resource_group: &str,
    ) -> Result<Vec<Deployment>, ArmError> {
        let url = self.deployment_url(subscription, resource_group, &[])?;
        let values = self.get_pages(url.clone()).await?;
        Self::decode_all::<wire::DeploymentExtended, _>(&url, values)
    }

    async fn what_if(
        &self,
        subscription: &str,
        resource_group: &str,
        spec: &DeploymentSpec,
        deadline: Instant,
    ) -> Result<WhatIf, ArmError> {
        let url = self.deployment_url(subscription, resource_group, &[WHAT_IF_NAME, "whatIf"])?;
        let body =
            wire::DeploymentWhatIf::new(wire::DeploymentWhatIfProperties::new(spec.to_wire()));
        let reply = self
            .send_json(Method::Post, &url, &body, Some(deadline))
            .await?;
        match self
            .drive(Method::Post, &url, reply, None, deadline)
            .await?
        {
            OperationState::Succeeded { resource } => {
                serde_json::from_value::<wire::WhatIfOperationResult>(resource)
                    .map(WhatIf::from)
                    .map_err(|e| ArmError::Decode {
                        url: url.to_string(),
                        message: e.to_string(),
                    })
            }
            OperationState::Failed {
                code,
                message,
                details,
            } => Err(ArmError::OperationFailed {
                code,
                message,
                details,
            }),
            OperationState::Running {
                operation_url,
                last_status,
            } => Err(ArmError::DeadlineExceeded {
                operation_url,
                last_status,
            }),
        }
    }
}
