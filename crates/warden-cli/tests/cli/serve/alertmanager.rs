//! A real Prometheus and Alertmanager: Prometheus scrapes the checkout
//! service, its rule fires, Alertmanager posts the webhook (bearer token
//! from a file, as operators configure it) to `warden serve`, warden heals
//! the service, the alert resolves, and Alertmanager says so.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{
    ADMIN, Checkout, Daemon, Setup, VIEWER, Workspace, client, get, start_warden, tasks,
    wait_until, which, yaml_path,
};

/// Prometheus and Alertmanager from `PATH`. Without them the test is
/// skipped loudly here, and fails where `CI` is set (CI installs both).
#[allow(clippy::print_stderr, reason = "a skipped test must say so")]
fn servers_or_skip() -> Option<(PathBuf, PathBuf)> {
    let prometheus = which(&["prometheus"]);
    let alertmanager = which(&["prometheus-alertmanager", "alertmanager"]);
    if let (Some(p), Some(a)) = (&prometheus, &alertmanager) {
        return Some((p.clone(), a.clone()));
    }
    let missing = format!(
        "prometheus: {}, alertmanager: {}",
        prometheus.map_or("missing".into(), |p| p.display().to_string()),
        alertmanager.map_or("missing".into(), |p| p.display().to_string()),
    );
    assert!(
        std::env::var_os("CI").is_none(),
        "CI is set but the real alert servers are not installed ({missing}); \
         apt-get install -y --no-install-recommends prometheus prometheus-alertmanager"
    );
    eprintln!(
        "\n!!! SKIPPED the real Alertmanager end-to-end test: {missing}.\n\
         !!! Install them with: apt-get install -y --no-install-recommends prometheus prometheus-alertmanager\n"
    );
    None
}

/// A sample's value from a Prometheus or OpenMetrics text exposition: the
/// first line starting with `series` (name and labels as written).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

async fn ready(http: &reqwest::Client, daemon: &mut Daemon, url: &str, deadline: Instant) {
    loop {
        if let Some(status) = daemon.exited() {
            panic!("{} exited: {status}\n{}", daemon.name, daemon.log_tail());
        }
        if let Ok(r) = http.get(url).send().await
            && r.status() == 200
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} was not ready\n{}",
            daemon.name,
            daemon.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
#[allow(
    clippy::print_stderr,
    reason = "the timeline, for the reader of --nocapture"
)]
async fn a_prometheus_alert_sent_by_alertmanager_is_healed_and_its_resolution_arrives() {
    let Some((prometheus_bin, alertmanager_bin)) = servers_or_skip() else {
        return;
    };
    let http = client();
    let checkout = Checkout::start(Duration::ZERO);
    let ws = Workspace::new(&Setup::default());
    let mut warden = start_warden(&ws, "warden.log").await;
    let deadline = Instant::now() + Duration::from_secs(90);

    let am_port = super::free_port();
    let am_dir = ws.path("alertmanager");
    fs_err::create_dir(&am_dir).unwrap();
    fs_err::write(
        am_dir.join("alertmanager.yml"),
        format!(
            r#"route:
  receiver: warden
  group_by: [alertname]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: warden
    webhook_configs:
      - url: {base}/v1/alerts/alertmanager
        send_resolved: true
        http_config:
          authorization:
            type: Bearer
            credentials_file: {token}
"#,
            base = ws.base(),
            token = yaml_path(&ws.path("secrets/am")),
        ),
    )
    .unwrap();
    let mut alertmanager = Daemon::start(
        "alertmanager",
        Command::new(&alertmanager_bin)
            .arg(format!(
                "--config.file={}",
                am_dir.join("alertmanager.yml").display()
            ))
            .arg(format!("--storage.path={}", am_dir.join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{am_port}"))
            // No gossip: a lone instance that listens on loopback only.
            .arg("--cluster.listen-address="),
        am_dir.join("log"),
    );
    let am = format!("http://127.0.0.1:{am_port}");
    ready(&http, &mut alertmanager, &format!("{am}/-/ready"), deadline).await;

    let prom_port = super::free_port();
    let prom_dir = ws.path("prometheus");
    fs_err::create_dir(&prom_dir).unwrap();
    fs_err::write(
        prom_dir.join("rules.yml"),
        format!(
            r#"groups:
  - name: checkout
    rules:
      - alert: ServiceHealthCheckFailing
        expr: checkout_up == 0
        for: 0s
        labels: {{severity: critical, service: checkout}}
        annotations:
          summary: checkout health check failing
          health_url: {health}
          remediation_url: {restart}
"#,
            health = checkout.url("/health"),
            restart = checkout.url("/admin/restart"),
        ),
    )
    .unwrap();
    fs_err::write(
        prom_dir.join("prometheus.yml"),
        format!(
            r#"global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [rules.yml]
alerting:
  alertmanagers:
    - static_configs:
        - targets: ["127.0.0.1:{am_port}"]
scrape_configs:
  - job_name: checkout
    static_configs:
      - targets: ["127.0.0.1:{checkout}"]
  - job_name: warden
    authorization:
      credentials_file: {viewer}
    static_configs:
      - targets: ["127.0.0.1:{warden}"]
"#,
            checkout = checkout.port(),
            viewer = yaml_path(&ws.path("secrets/viewer")),
            warden = ws.port,
        ),
    )
    .unwrap();
    let mut prometheus = Daemon::start(
        "prometheus",
        Command::new(&prometheus_bin)
            .arg(format!(
                "--config.file={}",
                prom_dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                prom_dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}")),
        prom_dir.join("log"),
    );
    let prom = format!("http://127.0.0.1:{prom_port}");
    ready(&http, &mut prometheus, &format!("{prom}/-/ready"), deadline).await;
    let t0 = Instant::now();

    let logs = || {
        [&warden, &alertmanager, &prometheus]
            .map(Daemon::log_tail)
            .join("\n")
    };

    // Alertmanager posts the firing alert; warden queues one task for it.
    let task = wait_until(
        "Alertmanager to post the alert to warden",
        deadline,
        logs,
        || async {
            let list = tasks(&http, &ws).await?;
            list.into_iter().find(|t| t["source"] == "alertmanager")
        },
    )
    .await;
    let posted = t0.elapsed();
    let id = task["task_id"].as_str().unwrap().to_string();
    assert!(
        task["key"].as_str().unwrap().starts_with("am:"),
        "keyed by Alertmanager's fingerprint: {task}"
    );

    // Warden heals the service: probe, one restart, the validation passes.
    let done = wait_until("warden to finish the task", deadline, logs, || async {
        let (_, v) = get(&http, &format!("{}/v1/tasks/{id}", ws.base()), ADMIN).await?;
        (v["task"]["state"] == "done").then_some(v)
    })
    .await;
    let healed = t0.elapsed();
    assert_eq!(done["task"]["status"], "resolved", "{done}\n{}", logs());
    assert_eq!(checkout.restarts().get("").copied(), Some(1));
    let timeline: Vec<&str> = done["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["kind"].as_str())
        .collect();
    assert_eq!(timeline.first(), Some(&"received"), "{timeline:?}");

    // Prometheus sees the service up again and the alert gone.
    let query = format!("{prom}/api/v1/query?query=checkout_up");
    wait_until(
        "Prometheus to see checkout_up 1 and no alert",
        deadline,
        logs,
        || async {
            let (_, q) = get(&http, &query, "").await?;
            let up = q["data"]["result"][0]["value"][1] == "1";
            let (_, alerts) = get(&http, &format!("{prom}/api/v1/alerts"), "").await?;
            let none = alerts["data"]["alerts"]
                .as_array()
                .is_some_and(Vec::is_empty);
            (up && none).then_some(())
        },
    )
    .await;

    // Alertmanager sends `resolved`; the task has ended, so it goes on its timeline.
    let metrics = format!("{}/metrics", ws.base());
    wait_until(
        "Alertmanager's `resolved` notification",
        deadline,
        logs,
        || async {
            let (_, text) = get(&http, &metrics, VIEWER).await?;
            let text = text.as_str()?.to_string();
            let series =
                r#"warden_alerts_received_total{source="alertmanager",disposition="after-end"}"#;
            (sample(&text, series)? >= 1.0).then_some(())
        },
    )
    .await;
    let resolved = t0.elapsed();
    let (_, am_metrics) = get(&http, &format!("{am}/metrics"), "").await.unwrap();
    let am_metrics = am_metrics.as_str().unwrap_or_default().to_string();
    let sent = sample(
        &am_metrics,
        r#"alertmanager_notifications_total{integration="webhook"}"#,
    );
    let failed = sample(
        &am_metrics,
        r#"alertmanager_notifications_failed_total{integration="webhook"}"#,
    );
    assert!(sent >= Some(2.0), "firing and resolved: {sent:?}");
    assert_eq!(failed, Some(0.0), "warden accepted every notification");

    // Prometheus scrapes warden's own /metrics with the viewer token.
    let query = format!("{prom}/api/v1/query?query=up%7Bjob%3D%22warden%22%7D");
    wait_until("Prometheus to scrape warden", deadline, logs, || async {
        let (_, q) = get(&http, &query, "").await?;
        let v: &Value = &q["data"]["result"][0]["value"][1];
        (v == "1").then_some(())
    })
    .await;

    // Healed once, however often Alertmanager spoke.
    assert_eq!(checkout.restarts().get("").copied(), Some(1));
    let (ok, report) = ws.verify_journal();
    assert!(ok, "{report}");

    eprintln!(
        "from Prometheus ready: alert in warden's inbox {posted:.1?}, healed {healed:.1?}, \
         `resolved` from Alertmanager {resolved:.1?}"
    );
    drop(prometheus);
    drop(alertmanager);
    let status = warden.terminate(Duration::from_secs(30));
    assert!(status.success(), "{status}\n{}", warden.log_tail());
}
