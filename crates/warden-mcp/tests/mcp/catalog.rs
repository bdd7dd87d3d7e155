//! `runbook_run`, prompts and resources: a runbook as one task on the
//! executor's path, runbooks as prompts, a task's timeline as a resource.

use rmcp::model::{GetPromptRequestParams, ReadResourceRequestParams, ResourceContents};
use serde_json::json;
use warden::journal::JournalEvent;
use warden_fakes::http::OkServer;

use crate::support::{Harness, Setup, task_id};

#[tokio::test]
async fn runbook_run_runs_every_step_through_the_policy_and_dry_runs_changes() {
    let site = OkServer::start();
    let h = Harness::start(Setup::default()).await;
    let r = h
        .call(
            "runbook_run",
            json!({"runbook": "probe", "goal": "check the site", "attachments": {"url": site.url("/x")}}),
        )
        .await;
    assert_eq!(r.is_error, Some(false), "{r:?}");
    let out = r.structured_content.clone().unwrap();
    let steps = out["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 2, "{out}");
    assert_eq!(steps[0]["status"], json!("succeeded"), "{out}");
    assert_eq!(
        steps[1]["dry_run"],
        json!(true),
        "the change is a dry run by default: {out}"
    );
    assert_eq!(site.hits(), 1, "only the probe reached the site");
    let events = h.task_events(&r);
    let started = events
        .iter()
        .find_map(|e| match e {
            JournalEvent::Task(t) => Some(t),
            _ => None,
        })
        .unwrap();
    assert_eq!(started.source, "mcp");
    assert_eq!(started.principal, "assistant");
    assert!(started.goal.contains("runbook `probe`"), "{}", started.goal);
    assert!(
        events.iter().any(|e| matches!(e, JournalEvent::Plan(_))),
        "the plan was decided: {events:?}"
    );
    let decided = events
        .iter()
        .filter(|e| matches!(e, JournalEvent::Decision(_)))
        .count();
    assert_eq!(decided, 2, "each call was decided: {events:?}");
    h.stop().await;
}

#[tokio::test]
async fn runbook_run_refuses_an_unknown_runbook_or_bad_arguments_before_anything_runs() {
    let h = Harness::start(Setup::default()).await;
    let before = h.records().len();
    let r = h.call("runbook_run", json!({"runbook": "nope"})).await;
    assert_eq!(r.is_error, Some(true));
    assert!(
        crate::support::text(&r).contains("no runbook `nope`"),
        "{r:?}"
    );
    let r = h
        .call("runbook_run", json!({"runbook": "probe", "env": "prod"}))
        .await;
    assert_eq!(r.is_error, Some(true));
    assert!(
        crate::support::text(&r).contains("unknown argument `env`"),
        "{r:?}"
    );
    let r = h
        .call(
            "runbook_run",
            json!({"runbook": "probe", "attachments": {"x": "y".repeat(300_000)}}),
        )
        .await;
    assert!(
        crate::support::text(&r).contains("at /attachments"),
        "{r:?}"
    );
    assert_eq!(h.records().len(), before, "nothing was journaled as run");
    h.stop().await;
}

#[tokio::test]
async fn runbooks_are_prompts_that_say_how_to_run_them() {
    let h = Harness::start(Setup::default()).await;
    let prompts = h.client.list_all_prompts().await.unwrap();
    let names: Vec<&str> = prompts.iter().map(|p| p.name.as_str()).collect();
    assert!(
        names.contains(&"health") && names.contains(&"probe"),
        "{names:?}"
    );
    let mut args = serde_json::Map::new();
    args.insert("goal".into(), json!("is the site up?"));
    let p = h
        .client
        .get_prompt(GetPromptRequestParams::new("probe").with_arguments(args))
        .await
        .unwrap();
    let text = serde_json::to_string(&p.messages).unwrap();
    assert!(text.contains("is the site up?"), "{text}");
    assert!(text.contains("runbook_run"), "{text}");
    assert!(text.contains("`look` with tool `http-probe`"), "{text}");
    assert!(
        h.client
            .get_prompt(GetPromptRequestParams::new("nope"))
            .await
            .is_err()
    );
    h.stop().await;
}

#[tokio::test]
async fn a_tasks_timeline_and_the_runbooks_are_resources() {
    let site = OkServer::start();
    let h = Harness::start(Setup::default()).await;
    let resources = h.client.list_all_resources().await.unwrap();
    assert!(
        resources.iter().any(|r| r.uri == "warden://runbooks"),
        "{resources:?}"
    );
    let templates = h.client.list_all_resource_templates().await.unwrap();
    assert!(
        templates
            .iter()
            .any(|t| t.uri_template == "warden://journal/{task_id}"),
        "{templates:?}"
    );
    let r = h.call("http-probe", json!({"url": site.url("/")})).await;
    let task = task_id(&r);
    let read = h
        .client
        .read_resource(ReadResourceRequestParams::new(format!(
            "warden://journal/{task}"
        )))
        .await
        .unwrap();
    let ResourceContents::TextResourceContents { text, .. } = &read.contents[0] else {
        panic!("a text resource: {read:?}");
    };
    assert!(text.contains("http-probe"), "{text}");
    let books = h
        .client
        .read_resource(ReadResourceRequestParams::new("warden://runbooks"))
        .await
        .unwrap();
    let ResourceContents::TextResourceContents { text, .. } = &books.contents[0] else {
        panic!("a text resource: {books:?}");
    };
    assert!(text.contains("\"probe\""), "{text}");
    for missing in [
        "warden://journal/no-such-task",
        "file:///etc/passwd",
        "warden://journal/",
    ] {
        assert!(
            h.client
                .read_resource(ReadResourceRequestParams::new(missing))
                .await
                .is_err(),
            "{missing}"
        );
    }
    h.stop().await;
}
