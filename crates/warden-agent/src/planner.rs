//! The planner interface and the chain that tries planners in turn.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use warden_types::ToolManifest;

use crate::error::AgentError;
use crate::task::{Observation, Plan, Step, Task};

/// A past incident recalled from memory for the planner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Case {
    /// Incident or ticket id.
    pub id: String,
    /// Its title.
    pub title: String,
    /// Cosine similarity to the task, 0..1.
    pub score: f32,
    /// What resolved it, if recorded.
    pub resolution: Option<String>,
    /// The plan that resolved it, if recorded.
    pub plan: Option<Plan>,
    /// Its cluster's label.
    pub cluster: Option<String>,
}

/// What a planner sees.
#[derive(Debug, Clone, Copy)]
pub struct PlanContext<'a> {
    /// The task.
    pub task: &'a Task,
    /// The tools it may use (loaded plugins).
    pub tools: &'a [ToolManifest],
    /// Similar past incidents, best first.
    pub cases: &'a [Case],
}

/// A planner's answer: steps to add, and whether it is done.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Proposal {
    /// Steps to run (appended to the plan).
    pub steps: Vec<Step>,
    /// No more steps will come.
    pub done: bool,
    /// Who planned (`runbook:<name>`, `case:<id>`, `llm:<model>`).
    pub planner: String,
    /// Why this plan (which runbook matched, which case it came from).
    pub note: Option<String>,
    /// A summary template (`{{ steps.<id>.output… }}`) rendered when the
    /// task ends, or final words from the model.
    pub summary: Option<String>,
    /// LLM tokens this proposal cost.
    pub tokens: u64,
    /// Its estimated cost in USD, when priced.
    pub cost_usd: Option<f64>,
}

impl Proposal {
    /// A final plan of `steps` from `planner`.
    pub fn steps(planner: impl Into<String>, steps: Vec<Step>) -> Self {
        Proposal {
            steps,
            done: true,
            planner: planner.into(),
            ..Proposal::default()
        }
    }

    /// Nothing to add; the task is planned out.
    pub fn done() -> Self {
        Proposal {
            done: true,
            ..Proposal::default()
        }
    }

    /// This planner has nothing for the task (a chain tries the next one);
    /// `why` says what was missing.
    pub fn no_match(why: impl Into<String>) -> Self {
        Proposal {
            done: true,
            note: Some(why.into()),
            ..Proposal::default()
        }
    }
}

/// Turns a task into steps, and observations into more steps (ReAct-style).
///
/// ```
/// use async_trait::async_trait;
/// use warden_agent::{AgentError, Observation, PlanContext, Planner, Proposal, Step};
///
/// /// Always probes the same URL.
/// struct ProbeOnly;
///
/// #[async_trait]
/// impl Planner for ProbeOnly {
///     fn name(&self) -> String { "probe-only".into() }
///     async fn plan(&self, _ctx: &PlanContext<'_>) -> Result<Proposal, AgentError> {
///         let step = Step::new("probe", "http-probe", serde_json::json!({"url": "http://127.0.0.1:8080/health"}));
///         Ok(Proposal::steps(self.name(), vec![step]))
///     }
/// }
/// ```
#[async_trait]
pub trait Planner: Send + Sync {
    /// A short name for the journal.
    fn name(&self) -> String;

    /// The first steps for a task.
    async fn plan(&self, ctx: &PlanContext<'_>) -> Result<Proposal, AgentError>;

    /// More steps after `observations` (every step so far, in order). The
    /// default adds nothing.
    async fn observe(
        &self,
        _ctx: &PlanContext<'_>,
        _observations: &[Observation],
    ) -> Result<Proposal, AgentError> {
        Ok(Proposal::done())
    }
}

/// Tries planners in order; the first with steps plans the task and sees
/// its observations.
///
/// The offline default is runbooks, then past cases.
pub struct PlannerChain {
    planners: Vec<Box<dyn Planner>>,
    chosen: Mutex<HashMap<String, usize>>,
}

impl std::fmt::Debug for PlannerChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlannerChain")
            .field(
                "planners",
                &self.planners.iter().map(|p| p.name()).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl PlannerChain {
    /// A chain of `planners`, tried in order.
    pub fn new(planners: Vec<Box<dyn Planner>>) -> Self {
        PlannerChain {
            planners,
            chosen: Mutex::new(HashMap::new()),
        }
    }
}

#[async_trait]
impl Planner for PlannerChain {
    fn name(&self) -> String {
        self.planners
            .iter()
            .map(|p| p.name())
            .collect::<Vec<_>>()
            .join(" > ")
    }

    async fn plan(&self, ctx: &PlanContext<'_>) -> Result<Proposal, AgentError> {
        let mut misses = Vec::new();
        for (i, planner) in self.planners.iter().enumerate() {
            let proposal = planner.plan(ctx).await?;
            if !proposal.steps.is_empty() {
                if let Ok(mut chosen) = self.chosen.lock() {
                    chosen.insert(ctx.task.id.clone(), i);
                }
                return Ok(proposal);
            }
            misses.push(format!(
                "{}: {}",
                planner.name(),
                proposal.note.unwrap_or_else(|| "no steps".into())
            ));
        }
        Ok(Proposal::no_match(misses.join("; ")))
    }

    async fn observe(
        &self,
        ctx: &PlanContext<'_>,
        observations: &[Observation],
    ) -> Result<Proposal, AgentError> {
        let chosen = self
            .chosen
            .lock()
            .ok()
            .and_then(|c| c.get(&ctx.task.id).copied());
        match chosen.and_then(|i| self.planners.get(i)) {
            Some(planner) => planner.observe(ctx, observations).await,
            None => Ok(Proposal::done()),
        }
    }
}

/// A planner (the model) with an offline fallback (runbooks, then past
/// cases): when the model cannot be reached or fails for good, the task is
/// planned offline and the plan's note, journaled with it, says why.
pub(crate) struct Fallback {
    pub primary: Box<dyn Planner>,
    pub offline: Box<dyn Planner>,
    /// Tasks the offline planner took over.
    fell_back: Mutex<std::collections::HashSet<String>>,
}

impl Fallback {
    pub(crate) fn new(primary: Box<dyn Planner>, offline: Box<dyn Planner>) -> Self {
        Fallback {
            primary,
            offline,
            fell_back: Mutex::new(std::collections::HashSet::new()),
        }
    }

    fn took_over(&self, task: &str) -> bool {
        self.fell_back
            .lock()
            .map(|f| f.contains(task))
            .unwrap_or(false)
    }
}

#[async_trait]
impl Planner for Fallback {
    fn name(&self) -> String {
        format!("{} (offline: {})", self.primary.name(), self.offline.name())
    }

    async fn plan(&self, ctx: &PlanContext<'_>) -> Result<Proposal, AgentError> {
        match self.primary.plan(ctx).await {
            Ok(p) => Ok(p),
            Err(AgentError::Llm { reason }) => {
                tracing::warn!(task = %ctx.task.id, %reason, "the model failed; planning offline");
                if let Ok(mut f) = self.fell_back.lock() {
                    f.insert(ctx.task.id.clone());
                }
                let mut p = self.offline.plan(ctx).await?;
                let why = format!(
                    "{} failed ({reason}); planned offline by {}",
                    self.primary.name(),
                    self.offline.name()
                );
                p.note = Some(match p.note.take() {
                    Some(n) => format!("{why}: {n}"),
                    None => why,
                });
                Ok(p)
            }
            Err(other) => Err(other),
        }
    }

    async fn observe(
        &self,
        ctx: &PlanContext<'_>,
        observations: &[Observation],
    ) -> Result<Proposal, AgentError> {
        if self.took_over(&ctx.task.id) {
            self.offline.observe(ctx, observations).await
        } else {
            self.primary.observe(ctx, observations).await
        }
    }
}
