//! `warden mcp` as a child process, driven by rmcp's client over stdio.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rmcp::model::{CallToolRequestParams, JsonObject};
use rmcp::service::NotificationContext;
use rmcp::transport::TokioChildProcess;
use rmcp::{ClientHandler, RoleClient, ServiceExt as _};
use serde_json::{Value, json};

use crate::support::{loopback, plugin_dir};

fn args(v: Value) -> JsonObject {
    match v {
        Value::Object(o) => o,
        _ => JsonObject::new(),
    }
}

#[tokio::test]
async fn warden_mcp_serves_the_plugins_over_stdio_in_the_configured_env() {
    let plugins = plugin_dir();
    let site = loopback();
    let mut cmd = tokio::process::Command::from(crate::support::warden(plugins.path()));
    cmd.args(["mcp", "--env", "dev", "--principal", "cli-test"]);
    let child = TokioChildProcess::builder(cmd)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
        .0;
    let client = tokio::time::timeout(Duration::from_secs(60), ().serve(child))
        .await
        .expect("the server answered initialize within a minute")
        .unwrap();
    assert_eq!(
        client
            .peer_info()
            .unwrap()
            .server_info
            .as_ref()
            .unwrap()
            .name,
        "warden"
    );
    let tools = client.list_all_tools().await.unwrap();
    assert!(tools.iter().any(|t| t.name == "http-probe"), "{tools:?}");
    assert!(tools.iter().any(|t| t.name == "runbook_list"), "{tools:?}");

    let r = client
        .call_tool(
            CallToolRequestParams::new("http-probe")
                .with_arguments(args(json!({"url": site.url("/health"), "env": "prod"}))),
        )
        .await
        .unwrap();
    assert_eq!(r.is_error, Some(false), "{r:?}");
    assert_eq!(r.structured_content.as_ref().unwrap()["status"], json!(200));
    let meta = &r.meta.as_ref().unwrap().0;
    assert_eq!(
        meta["warden/env"],
        json!("dev"),
        "the flag, not the argument"
    );
    assert_eq!(site.hits(), 1);

    let task = meta["warden/task"].as_str().unwrap().to_string();
    let shown = client
        .call_tool(
            CallToolRequestParams::new("journal_show")
                .with_arguments(args(json!({"task_id": task}))),
        )
        .await
        .unwrap();
    let timeline = shown.structured_content.unwrap()["timeline"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        timeline.contains("ignored arguments env=\"prod\""),
        "{timeline}"
    );
    client.cancel().await.unwrap();
}

/// A client that counts `tools/list_changed`.
#[derive(Clone, Default)]
struct Watcher {
    changed: Arc<AtomicUsize>,
}

impl ClientHandler for Watcher {
    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        self.changed.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn a_new_plugin_is_loaded_and_the_client_told_its_tools_changed() {
    let plugins = tempfile::tempdir().unwrap();
    fs_err::copy(
        test_plugins_artifacts::PLUGIN_HTTP_PROBE,
        plugins.path().join("http_probe.wasm"),
    )
    .unwrap();
    let mut cmd = tokio::process::Command::from(crate::support::warden(plugins.path()));
    cmd.args(["mcp", "--env", "dev", "--watch", "100ms"]);
    let child = TokioChildProcess::builder(cmd)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
        .0;
    let watcher = Watcher::default();
    let changed = watcher.changed.clone();
    let client = tokio::time::timeout(Duration::from_secs(60), watcher.serve(child))
        .await
        .expect("the server answered initialize within a minute")
        .unwrap();
    let names = |tools: &[rmcp::model::Tool]| -> Vec<String> {
        tools.iter().map(|t| t.name.to_string()).collect()
    };
    let before = names(&client.list_all_tools().await.unwrap());
    assert!(!before.contains(&"http-action".to_string()), "{before:?}");
    // A call writes the journal beside the plugins: that is no change.
    let r = client
        .call_tool(
            CallToolRequestParams::new("http-probe").with_arguments(args(json!({"nope": 1}))),
        )
        .await
        .unwrap();
    assert_eq!(r.is_error, Some(true), "{r:?}");
    assert!(plugins.path().join("journal/journal.jsonl").exists());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(changed.load(Ordering::SeqCst), 0, "nothing changed yet");

    fs_err::copy(
        test_plugins_artifacts::PLUGIN_HTTP_ACTION,
        plugins.path().join("http_action.wasm"),
    )
    .unwrap();
    let start = Instant::now();
    while changed.load(Ordering::SeqCst) == 0 && start.elapsed() < Duration::from_secs(90) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        changed.load(Ordering::SeqCst) > 0,
        "tools/list_changed arrived"
    );
    let after = names(&client.list_all_tools().await.unwrap());
    assert!(after.contains(&"http-action".to_string()), "{after:?}");

    // A broken plugin keeps the running tools.
    fs_err::write(plugins.path().join("broken.wasm"), b"not wasm").unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let still = names(&client.list_all_tools().await.unwrap());
    assert_eq!(still, after);
    client.cancel().await.unwrap();
}
