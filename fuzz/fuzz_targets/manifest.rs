//! Manifests and input schemas: the input is two JSON documents, a
//! `ToolManifest` and a tool input. The manifest must deserialise or fail
//! cleanly and round-trip; its input schema is compiled and the input
//! checked against it exactly as the sandbox does (`compile_schema` and
//! `Plugin::validate_input` in warden-sandbox, private, so mirrored here),
//! and again through the public runbook loader, which checks literal step
//! arguments against the tool's schema.
#![no_main]
#![allow(
    clippy::disallowed_methods,
    reason = "fuzz_target! saves inputs with std::fs::File::create"
)]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use warden_agent::Runbooks;
use warden_types::ToolManifest;

fuzz_target!(|data: &[u8]| {
    warden_fuzz::bounded();
    let mut docs = serde_json::Deserializer::from_slice(data).into_iter::<Value>();
    let Some(Ok(manifest)) = docs.next() else {
        return;
    };
    let input = match docs.next() {
        Some(Ok(v)) => v,
        Some(Err(_)) => return,
        None => Value::Null,
    };
    let Ok(manifest) = serde_json::from_value::<ToolManifest>(manifest) else {
        return;
    };

    let text = serde_json::to_string(&manifest).unwrap_or_default();
    let again: ToolManifest = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("a manifest does not round-trip: {e}"));
    assert_eq!(again, manifest, "a manifest changes on a round trip");

    if let Value::String(host) = &input {
        let _ = manifest.declares_http_host(host);
    }
    let _ = manifest.declares_kv();

    // The sandbox: `compile_schema`, then `validate_input`.
    if let Ok(validator) = jsonschema::validator_for(&manifest.input_schema)
        && !validator.is_valid(&input)
    {
        let _errors: Vec<String> = validator
            .iter_errors(&input)
            .take(20)
            .map(|e| {
                let at = e.instance_path.to_string();
                if at.is_empty() {
                    e.to_string()
                } else {
                    format!("at {at}: {e}")
                }
            })
            .collect();
    }

    // The runbook loader, with the input as one step's literal arguments.
    let book = serde_json::json!({
        "name": "fuzz",
        "steps": [{"id": "s", "tool": manifest.name, "args": input}],
    });
    if let Ok(yaml) = serde_yaml_ng::to_string(&book) {
        let _ = Runbooks::parse("fuzz.yaml", &yaml, std::slice::from_ref(&manifest));
    }
});
