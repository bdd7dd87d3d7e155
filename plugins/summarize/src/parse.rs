//! Format detection and normalisation of one alert payload.

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::{Map, Value};
use warden_anomaly::Time;

/// Normalised severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Needs someone now.
    Critical,
    /// Needs attention soon.
    Warning,
    /// For the record.
    Info,
}

impl Severity {
    /// Capitalised name, for headings.
    pub fn title(self) -> &'static str {
        match self {
            Self::Critical => "Critical",
            Self::Warning => "Warning",
            Self::Info => "Info",
        }
    }
}

/// Where a payload came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// Prometheus Alertmanager webhook (version 4).
    Alertmanager,
    /// Azure Monitor common alert schema.
    AzureMonitor,
    /// Zabbix-style flat payload (`trigger`, `PROBLEM`/`OK`).
    Zabbix,
    /// Nagios-style flat payload (`service`, `CRITICAL`/`WARNING`/`OK`).
    Nagios,
}

impl Source {
    /// Name as serialised.
    pub fn name(self) -> &'static str {
        match self {
            Self::Alertmanager => "alertmanager",
            Self::AzureMonitor => "azure-monitor",
            Self::Zabbix => "zabbix",
            Self::Nagios => "nagios",
        }
    }
}

/// One notification about one alert, in common terms.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    pub source: Source,
    /// Identity for deduplication: source plus fingerprint, alert id or host+trigger.
    pub key: String,
    pub service: String,
    pub name: String,
    /// Instance, host or resource the alert is about.
    pub target: Option<String>,
    pub severity: Severity,
    pub firing: bool,
    /// When the problem started, Unix seconds.
    pub started: Option<f64>,
    /// When it ended, for resolved notifications.
    pub ended: Option<f64>,
    pub summary: Option<String>,
}

/// Detects the payload's format and normalises its alerts.
pub fn parse(payload: &Value) -> Result<Vec<Notification>, String> {
    let Some(obj) = payload.as_object() else {
        return Err(format!("expected a JSON object, got {}", kind(payload)));
    };
    if obj.get("alerts").is_some_and(Value::is_array)
        && ["version", "receiver", "groupKey"]
            .iter()
            .any(|k| obj.contains_key(*k))
    {
        return alertmanager(obj).map_err(|e| format!("alertmanager webhook: {e}"));
    }
    let essentials = obj
        .get("data")
        .and_then(|d| d.get("essentials"))
        .and_then(Value::as_object);
    if let Some(schema) = obj.get("schemaId").and_then(Value::as_str) {
        if schema != "azureMonitorCommonAlertSchema" {
            return Err(format!(
                "schemaId {schema:?} is not supported (only azureMonitorCommonAlertSchema)"
            ));
        }
        let essentials =
            essentials.ok_or("azure monitor alert: data.essentials is missing or not an object")?;
        return azure(obj, essentials)
            .map(|n| vec![n])
            .map_err(|e| format!("azure monitor alert: {e}"));
    }
    if ["host", "hostname", "host_name"]
        .iter()
        .any(|k| obj.contains_key(*k))
    {
        return flat(obj).map(|n| vec![n]);
    }
    Err(
        "unrecognised format: expected an Alertmanager webhook (`version`, `alerts`), \
         an Azure Monitor common alert (`schemaId`), or a flat Zabbix/Nagios object (`host`)"
            .into(),
    )
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn text<'a>(obj: &'a Map<String, Value>, keys: &[&str]) -> Option<&'a str> {
    keys.iter()
        .find_map(|k| obj.get(*k).and_then(Value::as_str))
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// An RFC 3339 time; `None` for Alertmanager's zero time (`0001-01-01...`).
fn rfc3339(value: Option<&Value>, field: &str) -> Result<Option<f64>, String> {
    let Some(value) = value else { return Ok(None) };
    let Some(s) = value.as_str() else {
        return Err(format!("{field} is not a string"));
    };
    if s.is_empty() || s.starts_with("0001-01-01") {
        return Ok(None);
    }
    Time::Text(s.to_string())
        .seconds()
        .map(Some)
        .ok_or_else(|| format!("{field} {s:?} is not an RFC 3339 time"))
}

fn alertmanager(obj: &Map<String, Value>) -> Result<Vec<Notification>, String> {
    let version = obj.get("version").and_then(Value::as_str);
    if let Some(v) = version
        && v != "4"
    {
        return Err(format!("version {v:?} is not supported (only \"4\")"));
    }
    let group_status = text(obj, &["status"]);
    let alerts = obj
        .get("alerts")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    alerts
        .iter()
        .enumerate()
        .map(|(i, alert)| {
            let at = |e: String| format!("alerts[{i}]: {e}");
            let alert = alert
                .as_object()
                .ok_or_else(|| at("not an object".into()))?;
            let labels = alert
                .get("labels")
                .and_then(Value::as_object)
                .ok_or_else(|| at("labels is missing or not an object".into()))?;
            let annotations = alert.get("annotations").and_then(Value::as_object);
            let status = text(alert, &["status"])
                .or(group_status)
                .ok_or_else(|| at("status is missing".into()))?;
            let firing = match status {
                "firing" => true,
                "resolved" => false,
                other => {
                    return Err(at(format!(
                        "status {other:?} is neither firing nor resolved"
                    )));
                }
            };
            let key = match text(alert, &["fingerprint"]) {
                Some(f) => f.to_string(),
                // serde_json maps are sorted, so the label set is a stable identity.
                None => Value::Object(labels.clone()).to_string(),
            };
            Ok(Notification {
                source: Source::Alertmanager,
                key: format!("alertmanager:{key}"),
                service: text(labels, &["service", "app", "job", "namespace"])
                    .unwrap_or("unknown")
                    .to_string(),
                name: text(labels, &["alertname"])
                    .unwrap_or("unnamed alert")
                    .to_string(),
                target: text(labels, &["instance", "pod", "host", "node"]).map(str::to_string),
                severity: severity_word(text(labels, &["severity", "priority"]))
                    .unwrap_or(Severity::Warning),
                firing,
                started: rfc3339(alert.get("startsAt"), "startsAt").map_err(at)?,
                ended: if firing {
                    None
                } else {
                    rfc3339(alert.get("endsAt"), "endsAt").map_err(at)?
                },
                summary: annotations
                    .and_then(|a| text(a, &["summary", "description", "message"]))
                    .map(str::to_string),
            })
        })
        .collect()
}

fn azure(obj: &Map<String, Value>, e: &Map<String, Value>) -> Result<Notification, String> {
    let id = text(e, &["alertId"]).ok_or("essentials.alertId is missing")?;
    let severity = match text(e, &["severity"]) {
        Some("Sev0" | "Sev1") => Severity::Critical,
        Some("Sev2") => Severity::Warning,
        Some("Sev3" | "Sev4") => Severity::Info,
        Some(other) => return Err(format!("severity {other:?} is not Sev0..Sev4")),
        None => return Err("essentials.severity is missing".into()),
    };
    let firing = match text(e, &["monitorCondition"]) {
        Some("Fired") => true,
        Some("Resolved") => false,
        Some(other) => {
            return Err(format!(
                "monitorCondition {other:?} is neither Fired nor Resolved"
            ));
        }
        None => return Err("essentials.monitorCondition is missing".into()),
    };
    let first = |k: &str| {
        e.get(k)
            .and_then(Value::as_array)
            .and_then(|a| a.first())
            .and_then(Value::as_str)
    };
    let target = first("configurationItems")
        .or_else(|| first("alertTargetIDs").and_then(|id| id.rsplit('/').next()))
        .map(str::to_string);
    let custom = obj
        .get("data")
        .and_then(|d| d.get("customProperties"))
        .and_then(Value::as_object);
    let rule = text(e, &["alertRule"]).unwrap_or("unnamed rule");
    Ok(Notification {
        source: Source::AzureMonitor,
        key: format!("azure:{id}"),
        service: custom
            .and_then(|c| text(c, &["service", "Service"]))
            .or(target.as_deref())
            .unwrap_or("unknown")
            .to_string(),
        name: rule.to_string(),
        target,
        severity,
        firing,
        started: rfc3339(e.get("firedDateTime"), "firedDateTime")?,
        ended: rfc3339(e.get("resolvedDateTime"), "resolvedDateTime")?,
        summary: text(e, &["description"])
            .map(str::to_string)
            .or_else(|| text(e, &["signalType"]).map(|s| format!("{s} alert {rule}"))),
    })
}

fn severity_word(word: Option<&str>) -> Option<Severity> {
    match word?.to_ascii_lowercase().as_str() {
        "critical" | "crit" | "disaster" | "high" | "page" | "emergency" | "alert" | "error"
        | "major" | "fatal" | "down" | "unreachable" | "p1" | "sev0" | "sev1" => {
            Some(Severity::Critical)
        }
        "warning" | "warn" | "average" | "medium" | "minor" | "unknown" | "problem" | "p2"
        | "p3" | "sev2" => Some(Severity::Warning),
        "info" | "information" | "informational" | "not classified" | "low" | "notice" | "none"
        | "ok" | "p4" | "p5" | "sev3" | "sev4" => Some(Severity::Info),
        _ => None,
    }
}

fn flat(obj: &Map<String, Value>) -> Result<Notification, String> {
    let host = text(obj, &["host", "hostname", "host_name"]).ok_or("host is empty")?;
    let trigger = text(obj, &["trigger", "trigger_name", "event_name"]);
    let service = text(obj, &["service", "service_description", "check"]);
    let name = trigger
        .or(service)
        .or_else(|| text(obj, &["name", "event", "problem"]))
        .ok_or("flat payload: no trigger, service or name field")?;
    let state = text(obj, &["state", "status", "event_status", "value"])
        .ok_or("flat payload: no state or status field")?;
    let firing = match state.to_ascii_uppercase().as_str() {
        "PROBLEM" | "CRITICAL" | "WARNING" | "UNKNOWN" | "DOWN" | "UNREACHABLE" | "FIRING"
        | "1" => true,
        "OK" | "RESOLVED" | "RECOVERY" | "RECOVERED" | "UP" | "0" => false,
        other => {
            return Err(format!(
                "flat payload: state {other:?} is not PROBLEM/OK/CRITICAL/WARNING/UNKNOWN"
            ));
        }
    };
    let severity = match text(obj, &["severity", "priority"]) {
        Some(word) => severity_word(Some(word))
            .ok_or_else(|| format!("flat payload: unknown severity {word:?}"))?,
        // Nagios states double as severity; a recovery keeps a neutral one.
        None => severity_word(Some(state)).unwrap_or(Severity::Warning),
    };
    let source = if trigger.is_some()
        || obj.contains_key("event_id")
        || state.eq_ignore_ascii_case("problem")
    {
        Source::Zabbix
    } else {
        Source::Nagios
    };
    let at = flat_time(obj)?;
    Ok(Notification {
        source,
        key: format!("{}:{host}|{name}", source.name()),
        service: service.unwrap_or(host).to_string(),
        name: name.to_string(),
        target: Some(host.to_string()),
        severity,
        firing,
        started: if firing { at } else { None },
        ended: if firing { None } else { at },
        summary: text(obj, &["output", "message", "description", "item_value"]).map(str::to_string),
    })
}

/// `timestamp`/`time`/`last_check` as Unix seconds (or ms), RFC 3339, or
/// Zabbix's `2024.05.01 10:03:11`; or Zabbix's separate `date` and `time`.
fn flat_time(obj: &Map<String, Value>) -> Result<Option<f64>, String> {
    let date = text(obj, &["date"]);
    let raw = ["timestamp", "time", "last_check", "datetime", "clock"]
        .iter()
        .find_map(|k| obj.get(*k).map(|v| (*k, v)));
    let Some((field, value)) = raw else {
        return Ok(None);
    };
    let seconds = match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => {
            let joined = match date {
                Some(d) if field == "time" => format!("{d} {s}"),
                _ => s.clone(),
            };
            parse_text_time(&joined)
        }
        _ => None,
    };
    let seconds = seconds.ok_or_else(|| format!("flat payload: {field} {value} is not a time"))?;
    // Milliseconds since the epoch are past year 33658 as seconds.
    Ok(Some(if seconds > 1e12 {
        seconds / 1000.0
    } else {
        seconds
    }))
}

fn parse_text_time(s: &str) -> Option<f64> {
    if let Ok(n) = s.trim().parse::<f64>() {
        return n.is_finite().then_some(n);
    }
    let mut fixed = s.trim().to_string();
    // Zabbix writes dates as 2024.05.01.
    if fixed.len() >= 10 && fixed.as_bytes()[4] == b'.' && fixed.as_bytes()[7] == b'.' {
        fixed.replace_range(4..5, "-");
        fixed.replace_range(7..8, "-");
    }
    Time::Text(fixed).seconds()
}

/// Unix seconds as `2024-05-01T10:00:00Z`.
pub fn format_time(seconds: f64) -> String {
    #[allow(clippy::cast_possible_truncation, reason = "times are far inside i64")]
    let s = seconds.floor() as i64;
    let (days, rest) = (s.div_euclid(86_400), s.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_times_back_to_rfc3339() {
        assert_eq!(format_time(1_714_557_600.0), "2024-05-01T10:00:00Z");
        assert_eq!(format_time(951_782_400.0), "2000-02-29T00:00:00Z");
        assert_eq!(format_time(0.0), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn reads_zabbix_dates_millis_and_numeric_strings() {
        let obj = |v: Value| v.as_object().unwrap().clone();
        let want = Some(1_714_557_600.0);
        let zabbix = obj(serde_json::json!({"date": "2024.05.01", "time": "10:00:00"}));
        assert_eq!(flat_time(&zabbix).unwrap(), want);
        let millis = obj(serde_json::json!({"timestamp": 1_714_557_600_000_u64}));
        assert_eq!(flat_time(&millis).unwrap(), want);
        let numeric = obj(serde_json::json!({"clock": "1714557600"}));
        assert_eq!(flat_time(&numeric).unwrap(), want);
        let bad = obj(serde_json::json!({"timestamp": "yesterday"}));
        assert!(
            flat_time(&bad)
                .unwrap_err()
                .contains("timestamp \"yesterday\" is not a time")
        );
    }

    #[test]
    fn maps_vendor_severities_to_three_levels() {
        assert_eq!(severity_word(Some("Disaster")), Some(Severity::Critical));
        assert_eq!(severity_word(Some("Average")), Some(Severity::Warning));
        assert_eq!(severity_word(Some("Not classified")), Some(Severity::Info));
        assert_eq!(severity_word(Some("purple")), None);
    }
}
