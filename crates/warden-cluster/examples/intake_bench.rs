//! Intake throughput: alerts published on JetStream, moved into PostgreSQL
//! by `pumps` intake pumps. Run by `scripts/cluster-bench.sh`, which starts
//! the servers; prints one Markdown table row per run.
//!
//! ```text
//! cargo run --release -p warden-cluster --example intake_bench -- \
//!     --pg "host=127.0.0.1 port=55433 user=warden dbname=warden" \
//!     --nats nats://127.0.0.1:54223 --alerts 5000 --pumps 2
//! ```
//!
//! Figures: publish rate (one publisher, awaiting each JetStream ack, and
//! 32 in flight), drain rate (alerts into the record per second once all
//! are published), end-to-end rate and the delay from publish to commit
//! (p50, p99) with 32 publishes in flight while the pumps run (saturated:
//! mostly queueing), and the same delay at a paced 200 alerts/s.
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a benchmark program that prints its figures"
)]

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::StreamExt as _;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use warden::Task;
use warden_cluster::{Bus, Record};

struct Args {
    pg: String,
    nats: String,
    alerts: usize,
    pumps: usize,
}

fn args() -> Args {
    let mut a = Args {
        pg: String::new(),
        nats: String::new(),
        alerts: 2000,
        pumps: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_default();
        match flag.as_str() {
            "--pg" => a.pg = value,
            "--nats" => a.nats = value,
            "--alerts" => a.alerts = value.parse().expect("--alerts N"),
            "--pumps" => a.pumps = value.parse().expect("--pumps N"),
            other => panic!("unknown flag {other}"),
        }
    }
    assert!(!a.pg.is_empty() && !a.nats.is_empty(), "--pg and --nats");
    a
}

fn now_us() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_micros(),
    )
    .unwrap()
}

fn alert(run: &str, n: usize) -> (String, Task) {
    let task = Task::goal(format!("{run}-{n}"), format!("bench alert {n}"))
        .in_env("staging")
        .attach("published_us", serde_json::json!(now_us()));
    (format!("gen:{run}-{n}"), task)
}

async fn count(pg: &tokio_postgres::Client, run: &str) -> usize {
    let row = pg
        .query_one(
            "SELECT count(*) FROM warden_tasks WHERE id LIKE $1",
            &[&format!("{run}-%")],
        )
        .await
        .unwrap();
    usize::try_from(row.get::<_, i64>(0)).unwrap()
}

async fn wait_for(pg: &tokio_postgres::Client, run: &str, n: usize) {
    let end = Instant::now() + Duration::from_secs(600);
    while count(pg, run).await < n {
        assert!(Instant::now() < end, "{run}: not drained within 10 min");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn pumps(a: &Args, buses: &[Bus], records: &[Arc<Record>]) -> CancellationToken {
    let stop = CancellationToken::new();
    for i in 0..a.pumps {
        let (bus, record, s) = (buses[i].clone(), records[i].clone(), stop.clone());
        tokio::spawn(async move { bus.run_intake(record, Arc::new(Notify::new()), s).await });
    }
    stop
}

#[tokio::main]
async fn main() {
    let a = args();
    let (pg, conn) = tokio_postgres::connect(&a.pg, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let mut buses = Vec::new();
    let mut records = Vec::new();
    for _ in 0..a.pumps.max(1) {
        buses.push(Bus::connect(&a.nats).await.unwrap());
        let r = Record::connect(&a.pg).await.unwrap();
        r.migrate().await.unwrap();
        records.push(Arc::new(r));
    }
    let publisher = Bus::connect(&a.nats).await.unwrap();
    let stamp = now_us();

    // 1. Publish everything with no pump running, one ack at a time.
    let run = format!("seq{stamp}");
    let t = Instant::now();
    for n in 0..a.alerts {
        let (key, task) = alert(&run, n);
        publisher.publish_alert(&key, &task).await.unwrap();
    }
    let publish_seq = a.alerts as f64 / t.elapsed().as_secs_f64();
    // 2. Drain them.
    let t = Instant::now();
    let stop = pumps(&a, &buses, &records);
    wait_for(&pg, &run, a.alerts).await;
    let drain = a.alerts as f64 / t.elapsed().as_secs_f64();
    stop.cancel();
    tokio::time::sleep(Duration::from_millis(300)).await;

    // 3. Publish 32 at a time while the pumps run: publish rate and the
    // delay from publish to commit.
    let run = format!("e2e{stamp}");
    let stop = pumps(&a, &buses, &records);
    let t = Instant::now();
    futures::stream::iter(0..a.alerts)
        .map(|n| {
            let (publisher, run) = (publisher.clone(), run.clone());
            async move {
                let (key, task) = alert(&run, n);
                publisher.publish_alert(&key, &task).await.unwrap();
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<()>>()
        .await;
    let publish_par = a.alerts as f64 / t.elapsed().as_secs_f64();
    wait_for(&pg, &run, a.alerts).await;
    let e2e = a.alerts as f64 / t.elapsed().as_secs_f64();
    let saturated = delays(&pg, &run).await;

    // 4. Paced at 200 alerts/s (well below the drain rate): the delay from
    // publish to commit without a queue.
    let run = format!("paced{stamp}");
    let paced_n = (a.alerts / 4).max(100);
    let mut tick = tokio::time::interval(Duration::from_millis(5));
    for n in 0..paced_n {
        tick.tick().await;
        let (key, task) = alert(&run, n);
        publisher.publish_alert(&key, &task).await.unwrap();
    }
    wait_for(&pg, &run, paced_n).await;
    stop.cancel();
    let paced = delays(&pg, &run).await;

    println!(
        "| {} | {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.1} / {:.1} | {:.1} / {:.1} |",
        a.pumps,
        a.alerts,
        publish_seq,
        publish_par,
        drain,
        e2e,
        pct(&saturated, 0.5),
        pct(&saturated, 0.99),
        pct(&paced, 0.5),
        pct(&paced, 0.99),
    );
}

/// Publish-to-commit delays of a run, in microseconds, sorted.
async fn delays(pg: &tokio_postgres::Client, run: &str) -> Vec<i64> {
    let rows = pg
        .query(
            "SELECT (extract(epoch FROM created_at) * 1000000)::bigint
                    - (task->'attachments'->>'published_us')::bigint
             FROM warden_tasks WHERE id LIKE $1",
            &[&format!("{run}-%")],
        )
        .await
        .unwrap();
    let mut d: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
    d.sort_unstable();
    d
}

/// The `p` quantile of sorted microseconds, in milliseconds.
fn pct(sorted: &[i64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}
