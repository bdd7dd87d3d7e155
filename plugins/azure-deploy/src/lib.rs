//! `azure-deploy`: resource groups and ARM template deployments through the
//! host's `arm` capability. The host holds the Azure credential and the
//! policy decides each operation; the plugin never sees a token.
//!
//! In a dry run, `deploy` becomes a what-if and the other changes are only
//! reported. A deployment still running at the call's deadline is reported
//! as `running` with the URL to poll, never as a success; a failed one is a
//! tool error carrying ARM's error codes.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use warden_pdk::{Context, Effect, Tool, ToolError, export_tool};

/// The tool.
pub struct AzureDeploy;

/// What to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Operation {
    /// Deploy `template` as `deployment_name` (a what-if in a dry run).
    Deploy,
    /// Predict what deploying `template` would change.
    WhatIf,
    /// Read deployment `deployment_name`.
    Get,
    /// Delete the record of deployment `deployment_name` (not its resources).
    Delete,
    /// List the group's deployments.
    List,
    /// Create or update the resource group in `location`.
    CreateGroup,
    /// Read the resource group.
    GetGroup,
    /// Delete the resource group and everything in it.
    DeleteGroup,
    /// List the subscription's resource groups.
    ListGroups,
}

impl Operation {
    /// The host's `arm` operation.
    fn arm_op(self) -> &'static str {
        match self {
            Operation::Deploy => "deploy",
            Operation::WhatIf => "what-if",
            Operation::Get => "get-deployment",
            Operation::Delete => "delete-deployment",
            Operation::List => "list-deployments",
            Operation::CreateGroup => "put-resource-group",
            Operation::GetGroup => "get-resource-group",
            Operation::DeleteGroup => "delete-resource-group",
            Operation::ListGroups => "list-resource-groups",
        }
    }

    fn mutates(self) -> bool {
        matches!(
            self,
            Operation::Deploy | Operation::Delete | Operation::CreateGroup | Operation::DeleteGroup
        )
    }

    /// Answers with a long-running operation state.
    fn long_running(self) -> bool {
        matches!(
            self,
            Operation::Deploy | Operation::Delete | Operation::DeleteGroup
        )
    }
}

/// How a deployment treats resources missing from the template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub enum Mode {
    /// Leave them alone (default).
    Incremental,
    /// Delete them.
    Complete,
}

/// One Azure operation.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// What to do.
    pub operation: Operation,
    /// Subscription id.
    #[schemars(length(min = 1))]
    pub subscription: String,
    /// Resource group (every operation except `list-groups`).
    #[serde(default)]
    pub resource_group: Option<String>,
    /// Azure region, for `create-group`.
    #[serde(default)]
    pub location: Option<String>,
    /// Tags, for `create-group`.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Deployment name, for `deploy`, `get` and `delete`.
    #[serde(default)]
    pub deployment_name: Option<String>,
    /// ARM template (`{"resources": [...], ...}`), for `deploy` and `what-if`;
    /// the policy checks its resources' regions and SKUs.
    #[serde(default)]
    pub template: Option<Value>,
    /// Template parameters in ARM's `{"name": {"value": ...}}` form.
    #[serde(default)]
    pub parameters: Option<Value>,
    /// Deployment mode (default `Incremental`).
    #[serde(default)]
    pub mode: Option<Mode>,
    /// Estimated monthly cost, for the policy's cost ceiling.
    #[serde(default)]
    pub estimated_monthly_cost_usd: Option<f64>,
}

/// What happened.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Output {
    /// The operation asked for.
    pub operation: Operation,
    /// The `arm` operation the host ran, if any (`what-if` for a dry-run deploy).
    pub sent: Option<String>,
    /// True when the call was a dry run.
    pub dry_run: bool,
    /// `succeeded`, `running` (not finished by the deadline: poll
    /// `operation_url`), or `planned` (a dry run: nothing was changed).
    pub state: String,
    /// URL to poll a running operation.
    pub operation_url: Option<String>,
    /// ARM's last status of a running operation.
    pub last_status: Option<String>,
    /// ARM's answer: the resource, group, list, or `{"changes": [...]}` of a what-if.
    pub result: Value,
    /// In a dry run, the request a real run would send.
    pub would_send: Option<Value>,
}

impl Output {
    /// Nothing sent yet.
    fn planned(operation: Operation, dry_run: bool) -> Self {
        Self {
            operation,
            sent: None,
            dry_run,
            state: "planned".into(),
            operation_url: None,
            last_status: None,
            result: Value::Null,
            would_send: None,
        }
    }
}

/// The host request for `input`, and whether it may be sent in this call.
#[derive(Debug, PartialEq)]
pub struct Plan {
    /// The `arm` request.
    pub request: Value,
    /// False when a dry run only reports it.
    pub send: bool,
}

fn required<'a>(
    value: &'a Option<String>,
    field: &str,
    op: Operation,
) -> Result<&'a str, ToolError> {
    value
        .as_deref()
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| {
            ToolError::InvalidInput(format!("operation `{}` needs `{field}`", op.arm_op()))
        })
}

/// Build the `arm` request for `input`; in a dry run a deploy becomes a
/// what-if and other changes are not sent.
pub fn plan(input: &Input, dry_run: bool) -> Result<Plan, ToolError> {
    let op = input.operation;
    let mut request = json!({"op": op.arm_op(), "subscription": input.subscription});
    if op != Operation::ListGroups {
        request["resource_group"] = required(&input.resource_group, "resource_group", op)?.into();
    }
    if matches!(op, Operation::Deploy | Operation::Get | Operation::Delete) {
        request["name"] = required(&input.deployment_name, "deployment_name", op)?.into();
    }
    if matches!(op, Operation::Deploy | Operation::WhatIf) {
        let template = input
            .template
            .as_ref()
            .filter(|t| t.is_object())
            .ok_or_else(|| {
                ToolError::InvalidInput(format!(
                    "operation `{}` needs an object `template`",
                    op.arm_op()
                ))
            })?;
        request["template"] = template.clone();
        request["parameters"] = input.parameters.clone().unwrap_or_else(|| json!({}));
        request["mode"] = match input.mode.unwrap_or(Mode::Incremental) {
            Mode::Incremental => "Incremental",
            Mode::Complete => "Complete",
        }
        .into();
    }
    if op == Operation::CreateGroup {
        request["location"] = required(&input.location, "location", op)?.into();
        request["tags"] = json!(input.tags);
    }
    if dry_run && op == Operation::Deploy {
        request["op"] = "what-if".into();
        return Ok(Plan {
            request,
            send: true,
        });
    }
    Ok(Plan {
        request,
        send: !(dry_run && op.mutates()),
    })
}

fn text(answer: &Value, field: &str) -> Option<String> {
    answer
        .get(field)
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// Turn a long-running operation's answer into an output or a tool error.
fn settle(output: &mut Output, answer: Value) -> Result<(), ToolError> {
    let state = text(&answer, "state").unwrap_or_default();
    match state.as_str() {
        "succeeded" => {
            output.state = state;
            output.result = answer.get("resource").cloned().unwrap_or(Value::Null);
            Ok(())
        }
        "running" => {
            output.state = state;
            output.operation_url = text(&answer, "operation_url");
            output.last_status = text(&answer, "last_status");
            Ok(())
        }
        "failed" => {
            let mut codes = vec![format!(
                "{}: {}",
                text(&answer, "code").unwrap_or_default(),
                text(&answer, "message").unwrap_or_default()
            )];
            for detail in answer
                .get("details")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                codes.push(format!(
                    "{}: {}",
                    text(detail, "code").unwrap_or_default(),
                    text(detail, "message").unwrap_or_default()
                ));
            }
            Err(ToolError::Failed(format!(
                "arm operation `{}` failed with {}",
                output.operation.arm_op(),
                codes.join("; ")
            )))
        }
        other => Err(ToolError::Failed(format!(
            "arm answered with the unknown state `{other}`"
        ))),
    }
}

impl Tool for AzureDeploy {
    type Input = Input;
    type Output = Output;
    const NAME: &'static str = "azure-deploy";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "Create, inspect or delete Azure resource groups and ARM template deployments through the host's Azure credential; a dry run turns a deploy into a what-if.";
    const EFFECT: Effect = Effect::Mutating;
    const SUPPORTS_DRY_RUN: bool = true;

    fn invoke(ctx: &Context, input: Input) -> Result<Output, ToolError> {
        let plan = plan(&input, ctx.dry_run)?;
        let mut output = Output::planned(input.operation, ctx.dry_run);
        if !plan.send {
            output.would_send = Some(plan.request);
            return Ok(output);
        }
        let sent = text(&plan.request, "op").unwrap_or_default();
        let answer = warden_pdk::arm::call(&plan.request)?;
        output.sent = Some(sent.clone());
        if ctx.dry_run && input.operation.mutates() {
            // The what-if standing in for a deploy: report its changes.
            output.result = answer;
            return Ok(output);
        }
        if input.operation.long_running() {
            settle(&mut output, answer)?;
        } else {
            output.state = "succeeded".into();
            output.result = answer;
        }
        Ok(output)
    }
}

export_tool!(AzureDeploy);

#[cfg(test)]
mod tests {
    use super::*;

    fn input(value: Value) -> Input {
        serde_json::from_value(value).unwrap()
    }

    fn deploy() -> Input {
        input(json!({
            "operation": "deploy",
            "subscription": "sub-1",
            "resource_group": "web-rg",
            "deployment_name": "release-1",
            "template": {"resources": [{"type": "Microsoft.Storage/storageAccounts", "location": "eastus"}]},
        }))
    }

    #[test]
    fn a_deploy_sends_the_template_in_incremental_mode() {
        let plan = plan(&deploy(), false).unwrap();
        assert!(plan.send);
        assert_eq!(plan.request["op"], "deploy");
        assert_eq!(plan.request["name"], "release-1");
        assert_eq!(plan.request["mode"], "Incremental");
        assert_eq!(plan.request["parameters"], json!({}));
        assert_eq!(
            plan.request["template"]["resources"][0]["location"],
            "eastus"
        );
    }

    #[test]
    fn a_dry_run_deploy_becomes_a_what_if() {
        let plan = plan(&deploy(), true).unwrap();
        assert!(plan.send);
        assert_eq!(plan.request["op"], "what-if");
    }

    #[test]
    fn a_dry_run_reports_other_changes_without_sending_them() {
        let group = input(json!({
            "operation": "delete-group", "subscription": "sub-1", "resource_group": "web-rg",
        }));
        let plan = plan(&group, true).unwrap();
        assert!(!plan.send);
        assert_eq!(plan.request["op"], "delete-resource-group");
    }

    #[test]
    fn reads_are_sent_in_a_dry_run() {
        let list = input(json!({"operation": "list-groups", "subscription": "sub-1"}));
        assert!(plan(&list, true).unwrap().send);
    }

    #[test]
    fn a_deploy_without_a_name_or_template_is_invalid_input() {
        let mut no_name = deploy();
        no_name.deployment_name = None;
        assert!(
            matches!(plan(&no_name, false), Err(ToolError::InvalidInput(m)) if m.contains("deployment_name"))
        );
        let mut no_template = deploy();
        no_template.template = Some(json!("not an object"));
        assert!(
            matches!(plan(&no_template, false), Err(ToolError::InvalidInput(m)) if m.contains("template"))
        );
    }

    #[test]
    fn creating_a_group_needs_a_location() {
        let group = input(json!({
            "operation": "create-group", "subscription": "sub-1", "resource_group": "web-rg",
        }));
        assert!(
            matches!(plan(&group, false), Err(ToolError::InvalidInput(m)) if m.contains("location"))
        );
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let bad = serde_json::from_value::<Input>(json!({
            "operation": "list-groups", "subscription": "s", "token": "x",
        }));
        assert!(bad.is_err());
    }

    #[test]
    fn a_failed_deployment_is_an_error_naming_the_arm_codes() {
        let mut output = Output::planned(Operation::Deploy, false);
        let answer = json!({
            "state": "failed", "code": "DeploymentFailed", "message": "see details",
            "details": [{"code": "QuotaExceeded", "message": "no cores left"}],
        });
        let Err(ToolError::Failed(message)) = settle(&mut output, answer) else {
            panic!("a failed deployment must be an error");
        };
        assert!(message.contains("DeploymentFailed") && message.contains("QuotaExceeded"));
    }

    #[test]
    fn a_running_deployment_keeps_its_operation_url_and_is_not_success() {
        let mut output = Output::planned(Operation::Deploy, false);
        let answer = json!({"state": "running", "operation_url": "http://arm/op/1", "last_status": "Running"});
        settle(&mut output, answer).unwrap();
        assert_eq!(output.state, "running");
        assert_eq!(output.operation_url.as_deref(), Some("http://arm/op/1"));
    }
}
