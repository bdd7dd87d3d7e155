//! `warden serve` on an edge box (`[edge]`) beside a hub (`warden serve
//! --cluster` with `[cluster] edges`): the edge resolves its alerts
//! locally, and its journal (one keyed chain per task) and resolved
//! incidents reach the hub's PostgreSQL once each, across an outage of the
//! hub's nats-server, one of the edge's own, and a restart of the edge's
//! service.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use warden::journal::{JournalEvent, JournalRecord};
use warden_cluster::{EdgeLink, verify_edge_journal};

use crate::pg::{Nats, Postgres, free_port};
use crate::support::{Harness, Options, host_key, task_of};

/// A hub nats-server (JetStream domain `hub`, accepting leaf nodes) and
/// the edge's leaf nats-server (domain `edge1`).
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

fn edge_options(leaf: &Nats) -> Options {
    Options {
        extra_toml: format!(
            "[edge]\ndomain = \"edge1\"\nnats = \"{}\"\nhub_domain = \"hub\"\nbuffer = \"8MiB\"\ntrim_every = \"2s\"\n",
            leaf.url()
        ),
        ..Options::default()
    }
}

/// The edge journal records the hub stored: (task, seq) → line.
async fn stored_journal(pg: &tokio_postgres::Client) -> BTreeMap<(String, i64), String> {
    pg.query(
        "SELECT task_id, seq, line FROM warden_edge_journal WHERE domain = 'edge1'",
        &[],
    )
    .await
    .unwrap()
    .into_iter()
    .map(|r| ((r.get(0), r.get(1)), r.get(2)))
    .collect()
}

/// The other edge records the hub stored: id → payload.
async fn stored_records(pg: &tokio_postgres::Client) -> BTreeMap<String, serde_json::Value> {
    pg.query(
        "SELECT record_id, payload FROM warden_edge_records WHERE domain = 'edge1'",
        &[],
    )
    .await
    .unwrap()
    .into_iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect()
}

/// The edge's journal as the hub should hold it: each task's records in
/// order, numbered from 0.
fn expected(edge: &Harness) -> BTreeMap<(String, i64), JournalRecord> {
    let mut next: BTreeMap<String, i64> = BTreeMap::new();
    let mut out = BTreeMap::new();
    for r in edge.all_records() {
        let seq = next.entry(r.task_id.clone()).or_insert(0);
        out.insert((r.task_id.clone(), *seq), r);
        *seq += 1;
    }
    out
}

/// Incidents the edge resolved: tasks with an alert whose outcome is `resolved`.
fn resolved_alert_tasks(edge: &Harness) -> Vec<String> {
    let records = edge.all_records();
    let with_alert: Vec<&str> = records
        .iter()
        .filter_map(|r| match &r.event {
            JournalEvent::Task(t) if t.alert.is_some() => Some(r.task_id.as_str()),
            _ => None,
        })
        .collect();
    records
        .iter()
        .filter(|r| {
            matches!(&r.event, JournalEvent::Outcome(o) if o.status == warden::OutcomeStatus::Resolved)
                && with_alert.contains(&r.task_id.as_str())
        })
        .map(|r| r.task_id.clone())
        .collect()
}

/// Wait (bounded) until the hub's PostgreSQL holds exactly the edge's
/// journal, record for record, and its resolved incidents; never more.
#[allow(clippy::print_stderr, reason = "it reports how long forwarding took")]
async fn wait_forwarded(edge: &Harness, pg: &tokio_postgres::Client, within: Duration) {
    let key = host_key();
    let end = Instant::now() + within;
    let started = Instant::now();
    loop {
        let want = expected(edge);
        let got = stored_journal(pg).await;
        for (at, line) in &got {
            let record = JournalRecord::open(&key, line).unwrap();
            let mine = want
                .get(at)
                .unwrap_or_else(|| panic!("the hub holds {at:?}, which the edge never wrote"));
            assert_eq!(
                (&record.ts, &record.event),
                (&mine.ts, &mine.event),
                "the hub's record {at:?} is not the edge's: a reused sequence"
            );
        }
        let incidents = resolved_alert_tasks(edge);
        let records = stored_records(pg).await;
        if got.len() == want.len() && records.len() == incidents.len() {
            for task in &incidents {
                let payload = &records[&format!("incident:{task}")];
                assert_eq!(payload["incident"]["id"], format!("warden:{task}"));
                assert_eq!(payload["incident"]["task_id"], task.as_str());
            }
            eprintln!(
                "the hub holds the edge's {} journal records and {} incident(s) after {:?}",
                got.len(),
                records.len(),
                started.elapsed()
            );
            return;
        }
        assert!(
            Instant::now() < end,
            "after {within:?} the hub holds {} of {} journal records and {} of {} incidents",
            got.len(),
            want.len(),
            records.len(),
            incidents.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_edge_service_forwards_its_journal_and_incidents_to_the_hubs_postgres_once_across_an_outage_and_a_restart()
 {
    let Some(mut p) = pair() else { return };
    let Some(pg) = Postgres::start() else { return };
    let (client, conn) = tokio_postgres::connect(&pg.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);

    // The hub: a cluster worker that sources edge1 and runs the edge sink.
    let _hub = Harness::start(Options {
        extra_toml: format!(
            "[cluster]\npostgres = \"{}\"\nworker = \"hub-1\"\nlease = \"5s\"\nnats = \"{}\"\nedges = [\"edge1\"]\n",
            pg.url(),
            p.hub.url()
        ),
        ..Options::default()
    })
    .await;
    let opts = edge_options(&p.leaf);
    let edge = Harness::start(edge_options(&p.leaf)).await;
    let summary = warden_serve::check(&warden_serve::Config::load(&edge.config).unwrap())
        .unwrap()
        .to_string();
    assert!(
        summary.contains("edge edge1 of hub hub: journal and incidents through nats://127.0.0.1:")
            && summary.contains("buffer 8 MiB, trimmed every 2s"),
        "{summary}"
    );

    // 1. An alert handled on the edge; its records reach the hub.
    let (status, answer) = edge.alert(&edge.checkout.alert("e-1", "firing")).await;
    assert_eq!(status, 202, "{answer}");
    let first = task_of(&answer);
    let v = edge.done(&first).await;
    assert_eq!(v["task"]["status"], "resolved", "{v}");
    assert_eq!(edge.checkout.admin_calls(), 1);
    wait_forwarded(&edge, &client, Duration::from_secs(60)).await;
    let link = EdgeLink::connect(&p.leaf.url(), "edge1", 8 << 20)
        .await
        .unwrap();
    edge.wait("the edge buffer freed of what the hub holds", || async {
        (link.buffered().await.ok()?.0 == 0).then_some(())
    })
    .await;

    // 2. The hub's nats-server goes away (the leaf link with it): the next
    // alert is still handled on the edge, and its records wait in the
    // edge's buffer.
    p.hub.kill();
    let held = stored_journal(&client).await.len();
    let incidents = resolved_alert_tasks(&edge).len();
    let (status, answer) = edge.alert(&edge.checkout.alert("e-2", "firing")).await;
    assert_eq!(status, 202, "{answer}");
    let second = task_of(&answer);
    edge.done(&second).await;
    let new = expected(&edge).len() - held + resolved_alert_tasks(&edge).len() - incidents;
    edge.wait("the second task's records in the edge buffer", || async {
        let (n, _) = link.buffered().await.ok()?;
        (n as usize == new).then_some(())
    })
    .await;
    assert_eq!(
        stored_journal(&client).await.len(),
        held,
        "nothing reached the hub while it was away"
    );
    p.hub.start_again();
    wait_forwarded(&edge, &client, Duration::from_secs(180)).await;

    // The edge's own nats-server goes away: the edge still handles alerts,
    // and their records wait in its journal until the buffer is back.
    p.leaf.kill();
    let held = stored_journal(&client).await.len();
    let (status, answer) = edge.alert(&edge.checkout.alert("e-4", "firing")).await;
    assert_eq!(status, 202, "{answer}");
    let v = edge.done(&task_of(&answer)).await;
    assert_eq!(v["task"]["state"], "done", "{v}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(stored_journal(&client).await.len(), held);
    p.leaf.start_again();
    wait_forwarded(&edge, &client, Duration::from_secs(180)).await;

    // 3. The edge's service restarts; the first alert fires again (grouped
    // into its ended task: that task's chain continues) and a new one
    // arrives. No sequence is reused: every stored line is the edge's.
    let edge = edge.restart(&opts).await;
    let (status, answer) = edge.alert(&edge.checkout.alert("e-1", "firing")).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["alerts"][0]["disposition"], "grouped", "{answer}");
    assert_eq!(task_of(&answer), first);
    let (_, answer) = edge.alert(&edge.checkout.alert("e-3", "firing")).await;
    let third = task_of(&answer);
    edge.done(&third).await;
    wait_forwarded(&edge, &client, Duration::from_secs(60)).await;
    let continued = stored_journal(&client)
        .await
        .keys()
        .filter(|(t, _)| *t == first)
        .count();
    assert_eq!(
        continued,
        edge.records(&first).len(),
        "the grouped alert's record continued the first task's chain"
    );

    let record = warden_cluster::Record::connect(&pg.url()).await.unwrap();
    let report = verify_edge_journal(&record, &host_key(), Some("edge1"))
        .await
        .unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    let tasks: std::collections::BTreeSet<String> =
        expected(&edge).into_keys().map(|(t, _)| t).collect();
    assert!(tasks.len() >= 4, "{tasks:?}");
    assert_eq!(report.tasks as usize, tasks.len(), "{report:?}");
    assert_eq!(report.records as usize, expected(&edge).len());
    // Another key does not verify the chains.
    let other = warden::journal::HostKey::from_bytes([1; 32]);
    let forged = verify_edge_journal(&record, &other, Some("edge1"))
        .await
        .unwrap();
    assert!(!forged.is_ok());

    // The buffer is freed of what the hub holds (trimmed every 2 s).
    edge.wait("the edge buffer trimmed", || async {
        let (n, _) = link.buffered().await.ok()?;
        (n == 0).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_edge_section_is_refused_with_the_cluster_and_checked_for_its_domain_and_nats() {
    let h = Harness::start(Options::default()).await;
    let base = fs_err::read_to_string(&h.config).unwrap();
    let path = h.dir.path().join("edge.toml");
    let load = |extra: &str| {
        fs_err::write(&path, format!("{base}\n{extra}")).unwrap();
        warden_serve::Config::load(&path)
    };
    let edge =
        "[edge]\ndomain = \"edge1\"\nnats = \"nats://127.0.0.1:4223\"\nhub_domain = \"hub\"\n";
    let config = load(edge).unwrap();
    let summary = warden_serve::check(&config).unwrap();
    let shown = summary.edge.as_ref().unwrap();
    assert_eq!((shown.buffer_bytes, shown.tls), (256 << 20, false));
    // Beside [cluster] (a worker started with --cluster): refused.
    let both = load(&format!(
        "[cluster]\npostgres = \"host=127.0.0.1 user=w dbname=w\"\n{edge}"
    ))
    .unwrap();
    let err = warden_serve::check(&both).unwrap_err().to_string();
    assert!(err.contains("start it without --cluster"), "{err}");
    // Plaintext to a nats-server that is not on loopback: refused.
    let remote = load(&edge.replace("127.0.0.1", "10.1.2.3")).unwrap();
    let err = warden_serve::check(&remote).unwrap_err().to_string();
    assert!(err.contains("[edge] nats"), "{err}");
    // Credentials in the URL, a bad size, the same domain twice.
    for (bad, says) in [
        (
            edge.replace("nats://", "nats://u:p@"),
            "[edge] nats holds credentials",
        ),
        (format!("{edge}buffer = \"12 parsecs\"\n"), "is not a size"),
        (format!("{edge}buffer = 1024\n"), "between 1MiB and 1TiB"),
        (
            edge.replace("hub_domain = \"hub\"", "hub_domain = \"edge1\""),
            "must differ",
        ),
    ] {
        let err = load(&bad).unwrap_err().to_string();
        assert!(err.contains(says), "{bad}: {err}");
    }
    // A hub's edges need its NATS.
    let err =
        load("[cluster]\npostgres = \"host=127.0.0.1 user=w dbname=w\"\nedges = [\"edge1\"]\n")
            .unwrap_err()
            .to_string();
    assert!(err.contains("[cluster] edges needs `nats`"), "{err}");
}
