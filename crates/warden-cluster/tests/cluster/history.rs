//! The rate-limit history every worker shares, against a real PostgreSQL:
//! the count and the change are one step across workers, so a per-hour
//! limit holds for the cluster, not per worker.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use warden::journal::HostKey;
use warden::{Agent, StepStatus, Task};
use warden_cluster::{ClusterError, ClusterLedger, Fence, Record, Worker};

use crate::support::Postgres;

fn key() -> HostKey {
    HostKey::from_bytes([42; 32])
}

async fn held_task(record: &Record, id: &str, owner: &str, lease: Duration) -> Fence {
    record
        .enqueue(&format!("gen:{id}"), &Task::goal(id, "x").in_env("dev"))
        .await
        .unwrap();
    record.claim(owner, lease).await.unwrap().unwrap().fence
}

#[tokio::test(flavor = "multi_thread")]
async fn two_workers_racing_for_the_last_changes_under_a_limit_take_exactly_the_limit() {
    let Some(pg) = Postgres::start() else { return };
    let a = Arc::new(Record::connect(&pg.url()).await.unwrap());
    let b = Arc::new(Record::connect(&pg.url()).await.unwrap());
    a.migrate().await.unwrap();
    let lease = Duration::from_secs(60);
    let fa = held_task(&a, "t-a", "worker-a", lease).await;
    let fb = held_task(&b, "t-b", "worker-b", lease).await;
    const LIMIT: u64 = 10;
    // 2 × 50 decisions at once, each "allowed while fewer than 10 changes".
    let started = Instant::now();
    let mut racing = Vec::new();
    for (record, fence) in [(a.clone(), fa), (b.clone(), fb)] {
        for _ in 0..50 {
            let record = record.clone();
            let fence = fence.clone();
            racing.push(tokio::spawn(async move {
                record
                    .decide(&fence, ("warden", "alice", "dev"), |recent| {
                        let allow = recent.by_agent < LIMIT;
                        (allow, allow)
                    })
                    .await
                    .unwrap()
            }));
        }
    }
    let mut allowed = 0;
    for r in racing {
        allowed += u64::from(r.await.unwrap());
    }
    eprintln!(
        "\n[race] 100 decisions from two workers (one connection each) in {:?}; {allowed} allowed\n",
        started.elapsed()
    );
    assert_eq!(allowed, LIMIT);
    let recent = b
        .recent_mutations(("warden", "alice", "dev"))
        .await
        .unwrap();
    assert_eq!(
        (recent.by_agent, recent.by_principal, recent.in_env),
        (LIMIT, LIMIT, LIMIT)
    );
    // Other scopes count apart: another agent, principal and env see none.
    let other = a.recent_mutations(("w2", "bob", "prod")).await.unwrap();
    assert_eq!(
        (other.by_agent, other.by_principal, other.in_env),
        (0, 0, 0)
    );
}

#[tokio::test]
async fn a_worker_that_lost_the_task_cannot_count_a_change() {
    let Some(pg) = Postgres::start() else { return };
    let a = Record::connect(&pg.url()).await.unwrap();
    a.migrate().await.unwrap();
    let fence = held_task(&a, "t-1", "worker-a", Duration::from_millis(200)).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let taken = a
        .claim("worker-b", Duration::from_secs(30))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(taken.fence.epoch, 2);
    let mut called = false;
    let err = a
        .decide(&fence, ("warden", "alice", "dev"), |_| {
            called = true;
            ((), true)
        })
        .await
        .unwrap_err();
    assert!(
        matches!(err, ClusterError::Fenced { epoch: 1, .. }),
        "{err}"
    );
    assert!(!called, "the fenced-out worker did not get to decide");
    let recent = a
        .recent_mutations(("warden", "alice", "dev"))
        .await
        .unwrap();
    assert_eq!(recent.by_agent, 0);
}

/// The one-step runbook every alert matches: a mutating call.
const RUNBOOK: &str = r#"
name: act
match:
  labels: {alertname: RateDrill}
steps:
  - id: act
    tool: http-action
    args: {url: "{{ alert.annotations.action_url }}", body: {alert: "{{ task.id }}"}}
"#;

fn policies() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies")
}

/// A worker's agent: the mutating HTTP plugin, the default policy with
/// loopback allowed and at most `limit` changes per hour, its own journal
/// (so only the shared history can hold the limit across workers).
fn agent(dir: &Path, ledger: Arc<ClusterLedger>, limit: u64) -> Agent {
    let mut c = warden::sandbox::SandboxConfig::default();
    c.timeout(Duration::from_secs(20));
    c.cache_dir(dir.join("cache"));
    c.cache_key(key().cache_key());
    let sb = warden::sandbox::Sandbox::new(&c).unwrap();
    let policy = warden::policy::PolicyEngine::builder(policies())
        .with_data(serde_json::json!({"warden": {"config": {
            "max_mutations_per_hour": limit,
            "network": {"allowed_private_cidrs": {"dev": ["127.0.0.0/8"]}}}}}))
        .load()
        .unwrap();
    let runbooks = dir.join(format!("runbooks-{}", ledger.owner()));
    fs_err::create_dir_all(&runbooks).unwrap();
    fs_err::write(runbooks.join("act.yaml"), RUNBOOK).unwrap();
    Agent::builder()
        .plugin(
            sb.load_file(test_plugins_artifacts::PLUGIN_HTTP_ACTION)
                .unwrap(),
        )
        .policy_engine(policy)
        .runbooks(runbooks)
        .journal(dir.join(format!("journal-{}.jsonl", ledger.owner())))
        .host_key(key())
        .ledger(ledger)
        .build()
        .unwrap()
}

/// A loopback service counting the POSTs it receives.
fn service() -> (
    std::net::SocketAddr,
    Arc<Mutex<u32>>,
    warden_fakes::http::Loopback,
) {
    let (listener, addr) = warden_fakes::http::bind();
    let posts = Arc::new(Mutex::new(0u32));
    let server = warden_fakes::http::Loopback::serve(
        "rate",
        listener,
        Arc::new(Mutex::new(posts.clone())),
        |req, state| async move {
            if req.method() == hyper::Method::POST {
                *state.lock().unwrap().lock().unwrap() += 1;
            }
            Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from(
                r#"{"done":true}"#,
            ))))
        },
    );
    (addr, posts, server)
}

fn alert(addr: std::net::SocketAddr, n: usize) -> serde_json::Value {
    serde_json::json!({
        "version": "4", "status": "firing", "receiver": "warden", "groupKey": "{}:{}",
        "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {}, "externalURL": "",
        "alerts": [{"status": "firing",
            "labels": {"alertname": "RateDrill", "service": "rate", "severity": "warning", "instance": format!("i-{n}")},
            "annotations": {"summary": "rate", "action_url": format!("http://{addr}/act")},
            "startsAt": "2026-12-05T14:00:00Z", "fingerprint": format!("fp-{n}")}]
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_per_hour_change_limit_holds_across_two_workers_with_their_own_journals() {
    let Some(pg) = Postgres::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let record = Record::connect(&pg.url()).await.unwrap();
    record.migrate().await.unwrap();
    let (addr, posts, _server) = service();
    const ALERTS: usize = 30;
    const LIMIT: u64 = 10;
    for n in 0..ALERTS {
        let task = Task::from_webhook(format!("r-{n:02}"), &alert(addr, n))
            .unwrap()
            .in_env("dev");
        record.enqueue(&format!("am:fp-{n}"), &task).await.unwrap();
    }
    let stop = warden::CancellationToken::new();
    let mut running = Vec::new();
    let mut stats = Vec::new();
    for id in ["w1", "w2"] {
        let r = Arc::new(Record::connect(&pg.url()).await.unwrap());
        let ledger = Arc::new(ClusterLedger::new(r, id, key()));
        let agent = Arc::new(agent(dir.path(), ledger.clone(), LIMIT));
        let w = Worker::new(ledger, agent)
            .lease(Duration::from_secs(30))
            .parallel(4);
        stats.push(w.stats());
        let stop = stop.clone();
        running.push(tokio::spawn(async move { w.run(stop).await }));
    }
    let end = Instant::now() + Duration::from_secs(180);
    loop {
        let counts = record.counts().await.unwrap();
        if counts.get("done").copied().unwrap_or(0) == ALERTS as u64 {
            break;
        }
        assert!(Instant::now() < end, "not every alert ended: {counts:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.cancel();
    for r in running {
        r.await.unwrap().unwrap();
    }
    let claimed: Vec<u64> = stats
        .iter()
        .map(|s| s.claimed.load(Ordering::Relaxed))
        .collect();
    let posts = *posts.lock().unwrap();
    // What each task's `act` step ended as, from the record's outcomes.
    let (client, conn) = tokio_postgres::connect(&pg.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let mut statuses: BTreeMap<String, u64> = BTreeMap::new();
    for row in client
        .query("SELECT outcome FROM warden_tasks", &[])
        .await
        .unwrap()
    {
        let outcome: warden::Outcome = serde_json::from_value(row.get(0)).unwrap();
        for o in outcome.observations.iter().filter(|o| o.step_id == "act") {
            *statuses.entry(o.status.as_str().to_string()).or_default() += 1;
        }
    }
    eprintln!(
        "\n[rate] {ALERTS} alerts, limit {LIMIT}/h; claimed per worker {claimed:?}; act steps {statuses:?}; POSTs received {posts}\n"
    );
    assert!(
        claimed.iter().all(|&n| n > 0),
        "both workers ran tasks: {claimed:?}"
    );
    assert_eq!(u64::from(posts), LIMIT, "exactly the limit's changes made");
    assert_eq!(
        statuses.get(StepStatus::Succeeded.as_str()).copied(),
        Some(LIMIT)
    );
    assert_eq!(
        statuses.get(StepStatus::Denied.as_str()).copied(),
        Some(ALERTS as u64 - LIMIT)
    );
    let recent = record
        .recent_mutations(("warden", "unknown", "dev"))
        .await
        .unwrap();
    assert_eq!(recent.in_env, LIMIT);
}
