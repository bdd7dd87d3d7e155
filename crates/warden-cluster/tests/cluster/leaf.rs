//! Edge boxes as leaf nodes: records buffered on the edge while the hub is
//! away, forwarded once each when it is back.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::json;
use warden_cluster::{BusError, EdgeHub, EdgeLink, Published};

use crate::support::{Nats, free_port};

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
