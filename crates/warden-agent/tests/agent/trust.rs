//! The one authorized, journaled path holds against the ways around it
//! that worked before: other spellings of `prod`, a missing environment,
//! self-approval, a journal that cannot be written, unjournaled
//! capabilities, and single calls outside a plan.

use warden_agent::{
    Approval, ChannelApprover, JournalEvent, OutcomeStatus, StepStatus, Task, ToolCall,
    read_journal,
};

use super::service::Service;
use super::{RUNBOOK, Setup, key};

#[tokio::test(flavor = "multi_thread")]
async fn every_spelling_of_prod_asks_for_approval() {
    let svc = Service::start().await;
    for (i, env) in ["Prod", "PROD", "production", "prod ", " prd"]
        .iter()
        .enumerate()
    {
        let s = Setup::new(RUNBOOK);
        let agent = s.builder().build().unwrap(); // nobody approves
        let task = Task::from_webhook(format!("t-{i}"), &svc.alert())
            .unwrap()
            .in_env(*env);
        let outcome = agent.run(task).await.unwrap();
        assert_eq!(outcome.env, "prod", "`{env}`");
        assert_eq!(
            outcome.observations[1].status,
            StepStatus::Rejected,
            "`{env}`: {outcome:?}"
        );
    }
    assert_eq!(
        svc.admin_calls(),
        0,
        "no spelling reached the admin endpoint"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_task_without_an_environment_runs_in_the_strictest_one() {
    let svc = Service::start().await;
    let s = Setup::new(RUNBOOK);
    let agent = s.builder().build().unwrap();
    let task = Task::from_webhook("t-default", &svc.alert()).unwrap();
    let outcome = agent.run(task).await.unwrap();
    assert_eq!(outcome.env, "prod");
    assert_eq!(outcome.observations[1].status, StepStatus::Rejected);
    assert_eq!(svc.admin_calls(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn nobody_approves_their_own_call_in_prod() {
    let svc = Service::start().await;
    let s = Setup::new(RUNBOOK);
    let (approver, mut requests) = ChannelApprover::new(4);
    tokio::spawn(async move {
        while let Some((request, reply)) = requests.recv().await {
            // The principal approving the work done on their own behalf.
            let _ = reply.send(Approval::yes(request.principal.clone()));
        }
    });
    let agent = s.builder().approver(approver).build().unwrap();
    let task = Task::from_webhook("t-self", &svc.alert())
        .unwrap()
        .by("alice")
        .in_env("prod");
    let outcome = agent.run(task).await.unwrap();
    assert_eq!(outcome.observations[1].status, StepStatus::Rejected);
    assert!(
        outcome.observations[1].reasons[0].contains("approval policy"),
        "{:?}",
        outcome.observations[1].reasons
    );
    assert_eq!(svc.admin_calls(), 0);
    let approval = s.first_approval();
    assert_eq!(approval.approver, "alice");
    assert_eq!(approval.principal, "alice");
    assert!(!approval.approved);
    assert!(
        approval.policy.is_some(),
        "the approval policy's decision is kept"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_journal_that_cannot_be_written_stops_the_task_before_the_tool_runs() {
    let svc = Service::start().await;
    let s = Setup::new(RUNBOOK);
    let (approver, mut requests) = ChannelApprover::new(4);
    let journal = s.journal.clone();
    tokio::spawn(async move {
        let (_request, reply) = requests.recv().await.unwrap();
        // While the human thinks, someone cuts the journal: the next
        // append (the approval itself) cannot extend the chain.
        fs_err::OpenOptions::new()
            .write(true)
            .open(&journal)
            .unwrap()
            .set_len(10)
            .unwrap();
        let _ = reply.send(Approval::yes("bob"));
    });
    let agent = s.builder().approver(approver).build().unwrap();
    let task = Task::from_webhook("t-cut", &svc.alert())
        .unwrap()
        .in_env("prod");
    let err = agent.run(task).await.unwrap_err().to_string();
    assert!(err.contains("journal"), "{err}");
    assert_eq!(svc.admin_calls(), 0, "no unjournaled action");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_capability_decision_is_journaled() {
    let svc = Service::start().await;
    let s = Setup::new(RUNBOOK);
    let agent = s.builder().build().unwrap();
    let outcome = agent
        .run(
            Task::from_webhook("t-caps", &svc.alert())
                .unwrap()
                .in_env("dev"),
        )
        .await
        .unwrap();
    assert!(outcome.is_resolved(), "{}", outcome.reason);
    let caps: Vec<_> = read_journal(&s.journal, &key())
        .unwrap()
        .into_iter()
        .filter_map(|r| match r.event {
            JournalEvent::Capability(c) => Some(c),
            _ => None,
        })
        .collect();
    // probe, remediate, validate: one HTTP request each.
    assert_eq!(caps.len(), 3, "{caps:?}");
    assert_eq!(caps[1].tool, "http-action");
    assert_eq!(caps[1].capability["kind"], "http");
    assert!(!caps[1].policy.input_hash.is_empty());
    assert!(!caps[1].policy.bundle_hash.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_single_call_takes_the_same_path_and_is_journaled() {
    let svc = Service::start().await;
    let s = Setup::new(RUNBOOK);
    let agent = s.builder().build().unwrap();
    let url = format!("http://{}/admin/restart", svc.addr);
    let call = ToolCall::new("http-action", serde_json::json!({"url": url}));
    // In prod, with nobody to approve: refused, and journaled as such.
    let outcome = agent
        .call(Task::goal("c-prod", "restart").in_env("PROD"), call.clone())
        .await
        .unwrap();
    assert_eq!(outcome.observations[0].status, StepStatus::Rejected);
    assert_eq!(svc.admin_calls(), 0);
    // In dev it runs.
    let outcome = agent
        .call(Task::goal("c-dev", "restart").in_env("dev"), call)
        .await
        .unwrap();
    assert_eq!(outcome.status, OutcomeStatus::Resolved, "{outcome:?}");
    assert_eq!(svc.admin_calls(), 1);
    let kinds: Vec<String> = read_journal(&s.journal, &key())
        .unwrap()
        .into_iter()
        .filter(|r| r.task_id == "c-dev")
        .map(|r| r.event.kind().to_string())
        .collect();
    assert_eq!(
        kinds,
        ["task", "decision", "capability", "call", "outcome"],
        "{kinds:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_change_limit_counts_calls_journaled_by_earlier_agents() {
    let svc = Service::start().await;
    let s = Setup::new(RUNBOOK);
    let policy = warden_policy::PolicyEngine::builder(super::policies())
        .with_data(serde_json::json!({"warden": {"config": {
            "max_mutations_per_hour": 1,
            "network": {"allowed_private_cidrs": {"dev": ["127.0.0.0/8"]}}}}}))
        .load()
        .unwrap();
    let url = format!("http://{}/admin/restart", svc.addr);
    let call = ToolCall::new("http-action", serde_json::json!({"url": url}));
    for (i, expected) in [
        StepStatus::Succeeded,
        StepStatus::Denied,
        StepStatus::Denied,
    ]
    .into_iter()
    .enumerate()
    {
        // A new agent each time, as a new process would be.
        let agent = s.builder().policy_engine(policy.clone()).build().unwrap();
        let outcome = agent
            .call(
                Task::goal(format!("lim-{i}"), "restart").in_env("dev"),
                call.clone(),
            )
            .await
            .unwrap();
        assert_eq!(
            outcome.observations[0].status, expected,
            "call {i}: {outcome:?}"
        );
    }
    assert_eq!(svc.admin_calls(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_absurd_step_timeout_is_capped_by_the_deadline_not_a_panic() {
    let svc = Service::start().await;
    let s = Setup::new(RUNBOOK);
    let agent = s.builder().build().unwrap();
    let mut call = ToolCall::new(
        "http-probe",
        serde_json::json!({"url": format!("http://{}/health", svc.addr)}),
    );
    call.timeout_secs = Some(1e20);
    let outcome = agent
        .call(Task::goal("c-huge", "probe").in_env("dev"), call)
        .await
        .unwrap();
    assert_eq!(
        outcome.observations[0].status,
        StepStatus::Succeeded,
        "{outcome:?}"
    );
}
