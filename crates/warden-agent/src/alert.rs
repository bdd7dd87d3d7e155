//! Tasks from alert webhooks: Prometheus Alertmanager and Azure Monitor's
//! common alert schema.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::error::AgentError;
use crate::task::{Alert, Task};

/// Alertmanager's webhook body (`version: "4"`).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AmWebhook {
    version: String,
    #[serde(default)]
    status: String,
    alerts: Vec<AmAlert>,
    #[serde(default)]
    group_key: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AmAlert {
    #[serde(default)]
    status: String,
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    #[serde(default)]
    starts_at: Option<String>,
    #[serde(default)]
    fingerprint: Option<String>,
}

/// Azure Monitor's common alert schema.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AzWebhook {
    schema_id: String,
    data: AzData,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AzData {
    essentials: AzEssentials,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AzEssentials {
    #[serde(default)]
    alert_id: Option<String>,
    alert_rule: String,
    #[serde(default)]
    severity: String,
    #[serde(default)]
    monitor_condition: String,
    #[serde(default)]
    fired_date_time: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    alert_target_i_ds: Vec<String>,
    #[serde(default)]
    configuration_items: Vec<String>,
}

/// Map a severity label to `critical`, `warning` or `info`.
fn normalise_severity(s: &str) -> String {
    match s.to_ascii_lowercase().as_str() {
        "critical" | "page" | "high" | "error" | "sev0" | "sev1" | "disaster" => "critical",
        "warning" | "warn" | "medium" | "average" | "sev2" | "sev3" => "warning",
        _ => "info",
    }
    .to_string()
}

impl Task {
    /// A task from a webhook body: Alertmanager (`version: "4"`) or Azure
    /// Monitor (`schemaId: azureMonitorCommonAlertSchema`).
    ///
    /// The first firing alert becomes the task's [`Alert`]; its summary (or
    /// description, or name) is the goal. The whole payload is attached as
    /// `attachments.webhook`.
    ///
    /// ```
    /// use warden_agent::Task;
    ///
    /// let body = serde_json::json!({
    ///     "version": "4", "status": "firing", "receiver": "warden", "groupKey": "{}:{}",
    ///     "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {}, "externalURL": "",
    ///     "alerts": [{"status": "firing", "labels": {"alertname": "CheckoutDown",
    ///         "service": "checkout", "severity": "critical"},
    ///         "annotations": {"summary": "checkout health check failing"},
    ///         "startsAt": "2026-11-27T10:00:00Z", "fingerprint": "a1"}]
    /// });
    /// let task = Task::from_webhook("t-1", &body)?;
    /// let alert = task.alert.as_ref().unwrap();
    /// assert_eq!(task.source, "alertmanager");
    /// assert_eq!(task.goal, "checkout health check failing");
    /// assert_eq!(alert.service.as_deref(), Some("checkout"));
    /// # Ok::<(), warden_agent::AgentError>(())
    /// ```
    pub fn from_webhook(
        id: impl Into<String>,
        body: &serde_json::Value,
    ) -> Result<Task, AgentError> {
        let bad = |why: String| AgentError::Alert { reason: why };
        let (source, alert) = if body.get("schemaId").is_some() {
            let hook: AzWebhook = serde_json::from_value(body.clone())
                .map_err(|e| bad(format!("not an Azure Monitor common-schema alert: {e}")))?;
            if hook.schema_id != "azureMonitorCommonAlertSchema" {
                return Err(bad(format!(
                    "schemaId `{}` is not azureMonitorCommonAlertSchema",
                    hook.schema_id
                )));
            }
            ("azure-monitor", azure_alert(hook.data.essentials))
        } else if body.get("alerts").is_some() {
            let hook: AmWebhook = serde_json::from_value(body.clone())
                .map_err(|e| bad(format!("not an Alertmanager webhook: {e}")))?;
            if hook.version != "4" {
                return Err(bad(format!(
                    "Alertmanager webhook version `{}` is not supported (expected \"4\")",
                    hook.version
                )));
            }
            let Some(first) = hook.alerts.iter().position(|a| a.status == "firing").or(
                if hook.alerts.is_empty() {
                    None
                } else {
                    Some(0)
                },
            ) else {
                return Err(bad("the Alertmanager webhook has no alerts".into()));
            };
            let mut alerts = hook.alerts;
            let a = alerts.swap_remove(first);
            let status = if a.status.is_empty() {
                hook.status
            } else {
                a.status.clone()
            };
            let _ = hook.group_key;
            ("alertmanager", am_alert(a, status))
        } else {
            return Err(bad(
                "unknown webhook format: expected an Alertmanager body (`alerts`) or an Azure Monitor common-schema body (`schemaId`)".into(),
            ));
        };
        let goal = alert
            .annotations
            .get("summary")
            .or_else(|| alert.annotations.get("description"))
            .cloned()
            .unwrap_or_else(|| alert.name.clone());
        let mut task = Task::goal(id, goal);
        task.source = source.into();
        task.principal = format!("{source}:{}", alert.name);
        task.alert = Some(alert);
        task.attachments.insert("webhook".into(), body.clone());
        Ok(task)
    }
}

fn am_alert(a: AmAlert, status: String) -> Alert {
    let severity = a.labels.get("severity").map(|s| normalise_severity(s));
    let service = ["service", "job", "app"]
        .iter()
        .find_map(|k| a.labels.get(*k).cloned());
    Alert {
        name: a.labels.get("alertname").cloned().unwrap_or_default(),
        status,
        severity: severity.unwrap_or_else(|| "warning".into()),
        service,
        labels: a.labels,
        annotations: a.annotations,
        starts_at: a.starts_at,
        fingerprint: a.fingerprint,
    }
}

fn azure_alert(e: AzEssentials) -> Alert {
    let mut labels = BTreeMap::new();
    labels.insert("alertname".to_string(), e.alert_rule.clone());
    labels.insert("severity".to_string(), e.severity.clone());
    if let Some(target) = e.alert_target_i_ds.first() {
        labels.insert("target".to_string(), target.clone());
    }
    let mut annotations = BTreeMap::new();
    if let Some(d) = &e.description {
        annotations.insert("description".to_string(), d.clone());
    }
    Alert {
        name: e.alert_rule,
        status: if e.monitor_condition.eq_ignore_ascii_case("resolved") {
            "resolved".into()
        } else {
            "firing".into()
        },
        severity: normalise_severity(&e.severity),
        service: e.configuration_items.first().cloned(),
        labels,
        annotations,
        starts_at: e.fired_date_time,
        fingerprint: e.alert_id,
    }
}
