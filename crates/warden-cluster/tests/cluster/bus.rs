//! The bus: alert intake on JetStream into the record, and wake-ups.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::PullConsumer;
use futures::StreamExt as _;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use warden::Task;
use warden_cluster::{
    Bus, BusConfig, BusError, INTAKE_CONSUMER, INTAKE_STREAM, IntakeStats, Published, Record,
};

use crate::support::{Nats, Postgres};

/// Both servers, a migrated record and a bus with a short ack wait (so a
/// redelivery comes within the test's bounded wait).
async fn servers() -> Option<(Postgres, Nats, Arc<Record>, Bus)> {
    let pg = Postgres::start()?;
    let nats = Nats::start()?;
    let record = Record::connect(&pg.url()).await.unwrap();
    record.migrate().await.unwrap();
    let bus = Bus::connect_with(&nats.url(), short_ack()).await.unwrap();
    Some((pg, nats, Arc::new(record), bus))
}

fn short_ack() -> BusConfig {
    BusConfig::default()
        .with_ack_wait(Duration::from_secs(2))
        .with_batch(16)
}

fn alert(n: usize) -> (String, Task) {
    (
        format!("am:fp-{n:04}"),
        Task::goal(format!("t-{n:04}"), format!("alert {n}")).in_env("staging"),
    )
}

/// The intake keys stored in the record.
async fn stored_keys(pg: &Postgres) -> Vec<String> {
    let (client, conn) = tokio_postgres::connect(&pg.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
        .query(
            "SELECT intake_key FROM warden_tasks ORDER BY intake_key",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// Wait (bounded) until the record holds `rows` tasks and the intake
/// stream is empty (every alert acked or terminated).
async fn wait_drained(pg: &Postgres, bus: &Bus, rows: usize, within: Duration) {
    let end = Instant::now() + within;
    loop {
        let n = stored_keys(pg).await.len();
        let backlog = bus.intake_backlog().await.unwrap();
        if n == rows && backlog == 0 {
            return;
        }
        assert!(
            Instant::now() < end,
            "after {within:?}: {n} rows (want {rows}), {backlog} alerts still in the stream"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Run an intake pump in the background.
fn pump(
    bus: &Bus,
    record: &Arc<Record>,
) -> (
    CancellationToken,
    tokio::task::JoinHandle<Result<IntakeStats, BusError>>,
) {
    let stop = CancellationToken::new();
    let (bus, record, s) = (bus.clone(), record.clone(), stop.clone());
    let handle =
        tokio::spawn(async move { bus.run_intake(record, Arc::new(Notify::new()), s).await });
    (stop, handle)
}

#[tokio::test]
async fn connecting_to_a_closed_port_fails_quickly_naming_the_url() {
    let port = crate::support::free_port();
    let url = format!("nats://127.0.0.1:{port}");
    let err = Bus::connect_with(
        &url,
        BusConfig::default().with_connect_timeout(Duration::from_secs(2)),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, BusError::Connect { .. }), "{err:?}");
    assert!(err.to_string().contains(&url), "{err}");
}

#[tokio::test]
async fn a_webhook_retried_three_times_is_published_once_and_stored_once() {
    let Some((pg, _nats, record, bus)) = servers().await else {
        return;
    };
    let (key, task) = alert(1);
    let outcomes = [
        bus.publish_alert(&key, &task).await.unwrap(),
        bus.publish_alert(&key, &task).await.unwrap(),
        bus.publish_alert(&key, &task).await.unwrap(),
    ];
    assert!(matches!(outcomes[0], Published::Stored(_)), "{outcomes:?}");
    assert_eq!(outcomes[1..], [Published::Duplicate, Published::Duplicate]);

    let (stop, handle) = pump(&bus, &record);
    wait_drained(&pg, &bus, 1, Duration::from_secs(30)).await;
    stop.cancel();
    let stats = handle.await.unwrap().unwrap();
    assert_eq!(
        stats,
        IntakeStats {
            stored: 1,
            duplicates: 0,
            terminated: 0
        }
    );
    assert_eq!(stored_keys(&pg).await, vec![key]);
}

#[tokio::test]
async fn two_hundred_alerts_from_two_publishers_with_overlapping_keys_end_as_two_hundred_rows() {
    let Some((pg, nats, record, bus)) = servers().await else {
        return;
    };
    let other = Bus::connect_with(&nats.url(), short_ack()).await.unwrap();
    // A publishes alerts 0..150, B 50..200: 100 keys are published twice,
    // concurrently.
    let publish = |bus: Bus, range: std::ops::Range<usize>| async move {
        let mut stored = 0;
        let mut dup = 0;
        for n in range {
            let (key, task) = alert(n);
            match bus.publish_alert(&key, &task).await.unwrap() {
                Published::Stored(_) => stored += 1,
                Published::Duplicate => dup += 1,
            }
        }
        (stored, dup)
    };
    let (a, b) = tokio::join!(
        publish(bus.clone(), 0..150),
        publish(other.clone(), 50..200)
    );
    assert_eq!(a.0 + b.0, 200, "stored by JetStream: {a:?} {b:?}");
    assert_eq!(a.1 + b.1, 100, "dropped as duplicates: {a:?} {b:?}");

    // Two pumps share the durable consumer.
    let (stop_a, pump_a) = pump(&bus, &record);
    let record_b = Arc::new(Record::connect(&pg.url()).await.unwrap());
    let (stop_b, pump_b) = pump(&other, &record_b);
    wait_drained(&pg, &bus, 200, Duration::from_secs(60)).await;
    stop_a.cancel();
    stop_b.cancel();
    let (sa, sb) = (
        pump_a.await.unwrap().unwrap(),
        pump_b.await.unwrap().unwrap(),
    );
    assert_eq!(sa.stored + sb.stored, 200, "{sa:?} {sb:?}");
    let keys = stored_keys(&pg).await;
    let want: Vec<String> = (0..200).map(|n| alert(n).0).collect();
    assert_eq!(keys, want);
}

#[tokio::test]
async fn an_intake_pump_killed_mid_batch_and_a_second_pump_finish_with_no_loss_and_no_duplicate() {
    let Some((pg, nats, record, bus)) = servers().await else {
        return;
    };
    for n in 0..200 {
        let (key, task) = alert(n);
        bus.publish_alert(&key, &task).await.unwrap();
    }

    // A worker that dies between commit and ack: it fetches ten alerts,
    // commits five to the record and acks none.
    let client = async_nats::connect(nats.url()).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let consumer: PullConsumer = js
        .get_stream(INTAKE_STREAM)
        .await
        .unwrap()
        .get_consumer(INTAKE_CONSUMER)
        .await
        .unwrap();
    let mut batch = consumer.fetch().max_messages(10).messages().await.unwrap();
    let mut committed = BTreeSet::new();
    while let Some(msg) = batch.next().await {
        let msg = msg.unwrap();
        if committed.len() < 5 {
            let key = msg
                .headers
                .as_ref()
                .unwrap()
                .get("Warden-Intake-Key")
                .unwrap()
                .as_str()
                .to_string();
            let task: Task = serde_json::from_slice(&msg.payload).unwrap();
            record.enqueue(&key, &task).await.unwrap();
            committed.insert(key);
        }
    }
    drop(batch);
    drop(js);
    assert_eq!(committed.len(), 5);

    // A pump killed (its task aborted, at whatever await it is in) once it
    // has stored some alerts.
    let (_stop_a, pump_a) = pump(&bus, &record);
    let end = Instant::now() + Duration::from_secs(60);
    while stored_keys(&pg).await.len() < 60 {
        assert!(Instant::now() < end, "the first pump stored too few alerts");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    pump_a.abort();
    let _ = pump_a.await;
    let after_kill = stored_keys(&pg).await.len();
    assert!(after_kill < 200, "the kill came too late to test anything");

    // A second pump, on its own connections, finishes the job; what the
    // dead ones had fetched comes back after the ack wait.
    let bus_b = Bus::connect_with(&nats.url(), short_ack()).await.unwrap();
    let record_b = Arc::new(Record::connect(&pg.url()).await.unwrap());
    let (stop_b, pump_b) = pump(&bus_b, &record_b);
    wait_drained(&pg, &bus_b, 200, Duration::from_secs(90)).await;
    stop_b.cancel();
    let stats = pump_b.await.unwrap().unwrap();
    assert!(
        stats.duplicates >= 5,
        "the five committed-but-unacked alerts come back and are found stored: {stats:?}"
    );
    assert_eq!(stats.terminated, 0);
    let keys = stored_keys(&pg).await;
    let want: Vec<String> = (0..200).map(|n| alert(n).0).collect();
    assert_eq!(keys, want, "every alert stored exactly once");
}

#[tokio::test]
async fn a_malformed_alert_is_terminated_and_does_not_block_the_ones_after_it() {
    let Some((pg, nats, record, bus)) = servers().await else {
        return;
    };
    let client = async_nats::connect(nats.url()).await.unwrap();
    let js = async_nats::jetstream::new(client);
    // No intake key at all, then a key with a payload that is not a task.
    js.publish("warden.intake.gen", "not json".into())
        .await
        .unwrap()
        .await
        .unwrap();
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", "gen:bad");
    headers.insert("Warden-Intake-Key", "gen:bad");
    js.publish_with_headers("warden.intake.gen", headers, r#"{"id": 5}"#.into())
        .await
        .unwrap()
        .await
        .unwrap();
    for n in 0..3 {
        let (key, task) = alert(n);
        bus.publish_alert(&key, &task).await.unwrap();
    }

    let (stop, handle) = pump(&bus, &record);
    wait_drained(&pg, &bus, 3, Duration::from_secs(30)).await;
    stop.cancel();
    let stats = handle.await.unwrap().unwrap();
    assert_eq!(
        stats,
        IntakeStats {
            stored: 3,
            duplicates: 0,
            terminated: 2
        }
    );
}

#[tokio::test]
async fn a_wake_up_published_by_one_node_notifies_a_worker_on_another() {
    let Some(nats) = Nats::start() else { return };
    let a = Bus::connect(&nats.url()).await.unwrap();
    let b = Bus::connect(&nats.url()).await.unwrap();
    let wake = Arc::new(Notify::new());
    let _guard = a.wake_into(wake.clone()).await.unwrap();
    b.wake_all().await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), wake.notified())
        .await
        .expect("a wake-up within 10 s");
}

#[tokio::test]
async fn a_stored_alert_wakes_the_local_worker_and_idle_workers_elsewhere() {
    let Some((_pg, nats, record, bus)) = servers().await else {
        return;
    };
    let elsewhere = Bus::connect(&nats.url()).await.unwrap();
    let remote = Arc::new(Notify::new());
    let _guard = elsewhere.wake_into(remote.clone()).await.unwrap();

    let local = Arc::new(Notify::new());
    let stop = CancellationToken::new();
    let pump = {
        let (bus, record, local, stop) = (bus.clone(), record.clone(), local.clone(), stop.clone());
        tokio::spawn(async move { bus.run_intake(record, local, stop).await })
    };
    let (key, task) = alert(7);
    bus.publish_alert(&key, &task).await.unwrap();
    let within = Duration::from_secs(20);
    tokio::time::timeout(within, local.notified())
        .await
        .expect("the local worker is woken");
    tokio::time::timeout(within, remote.notified())
        .await
        .expect("a worker on another node is woken");
    stop.cancel();
    assert_eq!(pump.await.unwrap().unwrap().stored, 1);
}
