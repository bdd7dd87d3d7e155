//! `warden serve` with `[cluster]`: an alert accepted by the webhook is
//! forwarded to PostgreSQL and run by the cluster's worker on the agent's
//! one path (with `nats`, through the JetStream intake); a PostgreSQL that
//! cannot be reached stops the start.

use std::time::Duration;

use warden_cluster::{Record, verify_journal};

use crate::pg::{Nats, Postgres, free_port};
use crate::support::{Harness, Options, host_key, task_of};

fn cluster_toml(url: &str) -> String {
    format!("\n[cluster]\npostgres = \"{url}\"\nworker = \"serve-1\"\nlease = \"5s\"\n")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_clustered_service_forwards_an_alert_to_postgres_and_its_worker_resolves_it() {
    let Some(pg) = Postgres::start() else { return };
    let h = Harness::start(Options {
        extra_toml: cluster_toml(&pg.url()),
        ..Options::default()
    })
    .await;
    let (status, answer) = h.alert(&h.checkout.alert("c-1", "firing")).await;
    assert_eq!(status, 202, "{answer}");
    let task = task_of(&answer);
    let record = Record::connect(&pg.url()).await.unwrap();
    let counts = h
        .wait("the task done in the record", || async {
            let c = record.counts().await.ok()?;
            (c.get("done") == Some(&1)).then_some(c)
        })
        .await;
    assert_eq!(counts.len(), 1, "{counts:?}");
    assert_eq!(h.checkout.admin_calls(), 1);
    // The inbox says where the alert went; the record holds the task.
    let v = h.done(&task).await;
    assert_eq!(v["task"]["status"], "forwarded", "{v}");
    let report = verify_journal(&record, &host_key(), Some(&task))
        .await
        .unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert!(report.records >= 5, "{report:?}");
    // The same alert again (a retried webhook after the task ended) is not
    // a second task in the record.
    let _ = h.alert(&h.checkout.alert("c-1", "firing")).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(record.counts().await.unwrap().get("done"), Some(&1));
    assert_eq!(h.checkout.admin_calls(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn with_nats_an_alert_goes_through_the_jetstream_intake_and_a_worker_resolves_it() {
    let Some(pg) = Postgres::start() else { return };
    let Some(nats) = Nats::start() else { return };
    let h = Harness::start(Options {
        extra_toml: format!("{}nats = \"{}\"\n", cluster_toml(&pg.url()), nats.url()),
        ..Options::default()
    })
    .await;
    let (status, answer) = h.alert(&h.checkout.alert("c-9", "firing")).await;
    assert_eq!(status, 202, "{answer}");
    let task = task_of(&answer);
    let record = Record::connect(&pg.url()).await.unwrap();
    h.wait("the task done in the record", || async {
        let c = record.counts().await.ok()?;
        (c.get("done") == Some(&1)).then_some(c)
    })
    .await;
    assert_eq!(h.checkout.admin_calls(), 1);
    // The inbox forwarded it to the bus, not to the record: a pump stored it.
    let v = h.done(&task).await;
    assert_eq!(v["task"]["status"], "forwarded", "{v}");
    assert!(
        v["task"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("published to the cluster's intake")),
        "{v}"
    );
    let bus = warden_cluster::Bus::connect(&nats.url()).await.unwrap();
    assert_eq!(bus.intake_backlog().await.unwrap(), 0, "the pump acked it");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_postgres_that_cannot_be_reached_stops_the_start_naming_the_cluster_section() {
    let url = format!(
        "host=127.0.0.1 port={} user=warden dbname=warden connect_timeout=2",
        free_port()
    );
    // The usual config, with [cluster] pointing at a closed port (and an
    // inbox of its own beside the running harness's).
    let h = Harness::start(Options::default()).await;
    let text = fs_err::read_to_string(&h.config).unwrap() + &cluster_toml(&url);
    let path = h.dir.path().join("cluster.toml");
    fs_err::write(
        &path,
        text.replace("data_dir = \"serve\"", "data_dir = \"serve-cluster\""),
    )
    .unwrap();
    let config = warden_serve::Config::load(&path).unwrap();
    let summary = warden_serve::check(&config).unwrap().to_string();
    assert!(
        summary.contains("cluster: record warden@127.0.0.1:") && summary.contains("worker serve-1"),
        "{summary}"
    );
    let err = warden_serve::Server::bind(config)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("[cluster] postgres: cannot use PostgreSQL at warden@127.0.0.1:"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cluster_check_refuses_plaintext_to_remote_servers_and_credentials_in_the_nats_url() {
    let h = Harness::start(Options::default()).await;
    let base = fs_err::read_to_string(&h.config).unwrap();
    let path = h.dir.path().join("cluster.toml");
    let check = |extra: &str| {
        fs_err::write(&path, format!("{base}{extra}")).unwrap();
        warden_serve::Config::load(&path)
            .and_then(|c| warden_serve::check(&c).map(|s| s.to_string()))
    };
    let remote = "\n[cluster]\npostgres = \"host=192.0.2.7 user=warden dbname=warden\"\n";
    let err = check(remote).unwrap_err().to_string();
    assert!(
        err.contains("[cluster] postgres")
            && err.contains("refusing plaintext to PostgreSQL at 192.0.2.7"),
        "{err}"
    );
    // Written consent to plaintext on a trusted network passes the check.
    let consent = remote.replace("dbname=warden", "dbname=warden sslmode=disable");
    assert!(check(&consent).unwrap().contains("tls off"));
    let err = check(&format!("{consent}nats = \"nats://nats.internal:4222\"\n"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("refusing plaintext to NATS at nats.internal"),
        "{err}"
    );
    let err = check(&format!(
        "{consent}nats = \"nats://w1:hunter2hunter2@127.0.0.1:4222\"\n"
    ))
    .unwrap_err()
    .to_string();
    assert!(err.contains("[cluster] nats holds credentials"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
    // A client certificate without its key, and a missing CA file, are named.
    let err = check(&format!("{consent}[cluster.tls]\ncert = \"w.pem\"\n"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("[cluster.tls] give both `cert` and `key`"),
        "{err}"
    );
    let err = check(&format!(
        "{consent}[cluster.tls]\nca = \"missing-ca.pem\"\n"
    ))
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("[cluster.tls]") && err.contains("missing-ca.pem"),
        "{err}"
    );
    // TLS with the Mozilla roots only is enough for a remote host.
    let tls = format!("{remote}[cluster.tls]\n");
    assert!(check(&tls).unwrap().contains("tls on"));
}
