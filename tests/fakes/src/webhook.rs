//! Webhook bodies as monitors send them, for tests.

use serde_json::{Value, json};

/// An Alertmanager webhook (v4) with one firing alert.
///
/// ```
/// let body = warden_fakes::webhook::alertmanager(
///     serde_json::json!({"alertname": "DiskFull", "severity": "warning"}),
///     serde_json::json!({"summary": "disk full"}),
/// );
/// assert_eq!(body["version"], "4");
/// assert_eq!(body["alerts"][0]["labels"]["alertname"], "DiskFull");
/// ```
pub fn alertmanager(labels: Value, annotations: Value) -> Value {
    json!({
        "version": "4", "status": "firing", "receiver": "warden", "groupKey": "{}:{}",
        "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {}, "externalURL": "",
        "alerts": [{"status": "firing", "labels": labels, "annotations": annotations,
            "startsAt": "2026-11-27T03:40:00Z", "fingerprint": "f1"}]
    })
}
