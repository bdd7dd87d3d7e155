//! Alert bodies into inbox items: one item per alert, each with its
//! deduplication key, each checked by the agent's own parser before any is
//! accepted (a malformed webhook is refused whole, nothing half-applied).

use std::collections::BTreeMap;

use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use warden::Task;

/// One alert out of a webhook.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Incoming {
    /// `am:<fingerprint>`, `az:<alert id>`, `gen:<key>`.
    pub key: String,
    /// `firing` or `resolved`.
    pub status: String,
    /// A body `Task::from_webhook` reads (one alert).
    pub body: Value,
}

/// The most alerts one webhook may carry.
const MAX_ALERTS: usize = 1000;

/// Split an Alertmanager v4 webhook into its alerts.
pub(crate) fn alertmanager(body: &Value) -> Result<Vec<Incoming>, String> {
    if body.get("version").and_then(Value::as_str) != Some("4") {
        return Err("not an Alertmanager webhook: `version` must be \"4\"".into());
    }
    let alerts = body
        .get("alerts")
        .and_then(Value::as_array)
        .ok_or("not an Alertmanager webhook: no `alerts` array")?;
    if alerts.is_empty() {
        return Err("the Alertmanager webhook has no alerts".into());
    }
    if alerts.len() > MAX_ALERTS {
        return Err(format!(
            "the webhook carries {} alerts; at most {MAX_ALERTS}",
            alerts.len()
        ));
    }
    let mut out = Vec::with_capacity(alerts.len());
    for (i, alert) in alerts.iter().enumerate() {
        let mut one = body.clone();
        one["alerts"] = Value::Array(vec![alert.clone()]);
        check(&one).map_err(|e| format!("alert {i}: {e}"))?;
        let status = alert
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or("firing");
        let fingerprint = alert
            .get("fingerprint")
            .and_then(Value::as_str)
            .filter(|f| !f.is_empty())
            .map_or_else(|| labels_digest(alert.get("labels")), str::to_string);
        out.push(Incoming {
            key: format!("am:{}", clip(&fingerprint)),
            status: if status == "resolved" {
                "resolved"
            } else {
                "firing"
            }
            .into(),
            body: one,
        });
    }
    Ok(out)
}

/// An Azure Monitor common-schema alert.
pub(crate) fn azure_monitor(body: &Value) -> Result<Vec<Incoming>, String> {
    check(body)?;
    let essentials = &body["data"]["essentials"];
    let id = essentials
        .get("alertId")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map_or_else(
            || {
                let rule = essentials.get("alertRule").cloned().unwrap_or(Value::Null);
                let target = essentials
                    .get("alertTargetIDs")
                    .cloned()
                    .unwrap_or(Value::Null);
                labels_digest(Some(&json!({"rule": rule, "target": target})))
            },
            str::to_string,
        );
    let resolved = essentials
        .get("monitorCondition")
        .and_then(Value::as_str)
        .is_some_and(|c| c.eq_ignore_ascii_case("resolved"));
    Ok(vec![Incoming {
        key: format!("az:{}", clip(&id)),
        status: if resolved { "resolved" } else { "firing" }.into(),
        body: body.clone(),
    }])
}

/// A generic alert: `{"key", "name", "status", "severity", "service",
/// "summary", "labels", "annotations"}` (only `name` is required), turned
/// into a one-alert Alertmanager body so one parser reads every source.
pub(crate) fn generic(body: &Value) -> Result<Vec<Incoming>, String> {
    let text = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_string);
    let name = text("name").ok_or("a generic alert needs a string `name`")?;
    let mut labels: BTreeMap<String, Value> = body
        .get("labels")
        .and_then(Value::as_object)
        .map(|m| m.clone().into_iter().collect())
        .unwrap_or_default();
    labels.insert("alertname".into(), Value::String(name.clone()));
    for k in ["severity", "service"] {
        if let Some(v) = text(k) {
            labels.insert(k.into(), Value::String(v));
        }
    }
    let mut annotations: BTreeMap<String, Value> = body
        .get("annotations")
        .and_then(Value::as_object)
        .map(|m| m.clone().into_iter().collect())
        .unwrap_or_default();
    if let Some(s) = text("summary") {
        annotations.insert("summary".into(), Value::String(s));
    }
    let status = match text("status").as_deref() {
        None | Some("firing") => "firing",
        Some("resolved") => "resolved",
        Some(other) => {
            return Err(format!(
                "`status` must be firing or resolved, not `{other}`"
            ));
        }
    };
    let key = text("key").unwrap_or_else(|| labels_digest(Some(&json!(labels))));
    let am = json!({
        "version": "4",
        "status": status,
        "receiver": "generic",
        "groupKey": key,
        "alerts": [{
            "status": status,
            "labels": labels,
            "annotations": annotations,
            "fingerprint": key,
        }],
    });
    check(&am)?;
    Ok(vec![Incoming {
        key: format!("gen:{}", clip(&key)),
        status: status.into(),
        body: am,
    }])
}

/// The agent's parser must read it, or nothing is accepted.
fn check(body: &Value) -> Result<(), String> {
    Task::from_webhook("check", body)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// A stable key from a label set when the sender gave no fingerprint.
fn labels_digest(labels: Option<&Value>) -> String {
    let text = labels.map(Value::to_string).unwrap_or_default();
    hex::encode(&Sha256::digest(text.as_bytes())[..8])
}

/// Keys are identifiers, not data: at most 128 characters.
fn clip(key: &str) -> String {
    if key.len() <= 128 {
        key.to_string()
    } else {
        format!("sha256-{}", hex::encode(Sha256::digest(key.as_bytes())))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn an_alertmanager_group_becomes_one_item_per_alert_keyed_by_fingerprint() {
        let body = json!({"version": "4", "status": "firing", "alerts": [
            {"status": "firing", "labels": {"alertname": "A"}, "fingerprint": "f1"},
            {"status": "resolved", "labels": {"alertname": "B"}, "fingerprint": "f2"},
        ]});
        let items = alertmanager(&body).unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].key, "am:f1");
        assert_eq!(items[1].status, "resolved");
        assert_eq!(items[1].body["alerts"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn a_webhook_with_one_bad_alert_is_refused_whole() {
        let body = json!({"version": "4", "alerts": [
            {"status": "firing", "labels": {"alertname": "A"}},
            {"status": "firing"},
        ]});
        let err = alertmanager(&body).unwrap_err();
        assert!(err.contains("alert 1"), "{err}");
    }

    #[test]
    fn a_generic_alert_needs_a_name_and_a_known_status() {
        assert!(generic(&json!({"summary": "x"})).is_err());
        assert!(generic(&json!({"name": "X", "status": "maybe"})).is_err());
        let items = generic(&json!({"name": "DiskFull", "key": "web-1/disk"})).unwrap();
        assert_eq!(items[0].key, "gen:web-1/disk");
    }

    #[test]
    fn an_overlong_key_is_hashed() {
        let long = "x".repeat(1000);
        let items = generic(&json!({"name": "X", "key": long})).unwrap();
        assert!(items[0].key.len() < 100, "{}", items[0].key);
    }
}
