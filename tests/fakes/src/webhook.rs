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

/// The runbook the service tests share: probe the service's health,
/// restart it through its admin URL when the probe fails, probe again. The
/// URLs come from the alert's `health_url` and `remediation_url`
/// annotations; it matches `alertname: ServiceHealthCheckFailing`.
pub const HEALTH_RUNBOOK: &str = r#"
name: health
match:
  labels: {alertname: ServiceHealthCheckFailing}
steps:
  - id: probe
    tool: http-probe
    args: {url: "{{ alert.annotations.health_url }}", expect_status: [200]}
  - id: remediate
    tool: http-action
    depends_on: [probe]
    when: {step: probe, pointer: /ok, equals: false}
    args: {url: "{{ alert.annotations.remediation_url }}", body: {action: restart-pool}}
  - id: validate
    tool: http-probe
    verify: true
    depends_on: [remediate]
    args: {url: "{{ alert.annotations.health_url }}", expect_status: [200]}
summary: "health {{ steps.probe.output.status }} -> {{ steps.validate.output.status }}"
"#;
