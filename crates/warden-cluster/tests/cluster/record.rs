//! The record: tasks stored once per intake key.

use warden::Task;
use warden_cluster::{Enqueued, Record};

use crate::support::{Nats, Postgres};

#[tokio::test]
async fn a_task_is_stored_once_per_intake_key_even_when_workers_migrate_together() {
    let Some(pg) = Postgres::start() else { return };
    let a = Record::connect(&pg.url()).await.unwrap();
    let b = Record::connect(&pg.url()).await.unwrap();
    let (ra, rb) = tokio::join!(a.migrate(), b.migrate());
    ra.unwrap();
    rb.unwrap();

    let task = Task::goal("t-1", "check the web tier").in_env("staging");
    assert_eq!(
        a.enqueue("gen:1", &task).await.unwrap(),
        Enqueued::New("t-1".into())
    );
    let again = Task::goal("t-2", "the same alert, retried").in_env("staging");
    assert_eq!(
        b.enqueue("gen:1", &again).await.unwrap(),
        Enqueued::Duplicate("t-1".into())
    );
}

/// A plain connection of the test's own, its driver task spawned.
async fn raw(pg: &Postgres) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(&pg.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
}

#[tokio::test]
async fn a_worker_joining_a_running_cluster_migrates_without_waiting_on_its_locks() {
    let Some(pg) = Postgres::start() else { return };
    let a = Record::connect(&pg.url()).await.unwrap();
    a.migrate().await.unwrap();
    // A running worker's transaction holds a lock on the tasks table, as a
    // claim does. `ALTER TABLE … IF NOT EXISTS` would wait for it (and, with
    // the worker waiting on the migration in turn, deadlock).
    let mut running = raw(&pg).await;
    let tx = running.transaction().await.unwrap();
    tx.batch_execute("LOCK TABLE warden_tasks IN ROW EXCLUSIVE MODE")
        .await
        .unwrap();
    let b = Record::connect(&pg.url()).await.unwrap();
    let joined = tokio::time::timeout(std::time::Duration::from_secs(60), b.migrate()).await;
    assert!(
        matches!(joined, Ok(Ok(()))),
        "the joining worker's migration: {joined:?}"
    );
    tx.rollback().await.unwrap();
}

#[tokio::test]
async fn a_database_migrated_by_another_build_gets_this_builds_schema() {
    let Some(pg) = Postgres::start() else { return };
    let record = Record::connect(&pg.url()).await.unwrap();
    record.migrate().await.unwrap();
    let db = raw(&pg).await;
    // As an older build left it: one column fewer, its own schema recorded.
    db.batch_execute(
        "ALTER TABLE warden_tasks DROP COLUMN last_error;
         UPDATE warden_schema SET applied = 'an older schema';",
    )
    .await
    .unwrap();
    record.migrate().await.unwrap();
    let columns = db
        .query(
            "SELECT 1 FROM information_schema.columns
             WHERE table_name = 'warden_tasks' AND column_name = 'last_error'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(columns.len(), 1, "the column is back");
    let applied = db
        .query("SELECT applied FROM warden_schema", &[])
        .await
        .unwrap();
    assert_eq!(applied.len(), 1, "one schema recorded");
    assert_ne!(applied[0].get::<_, &str>(0), "an older schema");
}

#[tokio::test]
async fn a_migration_postgresql_refuses_says_what_postgresql_said() {
    let Some(pg) = Postgres::start() else { return };
    // A table of that name that is not ours.
    raw(&pg)
        .await
        .batch_execute("CREATE TABLE warden_schema (version integer)")
        .await
        .unwrap();
    let record = Record::connect(&pg.url()).await.unwrap();
    let err = record.migrate().await.unwrap_err().to_string();
    assert!(
        err.contains("migrate") && err.contains(r#"column "applied" does not exist"#),
        "{err}"
    );
}

#[tokio::test]
async fn an_oversized_task_is_refused_with_its_size_and_nothing_is_stored() {
    let Some(pg) = Postgres::start() else { return };
    let record = Record::connect(&pg.url()).await.unwrap();
    record.migrate().await.unwrap();
    let mut task = Task::goal("big", "too big");
    task.attachments.insert(
        "log".into(),
        serde_json::Value::String("x".repeat(2 * 1024 * 1024)),
    );
    let err = record.enqueue("gen:big", &task).await.unwrap_err();
    assert!(err.to_string().contains("at most 1048576"), "{err}");
    let small = Task::goal("big", "now small");
    assert_eq!(
        record.enqueue("gen:big", &small).await.unwrap(),
        Enqueued::New("big".into())
    );
}

#[tokio::test]
async fn the_nats_harness_serves_jetstream_and_survives_a_restart() {
    let Some(mut nats) = Nats::start() else {
        return;
    };
    let client = async_nats::connect(nats.url()).await.unwrap();
    let js = async_nats::jetstream::new(client);
    js.create_stream(async_nats::jetstream::stream::Config {
        name: "PROBE".into(),
        subjects: vec!["probe.>".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    js.publish("probe.one", "1".into())
        .await
        .unwrap()
        .await
        .unwrap();
    nats.kill();
    nats.start_again();
    let client = async_nats::connect(nats.url()).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let mut stream = js.get_stream("PROBE").await.unwrap();
    assert_eq!(stream.info().await.unwrap().state.messages, 1);
}
