use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The outcome of a policy decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Go ahead.
    Allow,
    /// Refused; the reasons say why.
    Deny,
    /// Allowed only once a human approves; the reasons say what to approve.
    NeedsApproval,
}

impl Verdict {
    /// The kebab-case name used in logs, the journal and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allow => "allow",
            Verdict::Deny => "deny",
            Verdict::NeedsApproval => "needs-approval",
        }
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the policy says about a tool call, a capability use or a plan.
///
/// `reasons` are the deny reasons for [`Verdict::Deny`], the approval
/// reasons for [`Verdict::NeedsApproval`], and empty for [`Verdict::Allow`].
/// `obligations` are conditions the caller must honour when it goes ahead
/// (a cost ceiling, for example).
///
/// ```
/// use warden_types::{Decision, Verdict};
///
/// let d = Decision::deny(vec!["the tool is destructive and prod is protected".into()]);
/// assert_eq!(d.verdict, Verdict::Deny);
/// assert!(!d.is_allow());
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Decision {
    /// Allow, deny or needs approval.
    pub verdict: Verdict,
    /// Sentences for an on-call human.
    #[serde(default)]
    pub reasons: Vec<String>,
    /// Conditions attached to going ahead.
    #[serde(default)]
    pub obligations: serde_json::Map<String, serde_json::Value>,
}

impl Decision {
    /// An allow without obligations.
    pub fn allow() -> Self {
        Decision {
            verdict: Verdict::Allow,
            reasons: Vec::new(),
            obligations: serde_json::Map::new(),
        }
    }

    /// A denial with `reasons`.
    pub fn deny(reasons: Vec<String>) -> Self {
        Decision {
            verdict: Verdict::Deny,
            reasons,
            obligations: serde_json::Map::new(),
        }
    }

    /// A request for human approval with `reasons`.
    pub fn needs_approval(reasons: Vec<String>) -> Self {
        Decision {
            verdict: Verdict::NeedsApproval,
            reasons,
            obligations: serde_json::Map::new(),
        }
    }

    /// Whether the verdict is [`Verdict::Allow`].
    pub fn is_allow(&self) -> bool {
        self.verdict == Verdict::Allow
    }
}
