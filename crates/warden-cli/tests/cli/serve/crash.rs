//! SIGKILL mid-burst: what a 2xx promised survives, nothing runs twice.
//!
//! Several clients post alerts with distinct fingerprints and retry what
//! got no answer, as Alertmanager does. The server is killed (no handler
//! runs) while alerts arrive and tasks run, then started again on the same
//! folder. Each fingerprint's remediation and health probes are counted by
//! the checkout service, and each task's starts by the journal.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{AM_TOKEN, Checkout, Setup, Workspace, client, start_warden, tasks, wait_until};

/// Alerts in the burst.
const ALERTS: usize = 200;
/// Clients posting at once.
const CLIENTS: usize = 8;
/// Answered alerts before the kill.
const KILL_AFTER: usize = 60;

/// What one alert's delivery came to.
struct Delivery {
    fp: String,
    task: String,
    disposition: String,
    /// Attempts that got no 2xx (reset, refused, 5xx) before the one that did.
    retries: u32,
}

fn alert(checkout: &Checkout, fp: &str) -> Value {
    let mut body = warden_fakes::webhook::alertmanager(
        json!({"alertname": "ServiceHealthCheckFailing", "service": "checkout", "shard": fp}),
        json!({
            "summary": "checkout shard failing",
            "health_url": checkout.url(&format!("/health?fp={fp}")),
            "remediation_url": checkout.url(&format!("/admin/restart?fp={fp}")),
        }),
    );
    body["alerts"][0]["fingerprint"] = json!(fp);
    body
}

/// Post until a 2xx, as Alertmanager retries a failed notification.
async fn deliver(
    http: reqwest::Client,
    url: String,
    fp: String,
    body: Value,
    accepted: Arc<AtomicUsize>,
    deadline: Instant,
) -> Delivery {
    let mut retries = 0;
    loop {
        let sent = http
            .post(&url)
            .bearer_auth(AM_TOKEN)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await;
        if let Ok(r) = sent
            && r.status().is_success()
        {
            let answer: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
            accepted.fetch_add(1, Ordering::SeqCst);
            let one = &answer["alerts"][0];
            return Delivery {
                fp,
                task: one["task_id"].as_str().unwrap().to_string(),
                disposition: one["disposition"].as_str().unwrap().to_string(),
                retries,
            };
        }
        retries += 1;
        assert!(Instant::now() < deadline, "alert {fp} got no 2xx in time");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// What the journal says of each task: how often it started, and its
/// records' kinds and dispositions in order (from the raw lines).
#[derive(Default)]
struct Journaled {
    starts: u32,
    kinds: Vec<String>,
    dispositions: Vec<String>,
}

fn journaled(journal: &std::path::Path) -> HashMap<String, Journaled> {
    let mut out: HashMap<String, Journaled> = HashMap::new();
    for line in fs_err::read_to_string(journal).unwrap().lines() {
        let Ok(r) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let task = out
            .entry(r["task_id"].as_str().unwrap().to_string())
            .or_default();
        let kind = r["kind"].as_str().unwrap().to_string();
        if kind == "task" {
            task.starts += 1;
        }
        if let Some(d) = r["data"]["disposition"].as_str() {
            task.dispositions.push(d.to_string());
        }
        task.kinds.push(kind);
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
#[allow(
    clippy::print_stderr,
    reason = "what the kill hit, for the reader of --nocapture"
)]
async fn a_kill_9_mid_burst_loses_no_accepted_alert_and_runs_no_remediation_twice() {
    // Slow health checks keep tasks running when the kill lands.
    let checkout = Arc::new(Checkout::start(Duration::from_millis(100)));
    let ws = Workspace::new(&Setup {
        workers: 4,
        queue: 512,
        policy: json!({"max_mutations_per_hour": 100_000}),
        ..Setup::default()
    });
    let mut warden = start_warden(&ws, "warden-1.log").await;
    let http = client();
    let deadline = Instant::now() + Duration::from_secs(240);
    let url = format!("{}/v1/alerts/alertmanager", ws.base());
    let accepted = Arc::new(AtomicUsize::new(0));

    let mut clients = tokio::task::JoinSet::new();
    for c in 0..CLIENTS {
        let (http, url, accepted, checkout) = (
            http.clone(),
            url.clone(),
            accepted.clone(),
            checkout.clone(),
        );
        clients.spawn(async move {
            let mut out = Vec::new();
            for i in (c..ALERTS).step_by(CLIENTS) {
                let fp = format!("fp-{i:03}");
                let body = alert(&checkout, &fp);
                let d = deliver(
                    http.clone(),
                    url.clone(),
                    fp,
                    body,
                    accepted.clone(),
                    deadline,
                );
                out.push(d.await);
            }
            out
        });
    }

    while accepted.load(Ordering::SeqCst) < KILL_AFTER {
        assert!(Instant::now() < deadline, "{}", warden.log_tail());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Kill just after a remediation: that task has changed something and
    // is probing again, its outcome not yet journaled.
    let total = || checkout.restarts().values().sum::<u32>();
    let before = total();
    while total() == before {
        assert!(Instant::now() < deadline, "{}", warden.log_tail());
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    warden.kill();
    let at_kill = accepted.load(Ordering::SeqCst);
    let remediated_at_kill = checkout.restarts().len();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let warden_1 = warden;
    let mut warden = start_warden(&ws, "warden-2.log").await;

    let mut deliveries = Vec::new();
    while let Some(batch) = clients.join_next().await {
        deliveries.extend(batch.unwrap());
    }
    assert_eq!(deliveries.len(), ALERTS);
    let logs = || format!("{}\n{}", warden_1.log_tail(), warden.log_tail());

    let items = wait_until("every task to end", deadline, logs, || async {
        let list = tasks(&http, &ws).await?;
        list.iter().all(|t| t["state"] == "done").then_some(list)
    })
    .await;

    // None lost, none doubled: one item per fingerprint, the one its 2xx named.
    let mut by_key: HashMap<String, Vec<&Value>> = HashMap::new();
    for item in &items {
        by_key
            .entry(item["key"].as_str().unwrap().to_string())
            .or_default()
            .push(item);
    }
    assert_eq!(items.len(), ALERTS, "one task per alert");
    let restarts = checkout.restarts();
    let probes = checkout.probes();
    let journal = journaled(&ws.path("data/journal.jsonl"));
    let mut statuses: HashMap<String, usize> = HashMap::new();
    let mut interrupted_after_a_change = 0;
    for d in &deliveries {
        let found = by_key
            .get(&format!("am:{}", d.fp))
            .map_or(&[][..], Vec::as_slice);
        assert_eq!(found.len(), 1, "{}: {found:?}", d.fp);
        let item = found[0];
        assert_eq!(
            item["task_id"],
            d.task.as_str(),
            "{}: the 2xx named it",
            d.fp
        );
        let status = item["status"].as_str().unwrap();
        *statuses.entry(status.to_string()).or_default() += 1;
        let restarted = restarts.get(&d.fp).copied().unwrap_or(0);
        let probed = probes.get(&d.fp).copied().unwrap_or(0);
        assert!(restarted <= 1, "{}: remediated {restarted} times", d.fp);
        assert!(probed <= 2, "{}: probed {probed} times (a rerun)", d.fp);
        let record = &journal[&d.task];
        assert!(record.starts <= 1, "{}: started twice", d.fp);
        // Accepted means journaled, even when the kill fell between the
        // inbox and the journal (then the record is written at restart).
        assert_eq!(
            record.kinds.first().map(String::as_str),
            Some("received"),
            "{}: {:?}",
            d.fp,
            record.kinds
        );
        assert!(
            matches!(
                record.dispositions.first().map(String::as_str),
                Some("queued" | "recovered")
            ),
            "{}: intake {:?}",
            d.fp,
            record.dispositions
        );
        match status {
            "resolved" => assert_eq!((restarted, probed), (1, 2), "{}: {item}", d.fp),
            "interrupted" => {
                let reason = item["reason"].as_str().unwrap_or_default();
                assert!(reason.contains("not run again"), "{}: {item}", d.fp);
                interrupted_after_a_change += restarted;
            }
            other => panic!("{}: ended `{other}`: {item}\n{}", d.fp, logs()),
        }
    }

    assert!(
        interrupted_after_a_change >= 1,
        "the kill was meant to land after a remediation: {statuses:?}"
    );
    let (ok, report) = ws.verify_journal();
    assert!(ok, "{report}");
    let status = warden.terminate(Duration::from_secs(30));
    assert!(status.success(), "{status}\n{}", warden.log_tail());

    let retried: Vec<&Delivery> = deliveries.iter().filter(|d| d.retries > 0).collect();
    let kept = retried.iter().filter(|d| d.disposition != "queued").count();
    let recovered = journal
        .values()
        .filter(|j| j.dispositions.first().is_some_and(|d| d == "recovered"))
        .count();
    eprintln!(
        "kill -9 after {at_kill} answered alerts ({remediated_at_kill} remediations done); \
         {} alerts retried ({kept} of them had been committed before the kill, \
         {recovered} journaled only at restart); final statuses {statuses:?} \
         ({interrupted_after_a_change} interrupted after remediating); journal: {}",
        retried.len(),
        report.trim()
    );
}
