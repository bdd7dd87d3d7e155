//! What the agent is asked to do, what it plans and what happened.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A unit of work: a goal or an incident, with who asked and where it acts.
///
/// ```
/// use warden_agent::Task;
///
/// let task = Task::goal("t-1", "probe the staging web tier").in_env("staging");
/// assert_eq!(task.env, "staging");
/// assert_eq!(task.source, "cli");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Task {
    /// Unique id; the journal and the policy key on it.
    pub id: String,
    /// What to achieve, in words.
    pub goal: String,
    /// Where the task came from: `cli`, `alertmanager`, `azure-monitor`, `chat`, …
    pub source: String,
    /// Environment the task acts on (`dev`, `staging`, `prod`); the policy
    /// keys on it. Canonicalised by the bundle's environment data before
    /// anything runs (case, spaces, aliases); empty means the bundle's
    /// default (the strictest, `prod`, in the shipped bundle).
    pub env: String,
    /// On whose behalf the task runs.
    pub principal: String,
    /// Roles of the principal.
    #[serde(default)]
    pub roles: Vec<String>,
    /// A break-glass ticket for destructive work in protected environments.
    #[serde(default)]
    pub break_glass: Option<String>,
    /// The alert that triggered the task, when there is one.
    #[serde(default)]
    pub alert: Option<Alert>,
    /// Named data for the steps (log lines, a metric series, a template):
    /// runbook arguments reach them as `attachments.<name>`.
    #[serde(default)]
    pub attachments: BTreeMap<String, serde_json::Value>,
}

impl Task {
    /// A task from a goal typed by a person, on behalf of `cli`, in the
    /// bundle's default environment until [`Task::in_env`] says otherwise.
    pub fn goal(id: impl Into<String>, goal: impl Into<String>) -> Self {
        Task {
            id: id.into(),
            goal: goal.into(),
            source: "cli".into(),
            env: String::new(),
            principal: "cli".into(),
            roles: Vec::new(),
            break_glass: None,
            alert: None,
            attachments: BTreeMap::new(),
        }
    }

    /// The same task in environment `env`.
    pub fn in_env(mut self, env: impl Into<String>) -> Self {
        self.env = env.into();
        self
    }

    /// The same task on behalf of `principal`.
    pub fn by(mut self, principal: impl Into<String>) -> Self {
        self.principal = principal.into();
        self
    }

    /// The same task with an attachment.
    pub fn attach(mut self, name: impl Into<String>, value: serde_json::Value) -> Self {
        self.attachments.insert(name.into(), value);
        self
    }

    /// The text recall and keyword matching look at: goal, then the alert's
    /// summary, description and labels.
    pub fn text(&self) -> String {
        let mut text = self.goal.clone();
        if let Some(alert) = &self.alert {
            for v in alert.annotations.values().chain(alert.labels.values()) {
                text.push(' ');
                text.push_str(v);
            }
        }
        text
    }
}

/// An alert, normalised from Alertmanager or Azure Monitor.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Alert {
    /// Alert name (`alertname` label, or the Azure alert rule).
    pub name: String,
    /// `firing` or `resolved`.
    pub status: String,
    /// Normalised severity: `critical`, `warning` or `info`.
    pub severity: String,
    /// The service the alert is about (`service`, `job` or `app` label), if any.
    pub service: Option<String>,
    /// All labels.
    pub labels: BTreeMap<String, String>,
    /// All annotations (summary, description, runbook URL, …).
    pub annotations: BTreeMap<String, String>,
    /// When it started, RFC 3339.
    pub starts_at: Option<String>,
    /// Alertmanager fingerprint or Azure alert id.
    pub fingerprint: Option<String>,
}

/// The steps to take, in dependency order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Plan {
    /// Steps; ids are unique.
    pub steps: Vec<Step>,
}

/// One tool call in a plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Step {
    /// Unique within the plan.
    pub id: String,
    /// Tool name (a loaded plugin).
    pub tool: String,
    /// Arguments; strings may hold `{{ … }}` templates over `task`, `alert`,
    /// `attachments` and `steps.<id>.output`, rendered just before the call.
    #[serde(default = "empty_object")]
    pub args: serde_json::Value,
    /// Why the step is there, for the human reading the journal.
    #[serde(default)]
    pub why: String,
    /// Steps that must succeed first.
    #[serde(default)]
    pub depends_on: Vec<String>,
    /// A validation step: the task is resolved only if every verify step
    /// succeeds and its output does not say `"ok": false`.
    #[serde(default)]
    pub verify: bool,
    /// Run only when this condition over earlier outputs holds.
    #[serde(default)]
    pub when: Option<Condition>,
    /// Per-step timeout in seconds (the sandbox's own deadline still applies).
    #[serde(default)]
    pub timeout_secs: Option<f64>,
    /// The model's tool-call id when an LLM proposed the step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_id: Option<String>,
}

fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(serde_json::Map::new())
}

impl Step {
    /// A step calling `tool` with `args`.
    pub fn new(id: impl Into<String>, tool: impl Into<String>, args: serde_json::Value) -> Self {
        Step {
            id: id.into(),
            tool: tool.into(),
            args,
            why: String::new(),
            depends_on: Vec::new(),
            verify: false,
            when: None,
            timeout_secs: None,
            call_id: None,
        }
    }
}

/// A condition on an earlier step's output.
///
/// `{step: probe, pointer: /ok, equals: false}` holds when step `probe`
/// succeeded and its output at JSON pointer `/ok` is `false`. Without
/// `equals`, the value must be present and truthy (not null, false, 0, "" or
/// empty).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    /// The step whose output is tested.
    pub step: String,
    /// JSON pointer into its output (`/ok`, `/anomalies/0`); empty = whole output.
    #[serde(default)]
    pub pointer: String,
    /// The value it must equal.
    #[serde(default)]
    pub equals: Option<serde_json::Value>,
}

impl Condition {
    /// Evaluate against the step's output (`None` when the step did not succeed).
    pub fn holds(&self, output: Option<&serde_json::Value>) -> bool {
        let Some(value) = output.and_then(|o| o.pointer(&self.pointer)) else {
            return false;
        };
        match &self.equals {
            Some(expected) => value == expected,
            None => truthy(value),
        }
    }
}

pub(crate) fn truthy(v: &serde_json::Value) -> bool {
    use serde_json::Value;
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum StepStatus {
    /// The tool ran and returned output.
    Succeeded,
    /// The tool or its arguments failed.
    Failed,
    /// The policy refused it.
    Denied,
    /// A human (or the non-interactive approver) said no.
    Rejected,
    /// Not run: a dependency did not succeed, its condition did not hold, or
    /// it mutates and cannot dry-run in a dry run.
    Skipped,
    /// A mutating call was in flight when the worker running it stopped
    /// (a cluster worker died or lost its lease): whether it changed
    /// anything is not known, and it is never retried on its own. A human,
    /// or a verify step, decides.
    Unknown,
}

impl StepStatus {
    /// The kebab-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Succeeded => "succeeded",
            StepStatus::Failed => "failed",
            StepStatus::Denied => "denied",
            StepStatus::Rejected => "rejected",
            StepStatus::Skipped => "skipped",
            StepStatus::Unknown => "unknown",
        }
    }
}

/// What one step produced, handed back to the planner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Observation {
    /// Step id.
    pub step_id: String,
    /// Tool name.
    pub tool: String,
    /// How it ended.
    pub status: StepStatus,
    /// The arguments the tool was called with (templates rendered).
    pub args: serde_json::Value,
    /// The tool's output when it succeeded.
    pub output: Option<serde_json::Value>,
    /// Why it did not succeed (error, policy reasons, skip reason).
    pub reasons: Vec<String>,
    /// Whether the call was a dry run.
    pub dry_run: bool,
    /// Attempts made (retries of read-only tools count).
    pub attempts: u32,
    /// Wall time in microseconds, all attempts.
    pub duration_us: u64,
}

impl Observation {
    /// One line for a human: the first reason, else the output's scalar
    /// top-level fields (`status=503, ok=false, …`).
    pub fn brief(&self) -> String {
        match (self.reasons.first(), &self.output) {
            (Some(r), _) => r.clone(),
            (None, Some(out)) => crate::show::brief(out),
            (None, None) => String::new(),
        }
    }
}

/// How a task ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum OutcomeStatus {
    /// Every step ran and every verify step passed.
    Resolved,
    /// Some step failed, was denied or rejected, or a verify step did not pass.
    Unresolved,
    /// A budget ran out (steps, wall time, tokens); the reason says which.
    Stopped,
    /// Cancelled (Ctrl-C or the embedder's token).
    Cancelled,
    /// The planner or the policy refused the task before any step ran.
    Refused,
}

impl OutcomeStatus {
    /// The kebab-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            OutcomeStatus::Resolved => "resolved",
            OutcomeStatus::Unresolved => "unresolved",
            OutcomeStatus::Stopped => "stopped",
            OutcomeStatus::Cancelled => "cancelled",
            OutcomeStatus::Refused => "refused",
        }
    }
}

/// The end of a task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Outcome {
    /// Task id.
    pub task_id: String,
    /// The environment it ran in, canonical.
    pub env: String,
    /// How it ended.
    pub status: OutcomeStatus,
    /// Why, in a sentence (budget reason, failing step, …).
    pub reason: String,
    /// A short human summary (the runbook's or the model's, else generated).
    pub summary: String,
    /// The planner that planned it (`runbook:<name>`, `case:<id>`, `llm:<model>`).
    pub planner: String,
    /// Every step, in the order it ended.
    pub observations: Vec<Observation>,
    /// LLM tokens used.
    pub tokens: u64,
    /// Estimated LLM cost in USD, when a price is configured.
    pub cost_usd: Option<f64>,
    /// Wall time in milliseconds.
    pub duration_ms: u64,
    /// The journal file.
    pub journal: Option<std::path::PathBuf>,
}

impl Outcome {
    /// Whether the task was resolved.
    pub fn is_resolved(&self) -> bool {
        self.status == OutcomeStatus::Resolved
    }
}
