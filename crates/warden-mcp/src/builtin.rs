//! Tools the server answers itself, from the agent's own data: similar
//! past incidents, a task's journal timeline, the runbooks. They read and
//! never act, so they do not go through the call policy. `runbook_run`
//! acts, and runs every step through the executor like a planned task.
//! Their names use `_`, which plugin names cannot, so they never shadow a
//! plugin.

use std::collections::BTreeMap;
use std::sync::Arc;

use rmcp::model::{CallToolResult, ContentBlock, JsonObject, MetaObject, Tool, ToolAnnotations};
use serde_json::{Value, json};
use warden::{Agent, OutcomeStatus};

use crate::options::McpOptions;

/// The tool that runs a runbook.
pub(crate) const RUNBOOK_RUN: &str = "runbook_run";
/// Longest runbook goal, in bytes.
const GOAL_LIMIT: usize = 2048;
/// Largest `attachments` object, as JSON, in bytes.
const ATTACHMENTS_LIMIT: usize = 256 * 1024;

/// Longest `text` for `incidents_similar`, in bytes.
const TEXT_LIMIT: usize = 4096;
/// Longest task id for `journal_show`, in bytes.
const TASK_ID_LIMIT: usize = 256;
/// Longest timeline returned by `journal_show`, in bytes.
const TIMELINE_LIMIT: usize = 64 * 1024;
/// Most incidents `incidents_similar` returns.
const K_MAX: u64 = 20;

fn schema(v: Value) -> Arc<JsonObject> {
    Arc::new(match v {
        Value::Object(o) => o,
        _ => JsonObject::new(),
    })
}

fn read_only(title: &str) -> ToolAnnotations {
    ToolAnnotations::with_title(title)
        .read_only(true)
        .destructive(false)
        .idempotent(true)
        .open_world(false)
}

/// The built-in tools as MCP lists them.
pub(crate) fn tools() -> Vec<Tool> {
    vec![
        Tool::new(
            "incidents_similar",
            "Past incidents most like a description, best first, with how each was resolved (from warden's incident memory; empty when the server has none).",
            schema(json!({
                "type": "object",
                "properties": {
                    "text": {"type": "string", "minLength": 1, "maxLength": TEXT_LIMIT,
                             "description": "What is happening, in words (an alert summary, log lines)."},
                    "k": {"type": "integer", "minimum": 1, "maximum": K_MAX, "default": 5,
                          "description": "How many incidents to return."}
                },
                "required": ["text"],
                "additionalProperties": false
            })),
        )
        .with_raw_output_schema(schema(json!({
            "type": "object",
            "properties": {"incidents": {"type": "array", "items": {"type": "object"}}},
            "required": ["incidents"]
        })))
        .with_annotations(read_only("incidents_similar")),
        Tool::new(
            "journal_show",
            "The timeline of one task from warden's journal: plan, policy decisions with reasons, approvals, calls and the outcome.",
            schema(json!({
                "type": "object",
                "properties": {
                    "task_id": {"type": "string", "minLength": 1, "maxLength": TASK_ID_LIMIT,
                                "description": "The task id (every tool result names its task)."}
                },
                "required": ["task_id"],
                "additionalProperties": false
            })),
        )
        .with_raw_output_schema(schema(json!({
            "type": "object",
            "properties": {
                "task_id": {"type": "string"},
                "events": {"type": "integer"},
                "timeline": {"type": "string"}
            },
            "required": ["task_id", "events", "timeline"]
        })))
        .with_annotations(read_only("journal_show")),
        Tool::new(
            "runbook_list",
            "The runbooks warden plans from offline: name, description, when each applies, and its steps.",
            schema(json!({"type": "object", "properties": {}, "additionalProperties": false})),
        )
        .with_raw_output_schema(schema(json!({
            "type": "object",
            "properties": {"runbooks": {"type": "array", "items": {"type": "object"}}},
            "required": ["runbooks"]
        })))
        .with_annotations(read_only("runbook_list")),
        Tool::new(
            RUNBOOK_RUN,
            "Run one runbook as a task: each step is decided by warden's policy, may need a human's approval, runs sandboxed and is journaled. Mutating steps are dry runs unless dry_run is false.",
            schema(json!({
                "type": "object",
                "properties": {
                    "runbook": {"type": "string", "minLength": 1, "maxLength": 128,
                                "description": "The runbook's name (see runbook_list)."},
                    "goal": {"type": "string", "maxLength": GOAL_LIMIT,
                             "description": "What the run is for, in words (journaled)."},
                    "attachments": {"type": "object",
                                    "description": "Named data the runbook's steps read as attachments.<name>."},
                    "dry_run": {"type": "boolean", "default": true,
                                "description": "Only report what mutating steps would change (the default)."}
                },
                "required": ["runbook"],
                "additionalProperties": false
            })),
        )
        .with_raw_output_schema(schema(json!({
            "type": "object",
            "properties": {
                "task_id": {"type": "string"},
                "status": {"type": "string"},
                "reason": {"type": "string"},
                "summary": {"type": "string"},
                "steps": {"type": "array", "items": {"type": "object"}}
            },
            "required": ["task_id", "status", "steps"]
        })))
        .with_annotations(
            ToolAnnotations::with_title(RUNBOOK_RUN)
                .read_only(false)
                .destructive(true)
                .open_world(true),
        ),
    ]
}

/// `runbook_run`'s arguments, checked.
#[derive(Debug)]
pub(crate) struct RunbookArgs {
    pub name: String,
    pub goal: String,
    pub attachments: BTreeMap<String, Value>,
    pub dry_run: bool,
}

/// Check `runbook_run`'s arguments, naming the one that is wrong.
pub(crate) fn runbook_args(args: &JsonObject) -> Result<RunbookArgs, String> {
    no_other_arguments(args, &["runbook", "goal", "attachments", "dry_run"])?;
    let name = match args.get("runbook") {
        Some(Value::String(n)) if !n.is_empty() && n.len() <= 128 => n.clone(),
        _ => return Err("at /runbook: a runbook name of 1 to 128 bytes is required".into()),
    };
    let goal = match args.get("goal") {
        None => format!("run runbook {name}"),
        Some(Value::String(g)) if g.len() <= GOAL_LIMIT => g.clone(),
        _ => {
            return Err(format!(
                "at /goal: a string of at most {GOAL_LIMIT} bytes is required"
            ));
        }
    };
    let attachments = match args.get("attachments") {
        None => BTreeMap::new(),
        Some(Value::Object(o)) => {
            let size = serde_json::to_vec(o).map(|v| v.len()).unwrap_or(usize::MAX);
            if size > ATTACHMENTS_LIMIT {
                return Err(format!(
                    "at /attachments: {size} bytes, more than {ATTACHMENTS_LIMIT}"
                ));
            }
            o.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
        }
        Some(_) => return Err("at /attachments: an object is required".into()),
    };
    let dry_run = match args.get("dry_run") {
        None => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err("at /dry_run: true or false is required".into()),
    };
    Ok(RunbookArgs {
        name,
        goal,
        attachments,
        dry_run,
    })
}

/// A runbook run's outcome as a tool result: every step with its status
/// and the policy's reasons; an error when the policy refused the plan.
pub(crate) fn runbook_result(outcome: &warden::Outcome, dry_run: bool) -> CallToolResult {
    let steps: Vec<Value> = outcome
        .observations
        .iter()
        .map(|o| {
            json!({
                "step_id": o.step_id,
                "tool": o.tool,
                "status": o.status.as_str(),
                "dry_run": o.dry_run,
                "reasons": o.reasons,
                "output": o.output,
            })
        })
        .collect();
    let body = json!({
        "task_id": outcome.task_id,
        "status": outcome.status.as_str(),
        "reason": outcome.reason,
        "summary": outcome.summary,
        "steps": steps,
    });
    let mut r = CallToolResult::structured(body);
    let mut note = format!(
        "runbook task {} in `{}`: {} ({})",
        outcome.task_id,
        outcome.env,
        outcome.status.as_str(),
        outcome.reason
    );
    if dry_run {
        note.push_str(". Mutating steps were dry runs: call again with dry_run: false to make changes; the policy decides.");
    }
    if matches!(outcome.status, OutcomeStatus::Refused) {
        note.push_str(" The policy refused this run: do not retry it or work around it.");
        r.is_error = Some(true);
    }
    r.content.push(ContentBlock::text(note));
    let mut meta = JsonObject::new();
    meta.insert("warden/task".into(), Value::String(outcome.task_id.clone()));
    meta.insert("warden/env".into(), Value::String(outcome.env.clone()));
    r.meta = Some(MetaObject(meta));
    r
}

fn error(text: impl Into<String>) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(text.into())])
}

/// Answer built-in `name`; `None` when it is not one.
pub(crate) fn call(
    name: &str,
    agent: &Agent,
    options: &McpOptions,
    args: &JsonObject,
) -> Option<CallToolResult> {
    let result = match name {
        "incidents_similar" => incidents_similar(agent, args),
        "journal_show" => journal_show(agent, args),
        "runbook_list" => runbook_list(agent, options, args),
        _ => return None,
    };
    Some(result.unwrap_or_else(error))
}

fn no_other_arguments(args: &JsonObject, allowed: &[&str]) -> Result<(), String> {
    match args.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(format!(
            "unknown argument `{}` (allowed: {})",
            k.chars().take(64).collect::<String>(),
            if allowed.is_empty() {
                "none".to_string()
            } else {
                allowed.join(", ")
            }
        )),
        None => Ok(()),
    }
}

fn incidents_similar(agent: &Agent, args: &JsonObject) -> Result<CallToolResult, String> {
    no_other_arguments(args, &["text", "k"])?;
    let text = match args.get("text") {
        Some(Value::String(t)) if !t.trim().is_empty() && t.len() <= TEXT_LIMIT => t,
        Some(Value::String(t)) if t.len() > TEXT_LIMIT => {
            return Err(format!("at /text: longer than {TEXT_LIMIT} bytes"));
        }
        _ => return Err("at /text: a non-empty string is required".into()),
    };
    let k = match args.get("k") {
        None => 5,
        Some(v) => match v.as_u64() {
            Some(k) if (1..=K_MAX).contains(&k) => k,
            _ => return Err(format!("at /k: an integer from 1 to {K_MAX} is required")),
        },
    };
    let hits = agent
        .recall(text, usize::try_from(k).unwrap_or(5))
        .map_err(|e| e.to_string())?;
    let incidents: Vec<Value> = hits
        .iter()
        .map(|h| {
            json!({
                "id": h.incident.id,
                "title": h.incident.title,
                "score": h.score,
                "service": h.incident.service,
                "severity": h.incident.severity,
                "resolution": h.incident.resolution,
                "has_plan": h.incident.plan.is_some(),
                "cluster": h.cluster.as_ref().map(|c| c.label.join(" ")),
            })
        })
        .collect();
    Ok(CallToolResult::structured(json!({"incidents": incidents})))
}

fn journal_show(agent: &Agent, args: &JsonObject) -> Result<CallToolResult, String> {
    no_other_arguments(args, &["task_id"])?;
    let task_id = match args.get("task_id") {
        Some(Value::String(t)) if !t.is_empty() && t.len() <= TASK_ID_LIMIT => t,
        _ => {
            return Err(format!(
                "at /task_id: a string of 1 to {TASK_ID_LIMIT} bytes is required"
            ));
        }
    };
    let journal = agent.journal();
    let records =
        warden::journal::read_journal(journal.path(), journal.key()).map_err(|e| e.to_string())?;
    let events = records.iter().filter(|r| &r.task_id == task_id).count();
    if events == 0 {
        return Err(format!(
            "no task `{}` in the journal",
            warden::terminal_safe(task_id)
        ));
    }
    let mut timeline = warden::journal::render_timeline(&records, task_id);
    if timeline.len() > TIMELINE_LIMIT {
        let mut cut = TIMELINE_LIMIT;
        while !timeline.is_char_boundary(cut) {
            cut -= 1;
        }
        timeline.truncate(cut);
        timeline.push_str("\n… [cut: the timeline is longer; see `warden journal show`]");
    }
    Ok(CallToolResult::structured(
        json!({"task_id": task_id, "events": events, "timeline": timeline}),
    ))
}

fn runbook_list(
    agent: &Agent,
    options: &McpOptions,
    args: &JsonObject,
) -> Result<CallToolResult, String> {
    no_other_arguments(args, &[])?;
    let books = crate::catalog::runbooks(agent, options)?;
    let runbooks: Vec<Value> = books
        .iter()
        .map(|r| {
            json!({
                "name": r.name,
                "description": r.description,
                "match": r.matches,
                "steps": r.steps.iter().map(|s| json!({"id": s.id, "tool": s.tool, "why": s.why})).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(CallToolResult::structured(json!({"runbooks": runbooks})))
}
