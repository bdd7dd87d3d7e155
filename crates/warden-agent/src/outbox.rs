//! Delivering the outbox on the agent's path: each queued request is
//! decided again by the capability policy, under the task and step that
//! queued it, and each attempt is journaled there.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};

use warden_policy::{PolicyContext, PolicyGate};
use warden_sandbox::{Delivery, DeliveryOutcome, DeliveryPass, OutboxEntry, Sandbox};
use warden_types::{CapabilityGate, CapabilityRequest, GateDecision};

use crate::agent::Agent;
use crate::error::AgentError;
use crate::executor::JournaledGate;
use crate::journal::{JournalEvent, OutboxAttempted, TaskStarted, read_journal};

impl Agent {
    /// One delivery pass over the outbox of every sandbox the agent's
    /// tools run in (see [`Sandbox::deliver_outbox`] and
    /// [`SandboxConfig::outbox`](warden_sandbox::SandboxConfig::outbox)).
    ///
    /// Each entry is decided by the capability policy as the call that
    /// queued it would be now (its task's principal, environment and goal
    /// read back from the journal, the current time), each decision is
    /// journaled under that task and step, and so is each attempt's
    /// outcome: an [`OutboxAttempted`] with `delivered`, `retry` or
    /// `dropped` and the reason. An entry this host cannot send (it does
    /// not hold the secret) is left alone and not journaled.
    ///
    /// Returns every attempt; an empty list when no tool's sandbox has an
    /// outbox or another process is delivering it. A journal that cannot
    /// be written is an error, as everywhere on the agent's path.
    pub async fn deliver_outbox(&self, pass: DeliveryPass) -> Result<Vec<Delivery>, AgentError> {
        let mut sandboxes: Vec<Sandbox> = Vec::new();
        for plugin in self.tools.values() {
            let sandbox = plugin.sandbox();
            if sandbox.outbox().is_some() && !sandboxes.iter().any(|s| s.same_as(&sandbox)) {
                sandboxes.push(sandbox);
            }
        }
        let tasks: OnceLock<BTreeMap<String, TaskStarted>> = OnceLock::new();
        let gates: Mutex<Vec<Arc<JournaledGate>>> = Mutex::new(Vec::new());
        let gate_for = |entry: &OutboxEntry| -> Arc<dyn CapabilityGate> {
            let Some(plugin) = self.tools.get(&entry.plugin) else {
                let reason = format!(
                    "the tool `{}` that queued it is not loaded, so no policy can decide it",
                    entry.plugin
                );
                return Arc::new(move |_: &CapabilityRequest| GateDecision::deny(reason.clone()));
            };
            let tasks = tasks.get_or_init(|| self.started_tasks());
            let ctx = self.outbox_context(&entry.task_id, tasks.get(&entry.task_id));
            let span = tracing::info_span!(
                "warden.outbox.deliver",
                outbox_id = %entry.id,
                tool = %entry.plugin,
                secret = %entry.secret,
            );
            let gate = Arc::new(JournaledGate::new(
                PolicyGate::new(self.policy.clone(), ctx, plugin.manifest()),
                self.journal.clone(),
                (&entry.task_id, &entry.step_id, &entry.plugin),
                span,
            ));
            if let Ok(mut g) = gates.lock() {
                g.push(gate.clone());
            }
            gate
        };
        let mut all = Vec::new();
        for sandbox in &sandboxes {
            let done = sandbox.deliver_outbox(&gate_for, pass.clone()).await?;
            for delivery in &done {
                if let Some(event) = journal_event(delivery) {
                    self.journal.append(&delivery.entry.task_id, &event)?;
                }
            }
            all.extend(done);
        }
        let failure = gates
            .lock()
            .ok()
            .and_then(|g| g.iter().find_map(|gate| gate.take_failure()));
        if let Some(e) = failure {
            return Err(e);
        }
        if !all.is_empty() {
            self.journal.checkpoint()?;
        }
        Ok(all)
    }

    /// Every task's start record, by task id. A journal that cannot be
    /// read leaves the map empty: the policy then decides without the
    /// task's principal and environment (and a default-deny bundle denies).
    fn started_tasks(&self) -> BTreeMap<String, TaskStarted> {
        match read_journal(self.journal.path(), self.journal.key()) {
            Ok(records) => records
                .into_iter()
                .filter_map(|r| match r.event {
                    JournalEvent::Task(t) => Some((r.task_id, t)),
                    _ => None,
                })
                .collect(),
            Err(e) => {
                tracing::warn!(error = %e, "reading the journal for the outbox's tasks");
                BTreeMap::new()
            }
        }
    }

    fn outbox_context(&self, task_id: &str, started: Option<&TaskStarted>) -> PolicyContext {
        let mut ctx = PolicyContext::default();
        ctx.agent.name = self.name.clone();
        ctx.task.id = task_id.to_string();
        if let Some(t) = started {
            ctx.agent.env = t.env.clone();
            ctx.principal.id = t.principal.clone();
            ctx.principal.roles = t.roles.clone();
            ctx.task.goal = t.goal.clone();
            ctx.task.source = t.source.clone();
            ctx.task.break_glass = t.break_glass.clone();
            if let Ok(recent) = self
                .journal
                .recent_mutations(&self.name, &t.principal, &t.env)
            {
                ctx.history.mutations_last_hour = recent.by_agent;
                ctx.history.mutations_last_hour_principal = recent.by_principal;
                ctx.history.mutations_last_hour_env = recent.in_env;
            }
        }
        ctx.now = jiff::Timestamp::now().to_string();
        ctx
    }
}

/// The journal record of one attempt; none for an entry left alone.
fn journal_event(delivery: &Delivery) -> Option<JournalEvent> {
    let e = &delivery.entry;
    let (outcome, status, reason, next_at) = match &delivery.outcome {
        DeliveryOutcome::Delivered { status } => ("delivered", Some(*status), None, None),
        DeliveryOutcome::Retry { reason, next_at_ms } => {
            let next_at = i64::try_from(*next_at_ms)
                .ok()
                .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
                .map(|t| t.to_string());
            ("retry", None, Some(reason.clone()), next_at)
        }
        DeliveryOutcome::Dropped { reason } => ("dropped", None, Some(reason.clone()), None),
        _ => return None,
    };
    Some(JournalEvent::Outbox(OutboxAttempted {
        id: e.id.clone(),
        step_id: e.step_id.clone(),
        tool: e.plugin.clone(),
        secret: e.secret.clone(),
        outcome: outcome.into(),
        status,
        attempts: e.attempts,
        reason,
        next_at,
    }))
}
