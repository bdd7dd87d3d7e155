use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use warden_types::{Capability, CapabilityRequest, CapabilityUse, Effect, ToolManifest};

/// The agent asking.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentInfo {
    /// Agent name (`edge-01`).
    pub name: String,
    /// Environment it acts on (`prod`, `staging`), by its canonical name
    /// (see [`Environments::canonical`](crate::Environments::canonical)).
    pub env: String,
}

/// The human or service on whose behalf the agent acts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    /// Identity (`alice`).
    pub id: String,
    /// Roles (`sre`).
    #[serde(default)]
    pub roles: Vec<String>,
}

/// The task a call belongs to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskInfo {
    /// Task id.
    pub id: String,
    /// What the task is for, in words.
    #[serde(default)]
    pub goal: String,
    /// Where it came from (`cli`, `alertmanager`, `chat`).
    #[serde(default)]
    pub source: String,
    /// Ticket id of an approved break-glass change, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub break_glass: Option<String>,
}

/// What the agent did recently; the rate limits read it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    /// Tool calls already made in this task.
    pub calls_in_task: u64,
    /// Mutating or destructive calls this agent made in the last hour.
    pub mutations_last_hour: u64,
    /// Mutating or destructive calls made on behalf of the same principal in
    /// the last hour, by any agent (the optional
    /// `max_mutations_per_hour_per_principal` limit reads it).
    #[serde(default)]
    pub mutations_last_hour_principal: u64,
    /// Mutating or destructive calls made in the same environment in the
    /// last hour, by any agent.
    #[serde(default)]
    pub mutations_last_hour_env: u64,
}

/// Who asks, for what, and when: the part of the input that stays the same
/// for every decision in a task.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyContext {
    /// The agent.
    pub agent: AgentInfo,
    /// On whose behalf.
    pub principal: Principal,
    /// The task.
    pub task: TaskInfo,
    /// Recent activity.
    pub history: History,
    /// Current time, RFC 3339 (policies must not read the clock themselves,
    /// so a decision can be replayed).
    pub now: String,
}

/// What the policy knows about a tool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolInfo {
    /// Tool name.
    pub name: String,
    /// Tool version.
    pub version: String,
    /// Declared effect.
    pub effect: Effect,
    /// Whether the tool honours dry runs.
    #[serde(default)]
    pub supports_dry_run: bool,
    /// HTTP hosts the manifest declares (patterns as written).
    #[serde(default)]
    pub declared_hosts: Vec<String>,
    /// Whether the manifest declares the key-value store.
    #[serde(default)]
    pub declares_kv: bool,
}

impl From<&ToolManifest> for ToolInfo {
    fn from(m: &ToolManifest) -> Self {
        ToolInfo {
            name: m.name.clone(),
            version: m.version.clone(),
            effect: m.effect,
            supports_dry_run: m.supports_dry_run,
            declared_hosts: m
                .capabilities
                .iter()
                .flat_map(|c| match c {
                    Capability::Http { hosts } => hosts.clone(),
                    Capability::Kv => Vec::new(),
                })
                .collect(),
            declares_kv: m.declares_kv(),
        }
    }
}

/// One tool call.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CallInfo {
    /// Arguments as the planner wrote them.
    pub args: serde_json::Value,
    /// Step id within the task.
    pub step: String,
    /// Whether the call is a dry run.
    pub dry_run: bool,
}

/// One step of a plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanStep {
    /// Step id.
    pub id: String,
    /// The tool the step runs.
    pub tool: ToolInfo,
    /// Its arguments.
    pub args: serde_json::Value,
    /// Whether the step is a dry run.
    #[serde(default)]
    pub dry_run: bool,
}

/// The approval being judged by `data.warden.approve`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalInfo {
    /// Why the call needed approval: the reasons of its `needs approval`
    /// decision.
    #[serde(default)]
    pub reasons: Vec<String>,
}

/// A plan about to run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PlanInfo {
    /// Steps in order.
    pub steps: Vec<PlanStep>,
}

/// The document a policy sees as `input`.
///
/// Build it with [`PolicyInput::call`], [`PolicyInput::capability`],
/// [`PolicyInput::plan`] or [`PolicyInput::approve`]; the fields are public so tests and odd embedders
/// can set anything.
///
/// ```
/// use warden_policy::{PolicyContext, PolicyInput};
/// use warden_types::{Effect, ToolManifest};
///
/// let mut ctx = PolicyContext::default();
/// ctx.agent.env = "prod".into();
/// let manifest = ToolManifest {
///     name: "restart-service".into(),
///     version: "0.1.0".into(),
///     description: String::new(),
///     input_schema: serde_json::json!({}),
///     output_schema: serde_json::json!({}),
///     effect: Effect::Mutating,
///     supports_dry_run: true,
///     capabilities: vec![],
/// };
/// let input = PolicyInput::call(&ctx, &manifest, serde_json::json!({"unit": "nginx"}), "s1", false);
/// let json = serde_json::to_value(&input).unwrap();
/// assert_eq!(json["tool"]["effect"], "mutating");
/// assert_eq!(json["call"]["args"]["unit"], "nginx");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PolicyInput {
    /// The agent.
    pub agent: AgentInfo,
    /// On whose behalf.
    pub principal: Principal,
    /// The task.
    pub task: TaskInfo,
    /// The tool (call and capability decisions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool: Option<ToolInfo>,
    /// The call (call and capability decisions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call: Option<CallInfo>,
    /// The capability use (capability decisions): `kind` plus its fields,
    /// and for HTTP `addresses`, every IP the request may reach.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capability: Option<serde_json::Value>,
    /// The plan (plan decisions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<PlanInfo>,
    /// Who approves the call (approve decisions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approver: Option<Principal>,
    /// What the approval is for (approve decisions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<ApprovalInfo>,
    /// Recent activity.
    pub history: History,
    /// Current time, RFC 3339.
    pub now: String,
}

impl PolicyInput {
    fn from_context(ctx: &PolicyContext) -> Self {
        PolicyInput {
            agent: ctx.agent.clone(),
            principal: ctx.principal.clone(),
            task: ctx.task.clone(),
            history: ctx.history,
            now: ctx.now.clone(),
            ..PolicyInput::default()
        }
    }

    /// Input for `data.warden.call`.
    pub fn call(
        ctx: &PolicyContext,
        tool: &ToolManifest,
        args: serde_json::Value,
        step: impl Into<String>,
        dry_run: bool,
    ) -> Self {
        PolicyInput {
            tool: Some(ToolInfo::from(tool)),
            call: Some(CallInfo {
                args,
                step: step.into(),
                dry_run,
            }),
            ..Self::from_context(ctx)
        }
    }

    /// Input for `data.warden.capability`.
    ///
    /// `tool` is what the policy knows about the plugin (its declared hosts
    /// in particular); the call's arguments are not repeated.
    pub fn capability(ctx: &PolicyContext, tool: ToolInfo, request: &CapabilityRequest) -> Self {
        PolicyInput {
            tool: Some(tool),
            call: Some(CallInfo {
                args: serde_json::Value::Null,
                step: request.step_id.clone(),
                dry_run: request.dry_run,
            }),
            capability: Some(capability_json(&request.capability)),
            ..Self::from_context(ctx)
        }
    }

    /// Input for `data.warden.approve`: the call's input (as
    /// [`PolicyInput::call`] builds it, not a dry run) plus who approves it
    /// (`approver`) and the reasons it needed approval (`approval.reasons`).
    ///
    /// ```
    /// use warden_policy::{PolicyContext, PolicyInput, Principal};
    /// use warden_types::{Effect, ToolManifest};
    ///
    /// let mut ctx = PolicyContext::default();
    /// ctx.agent.env = "prod".into();
    /// ctx.principal.id = "alice".into();
    /// let manifest = ToolManifest {
    ///     name: "restart-service".into(),
    ///     version: "0.1.0".into(),
    ///     description: String::new(),
    ///     input_schema: serde_json::json!({}),
    ///     output_schema: serde_json::json!({}),
    ///     effect: Effect::Mutating,
    ///     supports_dry_run: false,
    ///     capabilities: vec![],
    /// };
    /// let bob = Principal { id: "bob".into(), roles: vec!["sre".into()] };
    /// let reasons = vec!["a human must approve this call".to_string()];
    /// let input = PolicyInput::approve(&ctx, &manifest, serde_json::json!({}), "s1", &bob, &reasons);
    /// let json = serde_json::to_value(&input).unwrap();
    /// assert_eq!(json["approver"]["id"], "bob");
    /// assert_eq!(json["principal"]["id"], "alice");
    /// assert_eq!(json["approval"]["reasons"][0], "a human must approve this call");
    /// ```
    pub fn approve(
        ctx: &PolicyContext,
        tool: &ToolManifest,
        args: serde_json::Value,
        step: &str,
        approver: &Principal,
        reasons: &[String],
    ) -> Self {
        PolicyInput {
            approver: Some(approver.clone()),
            approval: Some(ApprovalInfo {
                reasons: reasons.to_vec(),
            }),
            ..Self::call(ctx, tool, args, step, false)
        }
    }

    /// Input for `data.warden.plan`.
    pub fn plan(ctx: &PolicyContext, steps: Vec<PlanStep>) -> Self {
        PolicyInput {
            plan: Some(PlanInfo { steps }),
            ..Self::from_context(ctx)
        }
    }
}

/// The capability as the policy sees it.
///
/// For HTTP, `addresses` lists every address the request may reach: the
/// resolved ones plus the host itself when it is an IP literal, each in
/// canonical form (an IPv4-mapped IPv6 address becomes IPv4), so a rule
/// written for `169.254.0.0/16` also catches `::ffff:169.254.169.254`.
pub(crate) fn capability_json(capability: &CapabilityUse) -> serde_json::Value {
    let mut json = serde_json::to_value(capability).unwrap_or(serde_json::Value::Null);
    if let CapabilityUse::Http(info) = capability {
        let mut addresses: Vec<String> = Vec::new();
        let literal = info
            .host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .ok();
        for ip in literal.iter().chain(info.resolved.iter()) {
            let text = ip.to_canonical().to_string();
            if !addresses.contains(&text) {
                addresses.push(text);
            }
        }
        if let Some(object) = json.as_object_mut() {
            object.insert("addresses".into(), addresses.into());
            object.insert("host".into(), info.host.to_ascii_lowercase().into());
        }
    }
    json
}

#[cfg(test)]
mod tests {
    use super::*;
    use warden_types::HttpRequestInfo;

    #[test]
    fn a_history_without_the_principal_and_env_counters_reads_them_as_zero() {
        let history: History = serde_json::from_value(
            serde_json::json!({"calls_in_task": 1, "mutations_last_hour": 2}),
        )
        .unwrap();
        assert_eq!(history.mutations_last_hour, 2);
        assert_eq!(history.mutations_last_hour_principal, 0);
        assert_eq!(history.mutations_last_hour_env, 0);
        let json = serde_json::to_value(History {
            mutations_last_hour_principal: 7,
            ..history
        })
        .unwrap();
        assert_eq!(json["mutations_last_hour_principal"], 7);
        assert_eq!(json["mutations_last_hour_env"], 0);
    }

    #[test]
    fn mapped_ipv6_and_literal_hosts_become_canonical_addresses() {
        let use_ = CapabilityUse::Http(HttpRequestInfo {
            method: "GET".into(),
            scheme: "http".into(),
            host: "::ffff:169.254.169.254".into(),
            port: 80,
            path: "/".into(),
            resolved: vec!["::ffff:169.254.169.254".parse().unwrap()],
        });
        let json = capability_json(&use_);
        assert_eq!(json["kind"], "http");
        assert_eq!(json["addresses"], serde_json::json!(["169.254.169.254"]));
    }
}
