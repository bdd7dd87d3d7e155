//! The ledger hook: a re-claimed task replays committed steps, a mutating
//! call in flight when its worker died ends `unknown`, and a fenced-out
//! worker stops with no further effect.

use std::sync::{Arc, Mutex};

use warden_agent::{
    AgentError, JournalEvent, JournalTap, Ledger, Observation, OutcomeStatus, Proposal, Resume,
    StepKey, StepStatus, StoredStep, Task,
};

use super::service::Service;
use super::{RUNBOOK, Setup};

/// A ledger in memory. `die_at` makes the commit of that step fail as if
/// the worker had been fenced out (or died) after starting it.
#[derive(Default)]
struct MemLedger {
    state: Mutex<Resume>,
    die_at: Mutex<Option<String>>,
    /// Journal kinds the tap heard, by task.
    heard: Mutex<Vec<String>>,
}

impl MemLedger {
    fn dying_at(step: &str) -> Arc<MemLedger> {
        let l = MemLedger::default();
        *l.die_at.lock().unwrap() = Some(step.into());
        Arc::new(l)
    }

    /// A ledger for the next worker: the same state, nothing dying.
    fn take_over(&self) -> Arc<MemLedger> {
        let next = MemLedger::default();
        *next.state.lock().unwrap() = self.state.lock().unwrap().clone();
        Arc::new(next)
    }
}

impl JournalTap for MemLedger {
    fn appended(&self, _task: &str, _ts: &str, event: &JournalEvent) {
        self.heard.lock().unwrap().push(event.kind().to_string());
    }
}

#[async_trait::async_trait]
impl Ledger for MemLedger {
    async fn resume(&self, _task: &str) -> Result<Option<Resume>, AgentError> {
        Ok(Some(self.state.lock().unwrap().clone()))
    }
    async fn save_plan(&self, _task: &str, revision: u32, p: &Proposal) -> Result<(), AgentError> {
        let mut s = self.state.lock().unwrap();
        assert_eq!(revision as usize, s.plans.len() + 1);
        s.plans.push(p.clone());
        Ok(())
    }
    async fn begin_step(&self, key: &StepKey) -> Result<(), AgentError> {
        self.state
            .lock()
            .unwrap()
            .steps
            .insert(key.step_id.clone(), StoredStep::InFlight { epoch: 1 });
        Ok(())
    }
    async fn commit_step(&self, key: &StepKey, obs: &Observation) -> Result<(), AgentError> {
        if self.die_at.lock().unwrap().as_deref() == Some(key.step_id.as_str()) {
            return Err(AgentError::Fenced {
                task: key.task_id.clone(),
                epoch: 1,
            });
        }
        self.state
            .lock()
            .unwrap()
            .steps
            .insert(key.step_id.clone(), StoredStep::Committed(obs.clone()));
        Ok(())
    }
}

fn task(svc: &Service) -> Task {
    Task::from_webhook("t-l", &svc.alert())
        .unwrap()
        .in_env("dev")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reclaimed_task_replays_committed_steps_without_calling_the_tool_again() {
    let svc = Service::start().await;
    let s = Setup::new(RUNBOOK);
    let first = Arc::new(MemLedger::default());
    let agent = s.builder().ledger(first.clone()).build().unwrap();
    let outcome = agent.run(task(&svc)).await.unwrap();
    assert_eq!(
        outcome.status,
        OutcomeStatus::Resolved,
        "{}",
        outcome.reason
    );
    assert_eq!(svc.admin_calls(), 1);
    assert_eq!(
        *svc.state.keys.lock().unwrap(),
        [Some("t-l/remediate/1".to_string())],
        "the mutating call carries its idempotency key"
    );
    assert!(first.heard.lock().unwrap().contains(&"call".to_string()));

    // Another worker takes the task over after every step was committed.
    let next = first.take_over();
    let agent = s.builder().ledger(next).build().unwrap();
    let again = agent.run(task(&svc)).await.unwrap();
    assert_eq!(again.status, OutcomeStatus::Resolved, "{}", again.reason);
    assert_eq!(svc.admin_calls(), 1, "the restart was not sent again");
    assert_eq!(again.summary, outcome.summary, "outputs were replayed");
    let kinds = s.kinds("t-l");
    assert_eq!(
        kinds.iter().filter(|k| *k == "replayed").count(),
        3,
        "{kinds:?}"
    );
    assert_eq!(
        kinds.iter().filter(|k| *k == "plan").count(),
        2,
        "the stored plan is checked by the plan policy again, not re-planned"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_mutating_call_in_flight_when_its_worker_died_ends_unknown_and_is_not_sent_again() {
    let svc = Service::start().await;
    let s = Setup::new(RUNBOOK);
    // The first worker sends the restart, then dies before committing it.
    let dying = MemLedger::dying_at("remediate");
    let agent = s.builder().ledger(dying.clone()).build().unwrap();
    let err = agent.run(task(&svc)).await.unwrap_err();
    assert!(matches!(err, AgentError::Fenced { .. }), "{err}");
    assert_eq!(svc.admin_calls(), 1);

    let next = dying.take_over();
    let agent = s.builder().ledger(next.clone()).build().unwrap();
    let outcome = agent.run(task(&svc)).await.unwrap();
    assert_eq!(svc.admin_calls(), 1, "an in-flight call is never retried");
    assert_eq!(outcome.status, OutcomeStatus::Unresolved);
    let statuses: Vec<_> = outcome
        .observations
        .iter()
        .map(|o| (o.step_id.as_str(), o.status))
        .collect();
    assert_eq!(
        statuses,
        [
            ("probe", StepStatus::Succeeded),
            ("remediate", StepStatus::Unknown),
            ("validate", StepStatus::Skipped)
        ]
    );
    assert!(outcome.reason.contains("unknown"), "{}", outcome.reason);
    // The unknown outcome is journaled and committed, so a third worker
    // replays it instead of deciding again.
    assert!(matches!(
        next.state.lock().unwrap().steps.get("remediate"),
        Some(StoredStep::Committed(o)) if o.status == StepStatus::Unknown
    ));
    let unknown_calls = warden_agent::read_journal(&s.journal, &super::key())
        .unwrap()
        .into_iter()
        .filter(|r| matches!(&r.event, JournalEvent::Call(c) if c.status == StepStatus::Unknown))
        .count();
    assert_eq!(unknown_calls, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fenced_out_worker_stops_the_task_before_any_further_effect() {
    let svc = Service::start().await;
    let s = Setup::new(RUNBOOK);
    // The probe's commit finds the task taken over.
    let fenced = MemLedger::dying_at("probe");
    let agent = s.builder().ledger(fenced).build().unwrap();
    let err = agent.run(task(&svc)).await.unwrap_err();
    assert!(
        matches!(err, AgentError::Fenced { ref task, epoch: 1 } if task == "t-l"),
        "{err}"
    );
    assert_eq!(
        svc.admin_calls(),
        0,
        "the restart after the probe never ran"
    );
    assert!(
        !s.kinds("t-l").contains(&"outcome".to_string()),
        "a fenced-out worker does not end the task"
    );
}
