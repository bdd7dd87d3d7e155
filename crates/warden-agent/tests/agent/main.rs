//! The agent end to end: real plugins in the sandbox, the default policy
//! bundle, runbooks, approvals, budgets, cancellation and the journal.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test setup panics on failure"
)]

mod ledger;
mod llm;
mod ops;
mod outbox;
mod service;
mod trust;

use std::path::{Path, PathBuf};
use std::time::Duration;

use service::Service;
use test_plugins_artifacts as artifacts;
use warden_agent::{
    Agent, AgentBuilder, Approval, Budget, CancellationToken, ChannelApprover, HostKey,
    JournalEvent, OutcomeStatus, StepStatus, Task, VerifyReport, read_journal,
};
use warden_policy::PolicyEngine;
use warden_sandbox::{Sandbox, SandboxConfig};

const RUNBOOK: &str = warden_fakes::webhook::HEALTH_RUNBOOK;

fn policies() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies")
}

/// The default bundle, with loopback allowed in every environment the tests use.
fn policy() -> PolicyEngine {
    let cidrs = serde_json::json!(["127.0.0.0/8"]);
    PolicyEngine::builder(policies())
        .with_data(
            serde_json::json!({"warden": {"config": {"network": {"allowed_private_cidrs": {
            "dev": cidrs, "staging": cidrs, "prod": cidrs}}}}}),
        )
        .load()
        .unwrap()
}

/// The tests' host key: fixed, so no test touches the user's own key.
fn key() -> HostKey {
    HostKey::from_bytes([42; 32])
}

fn verify(journal: &Path) -> VerifyReport {
    warden_agent::verify_journal(journal, &key(), None).unwrap()
}

fn sandbox(timeout: Duration) -> Sandbox {
    let mut c = SandboxConfig::default();
    c.timeout(timeout).cache_dir(artifacts::PLUGIN_CACHE);
    Sandbox::new(&c).unwrap()
}

struct Setup {
    dir: tempfile::TempDir,
    journal: PathBuf,
}

impl Setup {
    fn new(runbook: &str) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        fs_err::create_dir(dir.path().join("runbooks")).unwrap();
        fs_err::write(dir.path().join("runbooks/health.yaml"), runbook).unwrap();
        let journal = dir.path().join("journal.jsonl");
        Setup { dir, journal }
    }

    fn builder(&self) -> AgentBuilder {
        let sb = sandbox(Duration::from_secs(10));
        Agent::builder()
            .plugin(sb.load_file(artifacts::PLUGIN_HTTP_PROBE).unwrap())
            .plugin(sb.load_file(artifacts::PLUGIN_HTTP_ACTION).unwrap())
            .policy_engine(policy())
            .runbooks(self.dir.path().join("runbooks"))
            .journal(&self.journal)
            .host_key(key())
    }

    /// The first approval the journal records.
    fn first_approval(&self) -> warden_agent::ApprovalGiven {
        read_journal(&self.journal, &key())
            .unwrap()
            .into_iter()
            .find_map(|r| match r.event {
                JournalEvent::Approval(a) => Some(a),
                _ => None,
            })
            .unwrap()
    }

    fn kinds(&self, task: &str) -> Vec<String> {
        read_journal(&self.journal, &key())
            .unwrap()
            .into_iter()
            .filter(|r| r.task_id == task)
            .map(|r| r.event.kind().to_string())
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_runbook_resolves_a_failing_service_and_the_journal_verifies() {
    let svc = Service::start().await;
    let s = Setup::new(RUNBOOK);
    let agent = s.builder().build().unwrap();
    let task = Task::from_webhook("t-1", &svc.alert())
        .unwrap()
        .in_env("dev");
    let outcome = agent.run(task).await.unwrap();

    assert_eq!(
        outcome.status,
        OutcomeStatus::Resolved,
        "{}",
        outcome.reason
    );
    assert_eq!(outcome.planner, "runbook:health");
    assert_eq!(svc.admin_calls(), 1);
    assert_eq!(outcome.summary, "health 503 -> 200");
    let steps: Vec<_> = outcome
        .observations
        .iter()
        .map(|o| (o.step_id.as_str(), o.status))
        .collect();
    assert_eq!(
        steps,
        vec![
            ("probe", StepStatus::Succeeded),
            ("remediate", StepStatus::Succeeded),
            ("validate", StepStatus::Succeeded)
        ]
    );
    assert!(verify(&s.journal).is_ok());
    let kinds = s.kinds("t-1");
    assert_eq!(kinds.first().map(String::as_str), Some("task"));
    assert_eq!(kinds.last().map(String::as_str), Some("outcome"));
    assert_eq!(kinds.iter().filter(|k| *k == "decision").count(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_healthy_service_is_left_alone() {
    let svc = Service::start().await;
    svc.state
        .healthy
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let s = Setup::new(RUNBOOK);
    let agent = s.builder().build().unwrap();
    let outcome = agent
        .run(
            Task::from_webhook("t-ok", &svc.alert())
                .unwrap()
                .in_env("dev"),
        )
        .await
        .unwrap();
    assert_eq!(
        outcome.status,
        OutcomeStatus::Resolved,
        "{}",
        outcome.reason
    );
    assert_eq!(svc.admin_calls(), 0);
    assert_eq!(outcome.observations[1].status, StepStatus::Skipped);
    assert_eq!(
        outcome.observations[2].status,
        StepStatus::Succeeded,
        "validation still runs"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn in_prod_the_remediation_waits_for_a_human_who_is_journaled() {
    let svc = Service::start().await;
    let s = Setup::new(RUNBOOK);
    let (approver, mut requests) = ChannelApprover::new(4);
    let asked = tokio::spawn(async move {
        let (request, reply) = requests.recv().await.unwrap();
        reply.send(Approval::yes("alice")).unwrap();
        request
    });
    let agent = s.builder().approver(approver).build().unwrap();
    let task = Task::from_webhook("t-prod", &svc.alert())
        .unwrap()
        .in_env("prod");
    let outcome = agent.run(task).await.unwrap();
    let request = asked.await.unwrap();

    assert_eq!(request.tool, "http-action");
    assert!(
        request.reasons.iter().any(|r| r.contains("prod")),
        "{:?}",
        request.reasons
    );
    assert_eq!(
        outcome.status,
        OutcomeStatus::Resolved,
        "{}",
        outcome.reason
    );
    assert_eq!(svc.admin_calls(), 1);
    let approval = s.first_approval();
    assert_eq!(approval.approver, "alice");
    assert!(
        approval.principal.starts_with("alertmanager"),
        "{}",
        approval.principal
    );
    assert!(approval.approved);
    assert!(!approval.at.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rejected_remediation_is_not_sent() {
    let svc = Service::start().await;
    let s = Setup::new(RUNBOOK);
    let agent = s.builder().build().unwrap(); // RejectAll by default
    let task = Task::from_webhook("t-no", &svc.alert())
        .unwrap()
        .in_env("prod");
    let outcome = agent.run(task).await.unwrap();
    assert_eq!(outcome.status, OutcomeStatus::Unresolved);
    assert_eq!(outcome.observations[1].status, StepStatus::Rejected);
    assert_eq!(outcome.observations[2].status, StepStatus::Skipped);
    assert_eq!(svc.admin_calls(), 0);
    assert!(outcome.reason.contains("rejected"), "{}", outcome.reason);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dry_run_reports_the_remediation_without_sending_it() {
    let svc = Service::start().await;
    let s = Setup::new(RUNBOOK);
    let agent = s.builder().dry_run(true).build().unwrap();
    let outcome = agent
        .run(
            Task::from_webhook("t-dry", &svc.alert())
                .unwrap()
                .in_env("dev"),
        )
        .await
        .unwrap();
    assert_eq!(svc.admin_calls(), 0);
    let remediate = &outcome.observations[1];
    assert!(remediate.dry_run);
    assert_eq!(remediate.output.as_ref().unwrap()["dry_run"], true);
    assert_eq!(
        outcome.status,
        OutcomeStatus::Unresolved,
        "validation sees the service still down"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_task_in_an_unknown_environment_is_refused_with_the_known_ones() {
    let svc = Service::start().await;
    let s = Setup::new(RUNBOOK);
    let agent = s.builder().build().unwrap();
    let task = Task::from_webhook("t-noenv", &svc.alert())
        .unwrap()
        .in_env("qa");
    let outcome = agent.run(task).await.unwrap();
    assert_eq!(outcome.status, OutcomeStatus::Refused, "{outcome:?}");
    assert!(outcome.observations.is_empty());
    for known in ["dev", "staging", "prod"] {
        assert!(outcome.reason.contains(known), "{}", outcome.reason);
    }
    assert_eq!(svc.admin_calls(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn read_only_steps_run_at_the_same_time() {
    let svc = Service::start().await;
    let s = Setup::new(
        r#"
name: together
match: {labels: {alertname: ServiceHealthCheckFailing}}
steps:
  - {id: a, tool: http-probe, args: {url: "{{ alert.annotations.barrier_url }}"}}
  - {id: b, tool: http-probe, args: {url: "{{ alert.annotations.barrier_url }}"}}
"#,
    );
    let agent = s.builder().build().unwrap();
    let outcome = agent
        .run(
            Task::from_webhook("t-par", &svc.alert())
                .unwrap()
                .in_env("dev"),
        )
        .await
        .unwrap();
    for o in &outcome.observations {
        // The barrier answers 200 only when both requests are in flight together.
        assert_eq!(o.output.as_ref().unwrap()["status"], 200, "{o:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_step_budget_stops_the_task_cleanly() {
    let svc = Service::start().await;
    let s = Setup::new(RUNBOOK);
    let agent = s
        .builder()
        .budget(Budget {
            max_steps: 1,
            ..Budget::default()
        })
        .build()
        .unwrap();
    let outcome = agent
        .run(
            Task::from_webhook("t-budget", &svc.alert())
                .unwrap()
                .in_env("dev"),
        )
        .await
        .unwrap();
    assert_eq!(outcome.status, OutcomeStatus::Stopped);
    assert!(
        outcome.reason.contains("step budget of 1"),
        "{}",
        outcome.reason
    );
    assert_eq!(svc.admin_calls(), 0);
    assert!(s.kinds("t-budget").contains(&"stop".to_string()));
    assert!(verify(&s.journal).is_ok());
}

const HANG: &str = r#"
name: hang
match: {keywords: [hang]}
steps:
  - {id: spin, tool: loop-forever, args: {}}
"#;

fn hang_agent(s: &Setup, timeout: Duration, retries: u32) -> Agent {
    let sb = sandbox(timeout);
    Agent::builder()
        .plugin(sb.load_file(artifacts::LOOP_FOREVER).unwrap())
        .policy_engine(policy())
        .runbooks(s.dir.path().join("runbooks"))
        .journal(&s.journal)
        .host_key(key())
        .budget(Budget {
            retries,
            retry_base: Duration::from_millis(10),
            ..Budget::default()
        })
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_read_only_tool_that_times_out_is_retried_then_fails() {
    let s = Setup::new(HANG);
    let agent = hang_agent(&s, Duration::from_millis(200), 1);
    let outcome = agent
        .run(Task::goal("t-hang", "hang please").in_env("dev"))
        .await
        .unwrap();
    let spin = &outcome.observations[0];
    assert_eq!(spin.status, StepStatus::Failed);
    assert_eq!(spin.attempts, 2);
    assert!(
        spin.reasons[0].contains("deadline") || spin.reasons[0].contains("time"),
        "{:?}",
        spin.reasons
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn cancelling_ends_the_task_and_journals_it() {
    let s = Setup::new(HANG);
    let agent = hang_agent(&s, Duration::from_secs(30), 0);
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        trigger.cancel();
    });
    let outcome = agent
        .run_until(Task::goal("t-cancel", "hang please").in_env("dev"), cancel)
        .await
        .unwrap();
    assert_eq!(outcome.status, OutcomeStatus::Cancelled, "{outcome:?}");
    let kinds = s.kinds("t-cancel");
    assert_eq!(kinds.last().map(String::as_str), Some("outcome"));
    assert!(kinds.contains(&"stop".to_string()));
    assert!(verify(&s.journal).is_ok());
}

#[test]
fn runbook_problems_are_reported_with_file_and_line() {
    let s = Setup::new(
        "name: broken\nmatch: {keywords: [x]}\nsteps:\n  - id: probe\n    tool: http-probe\n    args: {uri: 'http://x'}\n  - id: fix\n    tool: restart-everything\n    depends_on: [later]\n",
    );
    let err = s.builder().build().unwrap_err().to_string();
    let file = s.dir.path().join("runbooks/health.yaml");
    let file = file.display();
    assert!(
        err.contains(&format!(
            "{file}:4: step `probe`: arguments for `http-probe`"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!("{file}:7: step `fix`: depends on `later`")),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "{file}:7: step `fix`: unknown tool `restart-everything`"
        )),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_resolved_incident_is_remembered_and_its_plan_reused_for_a_similar_alert() {
    let mem_dir = tempfile::tempdir().unwrap();
    let first = Service::start().await;
    let s = Setup::new(RUNBOOK);
    {
        let memory = warden_memory::Memory::open(mem_dir.path()).unwrap();
        let agent = s.builder().memory(memory).build().unwrap();
        let outcome = agent
            .run(
                Task::from_webhook("t-first", &first.alert())
                    .unwrap()
                    .in_env("dev"),
            )
            .await
            .unwrap();
        assert!(outcome.is_resolved(), "{}", outcome.reason);
    }
    // No runbooks this time: only the remembered case can plan.
    let second = Service::start().await;
    let sb = sandbox(Duration::from_secs(10));
    let memory = warden_memory::Memory::open(mem_dir.path()).unwrap();
    let agent = Agent::builder()
        .plugin(sb.load_file(artifacts::PLUGIN_HTTP_PROBE).unwrap())
        .plugin(sb.load_file(artifacts::PLUGIN_HTTP_ACTION).unwrap())
        .policy_engine(policy())
        .memory(memory)
        .journal(&s.journal)
        .host_key(key())
        .build()
        .unwrap();
    let outcome = agent
        .run(
            Task::from_webhook("t-second", &second.alert())
                .unwrap()
                .in_env("dev"),
        )
        .await
        .unwrap();
    assert_eq!(outcome.planner, "case:warden:t-first");
    assert!(outcome.is_resolved(), "{}", outcome.reason);
    assert_eq!(
        second.admin_calls(),
        1,
        "the reused plan targets the new alert's service"
    );
    assert_eq!(first.admin_calls(), 1);
}
