//! Calls the policy sends to a human: asked through elicitation, answered
//! as the configured approver, judged by the approval policy.

use serde_json::json;
use warden::journal::JournalEvent;
use warden_fakes::http::OkServer;

use crate::support::{Answer, Harness, Setup, text};

fn approval(h: &Harness, r: &rmcp::model::CallToolResult) -> warden::journal::ApprovalGiven {
    h.task_events(r)
        .into_iter()
        .find_map(|e| match e {
            JournalEvent::Approval(a) => Some(a),
            _ => None,
        })
        .expect("the answer is journaled")
}

#[tokio::test]
async fn a_call_needing_approval_asks_the_client_and_runs_when_someone_else_approves() {
    let site = OkServer::start();
    let h = Harness::start(Setup {
        env: "prod",
        principal: "assistant",
        approver_id: "alice",
        answer: Some(Answer::Approve),
        // The test service is on loopback, which prod refuses by default.
        policy: json!({"network": {"allowed_private_cidrs": {"prod": ["127.0.0.0/8"]}}}),
        ..Setup::default()
    })
    .await;
    let r = h
        .call(
            "http-action",
            json!({"url": site.url("/restart"), "dry_run": false}),
        )
        .await;
    let questions = h.seen.lock().unwrap().questions.clone();
    assert_eq!(questions.len(), 1, "{r:?}");
    let q = &questions[0];
    assert!(q.contains("`http-action` (mutating)"), "{q}");
    assert!(
        q.contains("a human must approve this call"),
        "the policy's reason: {q}"
    );
    assert!(q.contains("/restart"), "the arguments: {q}");
    assert!(q.contains("`alice`"), "who the answer is recorded as: {q}");
    let a = approval(&h, &r);
    assert!(a.approved, "{a:?}");
    assert_eq!(
        (a.approver.as_str(), a.principal.as_str()),
        ("alice", "assistant")
    );
    assert_eq!(a.note.as_deref(), Some("looks fine"));
    assert_eq!(r.is_error, Some(false), "{r:?}");
    assert_eq!(r.structured_content.unwrap()["dry_run"], json!(false));
    assert_eq!(site.hits(), 1, "the approved change was made");
    h.stop().await;
}

#[tokio::test]
async fn approving_ones_own_call_in_prod_is_refused_by_the_approval_policy() {
    let site = OkServer::start();
    let h = Harness::start(Setup {
        env: "prod",
        principal: "alice",
        approver_id: "Alice ",
        answer: Some(Answer::Approve),
        ..Setup::default()
    })
    .await;
    let r = h
        .call(
            "http-action",
            json!({"url": site.url("/restart"), "dry_run": false}),
        )
        .await;
    assert_eq!(r.is_error, Some(true), "{r:?}");
    let t = text(&r);
    assert!(t.contains("cannot approve their own call"), "{t}");
    assert!(
        t.contains("a human must approve this call"),
        "why it asked: {t}"
    );
    assert!(t.contains("Do not retry it or work around it."), "{t}");
    assert!(!approval(&h, &r).approved);
    assert_eq!(site.hits(), 0);
    h.stop().await;
}

#[tokio::test]
async fn a_declined_question_is_a_refusal() {
    let site = OkServer::start();
    let h = Harness::start(Setup {
        env: "prod",
        answer: Some(Answer::Decline),
        ..Setup::default()
    })
    .await;
    let r = h
        .call(
            "http-action",
            json!({"url": site.url("/restart"), "dry_run": false}),
        )
        .await;
    assert_eq!(r.is_error, Some(true), "{r:?}");
    assert!(text(&r).contains("declined in the MCP client"), "{r:?}");
    assert_eq!(approval(&h, &r).approver, "alice");
    assert_eq!(site.hits(), 0);
    h.stop().await;
}

#[tokio::test]
async fn a_client_without_elicitation_is_told_approval_is_required_with_the_reasons() {
    let site = OkServer::start();
    let h = Harness::start(Setup {
        env: "prod",
        answer: None,
        ..Setup::default()
    })
    .await;
    let r = h
        .call(
            "http-action",
            json!({"url": site.url("/restart"), "dry_run": false}),
        )
        .await;
    assert_eq!(r.is_error, Some(true), "{r:?}");
    let t = text(&r);
    assert!(t.contains("needs a human's approval in `prod`"), "{t}");
    assert!(t.contains("does not support elicitation"), "{t}");
    assert!(t.contains("a human must approve this call"), "{t}");
    assert!(t.contains("Approval is required; do not retry"), "{t}");
    assert!(!approval(&h, &r).approved);
    assert_eq!(site.hits(), 0);
    h.stop().await;
}

#[tokio::test]
async fn a_dry_run_in_prod_needs_no_approval() {
    let site = OkServer::start();
    let h = Harness::start(Setup {
        env: "prod",
        answer: None,
        ..Setup::default()
    })
    .await;
    let r = h
        .call("http-action", json!({"url": site.url("/restart")}))
        .await;
    assert_eq!(r.is_error, Some(false), "{r:?}");
    assert_eq!(r.structured_content.unwrap()["dry_run"], json!(true));
    assert_eq!(site.hits(), 0);
    h.stop().await;
}
