//! The API: authentication, roles, tasks, timelines and metrics.

use serde_json::{Value, json};
use warden::journal::JournalEvent;

use crate::support::{ADMIN, ALICE, Harness, Options, VIEWER, task_of};

#[tokio::test(flavor = "multi_thread")]
async fn only_health_and_readiness_answer_without_a_token() {
    let h = Harness::start(Options::default()).await;
    for path in ["/healthz", "/readyz"] {
        let r = h.client.get(h.url(path)).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200, "{path}");
    }
    for path in [
        "/metrics",
        "/v1/tasks",
        "/v1/approvals",
        "/v1/incidents/similar?q=x",
        "/v1/tasks/x",
    ] {
        for token in ["", "nope-0123456789abcdef0123"] {
            let (s, _) = h.get(path, token).await;
            assert_eq!(s, 401, "{path} with `{token}`");
        }
        let (s, _) = h.get(path, VIEWER).await;
        assert_ne!(s, 401, "{path} as a viewer");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_goal_from_the_api_runs_on_behalf_of_the_token_holder() {
    let h = Harness::start(Options::default()).await;
    let (s, _) = h
        .post("/v1/tasks", VIEWER, &json!({"goal": "look around"}))
        .await;
    assert_eq!(s, 403, "a viewer cannot start tasks");
    let (s, _) = h
        .post("/v1/tasks", ALICE, &json!({"goal": "look around"}))
        .await;
    assert_eq!(s, 403, "an approver cannot start tasks");
    let (s, msg) = h
        .post("/v1/tasks", ADMIN, &json!({"goal": "x", "env": "moon"}))
        .await;
    assert_eq!(s, 400);
    assert!(msg["error"].as_str().unwrap().contains("moon"), "{msg}");
    let (s, msg) = h
        .post(
            "/v1/tasks",
            ADMIN,
            &json!({"goal": "x", "principal": "root"}),
        )
        .await;
    assert_eq!(s, 400, "the body cannot say on whose behalf: {msg}");

    let (s, started) = h
        .post(
            "/v1/tasks",
            ADMIN,
            &json!({"alert": h.checkout.alert("api-1", "firing"), "env": "staging"}),
        )
        .await;
    assert_eq!(s, 202, "{started}");
    let task = started["task_id"].as_str().unwrap();
    let done = h.done(task).await;
    assert_eq!(done["task"]["status"], "resolved", "{done}");
    let began = h
        .records(task)
        .into_iter()
        .find_map(|r| match r.event {
            JournalEvent::Task(t) => Some(t),
            _ => None,
        })
        .unwrap();
    assert_eq!(began.principal, "admin");
    assert_eq!(began.env, "staging");
    assert_eq!(began.source, "api");
    // The timeline is the journal's.
    assert!(done["timeline"].as_array().unwrap().len() >= 5, "{done}");
    assert_eq!(done["summary"]["outcome"], "resolved");
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_tasks_steps_and_policy_decisions() {
    let h = Harness::start(Options::default()).await;
    let (_, answer) = h.alert(&h.checkout.alert("m-1", "firing")).await;
    h.done(&task_of(&answer)).await;
    let r = h
        .client
        .get(h.url("/metrics"))
        .bearer_auth(VIEWER)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let text = r.text().await.unwrap();
    let value = |needle: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(needle))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no `{needle}` in\n{text}"))
    };
    assert_eq!(value("warden_tasks_total{status=\"resolved\"}"), 1.0);
    assert_eq!(
        value("warden_policy_decisions_total{entry=\"call\",verdict=\"allow\"}"),
        3.0
    );
    assert!(value("warden_policy_decisions_total{entry=\"capability\",verdict=\"allow\"}") >= 3.0);
    assert_eq!(
        value("warden_steps_total{tool=\"http-probe\",status=\"succeeded\"}"),
        2.0
    );
    assert_eq!(
        value("warden_alerts_received_total{source=\"alertmanager\",disposition=\"queued\"}"),
        1.0
    );
    assert_eq!(value("warden_queue_depth"), 0.0);
    assert_eq!(value("warden_approvals_pending"), 0.0);
    assert!(
        text.contains("warden_step_duration_seconds_bucket{"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_overlong_similarity_query_is_refused() {
    let h = Harness::start(Options::default()).await;
    let (s, v) = h.get("/v1/incidents/similar?q=disk%20full", VIEWER).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["incidents"], json!([]), "no memory configured");
    let long = "a".repeat(5000);
    let (s, _) = h
        .get(&format!("/v1/incidents/similar?q={long}"), VIEWER)
        .await;
    assert_eq!(s, 400);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_task_list_pages_newest_first_and_filters_by_state() {
    let h = Harness::start(Options::default()).await;
    let mut ids = Vec::new();
    for i in 0..3 {
        let (_, a) = h
            .alert(&h.checkout.alert(&format!("p-{i}"), "firing"))
            .await;
        let id = task_of(&a);
        h.done(&id).await;
        ids.push(id);
    }
    let (s, first) = h.get("/v1/tasks?limit=2", VIEWER).await;
    assert_eq!(s, 200, "{first}");
    let page: Vec<&str> = first["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["task_id"].as_str().unwrap())
        .collect();
    assert_eq!(page, vec![ids[2].as_str(), ids[1].as_str()]);
    let before = first["next_before"].as_str().unwrap();
    let (_, second) = h
        .get(&format!("/v1/tasks?limit=2&before={before}"), VIEWER)
        .await;
    assert_eq!(second["tasks"].as_array().unwrap().len(), 1);
    assert_eq!(second["tasks"][0]["task_id"], ids[0].as_str());
    assert_eq!(second["next_before"], Value::Null);
    let (_, pending) = h.get("/v1/tasks?state=pending", VIEWER).await;
    assert_eq!(pending["tasks"], json!([]));
    let (s, _) = h.get("/v1/tasks?limit=2&sort=up", VIEWER).await;
    assert_eq!(s, 400, "unknown parameters are refused");
}
