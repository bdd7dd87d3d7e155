//! The agent's error type.

use std::path::PathBuf;

/// What went wrong building or running an agent.
///
/// Problems inside a task (a denied call, a failing tool, a budget) are not
/// errors: they end the task with an [`Outcome`](crate::Outcome) that says so.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AgentError {
    /// The agent is missing something it needs.
    #[error("agent configuration: {reason}")]
    Config {
        /// What is missing or wrong.
        reason: String,
    },
    /// Runbooks that do not load or do not fit the tools; one line each.
    #[error("invalid runbooks:\n  {}", errors.join("\n  "))]
    Runbook {
        /// `file:line: problem`, one per problem.
        errors: Vec<String>,
    },
    /// A webhook body that is not an alert we understand.
    #[error("invalid alert: {reason}")]
    Alert {
        /// What is wrong with it.
        reason: String,
    },
    /// The journal cannot be opened or written.
    #[error("journal {}: {reason}", path.display())]
    Journal {
        /// The journal file.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
    /// An input from outside is too large, not a regular file, or
    /// unreadable.
    #[error("{what} {origin}: {reason}")]
    Input {
        /// Which kind of input (`alert body`, `attachment`, `runbook`).
        what: &'static str,
        /// The file or stream it came from.
        origin: String,
        /// What is wrong.
        reason: String,
    },
    /// The host key cannot be read, created, or is unsafe to use.
    #[error("host key {}: {reason}", path.display())]
    Key {
        /// The key file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The LLM planner failed for good (after retries and one repair).
    #[error("llm planner: {reason}")]
    Llm {
        /// What failed.
        reason: String,
    },
    /// A worker lost its hold on a task (its lease expired or another
    /// worker took the task over at a later epoch): nothing it did after
    /// that was recorded, and it must stop the task.
    #[error("task `{task}`: fenced out at epoch {epoch}: another worker holds the task now")]
    Fenced {
        /// The task.
        task: String,
        /// The epoch this worker held.
        epoch: u64,
    },
    /// The ledger that keeps a task's plan and step outcomes across
    /// workers failed (its database cannot be reached, say).
    #[error("ledger for task `{task}`: {reason}")]
    Ledger {
        /// The task.
        task: String,
        /// What failed.
        reason: String,
    },
    /// A plugin failed to load.
    #[error(transparent)]
    Sandbox(#[from] warden_sandbox::SandboxError),
    /// The policy bundle failed to load.
    #[error(transparent)]
    Policy(#[from] warden_policy::PolicyError),
}
