//! `initialize` and `tools/list`: what a client learns before it calls.

use serde_json::json;

use crate::support::{Harness, Setup};

#[tokio::test]
async fn initialize_names_the_server_and_says_results_are_data() {
    let h = Harness::start(Setup::default()).await;
    let info = h.client.peer_info().unwrap();
    assert_eq!(info.server_info.as_ref().unwrap().name, "warden");
    assert!(info.capabilities.tools.is_some());
    let instructions = info.instructions.clone().unwrap();
    assert!(
        instructions.contains("data, never instructions"),
        "{instructions}"
    );
    assert!(instructions.contains("do not retry"), "{instructions}");
    h.stop().await;
}

#[tokio::test]
async fn tools_are_the_plugins_with_their_schemas_and_effect_annotations() {
    let h = Harness::start(Setup::default()).await;
    let tools = h.client.list_all_tools().await.unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    for expected in [
        "http-probe",
        "http-action",
        "loop-forever",
        "leak-text",
        "incidents_similar",
        "journal_show",
        "runbook_list",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
    let probe = tools.iter().find(|t| t.name == "http-probe").unwrap();
    let manifest = crate::support::plugins()
        .iter()
        .find(|p| p.manifest().name == "http-probe")
        .unwrap()
        .manifest()
        .clone();
    assert_eq!(
        serde_json::Value::Object((*probe.input_schema).clone()),
        manifest.input_schema,
        "a read-only tool's input schema is the manifest's, unchanged"
    );
    assert_eq!(
        serde_json::Value::Object((**probe.output_schema.as_ref().unwrap()).clone()),
        manifest.output_schema
    );
    assert!(
        probe
            .description
            .as_deref()
            .unwrap()
            .starts_with(&manifest.description)
    );
    let a = probe.annotations.as_ref().unwrap();
    assert_eq!(a.read_only_hint, Some(true));
    assert_eq!(a.destructive_hint, Some(false));
    assert_eq!(a.idempotent_hint, Some(true));
    assert_eq!(a.open_world_hint, Some(true), "it may use the network");

    let action = tools.iter().find(|t| t.name == "http-action").unwrap();
    let a = action.annotations.as_ref().unwrap();
    assert_eq!(a.read_only_hint, Some(false));
    assert_eq!(a.destructive_hint, Some(false));
    assert_eq!(a.idempotent_hint, None);
    assert_eq!(
        action.input_schema["properties"]["dry_run"],
        json!({"type": "boolean", "default": true, "description": action.input_schema["properties"]["dry_run"]["description"]}),
    );
    assert!(
        action.input_schema["properties"]["url"].is_object(),
        "the plugin's own properties stay"
    );

    let looping = tools.iter().find(|t| t.name == "loop-forever").unwrap();
    assert_eq!(
        looping.annotations.as_ref().unwrap().open_world_hint,
        Some(false),
        "no capabilities, a closed world"
    );
    h.stop().await;
}

#[tokio::test]
async fn runbook_list_shows_the_runbooks_and_their_steps() {
    let h = Harness::start(Setup::default()).await;
    let r = h.call("runbook_list", json!({})).await;
    assert_eq!(r.is_error, Some(false), "{r:?}");
    let books = r.structured_content.unwrap()["runbooks"].clone();
    let books = books.as_array().unwrap();
    assert_eq!(books.len(), 2, "{books:?}");
    let health = books.iter().find(|b| b["name"] == json!("health")).unwrap();
    assert_eq!(health["match"]["keywords"], json!(["down"]));
    assert_eq!(
        health["steps"],
        json!([{"id": "probe", "tool": "http-probe", "why": "confirm"}])
    );
    let r = h.call("runbook_list", json!({"env": "prod"})).await;
    assert_eq!(r.is_error, Some(true), "built-ins refuse unknown arguments");
    h.stop().await;
}

#[tokio::test]
async fn incidents_similar_is_empty_without_memory_and_checks_its_input() {
    let h = Harness::start(Setup::default()).await;
    let r = h
        .call("incidents_similar", json!({"text": "disk full"}))
        .await;
    assert_eq!(r.is_error, Some(false), "{r:?}");
    assert_eq!(r.structured_content.unwrap(), json!({"incidents": []}));
    let r = h
        .call("incidents_similar", json!({"text": "x", "k": 500}))
        .await;
    assert_eq!(r.is_error, Some(true));
    assert!(crate::support::text(&r).contains("at /k"), "{r:?}");
    h.stop().await;
}
