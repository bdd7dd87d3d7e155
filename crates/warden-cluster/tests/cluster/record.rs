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
