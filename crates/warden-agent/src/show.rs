//! A readable timeline of one task from the journal.

use std::fmt::Write as _;

use serde_json::Value;

use crate::journal::JournalRecord;

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

fn list(v: &Value, key: &str) -> Vec<String> {
    v.get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// A one-line view of a tool output: its scalar top-level fields.
pub(crate) fn brief(output: &Value) -> String {
    let Some(obj) = output.as_object() else {
        return clip(&output.to_string(), 100);
    };
    let mut parts = Vec::new();
    for (k, v) in obj {
        match v {
            Value::Array(a) => parts.push(format!("{k}: {} item(s)", a.len())),
            Value::Object(_) | Value::Null => {}
            other => parts.push(format!("{k}={}", clip(&other.to_string(), 60))),
        }
        if parts.len() == 6 {
            break;
        }
    }
    parts.join(", ")
}

fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n).collect::<String>())
    }
}

/// Render the records of `task` (from [`read_journal`](crate::read_journal))
/// as a timeline: plan, decisions with reasons, calls with duration and a
/// result summary, approvals and the outcome.
pub fn render_timeline(records: &[JournalRecord], task: &str) -> String {
    let mut out = String::new();
    let start = records
        .iter()
        .find(|r| r.task == task)
        .map(|r| r.ts.clone());
    for r in records.iter().filter(|r| r.task == task) {
        let d = &r.data;
        let time = r.ts.get(11..19).unwrap_or(&r.ts);
        let line = match r.kind.as_str() {
            "task" => format!(
                "task {} from {} in `{}` for {}: {}",
                task,
                s(d, "source"),
                s(d, "env"),
                s(d, "principal"),
                s(d, "goal")
            ),
            "recall" => {
                let cases: Vec<String> = d
                    .get("cases")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .map(|c| {
                                format!(
                                    "{} ({:.2})",
                                    s(c, "id"),
                                    c.get("score").and_then(Value::as_f64).unwrap_or(0.0)
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                format!(
                    "recall: {}",
                    if cases.is_empty() {
                        "no similar incidents".into()
                    } else {
                        cases.join(", ")
                    }
                )
            }
            "plan" => {
                let steps: Vec<String> = d
                    .get("steps")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .map(|st| format!("{}={}", s(st, "id"), s(st, "tool")))
                            .collect()
                    })
                    .unwrap_or_default();
                let dec = d.get("decision").cloned().unwrap_or(Value::Null);
                let mut l = format!(
                    "plan by {}: {} — policy {}",
                    s(d, "planner"),
                    steps.join(" → "),
                    s(&dec, "verdict")
                );
                if let Some(note) = d.get("note").and_then(Value::as_str) {
                    let _ = write!(l, "\n           {note}");
                }
                for reason in list(&dec, "reasons") {
                    let _ = write!(l, "\n           · {reason}");
                }
                l
            }
            "decision" => {
                let mut l = format!(
                    "policy {} `{}` ({}): {}",
                    s(d, "step"),
                    s(d, "tool"),
                    s(d, "effect"),
                    s(d, "verdict")
                );
                for reason in list(d, "reasons") {
                    let _ = write!(l, "\n           · {reason}");
                }
                l
            }
            "approval" => format!(
                "approval of `{}`: {} by {}{}",
                s(d, "step"),
                if d.get("approved").and_then(Value::as_bool) == Some(true) {
                    "approved"
                } else {
                    "rejected"
                },
                s(d, "by"),
                d.get("note")
                    .and_then(Value::as_str)
                    .map(|n| format!(" — {n}"))
                    .unwrap_or_default()
            ),
            "call" => {
                let us = d.get("duration_us").and_then(Value::as_u64).unwrap_or(0);
                let mut l = format!(
                    "call {} `{}`{}: {} in {:.1} ms{}",
                    s(d, "step"),
                    s(d, "tool"),
                    if d.get("dry_run").and_then(Value::as_bool) == Some(true) {
                        " (dry run)"
                    } else {
                        ""
                    },
                    s(d, "status"),
                    us as f64 / 1000.0,
                    match d.get("attempts").and_then(Value::as_u64) {
                        Some(n) if n > 1 => format!(", {n} attempts"),
                        _ => String::new(),
                    }
                );
                if let Some(o) = d.get("output").filter(|o| !o.is_null()) {
                    let _ = write!(l, "\n           → {}", brief(o));
                }
                for reason in list(d, "reasons") {
                    let _ = write!(l, "\n           · {reason}");
                }
                l
            }
            "skip" => format!(
                "skip {} `{}`: {}",
                s(d, "step"),
                s(d, "tool"),
                s(d, "reason")
            ),
            "llm" => format!(
                "llm {}: {} tokens{}",
                s(d, "planner"),
                d.get("tokens").and_then(Value::as_u64).unwrap_or(0),
                d.get("cost_usd")
                    .and_then(Value::as_f64)
                    .map(|c| format!(", ~${c:.4}"))
                    .unwrap_or_default()
            ),
            "stop" => format!("stop ({}): {}", s(d, "status"), s(d, "reason")),
            "outcome" => format!(
                "outcome: {} — {}\n           {}",
                s(d, "status").to_uppercase(),
                s(d, "reason"),
                s(d, "summary").replace('\n', "\n           ")
            ),
            other => format!("{other}: {}", clip(&d.to_string(), 120)),
        };
        let _ = writeln!(out, "#{:<4} {time}  {line}", r.seq);
    }
    if out.is_empty() {
        let _ = writeln!(out, "no records for task `{task}`");
    } else if let Some(start) = start {
        out.insert_str(0, &format!("task {task}, started {start}\n"));
    }
    out
}
