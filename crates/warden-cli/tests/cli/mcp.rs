//! `warden mcp` as a child process, driven by rmcp's client over stdio.

use std::time::Duration;

use rmcp::ServiceExt as _;
use rmcp::model::{CallToolRequestParams, JsonObject};
use rmcp::transport::TokioChildProcess;
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
