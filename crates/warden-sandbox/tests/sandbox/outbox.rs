//! The outbox: a notification to a webhook that cannot be reached is
//! queued on disk, answered `202`, and delivered later exactly once.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde_json::json;
use test_plugins_artifacts as artifacts;
use warden_sandbox::{DeliveryOutcome, DeliveryPass, OutboxEntry, Sandbox, SandboxError};
use warden_types::{CapabilityGate, CapabilityRequest, CapabilityUse, GateDecision};

use crate::support::*;

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn outbox_sandbox(dir: &Path, url: &str) -> Sandbox {
    sandbox_with(|c| {
        c.secret("chat", url)
            .outbox(dir)
            .outbox_backoff(Duration::from_secs(30), Duration::from_secs(600));
    })
}

fn message(text: &str) -> serde_json::Value {
    json!({"target": "slack", "secret": "chat", "title": "disk full on db-1", "text": text})
}

fn allow_for(_: &OutboxEntry) -> Arc<dyn CapabilityGate> {
    allow_all()
}

/// Queue one notification in `dir` through a webhook that is down.
async fn queue_one(dir: &Path) -> (String, serde_json::Value) {
    let down = format!("http://127.0.0.1:{}/hooks/t0k3n", closed_port());
    let sandbox = outbox_sandbox(dir, &down);
    let notify = load(&sandbox, artifacts::PLUGIN_NOTIFY);
    let out = notify
        .invoke(&ctx(), &message("/var is at 97%"), allow_all())
        .await
        .unwrap();
    let id = out.output["outbox_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    (id, out.output)
}

fn later() -> DeliveryPass {
    DeliveryPass::due().at(SystemTime::now() + Duration::from_secs(3600))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_notification_to_a_down_webhook_is_queued_then_delivered_once_when_it_is_up() {
    let dir = tempfile::tempdir().unwrap();
    let (id, output) = queue_one(dir.path()).await;
    assert_eq!(output["queued"], true, "{output}");
    assert_eq!(output["sent"], false);
    assert_eq!(output["status"], 202);
    assert_eq!(id.len(), 32, "{output}");
    assert!(!output.to_string().contains("t0k3n"), "{output}");

    // Still down: nothing is due yet, and a forced attempt backs off.
    let down = format!("http://127.0.0.1:{}/hooks/t0k3n", closed_port());
    let sandbox = outbox_sandbox(dir.path(), &down);
    assert!(
        sandbox
            .deliver_outbox(&allow_for, DeliveryPass::due())
            .await
            .unwrap()
            .is_empty()
    );
    let tried = sandbox
        .deliver_outbox(&allow_for, DeliveryPass::due().all())
        .await
        .unwrap();
    assert_eq!(tried.len(), 1);
    let DeliveryOutcome::Retry { reason, next_at_ms } = &tried[0].outcome else {
        panic!("expected a retry, got {:?}", tried[0].outcome);
    };
    assert!(!reason.contains("t0k3n"), "{reason}");
    let now_ms = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    assert!(*next_at_ms >= now_ms + 14_000, "a failed attempt backs off");
    assert!(
        sandbox
            .deliver_outbox(&allow_for, DeliveryPass::due())
            .await
            .unwrap()
            .is_empty()
    );

    // Up again, in a new process: the entry survived and goes out once.
    let receiver = recorder(200, "ok");
    let up = receiver.url("/hooks/t0k3n");
    let restarted = outbox_sandbox(dir.path(), &up);
    let pending = restarted.outbox().unwrap().list().unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(
        (pending[0].id.as_str(), pending[0].attempts),
        (id.as_str(), 1)
    );
    assert_eq!(
        (pending[0].task_id.as_str(), pending[0].step_id.as_str()),
        ("t-1", "1")
    );
    let done = restarted.deliver_outbox(&allow_for, later()).await.unwrap();
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].outcome, DeliveryOutcome::Delivered { status: 200 });
    let seen = receiver.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].request_line(), "POST /hooks/t0k3n HTTP/1.1");
    assert_eq!(seen[0].header("idempotency-key"), Some(id.as_str()));
    assert_eq!(seen[0].header("content-type"), Some("application/json"));
    assert_eq!(seen[0].json()["text"], "[INFO] disk full on db-1");

    // Delivered means gone: a second pass sends nothing.
    assert!(restarted.outbox().unwrap().list().unwrap().is_empty());
    assert!(
        restarted
            .deliver_outbox(&allow_for, later().all())
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(receiver.hits(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_receiver_that_answers_400_drops_the_entry() {
    let dir = tempfile::tempdir().unwrap();
    let (id, _) = queue_one(dir.path()).await;
    let receiver = recorder(400, "invalid_payload");
    let sandbox = outbox_sandbox(dir.path(), &receiver.url("/hooks/t0k3n"));
    let done = sandbox.deliver_outbox(&allow_for, later()).await.unwrap();
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].entry.id, id);
    match &done[0].outcome {
        DeliveryOutcome::Dropped { reason } => {
            assert!(
                reason.contains("400") && reason.contains("invalid_payload"),
                "{reason}"
            )
        }
        other => panic!("expected a drop, got {other:?}"),
    }
    assert!(sandbox.outbox().unwrap().list().unwrap().is_empty());
    assert!(
        sandbox
            .deliver_outbox(&allow_for, later())
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(receiver.hits(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_receiver_that_answers_503_or_429_keeps_the_entry_for_later() {
    let dir = tempfile::tempdir().unwrap();
    queue_one(dir.path()).await;
    let receiver = recorder(503, "busy");
    let sandbox = outbox_sandbox(dir.path(), &receiver.url("/hooks/t0k3n"));
    let done = sandbox.deliver_outbox(&allow_for, later()).await.unwrap();
    assert!(
        matches!(&done[0].outcome, DeliveryOutcome::Retry { reason, .. } if reason.contains("503"))
    );
    assert_eq!(sandbox.outbox().unwrap().list().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_capability_denied_at_delivery_drops_the_entry_without_sending() {
    let dir = tempfile::tempdir().unwrap();
    let (id, _) = queue_one(dir.path()).await;
    let receiver = recorder(200, "ok");
    let sandbox = outbox_sandbox(dir.path(), &receiver.url("/hooks/t0k3n"));
    let asked: Arc<Mutex<Vec<CapabilityRequest>>> = Arc::default();
    let record = asked.clone();
    let gate_for = move |entry: &OutboxEntry| -> Arc<dyn CapabilityGate> {
        assert_eq!(entry.plugin, "notify");
        let record = record.clone();
        Arc::new(move |r: &CapabilityRequest| {
            record.lock().unwrap().push(r.clone());
            GateDecision::deny("webhooks are closed during the change freeze")
        })
    };
    let done = sandbox.deliver_outbox(&gate_for, later()).await.unwrap();
    assert_eq!(done[0].entry.id, id);
    match &done[0].outcome {
        DeliveryOutcome::Dropped { reason } => {
            assert!(reason.contains("change freeze"), "{reason}")
        }
        other => panic!("expected a drop, got {other:?}"),
    }
    assert_eq!(receiver.hits(), 0);
    assert!(sandbox.outbox().unwrap().list().unwrap().is_empty());
    // The gate saw the delivery as the original call's, with fresh addresses.
    let asked = asked.lock().unwrap();
    assert_eq!(asked.len(), 1);
    assert_eq!(
        (asked[0].task_id.as_str(), asked[0].step_id.as_str()),
        ("t-1", "1")
    );
    match &asked[0].capability {
        CapabilityUse::Http(info) => {
            assert_eq!(info.host, "chat.secret.warden");
            assert_eq!(
                info.resolved,
                vec!["127.0.0.1".parse::<std::net::IpAddr>().unwrap()]
            );
        }
        other => panic!("expected an HTTP decision, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_body_over_the_outbox_limit_is_not_queued() {
    let dir = tempfile::tempdir().unwrap();
    let down = format!("http://127.0.0.1:{}/hooks/t0k3n", closed_port());
    // The PDK writes a body before sending, so a guest cannot send one
    // much larger than the host's pipe: the limit is lowered to test it.
    let sandbox = sandbox_with(|c| {
        c.secret("chat", &down)
            .outbox(dir.path())
            .outbox_body_limit(1024);
    });
    let notify = load(&sandbox, artifacts::PLUGIN_NOTIFY);
    let err = notify
        .invoke(&ctx(), &message(&"x".repeat(2048)), allow_all())
        .await
        .unwrap_err();
    match err {
        SandboxError::Tool { message, .. } => {
            assert!(message.contains("could not reach the webhook"), "{message}")
        }
        other => panic!("expected a tool error, got {other}"),
    }
    assert!(sandbox.outbox().unwrap().list().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn without_an_outbox_an_unreachable_webhook_fails_as_before() {
    let down = format!("http://127.0.0.1:{}/hooks/t0k3n", closed_port());
    let sandbox = sandbox_with(|c| {
        c.secret("chat", &down);
    });
    let notify = load(&sandbox, artifacts::PLUGIN_NOTIFY);
    let err = notify
        .invoke(&ctx(), &message("hi"), allow_all())
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("could not reach the webhook"),
        "{err}"
    );
    assert!(sandbox.outbox().is_none());
}
