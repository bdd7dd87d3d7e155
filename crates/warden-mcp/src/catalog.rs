//! Prompts and resources: the runbooks as prompts a person can pick in
//! their client, a task's journal timeline and the incident clusters as
//! resources. All of it reads; nothing here acts.

use rmcp::ErrorData;
use rmcp::model::{
    GetPromptRequestParams, GetPromptResult, Prompt, PromptArgument, PromptMessage,
    ReadResourceResult, Resource, ResourceContents, ResourceTemplate, Role,
};
use serde_json::{Value, json};
use warden::{Agent, Runbooks};

use crate::options::McpOptions;

/// The incident clusters, as JSON.
const CLUSTERS: &str = "warden://incidents/clusters";
/// The runbooks, as JSON.
const RUNBOOKS: &str = "warden://runbooks";
/// One task's journal timeline, as text.
const JOURNAL: &str = "warden://journal/";
/// Longest goal a prompt takes, in bytes.
const GOAL_LIMIT: usize = 2048;
/// Longest task id in a resource URI, in bytes.
const TASK_ID_LIMIT: usize = 256;

/// The runbooks in the configured directory, checked against the agent's
/// tools; none when no directory is configured.
pub(crate) fn runbooks(agent: &Agent, options: &McpOptions) -> Result<Runbooks, String> {
    match &options.runbooks {
        None => Ok(Runbooks::default()),
        Some(dir) => Runbooks::load_dir(dir, agent.tools())
            .map_err(|e| format!("the runbooks in {} do not load: {e}", dir.display())),
    }
}

/// Every runbook as a prompt with one optional argument, `goal`.
pub(crate) fn prompts(agent: &Agent, options: &McpOptions) -> Result<Vec<Prompt>, ErrorData> {
    let books = runbooks(agent, options).map_err(|e| ErrorData::internal_error(e, None))?;
    Ok(books
        .iter()
        .map(|b| {
            Prompt::new(
                b.name.clone(),
                Some(format!("Runbook: {}", b.description)),
                Some(vec![
                    PromptArgument::new("goal")
                        .with_description("What you want done, in words (optional).")
                        .with_required(false),
                ]),
            )
        })
        .collect())
}

/// The prompt for runbook `request.name`: its steps, and how to run it
/// through warden.
pub(crate) fn prompt(
    agent: &Agent,
    options: &McpOptions,
    request: &GetPromptRequestParams,
) -> Result<GetPromptResult, ErrorData> {
    let books = runbooks(agent, options).map_err(|e| ErrorData::internal_error(e, None))?;
    let Some(book) = books.get(&request.name) else {
        let name: String = request.name.chars().take(64).collect();
        return Err(ErrorData::invalid_params(
            format!("no prompt `{name}`; prompts/list shows what there is"),
            None,
        ));
    };
    let goal = request
        .arguments
        .as_ref()
        .and_then(|a| a.get("goal"))
        .and_then(Value::as_str)
        .unwrap_or("");
    if goal.len() > GOAL_LIMIT {
        return Err(ErrorData::invalid_params(
            format!("goal: longer than {GOAL_LIMIT} bytes"),
            None,
        ));
    }
    let mut text = format!(
        "Use warden's runbook `{}`: {}\n",
        book.name, book.description
    );
    if !goal.is_empty() {
        text.push_str(&format!("Goal: {goal}\n"));
    }
    text.push_str("Its steps:\n");
    for s in &book.steps {
        text.push_str(&format!("- `{}` with tool `{}`: {}\n", s.id, s.tool, s.why));
    }
    text.push_str(&format!(
        "Run it with the `runbook_run` tool (runbook: \"{}\"), first as a dry run; every step is decided by warden's policy. If a step is refused, report why and do not work around it.",
        book.name
    ));
    Ok(
        GetPromptResult::new(vec![PromptMessage::new_text(Role::User, text)])
            .with_description(format!("Runbook {}", book.name)),
    )
}

/// The fixed resources: the runbooks, and the incident clusters when the
/// agent has incident memory.
pub(crate) fn resources(agent: &Agent) -> Vec<Resource> {
    let mut out = vec![
        Resource::new(RUNBOOKS, "runbooks")
            .with_description("The runbook directory warden plans from offline.")
            .with_mime_type("application/json"),
    ];
    if matches!(agent.clusters(), Ok(Some(_))) {
        out.push(
            Resource::new(CLUSTERS, "incident clusters")
                .with_description("Past incidents grouped by similarity, largest first.")
                .with_mime_type("application/json"),
        );
    }
    out
}

/// The resource templates: a task's journal timeline.
pub(crate) fn templates() -> Vec<ResourceTemplate> {
    vec![
        ResourceTemplate::new(format!("{JOURNAL}{{task_id}}"), "journal timeline")
            .with_description("One task's timeline from warden's journal: plan, decisions with reasons, approvals, calls, outcome. Every tool result names its task.")
            .with_mime_type("text/plain"),
    ]
}

/// Read resource `uri`.
pub(crate) fn read(agent: &Agent, uri: &str) -> Result<ReadResourceResult, ErrorData> {
    let not_found = || {
        let shown: String = uri.chars().take(128).collect();
        ErrorData::resource_not_found(format!("no resource `{shown}`"), None)
    };
    if uri == CLUSTERS {
        let clusters = agent
            .clusters()
            .map_err(|e| ErrorData::internal_error(e.to_string(), None))?
            .ok_or_else(not_found)?;
        let body = json!({ "clusters": clusters });
        return Ok(ReadResourceResult::new(vec![
            ResourceContents::text(body.to_string(), uri).with_mime_type("application/json"),
        ]));
    }
    if let Some(task_id) = uri.strip_prefix(JOURNAL) {
        if task_id.is_empty() || task_id.len() > TASK_ID_LIMIT {
            return Err(not_found());
        }
        let journal = agent.journal();
        let records = warden::journal::read_journal(journal.path(), journal.key())
            .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
        if !records.iter().any(|r| r.task_id == task_id) {
            return Err(not_found());
        }
        let timeline = warden::journal::render_timeline(&records, task_id);
        return Ok(ReadResourceResult::new(vec![
            ResourceContents::text(timeline, uri).with_mime_type("text/plain"),
        ]));
    }
    Err(not_found())
}

/// The runbooks resource, read separately because it needs the options.
pub(crate) fn read_runbooks(
    agent: &Agent,
    options: &McpOptions,
    uri: &str,
) -> Option<Result<ReadResourceResult, ErrorData>> {
    if uri != RUNBOOKS {
        return None;
    }
    Some(
        runbooks(agent, options)
            .map_err(|e| ErrorData::internal_error(e, None))
            .map(|books| {
                let list: Vec<Value> = books
                    .iter()
                    .map(|b| {
                        json!({
                            "name": b.name,
                            "description": b.description,
                            "steps": b.steps.iter().map(|s| json!({"id": s.id, "tool": s.tool, "why": s.why})).collect::<Vec<_>>(),
                        })
                    })
                    .collect();
                ReadResourceResult::new(vec![
                    ResourceContents::text(json!({ "runbooks": list }).to_string(), uri)
                        .with_mime_type("application/json"),
                ])
            }),
    )
}
