//! How a task ends: the verdict over its steps, the summary, the outcome
//! journaled and checkpointed, and what is remembered for next time.

use crate::case::generalize;
use crate::error::AgentError;
use crate::journal::{JournalEvent, OutcomeReached};
use crate::planner::Proposal;
use crate::task::{Outcome, OutcomeStatus, Step, StepStatus, truthy};

use super::{Run, Stop};

impl Run<'_> {
    pub(super) fn verdict(&self) -> (OutcomeStatus, String) {
        if let Some(o) = self.observations.iter().find(|o| {
            matches!(
                o.status,
                StepStatus::Failed
                    | StepStatus::Denied
                    | StepStatus::Rejected
                    | StepStatus::Unknown
            )
        }) {
            return (
                OutcomeStatus::Unresolved,
                format!(
                    "step `{}` ({}) {}: {}",
                    o.step_id,
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
                Some((StepStatus::Skipped, _)) if self.dry_run => {}
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

    pub(super) fn summary(&self, template: Option<&str>) -> String {
        if let Some(t) = template {
            let ctx = self.template_view();
            match self.agent.renderer.render_text(t, &ctx) {
                Ok(s) => return s.trim().to_string(),
                Err(e) => {
                    tracing::warn!(error = %e, "the summary template failed; using the generated summary")
                }
            }
        }
        self.observations
            .iter()
            .map(|o| format!("{} {} ({})", mark(o.status), o.step_id, o.tool))
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub(super) fn outcome(
        &self,
        status: OutcomeStatus,
        reason: String,
        planner: &str,
        summary: String,
    ) -> Outcome {
        Outcome {
            task_id: self.task.id.clone(),
            env: self.task.env.clone(),
            status,
            reason,
            summary,
            planner: planner.to_string(),
            observations: self.observations.clone(),
            tokens: self.tokens,
            cost_usd: self.cost,
            duration_ms: u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
            journal: Some(self.agent.journal.path().to_path_buf()),
        }
    }

    pub(super) fn close(&self, outcome: Outcome) -> Result<Outcome, AgentError> {
        self.journal(JournalEvent::Outcome(OutcomeReached {
            status: outcome.status,
            reason: outcome.reason.clone(),
            summary: outcome.summary.clone(),
            planner: outcome.planner.clone(),
            steps: outcome.observations.len(),
            tokens: outcome.tokens,
            cost_usd: outcome.cost_usd,
            duration_ms: outcome.duration_ms,
        }))?;
        self.agent.journal.checkpoint()?;
        tracing::info!(task = %outcome.task_id, status = outcome.status.as_str(), reason = %outcome.reason, "task ended");
        Ok(outcome)
    }

    pub(super) fn finish(
        &self,
        planner: &str,
        summary: Option<&str>,
    ) -> Result<Outcome, AgentError> {
        let (status, reason) = self.verdict();
        let summary = self.summary(summary);
        if status == OutcomeStatus::Resolved && !self.dry_run {
            self.learn(planner, &summary);
        }
        self.close(self.outcome(status, reason, planner, summary))
    }

    pub(super) fn finish_refused(
        &self,
        reason: String,
        p: Option<&Proposal>,
    ) -> Result<Outcome, AgentError> {
        let planner = p.map(|p| p.planner.clone()).unwrap_or_default();
        let summary = p
            .and_then(|p| p.summary.clone())
            .unwrap_or_else(|| reason.clone());
        self.close(self.outcome(OutcomeStatus::Refused, reason, &planner, summary))
    }

    pub(super) fn finish_stopped(
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
        self.journal(JournalEvent::Stop {
            status,
            reason: reason.clone(),
        })?;
        let (planner, template) = p.unwrap_or(("", None));
        let summary = self.summary(template);
        self.close(self.outcome(status, reason, planner, summary))
    }

    /// Remember a resolved alert and the plan that resolved it.
    pub(super) fn learn(&self, planner: &str, summary: &str) {
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
        if let Some(ledger) = &self.ledger {
            ledger.learned(&self.task.id, &incident);
        }
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
