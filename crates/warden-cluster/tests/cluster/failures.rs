//! The cluster under failure, with real parts: PostgreSQL, worker
//! processes (this test binary, re-run as a worker), the real sandboxed
//! plugins on the agent's one path, and a loopback service that counts the
//! `Idempotency-Key` of every mutating call it receives.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use warden::journal::HostKey;
use warden::{Agent, Task};
use warden_cluster::{ClusterLedger, Record, Worker, verify_journal};

use crate::support::Postgres;

/// The runbook every alert matches: look, act (mutating), check.
const RUNBOOK: &str = r#"
name: act
match:
  labels: {alertname: ClusterDrill}
steps:
  - id: look
    tool: http-probe
    args: {url: "{{ alert.annotations.health_url }}", expect_status: [200]}
  - id: act
    tool: http-action
    depends_on: [look]
    args: {url: "{{ alert.annotations.action_url }}", body: {alert: "{{ task.id }}"}}
  - id: check
    tool: http-probe
    verify: true
    depends_on: [act]
    args: {url: "{{ alert.annotations.health_url }}", expect_status: [200]}
"#;

fn key() -> HostKey {
    HostKey::from_bytes([42; 32])
}

fn policies() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies")
}

/// The mutating calls the service saw, by idempotency key (`None`: a call
/// without one).
type Seen = Arc<Mutex<BTreeMap<Option<String>, u32>>>;

/// A loopback service: `GET /health` is 200; `POST /act` takes a while
/// (so some calls are in flight when a worker is killed) and counts keys.
struct Service {
    addr: std::net::SocketAddr,
    seen: Seen,
    _server: warden_fakes::http::Loopback,
}

impl Service {
    fn start() -> Service {
        let (listener, addr) = warden_fakes::http::bind();
        let seen: Seen = Arc::default();
        let server = warden_fakes::http::Loopback::serve(
            "drill",
            listener,
            Arc::new(Mutex::new(seen.clone())),
            |req, state| async move {
                let seen = state.lock().unwrap().clone();
                let body = if req.method() == hyper::Method::POST {
                    let key = req
                        .headers()
                        .get("idempotency-key")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string);
                    // Counted on arrival, then slow: a worker killed now
                    // has this call in flight.
                    *seen.lock().unwrap().entry(key).or_default() += 1;
                    tokio::time::sleep(Duration::from_millis(150)).await;
                    r#"{"done":true}"#
                } else {
                    r#"{"status":"ok"}"#
                };
                Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from(body))))
            },
        );
        Service {
            addr,
            seen,
            _server: server,
        }
    }

    fn alert(&self, n: usize) -> serde_json::Value {
        let a = self.addr;
        serde_json::json!({
            "version": "4", "status": "firing", "receiver": "warden", "groupKey": "{}:{}",
            "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {}, "externalURL": "",
            "alerts": [{"status": "firing",
                "labels": {"alertname": "ClusterDrill", "service": "drill", "severity": "warning", "instance": format!("i-{n}")},
                "annotations": {"summary": "drill", "health_url": format!("http://{a}/health"),
                    "action_url": format!("http://{a}/act")},
                "startsAt": "2026-12-05T14:00:00Z", "fingerprint": format!("fp-{n}")}]
        })
    }
}

/// An agent for a worker: both HTTP plugins, the default policy with
/// loopback allowed and no change limit in the way, the drill runbook,
/// its own journal file, the cluster's host key, and the ledger.
fn agent(dir: &Path, ledger: Arc<ClusterLedger>) -> Agent {
    let mut c = warden::sandbox::SandboxConfig::default();
    c.timeout(Duration::from_secs(20));
    c.cache_dir(dir.join("cache"));
    c.cache_key(key().cache_key());
    let sb = warden::sandbox::Sandbox::new(&c).unwrap();
    let cidrs = serde_json::json!(["127.0.0.0/8"]);
    let policy = warden::policy::PolicyEngine::builder(policies())
        .with_data(serde_json::json!({"warden": {"config": {
            "max_mutations_per_hour": 100000,
            "network": {"allowed_private_cidrs": {"dev": cidrs}}}}}))
        .load()
        .unwrap();
    // Each worker its own copy: workers start together.
    let runbooks = dir.join(format!("runbooks-{}", ledger.owner()));
    fs_err::create_dir_all(&runbooks).unwrap();
    fs_err::write(runbooks.join("act.yaml"), RUNBOOK).unwrap();
    let journal = dir.join(format!("journal-{}.jsonl", ledger.owner()));
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
        .runbooks(runbooks)
        .journal(journal)
        .host_key(key())
        .ledger(ledger)
        .build()
        .unwrap()
}

async fn worker(pg_url: &str, id: &str, dir: &Path, lease: Duration) -> Worker {
    let record = Arc::new(Record::connect(pg_url).await.unwrap());
    let ledger = Arc::new(ClusterLedger::new(record, id, key()));
    let agent = Arc::new(agent(dir, ledger.clone()));
    Worker::new(ledger, agent).lease(lease).parallel(4)
}

/// Not a test on its own: the body of a worker process the kill test
/// starts (`WARDEN_DRILL_PG` set); it runs until it is killed.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "a worker process for the kill test, started by it"]
async fn drill_worker_process() {
    let (Some(url), Some(id), Some(dir)) = (
        std::env::var_os("WARDEN_DRILL_PG"),
        std::env::var_os("WARDEN_DRILL_ID"),
        std::env::var_os("WARDEN_DRILL_DIR"),
    ) else {
        return;
    };
    let (url, id) = (url.to_string_lossy(), id.to_string_lossy());
    let w = worker(&url, &id, Path::new(&dir), Duration::from_secs(5)).await;
    // Until killed; the parent ends the drill with SIGKILL.
    w.run(warden::CancellationToken::new()).await.unwrap();
}

fn spawn_worker(pg: &Postgres, id: &str, dir: &Path) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "failures::drill_worker_process",
            "--exact",
            "--ignored",
            "--nocapture",
        ])
        .env("WARDEN_DRILL_PG", pg.url())
        .env("WARDEN_DRILL_ID", id)
        .env("WARDEN_DRILL_DIR", dir)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

/// Workers that are SIGKILLed when dropped (a failing test leaves none).
struct Workers(Vec<Child>);

impl Drop for Workers {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

async fn wait_until(
    record: &Record,
    within: Duration,
    what: &str,
    done: impl Fn(&BTreeMap<String, u64>) -> bool,
) -> BTreeMap<String, u64> {
    let end = Instant::now() + within;
    loop {
        if let Ok(counts) = record.counts().await {
            if done(&counts) {
                return counts;
            }
            assert!(
                Instant::now() < end,
                "{what}: not within {within:?}: {counts:?}"
            );
        } else {
            assert!(
                Instant::now() < end,
                "{what}: the record did not answer within {within:?}"
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn ended(c: &BTreeMap<String, u64>) -> u64 {
    c.get("done").copied().unwrap_or(0) + c.get("unknown").copied().unwrap_or(0)
}

/// Every alert handled once, every key seen at most once; the counts.
async fn check(record: &Record, svc: &Service, alerts: usize, label: &str) -> (u64, u64) {
    let counts = record.counts().await.unwrap();
    let unknown = counts.get("unknown").copied().unwrap_or(0);
    let seen = svc.seen.lock().unwrap().clone();
    let unkeyed = seen.get(&None).copied().unwrap_or(0);
    let keys = seen.keys().filter(|k| k.is_some()).count();
    let duplicates = seen.iter().filter(|(k, n)| k.is_some() && **n > 1).count();
    let calls: u32 = seen.values().sum();
    let report = verify_journal(record, &key(), None).await.unwrap();
    eprintln!(
        "\n[{label}] alerts {alerts}; handled {} (done {}, unknown {unknown}); mutating calls received {calls}, unique idempotency keys {keys}, duplicates {duplicates}, without key {unkeyed}; journal: {} task chains, {} records, {} anchors, problems {}\n",
        ended(&counts),
        counts.get("done").copied().unwrap_or(0),
        report.tasks,
        report.records,
        report.anchors,
        report.problems.len()
    );
    assert_eq!(
        ended(&counts),
        alerts as u64,
        "every alert handled: {counts:?}"
    );
    assert_eq!(duplicates, 0, "no mutating call arrived twice");
    assert_eq!(unkeyed, 0, "every mutating call carried its key");
    // A done task's call arrived exactly once; an unknown task's at most once.
    assert!(keys as u64 >= alerts as u64 - unknown && keys <= alerts);
    assert!(report.is_ok(), "{:?}", report.problems);
    assert_eq!(report.tasks, alerts as u64);
    (keys as u64, unknown)
}

#[tokio::test(flavor = "multi_thread")]
async fn three_workers_one_killed_and_one_restarted_handle_every_alert_once() {
    let Some(pg) = Postgres::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let record = Record::connect(&pg.url()).await.unwrap();
    record.migrate().await.unwrap();
    let svc = Service::start();
    const ALERTS: usize = 500;
    for n in 0..ALERTS {
        let task = Task::from_webhook(format!("a-{n:03}"), &svc.alert(n))
            .unwrap()
            .in_env("dev");
        record.enqueue(&format!("am:fp-{n}"), &task).await.unwrap();
    }
    // Compile the plugins once, into the cache the workers share.
    drop(agent(
        dir.path(),
        Arc::new(ClusterLedger::new(
            Arc::new(Record::connect(&pg.url()).await.unwrap()),
            "warm",
            key(),
        )),
    ));
    let mut workers = Workers(
        ["w1", "w2", "w3"]
            .iter()
            .map(|id| spawn_worker(&pg, id, dir.path()))
            .collect(),
    );
    wait_until(
        &record,
        Duration::from_secs(120),
        "a quarter handled",
        |c| ended(c) >= ALERTS as u64 / 4,
    )
    .await;
    // SIGKILL, mid-run: its tasks keep their leases until they run out.
    workers.0[0].kill().unwrap();
    workers.0[0].wait().unwrap();
    let killed_at = ended(&record.counts().await.unwrap());
    wait_until(&record, Duration::from_secs(120), "half handled", |c| {
        ended(c) >= ALERTS as u64 / 2
    })
    .await;
    workers.0[0] = spawn_worker(&pg, "w1", dir.path());
    wait_until(
        &record,
        Duration::from_secs(180),
        "every alert handled",
        |c| ended(c) == ALERTS as u64,
    )
    .await;
    drop(workers);
    eprintln!("[kill] w1 was SIGKILLed after {killed_at} alerts had been handled");
    let (_, unknown) = check(&record, &svc, ALERTS, "kill").await;
    // What the killed worker had in flight ended unknown, no more: at most
    // one task per slot (4).
    assert!(unknown <= 4, "{unknown} unknown");
}

#[tokio::test(flavor = "multi_thread")]
async fn workers_pause_through_a_postgres_restart_and_lose_nothing() {
    let Some(pg) = Postgres::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let record = Record::connect(&pg.url()).await.unwrap();
    record.migrate().await.unwrap();
    let svc = Service::start();
    const ALERTS: usize = 150;
    for n in 0..ALERTS {
        let task = Task::from_webhook(format!("p-{n:03}"), &svc.alert(n))
            .unwrap()
            .in_env("dev");
        record.enqueue(&format!("am:fp-{n}"), &task).await.unwrap();
    }
    let stop = warden::CancellationToken::new();
    let mut running = Vec::new();
    let mut stats = Vec::new();
    for id in ["p1", "p2", "p3"] {
        let w = worker(&pg.url(), id, dir.path(), Duration::from_secs(20)).await;
        stats.push(w.stats());
        let stop = stop.clone();
        running.push(tokio::spawn(async move { w.run(stop).await }));
    }
    wait_until(&record, Duration::from_secs(120), "a third handled", |c| {
        ended(c) >= ALERTS as u64 / 3
    })
    .await;
    pg.stop();
    tokio::time::sleep(Duration::from_secs(2)).await;
    pg.start_again();
    wait_until(
        &record,
        Duration::from_secs(180),
        "every alert handled",
        |c| ended(c) == ALERTS as u64,
    )
    .await;
    stop.cancel();
    for r in running {
        r.await.unwrap().unwrap();
    }
    let errors: u64 = stats
        .iter()
        .map(|s| s.errors.load(std::sync::atomic::Ordering::Relaxed))
        .sum();
    eprintln!("[pg-restart] record errors the workers waited out: {errors}");
    let (keys, unknown) = check(&record, &svc, ALERTS, "pg-restart").await;
    assert_eq!(
        unknown, 0,
        "a restart loses nothing and leaves nothing unknown"
    );
    assert_eq!(keys, ALERTS as u64);
}
