//! Approvals across a cluster: two `warden serve` workers on one
//! PostgreSQL; the worker running a task waits for an approval that is
//! answered on the other worker's API. The first answer wins, and silence
//! is still a no.

use serde_json::json;
use warden::journal::JournalEvent;
use warden_cluster::Record;

use crate::pg::Postgres;
use crate::support::{ALICE, Harness, Options, VIEWER, task_of};

fn worker(pg: &Postgres, id: &str, approval_timeout: &'static str) -> Options {
    Options {
        env: "prod",
        approval_timeout,
        extra_toml: format!(
            "\n[cluster]\npostgres = \"{}\"\nworker = \"{id}\"\nlease = \"5s\"\n",
            pg.url()
        ),
        ..Options::default()
    }
}

/// The approval's row once a worker asked: (id, the worker that waits).
async fn asked(h: &Harness, pg: &Postgres) -> (String, String) {
    let record = Record::connect(&pg.url()).await.unwrap();
    h.wait("the approval in the record", || async {
        let open = record.open_approvals().await.ok()?;
        open.first().map(|s| (s.id.clone(), s.worker.clone()))
    })
    .await
}

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
async fn an_approval_answered_on_another_worker_lets_the_waiting_worker_proceed_once() {
    let Some(pg) = Postgres::start() else { return };
    let a = Harness::start(worker(&pg, "serve-a", "60s")).await;
    let b = Harness::start(worker(&pg, "serve-b", "60s")).await;
    let (status, answer) = a.alert(&a.checkout.alert("ca-1", "firing")).await;
    assert_eq!(status, 202, "{answer}");
    let task = task_of(&answer);
    let (id, waiter) = asked(&a, &pg).await;
    // Whichever worker claimed the task waits; the other answers.
    let (waiting, other) = if waiter == "serve-a" {
        (&a, &b)
    } else {
        (&b, &a)
    };
    // The other worker lists and shows the request it does not hold.
    let listed = other
        .wait("the request listed on the other worker", || async {
            let (_, v) = other.get("/v1/approvals", VIEWER).await;
            let list = v["approvals"].as_array()?.clone();
            list.iter().any(|p| p["id"] == id.as_str()).then_some(list)
        })
        .await;
    assert_eq!(listed.len(), 1);
    let (s, shown) = other.get(&format!("/v1/approvals/{id}"), VIEWER).await;
    assert_eq!(s, 200, "{shown}");
    assert_eq!(shown["task_id"], task.as_str());

    let (s, ok) = other
        .post(
            &format!("/v1/approvals/{id}"),
            ALICE,
            &json!({"approve": true, "reason": "safe"}),
        )
        .await;
    assert_eq!(s, 200, "{ok}");
    assert_eq!(ok["by"], "alice");
    // A second answer, on either worker, is refused: the first one stands.
    for h in [waiting, other] {
        let (s, refused) = h
            .post(
                &format!("/v1/approvals/{id}"),
                ALICE,
                &json!({"approve": false}),
            )
            .await;
        assert_eq!(s, 404, "{refused}");
    }
    let record = Record::connect(&pg.url()).await.unwrap();
    a.wait("the task done in the record", || async {
        let c = record.counts().await.ok()?;
        (c.get("done") == Some(&1)).then_some(c)
    })
    .await;
    assert_eq!(a.checkout.admin_calls(), 1, "the remediation ran once");
    let given = approvals(waiting, &task);
    assert_eq!(given.len(), 1, "{given:?}");
    assert!(given[0].approved);
    assert_eq!(given[0].approver, "alice");
    let stored = record.approval(&id).await.unwrap().unwrap();
    assert!(!stored.open);
    assert_eq!(stored.answer.map(|a| a.approved), Some(true));
    // Neither worker lists it any more.
    for h in [waiting, other] {
        let (_, v) = h.get("/v1/approvals", VIEWER).await;
        assert_eq!(v["approvals"], json!([]), "{v}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_approval_nobody_answers_in_a_cluster_is_a_no_and_a_late_answer_is_refused() {
    let Some(pg) = Postgres::start() else { return };
    let a = Harness::start(worker(&pg, "serve-a", "2s")).await;
    let b = Harness::start(worker(&pg, "serve-b", "2s")).await;
    let (_, answer) = a.alert(&a.checkout.alert("ca-2", "firing")).await;
    let task = task_of(&answer);
    let (id, waiter) = asked(&a, &pg).await;
    let (waiting, other) = if waiter == "serve-a" {
        (&a, &b)
    } else {
        (&b, &a)
    };
    let record = Record::connect(&pg.url()).await.unwrap();
    a.wait("the task done in the record", || async {
        let c = record.counts().await.ok()?;
        (c.get("done") == Some(&1)).then_some(c)
    })
    .await;
    let (s, refused) = other
        .post(
            &format!("/v1/approvals/{id}"),
            ALICE,
            &json!({"approve": true}),
        )
        .await;
    assert_eq!(s, 404, "{refused}");
    assert_eq!(a.checkout.admin_calls(), 0, "nothing ran without a yes");
    let given = approvals(waiting, &task);
    assert_eq!(given.len(), 1, "{given:?}");
    assert!(!given[0].approved);
    assert_eq!(given[0].approver, "timeout");
    let stored = record.approval(&id).await.unwrap().unwrap();
    assert_eq!(
        stored.answer.map(|a| (a.approved, a.by)),
        Some((false, "timeout".into()))
    );
}
