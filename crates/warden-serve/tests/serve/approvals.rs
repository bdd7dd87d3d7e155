//! Approvals over the API: who answers comes from the token, the approval
//! policy has the last word, and silence is a no.

use serde_json::json;
use warden::journal::JournalEvent;

use crate::support::{ADMIN, ALICE, Harness, Options, VIEWER, task_of};

fn approvals(h: &Harness, task: &str) -> Vec<warden::journal::ApprovalGiven> {
    h.records(task)
        .into_iter()
        .filter_map(|r| match r.event {
            JournalEvent::Approval(a) => Some(a),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_approval_over_the_api_lets_the_remediation_run_and_names_the_approver() {
    let h = Harness::start(Options {
        env: "prod",
        ..Options::default()
    })
    .await;
    let (_, answer) = h.alert(&h.checkout.alert("ap-1", "firing")).await;
    let task = task_of(&answer);
    let pending = h.pending_approval().await;
    assert_eq!(pending["task_id"], task.as_str());
    assert_eq!(pending["tool"], "http-action");
    assert_eq!(pending["env"], "prod");
    assert!(!pending["reasons"].as_array().unwrap().is_empty());
    let id = pending["id"].as_str().unwrap();

    let (s, shown) = h.get(&format!("/v1/approvals/{id}"), VIEWER).await;
    assert_eq!(s, 200);
    assert_eq!(shown["step_id"], "remediate");

    let (s, ok) = h
        .post(
            &format!("/v1/approvals/{id}"),
            ALICE,
            &json!({"approve": true, "reason": "pool restart is safe"}),
        )
        .await;
    assert_eq!(s, 200, "{ok}");
    assert_eq!(ok["by"], "alice");
    let done = h.done(&task).await;
    assert_eq!(done["task"]["status"], "resolved", "{done}");
    assert_eq!(h.checkout.admin_calls(), 1);
    let given = approvals(&h, &task);
    assert_eq!(given.len(), 1);
    assert!(given[0].approved);
    assert_eq!(given[0].approver, "alice");
    // Answered once: a second answer finds nothing.
    let (s, _) = h
        .post(
            &format!("/v1/approvals/{id}"),
            ALICE,
            &json!({"approve": false}),
        )
        .await;
    assert_eq!(s, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_viewer_cannot_approve_and_the_body_cannot_name_the_approver() {
    let h = Harness::start(Options {
        env: "prod",
        ..Options::default()
    })
    .await;
    let (_, answer) = h.alert(&h.checkout.alert("ap-2", "firing")).await;
    let task = task_of(&answer);
    let id = h.pending_approval().await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("/v1/approvals/{id}");
    let (s, _) = h.post(&path, VIEWER, &json!({"approve": true})).await;
    assert_eq!(s, 403);
    let (s, _) = h.post(&path, "", &json!({"approve": true})).await;
    assert_eq!(s, 401);
    let (s, msg) = h
        .post(&path, ALICE, &json!({"approve": true, "by": "the-cto"}))
        .await;
    assert_eq!(s, 400, "{msg}");
    // Still pending after all that; a real answer decides it.
    let (s, _) = h
        .post(
            &path,
            ADMIN,
            &json!({"approve": false, "reason": "not now"}),
        )
        .await;
    assert_eq!(s, 200);
    let done = h.done(&task).await;
    assert_eq!(done["task"]["status"], "unresolved", "{done}");
    assert_eq!(h.checkout.admin_calls(), 0);
    let given = approvals(&h, &task);
    assert_eq!(given[0].approver, "admin");
    assert!(!given[0].approved);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_approval_policy_refuses_an_approver_who_is_the_principal() {
    let h = Harness::start(Options {
        env: "prod",
        ..Options::default()
    })
    .await;
    // A goal from the API runs on behalf of the token holder: `admin`.
    let (s, started) = h
        .post(
            "/v1/tasks",
            ADMIN,
            &json!({"alert": h.checkout.alert("ap-3", "firing"), "env": "prod"}),
        )
        .await;
    assert_eq!(s, 202, "{started}");
    let task = started["task_id"].as_str().unwrap().to_string();
    let id = h.pending_approval().await["id"]
        .as_str()
        .unwrap()
        .to_string();
    h.post(
        &format!("/v1/approvals/{id}"),
        ADMIN,
        &json!({"approve": true}),
    )
    .await;
    let done = h.done(&task).await;
    assert_eq!(h.checkout.admin_calls(), 0, "{done}");
    let given = approvals(&h, &task);
    assert!(!given[0].approved, "{:?}", given[0]);
    assert!(
        given[0]
            .note
            .as_deref()
            .unwrap_or_default()
            .contains("approval policy refused"),
        "{:?}",
        given[0]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unanswered_approval_expires_and_the_step_is_rejected() {
    let h = Harness::start(Options {
        env: "prod",
        approval_timeout: "1s",
        ..Options::default()
    })
    .await;
    let (_, answer) = h.alert(&h.checkout.alert("ap-4", "firing")).await;
    let task = task_of(&answer);
    let done = h.done(&task).await;
    assert_eq!(done["task"]["status"], "unresolved", "{done}");
    let given = approvals(&h, &task);
    assert_eq!(given[0].approver, "timeout");
    assert!(
        given[0]
            .note
            .as_deref()
            .unwrap()
            .contains("nobody answered")
    );
    let (_, list) = h.get("/v1/approvals", ADMIN).await;
    assert_eq!(list["approvals"], json!([]));
}
