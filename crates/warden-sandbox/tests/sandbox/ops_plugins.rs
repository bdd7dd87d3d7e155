//! The shipped ops plugins run in the sandbox: one good call and the input
//! errors a planner is most likely to make, for each.

use serde_json::{Value, json};
use test_plugins_artifacts as artifacts;
use warden_sandbox::{Plugin, SandboxError, ToolErrorKind};
use warden_types::CallContext;

use crate::support::*;

async fn call(plugin: &Plugin, input: Value) -> Value {
    plugin
        .invoke(&ctx(), &input, deny_all())
        .await
        .unwrap()
        .output
}

/// The tool's own invalid-input message (the schema let the input through).
async fn invalid(plugin: &Plugin, input: Value) -> String {
    match plugin.invoke(&ctx(), &input, deny_all()).await {
        Err(SandboxError::Tool {
            kind: ToolErrorKind::InvalidInput,
            message,
            ..
        }) => message,
        other => panic!("expected the tool's invalid-input error, got {other:?}"),
    }
}

fn daily(values: &[f64]) -> Vec<Value> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| json!({"t": 1_714_521_600 + i as i64 * 86_400, "used_pct": v}))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn disk_forecast_predicts_a_fill_date_and_rejects_bad_series() {
    let sandbox = sandbox();
    let plugin = load(&sandbox, artifacts::PLUGIN_DISK_FORECAST);
    let out = call(
        &plugin,
        json!({
            "series": [{"t": "2024-05-01T00:00:00Z", "used_pct": 50},
                       {"t": "2024-05-02T00:00:00Z", "used_pct": 60}],
            "smart": {"5": 0, "197": 0}
        }),
    )
    .await;
    let forecast = &out["forecast"];
    assert_eq!(forecast["unit"], "percent");
    assert_eq!(forecast["filling"], true);
    let median = forecast["eta_days"]["median"].as_f64().unwrap();
    assert!((median - 4.0).abs() < 1e-9, "{median}");
    assert!((forecast["fill_rate_per_day"].as_f64().unwrap() - 10.0).abs() < 1e-9);
    assert_eq!(out["risk"]["level"], "low");
    assert!(
        out["summary"]
            .as_str()
            .unwrap()
            .starts_with("Full in about 4.0 days"),
        "{}",
        out["summary"]
    );

    assert!(
        invalid(&plugin, json!({}))
            .await
            .contains("nothing to assess")
    );
    let mut unsorted = daily(&[1.0, 2.0, 3.0, 4.0]);
    unsorted.swap(2, 3);
    let message = invalid(&plugin, json!({"series": unsorted})).await;
    assert!(message.contains("timestamp at index 3"), "{message}");
    let message = invalid(&plugin, json!({"series": daily(&[1.0, -5.0, 3.0])})).await;
    assert!(
        message.contains("usage at index 1 must be a finite non-negative number"),
        "{message}"
    );
}

fn samples(base: f64, peak: f64) -> Vec<f64> {
    (0..288)
        .map(|i| {
            if (100..110).contains(&i) {
                peak
            } else {
                base + f64::from(i % 7) * 0.5
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn rightsize_recommends_a_cheaper_size_and_rejects_unknown_sizes() {
    let sandbox = sandbox();
    let plugin = load(&sandbox, artifacts::PLUGIN_RIGHTSIZE);
    let out = call(
        &plugin,
        json!({
            "current_size": "Standard_D8s_v5",
            "cpu_pct": samples(8.0, 20.0),
            "memory_pct": samples(28.0, 40.0),
            "families": ["Dsv5", "Esv5"]
        }),
    )
    .await;
    assert_eq!(out["action"], "resize");
    assert_eq!(out["recommended"]["name"], "Standard_E2s_v5");
    assert_eq!(out["current"]["name"], "Standard_D8s_v5");
    let savings = out["monthly_savings_usd"].as_f64().unwrap();
    assert!(
        (savings - (0.384 - 0.126) * 730.0).abs() < 0.01,
        "{savings}"
    );
    assert!(out["recommended"]["memory_gib"].as_f64().unwrap() >= 12.8 * 1.15);

    let message = invalid(
        &plugin,
        json!({"current_size": "Standard_D3s_v5", "cpu_pct": [10.0], "memory_pct": [10.0]}),
    )
    .await;
    assert!(
        message.starts_with("unknown VM size \"Standard_D3s_v5\"; nearby sizes: "),
        "{message}"
    );
    let message = invalid(
        &plugin,
        json!({"current_size": "Standard_D8s_v5", "cpu_pct": [], "memory_pct": [10.0]}),
    )
    .await;
    assert!(message.contains("cpu_pct is empty"), "{message}");
}

#[tokio::test(flavor = "multi_thread")]
async fn summarize_merges_a_nagios_problem_and_recovery_and_rejects_empty_input() {
    let sandbox = sandbox();
    let plugin = load(&sandbox, artifacts::PLUGIN_SUMMARIZE);
    let critical: Value = serde_json::from_str(include_str!(
        "../../../../plugins/summarize/tests/fixtures/nagios_critical.json"
    ))
    .unwrap();
    let recovery: Value = serde_json::from_str(include_str!(
        "../../../../plugins/summarize/tests/fixtures/nagios_recovery.json"
    ))
    .unwrap();
    let out = call(&plugin, json!({"payloads": [critical, recovery]})).await;
    assert_eq!(out["payloads"], 2);
    assert_eq!(out["notifications"], 2);
    assert_eq!(out["alerts"], 1);
    assert_eq!(
        (out["firing"].clone(), out["resolved"].clone()),
        (json!(0), json!(1))
    );
    let alert = &out["groups"][0]["alerts"][0];
    assert_eq!(alert["name"], "HTTP");
    assert_eq!(alert["status"], "resolved");
    assert_eq!(alert["count"], 2);
    assert!(
        out["text"]
            .as_str()
            .unwrap()
            .starts_with("# Alert status: 0 firing")
    );

    assert_eq!(
        invalid(&plugin, json!({"payloads": []})).await,
        "payloads is empty"
    );
    let message = invalid(&plugin, json!({"payloads": [{"foo": 1}]})).await;
    assert!(
        message.starts_with("no payload could be read: payload 0: unrecognised"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_http_action_dry_run_sends_nothing() {
    let sandbox = sandbox();
    let plugin = load(&sandbox, artifacts::PLUGIN_HTTP_ACTION);
    let server = hello_server();
    let url = format!("http://127.0.0.1:{}/admin/restart", server.port());
    let dry = CallContext {
        dry_run: true,
        idempotency_key: None,
        ..ctx()
    };
    // An allowing gate: only the dry run keeps the request from going out.
    let out = plugin
        .invoke(
            &dry,
            &json!({"url": url, "body": {"pool": "db"}}),
            allow_all(),
        )
        .await
        .unwrap();
    assert_eq!(out.output["dry_run"], true);
    assert_eq!(out.output["ok"], false);
    assert_eq!(out.output["request"], format!("POST {url}"));
    assert!(out.output["status"].is_null());
    assert!(out.denials.is_empty());
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert_eq!(server.connections(), 0, "a dry run reached the server");
}
