//! The one authorized, journaled path of a tool call: validate, decide,
//! approve, invoke under the capability gate, journal. Planned steps, the
//! CLI's `plugin call` and every embedder go through here; nothing else
//! runs a tool.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;
use warden_policy::{Entry, PolicyContext, PolicyGate, PolicyInput, Principal};
use warden_types::{CallContext, CapabilityGate, CapabilityRequest, Effect, GateDecision, Verdict};

use super::retry;
use crate::agent::Agent;
use crate::approve::{Approval, ApprovalRequest};
use crate::error::AgentError;
use crate::journal::{
    ApprovalGiven, CallDecided, CallEnded, CapabilityDecided, Journal, JournalEvent,
    RecentMutations,
};
use crate::task::{Observation, StepStatus, Task};

/// Journaled values above this size keep a head and a digest only.
const JOURNAL_VALUE_LIMIT: usize = 8 * 1024;

/// A value as journaled: whole when small, else a head and a digest.
pub(crate) fn journal_value(value: &Value) -> Value {
    use sha2::Digest as _;
    let text = value.to_string();
    if text.len() <= JOURNAL_VALUE_LIMIT {
        return value.clone();
    }
    let mut cut = 2048;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    json!({"truncated": true, "bytes": text.len(), "sha256": hex::encode(sha2::Sha256::digest(text.as_bytes())), "head": &text[..cut]})
}

/// Where a call runs.
pub(crate) struct Scope<'a> {
    pub task: &'a Task,
    pub cancel: &'a CancellationToken,
    pub deadline: Instant,
    /// Calls made in the task so far, this one included.
    pub calls_in_task: u64,
    /// The ledger holding the task, if any: a mutating call is marked in
    /// flight there before it starts.
    pub ledger: Option<&'a dyn super::Ledger>,
    /// The plan revision that added the step (its idempotency key's last part).
    pub revision: u32,
}

/// One call, arguments rendered.
pub(crate) struct StepCall<'a> {
    pub step_id: &'a str,
    pub tool: &'a str,
    pub args: Value,
    pub why: &'a str,
    pub timeout_secs: Option<f64>,
    /// This call is a dry run, whatever the agent's setting.
    pub dry_run: bool,
}

/// The sandbox's gate for one call: the capability policy decides, and
/// every decision is journaled before the guest sees it. A journal that
/// cannot be written denies, and the failure ends the task.
pub(crate) struct JournaledGate {
    policy: PolicyGate,
    journal: Arc<Journal>,
    task_id: String,
    step_id: String,
    tool: String,
    failure: Mutex<Option<AgentError>>,
    /// The call's span: the sandbox may ask from another task (an HTTP
    /// request in flight), so the decision is traced under it explicitly.
    span: tracing::Span,
}

impl JournaledGate {
    /// A gate for `tool`'s capabilities in `task_id`/`step_id`, traced
    /// under `span` (the outbox decides deliveries with one).
    pub(crate) fn new(
        policy: PolicyGate,
        journal: Arc<Journal>,
        (task_id, step_id, tool): (&str, &str, &str),
        span: tracing::Span,
    ) -> Self {
        JournaledGate {
            policy,
            journal,
            task_id: task_id.to_string(),
            step_id: step_id.to_string(),
            tool: tool.to_string(),
            failure: Mutex::new(None),
            span,
        }
    }

    /// The journal error that made it deny, if any.
    pub(crate) fn take_failure(&self) -> Option<AgentError> {
        self.failure.lock().ok().and_then(|mut f| f.take())
    }
}

impl CapabilityGate for JournaledGate {
    fn check(&self, request: &CapabilityRequest) -> GateDecision {
        let _in_call = self.span.enter();
        let record = self.policy.decide(request);
        let decision = PolicyGate::gate_decision(&record);
        let event = JournalEvent::Capability(CapabilityDecided {
            step_id: self.step_id.clone(),
            tool: self.tool.clone(),
            capability: serde_json::to_value(&request.capability).unwrap_or(Value::Null),
            policy: record,
        });
        match self.journal.append(&self.task_id, &event) {
            Ok(_) => decision,
            Err(e) => {
                let denial = GateDecision::deny(format!(
                    "the journal could not be written, so the capability is refused: {e}"
                ));
                if let Ok(mut f) = self.failure.lock() {
                    f.get_or_insert(e);
                }
                denial
            }
        }
    }
}

impl Agent {
    /// The policy input's context for a call in `task`, with the history
    /// counted from the journal.
    pub(crate) fn policy_context(
        &self,
        task: &Task,
        calls_in_task: u64,
    ) -> Result<PolicyContext, AgentError> {
        let recent = self
            .journal
            .recent_mutations(&self.name, &task.principal, &task.env)?;
        Ok(self.context_with(task, calls_in_task, recent))
    }

    fn context_with(
        &self,
        task: &Task,
        calls_in_task: u64,
        recent: RecentMutations,
    ) -> PolicyContext {
        let mut ctx = PolicyContext::default();
        ctx.agent.name = self.name.clone();
        ctx.agent.env = task.env.clone();
        ctx.principal.id = task.principal.clone();
        ctx.principal.roles = task.roles.clone();
        ctx.task.id = task.id.clone();
        ctx.task.goal = task.goal.clone();
        ctx.task.source = task.source.clone();
        ctx.task.break_glass = task.break_glass.clone();
        ctx.history.calls_in_task = calls_in_task;
        ctx.history.mutations_last_hour = recent.by_agent;
        ctx.history.mutations_last_hour_principal = recent.by_principal;
        ctx.history.mutations_last_hour_env = recent.in_env;
        ctx.now = jiff::Timestamp::now().to_string();
        ctx
    }

    pub(crate) fn journal_call(
        &self,
        task: &Task,
        obs: &Observation,
        effect: Option<Effect>,
    ) -> Result<(), AgentError> {
        self.journal.append(
            &task.id,
            &JournalEvent::Call(CallEnded {
                step_id: obs.step_id.clone(),
                tool: obs.tool.clone(),
                effect,
                status: obs.status,
                attempts: obs.attempts,
                dry_run: obs.dry_run,
                duration_us: obs.duration_us,
                args: journal_value(&obs.args),
                output: obs.output.as_ref().map(journal_value),
                reasons: obs.reasons.clone(),
            }),
        )?;
        Ok(())
    }

    /// Take one call from request to outcome: the tool and its arguments
    /// are checked, the policy decides, a human approves where it asks,
    /// the sandbox runs the tool with every capability gated, and each of
    /// these is journaled before the next happens. A journal write that
    /// fails is an error: the task stops before anything else runs.
    pub(crate) async fn authorize_and_invoke(
        &self,
        scope: &Scope<'_>,
        call: StepCall<'_>,
    ) -> Result<Observation, AgentError> {
        let span = tracing::info_span!(
            "warden.step",
            step_id = %call.step_id,
            tool = %call.tool,
            status = tracing::field::Empty,
            dry_run = tracing::field::Empty,
            attempts = tracing::field::Empty,
        );
        self.authorize_and_invoke_in(scope, call)
            .instrument(span.clone())
            .await
            .inspect(|obs| {
                span.record("status", obs.status.as_str());
                span.record("dry_run", obs.dry_run);
                span.record("attempts", obs.attempts);
            })
    }

    async fn authorize_and_invoke_in(
        &self,
        scope: &Scope<'_>,
        call: StepCall<'_>,
    ) -> Result<Observation, AgentError> {
        let started = Instant::now();
        let task = scope.task;
        let mut obs = Observation {
            step_id: call.step_id.to_string(),
            tool: call.tool.to_string(),
            status: StepStatus::Failed,
            args: call.args,
            output: None,
            reasons: Vec::new(),
            dry_run: false,
            attempts: 0,
            duration_us: 0,
        };
        let end = |mut obs: Observation, effect: Option<Effect>| {
            obs.duration_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
            self.journal_call(task, &obs, effect).map(|()| obs)
        };
        let Some(plugin) = self.tools.get(call.tool) else {
            obs.reasons.push(format!(
                "unknown tool `{}` (loaded: {})",
                call.tool,
                self.tools.keys().cloned().collect::<Vec<_>>().join(", ")
            ));
            return end(obs, None);
        };
        let manifest = plugin.manifest();
        let effect = Some(manifest.effect);
        if let Err(e) = plugin.validate_input(&obs.args) {
            obs.reasons.push(e.to_string());
            return end(obs, effect);
        }
        let mutates = manifest.effect != Effect::ReadOnly;
        let dry_run = (self.dry_run || call.dry_run) && mutates;
        if dry_run && !manifest.supports_dry_run {
            obs.status = StepStatus::Skipped;
            obs.reasons.push(format!(
                "dry run: `{}` is {} and cannot dry-run, so it was not called",
                manifest.name, manifest.effect
            ));
            return end(obs, effect);
        }
        obs.dry_run = dry_run;
        // The history is read and the decision recorded under one lock, so a
        // change limit holds across concurrent processes: the ledger's,
        // across every worker of a cluster; else the journal's, across the
        // processes of this machine.
        let who = (
            self.name.as_str(),
            task.principal.as_str(),
            task.env.as_str(),
        );
        let decide_call = |recent: RecentMutations| {
            let ctx = self.context_with(task, scope.calls_in_task, recent);
            let record = self.policy.decide(
                Entry::Call,
                &PolicyInput::call(&ctx, manifest, obs.args.clone(), call.step_id, dry_run),
            );
            let verdict = record.decision.verdict;
            let reasons = record.decision.reasons.clone();
            let decided = CallDecided {
                step_id: call.step_id.to_string(),
                tool: manifest.name.clone(),
                effect: manifest.effect,
                dry_run,
                policy: record,
            };
            let change = decided.is_allowed_change();
            (
                JournalEvent::Decision(decided),
                (ctx, verdict, reasons),
                change,
            )
        };
        let mut shared = None;
        let event = match scope.ledger {
            Some(ledger) => {
                ledger
                    .decide(&task.id, who, &mut |recent| {
                        let (event, out, change) = decide_call(recent);
                        shared = Some(out);
                        (event, change)
                    })
                    .await?
            }
            None => None,
        };
        let (ctx, verdict, reasons) = match (event, shared) {
            (Some(event), Some(out)) => {
                self.journal.append(&task.id, &event)?;
                out
            }
            _ => self.journal.decide(&task.id, who, |recent| {
                let (event, out, _) = decide_call(recent);
                (event, out)
            })?,
        };
        match verdict {
            Verdict::Allow => {}
            Verdict::Deny => {
                obs.status = StepStatus::Denied;
                obs.reasons = reasons;
                return end(obs, effect);
            }
            Verdict::NeedsApproval => {
                let request = ApprovalRequest {
                    task_id: task.id.clone(),
                    step_id: call.step_id.to_string(),
                    tool: manifest.name.clone(),
                    effect: manifest.effect.as_str().into(),
                    env: task.env.clone(),
                    principal: task.principal.clone(),
                    args: obs.args.clone(),
                    reasons: reasons.clone(),
                    why: call.why.to_string(),
                };
                let answer = tokio::select! {
                    () = scope.cancel.cancelled() => Approval::no("cancel", "the task was cancelled while waiting"),
                    a = self.approver.approve(&request) => a,
                };
                let (approved, note, policy) =
                    self.check_approval(&ctx, manifest, &request, &answer);
                let change = approved && !dry_run && mutates;
                self.journal_counted(
                    scope,
                    who,
                    change,
                    JournalEvent::Approval(ApprovalGiven {
                        step_id: call.step_id.to_string(),
                        tool: manifest.name.clone(),
                        effect: manifest.effect,
                        dry_run,
                        approved,
                        approver: answer.by.clone(),
                        principal: task.principal.clone(),
                        note: note.clone(),
                        at: jiff::Timestamp::now().to_string(),
                        reasons,
                        policy,
                    }),
                )
                .await?;
                self.journal.checkpoint()?;
                if !approved {
                    obs.status = StepStatus::Rejected;
                    obs.reasons = vec![format!(
                        "not approved by {}{}",
                        answer.by,
                        note.map(|n| format!(": {n}")).unwrap_or_default()
                    )];
                    return end(obs, effect);
                }
            }
        }

        let key = super::StepKey {
            task_id: task.id.clone(),
            step_id: call.step_id.to_string(),
            revision: scope.revision,
        };
        let call_ctx = CallContext {
            task_id: task.id.clone(),
            step_id: call.step_id.to_string(),
            dry_run,
            idempotency_key: (mutates && !dry_run).then(|| key.idempotency_key()),
        };
        if mutates
            && !dry_run
            && let Some(ledger) = scope.ledger
        {
            // From here until its outcome is committed, a worker that takes
            // the task over finds the call in flight and does not repeat it.
            ledger.begin_step(&key).await?;
        }
        let timeout = call
            .timeout_secs
            .filter(|t| t.is_finite() && *t > 0.0)
            // `try_`: a runbook may say 1e20 seconds; that means "no shorter
            // than the deadline", not a panic.
            .map_or(self.budget.step_timeout, |t| {
                Duration::try_from_secs_f64(t).unwrap_or(Duration::MAX)
            })
            .min(scope.deadline.saturating_duration_since(Instant::now()));
        let max_attempts = if mutates { 1 } else { self.budget.retries + 1 };
        let sandboxed = tracing::info_span!(
            "warden.sandbox.call",
            tool = %manifest.name,
            version = %manifest.version,
            effect = %manifest.effect,
            dry_run,
        );
        let gate = Arc::new(JournaledGate::new(
            PolicyGate::new(self.policy.clone(), ctx, manifest),
            self.journal.clone(),
            (&task.id, call.step_id, &manifest.name),
            sandboxed.clone(),
        ));
        let attempts = retry::invoke(
            plugin,
            &call_ctx,
            &obs.args,
            gate.clone(),
            timeout,
            max_attempts,
            &self.budget,
            scope.deadline,
            scope.cancel,
        )
        .instrument(sandboxed)
        .await;
        obs.attempts = attempts.count;
        match attempts.result {
            Ok(out) => {
                obs.status = StepStatus::Succeeded;
                obs.reasons = out
                    .denials
                    .iter()
                    .map(|d| format!("capability denied: {}", d.reason))
                    .collect();
                obs.output = Some(out.output);
            }
            Err(reason) => obs.reasons = vec![reason],
        }
        if let Some(e) = gate.take_failure() {
            return Err(e);
        }
        end(obs, effect)
    }

    /// Journal `event`; when it is a `change` and a ledger holds the task,
    /// count it in the history every worker shares first.
    async fn journal_counted(
        &self,
        scope: &Scope<'_>,
        who: (&str, &str, &str),
        change: bool,
        event: JournalEvent,
    ) -> Result<(), AgentError> {
        if change && let Some(ledger) = scope.ledger {
            let counted = ledger
                .decide(&scope.task.id, who, &mut |_| (event.clone(), true))
                .await?;
            if let Some(event) = counted {
                self.journal.append(&scope.task.id, &event)?;
                return Ok(());
            }
        }
        self.journal.append(&scope.task.id, &event)?;
        Ok(())
    }

    /// A human said yes or no; the approval policy (`data.warden.approve`)
    /// has the last word on a yes: it refuses, for example, someone
    /// approving their own call in a protected environment.
    fn check_approval(
        &self,
        ctx: &PolicyContext,
        manifest: &warden_types::ToolManifest,
        request: &ApprovalRequest,
        answer: &Approval,
    ) -> (bool, Option<String>, Option<warden_policy::DecisionRecord>) {
        if !answer.approved {
            return (false, answer.note.clone(), None);
        }
        let approver = Principal {
            id: answer.by.clone(),
            roles: answer.roles.clone(),
        };
        let record = self.policy.decide(
            Entry::Approve,
            &PolicyInput::approve(
                ctx,
                manifest,
                request.args.clone(),
                &request.step_id,
                &approver,
                &request.reasons,
            ),
        );
        let d = &record.decision;
        if d.verdict == Verdict::Allow {
            (true, answer.note.clone(), Some(record))
        } else {
            let why = format!("the approval policy refused it: {}", d.reasons.join("; "));
            (false, Some(why), Some(record))
        }
    }
}
