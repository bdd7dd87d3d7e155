use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What running a tool can do to the world; the policy keys on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Effect {
    /// Observes only (probes, queries, analysis).
    ReadOnly,
    /// Changes state in a way that can be undone (deploy, restart, scale).
    Mutating,
    /// Changes state in a way that may not be undone (delete, wipe).
    Destructive,
}

impl Effect {
    /// The kebab-case name used in manifests, policies and the journal.
    pub fn as_str(self) -> &'static str {
        match self {
            Effect::ReadOnly => "read-only",
            Effect::Mutating => "mutating",
            Effect::Destructive => "destructive",
        }
    }
}

impl std::fmt::Display for Effect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A capability a plugin asks the host for in its manifest.
///
/// Anything a plugin did not declare is denied by the host without asking
/// the policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Capability {
    /// Outgoing HTTP to the named hosts. A host is a DNS name or IP literal,
    /// optionally `*.`-prefixed to match subdomains, or `*` for any host
    /// (the policy still decides each request).
    Http {
        /// Hosts the plugin may contact.
        hosts: Vec<String>,
    },
    /// The plugin's own key-value store.
    Kv,
}

/// What a tool says about itself: returned by the plugin's `describe()`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ToolManifest {
    /// Tool name, unique in a plugin directory (`http-probe`).
    pub name: String,
    /// Semantic version of the tool.
    pub version: String,
    /// One or two sentences for humans and for the planner's tool catalog.
    pub description: String,
    /// JSON Schema of the input document.
    pub input_schema: serde_json::Value,
    /// JSON Schema of the output document.
    pub output_schema: serde_json::Value,
    /// What a call can do to the world.
    pub effect: Effect,
    /// Whether the tool honours `dry_run` by reporting what it would change.
    pub supports_dry_run: bool,
    /// Capabilities the tool asks for.
    pub capabilities: Vec<Capability>,
}

impl ToolManifest {
    /// Whether the manifest declares outgoing HTTP to `host`.
    ///
    /// Matching is case-insensitive; `*.example.com` matches subdomains of
    /// `example.com` (not the apex), `*` matches any host.
    pub fn declares_http_host(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let host = host.trim_start_matches('[').trim_end_matches(']');
        self.capabilities.iter().any(|c| match c {
            Capability::Http { hosts } => hosts.iter().any(|pattern| {
                let pattern = pattern.to_ascii_lowercase();
                let pattern = pattern.trim_start_matches('[').trim_end_matches(']');
                if pattern == "*" {
                    true
                } else if let Some(suffix) = pattern.strip_prefix("*.") {
                    host.len() > suffix.len() + 1
                        && host.ends_with(suffix)
                        && host.as_bytes()[host.len() - suffix.len() - 1] == b'.'
                } else {
                    pattern == host
                }
            }),
            Capability::Kv => false,
        })
    }

    /// Whether the manifest declares the key-value store.
    pub fn declares_kv(&self) -> bool {
        self.capabilities
            .iter()
            .any(|c| matches!(c, Capability::Kv))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_hosts(hosts: &[&str]) -> ToolManifest {
        ToolManifest {
            name: "t".into(),
            version: "0.1.0".into(),
            description: String::new(),
            input_schema: serde_json::Value::Null,
            output_schema: serde_json::Value::Null,
            effect: Effect::ReadOnly,
            supports_dry_run: false,
            capabilities: vec![Capability::Http {
                hosts: hosts.iter().map(|h| h.to_string()).collect(),
            }],
        }
    }

    #[test]
    fn wildcard_matches_subdomains_but_not_apex_or_lookalikes() {
        let m = with_hosts(&["*.example.com"]);
        assert!(m.declares_http_host("api.example.com"));
        assert!(m.declares_http_host("A.B.Example.COM."));
        assert!(!m.declares_http_host("example.com"));
        assert!(!m.declares_http_host("evilexample.com"));
    }

    #[test]
    fn ipv6_literals_match_with_or_without_brackets() {
        let m = with_hosts(&["[::1]"]);
        assert!(m.declares_http_host("::1"));
        assert!(m.declares_http_host("[::1]"));
    }

    #[test]
    fn effect_serialises_in_kebab_case() {
        let s = serde_json::to_string(&Effect::ReadOnly).unwrap();
        assert_eq!(s, "\"read-only\"");
    }
}

/// The context of one tool call, passed to the plugin with its input.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CallContext {
    /// Task the call belongs to.
    pub task_id: String,
    /// Step within the task.
    pub step_id: String,
    /// When true, a mutating tool only reports what it would change.
    pub dry_run: bool,
    /// For a mutating call that is not a dry run: `<task>/<step>/<plan
    /// revision>`, the same however often the task is re-claimed, so a
    /// service can recognise a repeat. The host sends it as the
    /// `Idempotency-Key` header of the call's mutating HTTP requests; it is
    /// not part of the plugin ABI (WIT records are append-only, and a guest
    /// needs nothing from it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
}
