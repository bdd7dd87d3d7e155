//! The warden agent runtime.
//!
//! A [`Task`] (a goal, or an alert from [`Task::from_webhook`]) is planned
//! by a [`Planner`] ([`RunbookPlanner`] offline by default, then
//! [`CasePlanner`] from past incidents, or `LlmPlanner` (feature `llm`) on any
//! OpenAI-compatible endpoint), checked by the Rego policy as a plan and
//! call by call, sent to an [`Approver`] when the policy asks for a human,
//! and run as sandboxed plugin calls. Every event goes to a keyed, chained
//! [`Journal`] that [`verify_journal`] checks.
//!
//! Execution rules:
//! - Steps run in dependency order. Ready read-only steps run together
//!   (up to [`Budget::max_parallel`]); a mutating step runs alone.
//! - A failed read-only call is retried with exponential backoff and jitter;
//!   mutating calls never are.
//! - In a dry run mutating calls get `dry_run` in their call context, or are
//!   skipped with a note when the tool cannot dry-run.
//! - Budgets (steps, wall time, LLM tokens) and cancellation end the task
//!   cleanly, with the reason journaled.
//! - A mutating call carries an idempotency key, `<task>/<step>/<plan
//!   revision>`, sent as the `Idempotency-Key` header of its HTTP requests.
//! - With a [`Ledger`] (a cluster's record) a task taken over by another
//!   worker keeps its plan, replays committed steps, and ends a mutating
//!   step that was in flight as [`StepStatus::Unknown`], never calling it
//!   again; every ledger write is fenced.
//!
//! ```
//! use warden_agent::{Runbooks, Task};
//! use warden_types::{Effect, ToolManifest};
//!
//! let probe = ToolManifest {
//!     name: "http-probe".into(),
//!     version: "0.1.0".into(),
//!     description: "probe a URL".into(),
//!     input_schema: serde_json::json!({"type": "object", "required": ["url"],
//!         "properties": {"url": {"type": "string"}}}),
//!     output_schema: serde_json::json!({}),
//!     effect: Effect::ReadOnly,
//!     supports_dry_run: false,
//!     capabilities: vec![],
//! };
//! let yaml = "name: bad\nmatch: {keywords: [down]}\nsteps:\n  - id: probe\n    tool: http-probe\n    args: {uri: x}\n";
//! let err = Runbooks::parse("bad.yaml", yaml, &[probe]).unwrap_err();
//! assert!(err.to_string().contains("bad.yaml:4: step `probe`"), "{err}");
//! ```
//!
//! | feature | what it adds |
//! |---|---|
//! | `llm` | `LlmPlanner`: plans with any OpenAI-compatible model (async-openai) |
#![deny(missing_docs)]

mod agent;
mod alert;
mod approve;
mod case;
mod error;
mod executor;
mod journal;
mod limits;
#[cfg(feature = "llm")]
mod llm;
mod outbox;
mod planner;
mod runbook;
mod show;
mod task;
mod template;

pub use agent::{Agent, AgentBuilder, Budget};
pub use approve::{
    Approval, ApprovalRequest, ApprovalRequests, Approver, ChannelApprover, PreApproved, RejectAll,
    TerminalApprover, os_user,
};
pub use case::CasePlanner;
pub use error::AgentError;
pub use executor::{Decide, Ledger, Resume, StepKey, StoredStep, ToolCall};
pub use journal::{
    Anchor, ApprovalGiven, CallDecided, CallEnded, CapabilityDecided, Digest, HostKey, Journal,
    JournalEvent, JournalRecord, JournalTail, JournalTap, OutboxAttempted, OutcomeReached,
    PlanProposed, Problem, ProblemKind, RecalledCase, RecentMutations, TaskStarted, VerifyReport,
    read_journal, verify_journal,
};
pub use limits::{Input, Limits};
#[cfg(feature = "llm")]
pub use llm::LlmPlanner;
pub use planner::{Case, PlanContext, Planner, PlannerChain, Proposal};
pub use runbook::{Match, Runbook, RunbookPlanner, Runbooks};
pub use show::{TaskSummary, render_record, render_timeline, task_list, terminal_safe};
pub use task::{
    Alert, Condition, Observation, Outcome, OutcomeStatus, Plan, Step, StepStatus, Task,
};
pub use tokio_util::sync::CancellationToken;
