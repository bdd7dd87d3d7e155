//! Incident memory across workers, against a real PostgreSQL: an incident
//! one worker resolves is stored in the record, and another worker's
//! memory (a cache of the record) recalls it.

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use warden::journal::HostKey;
use warden::{Agent, Task};
use warden_cluster::{ClusterLedger, IncidentFollower, Record, Worker};

use crate::support::Postgres;

/// Look, restart (mutating), check: a resolved incident to remember.
const RUNBOOK: &str = r#"
name: restart-pool
match:
  labels: {alertname: PoolExhausted}
steps:
  - id: look
    tool: http-probe
    args: {url: "{{ alert.annotations.health_url }}", expect_status: [200]}
  - id: restart
    tool: http-action
    depends_on: [look]
    args: {url: "{{ alert.annotations.action_url }}", body: {alert: "{{ task.id }}"}}
  - id: check
    tool: http-probe
    verify: true
    depends_on: [restart]
    args: {url: "{{ alert.annotations.health_url }}", expect_status: [200]}
"#;

fn key() -> HostKey {
    HostKey::from_bytes([42; 32])
}

fn policies() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies")
}

/// A worker's agent with an incident memory of its own in `dir`.
fn agent(dir: &Path, ledger: Arc<ClusterLedger>) -> Agent {
    let mut c = warden::sandbox::SandboxConfig::default();
    c.timeout(Duration::from_secs(20));
    c.cache_dir(dir.join("cache"));
    c.cache_key(key().cache_key());
    let sb = warden::sandbox::Sandbox::new(&c).unwrap();
    let policy = warden::policy::PolicyEngine::builder(policies())
        .with_data(serde_json::json!({"warden": {"config": {
            "network": {"allowed_private_cidrs": {"dev": ["127.0.0.0/8"]}}}}}))
        .load()
        .unwrap();
    let own = dir.join(ledger.owner());
    fs_err::create_dir_all(own.join("runbooks")).unwrap();
    fs_err::write(own.join("runbooks/restart.yaml"), RUNBOOK).unwrap();
    Agent::builder()
        .plugin(
            sb.load_file(test_plugins_artifacts::PLUGIN_HTTP_PROBE)
                .unwrap(),
        )
        .plugin(
            sb.load_file(test_plugins_artifacts::PLUGIN_HTTP_ACTION)
                .unwrap(),
        )
        .policy_engine(policy)
        .runbooks(own.join("runbooks"))
        .journal(own.join("journal.jsonl"))
        .memory(warden::memory::Memory::open(own.join("memory")).unwrap())
        .host_key(key())
        .ledger(ledger)
        .build()
        .unwrap()
}

async fn agent_on(pg: &Postgres, dir: &Path, id: &str) -> (Arc<ClusterLedger>, Arc<Agent>) {
    let record = Arc::new(Record::connect(&pg.url()).await.unwrap());
    let ledger = Arc::new(ClusterLedger::new(record, id, key()));
    let agent = Arc::new(agent(dir, ledger.clone()));
    (ledger, agent)
}

/// A healthy loopback service that takes restarts.
fn service() -> (std::net::SocketAddr, warden_fakes::http::Loopback) {
    let (listener, addr) = warden_fakes::http::bind();
    let server = warden_fakes::http::Loopback::serve(
        "pool",
        listener,
        Arc::new(Mutex::new(())),
        |_req, _state| async move {
            Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from(
                r#"{"status":"ok"}"#,
            ))))
        },
    );
    (addr, server)
}

fn alert(addr: std::net::SocketAddr, n: usize, summary: &str) -> serde_json::Value {
    serde_json::json!({
        "version": "4", "status": "firing", "receiver": "warden", "groupKey": "{}:{}",
        "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {}, "externalURL": "",
        "alerts": [{"status": "firing",
            "labels": {"alertname": "PoolExhausted", "service": "payments", "severity": "critical", "instance": format!("i-{n}")},
            "annotations": {"summary": summary, "health_url": format!("http://{addr}/health"),
                "action_url": format!("http://{addr}/restart")},
            "startsAt": "2026-12-05T14:00:00Z", "fingerprint": format!("fp-{n}")}]
    })
}

/// Whether `agent` recalls incident `id` for `text`.
fn recalls(agent: &Agent, text: &str, id: &str) -> bool {
    agent
        .recall(text, 5)
        .unwrap()
        .iter()
        .any(|h| h.incident.id == id)
}

#[tokio::test(flavor = "multi_thread")]
async fn an_incident_resolved_on_one_worker_is_recalled_by_another() {
    let Some(pg) = Postgres::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let record = Arc::new(Record::connect(&pg.url()).await.unwrap());
    record.migrate().await.unwrap();
    let (addr, _server) = service();
    let summary = "payments connection pool exhausted on the primary";
    let task = Task::from_webhook("inc-1", &alert(addr, 1, summary))
        .unwrap()
        .in_env("dev");
    record.enqueue("am:fp-1", &task).await.unwrap();

    // Worker B only follows the record; worker A runs the task.
    let (_, b) = agent_on(&pg, dir.path(), "b").await;
    let stop = warden::CancellationToken::new();
    let following = {
        let b = b.clone();
        let stop = stop.clone();
        let record = Arc::new(Record::connect(&pg.url()).await.unwrap());
        tokio::spawn(async move {
            IncidentFollower::new(record)
                .follow(
                    move |batch| {
                        b.remember(batch).unwrap();
                    },
                    stop,
                )
                .await;
        })
    };
    assert!(!recalls(&b, summary, "warden:inc-1"));
    let (ledger_a, a) = agent_on(&pg, dir.path(), "a").await;
    let worker = Worker::new(ledger_a, a.clone()).lease(Duration::from_secs(30));
    let running = {
        let stop = stop.clone();
        tokio::spawn(async move { worker.run(stop).await })
    };
    let end = Instant::now() + Duration::from_secs(60);
    while !recalls(&b, summary, "warden:inc-1") {
        assert!(
            Instant::now() < end,
            "worker B did not recall the incident within a minute: {:?}",
            record.counts().await.unwrap()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recalls(&a, summary, "warden:inc-1"), "A remembers its own");
    let hit = b.recall(summary, 1).unwrap().into_iter().next().unwrap();
    assert!(
        hit.incident
            .resolution
            .as_deref()
            .is_some_and(|r| r.contains("planned by")),
        "{:?}",
        hit.incident.resolution
    );
    assert!(hit.incident.plan.is_some(), "the plan travels with it");
    stop.cancel();
    running.await.unwrap().unwrap();
    following.await.unwrap();

    // A worker started later rebuilds its cache from the record.
    let (_, c) = agent_on(&pg, dir.path(), "c").await;
    assert!(!recalls(&c, summary, "warden:inc-1"));
    let mut follower = IncidentFollower::new(record.clone());
    let n = follower
        .catch_up(&mut |batch| {
            c.remember(batch).unwrap();
        })
        .await
        .unwrap();
    assert_eq!(n, 1);
    assert!(recalls(&c, summary, "warden:inc-1"));
    // Nothing new: the next catch-up reads nothing.
    assert_eq!(follower.catch_up(&mut |_| {}).await.unwrap(), 0);
}
