//! The `notify` plugin over the wire: Block Kit and Adaptive Card payloads
//! as a loopback receiver sees them, dry runs, and failing webhooks.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::json;
use test_plugins_artifacts as artifacts;
use warden_sandbox::{SandboxError, ToolErrorKind};
use warden_types::{CallContext, CapabilityRequest, GateDecision};

use crate::support::*;

fn message(target: &str, secret: &str) -> serde_json::Value {
    json!({
        "target": target,
        "secret": secret,
        "title": "checkout error rate 12%",
        "text": "**checkout** returns 5xx since 10:02; [runbook](https://runbooks.example/checkout)",
        "severity": "critical",
        "fields": {"service": "checkout", "error_rate": 0.12},
        "link": {"title": "Dashboard", "url": "https://grafana.example/d/checkout"}
    })
}

fn tool_error(err: SandboxError) -> (ToolErrorKind, String) {
    match err {
        SandboxError::Tool { kind, message, .. } => (kind, message),
        other => panic!("expected a tool error, got {other}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn notify_posts_block_kit_to_slack_and_an_adaptive_card_to_teams() {
    let receiver = recorder(200, "ok");
    let url = format!("http://127.0.0.1:{}/hooks/chat-token", receiver.port());
    let sandbox = sandbox_with(|c| {
        c.secret("chat", &url);
    });
    let notify = load(&sandbox, artifacts::PLUGIN_NOTIFY);
    assert_eq!(notify.manifest().effect, warden_types::Effect::Mutating);
    assert!(notify.manifest().supports_dry_run);

    for target in ["slack", "teams"] {
        let out = notify
            .invoke(&ctx(), &message(target, "chat"), allow_all())
            .await
            .unwrap();
        assert_eq!(out.output["sent"], true, "{}", out.output);
        assert_eq!(out.output["target"], target);
        assert!(out.output["payload_bytes"].as_u64().unwrap() > 100);
        assert!(out.output.get("payload").is_none());
    }
    let got = receiver.requests();
    assert_eq!(got.len(), 2);
    for r in &got {
        assert_eq!(r.request_line(), "POST /hooks/chat-token HTTP/1.1");
        assert_eq!(r.header("content-type"), Some("application/json"));
    }

    let slack = got[0].json();
    assert_eq!(slack["text"], "[CRITICAL] checkout error rate 12%");
    let kinds: Vec<&str> = slack["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["header", "section", "section", "context"]);
    assert_eq!(
        slack["blocks"][1]["text"]["text"],
        "*checkout* returns 5xx since 10:02; <https://runbooks.example/checkout|runbook>"
    );
    assert_eq!(
        slack["blocks"][2]["fields"][1]["text"],
        "*service*\ncheckout"
    );

    let teams = got[1].json();
    assert_eq!(teams["type"], "message");
    let card = &teams["attachments"][0];
    assert_eq!(
        card["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    assert_eq!(card["content"]["type"], "AdaptiveCard");
    assert_eq!(card["content"]["version"], "1.4");
    assert_eq!(card["content"]["body"][0]["color"], "Attention");
    assert_eq!(card["content"]["body"][2]["type"], "FactSet");
    assert_eq!(card["content"]["actions"][0]["type"], "Action.OpenUrl");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_notify_dry_run_returns_the_payload_and_asks_for_nothing() {
    let receiver = recorder(200, "ok");
    let url = format!("http://127.0.0.1:{}/hooks/x", receiver.port());
    let sandbox = sandbox_with(|c| {
        c.secret("chat", &url);
    });
    let notify = load(&sandbox, artifacts::PLUGIN_NOTIFY);
    let asked = Arc::new(AtomicUsize::new(0));
    let counter = asked.clone();
    let gate = Arc::new(move |_: &CapabilityRequest| {
        counter.fetch_add(1, Ordering::SeqCst);
        GateDecision::Allow
    });
    let dry = CallContext {
        dry_run: true,
        idempotency_key: None,
        ..ctx()
    };
    let out = notify
        .invoke(&dry, &message("slack", "chat"), gate)
        .await
        .unwrap();
    assert_eq!(out.output["dry_run"], true);
    assert_eq!(out.output["sent"], false);
    assert_eq!(out.output["payload"]["blocks"][0]["type"], "header");
    assert_eq!(asked.load(Ordering::SeqCst), 0);
    assert!(receiver.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_or_rejecting_webhook_fails_naming_the_secret() {
    // A port nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let rejecting = recorder(400, "invalid_blocks");
    let sandbox = sandbox_with(|c| {
        c.secret("down", &format!("http://127.0.0.1:{port}/hooks/down-token"))
            .secret(
                "picky",
                &format!("http://127.0.0.1:{}/hooks/picky-token", rejecting.port()),
            );
    });
    let notify = load(&sandbox, artifacts::PLUGIN_NOTIFY);

    let err = notify
        .invoke(&ctx(), &message("slack", "down"), allow_all())
        .await
        .unwrap_err();
    let (kind, text) = tool_error(err);
    assert_eq!(kind, ToolErrorKind::Failed);
    assert!(
        text.contains("could not reach the webhook in secret `down`"),
        "{text}"
    );
    assert!(!text.contains("down-token"), "{text}");

    let err = notify
        .invoke(&ctx(), &message("teams", "picky"), allow_all())
        .await
        .unwrap_err();
    let (kind, text) = tool_error(err);
    assert_eq!(kind, ToolErrorKind::Failed);
    assert!(
        text.contains("the webhook in secret `picky` answered 400: invalid_blocks"),
        "{text}"
    );
    assert!(!text.contains("picky-token"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_empty_title_is_invalid_input() {
    let sandbox = sandbox();
    let notify = load(&sandbox, artifacts::PLUGIN_NOTIFY);
    let mut input = message("webhook", "chat");
    input["title"] = json!(" ");
    let err = notify
        .invoke(&ctx(), &input, allow_all())
        .await
        .unwrap_err();
    let (kind, text) = tool_error(err);
    assert_eq!(kind, ToolErrorKind::InvalidInput);
    assert_eq!(text, "title is empty");
}

#[tokio::test(flavor = "multi_thread")]
async fn notify_reaches_an_https_webhook_signed_by_the_extra_ca() {
    use warden_fakes::tls::TestCa;
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new();
    let ca_file = ca.write_pem(dir.path());
    let receiver = warden_fakes::http::OkServer::start_tls(&ca.server_cert(&["127.0.0.1"]));
    let url = format!("https://127.0.0.1:{}/hooks/chat-token", receiver.port());
    let sandbox = sandbox_with(|c| {
        c.secret("chat", &url);
        c.extra_ca_file(&ca_file);
    });
    let notify = load(&sandbox, artifacts::PLUGIN_NOTIFY);
    let out = notify
        .invoke(&ctx(), &message("slack", "chat"), allow_all())
        .await
        .unwrap();
    assert_eq!(out.output["sent"], true, "{}", out.output);
    let got = receiver.requests();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].method, "POST");
    assert_eq!(got[0].path, "/hooks/chat-token");
    assert!(got[0].body.contains("\"blocks\""), "{}", got[0].body);

    // Without the CA the handshake fails: a clean tool error, nothing sent.
    let untrusting = sandbox_with(|c| {
        c.secret("chat", &url);
    });
    let notify = load(&untrusting, artifacts::PLUGIN_NOTIFY);
    let result = notify
        .invoke(&ctx(), &message("slack", "chat"), allow_all())
        .await;
    match result {
        Ok(out) => assert_ne!(out.output["sent"], true, "{}", out.output),
        Err(e) => assert!(!e.to_string().is_empty()),
    }
    assert_eq!(receiver.hits(), 1);
}
