//! `/mcp`: MCP over Streamable HTTP behind the API's tokens, driven by
//! rmcp's own HTTP client. Calls run on the token holder's behalf; an
//! approval the client cannot give is opened in `/v1/approvals`, answered
//! there by someone else, and redeemed once by a retry of the same call.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientCapabilities, ClientConfig, Implementation,
    JsonObject,
};
use rmcp::service::{NotificationContext, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{ClientHandler, RoleClient, ServiceExt as _};
use serde_json::{Value, json};
use warden::journal::JournalEvent;

use crate::support::{ADMIN, ALICE, Harness, Options, VIEWER};

/// A client without elicitation that counts `tools/list_changed`.
#[derive(Clone, Default)]
struct Client {
    changed: Arc<AtomicUsize>,
}

impl ClientHandler for Client {
    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(
            ClientCapabilities::default(),
            Implementation::new("serve-mcp-test", "0.0.0"),
        )
    }

    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        self.changed.fetch_add(1, Ordering::SeqCst);
    }
}

fn mcp_options(env: &'static str) -> Options {
    Options {
        env,
        extra_toml: format!("[mcp]\nenv = \"{env}\"\n"),
        ..Options::default()
    }
}

async fn connect(h: &Harness, token: &str, client: Client) -> RunningService<RoleClient, Client> {
    // The harness's client: it trusts the test CA when the server speaks HTTPS.
    let transport = StreamableHttpClientTransport::with_client(
        h.client.clone(),
        StreamableHttpClientTransportConfig::with_uri(h.url("/mcp")).auth_header(token),
    );
    tokio::time::timeout(Duration::from_secs(30), client.serve(transport))
        .await
        .expect("the handshake answered")
        .expect("the handshake succeeded")
}

async fn call(c: &RunningService<RoleClient, Client>, tool: &str, args: Value) -> CallToolResult {
    let args: JsonObject = match args {
        Value::Object(o) => o,
        _ => panic!("arguments must be an object"),
    };
    tokio::time::timeout(
        Duration::from_secs(60),
        c.call_tool(CallToolRequestParams::new(tool.to_string()).with_arguments(args)),
    )
    .await
    .expect("the call answered within a minute")
    .unwrap()
}

fn text(r: &CallToolResult) -> String {
    r.content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

fn meta(r: &CallToolResult, key: &str) -> String {
    r.meta.as_ref().expect("the result has _meta").0[key]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn mcp_over_http_runs_a_call_on_the_token_holders_behalf_and_journals_it() {
    let mut h = Harness::start(mcp_options("dev")).await;
    let c = connect(&h, ADMIN, Client::default()).await;
    let tools = c.list_all_tools().await.unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    for want in [
        "http-probe",
        "http-action",
        "journal_show",
        "runbook_list",
        "runbook_run",
    ] {
        assert!(names.contains(&want), "{want} in {names:?}");
    }
    let action = tools.iter().find(|t| t.name == "http-action").unwrap();
    assert!(
        action.input_schema["properties"]
            .get("approval_id")
            .is_some(),
        "with an approval queue, tools take approval_id"
    );
    let r = call(
        &c,
        "http-probe",
        json!({"url": h.checkout.alert("x", "firing")["alerts"][0]["annotations"]["health_url"], "environment": "prod"}),
    )
    .await;
    assert_eq!(r.is_error, Some(false), "{r:?}");
    let task = meta(&r, "warden/task");
    assert_eq!(meta(&r, "warden/env"), "dev", "the argument chose nothing");
    let started = h
        .records(&task)
        .into_iter()
        .find_map(|r| match r.event {
            JournalEvent::Task(t) => Some(t),
            _ => None,
        })
        .expect("the call is journaled as a task");
    assert_eq!(started.principal, "admin", "the token's holder");
    assert_eq!(started.source, "mcp");
    assert!(
        started.goal.contains("ignored arguments environment"),
        "{}",
        started.goal
    );
    // The same timeline over the REST API.
    let (status, shown) = h.get(&format!("/v1/tasks/{task}"), VIEWER).await;
    assert_eq!(status, 200, "{shown}");
    let _ = c.cancel().await;
    h.stop().await;
}

#[tokio::test]
async fn mcp_needs_an_operator_token_and_a_known_host() {
    let mut h = Harness::start(mcp_options("dev")).await;
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "curl", "version": "0"}}});
    let post = |token: Option<&'static str>, host: Option<&'static str>| {
        let mut rq = h
            .client
            .post(h.url("/mcp"))
            .header("accept", "application/json, text/event-stream")
            .json(&init);
        if let Some(t) = token {
            rq = rq.bearer_auth(t);
        }
        if let Some(host) = host {
            rq = rq.header("host", host);
        }
        rq.send()
    };
    assert_eq!(post(None, None).await.unwrap().status(), 401);
    assert_eq!(post(Some(VIEWER), None).await.unwrap().status(), 403);
    assert_eq!(
        post(Some(ALICE), None).await.unwrap().status(),
        403,
        "approver only"
    );
    let rebound = post(Some(ADMIN), Some("evil.example")).await.unwrap();
    assert!(
        rebound.status().is_client_error(),
        "a foreign Host is refused: {}",
        rebound.status()
    );
    assert_eq!(post(Some(ADMIN), None).await.unwrap().status(), 200);
    // Bigger than limits.body_bytes (64 KiB here): refused, not read whole.
    let big = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list",
        "params": {"pad": "x".repeat(200 * 1024)}});
    let r = h
        .client
        .post(h.url("/mcp"))
        .bearer_auth(ADMIN)
        .header("accept", "application/json, text/event-stream")
        .json(&big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413, "an oversized body is refused");
    h.stop().await;
}

#[tokio::test]
async fn mcp_works_over_https_with_the_services_certificate() {
    let mut opts = mcp_options("dev");
    opts.tls = true;
    let mut h = Harness::start(opts).await;
    assert!(h.url("/mcp").starts_with("https://"), "{}", h.url("/mcp"));
    let c = connect(&h, ADMIN, Client::default()).await;
    let tools = c.list_all_tools().await.unwrap();
    assert!(tools.iter().any(|t| t.name == "http-probe"), "{tools:?}");
    let r = call(&c, "runbook_list", json!({})).await;
    assert_eq!(r.is_error, Some(false), "{r:?}");
    let _ = c.cancel().await;
    h.stop().await;
}

#[tokio::test]
async fn an_approval_the_client_cannot_give_is_answered_in_the_api_and_redeemed_once() {
    let mut opts = mcp_options("prod");
    opts.policy_config = json!({});
    let mut h = Harness::start(opts).await;
    let c = connect(&h, ADMIN, Client::default()).await;
    let restart = h.checkout.alert("x", "firing")["alerts"][0]["annotations"]["remediation_url"]
        .as_str()
        .unwrap()
        .to_string();
    let args = json!({"url": restart, "dry_run": false});
    let first = call(&c, "http-action", args.clone()).await;
    assert_eq!(first.is_error, Some(true), "{first:?}");
    let id = meta(&first, "warden/approval_id");
    assert!(!id.is_empty(), "{first:?}");
    let said = text(&first);
    assert!(
        said.contains(&format!("\"approval_id\": \"{id}\"")),
        "{said}"
    );
    assert!(said.contains("a human must approve this call"), "{said}");
    assert_eq!(h.checkout.admin_calls(), 0);

    // Too early: nobody has answered.
    let mut early = args.clone();
    early["approval_id"] = json!(id);
    let r = call(&c, "http-action", early.clone()).await;
    assert!(text(&r).contains("has not been answered yet"), "{r:?}");

    let (status, list) = h.get("/v1/approvals", VIEWER).await;
    assert_eq!(status, 200);
    let pending = list
        .as_array()
        .or_else(|| list["approvals"].as_array())
        .unwrap()
        .iter()
        .find(|p| p["id"] == json!(id))
        .cloned()
        .expect("the approval waits in the API");
    assert_eq!(pending["tool"], json!("http-action"));
    assert_eq!(pending["principal"], json!("admin"));
    let (status, answer) = h
        .post(
            &format!("/v1/approvals/{id}"),
            ALICE,
            &json!({"approve": true, "reason": "restart is fine"}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");

    // The id is for this call only: other arguments find nothing to use.
    let mut other = early.clone();
    other["url"] = json!(format!("{restart}?again=1"));
    let r = call(&c, "http-action", other).await;
    assert!(text(&r).contains("is for a different call"), "{r:?}");
    assert_eq!(h.checkout.admin_calls(), 0);

    let r = call(&c, "http-action", early.clone()).await;
    assert_eq!(r.is_error, Some(false), "{r:?}");
    assert_eq!(h.checkout.admin_calls(), 1, "the approved change ran once");
    let approved = h
        .records(&meta(&r, "warden/task"))
        .into_iter()
        .find_map(|r| match r.event {
            JournalEvent::Approval(a) => Some(a),
            _ => None,
        })
        .expect("the approval is journaled with the call");
    assert_eq!(
        (approved.approver.as_str(), approved.principal.as_str()),
        ("alice", "admin")
    );

    // Used once: the same id again opens nothing.
    let r = call(&c, "http-action", early).await;
    assert!(text(&r).contains("no approval"), "{r:?}");
    assert_eq!(h.checkout.admin_calls(), 1);
    let _ = c.cancel().await;
    h.stop().await;
}

#[tokio::test]
async fn a_reload_tells_connected_clients_their_tools_changed() {
    let mut h = Harness::start(mcp_options("dev")).await;
    let client = Client::default();
    let changed = client.changed.clone();
    let c = connect(&h, ADMIN, client).await;
    let _ = c.list_all_tools().await.unwrap();
    h.handle.reload().unwrap();
    h.wait("tools/list_changed", || {
        let n = changed.load(Ordering::SeqCst);
        async move { (n > 0).then_some(()) }
    })
    .await;
    let _ = c.cancel().await;
    h.stop().await;
}

#[tokio::test]
async fn an_mcp_environment_the_bundle_does_not_know_stops_the_service_from_starting() {
    let mut h = Harness::start(mcp_options("dev")).await;
    h.stop().await;
    // Let go of the stopped server's inbox; keep its folder.
    let Harness {
        dir: _dir,
        config,
        handle,
        ..
    } = h;
    drop(handle);
    let text = fs_err::read_to_string(&config).unwrap();
    assert!(text.contains("[mcp]\nenv = \"dev\""), "{text}");
    fs_err::write(
        &config,
        text.replace("[mcp]\nenv = \"dev\"", "[mcp]\nenv = \"moon\""),
    )
    .unwrap();
    let config = warden_serve::Config::load(&config).unwrap();
    let e = warden_serve::check(&config).unwrap_err().to_string();
    assert!(e.contains("[mcp] env") && e.contains("moon"), "{e}");
    // The stopped server's last tasks may still hold the inbox a moment.
    let mut e = String::new();
    for _ in 0..100 {
        e = warden_serve::Server::bind(config.clone())
            .await
            .unwrap_err()
            .to_string();
        if !e.contains("already open") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(e.contains("[mcp] env"), "{e}");
}
