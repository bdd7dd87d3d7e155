//! The case-based planner: reuse the plan that resolved the nearest past
//! incident.

use async_trait::async_trait;

use crate::error::AgentError;
use crate::planner::{PlanContext, Planner, Proposal};
use crate::task::{Alert, Plan};

/// Proposes the plan of the most similar resolved incident when its
/// similarity reaches a threshold.
///
/// Stored plans keep their arguments as templates (`{{ alert.labels.instance
/// }}`), so the reused steps are rendered against the new alert; the journal
/// says which case the plan came from.
#[derive(Debug, Clone)]
pub struct CasePlanner {
    threshold: f32,
}

impl CasePlanner {
    /// Reuse plans of cases at least `threshold` similar (cosine, 0..1).
    pub fn new(threshold: f32) -> Self {
        CasePlanner { threshold }
    }
}

#[async_trait]
impl Planner for CasePlanner {
    fn name(&self) -> String {
        "case".into()
    }

    async fn plan(&self, ctx: &PlanContext<'_>) -> Result<Proposal, AgentError> {
        let usable = ctx.cases.iter().find(|c| {
            c.score >= self.threshold
                && c.plan.as_ref().is_some_and(|p| {
                    !p.steps.is_empty()
                        && p.steps
                            .iter()
                            .all(|s| ctx.tools.iter().any(|t| t.name == s.tool))
                })
        });
        let Some(case) = usable else {
            let best = ctx
                .cases
                .first()
                .map(|c| format!("; nearest is {} at {:.2}", c.id, c.score))
                .unwrap_or_default();
            return Ok(Proposal::no_match(format!(
                "no resolved past case with a plan scores {:.2} or more{best}",
                self.threshold
            )));
        };
        let steps = case.plan.clone().map(|p| p.steps).unwrap_or_default();
        let mut p = Proposal::steps(format!("case:{}", case.id), steps);
        p.note = Some(format!(
            "reusing the plan that resolved {} ({}), similarity {:.2}",
            case.id, case.title, case.score
        ));
        Ok(p)
    }
}

/// Replace literal argument text taken from `alert` with templates, so the
/// plan can be replayed for another alert.
pub(crate) fn generalize(plan: &Plan, alert: Option<&Alert>) -> Plan {
    let Some(alert) = alert else {
        return plan.clone();
    };
    let mut subs: Vec<(String, String)> = Vec::new();
    for (k, v) in &alert.labels {
        subs.push((v.clone(), format!("{{{{ alert.labels.{k} }}}}")));
    }
    for (k, v) in &alert.annotations {
        subs.push((v.clone(), format!("{{{{ alert.annotations.{k} }}}}")));
    }
    // Longest first, so a URL is replaced before the host inside it.
    subs.retain(|(v, _)| v.len() >= 3 && !v.contains("{{"));
    subs.sort_by_key(|s| std::cmp::Reverse(s.0.len()));
    let mut plan = plan.clone();
    for step in &mut plan.steps {
        step.args = replace(&step.args, &subs);
    }
    plan
}

fn replace(v: &serde_json::Value, subs: &[(String, String)]) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::String(s) if !s.contains("{{") => {
            let mut out = s.clone();
            for (from, to) in subs {
                if out.contains(from.as_str()) {
                    out = out.replace(from.as_str(), to);
                }
            }
            Value::String(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(|i| replace(i, subs)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), replace(v, subs)))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::Step;
    use serde_json::json;

    #[test]
    fn literal_alert_values_become_templates() {
        let mut alert = Alert::default();
        alert.labels.insert("instance".into(), "db-1:9100".into());
        alert
            .annotations
            .insert("health_url".into(), "http://db-1:9100/health".into());
        let plan = Plan {
            steps: vec![Step::new(
                "probe",
                "http-probe",
                json!({"url": "http://db-1:9100/health", "note": "db-1:9100 down", "n": 3}),
            )],
        };
        let general = generalize(&plan, Some(&alert));
        assert_eq!(
            general.steps[0].args,
            json!({"url": "{{ alert.annotations.health_url }}", "note": "{{ alert.labels.instance }} down", "n": 3})
        );
    }
}
