//! The runbook loader: any UTF-8 text gives a checked runbook or errors,
//! never a panic; an accepted runbook only uses known tools and unique ids.
#![no_main]
#![allow(
    clippy::disallowed_methods,
    reason = "fuzz_target! saves inputs with std::fs::File::create"
)]

use std::collections::HashSet;
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use warden_agent::Runbooks;
use warden_types::{Capability, Effect, ToolManifest};

/// The tools runbooks may name: the crate doc's probe, and a mutating tool
/// with a richer schema (enum, bounds, arrays, nested objects).
static TOOLS: LazyLock<Vec<ToolManifest>> = LazyLock::new(|| {
    vec![
        ToolManifest {
            name: "http-probe".into(),
            version: "0.1.0".into(),
            description: "probe a URL".into(),
            input_schema: serde_json::json!({"type": "object", "required": ["url"],
                "properties": {"url": {"type": "string"}}}),
            output_schema: serde_json::json!({}),
            effect: Effect::ReadOnly,
            supports_dry_run: false,
            capabilities: vec![Capability::Http {
                hosts: vec!["*".into()],
            }],
        },
        ToolManifest {
            name: "service-restart".into(),
            version: "0.1.0".into(),
            description: "restart a service".into(),
            input_schema: serde_json::json!({
                "type": "object",
                "required": ["service", "mode"],
                "additionalProperties": false,
                "properties": {
                    "service": {"type": "string", "minLength": 1, "pattern": "^[a-z][a-z0-9-]*$"},
                    "mode": {"enum": ["graceful", "hard"]},
                    "timeout_s": {"type": "integer", "minimum": 1, "maximum": 600},
                    "hosts": {"type": "array", "items": {"type": "string"}, "maxItems": 8},
                    "labels": {"type": "object", "additionalProperties": {"type": "string"}}
                }
            }),
            output_schema: serde_json::json!({}),
            effect: Effect::Mutating,
            supports_dry_run: true,
            capabilities: vec![Capability::Kv],
        },
    ]
});

fuzz_target!(|data: &[u8]| {
    warden_fuzz::bounded();
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(book) = Runbooks::parse("fuzz.yaml", text, &TOOLS) else {
        return;
    };
    assert!(
        !book.steps.is_empty(),
        "a runbook without steps was accepted"
    );
    let mut ids = HashSet::new();
    for step in &book.steps {
        assert!(ids.insert(step.id.as_str()), "step id {} twice", step.id);
        assert!(
            TOOLS.iter().any(|t| t.name == step.tool),
            "unknown tool {} accepted",
            step.tool
        );
    }
});
