//! The outbox on the agent's path: on-call is told about a filling disk
//! while Slack is unreachable; the message is queued, and delivered once
//! later under the policy, with every decision and outcome journaled under
//! the task and step that sent it.

use std::path::Path;
use std::time::{Duration, SystemTime};

use serde_json::json;
use warden_agent::{Agent, JournalEvent, OutcomeStatus, Task, read_journal};
use warden_fakes::http::{Responder, Response};
use warden_policy::PolicyEngine;
use warden_sandbox::{DeliveryOutcome, DeliveryPass, Sandbox, SandboxConfig};

use super::{key, policies, policy};

fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn agent(journal: &Path, outbox: &Path, slack: &str, policy: PolicyEngine) -> Agent {
    let mut config = SandboxConfig::default();
    config
        .timeout(Duration::from_secs(10))
        .cache_dir(test_plugins_artifacts::PLUGIN_CACHE)
        .secret("oncall", slack)
        .outbox(outbox)
        .outbox_backoff(Duration::from_secs(30), Duration::from_secs(600));
    let sandbox = Sandbox::new(&config).unwrap();
    let mut builder = Agent::builder()
        .policy_engine(policy)
        .journal(journal)
        .host_key(key());
    for path in test_plugins_artifacts::PLUGINS {
        builder = builder.plugin(sandbox.load_file(path).unwrap());
    }
    builder
        .runbooks(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/runbooks"))
        .build()
        .unwrap()
}

/// Run the disk runbook while Slack is down; the notify step's output.
async fn run_while_slack_is_down(journal: &Path, outbox: &Path) -> serde_json::Value {
    let down = format!("http://127.0.0.1:{}/hooks/slack/T0/B0/tok", closed_port());
    let agent = agent(journal, outbox, &down, policy());
    let gib = 1024.0 * 1024.0 * 1024.0;
    let series: Vec<_> = (0..10)
        .map(|d| json!({"t": 1_764_000_000 + d * 86_400, "used_bytes": (400.0 + 10.0 * d as f64) * gib}))
        .collect();
    let body = warden_fakes::webhook::alertmanager(
        json!({"alertname": "DiskFillingUp", "severity": "warning", "instance": "db-1", "mountpoint": "/var"}),
        json!({"summary": "disk on db-1 filling up"}),
    );
    let task = Task::from_webhook("t-disk", &body)
        .unwrap()
        .in_env("dev")
        .attach(
            "disk",
            json!({"series": series, "capacity_bytes": 500.0 * gib, "smart": {"5": 0, "197": 8}}),
        );
    let outcome = agent.run(task).await.unwrap();
    assert_eq!(outcome.status, OutcomeStatus::Resolved, "{outcome:?}");
    // Nothing is due yet: the first retry backs off.
    assert!(
        agent
            .deliver_outbox(DeliveryPass::due())
            .await
            .unwrap()
            .is_empty()
    );
    outcome
        .observations
        .iter()
        .find(|o| o.tool == "notify")
        .and_then(|o| o.output.clone())
        .unwrap()
}

fn later() -> DeliveryPass {
    DeliveryPass::due().at(SystemTime::now() + Duration::from_secs(3600))
}

/// The journal's outbox records: (task, step, outcome, reason).
fn outbox_records(journal: &Path) -> Vec<(String, String, String, Option<String>)> {
    read_journal(journal, &key())
        .unwrap()
        .into_iter()
        .filter_map(|r| match r.event {
            JournalEvent::Outbox(o) => Some((r.task_id, o.step_id, o.outcome, o.reason)),
            _ => None,
        })
        .collect()
}

/// Capability decisions journaled for `t-disk`'s notify step.
fn notify_capabilities(journal: &Path) -> Vec<warden_types::Verdict> {
    read_journal(journal, &key())
        .unwrap()
        .into_iter()
        .filter(|r| r.task_id == "t-disk")
        .filter_map(|r| match r.event {
            JournalEvent::Capability(c) if c.step_id == "notify" => Some(c.policy.decision.verdict),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_message_queued_while_slack_is_down_is_delivered_once_by_a_restarted_agent() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, outbox) = (dir.path().join("j.jsonl"), dir.path().join("outbox"));
    let output = run_while_slack_is_down(&journal, &outbox).await;
    assert_eq!(output["queued"], true, "{output}");
    assert_eq!(output["sent"], false, "{output}");
    let id = output["outbox_id"].as_str().unwrap().to_string();
    let decided_live = notify_capabilities(&journal).len();

    let slack = Responder::start(|_| Response::text(200, "ok"));
    let restarted = agent(
        &journal,
        &outbox,
        &slack.url("/hooks/slack/T0/B0/tok"),
        policy(),
    );
    let done = restarted.deliver_outbox(later()).await.unwrap();
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].outcome, DeliveryOutcome::Delivered { status: 200 });
    let seen = slack.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].header("idempotency-key"), Some(id.as_str()));
    assert!(
        seen[0].json()["text"]
            .as_str()
            .unwrap()
            .contains("db-1: disk filling up")
    );
    assert!(
        restarted
            .deliver_outbox(later().all())
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(slack.hits(), 1);

    assert_eq!(
        outbox_records(&journal),
        vec![(
            "t-disk".to_string(),
            "notify".to_string(),
            "delivered".to_string(),
            None
        )]
    );
    // The delivery was decided by the policy, journaled under the step.
    let decided = notify_capabilities(&journal);
    assert!(decided.len() > decided_live, "{decided:?}");
    assert_eq!(decided.last(), Some(&warden_types::Verdict::Allow));
    assert!(super::verify(&journal).is_ok());
    let text = fs_err::read_to_string(&journal).unwrap();
    assert!(
        !text.contains("/hooks/slack"),
        "the secret leaked into the journal"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_delivery_the_policy_now_denies_is_dropped_and_journaled() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, outbox) = (dir.path().join("j.jsonl"), dir.path().join("outbox"));
    run_while_slack_is_down(&journal, &outbox).await;

    // Loopback is no longer allowed in dev: the receiver's address is
    // refused at delivery.
    let strict = PolicyEngine::builder(policies())
        .with_data(
            json!({"warden": {"config": {"network": {"allowed_private_cidrs": {"dev": []}}}}}),
        )
        .load()
        .unwrap();
    let slack = Responder::start(|_| Response::text(200, "ok"));
    let restarted = agent(
        &journal,
        &outbox,
        &slack.url("/hooks/slack/T0/B0/tok"),
        strict,
    );
    let done = restarted.deliver_outbox(later()).await.unwrap();
    assert!(
        matches!(&done[0].outcome, DeliveryOutcome::Dropped { reason } if reason.starts_with("denied at delivery")),
        "{done:?}"
    );
    assert_eq!(slack.hits(), 0);
    assert!(
        restarted
            .deliver_outbox(later().all())
            .await
            .unwrap()
            .is_empty()
    );
    let records = outbox_records(&journal);
    assert_eq!(records.len(), 1);
    assert_eq!(
        (records[0].0.as_str(), records[0].2.as_str()),
        ("t-disk", "dropped")
    );
    assert!(
        records[0].3.as_deref().unwrap().contains("denied"),
        "{records:?}"
    );
    assert_eq!(
        notify_capabilities(&journal).last(),
        Some(&warden_types::Verdict::Deny)
    );
}
