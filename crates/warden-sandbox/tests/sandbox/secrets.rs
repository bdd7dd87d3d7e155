//! Host-side secrets: a plugin sends to `https://<name>.secret.warden/`,
//! the request arrives at the URL only the host holds, and nothing the
//! sandbox returns carries that URL.

use std::sync::{Arc, Mutex};

use serde_json::json;
use test_plugins_artifacts as artifacts;
use warden_sandbox::{SandboxConfig, SandboxError, ToolErrorKind};
use warden_types::{CapabilityGate, CapabilityRequest, CapabilityUse, GateDecision};

use crate::support::*;

const TOKEN: &str = "s3cr3t-t0ken";

fn secret_url(port: u16) -> String {
    format!("http://127.0.0.1:{port}/services/T0/B0/{TOKEN}?hook=1")
}

/// A gate that allows everything and keeps what it was asked.
fn recording_gate() -> (Arc<dyn CapabilityGate>, Arc<Mutex<Vec<CapabilityRequest>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let gate = Arc::new(move |r: &CapabilityRequest| {
        record.lock().unwrap().push(r.clone());
        GateDecision::Allow
    });
    (gate, seen)
}

fn assert_no_url(text: &str) {
    assert!(!text.contains(TOKEN), "the secret URL leaked: {text}");
    assert!(
        !text.contains("/services/"),
        "the secret URL leaked: {text}"
    );
}

fn tool_error(err: SandboxError) -> (ToolErrorKind, String) {
    match err {
        SandboxError::Tool { kind, message, .. } => (kind, message),
        other => panic!("expected a tool error, got {other}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_secret_request_reaches_the_url_and_the_url_never_leaves_the_host() {
    let receiver = recorder(200, "ok");
    let url = secret_url(receiver.port());
    let sandbox = sandbox_with(|c| {
        c.secret("ops-chat", &url);
    });
    let notify = load(&sandbox, artifacts::PLUGIN_NOTIFY);
    let (gate, asked) = recording_gate();
    let out = notify
        .invoke(
            &ctx(),
            &json!({"target": "webhook", "secret": "ops-chat", "title": "Disk full", "text": "db01 /var"}),
            gate,
        )
        .await
        .unwrap();
    assert_eq!(out.output["sent"], true);
    assert_eq!(out.output["status"], 200);
    assert!(out.denials.is_empty(), "{:?}", out.denials);

    let got = receiver.requests();
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].request_line(),
        format!("POST /services/T0/B0/{TOKEN}?hook=1 HTTP/1.1")
    );
    assert_eq!(
        got[0].header("host"),
        Some(format!("127.0.0.1:{}", receiver.port()).as_str())
    );
    assert_eq!(got[0].json()["source"], "warden");

    // The gate saw the secret's name, the URL's scheme and port, and the
    // resolved address, but not the path or query.
    let asked = asked.lock().unwrap().clone();
    assert_eq!(asked.len(), 1);
    match &asked[0].capability {
        CapabilityUse::Http(info) => {
            assert_eq!(info.host, "ops-chat.secret.warden");
            assert_eq!(info.path, "/");
            assert_eq!((info.scheme.as_str(), info.port), ("http", receiver.port()));
            assert_eq!(
                info.resolved,
                vec!["127.0.0.1".parse::<std::net::IpAddr>().unwrap()]
            );
        }
        other => panic!("gate saw {other:?}"),
    }
    assert_no_url(&serde_json::to_string(&asked).unwrap());
    assert_no_url(&serde_json::to_string(&out).unwrap());
    assert_no_url(&format!("{sandbox:?} {notify:?}"));
}

#[tokio::test(flavor = "multi_thread")]
async fn undeclared_and_unknown_secrets_are_refused_by_name() {
    let receiver = recorder(200, "ok");
    let url = secret_url(receiver.port());
    let sandbox = sandbox_with(|c| {
        c.secret("ops-chat", &url);
    });

    // http-action declares `*`, which does not cover secrets.
    let action = load(&sandbox, artifacts::PLUGIN_HTTP_ACTION);
    let (gate, asked) = recording_gate();
    let err = action
        .invoke(
            &ctx(),
            &json!({"url": "https://ops-chat.secret.warden/", "body": {"x": 1}}),
            gate,
        )
        .await
        .unwrap_err();
    let (kind, message) = tool_error(err);
    assert_eq!(kind, ToolErrorKind::Denied);
    assert!(
        message.contains("did not declare the secret `ops-chat`"),
        "{message}"
    );
    assert_no_url(&message);
    assert!(asked.lock().unwrap().is_empty(), "the gate was asked");

    // notify declares every secret, but the host holds no `nope`.
    let notify = load(&sandbox, artifacts::PLUGIN_NOTIFY);
    let (gate, asked) = recording_gate();
    let err = notify
        .invoke(
            &ctx(),
            &json!({"target": "slack", "secret": "nope", "title": "t", "text": "x"}),
            gate,
        )
        .await
        .unwrap_err();
    let (kind, message) = tool_error(err);
    assert_eq!(kind, ToolErrorKind::Denied);
    assert!(
        message.contains("secret `nope`, which the host does not hold"),
        "{message}"
    );
    assert!(asked.lock().unwrap().is_empty(), "the gate was asked");
    assert!(receiver.requests().is_empty(), "a refused request was sent");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_gate_judges_a_secret_by_its_resolved_address() {
    // A secret that points at the metadata endpoint is stopped by the
    // gate's address check before any connection is made.
    let sandbox = sandbox_with(|c| {
        c.secret("meta", &format!("http://169.254.169.254/latest/{TOKEN}"));
    });
    let notify = load(&sandbox, artifacts::PLUGIN_NOTIFY);
    let gate = Arc::new(|r: &CapabilityRequest| match &r.capability {
        CapabilityUse::Http(info)
            if info
                .resolved
                .iter()
                .any(|ip| ip.to_string() == "169.254.169.254") =>
        {
            GateDecision::deny(format!("`{}` resolves to a metadata address", info.host))
        }
        _ => GateDecision::Allow,
    });
    let err = notify
        .invoke(
            &ctx(),
            &json!({"target": "teams", "secret": "meta", "title": "t", "text": "x"}),
            gate,
        )
        .await
        .unwrap_err();
    let (kind, message) = tool_error(err);
    assert_eq!(kind, ToolErrorKind::Denied);
    assert!(
        message.contains("`meta.secret.warden` resolves to a metadata address"),
        "{message}"
    );
    assert!(
        !message.contains(TOKEN) && !message.contains("latest"),
        "{message}"
    );
}

#[test]
fn bad_secret_configuration_is_refused_by_name_without_the_url() {
    let mut config = SandboxConfig::default();
    config.secret("Ops Chat", "https://hooks.example.com/T0/tok3n");
    let err = warden_sandbox::Sandbox::new(&config)
        .unwrap_err()
        .to_string();
    assert!(err.contains("secret name `Ops Chat`"), "{err}");
    let mut config = SandboxConfig::default();
    config.secret("chat", "hooks.example.com/T0/tok3n");
    let err = warden_sandbox::Sandbox::new(&config)
        .unwrap_err()
        .to_string();
    assert!(err.contains("secret `chat`"), "{err}");
    assert!(!err.contains("tok3n"), "{err}");
}

/// A loopback webhook that answers every request with a 404 quoting the
/// request target and echoing the URL in a header, as real webhooks do.
fn quoting_webhook() -> Responder {
    Responder::start(|seen| {
        let target = &seen.target;
        let url = format!("http://{}{target}", seen.header("host").unwrap_or_default());
        Response::text(
            404,
            format!("no webhook at {target} ({} {target})", seen.method),
        )
        .with_header("x-requested", &url)
    })
}

#[tokio::test]
async fn a_webhook_quoting_its_own_url_in_a_404_does_not_leak_it() {
    let webhook = quoting_webhook();
    let sandbox = sandbox_with(|c| {
        c.secret("ops-chat", &secret_url(webhook.port()));
    });
    let notify = load(&sandbox, artifacts::PLUGIN_NOTIFY);
    let (_guard, logs) = capture_logs();
    let err = notify
        .invoke(
            &ctx(),
            &json!({"target": "webhook", "secret": "ops-chat", "title": "Disk full", "text": "db01"}),
            allow_all(),
        )
        .await
        .unwrap_err();
    let (kind, message) = tool_error(err);
    assert_eq!(kind, ToolErrorKind::Failed);
    assert!(
        message.contains(
            "the webhook in secret `ops-chat` answered 404: no webhook at [secret:ops-chat]"
        ),
        "{message}"
    );
    assert_no_url(&message);
    let logs = logs_text(&logs);
    assert!(logs.contains("[secret:ops-chat]"), "{logs}");
    assert_no_url(&logs);
}

#[tokio::test]
async fn a_secret_a_guest_learnt_is_scrubbed_from_its_output_errors_logs_and_traps() {
    let sandbox = sandbox_with(|c| {
        c.secret("ops-chat", &secret_url(9));
    });
    let leak = load(&sandbox, artifacts::LEAK_TEXT);
    let encoded = "http%3A%2F%2F127.0.0.1%3A9%2Fservices%2FT0%2FB0%2Fs3cr3t-t0ken%3Fhook%3D1";
    let text = format!(
        "url {} path /services/T0/B0/{TOKEN}?hook=1 token {TOKEN} encoded {encoded}",
        secret_url(9)
    );
    let clean = "url [secret:ops-chat] path [secret:ops-chat] token [secret:ops-chat] encoded [secret:ops-chat]";
    let (_guard, logs) = capture_logs();

    let out = leak
        .invoke(&ctx(), &json!({ "text": text }), deny_all())
        .await
        .unwrap();
    assert_eq!(out.output["result"], clean);

    let err = leak
        .invoke(&ctx(), &json!({ "text": text, "bytes": 1 }), deny_all())
        .await
        .unwrap_err();
    let (kind, message) = tool_error(err);
    assert_eq!(kind, ToolErrorKind::Failed);
    assert_eq!(message, format!("gave up on {clean}"));

    let trap = load(&sandbox, artifacts::TRAP_PANIC);
    let err = trap
        .invoke(&ctx(), &json!({ "text": text }), deny_all())
        .await
        .unwrap_err();
    match &err {
        SandboxError::Trapped { message, .. } => {
            assert!(message.contains(clean), "{message}");
            assert_no_url(message);
        }
        other => panic!("expected Trapped, got {other}"),
    }

    let logs = logs_text(&logs);
    assert!(logs.contains(&format!("saw {clean}")), "{logs}");
    assert_no_url(&logs);
    assert!(!logs.contains("s3cr3t"), "{logs}");
}
