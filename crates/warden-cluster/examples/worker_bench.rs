//! Worker throughput: tasks published on JetStream, stored by each
//! worker's intake pump, claimed and run by `--workers` in-process
//! [`Worker`]s (each its own PostgreSQL connection, NATS connection,
//! sandbox and agent, `--parallel` tasks at a time) on the agent's real
//! path: the real `http-probe` and `http-action` plugins in the sandbox,
//! the default Rego policy, the drill's three-step runbook (look, act
//! (mutating), check) against a loopback service, and the
//! [`ClusterLedger`] writing every plan, step and journal record to
//! PostgreSQL with fenced commits. Run by `scripts/cluster-bench.sh`, which
//! starts the servers; prints Markdown table rows (`T|…` throughput,
//! `B|…` where the time goes) and the top statements on stderr.
//!
//! ```text
//! cargo run --release -p warden-cluster --example worker_bench -- \
//!     --pg "host=127.0.0.1 port=55433 user=warden dbname=warden" \
//!     --nats nats://127.0.0.1:54223 --tasks 300 --workers 2
//! ```
//!
//! What is measured:
//! - **tasks/s**: tasks over the time from the workers' start to the last
//!   task's end (every task is published before the clock starts).
//! - **step latency**: for each step, from the end of the previous ledger
//!   write of its task (the plan's, or the previous step's commit) to the
//!   end of this step's `commit_step`: policy, sandbox call, the
//!   `begin_step` commit of a mutating step, journaling, and the step's
//!   fenced commit.
//! - **commit**: one `ClusterLedger` write (`save_plan`, `begin_step`,
//!   `commit_step`): the fenced transaction with its journal records and
//!   anchor, as the worker waits for it.
//! - **call**: the sandbox's wall time for the tool call
//!   (`Observation::duration_us`).
//! - PostgreSQL commits (`pg_stat_database.xact_commit` over the run),
//!   the anchor lock's wait (`pg_stat_statements` time of
//!   `pg_advisory_xact_lock`), CPU seconds of this process (sandbox,
//!   policy, clients), of PostgreSQL and of nats-server.
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a benchmark program that prints its figures"
)]

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use http_body_util::Full;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use warden::journal::{HostKey, JournalEvent, JournalTap};
use warden::{
    Agent, AgentError, Ledger, Observation, Proposal, Resume, StepKey, Task, terminal_safe,
};
use warden_cluster::{Bus, ClusterLedger, Record, Worker, verify_journal};

const RUNBOOK: &str = r#"
name: act
match:
  labels: {alertname: ClusterBench}
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

struct Args {
    pg: String,
    nats: String,
    tasks: usize,
    workers: usize,
    parallel: usize,
    act_ms: u64,
}

fn args() -> Args {
    let mut a = Args {
        pg: String::new(),
        nats: String::new(),
        tasks: 300,
        workers: 1,
        parallel: 4,
        act_ms: 0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_default();
        match flag.as_str() {
            "--pg" => a.pg = value,
            "--nats" => a.nats = value,
            "--tasks" => a.tasks = value.parse().expect("--tasks N"),
            "--workers" => a.workers = value.parse().expect("--workers N"),
            "--parallel" => a.parallel = value.parse().expect("--parallel N"),
            "--act-ms" => a.act_ms = value.parse().expect("--act-ms N"),
            other => panic!("unknown flag {other}"),
        }
    }
    assert!(!a.pg.is_empty() && !a.nats.is_empty(), "--pg and --nats");
    a
}

fn key() -> HostKey {
    HostKey::from_bytes([42; 32])
}

/// Microsecond samples, by kind.
#[derive(Default)]
struct Samples {
    step: Vec<u64>,
    commit: Vec<u64>,
    call: Vec<u64>,
    /// Per task: when its last ledger write ended.
    last: HashMap<String, Instant>,
}

/// The agent's ledger, timed: delegates to the [`ClusterLedger`].
struct Timed {
    inner: Arc<ClusterLedger>,
    samples: Arc<Mutex<Samples>>,
}

impl Timed {
    fn wrote(&self, task: &str, started: Instant) -> Option<Instant> {
        let now = Instant::now();
        let mut s = self.samples.lock().unwrap();
        s.commit
            .push(now.duration_since(started).as_micros() as u64);
        s.last.insert(task.to_string(), now)
    }
}

impl JournalTap for Timed {
    fn appended(&self, task_id: &str, ts: &str, event: &JournalEvent) {
        self.inner.appended(task_id, ts, event);
    }
}

#[async_trait]
impl Ledger for Timed {
    async fn resume(&self, task_id: &str) -> Result<Option<Resume>, AgentError> {
        let r = self.inner.resume(task_id).await;
        self.samples
            .lock()
            .unwrap()
            .last
            .insert(task_id.to_string(), Instant::now());
        r
    }
    async fn save_plan(&self, task: &str, revision: u32, p: &Proposal) -> Result<(), AgentError> {
        let t = Instant::now();
        let r = self.inner.save_plan(task, revision, p).await;
        self.wrote(task, t);
        r
    }
    async fn begin_step(&self, key: &StepKey) -> Result<(), AgentError> {
        let t = Instant::now();
        let r = self.inner.begin_step(key).await;
        // Not the end of a step: keep the step's start.
        let now = Instant::now();
        self.samples
            .lock()
            .unwrap()
            .commit
            .push(now.duration_since(t).as_micros() as u64);
        r
    }
    async fn commit_step(&self, key: &StepKey, obs: &Observation) -> Result<(), AgentError> {
        let t = Instant::now();
        let r = self.inner.commit_step(key, obs).await;
        let prev = self.wrote(&key.task_id, t);
        let now = Instant::now();
        let mut s = self.samples.lock().unwrap();
        s.call.push(obs.duration_us);
        if let Some(prev) = prev {
            s.step.push(now.duration_since(prev).as_micros() as u64);
        }
        r
    }
}

type Seen = Arc<Mutex<BTreeMap<Option<String>, u32>>>;

fn service(act_ms: u64) -> (std::net::SocketAddr, Seen, warden_fakes::http::Loopback) {
    let (listener, addr) = warden_fakes::http::bind();
    let seen: Seen = Arc::default();
    let server = warden_fakes::http::Loopback::serve(
        "bench",
        listener,
        Arc::new(Mutex::new(seen.clone())),
        move |req, state| async move {
            let seen = state.lock().unwrap().clone();
            let body = if req.method() == hyper::Method::POST {
                let key = req
                    .headers()
                    .get("idempotency-key")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                *seen.lock().unwrap().entry(key).or_default() += 1;
                if act_ms > 0 {
                    tokio::time::sleep(Duration::from_millis(act_ms)).await;
                }
                r#"{"done":true}"#
            } else {
                r#"{"status":"ok"}"#
            };
            Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from(body))))
        },
    );
    (addr, seen, server)
}

fn alert(addr: std::net::SocketAddr, n: usize) -> serde_json::Value {
    serde_json::json!({
        "version": "4", "status": "firing", "receiver": "warden", "groupKey": "{}:{}",
        "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {}, "externalURL": "",
        "alerts": [{"status": "firing",
            "labels": {"alertname": "ClusterBench", "service": "bench", "severity": "warning", "instance": format!("i-{n}")},
            "annotations": {"summary": "bench", "health_url": format!("http://{addr}/health"),
                "action_url": format!("http://{addr}/act")},
            "startsAt": "2026-12-05T14:00:00Z", "fingerprint": format!("fp-{n}")}]
    })
}

fn policies() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies")
}

fn agent(dir: &Path, id: &str, ledger: Arc<Timed>) -> Agent {
    let mut c = warden::sandbox::SandboxConfig::default();
    c.timeout(Duration::from_secs(20));
    c.cache_dir(dir.join("cache"));
    c.cache_key(key().cache_key());
    let sb = warden::sandbox::Sandbox::new(&c).unwrap();
    let cidrs = serde_json::json!(["127.0.0.0/8"]);
    let policy = warden::policy::PolicyEngine::builder(policies())
        .with_data(serde_json::json!({"warden": {"config": {
            "max_mutations_per_hour": 1_000_000,
            "network": {"allowed_private_cidrs": {"dev": cidrs}}}}}))
        .load()
        .unwrap();
    let runbooks = dir.join(format!("runbooks-{id}"));
    fs_err::create_dir_all(&runbooks).unwrap();
    fs_err::write(runbooks.join("act.yaml"), RUNBOOK).unwrap();
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
        .journal(dir.join(format!("journal-{id}.jsonl")))
        .host_key(key())
        .ledger(ledger)
        .build()
        .unwrap()
}

/// CPU seconds (user + system) of every process named `comm`, or of this
/// process for `self`.
fn cpu_secs(comm: &str) -> f64 {
    // Linux clock ticks are 100 per second on every platform this runs on.
    let ticks = |stat: &str| -> Option<f64> {
        let after = stat.rsplit_once(')')?.1;
        let f: Vec<&str> = after.split_whitespace().collect();
        let utime: f64 = f.get(11)?.parse().ok()?;
        let stime: f64 = f.get(12)?.parse().ok()?;
        Some((utime + stime) / 100.0)
    };
    if comm == "self" {
        return fs_err::read_to_string("/proc/self/stat")
            .ok()
            .and_then(|s| ticks(&s))
            .unwrap_or(0.0);
    }
    let mut total = 0.0;
    for e in fs_err::read_dir("/proc").into_iter().flatten().flatten() {
        let p = e.path();
        if fs_err::read_to_string(p.join("comm")).is_ok_and(|c| c.trim() == comm) {
            total += fs_err::read_to_string(p.join("stat"))
                .ok()
                .and_then(|s| ticks(&s))
                .unwrap_or(0.0);
        }
    }
    total
}

fn pct(v: &[u64], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i] as f64 / 1000.0
}

#[tokio::main]
async fn main() {
    let a = args();
    let dir = tempfile::tempdir().unwrap();
    let (pg, conn) = tokio_postgres::connect(&a.pg, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let setup = Record::connect(&a.pg).await.unwrap();
    setup.migrate().await.unwrap();
    let stmts = pg
        .batch_execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        .await
        .is_ok();
    let (addr, seen, _server) = service(a.act_ms);

    // Every task published (and so on disk in JetStream) before the clock.
    let publisher = Bus::connect(&a.nats).await.unwrap();
    for n in 0..a.tasks {
        let task = Task::from_webhook(format!("b-{n:04}"), &alert(addr, n))
            .unwrap()
            .in_env("dev");
        publisher
            .publish_alert(&format!("am:fp-{n}"), &task)
            .await
            .unwrap();
    }

    let samples = Arc::new(Mutex::new(Samples::default()));
    let stop = CancellationToken::new();
    let mut workers = Vec::new();
    let mut guards = Vec::new();
    for w in 0..a.workers {
        let id = format!("w{w}");
        let record = Arc::new(Record::connect(&a.pg).await.unwrap());
        let ledger = Arc::new(ClusterLedger::new(record.clone(), id.clone(), key()));
        let timed = Arc::new(Timed {
            inner: ledger.clone(),
            samples: samples.clone(),
        });
        let agent = Arc::new(agent(dir.path(), &id, timed));
        let bus = Bus::connect(&a.nats).await.unwrap();
        let wake = Arc::new(Notify::new());
        guards.push(bus.wake_into(wake.clone()).await.unwrap());
        let worker = Worker::new(ledger, agent)
            .lease(Duration::from_secs(30))
            .parallel(a.parallel)
            .wake(wake.clone());
        workers.push((worker, bus, record, wake));
    }
    if stmts {
        pg.batch_execute("SELECT pg_stat_statements_reset()")
            .await
            .unwrap();
    }
    let xact_before: i64 = pg
        .query_one(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let cpu_before = (
        cpu_secs("self"),
        cpu_secs("postgres"),
        cpu_secs("nats-server"),
    );

    let started = Instant::now();
    let mut running = Vec::new();
    for (worker, bus, record, wake) in workers {
        let (s1, s2) = (stop.clone(), stop.clone());
        running.push(tokio::spawn(async move {
            if let Err(e) = bus.run_intake(record, wake, s1).await {
                eprintln!("intake pump: {e}");
            }
        }));
        running.push(tokio::spawn(async move {
            if let Err(e) = worker.run(s2).await {
                eprintln!("worker: {e}");
            }
        }));
    }
    let end = Instant::now() + Duration::from_secs(900);
    let mut counts;
    loop {
        counts = setup.counts().await.unwrap();
        let ended =
            counts.get("done").copied().unwrap_or(0) + counts.get("unknown").copied().unwrap_or(0);
        if ended >= a.tasks as u64 {
            break;
        }
        assert!(Instant::now() < end, "not done within 15 min: {counts:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = (
        cpu_secs("self") - cpu_before.0,
        cpu_secs("postgres") - cpu_before.1,
        cpu_secs("nats-server") - cpu_before.2,
    );
    let xact_after: i64 = pg
        .query_one(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    stop.cancel();
    for r in running {
        let _ = r.await;
    }
    drop(guards);

    let fenced: i64 = pg
        .query_one(
            "SELECT coalesce(sum(commits), 0)::bigint FROM warden_tasks",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let mut s = std::mem::take(&mut *samples.lock().unwrap());
    s.step.sort_unstable();
    s.commit.sort_unstable();
    s.call.sort_unstable();
    let seen = seen.lock().unwrap().clone();
    let duplicates = seen.iter().filter(|(k, n)| k.is_some() && **n > 1).count();
    let report = verify_journal(&setup, &key(), None).await.unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert_eq!(duplicates, 0, "a mutating call arrived twice");

    let (lock_ms, commit_sql_ms, top) = if stmts {
        let rows = pg
            .query(
                "SELECT query, calls, total_exec_time FROM pg_stat_statements
                 WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
                 ORDER BY total_exec_time DESC LIMIT 8",
                &[],
            )
            .await
            .unwrap();
        let mut lock = 0.0;
        let commit: f64 = pg
            .query_one(
                "SELECT coalesce(sum(total_exec_time), 0) FROM pg_stat_statements
                 WHERE upper(trim(query)) = 'COMMIT'",
                &[],
            )
            .await
            .map(|r| r.get(0))
            .unwrap_or(f64::NAN);
        let mut top = String::new();
        for r in &rows {
            let q: String = r.get(0);
            let ms: f64 = r.get(2);
            if q.contains("pg_advisory_xact_lock") && !q.contains("migrate") {
                lock += ms;
            }
            let one: String = q.split_whitespace().collect::<Vec<_>>().join(" ");
            top.push_str(&format!(
                "  {:>9.1} ms {:>7} calls  {}\n",
                ms,
                r.get::<_, i64>(1),
                terminal_safe(&one.chars().take(90).collect::<String>())
            ));
        }
        (lock, commit, top)
    } else {
        (
            f64::NAN,
            f64::NAN,
            "  (pg_stat_statements not loaded)\n".into(),
        )
    };
    let unknown = counts.get("unknown").copied().unwrap_or(0);
    println!(
        "T| {} | {} | {} | {:.1} | {:.1} | {:.1} | {:.1} / {:.1} | {} ({} fenced) | {} |",
        a.workers,
        a.parallel,
        a.tasks,
        a.tasks as f64 / elapsed,
        pct(&s.step, 0.5),
        pct(&s.step, 0.99),
        pct(&s.commit, 0.5),
        pct(&s.commit, 0.99),
        xact_after - xact_before,
        fenced,
        unknown,
    );
    let busy = elapsed * a.workers as f64 * a.parallel as f64;
    println!(
        "B| {} | {:.1} s | {:.1} / {:.1} | {:.0} % | {:.0} % | {:.0} ms ({:.1} % of slot time) | {:.0} ms | {:.1} / {:.1} / {:.1} |",
        a.workers,
        elapsed,
        pct(&s.call, 0.5),
        pct(&s.call, 0.99),
        100.0 * s.commit.iter().sum::<u64>() as f64 / 1e6 / busy,
        100.0 * s.call.iter().sum::<u64>() as f64 / 1e6 / busy,
        lock_ms,
        100.0 * lock_ms / 1000.0 / busy,
        commit_sql_ms,
        cpu.0,
        cpu.1,
        cpu.2,
    );
    eprintln!(
        "[{} worker(s) x {}] {} tasks in {elapsed:.1} s; journal {} chains, {} records, {} anchors; mutating calls {}; top statements by time:\n{top}",
        a.workers,
        a.parallel,
        a.tasks,
        report.tasks,
        report.records,
        report.anchors,
        seen.values().sum::<u32>(),
    );
}
