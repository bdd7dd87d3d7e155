//! The sandbox's capability gate on top of the default bundle.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use warden_policy::{DecisionRecord, PolicyContext, PolicyEngine, PolicyGate};
use warden_types::{
    Capability, CapabilityGate, CapabilityRequest, CapabilityUse, Effect, GateDecision,
    HttpRequestInfo, ToolManifest,
};

use crate::{bundle, policies_dir};

fn http_probe(hosts: &[&str]) -> ToolManifest {
    ToolManifest {
        name: "http-probe".into(),
        version: "0.1.0".into(),
        description: "Probe an HTTP endpoint".into(),
        input_schema: serde_json::json!({"type": "object"}),
        output_schema: serde_json::json!({"type": "object"}),
        effect: Effect::ReadOnly,
        supports_dry_run: false,
        capabilities: vec![Capability::Http {
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
        }],
    }
}

fn context(env: &str) -> PolicyContext {
    let mut ctx = PolicyContext::default();
    ctx.agent.name = "edge-01".into();
    ctx.agent.env = env.into();
    ctx.task.id = "t-1".into();
    ctx
}

fn get(manifest: &ToolManifest, host: &str, resolved: &[&str]) -> CapabilityRequest {
    CapabilityRequest {
        plugin: manifest.name.clone(),
        plugin_version: manifest.version.clone(),
        effect: manifest.effect,
        task_id: "t-1".into(),
        step_id: "s1".into(),
        dry_run: false,
        capability: CapabilityUse::Http(HttpRequestInfo {
            method: "GET".into(),
            scheme: "http".into(),
            host: host.into(),
            port: 80,
            path: "/".into(),
            resolved: resolved
                .iter()
                .map(|a| a.parse::<IpAddr>().unwrap())
                .collect(),
        }),
    }
}

fn gate(env: &str, manifest: &ToolManifest) -> PolicyGate {
    PolicyGate::new(
        PolicyEngine::load(policies_dir()).unwrap(),
        context(env),
        manifest,
    )
}

fn reason(decision: GateDecision) -> String {
    match decision {
        GateDecision::Deny { reason } => reason,
        GateDecision::Allow => panic!("expected a denial"),
    }
}

#[test]
fn a_declared_host_is_allowed_in_staging() {
    let probe = http_probe(&["api.example.com"]);
    let decision =
        gate("staging", &probe).check(&get(&probe, "api.example.com", &["93.184.216.34"]));
    assert_eq!(decision, GateDecision::Allow);
}

#[test]
fn the_metadata_address_is_denied() {
    let probe = http_probe(&["169.254.169.254"]);
    let text = reason(gate("staging", &probe).check(&get(
        &probe,
        "169.254.169.254",
        &["169.254.169.254"],
    )));
    assert!(text.contains("cloud metadata endpoint"), "{text}");
}

#[test]
fn a_metadata_ip_literal_is_denied_even_before_resolution() {
    let probe = http_probe(&["169.254.169.254"]);
    let text = reason(gate("staging", &probe).check(&get(&probe, "169.254.169.254", &[])));
    assert!(text.contains("169.254.169.254"), "{text}");
}

#[test]
fn a_name_resolving_to_the_metadata_address_is_denied() {
    let probe = http_probe(&["metadata.internal"]);
    let text = reason(gate("staging", &probe).check(&get(
        &probe,
        "metadata.internal",
        &["169.254.169.254"],
    )));
    assert!(
        text.contains("may not reach 169.254.169.254 (host `metadata.internal`)"),
        "{text}"
    );
}

#[test]
fn an_ipv4_mapped_metadata_address_is_denied() {
    let probe = http_probe(&["metadata.internal"]);
    let text = reason(gate("staging", &probe).check(&get(
        &probe,
        "metadata.internal",
        &["::ffff:169.254.169.254"],
    )));
    assert!(text.contains("cloud metadata endpoint"), "{text}");
}

#[test]
fn an_undeclared_host_is_denied_by_the_policy_too() {
    let probe = http_probe(&["api.example.com"]);
    let text = reason(gate("staging", &probe).check(&get(
        &probe,
        "other.example.com",
        &["93.184.216.34"],
    )));
    assert!(text.contains("did not declare"), "{text}");
}

#[test]
fn loopback_is_allowed_only_where_data_allows_it() {
    let probe = http_probe(&["127.0.0.1"]);
    let overlay = serde_json::json!({"warden": {"config": {"network": {
        "allowed_private_cidrs": {"staging": ["127.0.0.1/32"]}
    }}}});
    let engine = PolicyEngine::builder(policies_dir())
        .with_data(overlay)
        .load()
        .unwrap();
    let request = get(&probe, "127.0.0.1", &["127.0.0.1"]);
    let staging = PolicyGate::new(engine.clone(), context("staging"), &probe);
    assert_eq!(staging.check(&request), GateDecision::Allow);
    let prod = PolicyGate::new(engine, context("prod"), &probe);
    assert!(!prod.check(&request).is_allow());
    assert!(!gate("staging", &probe).check(&request).is_allow());
}

#[test]
fn a_needs_approval_verdict_becomes_a_denial_inside_a_call() {
    let dir = bundle(&[(
        "p.rego",
        r#"package warden

capability := {"allow": false, "deny": set(), "approval": {"Writes need a human."}, "obligations": {}}
"#,
    )]);
    let engine = PolicyEngine::load(dir.path()).unwrap();
    let mut cache = http_probe(&[]);
    cache.capabilities = vec![Capability::Kv];
    let gate = PolicyGate::new(engine, context("prod"), &cache);
    let mut request = get(&cache, "x", &[]);
    request.capability = CapabilityUse::KvWrite { key: "k".into() };
    let text = reason(gate.check(&request));
    assert!(text.starts_with("needs approval"), "{text}");
    assert!(text.contains("Writes need a human."), "{text}");
}

#[test]
fn every_gate_decision_reaches_the_sink() {
    let seen: Arc<Mutex<Vec<DecisionRecord>>> = Arc::default();
    let sink = Arc::clone(&seen);
    let engine = PolicyEngine::builder(policies_dir())
        .with_sink(move |r: &DecisionRecord| sink.lock().unwrap().push(r.clone()))
        .load()
        .unwrap();
    let probe = http_probe(&["api.example.com"]);
    let gate: Arc<dyn CapabilityGate> =
        Arc::new(PolicyGate::new(engine.clone(), context("staging"), &probe));
    gate.check(&get(&probe, "api.example.com", &["93.184.216.34"]));
    gate.check(&get(&probe, "api.example.com", &["10.0.0.1"]));
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    assert!(seen[0].decision.is_allow());
    assert!(!seen[1].decision.is_allow());
    assert_ne!(seen[0].input_hash, seen[1].input_hash);
    assert!(seen.iter().all(|r| r.bundle_hash == engine.summary().hash));
}
