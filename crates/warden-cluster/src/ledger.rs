//! The agent's [`Ledger`] on the record: a worker's held tasks, their
//! journal records waiting for the next fenced commit, and the commits.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use warden::journal::{HostKey, JournalEvent, JournalTap};
use warden::memory::Incident;
use warden::{
    AgentError, Decide, Ledger, Observation, Outcome, Proposal, Resume, StepKey, StoredStep,
};

use crate::error::ClusterError;
use crate::record::{Claim, Commit, Fence, Finish, Record, StepRow};

/// How long a commit is retried while PostgreSQL cannot be reached.
const RETRY_FOR: Duration = Duration::from_secs(60);

/// A worker's ledger: the tasks it holds, fenced writes to the [`Record`],
/// and every journal record of a held task, copied from the agent's
/// journal (the ledger taps it) into the task's chain in PostgreSQL with
/// the next commit.
///
/// ```no_run
/// # async fn demo(agent_builder: warden::AgentBuilder) -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use warden_cluster::{ClusterLedger, Record};
///
/// let record = Arc::new(Record::connect("host=127.0.0.1 user=warden dbname=warden").await?);
/// let key = warden::journal::HostKey::from_bytes([7; 32]);
/// let ledger = Arc::new(ClusterLedger::new(record, "worker-1", key));
/// let agent = agent_builder.ledger(ledger.clone()).build()?;
/// # Ok(()) }
/// ```
pub struct ClusterLedger {
    record: Arc<Record>,
    owner: String,
    key: HostKey,
    held: Mutex<HashMap<String, Held>>,
}

impl std::fmt::Debug for ClusterLedger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterLedger")
            .field("owner", &self.owner)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct Held {
    fence: Fence,
    /// Fenced commits made for the task so far.
    commits: u64,
    /// Journal records not committed yet.
    records: Vec<(String, JournalEvent)>,
    /// The incident the agent remembered when the task resolved, stored
    /// for the other workers once the task's end is committed.
    incident: Option<Incident>,
}

fn agent_err(e: ClusterError) -> AgentError {
    match e {
        ClusterError::Fenced { task, epoch } => AgentError::Fenced { task, epoch },
        ClusterError::Task { task, why } => AgentError::Ledger { task, reason: why },
        other => AgentError::Ledger {
            task: String::new(),
            reason: other.to_string(),
        },
    }
}

impl ClusterLedger {
    /// A ledger for worker `owner` on `record`, sealing journal records
    /// under `key` (the host key every worker of the cluster shares).
    pub fn new(record: Arc<Record>, owner: impl Into<String>, key: HostKey) -> ClusterLedger {
        ClusterLedger {
            record,
            owner: owner.into(),
            key,
            held: Mutex::new(HashMap::new()),
        }
    }

    /// The worker's id.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// The record it writes to.
    pub fn record(&self) -> &Arc<Record> {
        &self.record
    }

    fn held(&self) -> std::sync::MutexGuard<'_, HashMap<String, Held>> {
        // A poisoned map only means a tap panicked mid-push; the data is
        // still a map of holds.
        self.held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Claim the oldest runnable task for `lease` and hold it.
    pub async fn claim(&self, lease: Duration) -> Result<Option<Claim>, ClusterError> {
        let claim = self.record.claim(&self.owner, lease).await?;
        if let Some(c) = &claim {
            self.held().insert(
                c.fence.task.clone(),
                Held {
                    fence: c.fence.clone(),
                    commits: c.commits,
                    records: Vec::new(),
                    incident: None,
                },
            );
        }
        Ok(claim)
    }

    /// Extend the lease on a held task.
    pub async fn renew(&self, fence: &Fence, lease: Duration) -> Result<(), ClusterError> {
        self.record.renew(fence, lease).await
    }

    /// Forget a task (it ended, or this worker lost it).
    pub fn release(&self, task: &str) {
        self.held().remove(task);
    }

    /// Record how the task ended (fenced): `unknown` when a step's outcome
    /// is, else `done`. The task is released either way.
    pub async fn finish(&self, outcome: &Outcome) -> Result<Finish, ClusterError> {
        let finish = if outcome
            .observations
            .iter()
            .any(|o| o.status == warden::StepStatus::Unknown)
        {
            Finish::Unknown
        } else {
            Finish::Done
        };
        let value = serde_json::to_value(outcome).map_err(|e| ClusterError::Task {
            task: outcome.task_id.clone(),
            why: e.to_string(),
        })?;
        let result = self
            .commit(
                &outcome.task_id,
                Commit {
                    finish: Some((finish, value)),
                    ..Commit::default()
                },
            )
            .await;
        let incident = self
            .held()
            .get_mut(&outcome.task_id)
            .and_then(|h| h.incident.take());
        self.release(&outcome.task_id);
        result?;
        if let Some(incident) = incident {
            self.share_incident(&outcome.task_id, &incident).await;
        }
        Ok(finish)
    }

    /// Store a resolved incident for the other workers' memories, retried
    /// for a while; one that cannot be stored is logged (this worker's own
    /// memory has it, and the task's end is committed either way).
    async fn share_incident(&self, task: &str, incident: &Incident) {
        let started = Instant::now();
        let mut pause = Duration::from_millis(50);
        loop {
            match self.record.put_incident(task, incident).await {
                Ok(()) => return,
                Err(e @ ClusterError::Postgres { .. }) if started.elapsed() < RETRY_FOR => {
                    tracing::warn!(task, error = %e, "storing the incident failed; retrying");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(1));
                }
                Err(e) => {
                    tracing::warn!(task, error = %e, "the other workers will not recall this incident");
                    return;
                }
            }
        }
    }

    /// Record that a run of a held task failed with `error` (an agent
    /// error, not a fence). With `last` (the task used its last attempt)
    /// the task ends `failed`, its outcome `{"error", "attempts"}`, in one
    /// fenced commit with its pending journal records; otherwise the error
    /// is kept as the task's `last_error` and the task runs again once its
    /// lease runs out. The task is released either way.
    pub async fn fail(
        &self,
        task: &str,
        error: &str,
        attempts: u32,
        last: bool,
    ) -> Result<(), ClusterError> {
        let result = if last {
            let outcome = serde_json::json!({ "error": error, "attempts": attempts });
            self.commit(
                task,
                Commit {
                    finish: Some((Finish::Failed, outcome)),
                    ..Commit::default()
                },
            )
            .await
        } else {
            let fence = self.held().get(task).map(|h| h.fence.clone());
            match fence {
                Some(fence) => self.record.note_failure(&fence, error).await,
                None => Err(ClusterError::Task {
                    task: task.to_string(),
                    why: "this worker does not hold the task".into(),
                }),
            }
        };
        self.release(task);
        result
    }

    /// One fenced commit with the task's pending journal records, retried
    /// (for up to a minute) while PostgreSQL cannot be reached; a fenced-out
    /// or unknown task is not retried.
    async fn commit(&self, task: &str, mut commit: Commit) -> Result<(), ClusterError> {
        let (fence, done, taken) = {
            let held = self.held();
            let h = held.get(task).ok_or_else(|| ClusterError::Task {
                task: task.to_string(),
                why: "this worker does not hold the task".into(),
            })?;
            commit.records = h.records.clone();
            (h.fence.clone(), h.commits, h.records.len())
        };
        let started = Instant::now();
        let mut pause = Duration::from_millis(50);
        loop {
            match self.record.commit(&fence, done, &self.key, &commit).await {
                Ok(()) => break,
                Err(e @ ClusterError::Postgres { .. }) if started.elapsed() < RETRY_FOR => {
                    tracing::warn!(task, error = %e, "fenced commit failed; retrying");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(1));
                }
                Err(e) => return Err(e),
            }
        }
        if let Some(h) = self.held().get_mut(task) {
            h.commits += 1;
            h.records.drain(..taken.min(h.records.len()));
        }
        Ok(())
    }

    /// Commit a step's row: in flight (`obs` none) or its outcome.
    async fn commit_step_row(
        &self,
        key: &StepKey,
        obs: Option<&Observation>,
    ) -> Result<(), AgentError> {
        let step = self.step_row(key, obs)?;
        self.commit(
            &key.task_id,
            Commit {
                step: Some(step),
                ..Commit::default()
            },
        )
        .await
        .map_err(agent_err)
    }

    fn step_row(&self, key: &StepKey, obs: Option<&Observation>) -> Result<StepRow, AgentError> {
        let epoch = self
            .held()
            .get(&key.task_id)
            .map(|h| h.fence.epoch)
            .unwrap_or_default();
        let observation =
            obs.map(serde_json::to_value)
                .transpose()
                .map_err(|e| AgentError::Ledger {
                    task: key.task_id.clone(),
                    reason: e.to_string(),
                })?;
        Ok(StepRow {
            step_id: key.step_id.clone(),
            revision: key.revision,
            status: obs.map(|o| o.status.as_str().to_string()),
            observation,
            in_flight: obs.is_none(),
            epoch,
        })
    }
}

impl JournalTap for ClusterLedger {
    fn appended(&self, task_id: &str, ts: &str, event: &JournalEvent) {
        if let Some(h) = self.held().get_mut(task_id) {
            h.records.push((ts.to_string(), event.clone()));
        }
    }
}

#[async_trait]
impl Ledger for ClusterLedger {
    async fn resume(&self, task_id: &str) -> Result<Option<Resume>, AgentError> {
        if !self.held().contains_key(task_id) {
            return Ok(None);
        }
        let (plans, rows) = self.record.stored(task_id).await.map_err(agent_err)?;
        let bad = |e: serde_json::Error| AgentError::Ledger {
            task: task_id.to_string(),
            reason: format!("a stored plan or step does not read back: {e}"),
        };
        let plans = plans
            .into_iter()
            .map(serde_json::from_value::<Proposal>)
            .collect::<Result<Vec<_>, _>>()
            .map_err(bad)?;
        let mut steps = BTreeMap::new();
        for row in rows {
            let stored = match row.observation {
                Some(o) => StoredStep::Committed(serde_json::from_value(o).map_err(bad)?),
                None if row.in_flight => StoredStep::InFlight { epoch: row.epoch },
                None => continue,
            };
            steps.insert(row.step_id, stored);
        }
        Ok(Some(Resume { plans, steps }))
    }

    async fn save_plan(
        &self,
        task_id: &str,
        revision: u32,
        proposal: &Proposal,
    ) -> Result<(), AgentError> {
        let value = serde_json::to_value(proposal).map_err(|e| AgentError::Ledger {
            task: task_id.to_string(),
            reason: e.to_string(),
        })?;
        self.commit(
            task_id,
            Commit {
                plan: Some((revision, value)),
                ..Commit::default()
            },
        )
        .await
        .map_err(agent_err)
    }

    async fn begin_step(&self, key: &StepKey) -> Result<(), AgentError> {
        self.commit_step_row(key, None).await
    }

    async fn commit_step(&self, key: &StepKey, obs: &Observation) -> Result<(), AgentError> {
        self.commit_step_row(key, Some(obs)).await
    }

    fn learned(&self, task_id: &str, incident: &Incident) {
        if let Some(h) = self.held().get_mut(task_id) {
            h.incident = Some(incident.clone());
        }
    }

    /// The rate-limit history every worker shares ([`Record::decide`]),
    /// fenced: a worker that lost the task cannot count a change. Retried
    /// like a commit while PostgreSQL cannot be reached; a retry after a
    /// lost reply may count one change twice (the limit errs on the safe
    /// side).
    async fn decide(
        &self,
        task_id: &str,
        who: (&str, &str, &str),
        decide: &mut Decide<'_>,
    ) -> Result<Option<JournalEvent>, AgentError> {
        let Some(fence) = self.held().get(task_id).map(|h| h.fence.clone()) else {
            return Ok(None);
        };
        let started = Instant::now();
        let mut pause = Duration::from_millis(50);
        loop {
            match self.record.decide(&fence, who, &mut *decide).await {
                Ok(event) => return Ok(Some(event)),
                Err(e @ ClusterError::Postgres { .. }) if started.elapsed() < RETRY_FOR => {
                    tracing::warn!(task = task_id, error = %e, "shared decision failed; retrying");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(1));
                }
                Err(e) => return Err(agent_err(e)),
            }
        }
    }
}
