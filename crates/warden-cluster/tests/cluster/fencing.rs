//! Leases, epochs and fenced commits against a real PostgreSQL.

use std::time::Duration;

use warden::Task;
use warden::journal::{HostKey, JournalEvent};
use warden_cluster::{ClusterError, Commit, Record, StepRow, verify_journal};

use crate::support::Postgres;

fn key() -> HostKey {
    HostKey::from_bytes([42; 32])
}

fn step(id: &str, epoch: u64) -> Commit {
    Commit {
        step: Some(StepRow {
            step_id: id.into(),
            revision: 1,
            status: Some("succeeded".into()),
            observation: Some(serde_json::json!({"ok": true})),
            in_flight: false,
            epoch,
        }),
        records: vec![(
            "2026-12-05T14:00:00Z".into(),
            JournalEvent::Skip {
                step_id: id.into(),
                tool: "probe".into(),
                reason: format!("written at epoch {epoch}"),
            },
        )],
        ..Commit::default()
    }
}

#[tokio::test]
async fn a_worker_whose_lease_was_taken_over_cannot_commit_and_writes_nothing() {
    let Some(pg) = Postgres::start() else { return };
    let a = Record::connect(&pg.url()).await.unwrap();
    let b = Record::connect(&pg.url()).await.unwrap();
    a.migrate().await.unwrap();
    a.enqueue(
        "gen:1",
        &Task::goal("t-1", "restart the pool").in_env("dev"),
    )
    .await
    .unwrap();

    // A claims with a short lease and commits once.
    let first = a
        .claim("worker-a", Duration::from_millis(300))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.fence.epoch, 1);
    a.commit(&first.fence, 0, &key(), &step("probe", 1))
        .await
        .unwrap();
    // While A's lease runs, B finds nothing to claim.
    assert!(
        b.claim("worker-b", Duration::from_secs(30))
            .await
            .unwrap()
            .is_none()
    );

    // A stalls past its lease; B takes the task over at the next epoch.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let second = b
        .claim("worker-b", Duration::from_secs(30))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(second.fence.epoch, 2);
    assert_eq!(second.commits, 1, "B sees A's commit");

    // A wakes up and tries to commit and to renew: both are fenced out.
    let err = a
        .commit(&first.fence, 1, &key(), &step("remediate", 1))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ClusterError::Fenced { ref task, epoch: 1 } if task == "t-1"),
        "{err}"
    );
    assert!(matches!(
        a.renew(&first.fence, Duration::from_secs(30)).await,
        Err(ClusterError::Fenced { .. })
    ));
    let (_, steps) = b.stored("t-1").await.unwrap();
    assert_eq!(
        steps.iter().map(|s| s.step_id.as_str()).collect::<Vec<_>>(),
        ["probe"],
        "the fenced-out commit wrote no step"
    );

    // B commits, and the journal verifies with A's and B's records only.
    b.commit(&second.fence, 1, &key(), &step("remediate", 2))
        .await
        .unwrap();
    b.renew(&second.fence, Duration::from_secs(30))
        .await
        .unwrap();
    let report = verify_journal(&b, &key(), None).await.unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert_eq!((report.tasks, report.records, report.anchors), (1, 2, 2));
}

#[tokio::test]
async fn a_commit_retried_after_it_went_through_is_not_written_twice() {
    let Some(pg) = Postgres::start() else { return };
    let record = Record::connect(&pg.url()).await.unwrap();
    record.migrate().await.unwrap();
    record
        .enqueue("gen:1", &Task::goal("t-1", "x").in_env("dev"))
        .await
        .unwrap();
    let claim = record
        .claim("w", Duration::from_secs(30))
        .await
        .unwrap()
        .unwrap();
    record
        .commit(&claim.fence, 0, &key(), &step("probe", 1))
        .await
        .unwrap();
    // The same commit again (its answer was lost): accepted, not repeated.
    record
        .commit(&claim.fence, 0, &key(), &step("probe", 1))
        .await
        .unwrap();
    let report = verify_journal(&record, &key(), None).await.unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert_eq!(report.records, 1);
}

#[tokio::test]
async fn an_edited_journal_record_in_postgres_fails_verification() {
    let Some(pg) = Postgres::start() else { return };
    let record = Record::connect(&pg.url()).await.unwrap();
    record.migrate().await.unwrap();
    record
        .enqueue("gen:1", &Task::goal("t-1", "x").in_env("dev"))
        .await
        .unwrap();
    let claim = record
        .claim("w", Duration::from_secs(30))
        .await
        .unwrap()
        .unwrap();
    record
        .commit(&claim.fence, 0, &key(), &step("probe", 1))
        .await
        .unwrap();
    let (client, conn) = tokio_postgres::connect(&pg.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
        .execute(
            "UPDATE warden_journal SET line = replace(line, 'epoch 1', 'epoch 9')",
            &[],
        )
        .await
        .unwrap();
    let report = verify_journal(&record, &key(), None).await.unwrap();
    assert!(!report.is_ok());
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains("does not match its MAC")),
        "{:?}",
        report.problems
    );
}
