//! The ledger: where a task's plan and the outcome of each of its steps
//! are kept, so that a task taken over by another worker (its first one
//! died, or lost its lease) resumes instead of starting again.
//!
//! The executor consults it at four points, all on the one authorized,
//! journaled path:
//! - **before planning**: a stored proposal is reused, so step ids and plan
//!   revisions (and with them idempotency keys) stay the same;
//! - **before each step**: a committed step is replayed (its outcome and
//!   output, without calling the tool); a mutating step that was in flight
//!   when its worker stopped ends [`StepStatus::Unknown`], is journaled and
//!   committed as such, and is never retried: the task ends unresolved for a
//!   human or a verify step to decide;
//! - **just before a mutating call**: the step is marked in flight;
//! - **after each step**: its outcome is committed, fenced. A worker that
//!   lost the task gets [`AgentError::Fenced`] and the task stops there,
//!   with no further effect.
//!
//! [`StepStatus::Unknown`]: crate::StepStatus::Unknown

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::AgentError;
use crate::journal::{JournalEvent, JournalTap, RecentMutations};
use crate::planner::Proposal;
use crate::task::Observation;

/// Which step of which plan: the idempotency key of its mutating calls.
///
/// ```
/// use warden_agent::StepKey;
/// let key = StepKey { task_id: "t-1".into(), step_id: "restart".into(), revision: 1 };
/// assert_eq!(key.idempotency_key(), "t-1/restart/1");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct StepKey {
    /// The task.
    pub task_id: String,
    /// The step's id in the plan.
    pub step_id: String,
    /// The plan revision that added the step: 1 for the first proposal, 2
    /// for the planner's next, … (0 for a single call outside a plan).
    pub revision: u32,
}

impl StepKey {
    /// `<task>/<step>/<revision>`: the same each time the task is claimed.
    pub fn idempotency_key(&self) -> String {
        format!("{}/{}/{}", self.task_id, self.step_id, self.revision)
    }
}

/// A decision made against the shared history (see [`Ledger::decide`]):
/// given the changes of the last hour, it returns the event to journal and
/// whether that event counts as a change (an allowed mutating call that is
/// not a dry run, or an approval of one).
pub type Decide<'a> = dyn FnMut(RecentMutations) -> (JournalEvent, bool) + Send + 'a;

/// What a ledger remembers of one step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum StoredStep {
    /// Its outcome was committed: replay it.
    Committed(Observation),
    /// A mutating call was marked in flight and no outcome followed.
    InFlight {
        /// The epoch of the worker that started it.
        epoch: u64,
    },
}

/// What a ledger holds for a task it has claimed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resume {
    /// The stored proposals, revision 1 first.
    pub plans: Vec<Proposal>,
    /// Stored steps by step id.
    pub steps: BTreeMap<String, StoredStep>,
}

/// Keeps a task's plan and step outcomes across workers; see the module
/// documentation. It also taps the agent's journal (set with
/// [`AgentBuilder::ledger`](crate::AgentBuilder::ledger)), so every record
/// of a task can be committed together with the step it belongs to.
///
/// Every write is fenced: it succeeds only while this worker still holds
/// the task, else it returns [`AgentError::Fenced`] and writes nothing.
///
/// ```
/// use std::sync::Mutex;
/// use warden_agent::{AgentError, JournalEvent, JournalTap, Ledger, Observation, Proposal, Resume, StepKey, StoredStep};
///
/// /// A ledger in memory, for one process.
/// #[derive(Default)]
/// struct Memory(Mutex<Resume>);
///
/// impl JournalTap for Memory {
///     fn appended(&self, _task: &str, _ts: &str, _event: &JournalEvent) {}
/// }
///
/// #[async_trait::async_trait]
/// impl Ledger for Memory {
///     async fn resume(&self, _task: &str) -> Result<Option<Resume>, AgentError> {
///         Ok(Some(self.0.lock().unwrap().clone()))
///     }
///     async fn save_plan(&self, _task: &str, _revision: u32, p: &Proposal) -> Result<(), AgentError> {
///         self.0.lock().unwrap().plans.push(p.clone());
///         Ok(())
///     }
///     async fn begin_step(&self, key: &StepKey) -> Result<(), AgentError> {
///         self.0.lock().unwrap().steps.insert(key.step_id.clone(), StoredStep::InFlight { epoch: 1 });
///         Ok(())
///     }
///     async fn commit_step(&self, key: &StepKey, obs: &Observation) -> Result<(), AgentError> {
///         self.0.lock().unwrap().steps.insert(key.step_id.clone(), StoredStep::Committed(obs.clone()));
///         Ok(())
///     }
/// }
/// ```
#[async_trait]
pub trait Ledger: JournalTap {
    /// What is stored for `task_id`, when this ledger holds the task;
    /// `None` runs the task without a ledger (it was not claimed through
    /// it: a single call, a task run outside the cluster).
    async fn resume(&self, task_id: &str) -> Result<Option<Resume>, AgentError>;

    /// Store a planner's proposal as plan revision `revision` (fenced).
    async fn save_plan(
        &self,
        task_id: &str,
        revision: u32,
        proposal: &Proposal,
    ) -> Result<(), AgentError>;

    /// Mark a mutating step in flight, just before its call (fenced).
    async fn begin_step(&self, key: &StepKey) -> Result<(), AgentError>;

    /// Commit a step's outcome, with the task's journal records so far
    /// (fenced).
    async fn commit_step(&self, key: &StepKey, obs: &Observation) -> Result<(), AgentError>;

    /// Decide against the history every worker shares, for a task this
    /// ledger holds: read the changes made in the last hour by `agent`, by
    /// `principal` and in `env` (`who`), let `decide` make the event, and
    /// count it when `decide` says it is a change, atomically across
    /// workers, so two workers cannot both take the last change under a
    /// rate limit. Returns the event, which the agent then journals.
    ///
    /// `decide` may run more than once (a retry after a lost connection);
    /// only its last result counts. The default returns `None` without
    /// calling it: the agent decides on its local journal's history
    /// ([`Journal::decide`](crate::Journal::decide)), which holds across the
    /// processes of one machine.
    async fn decide(
        &self,
        task_id: &str,
        who: (&str, &str, &str),
        decide: &mut Decide<'_>,
    ) -> Result<Option<JournalEvent>, AgentError> {
        let _ = (task_id, who, decide);
        Ok(None)
    }

    /// The task resolved and the agent remembers it as `incident` in its
    /// incident memory: a ledger shared by workers keeps it for the others
    /// (the default keeps nothing).
    fn learned(&self, task_id: &str, incident: &warden_memory::Incident) {
        let _ = (task_id, incident);
    }
}
