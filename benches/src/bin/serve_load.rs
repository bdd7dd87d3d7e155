//! Load check for `warden serve` (run by `benches/serve_load.sh`, not in CI).
//!
//! Starts the given `warden` binary on a fresh folder with a one-step
//! runbook (a read-only probe of a loopback server), posts `--rate`
//! Alertmanager alerts a second for `--secs` seconds (open loop: a slow
//! answer does not slow the sender), waits for every task to end, and
//! reports accept latency, tasks completed, lost alerts and the server's
//! peak RSS (`VmHWM`).
//!
//! ```text
//! serve-load --warden target/debug/warden [--rate 50] [--secs 20] [--workers 2]
//! ```
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a command-line tool: the report is its output"
)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde_json::{Value, json};

const ADMIN: &str = "admin-token-0123456789abcdef";
const AM_TOKEN: &str = "alertmanager-token-0123456789";

const RUNBOOK: &str = r#"
name: probe-only
match: {labels: {alertname: LoadProbe}}
steps:
  - id: probe
    tool: http-probe
    verify: true
    args: {url: "{{ alert.annotations.url }}", expect_status: [200]}
summary: "probe said {{ steps.probe.output.status }}"
"#;

struct Args {
    warden: PathBuf,
    rate: u32,
    secs: u32,
    workers: u32,
}

fn args() -> anyhow::Result<Args> {
    let mut a = Args {
        warden: PathBuf::new(),
        rate: 50,
        secs: 20,
        workers: 2,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--warden" => a.warden = value.into(),
            "--rate" => a.rate = value.parse()?,
            "--secs" => a.secs = value.parse()?,
            "--workers" => a.workers = value.parse()?,
            other => bail!("unknown flag {other}"),
        }
    }
    if a.warden.as_os_str().is_empty() || a.rate == 0 || a.secs == 0 {
        bail!("usage: serve-load --warden PATH [--rate N] [--secs T] [--workers W]");
    }
    Ok(a)
}

/// The service folder: plugin, shipped bundle (intake limit raised to the
/// load), runbook, secrets and `warden.toml`; returns the port.
fn workspace(root: &Path, a: &Args) -> anyhow::Result<u16> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for dir in ["secrets", "plugins", "runbooks", "policies"] {
        fs_err::create_dir_all(root.join(dir))?;
    }
    fs_err::write(root.join("secrets/admin"), ADMIN)?;
    fs_err::write(root.join("secrets/am"), AM_TOKEN)?;
    fs_err::copy(
        test_plugins_artifacts::PLUGIN_HTTP_PROBE,
        root.join("plugins/http_probe.wasm"),
    )?;
    fs_err::write(root.join("runbooks/probe.yaml"), RUNBOOK)?;
    for entry in fs_err::read_dir(repo.join("policies"))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "rego") {
            let name = path.file_name().context("a policy file without a name")?;
            fs_err::copy(&path, root.join("policies").join(name))?;
        }
    }
    let mut data: Value =
        serde_json::from_str(&fs_err::read_to_string(repo.join("policies/data.json"))?)?;
    data["warden"]["config"]["intake"]["alertmanager"]["per_minute"] = json!(a.rate * 60 * 2);
    fs_err::write(root.join("policies/data.json"), data.to_string())?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let total = a.rate * a.secs;
    fs_err::write(
        root.join("warden.toml"),
        format!(
            r#"[agent]
plugins = "plugins"
policy = "policies"
runbooks = "runbooks"
journal = "data/journal.jsonl"
data_dir = "data/serve"
key_file = "key/host.key"
env = "dev"

[listen]
addr = "127.0.0.1:{port}"

[limits]
workers = {workers}
queue = {queue}

[[tokens]]
name = "admin"
roles = ["operator", "approver"]
token = {{ file = "secrets/admin" }}

[receivers.alertmanager]
bearer = {{ file = "secrets/am" }}
"#,
            workers = a.workers,
            queue = total + 16,
        ),
    )?;
    Ok(port)
}

/// Peak resident set (`VmHWM`) of `pid`, in KiB.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = fs_err::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Stops the server (SIGTERM, then SIGKILL) however the run ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(30) {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = args()?;
    let dir = tempfile::tempdir()?;
    let root = dir.path();
    let port = workspace(root, &a)?;
    let target = warden_fakes::http::OkServer::start();
    let log = fs_err::File::create(root.join("warden.log"))?
        .into_parts()
        .0;
    let mut child = Command::new(&a.warden)
        .current_dir(root)
        .args(["serve", "--config", "warden.toml"])
        .env("WARDEN_LOG", "warn")
        .env_remove("WARDEN_LLM_BASE_URL")
        .env_remove("OPENAI_API_KEY")
        .env_remove("AZURE_OPENAI_ENDPOINT")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting {}", a.warden.display()))?;
    let pid = child.id();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::builder()
        .tls_backend_preconfigured(warden_tls::client_config(None)?)
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()?;
    let ready = Instant::now();
    loop {
        if let Some(status) = child.try_wait()? {
            bail!(
                "warden serve exited ({status}):\n{}",
                fs_err::read_to_string(root.join("warden.log"))?
            );
        }
        if let Ok(r) = http.get(format!("{base}/readyz")).send().await
            && r.status() == 200
        {
            break;
        }
        if ready.elapsed() > Duration::from_secs(180) {
            bail!("warden serve was not ready within 180 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let startup = ready.elapsed();
    let server = Server(child);
    let rss_idle = peak_rss_kib(pid);

    let total = a.rate * a.secs;
    eprintln!(
        "warden serve ready in {:.1} s (pid {pid}); sending {total} alerts at {}/s for {} s",
        startup.as_secs_f64(),
        a.rate,
        a.secs
    );
    let url = format!("{base}/v1/alerts/alertmanager");
    let period = Duration::from_secs_f64(1.0 / f64::from(a.rate));
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut sends = tokio::task::JoinSet::new();
    let started = Instant::now();
    for i in 0..total {
        ticker.tick().await;
        let body = json!({
            "version": "4", "status": "firing", "receiver": "warden", "groupKey": "{}:{}",
            "alerts": [{
                "status": "firing",
                "labels": {"alertname": "LoadProbe", "n": i.to_string()},
                "annotations": {"summary": "load", "url": target.url("/health")},
                "fingerprint": format!("load-{i:06}"),
            }],
        })
        .to_string();
        let (http, url) = (http.clone(), url.clone());
        sends.spawn(async move {
            let t = Instant::now();
            let r = http
                .post(&url)
                .bearer_auth(AM_TOKEN)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await;
            let took = t.elapsed();
            let (status, task) = match r {
                Ok(r) => {
                    let status = r.status().as_u16();
                    let text = r.text().await.unwrap_or_default();
                    let v: Value = serde_json::from_str(&text).unwrap_or_default();
                    let task = v["alerts"][0]["task_id"].as_str().map(str::to_string);
                    (status, task)
                }
                Err(_) => (0, None),
            };
            (took, status, task)
        });
    }
    let sent_in = started.elapsed();
    let mut latencies = Vec::new();
    let mut refused: HashMap<u16, u32> = HashMap::new();
    let mut accepted = Vec::new();
    while let Some(done) = sends.join_next().await {
        let (took, status, task) = done?;
        if (200..300).contains(&status)
            && let Some(task) = task
        {
            latencies.push(took);
            accepted.push(task);
        } else {
            *refused.entry(status).or_default() += 1;
        }
    }
    latencies.sort();

    // Wait for every accepted task to end (bounded).
    let drain = Instant::now();
    let (completed, statuses) = loop {
        let r = http
            .get(format!("{base}/v1/tasks"))
            .bearer_auth(ADMIN)
            .send()
            .await?;
        let v: Value = serde_json::from_str(&r.text().await?)?;
        let tasks = v["tasks"].as_array().cloned().unwrap_or_default();
        let done: HashMap<String, String> = tasks
            .iter()
            .filter(|t| t["state"] == "done")
            .map(|t| {
                (
                    t["task_id"].as_str().unwrap_or_default().to_string(),
                    t["status"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        if accepted.iter().all(|id| done.contains_key(id))
            || drain.elapsed() > Duration::from_secs(900)
        {
            let mut statuses: HashMap<String, u32> = HashMap::new();
            for id in &accepted {
                if let Some(s) = done.get(id) {
                    *statuses.entry(s.clone()).or_default() += 1;
                }
            }
            break (done, statuses);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let all_done = started.elapsed();
    let lost = accepted
        .iter()
        .filter(|id| !completed.contains_key(*id))
        .count();
    let rss_peak = peak_rss_kib(pid);
    drop(server);

    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "warden serve load check: {} ({})",
        a.warden.display(),
        if a.warden.components().any(|c| c.as_os_str() == "release") {
            "release"
        } else {
            "debug"
        }
    );
    println!(
        "  offered      {total} alerts at {}/s for {} s (sent in {:.1} s), {} workers",
        a.rate,
        a.secs,
        sent_in.as_secs_f64(),
        a.workers
    );
    println!(
        "  accepted     {} (2xx); refused {refused:?}",
        accepted.len()
    );
    println!(
        "  accept ms    p50 {:.1}  p90 {:.1}  p99 {:.1}  max {:.1}",
        ms(percentile(&latencies, 0.50)),
        ms(percentile(&latencies, 0.90)),
        ms(percentile(&latencies, 0.99)),
        ms(latencies.last().copied().unwrap_or_default()),
    );
    println!(
        "  completed    {} tasks {statuses:?}, all done {:.1} s after the first send ({:.1} tasks/s)",
        statuses.values().sum::<u32>(),
        all_done.as_secs_f64(),
        f64::from(statuses.values().sum::<u32>()) / all_done.as_secs_f64()
    );
    println!("  lost         {lost}");
    println!(
        "  server RSS   idle peak {} MiB, peak {} MiB (VmHWM)",
        rss_idle.map_or("?".into(), |k| format!("{:.1}", k as f64 / 1024.0)),
        rss_peak.map_or("?".into(), |k| format!("{:.1}", k as f64 / 1024.0)),
    );
    if lost > 0 {
        bail!("{lost} accepted alerts never ended");
    }
    Ok(())
}
