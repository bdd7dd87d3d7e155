//! `/metrics` in the Prometheus text format.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use warden::policy::DecisionRecord;
use warden::{Outcome, StepStatus};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Status {
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Step {
    tool: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Tool {
    tool: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PolicyLabels {
    entry: String,
    verdict: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Kind {
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Received {
    source: String,
    disposition: String,
}

/// Every metric the service exports.
pub(crate) struct Metrics {
    registry: Registry,
    tasks: Family<Status, Counter>,
    steps: Family<Step, Counter>,
    step_seconds: Family<Tool, Histogram>,
    task_seconds: Histogram,
    decisions: Family<PolicyLabels, Counter>,
    decision_seconds: Histogram,
    limit_hits: Family<Kind, Counter>,
    received: Family<Received, Counter>,
    queue_depth: Gauge,
    approvals_pending: Gauge,
    running: Gauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

fn seconds_histogram() -> Histogram {
    // 50 µs .. ~27 min
    Histogram::new(exponential_buckets(0.000_05, 4.0, 13))
}

impl Metrics {
    pub(crate) fn new() -> Metrics {
        let mut registry = Registry::with_prefix("warden");
        let m = Metrics {
            tasks: Family::default(),
            steps: Family::default(),
            step_seconds: Family::new_with_constructor(seconds_histogram),
            task_seconds: seconds_histogram(),
            decisions: Family::default(),
            decision_seconds: seconds_histogram(),
            limit_hits: Family::default(),
            received: Family::default(),
            queue_depth: Gauge::default(),
            approvals_pending: Gauge::default(),
            running: Gauge::default(),
            registry: Registry::default(),
        };
        registry.register("tasks", "Tasks ended, by status", m.tasks.clone());
        registry.register("steps", "Steps ended, by tool and status", m.steps.clone());
        registry.register(
            "step_duration_seconds",
            "Wall time of a step (all attempts), by tool",
            m.step_seconds.clone(),
        );
        registry.register(
            "task_duration_seconds",
            "Wall time of a task",
            m.task_seconds.clone(),
        );
        registry.register(
            "policy_decisions",
            "Policy decisions, by entry point and verdict",
            m.decisions.clone(),
        );
        registry.register(
            "policy_decision_duration_seconds",
            "Time to evaluate one policy decision",
            m.decision_seconds.clone(),
        );
        registry.register(
            "sandbox_limit_hits",
            "Calls stopped by a sandbox limit, by kind",
            m.limit_hits.clone(),
        );
        registry.register(
            "alerts_received",
            "Alert notifications received, by source and what became of them",
            m.received.clone(),
        );
        registry.register(
            "queue_depth",
            "Alerts accepted and waiting for a worker",
            m.queue_depth.clone(),
        );
        registry.register(
            "approvals_pending",
            "Approvals waiting for a human",
            m.approvals_pending.clone(),
        );
        registry.register("tasks_running", "Tasks running now", m.running.clone());
        Metrics { registry, ..m }
    }

    pub(crate) fn decision(&self, record: &DecisionRecord) {
        self.decisions
            .get_or_create(&PolicyLabels {
                entry: record.entry.as_str().into(),
                verdict: record.decision.verdict.as_str().into(),
            })
            .inc();
        self.decision_seconds
            .observe(record.duration_us as f64 / 1_000_000.0);
    }

    pub(crate) fn outcome(&self, outcome: &Outcome) {
        self.task(outcome.status.as_str());
        self.task_seconds
            .observe(outcome.duration_ms as f64 / 1000.0);
        for o in &outcome.observations {
            self.steps
                .get_or_create(&Step {
                    tool: o.tool.clone(),
                    status: o.status.as_str().into(),
                })
                .inc();
            if o.status != StepStatus::Skipped {
                self.step_seconds
                    .get_or_create(&Tool {
                        tool: o.tool.clone(),
                    })
                    .observe(o.duration_us as f64 / 1_000_000.0);
            }
            if o.status == StepStatus::Failed
                && let Some(kind) = o.reasons.iter().find_map(|r| limit_kind(r))
            {
                self.limit_hits
                    .get_or_create(&Kind { kind: kind.into() })
                    .inc();
            }
        }
    }

    pub(crate) fn task(&self, status: &str) {
        self.tasks
            .get_or_create(&Status {
                status: status.into(),
            })
            .inc();
    }

    pub(crate) fn received(&self, source: &str, disposition: &str) {
        self.received
            .get_or_create(&Received {
                source: source.into(),
                disposition: disposition.into(),
            })
            .inc();
    }

    pub(crate) fn queue_depth(&self, n: u64) {
        self.queue_depth.set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    pub(crate) fn approvals_pending(&self, n: usize) {
        self.approvals_pending
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    pub(crate) fn running(&self, delta: i64) {
        self.running.inc_by(delta);
    }

    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

/// Which sandbox limit stopped a call, from the sandbox's own messages.
fn limit_kind(reason: &str) -> Option<&'static str> {
    if reason.contains("exceeded its deadline") {
        Some("timeout")
    } else if reason.contains("exceeded the memory limit") {
        Some("memory")
    } else if reason.contains("output of") && reason.contains("exceeds the limit") {
        Some("output")
    } else if reason.contains("out of fuel") {
        Some("fuel")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sandbox_limit_messages_are_classified() {
        assert_eq!(
            limit_kind("spin: call exceeded its deadline of 1s and was stopped"),
            Some("timeout")
        );
        assert_eq!(
            limit_kind("bomb: call exceeded the memory limit of 1024 bytes"),
            Some("memory")
        );
        assert_eq!(
            limit_kind("big: output of 9 bytes exceeds the limit of 1 bytes"),
            Some("output")
        );
        assert_eq!(limit_kind("failed: connection refused"), None);
    }
}
