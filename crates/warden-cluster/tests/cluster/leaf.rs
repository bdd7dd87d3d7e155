//! Edge boxes as leaf nodes: records buffered on the edge while the hub is
//! away, forwarded once each when it is back.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use warden::journal::{HostKey, JournalEvent, JournalRecord};
use warden_cluster::{
    BusError, EDGE_IN_STREAM, EDGE_SINK_CONSUMER, EdgeHub, EdgeLink, EdgeSink, Published, Record,
    SinkStats, seal_edge_record, verify_edge_journal,
};

use crate::support::{Nats, Postgres, free_port};

/// A hub (JetStream domain `hub`, accepting leaf nodes) and an edge leaf
/// node (domain `edge1`), each with a store the test owns (the harness's
/// `jetstream` line is replaced by one that names the domain).
struct Pair {
    hub: Nats,
    leaf: Nats,
    _stores: tempfile::TempDir,
}

fn pair() -> Option<Pair> {
    let stores = tempfile::tempdir().unwrap();
    let leaf_port = free_port();
    let hub = Nats::start_with(&format!(
        "jetstream {{ store_dir: {:?}, domain: hub }}\nleafnodes {{ listen: \"127.0.0.1:{leaf_port}\" }}",
        stores.path().join("hub").display().to_string()
    ))?;
    let leaf = Nats::start_with(&format!(
        "jetstream {{ store_dir: {:?}, domain: edge1 }}\nleafnodes {{ remotes: [ {{ url: \"nats-leaf://127.0.0.1:{leaf_port}\" }} ] }}",
        stores.path().join("edge1").display().to_string()
    ))?;
    Some(Pair {
        hub,
        leaf,
        _stores: stores,
    })
}

/// Wait (bounded) until the hub holds `n` records.
async fn wait_count(hub: &EdgeHub, n: u64, within: Duration) {
    let end = Instant::now() + within;
    loop {
        let got = hub.count().await.unwrap_or(0);
        if got == n {
            return;
        }
        assert!(got <= n, "the hub holds {got} records, more than {n}");
        assert!(
            Instant::now() < end,
            "after {within:?} the hub holds {got} of {n} records"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Ensure the source, retrying while the leaf connection comes up (the
/// hub cannot reach `$JS.edge1.API` before).
async fn source_edge1(hub: &EdgeHub) {
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        match hub.ensure_hub_source("edge1").await {
            Ok(()) => return,
            Err(e) if Instant::now() < end => {
                eprintln!("ensure_hub_source: {e}; retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("ensure_hub_source: {e}"),
        }
    }
}

#[tokio::test]
async fn records_published_while_the_hub_is_down_arrive_once_each_after_it_returns() {
    let Some(mut p) = pair() else { return };
    let hub = EdgeHub::connect(&p.hub.url()).await.unwrap();
    let edge = EdgeLink::connect(&p.leaf.url(), "edge1", 8 << 20)
        .await
        .unwrap();
    source_edge1(&hub).await;
    source_edge1(&hub).await; // idempotent

    for n in 0..20 {
        let id = format!("journal-{n:03}");
        edge.publish_record(&id, &json!({ "n": n })).await.unwrap();
    }
    let t = Instant::now();
    wait_count(&hub, 20, Duration::from_secs(60)).await;
    eprintln!("20 records on the hub after {:?}", t.elapsed());

    p.hub.kill();
    for n in 20..50 {
        let id = format!("journal-{n:03}");
        let out = edge.publish_record(&id, &json!({ "n": n })).await.unwrap();
        assert!(matches!(out, Published::Stored(_)), "{id}: {out:?}");
    }
    // A retried record is dropped at the edge already.
    assert_eq!(
        edge.publish_record("journal-025", &json!({ "n": 25 }))
            .await
            .unwrap(),
        Published::Duplicate
    );
    assert_eq!(edge.buffered().await.unwrap().0, 50);

    p.hub.start_again();
    let t = Instant::now();
    wait_count(&hub, 50, Duration::from_secs(120)).await;
    eprintln!("50 records on the hub {:?} after its restart", t.elapsed());
    let records = hub.read(0, 1000).await.unwrap();
    let ids: BTreeSet<&str> = records.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(records.len(), 50);
    assert_eq!(ids.len(), 50, "no record arrived twice");
    assert!(records.iter().all(|r| r.domain == "edge1"));
    let r30 = records.iter().find(|r| r.id == "journal-030").unwrap();
    assert_eq!(r30.payload, json!({ "n": 30 }));

    // Once the hub has them, the edge's buffer is freed.
    assert_eq!(edge.trim_forwarded("hub").await.unwrap(), 50);
    assert_eq!(edge.buffered().await.unwrap().0, 0);
}

#[tokio::test]
async fn a_full_edge_buffer_refuses_a_record_with_a_clear_error_and_drops_nothing() {
    let Some(p) = pair() else { return };
    // Only the edge: the hub never sources, so nothing drains the buffer.
    let edge = EdgeLink::connect(&p.leaf.url(), "edge1", 32 * 1024)
        .await
        .unwrap();
    let payload = json!({ "log": "x".repeat(1000) });
    let mut accepted = 0u64;
    let err = loop {
        match edge
            .publish_record(&format!("incident-{accepted}"), &payload)
            .await
        {
            Ok(Published::Stored(_)) => accepted += 1,
            Ok(Published::Duplicate) => panic!("unexpected duplicate"),
            Err(e) => break e,
        }
        assert!(accepted < 1000, "a 32 KiB buffer never filled");
    };
    assert!(
        matches!(err, BusError::EdgeBufferFull { .. }),
        "{err:?}: {err}"
    );
    assert!(err.to_string().contains("is full"), "{err}");
    assert!(accepted >= 20, "only {accepted} records fit in 32 KiB");
    eprintln!("a 32 KiB edge buffer took {accepted} records of ~1 KiB, then: {err}");
    // Every accepted record is still there: nothing was dropped to make room.
    assert_eq!(edge.buffered().await.unwrap().0, accepted);

    // Once the hub sources them and the edge trims, there is room again.
    let hub = EdgeHub::connect(&p.hub.url()).await.unwrap();
    source_edge1(&hub).await;
    wait_count(&hub, accepted, Duration::from_secs(60)).await;
    assert_eq!(edge.trim_forwarded("hub").await.unwrap(), accepted);
    assert!(matches!(
        edge.publish_record("incident-after", &payload)
            .await
            .unwrap(),
        Published::Stored(_)
    ));
}

/// Rows the hub's sink stored: journal records, distinct (domain, task,
/// seq) among them, other records.
async fn stored(pg: &tokio_postgres::Client) -> (i64, i64, i64) {
    let row = pg
        .query_one(
            "SELECT (SELECT count(*) FROM warden_edge_journal),
                    (SELECT count(DISTINCT (domain, task_id, seq)) FROM warden_edge_journal),
                    (SELECT count(*) FROM warden_edge_records)",
            &[],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1), row.get(2))
}

async fn wait_stored(pg: &tokio_postgres::Client, journal: i64, other: i64, within: Duration) {
    let end = Instant::now() + within;
    loop {
        let (j, _, o) = stored(pg).await;
        if (j, o) == (journal, other) {
            return;
        }
        assert!(
            j <= journal && o <= other,
            "stored {j} + {o}, more than {journal} + {other}"
        );
        assert!(
            Instant::now() < end,
            "after {within:?} PostgreSQL holds {j} of {journal} journal records and {o} of {other} others"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The hub's side of an edge link, ready for a sink test: PostgreSQL
/// migrated (with a plain client for the assertions), the hub sourcing
/// edge1, the edge's link, and a sink that redelivers after 2 s.
struct Rig {
    _pg: Postgres,
    record: Arc<Record>,
    client: tokio_postgres::Client,
    hub: EdgeHub,
    edge: EdgeLink,
    sink: EdgeSink,
}

async fn rig(p: &Pair) -> Option<Rig> {
    let pg = Postgres::start()?;
    let record = Arc::new(Record::connect(&pg.url()).await.unwrap());
    record.migrate().await.unwrap();
    let (client, conn) = tokio_postgres::connect(&pg.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let hub = EdgeHub::connect(&p.hub.url()).await.unwrap();
    let edge = EdgeLink::connect(&p.leaf.url(), "edge1", 8 << 20)
        .await
        .unwrap();
    source_edge1(&hub).await;
    let sink = EdgeSink::connect(&p.hub.url())
        .await
        .unwrap()
        .with_ack_wait(Duration::from_secs(2));
    Some(Rig {
        _pg: pg,
        record,
        client,
        hub,
        edge,
        sink,
    })
}

/// Run a sink until the returned token fires; the handle gives its stats.
fn start_sink(
    sink: &EdgeSink,
    record: &Arc<Record>,
) -> (
    warden::CancellationToken,
    tokio::task::JoinHandle<Result<SinkStats, BusError>>,
) {
    let stop = warden::CancellationToken::new();
    let (sink, record, s) = (sink.clone(), record.clone(), stop.clone());
    (stop, tokio::spawn(async move { sink.run(record, s).await }))
}

#[tokio::test(flavor = "multi_thread")]
async fn edge_records_published_while_disconnected_land_in_postgres_once_each_across_restarts() {
    let Some(mut p) = pair() else { return };
    let Some(Rig {
        _pg,
        record,
        client,
        hub: _hub,
        edge,
        sink,
    }) = rig(&p).await
    else {
        return;
    };
    let key = HostKey::from_bytes([9; 32]);
    let (stop, first) = start_sink(&sink, &record);

    // Three tasks' journals, sealed on the edge as chains of their own.
    let mut chains: Vec<String> = vec![JournalRecord::GENESIS.to_string(); 3];
    let mut publish = |from: u64, to: u64| {
        let mut out = Vec::new();
        for seq in from..to {
            for (t, prev) in chains.iter_mut().enumerate() {
                let event = JournalEvent::Skip {
                    step_id: format!("s{seq}"),
                    tool: "probe".into(),
                    reason: format!("edge record {seq} of task {t}"),
                };
                out.push(
                    seal_edge_record(
                        &key,
                        &format!("e-{t}"),
                        seq,
                        "2026-12-05T14:00:00Z",
                        &event,
                        prev,
                    )
                    .unwrap(),
                );
            }
        }
        out
    };
    for (id, payload) in publish(0, 4) {
        edge.publish_record(&id, &payload).await.unwrap();
    }
    edge.publish_record("incident-1", &json!({ "incident": 1 }))
        .await
        .unwrap();
    wait_stored(&client, 12, 1, Duration::from_secs(60)).await;

    // The hub goes away: the edge keeps publishing into its buffer.
    p.hub.kill();
    for (id, payload) in publish(4, 10) {
        let out = edge.publish_record(&id, &payload).await.unwrap();
        assert!(matches!(out, Published::Stored(_)), "{id}: {out:?}");
    }
    edge.publish_record("incident-2", &json!({ "incident": 2 }))
        .await
        .unwrap();
    // The sink is restarted while the hub is down.
    stop.cancel();
    let before = first.await.unwrap().unwrap();
    assert_eq!(before.stored, 13);
    let (stop, second) = start_sink(&sink, &record);

    p.hub.start_again();
    let t = Instant::now();
    wait_stored(&client, 30, 2, Duration::from_secs(150)).await;
    eprintln!(
        "30 journal records and 2 others in PostgreSQL {:?} after the hub's restart",
        t.elapsed()
    );
    stop.cancel();
    let after = second.await.unwrap().unwrap();
    assert_eq!(after.stored, 19, "{after:?}");
    assert_eq!((after.conflicts, after.terminated), (0, 0));

    // A consumer that starts over (its durable state lost) is handed every
    // record again: each is found stored and acked, none stored twice.
    let js = async_nats::jetstream::new(async_nats::connect(p.hub.url()).await.unwrap());
    js.get_stream(EDGE_IN_STREAM)
        .await
        .unwrap()
        .delete_consumer(EDGE_SINK_CONSUMER)
        .await
        .unwrap();
    let (stop, third) = start_sink(&sink, &record);
    let end = Instant::now() + Duration::from_secs(30);
    let replay = loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let info = js
            .get_stream(EDGE_IN_STREAM)
            .await
            .unwrap()
            .consumer_info(EDGE_SINK_CONSUMER)
            .await;
        if info.is_ok_and(|i| {
            i.num_ack_pending == 0 && i.num_pending == 0 && i.ack_floor.stream_sequence >= 32
        }) {
            stop.cancel();
            break third.await.unwrap().unwrap();
        }
        assert!(
            Instant::now() < end,
            "the replay did not finish within 30 s"
        );
    };
    assert_eq!((replay.stored, replay.duplicates), (0, 32), "{replay:?}");
    let (journal, distinct, other) = stored(&client).await;
    assert_eq!((journal, distinct, other), (30, 30, 2));

    // Each edge task's chain verifies under the edge's key…
    let report = verify_edge_journal(&record, &key, Some("edge1"))
        .await
        .unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert_eq!((report.tasks, report.records), (3, 30));
    // …and a record edited in PostgreSQL is named.
    client
        .execute(
            "UPDATE warden_edge_journal SET line = replace(line, 'edge record 5', 'edge record five')
             WHERE task_id = 'e-1' AND seq = 5",
            &[],
        )
        .await
        .unwrap();
    let report = verify_edge_journal(&record, &key, None).await.unwrap();
    assert!(
        report.problems[0].contains("edge `edge1` task `e-1` record 5:"),
        "{:?}",
        report.problems
    );
    assert!(
        report.problems.iter().all(|p| p.contains("task `e-1`")),
        "the other chains still verify: {:?}",
        report.problems
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_edge_cannot_store_records_under_another_edges_domain() {
    // The edge box's nats-server belongs to whoever holds the box: it can
    // add any subject to its stream and write any header.
    let Some(p) = pair() else { return };
    let Some(Rig {
        _pg,
        record,
        client,
        hub,
        edge,
        sink,
    }) = rig(&p).await
    else {
        return;
    };

    let (stop, run) = start_sink(&sink, &record);

    // The box adds edge2's subject to its own stream and publishes there,
    // and on its own subject with edge2's header.
    let js = async_nats::jetstream::new(async_nats::connect(p.leaf.url()).await.unwrap());
    let mut stream = js.get_stream("WARDEN_EDGE").await.unwrap();
    let mut config = stream.info().await.unwrap().config.clone();
    config.subjects.push("warden.edge.edge2.>".into());
    js.update_stream(config).await.unwrap();
    for subject in ["warden.edge.edge2.record", "warden.edge.edge1.record"] {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Warden-Edge-Domain", "edge2");
        headers.insert("Warden-Record-Id", format!("forged-{subject}").as_str());
        js.publish_with_headers(subject, headers, r#"{"incident": "forged"}"#.into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
    // Then an honest record: once it is stored, the forged ones were seen.
    edge.publish_record("incident-1", &json!({ "incident": 1 }))
        .await
        .unwrap();
    wait_stored(&client, 0, 1, Duration::from_secs(60)).await;
    let other: i64 = client
        .query_one(
            "SELECT count(*) FROM warden_edge_records WHERE domain <> 'edge1'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(other, 0, "a record was stored under another edge's domain");
    // The hub never took edge2's subject from edge1's stream; the forged
    // header on edge1's own subject was terminated by the sink.
    assert_eq!(hub.count().await.unwrap(), 2);
    stop.cancel();
    let stats = run.await.unwrap().unwrap();
    assert_eq!((stats.stored, stats.terminated), (1, 1), "{stats:?}");
}
