use warden_types::{CapabilityGate, CapabilityRequest, GateDecision, ToolManifest, Verdict};

use crate::decision::{DecisionRecord, Entry};
use crate::engine::PolicyEngine;
use crate::input::{PolicyContext, PolicyInput, ToolInfo};

/// The sandbox's [`CapabilityGate`] backed by `data.warden.capability`.
///
/// Made per tool call: it carries the task context and the tool's manifest
/// (its declared hosts feed the policy's double check).
///
/// A capability is used in the middle of a running call, which cannot wait
/// for a human, so a *needs approval* verdict is a denial here; its reason
/// says what would have needed approval. Ask approval for the call instead.
///
/// ```
/// use std::sync::Arc;
/// use warden_policy::{PolicyContext, PolicyEngine, PolicyGate};
/// use warden_types::{CapabilityGate, CapabilityRequest, CapabilityUse, Effect, GateDecision};
///
/// let dir = tempfile::tempdir()?;
/// std::fs::write(dir.path().join("p.rego"), r#"
///     package warden
///     capability := {"allow": input.capability.kind == "kv-read", "deny": set(), "approval": set(), "obligations": {}}
/// "#)?;
/// let engine = PolicyEngine::load(dir.path())?;
/// let manifest = warden_types::ToolManifest {
///     name: "cache".into(), version: "0.1.0".into(), description: String::new(),
///     input_schema: serde_json::json!({}), output_schema: serde_json::json!({}),
///     effect: Effect::ReadOnly, supports_dry_run: false, capabilities: vec![],
/// };
/// let gate: Arc<dyn CapabilityGate> =
///     Arc::new(PolicyGate::new(engine, PolicyContext::default(), &manifest));
/// let mut request = CapabilityRequest {
///     plugin: "cache".into(), plugin_version: "0.1.0".into(), effect: Effect::ReadOnly,
///     task_id: "t-1".into(), step_id: "s-1".into(), dry_run: false,
///     capability: CapabilityUse::KvRead { key: "k".into() },
/// };
/// assert!(gate.check(&request).is_allow());
/// request.capability = CapabilityUse::KvWrite { key: "k".into() };
/// assert!(!gate.check(&request).is_allow());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct PolicyGate {
    engine: PolicyEngine,
    context: PolicyContext,
    tool: ToolInfo,
}

impl PolicyGate {
    /// A gate for one call of `tool` in `context`.
    pub fn new(engine: PolicyEngine, context: PolicyContext, tool: &ToolManifest) -> Self {
        PolicyGate {
            engine,
            context,
            tool: ToolInfo::from(tool),
        }
    }
}

impl PolicyGate {
    /// The policy's full decision record on one capability use (for
    /// embedders that journal every decision, as the agent does).
    pub fn decide(&self, request: &CapabilityRequest) -> DecisionRecord {
        let mut tool = self.tool.clone();
        // The request is what the sandbox actually loaded; trust it over the
        // manifest the caller passed if the two disagree.
        if tool.name != request.plugin {
            tool = ToolInfo {
                name: request.plugin.clone(),
                version: request.plugin_version.clone(),
                effect: request.effect,
                supports_dry_run: false,
                declared_hosts: Vec::new(),
                declares_kv: false,
            };
        }
        let input = PolicyInput::capability(&self.context, tool, request);
        self.engine.decide(Entry::Capability, &input)
    }

    /// What a decision record means for a running call: a *needs
    /// approval* verdict is a denial, since a call cannot wait for a human.
    pub fn gate_decision(record: &DecisionRecord) -> GateDecision {
        let decision = &record.decision;
        match decision.verdict {
            Verdict::Allow => GateDecision::Allow,
            Verdict::Deny => GateDecision::deny(decision.reasons.join(" ")),
            Verdict::NeedsApproval => GateDecision::deny(format!(
                "needs approval, which a running call cannot wait for: {}",
                decision.reasons.join(" ")
            )),
        }
    }
}

impl CapabilityGate for PolicyGate {
    fn check(&self, request: &CapabilityRequest) -> GateDecision {
        PolicyGate::gate_decision(&self.decide(request))
    }
}
