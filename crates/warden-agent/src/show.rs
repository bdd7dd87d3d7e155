//! Human views of the journal: a task's timeline and the list of tasks.
//!
//! Every string in these views may come from outside (alert labels, tool
//! output, model text), so each is escaped for the terminal: control
//! characters (ANSI/OSC escapes, carriage returns) and bidirectional
//! overrides are shown as `\u{..}` escapes instead of acting on the screen.

use std::fmt::Write as _;

use serde::Serialize;
use serde_json::Value;

use crate::journal::{JournalEvent, JournalRecord};
use crate::task::OutcomeStatus;

/// `text` made safe to print on a terminal: control characters and
/// bidirectional overrides are escaped, everything else is kept.
///
/// ```
/// assert_eq!(warden_agent::terminal_safe("ok\x1b]0;pwned\x07\rFAKE"), "ok\\u{1b}]0;pwned\\u{7}\\rFAKE");
/// ```
pub fn terminal_safe(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let bidi = matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}');
        if c.is_control() || bidi {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
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

fn reasons(l: &mut String, reasons: &[String]) {
    for reason in reasons {
        let _ = write!(l, "\n           · {}", terminal_safe(reason));
    }
}

/// Render the records of `task_id` (from [`read_journal`](crate::read_journal))
/// as a timeline: plan, decisions with reasons, calls with duration and a
/// result summary, approvals and the outcome. Safe to print on a terminal.
pub fn render_timeline(records: &[JournalRecord], task_id: &str) -> String {
    let mut out = String::new();
    let start = records
        .iter()
        .find(|r| r.task_id == task_id)
        .map(|r| r.ts.clone());
    let t = terminal_safe;
    for r in records.iter().filter(|r| r.task_id == task_id) {
        let time = r.ts.get(11..19).unwrap_or(&r.ts);
        let line = render_record(r);
        let _ = writeln!(out, "#{:<4} {time}  {line}", r.seq);
    }
    if out.is_empty() {
        let _ = writeln!(out, "no records for task `{}`", t(task_id));
    } else if let Some(start) = start {
        out.insert_str(0, &format!("task {}, started {start}\n", t(task_id)));
    }
    out
}

/// One record as one entry of [`render_timeline`] (without its sequence
/// number and time): what happened, with reasons on indented lines. Safe to
/// print on a terminal; a web page still escapes it for HTML.
pub fn render_record(r: &JournalRecord) -> String {
    let t = terminal_safe;
    match &r.event {
        JournalEvent::Task(d) => format!(
            "task {} by {} from {} in `{}` for {}: {}",
            t(&r.task_id),
            t(&d.agent),
            t(&d.source),
            t(&d.env),
            t(&d.principal),
            t(&d.goal)
        ),
        JournalEvent::Recall { cases } => {
            let cases: Vec<String> = cases
                .iter()
                .map(|c| format!("{} ({:.2})", t(&c.id), c.score))
                .collect();
            format!(
                "recall: {}",
                if cases.is_empty() {
                    "no similar incidents".into()
                } else {
                    cases.join(", ")
                }
            )
        }
        JournalEvent::Plan(p) => {
            let steps: Vec<String> = p
                .steps
                .iter()
                .map(|st| format!("{}={}", t(&st.id), t(&st.tool)))
                .collect();
            let mut l = format!(
                "plan by {}: {} — policy {}",
                t(&p.planner),
                steps.join(" → "),
                p.policy.decision.verdict.as_str()
            );
            if let Some(note) = &p.note {
                let _ = write!(l, "\n           {}", t(note));
            }
            reasons(&mut l, &p.policy.decision.reasons);
            l
        }
        JournalEvent::Decision(d) => {
            let mut l = format!(
                "policy {} `{}` ({}): {}",
                t(&d.step_id),
                t(&d.tool),
                d.effect,
                d.policy.decision.verdict.as_str()
            );
            reasons(&mut l, &d.policy.decision.reasons);
            l
        }
        JournalEvent::Capability(c) => {
            let what = c
                .capability
                .get("kind")
                .and_then(Value::as_str)
                .unwrap_or("capability");
            let target = ["host", "key", "operation"]
                .iter()
                .find_map(|k| c.capability.get(*k).and_then(Value::as_str))
                .unwrap_or("");
            let mut l = format!(
                "capability {} `{}` {} {}: {}",
                t(&c.step_id),
                t(&c.tool),
                t(what),
                t(target),
                c.policy.decision.verdict.as_str()
            );
            reasons(&mut l, &c.policy.decision.reasons);
            l
        }
        JournalEvent::Approval(a) => format!(
            "approval of `{}`: {} by {} for {}{}",
            t(&a.step_id),
            if a.approved { "approved" } else { "rejected" },
            t(&a.approver),
            t(&a.principal),
            a.note
                .as_deref()
                .map(|n| format!(" — {}", t(n)))
                .unwrap_or_default()
        ),
        JournalEvent::Call(c) => {
            let mut l = format!(
                "call {} `{}`{}: {} in {:.1} ms{}",
                t(&c.step_id),
                t(&c.tool),
                if c.dry_run { " (dry run)" } else { "" },
                c.status.as_str(),
                c.duration_us as f64 / 1000.0,
                if c.attempts > 1 {
                    format!(", {} attempts", c.attempts)
                } else {
                    String::new()
                }
            );
            if let Some(o) = c.output.as_ref().filter(|o| !o.is_null()) {
                let _ = write!(l, "\n           → {}", t(&brief(o)));
            }
            reasons(&mut l, &c.reasons);
            l
        }
        JournalEvent::Skip {
            step_id,
            tool,
            reason,
        } => format!("skip {} `{}`: {}", t(step_id), t(tool), t(reason)),
        JournalEvent::Llm {
            planner,
            tokens,
            cost_usd,
            ..
        } => format!(
            "llm {}: {tokens} tokens{}",
            t(planner),
            cost_usd.map(|c| format!(", ~${c:.4}")).unwrap_or_default()
        ),
        JournalEvent::Stop { status, reason } => {
            format!("stop ({}): {}", status.as_str(), t(reason))
        }
        JournalEvent::Outcome(o) => format!(
            "outcome: {} — {}\n           {}",
            o.status.as_str().to_uppercase(),
            t(&o.reason),
            t(&o.summary).replace("\\n", "\n           ")
        ),
        JournalEvent::Received {
            source,
            status,
            disposition,
            by,
            ..
        } => format!(
            "received {} alert ({}) from {}: {}",
            t(source),
            t(status),
            t(by),
            t(disposition)
        ),
        JournalEvent::Outbox(o) => format!(
            "outbox {} to secret {} from step {}: {} after {} attempt(s){}",
            t(&o.id),
            t(&o.secret),
            t(&o.step_id),
            t(&o.outcome),
            o.attempts,
            o.reason
                .as_deref()
                .map(|r| format!(": {}", t(r)))
                .unwrap_or_default()
        ),
        JournalEvent::Recovered {
            torn_bytes,
            moved_to,
            ..
        } => format!(
            "recovered a torn line of {torn_bytes} bytes, moved to {}",
            t(moved_to)
        ),
        JournalEvent::Replayed {
            step_id,
            tool,
            status,
        } => format!(
            "replay {} `{}`: {} (committed before)",
            t(step_id),
            t(tool),
            status.as_str()
        ),
        JournalEvent::Anchored {
            task,
            records,
            head,
        } => format!(
            "anchor {}: {records} records, head {}",
            t(task),
            t(head.get(..16).unwrap_or(head))
        ),
    }
}

/// One task in the journal, for `warden journal list`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskSummary {
    /// Task id.
    pub task_id: String,
    /// When its first record was written.
    pub started: String,
    /// How it ended; `None` while running, or if it was interrupted.
    pub outcome: Option<OutcomeStatus>,
    /// Its environment.
    pub env: String,
    /// Its goal.
    pub goal: String,
}

/// Every task in `records`, in the order they started.
pub fn task_list(records: &[JournalRecord]) -> Vec<TaskSummary> {
    let mut tasks: Vec<TaskSummary> = Vec::new();
    let mut index = std::collections::HashMap::new();
    for r in records {
        match &r.event {
            JournalEvent::Task(d) => {
                index.insert(r.task_id.clone(), tasks.len());
                tasks.push(TaskSummary {
                    task_id: r.task_id.clone(),
                    started: r.ts.clone(),
                    outcome: None,
                    env: d.env.clone(),
                    goal: d.goal.clone(),
                });
            }
            JournalEvent::Outcome(o) => {
                if let Some(&i) = index.get(&r.task_id) {
                    tasks[i].outcome = Some(o.status);
                }
            }
            _ => {}
        }
    }
    tasks
}
