use serde::{Deserialize, Serialize};
use std::net::IpAddr;

use crate::Effect;

/// One outgoing HTTP request a plugin wants to make.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpRequestInfo {
    /// Upper-case method (`GET`).
    pub method: String,
    /// `http` or `https`.
    pub scheme: String,
    /// Host as the plugin wrote it (name or IP literal, no brackets).
    pub host: String,
    /// Port, explicit or the scheme's default.
    pub port: u16,
    /// Path and query.
    pub path: String,
    /// Addresses the host resolved to; the connection goes only to these.
    /// IPv4 addresses carried in IPv6 (`::ffff:a.b.c.d`, `::a.b.c.d`) are
    /// given as IPv4. Empty in [`CapabilityUse::HttpLookup`].
    pub resolved: Vec<IpAddr>,
}

/// A capability use inside a tool call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum CapabilityUse {
    /// Outgoing HTTP, to the addresses in `resolved` (never empty when the
    /// sandbox asks): the connection goes only to these.
    Http(HttpRequestInfo),
    /// Resolving the host name of an outgoing HTTP request, asked before
    /// any DNS query with `resolved` empty. Denying it stops the request
    /// before the name leaves the host (so a policy can refuse
    /// `metadata.google.internal` or `localhost` by name); allowing it only
    /// lets the host resolve the name: the request is then decided again
    /// as [`CapabilityUse::Http`] with the addresses. Not asked for IP
    /// literals (they are decided as `Http` at once) nor for the hosts of
    /// the embedder's own secret URLs. Serialised with `"kind":
    /// "http-lookup"`.
    HttpLookup(HttpRequestInfo),
    /// Read from the plugin's key-value store.
    KvRead {
        /// Key read.
        key: String,
    },
    /// Write to or delete from the plugin's key-value store.
    KvWrite {
        /// Key written.
        key: String,
    },
    /// One Azure Resource Manager operation through the host's credential.
    Arm {
        /// Operation, e.g. `deploy`, `what-if` or `delete-resource-group`.
        operation: String,
        /// Subscription id.
        subscription: String,
        /// Resource group, when the operation names one.
        resource_group: Option<String>,
        /// Deployment name, when the operation names one.
        name: Option<String>,
    },
}

/// Everything a gate needs to decide one capability use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapabilityRequest {
    /// Plugin (tool) name.
    pub plugin: String,
    /// Plugin version.
    pub plugin_version: String,
    /// The tool's declared effect.
    pub effect: Effect,
    /// Task the call belongs to.
    pub task_id: String,
    /// Step within the task.
    pub step_id: String,
    /// Whether the call is a dry run.
    pub dry_run: bool,
    /// What the plugin wants to do.
    pub capability: CapabilityUse,
}

/// A gate's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "kebab-case")]
pub enum GateDecision {
    /// Go ahead.
    Allow,
    /// Refuse; the reason reaches the guest and the log.
    Deny {
        /// Why, as a sentence for an on-call human.
        reason: String,
    },
}

impl GateDecision {
    /// A denial with `reason`.
    pub fn deny(reason: impl Into<String>) -> Self {
        GateDecision::Deny {
            reason: reason.into(),
        }
    }

    /// Whether this is [`GateDecision::Allow`].
    pub fn is_allow(&self) -> bool {
        matches!(self, GateDecision::Allow)
    }
}

/// Decides each capability use a plugin makes inside a call.
///
/// The embedder supplies it (the policy engine implements it); the host asks
/// it only for capabilities the plugin declared, and denies the rest itself.
/// Implementations must be quick and must not block on I/O: they run on the
/// guest's call path.
///
/// ```
/// use warden_types::{CapabilityGate, CapabilityRequest, CapabilityUse, GateDecision};
///
/// /// Lets plugins read their store, nothing else.
/// struct ReadOnlyKv;
///
/// impl CapabilityGate for ReadOnlyKv {
///     fn check(&self, request: &CapabilityRequest) -> GateDecision {
///         match request.capability {
///             CapabilityUse::KvRead { .. } => GateDecision::Allow,
///             _ => GateDecision::deny("only key-value reads are allowed"),
///         }
///     }
/// }
/// ```
pub trait CapabilityGate: Send + Sync {
    /// Decide one capability use.
    fn check(&self, request: &CapabilityRequest) -> GateDecision;
}

/// The safe default gate: denies every capability use.
#[derive(Debug, Clone, Copy, Default)]
pub struct DenyAll;

impl CapabilityGate for DenyAll {
    fn check(&self, _request: &CapabilityRequest) -> GateDecision {
        GateDecision::deny("no capability gate is configured, so every capability is denied")
    }
}

impl<F> CapabilityGate for F
where
    F: Fn(&CapabilityRequest) -> GateDecision + Send + Sync,
{
    fn check(&self, request: &CapabilityRequest) -> GateDecision {
        self(request)
    }
}
