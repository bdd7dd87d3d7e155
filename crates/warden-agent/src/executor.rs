//! Running a task: recall, plan, policy, approvals, calls, journal, outcome.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng as _;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use warden_policy::{Entry, PlanStep, PolicyContext, PolicyGate, PolicyInput, ToolInfo};
use warden_sandbox::SandboxError;
use warden_types::{CallContext, Effect, Verdict};

use crate::agent::Agent;
use crate::approve::ApprovalRequest;
use crate::case::generalize;
use crate::error::AgentError;
use crate::planner::{Case, PlanContext, Proposal};
use crate::task::{Observation, Outcome, OutcomeStatus, Plan, Step, StepStatus, Task, truthy};
use crate::template::{Renderer, has_template};

/// Journaled outputs above this size keep a head and a digest only.
const JOURNAL_OUTPUT_LIMIT: usize = 8 * 1024;

/// How the task loop ended early.
enum Stop {
    Budget(String),
    Cancelled,
}

struct Run<'a> {
    agent: &'a Agent,
    task: &'a Task,
    cancel: CancellationToken,
    renderer: Renderer,
    started: Instant,
    deadline: Instant,
    plan: Plan,
    observations: Vec<Observation>,
    outputs: BTreeMap<String, (StepStatus, Option<Value>)>,
    tokens: u64,
    cost: Option<f64>,
    calls: u64,
    /// Steps skipped because their condition did not hold: dependents may
    /// still run (a remediation that was not needed).
    not_needed: HashSet<String>,
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
        let started = Instant::now();
        let mut run = Run {
            agent: self,
            task: &task,
            cancel,
            renderer: Renderer::new(),
            started,
            deadline: started + self.budget.wall_time,
            plan: Plan::default(),
            observations: Vec::new(),
            outputs: BTreeMap::new(),
            tokens: 0,
            cost: None,
            calls: 0,
            not_needed: HashSet::new(),
        };
        run.go().await
    }

    pub(crate) fn journal(&self, task: &str, kind: &str, data: Value) -> Result<(), AgentError> {
        if let Some(j) = &self.journal {
            j.append(task, kind, data)?;
        }
        Ok(())
    }

    fn mutations_last_hour(&self) -> u64 {
        let Ok(mut log) = self.mutations.lock() else {
            return 0;
        };
        let hour = Duration::from_secs(3600);
        while log.front().is_some_and(|t| t.elapsed() > hour) {
            log.pop_front();
        }
        log.len() as u64
    }

    fn record_mutation(&self) {
        if let Ok(mut log) = self.mutations.lock() {
            log.push_back(Instant::now());
        }
    }
}

fn attachment_digest(task: &Task) -> Value {
    use sha2::Digest as _;
    let mut out = serde_json::Map::new();
    for (name, value) in &task.attachments {
        let text = value.to_string();
        out.insert(
            name.clone(),
            json!({"bytes": text.len(), "sha256": hex::encode(sha2::Sha256::digest(text.as_bytes()))}),
        );
    }
    Value::Object(out)
}

/// The output as journaled: whole when small, else a head and a digest.
fn journal_output(output: &Value) -> Value {
    use sha2::Digest as _;
    let text = output.to_string();
    if text.len() <= JOURNAL_OUTPUT_LIMIT {
        return output.clone();
    }
    let mut cut = 2048;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    json!({"truncated": true, "bytes": text.len(), "sha256": hex::encode(sha2::Sha256::digest(text.as_bytes())), "head": &text[..cut]})
}

impl Run<'_> {
    fn journal(&self, kind: &str, data: Value) -> Result<(), AgentError> {
        self.agent.journal(&self.task.id, kind, data)
    }

    fn policy_context(&self) -> PolicyContext {
        let mut ctx = PolicyContext::default();
        ctx.agent.name = self.agent.name.clone();
        ctx.agent.env = self.task.env.clone();
        ctx.principal.id = self.task.principal.clone();
        ctx.principal.roles = self.task.roles.clone();
        ctx.task.id = self.task.id.clone();
        ctx.task.goal = self.task.goal.clone();
        ctx.task.source = self.task.source.clone();
        ctx.task.break_glass = self.task.break_glass.clone();
        ctx.history.calls_in_task = self.calls;
        ctx.history.mutations_last_hour = self.agent.mutations_last_hour();
        ctx.now = jiff::Timestamp::now().to_string();
        ctx
    }

    fn template_context(&self) -> Value {
        let steps: serde_json::Map<String, Value> = self
            .outputs
            .iter()
            .map(|(id, (status, output))| {
                (
                    id.clone(),
                    json!({"status": status.as_str(), "output": output.clone().unwrap_or(Value::Null)}),
                )
            })
            .collect();
        json!({
            "task": {"id": self.task.id, "goal": self.task.goal, "env": self.task.env,
                     "source": self.task.source, "principal": self.task.principal},
            "env": self.task.env,
            "alert": self.task.alert,
            "attachments": self.task.attachments,
            "steps": steps,
        })
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
            self.journal(
                "llm",
                json!({"planner": p.planner, "tokens": p.tokens, "cost_usd": p.cost_usd, "total_tokens": self.tokens}),
            )?;
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
        let mut task_record = serde_json::to_value(task).unwrap_or(Value::Null);
        if let Some(obj) = task_record.as_object_mut() {
            obj.insert("attachments".into(), attachment_digest(task));
        }
        self.journal("task", task_record)?;
        let cases = self.recall()?;
        let agent = self.agent;
        let ctx = PlanContext {
            task,
            tools: &agent.manifests,
            cases: &cases,
        };
        let first = match self.ask(agent.planner.plan(&ctx)).await {
            Ok(Ok(p)) => p,
            Ok(Err(e)) => return self.finish_refused(format!("the planner failed: {e}"), None),
            Err(stop) => return self.finish_stopped(stop, None),
        };
        self.account(&first)?;
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
            if let Err(why) = self.add_steps(&proposal) {
                return self.finish_refused(why, Some(&proposal));
            }
            if let Some(stop) = self.run_pending().await? {
                return self.finish_stopped(stop, Some((&planner, summary.as_deref())));
            }
            if proposal.done {
                break;
            }
            let next = match self
                .ask(agent.planner.observe(&ctx, &self.observations))
                .await
            {
                Ok(Ok(p)) => p,
                Ok(Err(e)) => {
                    return self.finish_refused(format!("the planner failed: {e}"), None);
                }
                Err(stop) => {
                    return self.finish_stopped(stop, Some((&planner, summary.as_deref())));
                }
            };
            self.account(&next)?;
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
        self.journal(
            "recall",
            json!({"cases": cases.iter().map(|c| json!({"id": c.id, "title": c.title, "score": c.score, "resolution": c.resolution, "has_plan": c.plan.is_some()})).collect::<Vec<_>>()}),
        )?;
        Ok(cases)
    }

    /// Check and append the proposal's steps; the plan policy sees them first.
    fn add_steps(&mut self, p: &Proposal) -> Result<(), String> {
        let mut ids: HashSet<&str> = self.plan.steps.iter().map(|s| s.id.as_str()).collect();
        for s in &p.steps {
            if !ids.insert(s.id.as_str()) {
                return Err(format!("the plan has two steps with id `{}`", s.id));
            }
        }
        let ctx = self.policy_context();
        let steps: Vec<PlanStep> = p
            .steps
            .iter()
            .filter_map(|s| {
                let tool = self.agent.tools.get(&s.tool)?;
                Some(PlanStep {
                    id: s.id.clone(),
                    tool: ToolInfo::from(tool.manifest()),
                    args: s.args.clone(),
                    dry_run: self.agent.dry_run,
                })
            })
            .collect();
        let record = self
            .agent
            .policy
            .decide(Entry::Plan, &PolicyInput::plan(&ctx, steps));
        let d = &record.decision;
        let _ = self.journal(
            "plan",
            json!({"planner": p.planner, "note": p.note, "steps": p.steps,
                   "decision": {"verdict": d.verdict.as_str(), "reasons": d.reasons, "bundle": record.bundle_hash}}),
        );
        if d.verdict == Verdict::Deny {
            return Err(format!(
                "the policy refused the plan: {}",
                d.reasons.join("; ")
            ));
        }
        self.plan.steps.extend(p.steps.iter().cloned());
        Ok(())
    }

    /// Run every step not yet run, in dependency order.
    async fn run_pending(&mut self) -> Result<Option<Stop>, AgentError> {
        loop {
            let pending: Vec<Step> = self
                .plan
                .steps
                .iter()
                .filter(|s| !self.outputs.contains_key(&s.id))
                .cloned()
                .collect();
            if pending.is_empty() {
                return Ok(None);
            }
            if let Some(stop) = self.check_budget() {
                return Ok(Some(stop));
            }
            let ready: Vec<&Step> = pending
                .iter()
                .filter(|s| s.depends_on.iter().all(|d| self.outputs.contains_key(d)))
                .collect();
            if ready.is_empty() {
                for s in &pending {
                    self.skip(
                        s,
                        "its dependencies never ran (unknown step or a cycle)".into(),
                    )?;
                }
                return Ok(None);
            }
            let mut wave: Vec<Step> = Vec::new();
            for s in ready {
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
                minijinja::Value::from_serialize(self.template_context())
            } else {
                minijinja::Value::UNDEFINED
            };
            let policy_ctx = self.policy_context();
            self.calls += wave.len() as u64;
            let results = {
                let this = &*self;
                let futures = wave.iter().map(|s| this.run_step(s, &ctx, &policy_ctx));
                tokio::select! {
                    () = self.cancel.cancelled() => return Ok(Some(Stop::Cancelled)),
                    r = futures::future::join_all(futures) => r,
                }
            };
            for r in results {
                let obs = r?;
                self.outputs
                    .insert(obs.step.clone(), (obs.status, obs.output.clone()));
                self.observations.push(obs);
            }
        }
    }

    fn skip(&mut self, s: &Step, reason: String) -> Result<(), AgentError> {
        self.journal(
            "skip",
            json!({"step": s.id, "tool": s.tool, "reason": reason}),
        )?;
        let obs = Observation {
            step: s.id.clone(),
            tool: s.tool.clone(),
            status: StepStatus::Skipped,
            args: s.args.clone(),
            output: None,
            reasons: vec![reason],
            dry_run: self.agent.dry_run,
            attempts: 0,
            duration_us: 0,
        };
        self.outputs
            .insert(s.id.clone(), (StepStatus::Skipped, None));
        self.observations.push(obs);
        Ok(())
    }

    async fn run_step(
        &self,
        step: &Step,
        ctx: &minijinja::Value,
        policy_ctx: &PolicyContext,
    ) -> Result<Observation, AgentError> {
        let started = Instant::now();
        let mut obs = Observation {
            step: step.id.clone(),
            tool: step.tool.clone(),
            status: StepStatus::Failed,
            args: step.args.clone(),
            output: None,
            reasons: Vec::new(),
            dry_run: false,
            attempts: 0,
            duration_us: 0,
        };
        let end = |mut obs: Observation, this: &Self| -> Result<Observation, AgentError> {
            obs.duration_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
            this.journal(
                "call",
                json!({"step": obs.step, "tool": obs.tool, "status": obs.status.as_str(),
                       "attempts": obs.attempts, "dry_run": obs.dry_run, "duration_us": obs.duration_us,
                       "args": journal_output(&obs.args), "output": obs.output.as_ref().map(journal_output),
                       "reasons": obs.reasons}),
            )?;
            Ok(obs)
        };
        let Some(plugin) = self.agent.tools.get(&step.tool) else {
            obs.reasons.push(format!(
                "unknown tool `{}` (loaded: {})",
                step.tool,
                self.agent
                    .tools
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            return end(obs, self);
        };
        let manifest = plugin.manifest();
        let args = match self.renderer.render(&step.args, ctx) {
            Ok(a) => a,
            Err(e) => {
                obs.reasons.push(format!("arguments: {e}"));
                return end(obs, self);
            }
        };
        obs.args = args.clone();
        if let Err(e) = plugin.validate_input(&args) {
            obs.reasons.push(e.to_string());
            return end(obs, self);
        }
        let mutates = manifest.effect != Effect::ReadOnly;
        let dry_run = self.agent.dry_run && mutates;
        if dry_run && !manifest.supports_dry_run {
            obs.status = StepStatus::Skipped;
            obs.reasons.push(format!(
                "dry run: `{}` is {} and cannot dry-run, so it was not called",
                manifest.name, manifest.effect
            ));
            return end(obs, self);
        }
        obs.dry_run = dry_run;
        let record = self.agent.policy.decide(
            Entry::Call,
            &PolicyInput::call(policy_ctx, manifest, args.clone(), &step.id, dry_run),
        );
        let d = &record.decision;
        self.journal(
            "decision",
            json!({"step": step.id, "tool": manifest.name, "effect": manifest.effect.as_str(),
                   "verdict": d.verdict.as_str(), "reasons": d.reasons, "obligations": d.obligations,
                   "bundle": record.bundle_hash}),
        )?;
        match d.verdict {
            Verdict::Allow => {}
            Verdict::Deny => {
                obs.status = StepStatus::Denied;
                obs.reasons = d.reasons.clone();
                return end(obs, self);
            }
            Verdict::NeedsApproval => {
                let request = ApprovalRequest {
                    task: self.task.id.clone(),
                    step: step.id.clone(),
                    tool: manifest.name.clone(),
                    effect: manifest.effect.as_str().into(),
                    env: self.task.env.clone(),
                    args: args.clone(),
                    reasons: d.reasons.clone(),
                    why: step.why.clone(),
                };
                let answer = tokio::select! {
                    () = self.cancel.cancelled() => crate::Approval::no("cancel", "the task was cancelled while waiting"),
                    a = self.agent.approver.approve(&request) => a,
                };
                self.journal(
                    "approval",
                    json!({"step": step.id, "tool": manifest.name, "approved": answer.approved,
                           "by": answer.by, "note": answer.note, "at": jiff::Timestamp::now().to_string(),
                           "reasons": d.reasons}),
                )?;
                if let Some(j) = &self.agent.journal {
                    j.checkpoint()?;
                }
                if !answer.approved {
                    obs.status = StepStatus::Rejected;
                    obs.reasons = vec![format!(
                        "not approved by {}{}",
                        answer.by,
                        answer.note.map(|n| format!(": {n}")).unwrap_or_default()
                    )];
                    return end(obs, self);
                }
            }
        }
        let gate = Arc::new(PolicyGate::new(
            self.agent.policy.clone(),
            policy_ctx.clone(),
            manifest,
        ));
        let call_ctx = CallContext {
            task_id: self.task.id.clone(),
            step_id: step.id.clone(),
            dry_run,
        };
        let budget = &self.agent.budget;
        let timeout = step
            .timeout_secs
            .filter(|t| t.is_finite() && *t > 0.0)
            .map_or(budget.step_timeout, Duration::from_secs_f64)
            .min(self.deadline.saturating_duration_since(Instant::now()));
        let max_attempts = if mutates { 1 } else { budget.retries + 1 };
        loop {
            obs.attempts += 1;
            let result =
                tokio::time::timeout(timeout, plugin.invoke(&call_ctx, &args, gate.clone())).await;
            if mutates && !dry_run {
                self.agent.record_mutation();
            }
            let retryable = match &result {
                Ok(Err(e)) => matches!(
                    e,
                    SandboxError::Timeout { .. }
                        | SandboxError::Tool {
                            kind: warden_sandbox::ToolErrorKind::Failed,
                            ..
                        }
                ),
                _ => true,
            };
            let err = match result {
                Ok(Ok(out)) => {
                    obs.status = StepStatus::Succeeded;
                    obs.reasons = out
                        .denials
                        .iter()
                        .map(|d| format!("capability denied: {}", d.reason))
                        .collect();
                    obs.output = Some(out.output);
                    return end(obs, self);
                }
                Ok(Err(e)) => e.to_string(),
                Err(_) => format!("the step timed out after {timeout:?}"),
            };
            obs.reasons = vec![err];
            if obs.attempts >= max_attempts || !retryable || Instant::now() >= self.deadline {
                return end(obs, self);
            }
            let base =
                budget.retry_base.as_secs_f64() * f64::from(1u32 << (obs.attempts - 1).min(10));
            let jitter = rand::rng().random_range(0.5..1.5);
            let delay = Duration::from_secs_f64(base * jitter);
            tracing::info!(step = %step.id, attempt = obs.attempts, ?delay, reason = %obs.reasons[0], "retrying a read-only call");
            tokio::select! {
                () = self.cancel.cancelled() => return end(obs, self),
                () = tokio::time::sleep(delay) => {}
            }
        }
    }

    fn verdict(&self) -> (OutcomeStatus, String) {
        if let Some(o) = self.observations.iter().find(|o| {
            matches!(
                o.status,
                StepStatus::Failed | StepStatus::Denied | StepStatus::Rejected
            )
        }) {
            return (
                OutcomeStatus::Unresolved,
                format!(
                    "step `{}` ({}) {}: {}",
                    o.step,
                    o.tool,
                    o.status.as_str(),
                    o.reasons.join("; ")
                ),
            );
        }
        let verifies: Vec<&Step> = self.plan.steps.iter().filter(|s| s.verify).collect();
        for s in &verifies {
            match self.outputs.get(&s.id) {
                Some((StepStatus::Succeeded, Some(out))) if out.get("ok").is_none_or(truthy) => {}
                Some((StepStatus::Skipped, _)) if self.agent.dry_run => {}
                _ => {
                    return (
                        OutcomeStatus::Unresolved,
                        format!("verification step `{}` did not pass", s.id),
                    );
                }
            }
        }
        let how = if verifies.is_empty() {
            "every step ran".to_string()
        } else {
            format!(
                "every step ran and {} verification(s) passed",
                verifies.len()
            )
        };
        (OutcomeStatus::Resolved, how)
    }

    fn summary(&self, template: Option<&str>) -> String {
        if let Some(t) = template {
            let ctx = self.template_context();
            match self.renderer.render_text(t, &ctx) {
                Ok(s) => return s.trim().to_string(),
                Err(e) => {
                    tracing::warn!(error = %e, "the summary template failed; using the generated summary")
                }
            }
        }
        self.observations
            .iter()
            .map(|o| format!("{} {} ({})", mark(o.status), o.step, o.tool))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn outcome(
        &self,
        status: OutcomeStatus,
        reason: String,
        planner: &str,
        summary: String,
    ) -> Outcome {
        Outcome {
            task: self.task.id.clone(),
            status,
            reason,
            summary,
            planner: planner.to_string(),
            observations: self.observations.clone(),
            tokens: self.tokens,
            cost_usd: self.cost,
            duration_ms: u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
            journal: self.agent.journal.as_ref().map(|j| j.path().to_path_buf()),
        }
    }

    fn close(&self, outcome: Outcome) -> Result<Outcome, AgentError> {
        self.journal(
            "outcome",
            json!({"status": outcome.status.as_str(), "reason": outcome.reason, "summary": outcome.summary,
                   "planner": outcome.planner, "steps": outcome.observations.len(),
                   "tokens": outcome.tokens, "cost_usd": outcome.cost_usd, "duration_ms": outcome.duration_ms}),
        )?;
        if let Some(j) = &self.agent.journal {
            j.checkpoint()?;
        }
        tracing::info!(task = %outcome.task, status = outcome.status.as_str(), reason = %outcome.reason, "task ended");
        Ok(outcome)
    }

    fn finish(&self, planner: &str, summary: Option<&str>) -> Result<Outcome, AgentError> {
        let (status, reason) = self.verdict();
        let summary = self.summary(summary);
        if status == OutcomeStatus::Resolved && !self.agent.dry_run {
            self.learn(planner, &summary);
        }
        self.close(self.outcome(status, reason, planner, summary))
    }

    fn finish_refused(&self, reason: String, p: Option<&Proposal>) -> Result<Outcome, AgentError> {
        let planner = p.map(|p| p.planner.clone()).unwrap_or_default();
        let summary = p
            .and_then(|p| p.summary.clone())
            .unwrap_or_else(|| reason.clone());
        self.close(self.outcome(OutcomeStatus::Refused, reason, &planner, summary))
    }

    fn finish_stopped(
        &self,
        stop: Stop,
        p: Option<(&str, Option<&str>)>,
    ) -> Result<Outcome, AgentError> {
        let (status, reason) = match stop {
            Stop::Budget(r) => (OutcomeStatus::Stopped, r),
            Stop::Cancelled => (
                OutcomeStatus::Cancelled,
                "cancelled before the task ended".to_string(),
            ),
        };
        self.journal("stop", json!({"status": status.as_str(), "reason": reason}))?;
        let (planner, template) = p.unwrap_or(("", None));
        let summary = self.summary(template);
        self.close(self.outcome(status, reason, planner, summary))
    }

    /// Remember a resolved alert and the plan that resolved it.
    fn learn(&self, planner: &str, summary: &str) {
        let (Some(memory), true) = (&self.agent.memory, self.agent.learn) else {
            return;
        };
        let Some(alert) = &self.task.alert else {
            return;
        };
        let plan = generalize(&self.plan, Some(alert));
        let mut incident = warden_memory::Incident::new(
            format!("warden:{}", self.task.id),
            self.task.goal.clone(),
            self.task.text(),
        )
        .with_resolution(format!("{summary} (planned by {planner})"));
        incident.service = alert.service.clone();
        incident.severity = Some(alert.severity.clone());
        incident.labels = alert
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        incident.plan = serde_json::to_value(&plan).ok();
        let result = match memory.lock() {
            Ok(mut m) => m.ingest(vec![incident]).map(|_| ()),
            Err(_) => return,
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, "could not remember the resolved incident");
        }
    }
}

fn mark(s: StepStatus) -> &'static str {
    match s {
        StepStatus::Succeeded => "✓",
        StepStatus::Skipped => "–",
        _ => "✗",
    }
}
