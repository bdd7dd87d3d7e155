//! The attempt limit: a task whose runs keep failing ends `failed` with its
//! last error instead of being claimed forever (real PostgreSQL).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use warden::journal::HostKey;
use warden::{Agent, Task};
use warden_cluster::{ClusterLedger, Record, Worker, verify_journal};

use crate::support::Postgres;

fn key() -> HostKey {
    HostKey::from_bytes([42; 32])
}

async fn raw(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
}

/// A worker whose agent has no plugins: enough for tasks that fail before
/// they plan, or never run.
fn worker(record: Record, dir: &Path, max_attempts: u32) -> Worker {
    let ledger = Arc::new(ClusterLedger::new(Arc::new(record), "w-1", key()));
    let agent = Agent::builder()
        .policy(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies"))
        .journal(dir.join("journal.jsonl"))
        .host_key(key())
        .ledger(ledger.clone())
        .build()
        .unwrap();
    Worker::new(ledger, Arc::new(agent))
        .lease(Duration::from_millis(300))
        .max_attempts(max_attempts)
}

/// Run `worker` until the task is `failed` (at most 30 s).
async fn run_until_failed(worker: Worker, record: &Record) {
    let stop = warden::CancellationToken::new();
    let run = {
        let stop = stop.clone();
        tokio::spawn(async move { worker.run(stop).await })
    };
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        let counts = record.counts().await.unwrap();
        if counts.get("failed") == Some(&1) {
            break;
        }
        assert!(Instant::now() < end, "not failed within 30 s: {counts:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.cancel();
    run.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_task_that_fails_every_run_ends_failed_with_its_last_error_after_the_limit() {
    let Some(pg) = Postgres::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let record = Record::connect(&pg.url()).await.unwrap();
    record.migrate().await.unwrap();
    record
        .enqueue(
            "gen:bad",
            &Task::goal("t-bad", "restart the pool").in_env("dev"),
        )
        .await
        .unwrap();
    // A stored plan that does not read back: every run fails with an agent
    // error (not a fence) before it plans.
    let pgc = raw(&pg.url()).await;
    pgc.execute(
        "INSERT INTO warden_plans (task_id, revision, proposal) VALUES ('t-bad', 1, '{\"not\": \"a proposal\"}')",
        &[],
    )
    .await
    .unwrap();

    let w = worker(Record::connect(&pg.url()).await.unwrap(), dir.path(), 3);
    let stats = w.stats();
    run_until_failed(w, &record).await;

    let row = pgc
        .query_one(
            "SELECT state, attempts, outcome->>'error', (outcome->>'attempts')::int, last_error, finished_at IS NOT NULL
             FROM warden_tasks WHERE id = 't-bad'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "failed");
    assert_eq!(row.get::<_, i32>(1), 3, "claimed exactly three times");
    let error: String = row.get(2);
    assert!(error.contains("does not read back"), "{error}");
    assert_eq!(row.get::<_, i32>(3), 3);
    assert_eq!(
        row.get::<_, Option<String>>(4).as_deref(),
        Some(error.as_str())
    );
    assert!(row.get::<_, bool>(5));
    assert_eq!(stats.failed.load(std::sync::atomic::Ordering::Relaxed), 1);
    // A failed task is terminal: nobody claims it again.
    assert!(
        record
            .claim("w-2", Duration::from_secs(5))
            .await
            .unwrap()
            .is_none()
    );
    // The failed end is journaled and anchored like any other.
    assert!(verify_journal(&record, &key(), None).await.unwrap().is_ok());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_task_whose_workers_died_on_every_attempt_ends_failed_without_running_again() {
    let Some(pg) = Postgres::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let record = Record::connect(&pg.url()).await.unwrap();
    record.migrate().await.unwrap();
    record
        .enqueue(
            "gen:dead",
            &Task::goal("t-dead", "restart the pool").in_env("dev"),
        )
        .await
        .unwrap();
    // Three claims whose workers vanish: the lease runs out each time.
    for n in 1..=3 {
        let c = record
            .claim(&format!("ghost-{n}"), Duration::from_millis(100))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(c.attempts, n);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    run_until_failed(
        worker(Record::connect(&pg.url()).await.unwrap(), dir.path(), 3),
        &record,
    )
    .await;
    let pgc = raw(&pg.url()).await;
    let row = pgc
        .query_one(
            "SELECT outcome->>'error', (outcome->>'attempts')::int FROM warden_tasks WHERE id = 't-dead'",
            &[],
        )
        .await
        .unwrap();
    let error: String = row.get(0);
    assert!(error.contains("no attempt left after 3 runs"), "{error}");
    assert!(error.contains("without a result"), "{error}");
    assert_eq!(row.get::<_, i32>(1), 3);
    // Never run: no plan and no step was stored.
    let (plans, steps) = record.stored("t-dead").await.unwrap();
    assert!(plans.is_empty() && steps.is_empty());
}

#[tokio::test]
async fn the_attempts_migration_adds_its_columns_to_an_older_record_and_runs_twice() {
    let Some(pg) = Postgres::start() else { return };
    let pgc = raw(&pg.url()).await;
    // The record as the first cluster release created it.
    pgc.batch_execute(
        "CREATE TABLE warden_tasks (
             id text PRIMARY KEY, intake_key text NOT NULL UNIQUE, task jsonb NOT NULL,
             state text NOT NULL DEFAULT 'queued', created_at timestamptz NOT NULL DEFAULT now());
         INSERT INTO warden_tasks (id, intake_key, task) VALUES ('old', 'gen:old', '{}');",
    )
    .await
    .unwrap();
    let record = Record::connect(&pg.url()).await.unwrap();
    record.migrate().await.unwrap();
    record.migrate().await.unwrap();
    let row = pgc
        .query_one(
            "SELECT attempts, last_error FROM warden_tasks WHERE id = 'old'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i32>(0), 0);
    assert_eq!(row.get::<_, Option<String>>(1), None);
}
