//! warden: agents that touch real infrastructure without being trusted
//! blindly.
//!
//! An [`Agent`] takes a [`Task`] (a goal, or an alert from
//! [`Task::from_webhook`]), recalls similar incidents, plans (runbooks
//! offline by default, past cases, or a model), and takes every tool call
//! down one path: the Rego policy decides, a human approves where it asks
//! ([`Approver`]), the tool runs as a sandboxed WebAssembly component whose
//! every capability the policy decides again, and each of these is written
//! to a keyed, chained [`journal`] before the next happens. [`Agent::call`]
//! runs a single call on the same path.
//!
//! ```no_run
//! use warden::{Agent, RejectAll, Task};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let agent = Agent::builder()
//!     .plugins(".warden/plugins")
//!     .policy("policies")
//!     .runbooks("examples/runbooks")
//!     .approver(RejectAll)
//!     .journal(".warden/journal.jsonl")
//!     .build()?;
//! let alert = serde_json::from_str(&std::fs::read_to_string("alert.json")?)?;
//! let task = Task::from_webhook("inc-42", &alert)?.in_env("staging");
//! let outcome = agent.run(task).await?;
//! println!("{}: {}", outcome.status.as_str(), outcome.summary);
//! # Ok(()) }
//! ```
//!
//! | module | what is in it |
//! |---|---|
//! | (root) | [`Agent`] and its builder, tasks, outcomes, approvers, planners |
//! | [`journal`] | the keyed journal: events, verification, anchors, the host key |
//! | [`policy`] | the Rego engine, environments, decisions, bundle tests |
//! | [`sandbox`] | plugin loading, limits, the ARM capability hook |
//! | [`memory`] | incident memory: store, embeddings, index, clusters |
//! | [`types`] | manifests, effects, capabilities and decisions |
//! | `azure` | (feature `azure`) Azure Resource Manager behind the sandbox |
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `llm` | yes | [`LlmPlanner`]: plans with any OpenAI-compatible model |
//! | `compile` | yes | Cranelift: plugins compile on this host, and `sandbox::Precompiler` precompiles them for others; without it only precompiled plugins load (edge builds) |
//! | `cross` | no | `compile` for other architectures too: `warden plugin build --target aarch64-unknown-linux-gnu` |
//! | `azure` | no | the `azure` module: the ARM capability from the environment |
//! | `fastembed` | no | a sentence-embedding model for incident memory, from local files |
//!
//! `examples/embed.rs` shows a custom tool and approver linked into your own
//! program.
#![deny(missing_docs)]

#[cfg(feature = "llm")]
pub use warden_agent::LlmPlanner;
pub use warden_agent::{
    Agent, AgentBuilder, AgentError, Alert, Approval, ApprovalRequest, ApprovalRequests, Approver,
    Budget, CancellationToken, Case, CasePlanner, ChannelApprover, Condition, Decide, Input,
    Ledger, Limits, Match, Observation, Outcome, OutcomeStatus, Plan, PlanContext, Planner,
    PlannerChain, PreApproved, Proposal, RejectAll, Resume, Runbook, RunbookPlanner, Runbooks,
    Step, StepKey, StepStatus, StoredStep, Task, TerminalApprover, ToolCall, os_user,
    terminal_safe,
};

/// The keyed, chained journal: what happened, verifiably.
pub mod journal {
    pub use warden_agent::{
        Anchor, ApprovalGiven, CallDecided, CallEnded, CapabilityDecided, Digest, HostKey, Journal,
        JournalEvent, JournalRecord, JournalTail, JournalTap, OutboxAttempted, OutcomeReached,
        PlanProposed, Problem, ProblemKind, RecalledCase, RecentMutations, TaskStarted,
        TaskSummary, VerifyReport, read_journal, render_record, render_timeline, task_list,
        verify_journal,
    };
}

/// WebAssembly tool plugins: loading, limits, calls.
pub mod sandbox {
    #[cfg(feature = "compile")]
    pub use warden_sandbox::Precompiler;
    pub use warden_sandbox::{
        ArmBackend, CallOutput, Delivery, DeliveryOutcome, DeliveryPass, Denial, EngineId,
        InstanceAllocation, OUTBOX_BODY_LIMIT, Outbox, OutboxEntry, Plugin, Sandbox, SandboxConfig,
        SandboxError, ToolErrorKind, plugin_files,
    };
}

/// Rego policy decisions.
pub mod policy {
    pub use warden_policy::{
        BundleSummary, DecisionRecord, Entry, Environments, Explanation, PolicyContext,
        PolicyEngine, PolicyEngineBuilder, PolicyError, PolicyGate, PolicyInput, TestOutcome,
        TestReport, TestResult, check, run_tests,
    };
}

/// Incident memory: embeddings, index, clusters, recall.
pub mod memory {
    #[cfg(feature = "fastembed")]
    pub use warden_memory::FastEmbedder;
    pub use warden_memory::{
        Cluster, ClusterMethod, Columns, Embedder, HashingEmbedder, Hit, Incident, IncidentView,
        IngestReport, Memory, MemoryError, MemoryOptions, RecallHit, ReclusterReport,
        read_incidents,
    };
}

/// Types shared by host and plugins.
pub mod types {
    pub use warden_types::{
        CallContext, Capability, CapabilityGate, CapabilityRequest, CapabilityUse, Decision,
        DenyAll, Effect, GateDecision, ToolManifest, Verdict,
    };
}

/// Azure Resource Manager as a sandbox capability.
#[cfg(feature = "azure")]
pub mod azure {
    pub use warden_azure::{
        ArmError, AzureArm, AzureBackend, Credential, backend_from_env, backend_from_vars,
    };
}
