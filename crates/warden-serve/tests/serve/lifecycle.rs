//! Drain, reload, restart and HTTPS.

use std::time::Duration;

use serde_json::json;

use crate::support::{ADMIN, Harness, Options, task_of};

#[tokio::test(flavor = "multi_thread")]
async fn a_drain_interrupts_a_waiting_task_and_a_restart_does_not_rerun_it() {
    let opts = Options {
        env: "prod",
        drain_deadline: "1s",
        ..Options::default()
    };
    let mut h = Harness::start(opts).await;
    let (_, answer) = h.alert(&h.checkout.alert("d-1", "firing")).await;
    let task = task_of(&answer);
    h.pending_approval().await;
    h.stop().await;

    let opts = Options {
        env: "prod",
        ..Options::default()
    };
    let h = h.restart(&opts).await;
    let (_, v) = h.get(&format!("/v1/tasks/{task}"), ADMIN).await;
    assert_eq!(v["task"]["state"], "done", "{v}");
    assert_eq!(v["task"]["status"], "interrupted", "{v}");
    // Nothing asks again: the task was closed, not rerun.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, list) = h.get("/v1/approvals", ADMIN).await;
    assert_eq!(list["approvals"], json!([]));
    assert_eq!(h.checkout.admin_calls(), 0);
    let kinds: Vec<String> = h
        .records(&task)
        .iter()
        .map(|r| r.event.kind().to_string())
        .collect();
    assert!(kinds.iter().any(|k| k == "stop"), "{kinds:?}");
    assert!(h.verify_journal());
}

#[tokio::test(flavor = "multi_thread")]
async fn while_draining_alerts_get_503_and_readiness_fails() {
    let h = Harness::start(Options {
        env: "prod",
        drain_deadline: "3s",
        ..Options::default()
    })
    .await;
    let (_, _) = h.alert(&h.checkout.alert("dr-1", "firing")).await;
    h.pending_approval().await;
    h.handle.shutdown();
    let r = h.client.get(h.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 503);
    let (s, _) = h.alert(&h.checkout.alert("dr-2", "firing")).await;
    assert_eq!(s, 503);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broken_bundle_on_reload_keeps_the_old_policy() {
    let h = Harness::start(Options::default()).await;
    let policy = h.dir.path().join("policy");
    fs_err::write(
        policy.join("broken.rego"),
        "package warden.rules.call\nallow if {",
    )
    .unwrap();
    let err = h.handle.reload().unwrap_err();
    assert!(err.to_string().contains("broken.rego"), "{err}");
    let (_, answer) = h.alert(&h.checkout.alert("rl-1", "firing")).await;
    let done = h.done(&task_of(&answer)).await;
    assert_eq!(done["task"]["status"], "resolved", "{done}");

    fs_err::remove_file(policy.join("broken.rego")).unwrap();
    h.handle.reload().unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn with_tls_configured_it_speaks_only_https_with_its_certificate() {
    let h = Harness::start(Options {
        tls: true,
        ..Options::default()
    })
    .await;
    assert!(h.base.starts_with("https://"));
    let r = h.client.get(h.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let (s, _) = h.get("/v1/tasks", ADMIN).await;
    assert_eq!(s, 200);
    // A client without the CA refuses the certificate; plain HTTP gets nothing.
    let stranger = crate::support::client(None);
    assert!(stranger.get(h.url("/healthz")).send().await.is_err());
    let plain = h.url("/healthz").replace("https://", "http://");
    assert!(stranger.get(plain).send().await.is_err());
}

#[tokio::test(flavor = "multi_thread")]
async fn ended_tasks_past_the_retention_leave_the_list_but_not_the_journal() {
    let opts = Options {
        retention: "1s",
        ..Options::default()
    };
    let h = Harness::start(opts).await;
    let (_, a) = h.alert(&h.checkout.alert("old-1", "firing")).await;
    let task = task_of(&a);
    h.done(&task).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let opts = Options {
        retention: "1s",
        ..Options::default()
    };
    let h = h.restart(&opts).await;
    let (_, list) = h.get("/v1/tasks", ADMIN).await;
    assert_eq!(list["tasks"], json!([]), "{list}");
    let (s, shown) = h.get(&format!("/v1/tasks/{task}"), ADMIN).await;
    assert_eq!(s, 200, "{shown}");
    assert_eq!(shown["task"], serde_json::Value::Null);
    assert_eq!(shown["summary"]["outcome"], "resolved");
}
