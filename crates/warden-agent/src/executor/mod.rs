//! Running a task: recall, plan, policy, approvals, calls, journal,
//! outcome. One step's path (decide, approve, invoke, journal) is in
//! [`step`]; retries and backoff in [`retry`].

mod finish;
mod ledger;
mod retry;
mod step;

pub use ledger::{Decide, Ledger, Resume, StepKey, StoredStep};

pub(crate) use step::JournaledGate;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use serde_json::Value;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;
use warden_policy::{Entry, PlanStep, PolicyInput, ToolInfo};
use warden_types::{Effect, Verdict};

use crate::agent::Agent;

use crate::error::AgentError;
use crate::journal::{Digest, JournalEvent, PlanProposed, RecalledCase, TaskStarted};
use crate::planner::{Case, PlanContext, Planner, Proposal};
use crate::task::{Observation, Outcome, OutcomeStatus, Plan, Step, StepStatus, Task};
use crate::template::{Expressions, has_template};

pub(crate) use step::{Scope, StepCall};

/// How the task loop ended early.
enum Stop {
    Budget(String),
    Cancelled,
}

struct Run<'a> {
    agent: &'a Agent,
    task: &'a Task,
    /// Every mutating step of this task is a dry run (the agent's setting,
    /// or one run's own).
    dry_run: bool,
    /// Plans from this planner instead of the agent's.
    planner: Option<&'a dyn Planner>,
    cancel: CancellationToken,
    /// The expressions this run's templates compiled, for its later steps.
    expressions: Expressions<'a>,
    started: Instant,
    deadline: Instant,
    plan: Plan,
    observations: Vec<Observation>,
    outputs: BTreeMap<String, (StepStatus, Option<Value>)>,
    /// What templates read, converted once: a templated step shares these
    /// values instead of copying every earlier output again.
    template: TemplateCache,
    tokens: u64,
    cost: Option<f64>,
    calls: u64,
    /// Steps skipped because their condition did not hold: dependents may
    /// still run (a remediation that was not needed).
    not_needed: HashSet<String>,
    /// The ledger, when it holds this task.
    ledger: Option<Arc<dyn Ledger>>,
    /// Stored proposals not replayed yet.
    stored_plans: VecDeque<Proposal>,
    /// Stored steps not replayed yet.
    stored_steps: BTreeMap<String, StoredStep>,
    /// Proposals taken so far: the plan revision of the last one.
    revision: u32,
    /// The plan revision that added each step.
    step_revision: HashMap<String, u32>,
}

impl Agent {
    /// Run `task` to its end. Task-level problems (a denied call, a failed
    /// step, a budget) are in the [`Outcome`]; errors are for the agent's own
    /// machinery (the journal cannot be written).
    pub async fn run(&self, task: Task) -> Result<Outcome, AgentError> {
        self.run_until(task, CancellationToken::new()).await
    }

    /// Run `task` until it ends or `cancel` fires; a cancelled task is
    /// journaled as such and ends with [`OutcomeStatus::Cancelled`].
    pub async fn run_until(
        &self,
        task: Task,
        cancel: CancellationToken,
    ) -> Result<Outcome, AgentError> {
        self.run_in(task, None, false, cancel).await
    }

    /// [`Agent::run_until`] with `planner` instead of the agent's own (a
    /// runbook chosen by name, say: [`RunbookPlanner::only`]), and every
    /// mutating step a dry run when `dry_run` is true. Nothing else differs:
    /// the plan policy, every call's decision, approvals and the journal
    /// are the same path.
    ///
    /// ```no_run
    /// # use warden_agent::{Agent, RunbookPlanner, Runbooks, Task};
    /// # async fn demo(agent: &Agent, books: Runbooks) -> Result<(), warden_agent::AgentError> {
    /// let planner = RunbookPlanner::new(books).only("web-health");
    /// let cancel = tokio_util::sync::CancellationToken::new();
    /// let task = Task::goal("t-2", "check the web tier").in_env("staging");
    /// let outcome = agent.run_with(task, &planner, true, cancel).await?;
    /// # Ok(()) }
    /// ```
    ///
    /// [`RunbookPlanner::only`]: crate::RunbookPlanner::only
    pub async fn run_with(
        &self,
        task: Task,
        planner: &dyn Planner,
        dry_run: bool,
        cancel: CancellationToken,
    ) -> Result<Outcome, AgentError> {
        self.run_in(task, Some(planner), dry_run, cancel).await
    }

    /// A whole task, in its span: [`Agent::run_until`] and
    /// [`Agent::run_with`] differ only in the planner and the dry run.
    async fn run_in(
        &self,
        task: Task,
        planner: Option<&dyn Planner>,
        dry_run: bool,
        cancel: CancellationToken,
    ) -> Result<Outcome, AgentError> {
        let (task, env_error) = self.canonical_task(task);
        let span = task_span(&task);
        async {
            let mut run = Run::new(self, &task, cancel);
            run.dry_run |= dry_run;
            run.planner = planner;
            run.start()?;
            if let Some(ledger) = &self.ledger
                && let Some(resume) = ledger.resume(&task.id).await?
            {
                run.stored_plans = resume.plans.into();
                run.stored_steps = resume.steps;
                run.ledger = Some(ledger.clone());
            }
            if let Some(why) = env_error {
                return run.finish_refused(why, None);
            }
            run.go().await
        }
        .instrument(span.clone())
        .await
        .inspect(|o| {
            span.record("status", o.status.as_str());
        })
    }

    /// One tool call as a task of its own, on the same authorized,
    /// journaled path as a planned step: the CLI's `warden plugin call`.
    /// The outcome holds the one observation.
    pub async fn call(&self, task: Task, call: ToolCall) -> Result<Outcome, AgentError> {
        self.call_until(task, call, CancellationToken::new()).await
    }

    /// [`Agent::call`] until it ends or `cancel` fires (an MCP client's
    /// `notifications/cancelled`): a call cancelled while it waits for
    /// approval is rejected; one cancelled while the tool runs is stopped,
    /// journaled as such, and ends with [`OutcomeStatus::Cancelled`] and no
    /// observation.
    pub async fn call_until(
        &self,
        task: Task,
        call: ToolCall,
        cancel: CancellationToken,
    ) -> Result<Outcome, AgentError> {
        let (task, env_error) = self.canonical_task(task);
        let span = task_span(&task);
        self.call_in(task, env_error, call, cancel)
            .instrument(span.clone())
            .await
            .inspect(|o| {
                span.record("status", o.status.as_str());
            })
    }

    async fn call_in(
        &self,
        task: Task,
        env_error: Option<String>,
        call: ToolCall,
        cancel: CancellationToken,
    ) -> Result<Outcome, AgentError> {
        let mut run = Run::new(self, &task, cancel.clone());
        run.start()?;
        if let Some(why) = env_error {
            return run.finish_refused(why, None);
        }
        run.calls = 1;
        let scope = Scope {
            task: &task,
            cancel: &cancel,
            deadline: run.deadline,
            calls_in_task: run.calls,
            ledger: None,
            revision: 0,
        };
        let invoke = self.authorize_and_invoke(
            &scope,
            StepCall {
                step_id: &call.step_id,
                tool: &call.tool,
                args: call.args,
                why: &call.why,
                timeout_secs: call.timeout_secs,
                dry_run: call.dry_run,
            },
        );
        let obs = tokio::select! {
            biased;
            obs = invoke => obs?,
            () = cancel.cancelled() => return run.finish_stopped(Stop::Cancelled, None),
        };
        let (status, reason) = if obs.status == StepStatus::Succeeded {
            (OutcomeStatus::Resolved, "the call succeeded".to_string())
        } else {
            (
                OutcomeStatus::Unresolved,
                format!(
                    "the call {}: {}",
                    obs.status.as_str(),
                    obs.reasons.join("; ")
                ),
            )
        };
        run.observations.push(obs);
        let summary = run.summary(None);
        run.close(run.outcome(status, reason, "cli", summary))
    }

    /// The task with its environment in the bundle's canonical spelling
    /// (an empty one takes the bundle's default), or the reason it is not
    /// one the bundle knows.
    fn canonical_task(&self, mut task: Task) -> (Task, Option<String>) {
        let envs = self.policy.environments();
        if task.env.trim().is_empty() {
            task.env = envs.default_env().to_string();
        }
        match envs.canonical(&task.env) {
            Ok(env) => {
                task.env = env;
                (task, None)
            }
            Err(e) => (task, Some(e.to_string())),
        }
    }
}

/// A single tool call for [`Agent::call`].
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    /// Step id recorded with the call.
    pub step_id: String,
    /// Tool name.
    pub tool: String,
    /// Arguments (no templates).
    pub args: Value,
    /// Why, for the journal and the approver.
    pub why: String,
    /// Deadline in seconds (the sandbox's own still applies).
    pub timeout_secs: Option<f64>,
    /// Run a mutating call as a dry run (or skip it when the tool cannot
    /// dry-run), whatever the agent's own setting; `false` never turns off
    /// an agent built with [`AgentBuilder::dry_run`](crate::AgentBuilder::dry_run).
    pub dry_run: bool,
}

impl ToolCall {
    /// Call `tool` with `args` as step `1`.
    pub fn new(tool: impl Into<String>, args: Value) -> Self {
        ToolCall {
            step_id: "1".into(),
            tool: tool.into(),
            args,
            why: String::new(),
            timeout_secs: None,
            dry_run: false,
        }
    }
}

/// Goals longer than this are journaled as a head and a marker.
const GOAL_LIMIT: usize = 4096;

fn clip_goal(goal: &str) -> String {
    if goal.len() <= GOAL_LIMIT {
        return goal.to_string();
    }
    let mut cut = GOAL_LIMIT;
    while !goal.is_char_boundary(cut) {
        cut -= 1;
    }
    format!(
        "{}… [{} more bytes not journaled]",
        &goal[..cut],
        goal.len() - cut
    )
}

fn digest(value: &Value) -> Digest {
    use sha2::Digest as _;
    let text = value.to_string();
    Digest {
        bytes: text.len() as u64,
        sha256: hex::encode(sha2::Sha256::digest(text.as_bytes())),
    }
}

/// Template values already converted (see [`Run::template_context`]).
#[derive(Default)]
struct TemplateCache {
    /// `task`, `env`, `alert` and `attachments`: the same for the whole run.
    base: Option<[(&'static str, minijinja::Value); 4]>,
    /// `steps.<id>` of each finished step; a step's output never changes.
    /// Shared with the contexts built from it: a wave's context takes a
    /// reference, not a copy of every earlier step.
    steps: Arc<BTreeMap<String, minijinja::Value>>,
}

fn template_base(task: &Task) -> [(&'static str, minijinja::Value); 4] {
    [
        (
            "task",
            minijinja::context! {
                id => &task.id, goal => &task.goal, env => &task.env,
                source => &task.source, principal => &task.principal,
            },
        ),
        ("env", minijinja::Value::from(task.env.as_str())),
        ("alert", minijinja::Value::from_serialize(&task.alert)),
        (
            "attachments",
            minijinja::Value::from_serialize(&task.attachments),
        ),
    ]
}

fn step_value(status: StepStatus, output: &Option<Value>) -> minijinja::Value {
    minijinja::context! {
        status => status.as_str(),
        output => output,
    }
}

impl<'a> Run<'a> {
    fn new(agent: &'a Agent, task: &'a Task, cancel: CancellationToken) -> Self {
        let started = Instant::now();
        Run {
            agent,
            task,
            dry_run: agent.dry_run,
            planner: None,
            cancel,
            expressions: Expressions::default(),
            started,
            deadline: started + agent.budget.wall_time,
            plan: Plan::default(),
            observations: Vec::new(),
            outputs: BTreeMap::new(),
            template: TemplateCache::default(),
            tokens: 0,
            cost: None,
            calls: 0,
            not_needed: HashSet::new(),
            ledger: None,
            stored_plans: VecDeque::new(),
            stored_steps: BTreeMap::new(),
            revision: 0,
            step_revision: HashMap::new(),
        }
    }

    /// The planner's next proposal: a stored one first (a re-claimed task
    /// keeps its plan, step ids and revisions), else `ask`'s, stored.
    async fn propose<F>(
        &mut self,
        ask: F,
    ) -> Result<Result<Result<Proposal, AgentError>, Stop>, AgentError>
    where
        F: std::future::Future<Output = Result<Proposal, AgentError>>,
    {
        if let Some(p) = self.stored_plans.pop_front() {
            self.revision += 1;
            return Ok(Ok(Ok(p)));
        }
        let answer = self.ask(ask).await;
        if let Ok(Ok(p)) = &answer {
            self.revision += 1;
            self.account(p)?;
            if let Some(ledger) = &self.ledger {
                ledger.save_plan(&self.task.id, self.revision, p).await?;
            }
        }
        Ok(answer)
    }

    fn step_key(&self, step_id: &str) -> StepKey {
        StepKey {
            task_id: self.task.id.clone(),
            step_id: step_id.to_string(),
            revision: self
                .step_revision
                .get(step_id)
                .copied()
                .unwrap_or(self.revision),
        }
    }

    /// A step the ledger remembers: its committed outcome, replayed, or
    /// (a mutating call in flight when its worker stopped) `unknown`,
    /// journaled and committed so that no worker calls it again.
    async fn replay(&mut self, s: &Step) -> Result<Option<Observation>, AgentError> {
        let Some(stored) = self.stored_steps.remove(&s.id) else {
            return Ok(None);
        };
        match stored {
            StoredStep::Committed(obs) => {
                self.journal(JournalEvent::Replayed {
                    step_id: obs.step_id.clone(),
                    tool: obs.tool.clone(),
                    status: obs.status,
                })?;
                Ok(Some(obs))
            }
            StoredStep::InFlight { epoch } => {
                let obs = Observation {
                    step_id: s.id.clone(),
                    tool: s.tool.clone(),
                    status: StepStatus::Unknown,
                    args: s.args.clone(),
                    output: None,
                    reasons: vec![format!(
                        "its call was in flight when the worker running it (epoch {epoch}) stopped: whether it changed anything is unknown, and it is not called again; check by hand, or with a verify step, and re-run the task if needed"
                    )],
                    dry_run: false,
                    attempts: 0,
                    duration_us: 0,
                };
                let effect = self.agent.tools.get(&s.tool).map(|t| t.manifest().effect);
                self.agent.journal_call(self.task, &obs, effect)?;
                if let Some(ledger) = &self.ledger {
                    ledger.commit_step(&self.step_key(&s.id), &obs).await?;
                }
                Ok(Some(obs))
            }
        }
    }

    fn start(&mut self) -> Result<(), AgentError> {
        let t = self.task;
        self.journal(JournalEvent::Task(TaskStarted {
            agent: self.agent.name.clone(),
            goal: clip_goal(&t.goal),
            source: t.source.clone(),
            env: t.env.clone(),
            principal: t.principal.clone(),
            roles: t.roles.clone(),
            break_glass: t.break_glass.clone(),
            alert: t
                .alert
                .as_ref()
                .and_then(|a| serde_json::to_value(a).ok())
                .map(|a| step::journal_value(&a)),
            attachments: t
                .attachments
                .iter()
                .map(|(k, v)| (k.clone(), digest(v)))
                .collect(),
        }))
    }
}

impl Run<'_> {
    fn journal(&self, event: JournalEvent) -> Result<(), AgentError> {
        self.agent.journal.append(&self.task.id, &event).map(|_| ())
    }

    /// The context templates render against, with the values converted so
    /// far kept for the next templated step.
    fn template_context(&mut self) -> minijinja::Value {
        let cache = &mut self.template;
        if cache.base.is_none() {
            cache.base = Some(template_base(self.task));
        }
        if cache.steps.len() < self.outputs.len() {
            // The last wave's context is gone by now, so this does not copy.
            let steps = Arc::make_mut(&mut cache.steps);
            for (id, (status, output)) in &self.outputs {
                if !steps.contains_key(id) {
                    steps.insert(id.clone(), step_value(*status, output));
                }
            }
        }
        self.template_view()
    }

    /// The context templates render against: converted values from the
    /// cache, the rest converted now.
    fn template_view(&self) -> minijinja::Value {
        // Only finished steps are cached and none is ever removed, so equal
        // sizes mean the cache holds every step.
        let steps = if self.template.steps.len() == self.outputs.len() {
            minijinja::Value::from_dyn_object(Arc::clone(&self.template.steps))
        } else {
            minijinja::Value::from_iter(self.outputs.iter().map(|(id, (status, output))| {
                let v = match self.template.steps.get(id) {
                    Some(v) => v.clone(),
                    None => step_value(*status, output),
                };
                (id.as_str(), v)
            }))
        };
        let base = match &self.template.base {
            Some(b) => b.clone(),
            None => template_base(self.task),
        };
        minijinja::Value::from_iter(base.into_iter().chain([("steps", steps)]))
    }

    fn check_budget(&self) -> Option<Stop> {
        if self.cancel.is_cancelled() {
            return Some(Stop::Cancelled);
        }
        let b = &self.agent.budget;
        if Instant::now() >= self.deadline {
            return Some(Stop::Budget(format!(
                "the wall-time budget of {:?} ran out",
                b.wall_time
            )));
        }
        if self.tokens > b.max_tokens {
            return Some(Stop::Budget(format!(
                "the LLM token budget of {} ran out ({} used)",
                b.max_tokens, self.tokens
            )));
        }
        None
    }

    fn account(&mut self, p: &Proposal) -> Result<(), AgentError> {
        if p.tokens > 0 || p.cost_usd.is_some() {
            self.tokens += p.tokens;
            if let Some(c) = p.cost_usd {
                *self.cost.get_or_insert(0.0) += c;
            }
            tracing::info!(task = %self.task.id, tokens = p.tokens, cost_usd = ?p.cost_usd, "llm usage");
            self.journal(JournalEvent::Llm {
                planner: p.planner.clone(),
                tokens: p.tokens,
                cost_usd: p.cost_usd,
                total_tokens: self.tokens,
            })?;
        }
        Ok(())
    }

    async fn ask<F>(&self, fut: F) -> Result<Result<Proposal, AgentError>, Stop>
    where
        F: std::future::Future<Output = Result<Proposal, AgentError>>,
    {
        let remaining = self.deadline.saturating_duration_since(Instant::now());
        tokio::select! {
            () = self.cancel.cancelled() => Err(Stop::Cancelled),
            r = tokio::time::timeout(remaining, fut) => r.map_err(|_| Stop::Budget(format!(
                "the wall-time budget of {:?} ran out while planning", self.agent.budget.wall_time))),
        }
    }

    async fn go(&mut self) -> Result<Outcome, AgentError> {
        let task = self.task;
        let cases = self.recall()?;
        let agent = self.agent;
        let ctx = PlanContext {
            task,
            tools: &agent.manifests,
            cases: &cases,
        };
        let Some(proposer) = self.planner.or(agent.planner.as_deref()) else {
            return self.finish_refused(
                "this agent has no planner: build it with runbooks, memory or a planner".into(),
                None,
            );
        };
        let first = match self.propose(proposer.plan(&ctx)).await? {
            Ok(Ok(p)) => p,
            Ok(Err(e)) => return self.finish_refused(format!("the planner failed: {e}"), None),
            Err(stop) => return self.finish_stopped(stop, None),
        };
        if first.steps.is_empty() {
            let why = first
                .note
                .clone()
                .unwrap_or_else(|| "the planner proposed no steps".into());
            return self.finish_refused(format!("nothing to do: {why}"), Some(&first));
        }
        let planner = first.planner.clone();
        let mut summary = first.summary.clone();
        let mut proposal = first;
        loop {
            if let Err(why) = self.add_steps(&proposal)? {
                return self.finish_refused(why, Some(&proposal));
            }
            if let Some(stop) = self.run_pending().await? {
                return self.finish_stopped(stop, Some((&planner, summary.as_deref())));
            }
            if proposal.done {
                break;
            }
            let observations = self.observations.clone();
            let next = match self.propose(proposer.observe(&ctx, &observations)).await? {
                Ok(Ok(p)) => p,
                Ok(Err(e)) => {
                    return self.finish_refused(format!("the planner failed: {e}"), None);
                }
                Err(stop) => {
                    return self.finish_stopped(stop, Some((&planner, summary.as_deref())));
                }
            };
            if let Some(s) = &next.summary {
                summary = Some(s.clone());
            }
            if next.steps.is_empty() && next.done {
                break;
            }
            proposal = next;
        }
        self.finish(&planner, summary.as_deref())
    }

    fn recall(&self) -> Result<Vec<Case>, AgentError> {
        let Some(memory) = &self.agent.memory else {
            return Ok(Vec::new());
        };
        let hits = match memory.lock() {
            Ok(m) => m.recall(&self.task.text(), self.agent.recall_k),
            Err(_) => return Ok(Vec::new()),
        };
        let hits = match hits {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!(error = %e, "recall failed; planning without past cases");
                return Ok(Vec::new());
            }
        };
        let cases: Vec<Case> = hits
            .into_iter()
            .map(|h| Case {
                id: h.incident.id.clone(),
                title: h.incident.title.clone(),
                score: h.score,
                resolution: h.incident.resolution.clone(),
                plan: h
                    .incident
                    .plan
                    .as_ref()
                    .and_then(|p| serde_json::from_value(p.clone()).ok()),
                cluster: h.cluster.map(|c| c.label.join(" ")),
            })
            .collect();
        self.journal(JournalEvent::Recall {
            cases: cases
                .iter()
                .map(|c| RecalledCase {
                    id: c.id.clone(),
                    title: c.title.clone(),
                    score: c.score,
                    resolution: c.resolution.clone(),
                    has_plan: c.plan.is_some(),
                })
                .collect(),
        })?;
        Ok(cases)
    }

    /// Check and append the proposal's steps; the plan policy sees them
    /// first. The inner error is why the plan is refused.
    fn add_steps(&mut self, p: &Proposal) -> Result<Result<(), String>, AgentError> {
        let mut ids: HashSet<&str> = self.plan.steps.iter().map(|s| s.id.as_str()).collect();
        for s in &p.steps {
            if !ids.insert(s.id.as_str()) {
                return Ok(Err(format!("the plan has two steps with id `{}`", s.id)));
            }
        }
        let ctx = self.agent.policy_context(self.task, self.calls)?;
        let steps: Vec<PlanStep> = p
            .steps
            .iter()
            .filter_map(|s| {
                let tool = self.agent.tools.get(&s.tool)?;
                Some(PlanStep {
                    id: s.id.clone(),
                    tool: ToolInfo::from(tool.manifest()),
                    args: s.args.clone(),
                    dry_run: self.dry_run,
                })
            })
            .collect();
        let record = self
            .agent
            .policy
            .decide(Entry::Plan, &PolicyInput::plan(&ctx, steps));
        let refused = (record.decision.verdict == Verdict::Deny).then(|| {
            format!(
                "the policy refused the plan: {}",
                record.decision.reasons.join("; ")
            )
        });
        self.journal(JournalEvent::Plan(PlanProposed {
            planner: p.planner.clone(),
            note: p.note.clone(),
            steps: p.steps.clone(),
            policy: record,
        }))?;
        if let Some(why) = refused {
            return Ok(Err(why));
        }
        for s in &p.steps {
            self.step_revision.insert(s.id.clone(), self.revision);
        }
        self.plan.steps.extend(p.steps.iter().cloned());
        Ok(Ok(()))
    }

    /// Run every step not yet run, in dependency order.
    async fn run_pending(&mut self) -> Result<Option<Stop>, AgentError> {
        loop {
            let not_run = |s: &&Step| !self.outputs.contains_key(&s.id);
            if !self.plan.steps.iter().any(|s| not_run(&s)) {
                return Ok(None);
            }
            if let Some(stop) = self.check_budget() {
                return Ok(Some(stop));
            }
            // Only the steps that can run now are copied out of the plan.
            let ready: Vec<Step> = self
                .plan
                .steps
                .iter()
                .filter(not_run)
                .filter(|s| s.depends_on.iter().all(|d| self.outputs.contains_key(d)))
                .cloned()
                .collect();
            if ready.is_empty() {
                let pending: Vec<Step> = self.plan.steps.iter().filter(not_run).cloned().collect();
                for s in &pending {
                    self.skip(
                        s,
                        "its dependencies never ran (unknown step or a cycle)".into(),
                    )?;
                }
                return Ok(None);
            }
            let mut wave: Vec<Step> = Vec::new();
            for s in &ready {
                if let Some(obs) = self.replay(s).await? {
                    self.outputs
                        .insert(obs.step_id.clone(), (obs.status, obs.output.clone()));
                    self.observations.push(obs);
                    continue;
                }
                if let Some(dep) = s.depends_on.iter().find(|d| {
                    !self.not_needed.contains(*d)
                        && self
                            .outputs
                            .get(*d)
                            .is_some_and(|(st, _)| *st != StepStatus::Succeeded)
                }) {
                    self.skip(s, format!("step `{dep}` did not succeed"))?;
                    continue;
                }
                if let Some(cond) = &s.when {
                    let out = self.outputs.get(&cond.step).and_then(|(_, o)| o.as_ref());
                    if !cond.holds(out) {
                        self.not_needed.insert(s.id.clone());
                        self.skip(
                            s,
                            format!(
                                "its condition on `{}{}` does not hold",
                                cond.step, cond.pointer
                            ),
                        )?;
                        continue;
                    }
                }
                let read_only = self
                    .agent
                    .tools
                    .get(&s.tool)
                    .is_some_and(|t| t.manifest().effect == Effect::ReadOnly);
                if wave.is_empty() {
                    wave.push(s.clone());
                    if !read_only {
                        break;
                    }
                } else if read_only && wave.len() < self.agent.budget.max_parallel.max(1) {
                    wave.push(s.clone());
                }
            }
            if wave.is_empty() {
                continue;
            }
            let executed = self
                .observations
                .iter()
                .filter(|o| o.status != StepStatus::Skipped)
                .count();
            let room = self.agent.budget.max_steps.saturating_sub(executed);
            if room == 0 {
                return Ok(Some(Stop::Budget(format!(
                    "the step budget of {} ran out",
                    self.agent.budget.max_steps
                ))));
            }
            wave.truncate(room);
            let ctx = if wave.iter().any(|s| has_template(&s.args)) {
                self.template_context()
            } else {
                minijinja::Value::UNDEFINED
            };
            let first_call = self.calls;
            self.calls += wave.len() as u64;
            let results = {
                let this = &*self;
                let futures = wave
                    .iter()
                    .zip(first_call + 1..)
                    .map(|(s, n)| this.run_step(s, &ctx, n));
                tokio::select! {
                    () = self.cancel.cancelled() => return Ok(Some(Stop::Cancelled)),
                    r = futures::future::join_all(futures) => r,
                }
            };
            for r in results {
                let obs = r?;
                if let Some(ledger) = &self.ledger {
                    ledger
                        .commit_step(&self.step_key(&obs.step_id), &obs)
                        .await?;
                }
                self.outputs
                    .insert(obs.step_id.clone(), (obs.status, obs.output.clone()));
                self.observations.push(obs);
            }
        }
    }

    fn skip(&mut self, s: &Step, reason: String) -> Result<(), AgentError> {
        self.journal(JournalEvent::Skip {
            step_id: s.id.clone(),
            tool: s.tool.clone(),
            reason: reason.clone(),
        })?;
        let obs = Observation {
            step_id: s.id.clone(),
            tool: s.tool.clone(),
            status: StepStatus::Skipped,
            args: s.args.clone(),
            output: None,
            reasons: vec![reason],
            dry_run: self.dry_run,
            attempts: 0,
            duration_us: 0,
        };
        self.outputs
            .insert(s.id.clone(), (StepStatus::Skipped, None));
        self.observations.push(obs);
        Ok(())
    }

    /// Render the step's arguments, then take it down the one path.
    async fn run_step(
        &self,
        step: &Step,
        ctx: &minijinja::Value,
        calls_in_task: u64,
    ) -> Result<Observation, AgentError> {
        let scope = Scope {
            task: self.task,
            cancel: &self.cancel,
            deadline: self.deadline,
            calls_in_task,
            ledger: self.ledger.as_deref(),
            revision: self.step_key(&step.id).revision,
        };
        let args = match self
            .agent
            .renderer
            .render(&step.args, ctx, &self.expressions)
        {
            Ok(a) => a,
            Err(e) => {
                let obs = Observation {
                    step_id: step.id.clone(),
                    tool: step.tool.clone(),
                    status: StepStatus::Failed,
                    args: step.args.clone(),
                    output: None,
                    reasons: vec![format!("arguments: {e}")],
                    dry_run: false,
                    attempts: 0,
                    duration_us: 0,
                };
                let effect = self
                    .agent
                    .tools
                    .get(&step.tool)
                    .map(|t| t.manifest().effect);
                self.agent.journal_call(self.task, &obs, effect)?;
                return Ok(obs);
            }
        };
        self.agent
            .authorize_and_invoke(
                &scope,
                StepCall {
                    step_id: &step.id,
                    tool: &step.tool,
                    args,
                    why: &step.why,
                    timeout_secs: step.timeout_secs,
                    dry_run: self.dry_run,
                },
            )
            .await
    }
}

/// The span a task's work is traced under: who, where, from what (never
/// its arguments or attachments).
fn task_span(task: &Task) -> tracing::Span {
    tracing::info_span!(
        "warden.task",
        task_id = %task.id,
        env = %task.env,
        source = %task.source,
        principal = %task.principal,
        status = tracing::field::Empty,
    )
}
