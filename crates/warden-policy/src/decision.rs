use std::time::Duration;

use serde::{Deserialize, Serialize};
use warden_types::Decision;

/// Prefix of every reason produced by a policy that failed to decide.
pub const POLICY_ERROR_PREFIX: &str = "policy error: ";

/// Where in the bundle a decision is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Entry {
    /// `data.warden.call`: before a tool runs.
    Call,
    /// `data.warden.capability`: each HTTP request or key-value use inside a call.
    Capability,
    /// `data.warden.plan`: the whole plan before it runs.
    Plan,
    /// `data.warden.approve`: whether a person's approval of a call that
    /// needed one counts (e.g. not their own call in a protected
    /// environment).
    Approve,
}

impl Entry {
    /// All entry points, in the order the agent meets them.
    pub const ALL: [Entry; 4] = [Entry::Plan, Entry::Call, Entry::Approve, Entry::Capability];

    /// The short name (`call`).
    pub fn as_str(self) -> &'static str {
        match self {
            Entry::Call => "call",
            Entry::Capability => "capability",
            Entry::Plan => "plan",
            Entry::Approve => "approve",
        }
    }

    /// The Rego rule the entry evaluates (`data.warden.call`).
    pub fn rule(self) -> &'static str {
        match self {
            Entry::Call => "data.warden.call",
            Entry::Capability => "data.warden.capability",
            Entry::Plan => "data.warden.plan",
            Entry::Approve => "data.warden.approve",
        }
    }
}

impl std::fmt::Display for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Entry {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "call" => Ok(Entry::Call),
            "capability" => Ok(Entry::Capability),
            "plan" => Ok(Entry::Plan),
            "approve" => Ok(Entry::Approve),
            other => Err(format!(
                "unknown entry `{other}`; expected call, capability, plan or approve"
            )),
        }
    }
}

/// One decision as the journal stores it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionRecord {
    /// Which entry point decided.
    pub entry: Entry,
    /// The decision.
    pub decision: Decision,
    /// SHA-256 (hex) of the canonical JSON input.
    pub input_hash: String,
    /// Hash of the bundle that decided (see [`crate::BundleSummary::hash`]).
    pub bundle_hash: String,
    /// Evaluation time in microseconds.
    pub duration_us: u64,
}

impl DecisionRecord {
    pub(crate) fn new(
        entry: Entry,
        decision: Decision,
        input_hash: String,
        bundle_hash: String,
        duration: Duration,
    ) -> Self {
        DecisionRecord {
            entry,
            decision,
            input_hash,
            bundle_hash,
            duration_us: u64::try_from(duration.as_micros()).unwrap_or(u64::MAX),
        }
    }
}

/// A denial for a policy that could not decide.
pub(crate) fn policy_error(message: impl std::fmt::Display) -> Decision {
    Decision::deny(vec![format!("{POLICY_ERROR_PREFIX}{message}")])
}

/// Read the `{allow, deny, approval, obligations}` object an entry returns.
///
/// Anything that is not exactly that shape is a policy error, so a typo in a
/// custom bundle denies instead of allowing.
pub(crate) fn interpret(entry: Entry, value: &regorus::Value) -> Decision {
    if *value == regorus::Value::Undefined {
        return policy_error(format!(
            "{} is undefined; the bundle must define it for every input",
            entry.rule()
        ));
    }
    let json = match serde_json::to_value(value) {
        Ok(json) => json,
        Err(e) => return policy_error(format!("{} is not JSON: {e}", entry.rule())),
    };
    let Some(object) = json.as_object() else {
        return policy_error(format!("{} must be an object, got {json}", entry.rule()));
    };
    let allow = match object.get("allow") {
        Some(serde_json::Value::Bool(b)) => *b,
        Some(other) => {
            return policy_error(format!(
                "{}.allow must be a boolean, got {other}",
                entry.rule()
            ));
        }
        None => return policy_error(format!("{} has no `allow` field", entry.rule())),
    };
    let deny = match strings(object.get("deny")) {
        Ok(v) => v,
        Err(got) => {
            return policy_error(format!(
                "{}.deny must be a set of strings, got {got}",
                entry.rule()
            ));
        }
    };
    let approval = match strings(object.get("approval")) {
        Ok(v) => v,
        Err(got) => {
            return policy_error(format!(
                "{}.approval must be a set of strings, got {got}",
                entry.rule()
            ));
        }
    };
    let obligations = match object.get("obligations") {
        Some(serde_json::Value::Object(map)) => map.clone(),
        Some(other) => {
            return policy_error(format!(
                "{}.obligations must be an object, got {other}",
                entry.rule()
            ));
        }
        None => {
            return policy_error(format!("{} has no `obligations` field", entry.rule()));
        }
    };
    let mut decision = if !deny.is_empty() {
        Decision::deny(deny)
    } else if !approval.is_empty() {
        Decision::needs_approval(approval)
    } else if allow {
        Decision::allow()
    } else {
        Decision::deny(vec![format!(
            "The policy did not allow this {} and gave no reason.",
            entry.as_str()
        )])
    };
    decision.obligations = obligations;
    decision
}

fn strings(value: Option<&serde_json::Value>) -> Result<Vec<String>, String> {
    let Some(value) = value else {
        return Err("nothing".into());
    };
    let serde_json::Value::Array(items) = value else {
        return Err(value.to_string());
    };
    items
        .iter()
        .map(|item| {
            item.as_str()
                .map(str::to_string)
                .ok_or_else(|| item.to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use warden_types::Verdict;

    fn value(json: &str) -> regorus::Value {
        regorus::Value::from_json_str(json).unwrap()
    }

    #[test]
    fn every_entry_parses_from_its_short_name_and_names_its_rule() {
        for entry in Entry::ALL {
            assert_eq!(entry.as_str().parse::<Entry>(), Ok(entry));
            assert_eq!(entry.rule(), format!("data.warden.{entry}"));
        }
        assert_eq!("approve".parse::<Entry>(), Ok(Entry::Approve));
        assert!("approval".parse::<Entry>().unwrap_err().contains("approve"));
    }

    #[test]
    fn deny_reasons_win_over_approval_and_allow() {
        let d = interpret(
            Entry::Call,
            &value(r#"{"allow": true, "deny": ["no"], "approval": ["ask"], "obligations": {}}"#),
        );
        assert_eq!(d.verdict, Verdict::Deny);
        assert_eq!(d.reasons, vec!["no".to_string()]);
    }

    #[test]
    fn approval_reasons_turn_an_allow_into_needs_approval() {
        let d = interpret(
            Entry::Call,
            &value(r#"{"allow": false, "deny": [], "approval": ["ask"], "obligations": {"x": 1}}"#),
        );
        assert_eq!(d.verdict, Verdict::NeedsApproval);
        assert_eq!(d.obligations["x"], 1);
    }

    #[test]
    fn allow_false_without_reasons_still_denies() {
        let d = interpret(
            Entry::Plan,
            &value(r#"{"allow": false, "deny": [], "approval": [], "obligations": {}}"#),
        );
        assert_eq!(d.verdict, Verdict::Deny);
        assert!(d.reasons[0].contains("gave no reason"));
    }

    #[test]
    fn non_string_reasons_are_a_policy_error() {
        let d = interpret(
            Entry::Call,
            &value(r#"{"allow": true, "deny": [1], "approval": [], "obligations": {}}"#),
        );
        assert_eq!(d.verdict, Verdict::Deny);
        assert!(d.reasons[0].starts_with(POLICY_ERROR_PREFIX));
    }
}
