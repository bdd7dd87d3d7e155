//! `summarize`: one status report from a pile of alert payloads.
//!
//! Each payload's format is detected (Prometheus Alertmanager webhook v4,
//! Azure Monitor common alert schema, flat Zabbix or Nagios objects), its
//! alerts are normalised (severity critical/warning/info, firing or
//! resolved), deduplicated (source plus fingerprint, alert id, or
//! host+trigger) and grouped by service and severity. The `text` field is a
//! markdown report that reads well without an LLM.

mod parse;

use std::collections::BTreeMap;
use std::fmt::Write as _;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use warden_pdk::{Context, Tool, ToolError, export_tool};

use parse::{Notification, format_time};
pub use parse::{Severity, Source};

/// The tool.
pub struct Summarize;

/// The payloads, as received.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// Alert payloads in their native JSON formats, in the order received.
    pub payloads: Vec<Value>,
}

/// One distinct alert after deduplication.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Alert {
    /// Deduplication key, e.g. `alertmanager:<fingerprint>`.
    pub key: String,
    /// Where it came from.
    pub source: Source,
    /// Alert rule, alertname or trigger.
    pub name: String,
    /// Instance, host or resource.
    pub target: Option<String>,
    /// Highest severity seen.
    pub severity: Severity,
    /// `firing` or `resolved`, from the latest notification.
    pub status: String,
    /// Notifications merged into this alert.
    pub count: usize,
    /// Earliest time seen (RFC 3339).
    pub first_seen: Option<String>,
    /// Latest time seen (RFC 3339).
    pub last_seen: Option<String>,
    /// Summary or check output from the latest notification that had one.
    pub summary: Option<String>,
}

/// Alerts of one service at one severity.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Group {
    /// Service (label `service`/`app`/`job`/`namespace`, Azure resource, or host).
    pub service: String,
    /// Normalised severity.
    pub severity: Severity,
    /// Distinct alerts still firing.
    pub firing: usize,
    /// Distinct alerts resolved.
    pub resolved: usize,
    /// The alerts, firing first, then most recent first.
    pub alerts: Vec<Alert>,
}

/// Firing alerts per severity.
#[derive(Debug, Clone, Default, Serialize, JsonSchema)]
pub struct BySeverity {
    /// Critical alerts firing.
    pub critical: usize,
    /// Warnings firing.
    pub warning: usize,
    /// Info alerts firing.
    pub info: usize,
}

/// A payload that could not be read.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Rejected {
    /// 0-based index in `payloads`.
    pub index: usize,
    /// Why.
    pub reason: String,
}

/// The status report.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Output {
    /// Payloads given.
    pub payloads: usize,
    /// Alert notifications read from them.
    pub notifications: usize,
    /// Distinct alerts after deduplication.
    pub alerts: usize,
    /// Distinct alerts firing.
    pub firing: usize,
    /// Distinct alerts resolved.
    pub resolved: usize,
    /// Firing alerts per severity.
    pub by_severity: BySeverity,
    /// Groups, critical first; within a severity, groups with firing alerts first.
    pub groups: Vec<Group>,
    /// Payloads skipped, with the reason.
    pub rejected: Vec<Rejected>,
    /// The report as markdown.
    pub text: String,
}

impl Tool for Summarize {
    type Input = Input;
    type Output = Output;
    const NAME: &'static str = "summarize";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "Summarise alert payloads (Prometheus Alertmanager, Azure Monitor common schema, Zabbix/Nagios) into one deduplicated status report grouped by service and severity, with firing/resolved counts, first/last seen and a markdown rendering.";

    fn invoke(_ctx: &Context, input: Input) -> Result<Output, ToolError> {
        summarize(&input.payloads)
    }
}

/// Merges notifications of one alert.
struct Merged {
    latest: Notification,
    /// (event time, input order) of `latest`.
    latest_at: (f64, usize),
    severity: Severity,
    count: usize,
    first: Option<f64>,
    last: Option<f64>,
    summary: Option<String>,
}

fn summarize(payloads: &[Value]) -> Result<Output, ToolError> {
    if payloads.is_empty() {
        return Err(ToolError::InvalidInput("payloads is empty".into()));
    }
    let mut rejected = Vec::new();
    let mut notifications = Vec::new();
    for (index, payload) in payloads.iter().enumerate() {
        match parse::parse(payload) {
            Ok(found) => notifications.extend(found),
            Err(reason) => rejected.push(Rejected { index, reason }),
        }
    }
    if rejected.len() == payloads.len() {
        let reasons: Vec<String> = rejected
            .iter()
            .map(|r| format!("payload {}: {}", r.index, r.reason))
            .collect();
        return Err(ToolError::InvalidInput(format!(
            "no payload could be read: {}",
            reasons.join("; ")
        )));
    }
    let count = notifications.len();
    let mut merged: BTreeMap<String, Merged> = BTreeMap::new();
    for (order, n) in notifications.into_iter().enumerate() {
        let at = (n.ended.or(n.started).unwrap_or(f64::NEG_INFINITY), order);
        let times = [n.started, n.ended];
        let entry = merged.entry(n.key.clone()).or_insert_with(|| Merged {
            latest: n.clone(),
            latest_at: at,
            severity: n.severity,
            count: 0,
            first: None,
            last: None,
            summary: None,
        });
        entry.count += 1;
        entry.severity = entry.severity.min(n.severity);
        for t in times.into_iter().flatten() {
            entry.first = Some(entry.first.map_or(t, |f| f.min(t)));
            entry.last = Some(entry.last.map_or(t, |l| l.max(t)));
        }
        if at.0 > entry.latest_at.0 || (at.0 == entry.latest_at.0 && at.1 >= entry.latest_at.1) {
            entry.summary = n.summary.clone().or(entry.summary.take());
            entry.latest = n;
            entry.latest_at = at;
        } else if entry.summary.is_none() {
            entry.summary = n.summary;
        }
    }
    let mut groups: BTreeMap<(Severity, String), Vec<(Alert, f64)>> = BTreeMap::new();
    let mut by_severity = BySeverity::default();
    for (key, m) in merged {
        let firing = m.latest.firing;
        if firing {
            match m.severity {
                Severity::Critical => by_severity.critical += 1,
                Severity::Warning => by_severity.warning += 1,
                Severity::Info => by_severity.info += 1,
            }
        }
        let alert = Alert {
            key,
            source: m.latest.source,
            name: m.latest.name.clone(),
            target: m.latest.target.clone(),
            severity: m.severity,
            status: if firing { "firing" } else { "resolved" }.into(),
            count: m.count,
            first_seen: m.first.map(format_time),
            last_seen: m.last.map(format_time),
            summary: m.summary,
        };
        groups
            .entry((m.severity, m.latest.service.clone()))
            .or_default()
            .push((alert, m.last.unwrap_or(f64::NEG_INFINITY)));
    }
    let mut groups: Vec<Group> = groups
        .into_iter()
        .map(|((severity, service), mut alerts)| {
            alerts.sort_by(|a, b| {
                (a.0.status != "firing")
                    .cmp(&(b.0.status != "firing"))
                    .then(b.1.total_cmp(&a.1))
            });
            let firing = alerts.iter().filter(|a| a.0.status == "firing").count();
            Group {
                service,
                severity,
                firing,
                resolved: alerts.len() - firing,
                alerts: alerts.into_iter().map(|a| a.0).collect(),
            }
        })
        .collect();
    groups.sort_by(|a, b| {
        a.severity
            .cmp(&b.severity)
            .then((a.firing == 0).cmp(&(b.firing == 0)))
            .then(a.service.cmp(&b.service))
    });
    let firing = by_severity.critical + by_severity.warning + by_severity.info;
    let alerts: usize = groups.iter().map(|g| g.alerts.len()).sum();
    let mut out = Output {
        payloads: payloads.len(),
        notifications: count,
        alerts,
        firing,
        resolved: alerts - firing,
        by_severity,
        groups,
        rejected,
        text: String::new(),
    };
    out.text = render(&out);
    Ok(out)
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

fn render(out: &Output) -> String {
    let s = &out.by_severity;
    let mut text = format!(
        "# Alert status: {} firing ({} critical, {} warning, {} info), {} resolved\n\n",
        out.firing, s.critical, s.warning, s.info, out.resolved
    );
    let _ = writeln!(
        text,
        "{} from {} ({}).",
        plural(out.alerts, "distinct alert"),
        plural(out.payloads, "payload"),
        plural(out.notifications, "notification")
    );
    let mut heading = None;
    for g in &out.groups {
        if heading != Some(g.severity) {
            let _ = write!(text, "\n## {}\n", g.severity.title());
            heading = Some(g.severity);
        }
        let _ = writeln!(
            text,
            "\n### {}: {} firing, {} resolved\n",
            g.service, g.firing, g.resolved
        );
        for a in &g.alerts {
            let status = if a.status == "firing" {
                "FIRING"
            } else {
                "resolved"
            };
            let _ = write!(text, "- {status} **{}**", a.name);
            if let Some(t) = &a.target {
                let _ = write!(text, " on {t}");
            }
            if let Some(summary) = &a.summary {
                let _ = write!(text, ": {summary}");
            }
            let _ = write!(text, " ({}", a.source.name());
            if a.count > 1 {
                let _ = write!(text, ", {} notifications", a.count);
            }
            match (&a.first_seen, &a.last_seen) {
                (Some(f), Some(l)) if f != l => {
                    let _ = write!(text, ", {f} to {l}");
                }
                (Some(f), _) => {
                    let _ = write!(text, ", since {f}");
                }
                _ => {}
            }
            text.push_str(")\n");
        }
    }
    if !out.rejected.is_empty() {
        text.push_str("\n## Rejected payloads\n\n");
        for r in &out.rejected {
            let _ = writeln!(text, "- payload {}: {}", r.index, r.reason);
        }
    }
    text
}

export_tool!(Summarize);

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Value {
        let text = match name {
            "am1" => include_str!("../tests/fixtures/alertmanager_firing.json"),
            "am2" => include_str!("../tests/fixtures/alertmanager_update.json"),
            "az1" => include_str!("../tests/fixtures/azure_fired.json"),
            "az2" => include_str!("../tests/fixtures/azure_resolved.json"),
            "zbx" => include_str!("../tests/fixtures/zabbix_problem.json"),
            "ng1" => include_str!("../tests/fixtures/nagios_critical.json"),
            "ng2" => include_str!("../tests/fixtures/nagios_recovery.json"),
            other => panic!("no fixture {other}"),
        };
        serde_json::from_str(text).unwrap()
    }

    fn all() -> Vec<Value> {
        ["am1", "am2", "az1", "az2", "zbx", "ng1", "ng2"]
            .into_iter()
            .map(fixture)
            .collect()
    }

    fn run(payloads: Vec<Value>) -> Result<Output, ToolError> {
        Summarize::invoke(&Context::default(), Input { payloads })
    }

    fn find<'a>(out: &'a Output, name: &str, target: &str) -> &'a Alert {
        out.groups
            .iter()
            .flat_map(|g| &g.alerts)
            .find(|a| a.name == name && a.target.as_deref() == Some(target))
            .unwrap_or_else(|| panic!("no alert {name} on {target}"))
    }

    #[test]
    fn mixed_formats_are_deduplicated_and_counted() {
        let out = run(all()).unwrap();
        assert_eq!(out.payloads, 7);
        // 2 + 2 Alertmanager alerts, 2 Azure, 1 Zabbix, 2 Nagios.
        assert_eq!(out.notifications, 9);
        // The second checkout alert and web01/HTTP each arrive twice.
        assert_eq!(out.alerts, 7);
        assert_eq!(out.firing, 4);
        assert_eq!(out.resolved, 3);
        assert_eq!(
            (
                out.by_severity.critical,
                out.by_severity.warning,
                out.by_severity.info
            ),
            (3, 1, 0)
        );
        assert!(out.rejected.is_empty());
    }

    #[test]
    fn a_later_resolution_wins_and_keeps_first_and_last_seen() {
        let out = run(all()).unwrap();
        let resolved = find(&out, "HighErrorRate", "checkout-7f9c5:8080");
        assert_eq!((resolved.status.as_str(), resolved.count), ("resolved", 2));
        assert_eq!(resolved.first_seen.as_deref(), Some("2024-05-01T10:01:30Z"));
        assert_eq!(resolved.last_seen.as_deref(), Some("2024-05-01T10:12:30Z"));
        let http = find(&out, "HTTP", "web01");
        assert_eq!((http.status.as_str(), http.count), ("resolved", 2));
        assert_eq!(http.source, Source::Nagios);
        assert_eq!(http.severity, Severity::Critical);
        // Input order does not matter: the recovery is later in time.
        let reversed = run(vec![fixture("ng2"), fixture("ng1")]).unwrap();
        assert_eq!(reversed.groups[0].alerts[0].status, "resolved");
    }

    #[test]
    fn groups_are_by_service_and_severity_with_critical_first() {
        let out = run(all()).unwrap();
        let keys: Vec<(Severity, &str, usize)> = out
            .groups
            .iter()
            .map(|g| (g.severity, g.service.as_str(), g.firing))
            .collect();
        assert_eq!(
            keys,
            vec![
                (Severity::Critical, "checkout", 1),
                (Severity::Critical, "db01", 1),
                (Severity::Critical, "vm-batch-01", 1),
                (Severity::Critical, "HTTP", 0),
                (Severity::Warning, "payments", 1),
                (Severity::Info, "orders", 0),
            ]
        );
        let zabbix = find(
            &out,
            "Free disk space is less than 10% on volume /var/lib/postgresql",
            "db01",
        );
        assert_eq!(zabbix.source, Source::Zabbix);
        assert_eq!(zabbix.first_seen.as_deref(), Some("2024-05-01T10:03:11Z"));
    }

    #[test]
    fn the_text_report_names_what_is_firing() {
        let out = run(all()).unwrap();
        let text = &out.text;
        assert!(
            text.starts_with(
                "# Alert status: 4 firing (3 critical, 1 warning, 0 info), 3 resolved\n"
            ),
            "{text}"
        );
        assert!(text.contains("7 distinct alerts from 7 payloads (9 notifications)."));
        assert!(text.contains(
            "- FIRING **vm-cpu-above-90** on vm-batch-01: Percentage CPU above 90% for 15 minutes (azure-monitor, since 2024-05-01T09:58:24Z)"
        ), "{text}");
        assert!(text.contains("### checkout: 1 firing, 1 resolved"));
        let critical = text.find("## Critical").unwrap();
        let warning = text.find("## Warning").unwrap();
        assert!(critical < warning);
    }

    #[test]
    fn bad_payloads_are_reported_by_index_and_the_rest_still_summarised() {
        let mut payloads = vec![fixture("zbx")];
        payloads.push(serde_json::json!({"foo": 1}));
        payloads.push(serde_json::json!({"version": "4", "status": "firing", "alerts": [{"labels": {"alertname": "A"}, "status": "firing"}, {"status": "firing"}]}));
        payloads.push(serde_json::json!({"schemaId": "azureMonitorCommonAlertSchema", "data": {"essentials": {"alertId": "x", "severity": "Sev9", "monitorCondition": "Fired"}}}));
        payloads.push(serde_json::json!({"host": "h", "trigger": "t", "status": "MAYBE"}));
        payloads.push(serde_json::json!([1, 2]));
        let out = run(payloads).unwrap();
        assert_eq!(out.alerts, 1);
        let reasons: Vec<(usize, &str)> = out
            .rejected
            .iter()
            .map(|r| (r.index, r.reason.as_str()))
            .collect();
        assert_eq!(reasons.len(), 5);
        assert!(
            reasons[0].1.starts_with("unrecognised format"),
            "{reasons:?}"
        );
        assert_eq!(
            reasons[1],
            (
                2,
                "alertmanager webhook: alerts[1]: labels is missing or not an object"
            )
        );
        assert_eq!(
            reasons[2],
            (
                3,
                "azure monitor alert: severity \"Sev9\" is not Sev0..Sev4"
            )
        );
        assert!(reasons[3].1.contains("state \"MAYBE\""), "{reasons:?}");
        assert_eq!(reasons[4], (5, "expected a JSON object, got an array"));
        assert!(
            out.text
                .contains("## Rejected payloads\n\n- payload 1: unrecognised format")
        );
    }

    #[test]
    fn the_manifest_schemas_name_the_inputs_and_outputs() {
        let input = serde_json::to_string(&schemars::schema_for!(Input)).unwrap();
        assert!(input.contains("payloads"), "{input}");
        let output = serde_json::to_string(&schemars::schema_for!(Output)).unwrap();
        for field in ["by_severity", "first_seen", "rejected", "text", "critical"] {
            assert!(output.contains(field), "{field}: {output}");
        }
    }

    #[test]
    fn nothing_readable_is_an_invalid_input_error() {
        match run(vec![serde_json::json!({"foo": 1})]).unwrap_err() {
            ToolError::InvalidInput(m) => {
                assert!(
                    m.starts_with("no payload could be read: payload 0: unrecognised"),
                    "{m}"
                );
            }
            other => panic!("{other}"),
        }
        assert!(matches!(run(vec![]), Err(ToolError::InvalidInput(_))));
    }
}
