//! What the journal records: one typed event per line, shared by the writer
//! and every reader (`warden journal show`, `list`, the example agent, the
//! history the policy sees).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use warden_policy::DecisionRecord;
use warden_types::Effect;

use crate::task::{OutcomeStatus, Step, StepStatus};

/// One thing that happened in a task.
///
/// Serialised as `"kind": "<variant>", "data": {...}` inside the record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "data", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum JournalEvent {
    /// A task started.
    Task(TaskStarted),
    /// Similar past incidents were recalled.
    Recall {
        /// The cases, best first.
        cases: Vec<RecalledCase>,
    },
    /// A planner proposed steps, and the plan policy decided on them.
    Plan(PlanProposed),
    /// The policy decided one tool call (`data.warden.call`).
    Decision(CallDecided),
    /// The policy decided one capability a running call used
    /// (`data.warden.capability`).
    Capability(CapabilityDecided),
    /// A human (or an approver standing in for one) answered.
    Approval(ApprovalGiven),
    /// A tool call ended (or never started, with the reason).
    Call(CallEnded),
    /// A step was not run.
    Skip {
        /// Step id.
        step_id: String,
        /// Tool name.
        tool: String,
        /// Why not.
        reason: String,
    },
    /// A model was used for planning.
    Llm {
        /// Which planner.
        planner: String,
        /// Tokens used by this answer.
        tokens: u64,
        /// Estimated cost, when known.
        cost_usd: Option<f64>,
        /// Tokens used by the task so far.
        total_tokens: u64,
    },
    /// A task was stopped by a budget or cancelled.
    Stop {
        /// `stopped` or `cancelled`.
        status: OutcomeStatus,
        /// Why.
        reason: String,
    },
    /// A task ended.
    Outcome(OutcomeReached),
    /// A service received an alert notification (or a request) and did
    /// something with it: queued it, folded it into a task, stopped a task.
    Received {
        /// `alertmanager`, `azure-monitor`, `generic`, `api`, `chat`.
        source: String,
        /// The deduplication key (`am:<fingerprint>`, …); empty for goals.
        key: String,
        /// `firing`, `resolved`, or `goal`.
        status: String,
        /// `queued`, `duplicate`, `grouped`, `dropped` (resolved before it
        /// ran), `stopping` (resolved while it ran), `interrupted` (the
        /// service stopped while it ran), `recovered` (accepted, but the
        /// service stopped before journaling it; written at restart).
        disposition: String,
        /// Who sent it: the authenticated identity or the receiver.
        by: String,
    },
    /// A request a tool sent to an unreachable secret webhook was queued in
    /// the outbox; this is one attempt to deliver it, journaled under the
    /// task and step that sent it.
    Outbox(OutboxAttempted),
    /// A re-claimed task did not run a step again: its outcome was
    /// committed before, by this or another worker, and is replayed.
    Replayed {
        /// Step id.
        step_id: String,
        /// Tool name.
        tool: String,
        /// The committed status.
        status: StepStatus,
    },
    /// One commit of a task's chain, anchored in a cluster's global chain
    /// (the record's `task_id` is `-`).
    Anchored {
        /// The task whose chain was extended.
        task: String,
        /// How many records that task's chain holds now.
        records: u64,
        /// The MAC of its last record.
        head: String,
    },
    /// The writer found a torn last line (a crash mid-write after the last
    /// checkpoint) and moved it aside before continuing the chain.
    Recovered {
        /// How many bytes were torn off.
        torn_bytes: u64,
        /// SHA-256 of those bytes.
        sha256: String,
        /// Where they were moved.
        moved_to: String,
    },
}

impl JournalEvent {
    /// The record's `kind`: `task`, `recall`, `plan`, `decision`,
    /// `capability`, `approval`, `call`, `skip`, `llm`, `stop`, `outcome`,
    /// `received`, `outbox`, `recovered`, `replayed`, `anchored`.
    pub fn kind(&self) -> &'static str {
        match self {
            JournalEvent::Task(_) => "task",
            JournalEvent::Recall { .. } => "recall",
            JournalEvent::Plan(_) => "plan",
            JournalEvent::Decision(_) => "decision",
            JournalEvent::Capability(_) => "capability",
            JournalEvent::Approval(_) => "approval",
            JournalEvent::Call(_) => "call",
            JournalEvent::Skip { .. } => "skip",
            JournalEvent::Llm { .. } => "llm",
            JournalEvent::Stop { .. } => "stop",
            JournalEvent::Outcome(_) => "outcome",
            JournalEvent::Received { .. } => "received",
            JournalEvent::Outbox(_) => "outbox",
            JournalEvent::Recovered { .. } => "recovered",
            JournalEvent::Replayed { .. } => "replayed",
            JournalEvent::Anchored { .. } => "anchored",
        }
    }
}

/// The start of a task: who, where, what.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskStarted {
    /// The agent running it.
    pub agent: String,
    /// What to achieve.
    pub goal: String,
    /// Where it came from (`cli`, `alertmanager`, …).
    pub source: String,
    /// The canonical environment.
    pub env: String,
    /// On whose behalf.
    pub principal: String,
    /// The principal's roles.
    #[serde(default)]
    pub roles: Vec<String>,
    /// A break-glass ticket, when given.
    #[serde(default)]
    pub break_glass: Option<String>,
    /// The alert, when there is one (a large one shortened: head, size and
    /// SHA-256).
    #[serde(default)]
    pub alert: Option<Value>,
    /// Size and digest of each attachment (their content is not journaled).
    #[serde(default)]
    pub attachments: BTreeMap<String, Digest>,
}

/// Size and SHA-256 of a value kept out of the journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Digest {
    /// Bytes of its JSON text.
    pub bytes: u64,
    /// SHA-256 of its JSON text, hex.
    pub sha256: String,
}

/// A recalled past case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecalledCase {
    /// Incident id.
    pub id: String,
    /// Its title.
    pub title: String,
    /// Similarity.
    pub score: f32,
    /// How it was resolved.
    pub resolution: Option<String>,
    /// Whether its plan can be reused.
    pub has_plan: bool,
}

/// Steps a planner proposed, with the plan policy's decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanProposed {
    /// Which planner.
    pub planner: String,
    /// The planner's note.
    pub note: Option<String>,
    /// The steps as proposed (templates not rendered).
    pub steps: Vec<Step>,
    /// The policy's decision record, as the engine made it.
    pub policy: DecisionRecord,
}

/// The call policy's decision on one step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallDecided {
    /// Step id.
    pub step_id: String,
    /// Tool name.
    pub tool: String,
    /// The tool's declared effect.
    pub effect: Effect,
    /// Whether the call is a dry run.
    #[serde(default)]
    pub dry_run: bool,
    /// The policy's decision record, as the engine made it.
    pub policy: DecisionRecord,
}

impl CallDecided {
    /// An allowed change: counted against the change limits from the
    /// moment it is decided, so concurrent processes cannot both squeeze
    /// under a limit.
    pub fn is_allowed_change(&self) -> bool {
        self.effect != Effect::ReadOnly
            && !self.dry_run
            && self.policy.decision.verdict == warden_types::Verdict::Allow
    }
}

/// The capability policy's decision on one use inside a call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CapabilityDecided {
    /// Step id.
    pub step_id: String,
    /// Tool name.
    pub tool: String,
    /// What the tool asked for (`{"kind": "http", "method": …}`).
    pub capability: Value,
    /// The policy's decision record, as the engine made it.
    pub policy: DecisionRecord,
}

/// An answer to an approval request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalGiven {
    /// Step id.
    pub step_id: String,
    /// Tool name.
    pub tool: String,
    /// The tool's declared effect.
    pub effect: Effect,
    /// Whether the call is a dry run.
    #[serde(default)]
    pub dry_run: bool,
    /// Whether the call may go ahead (after the approval policy).
    pub approved: bool,
    /// Who answered: an identity the approver established (the OS user
    /// at a terminal, the identity an embedder passes), never the
    /// principal's word.
    pub approver: String,
    /// On whose behalf the work is done.
    pub principal: String,
    /// What the approver said.
    pub note: Option<String>,
    /// When.
    pub at: String,
    /// Why the policy asked.
    pub reasons: Vec<String>,
    /// The approval policy's decision (`data.warden.approve`) on a yes.
    pub policy: Option<DecisionRecord>,
}

/// How one call ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallEnded {
    /// Step id.
    pub step_id: String,
    /// Tool name.
    pub tool: String,
    /// The tool's declared effect.
    pub effect: Option<Effect>,
    /// How it ended.
    pub status: StepStatus,
    /// Attempts made (0: the tool never ran).
    pub attempts: u32,
    /// Whether it was a dry run.
    pub dry_run: bool,
    /// Wall time, all attempts.
    pub duration_us: u64,
    /// The arguments (large values shortened, with a digest).
    pub args: Value,
    /// The output (large values shortened, with a digest).
    pub output: Option<Value>,
    /// Why it did not succeed, or capability denials.
    pub reasons: Vec<String>,
}

/// How a task ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutcomeReached {
    /// The status.
    pub status: OutcomeStatus,
    /// Why.
    pub reason: String,
    /// The summary.
    pub summary: String,
    /// Which planner planned it.
    pub planner: String,
    /// Steps observed.
    pub steps: usize,
    /// LLM tokens used.
    pub tokens: u64,
    /// Estimated LLM cost.
    pub cost_usd: Option<f64>,
    /// Wall time.
    pub duration_ms: u64,
}

/// One delivery attempt of a queued request (the durable outbox).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxAttempted {
    /// The outbox entry (the `Idempotency-Key` it is sent with).
    pub id: String,
    /// The step that sent it.
    pub step_id: String,
    /// The tool that sent it.
    pub tool: String,
    /// The secret it goes to.
    pub secret: String,
    /// `delivered`, `retry` (it stays, due again at `next_at`) or
    /// `dropped` (it is gone: a 4xx, a denial, too old).
    pub outcome: String,
    /// The receiver's status, when it answered.
    pub status: Option<u16>,
    /// Attempts so far, this one included.
    pub attempts: u32,
    /// Why it was not delivered.
    pub reason: Option<String>,
    /// When it is due again (RFC 3339), for `retry`.
    pub next_at: Option<String>,
}
