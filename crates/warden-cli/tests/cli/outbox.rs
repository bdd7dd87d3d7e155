//! `warden run` while the on-call webhook is down queues the message;
//! `warden outbox deliver` sends it once it is back; `warden journal
//! export` ships the keyed lines that record it.

use serde_json::json;
use warden_fakes::http::{Responder, Response};

use crate::support::{plugin_dir, run, warden};

fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[test]
fn a_message_queued_by_run_is_listed_delivered_by_outbox_deliver_and_exported() {
    let plugins = plugin_dir();
    let tmp = tempfile::tempdir().unwrap();
    let gib = 1024.0 * 1024.0 * 1024.0;
    let series: Vec<_> = (0..10)
        .map(|d| json!({"t": 1_764_000_000 + d * 86_400, "used_bytes": (400.0 + 10.0 * d as f64) * gib}))
        .collect();
    let disk = tmp.path().join("disk.json");
    fs_err::write(
        &disk,
        json!({"series": series, "capacity_bytes": 500.0 * gib, "smart": {"5": 0}}).to_string(),
    )
    .unwrap();
    let alert = tmp.path().join("alert.json");
    let body = warden_fakes::webhook::alertmanager(
        json!({"alertname": "DiskFillingUp", "severity": "warning", "instance": "db-1", "mountpoint": "/var"}),
        json!({"summary": "disk on db-1 filling up"}),
    );
    fs_err::write(&alert, body.to_string()).unwrap();
    let outbox = plugins.path().join("outbox");

    let down = format!("http://127.0.0.1:{}/hooks/T0/tok", closed_port());
    let (out, stdout, stderr) = run(warden(plugins.path())
        .env("WARDEN_SECRET_ONCALL", &down)
        .env_remove("WARDEN_LLM_BASE_URL")
        .env_remove("OPENAI_API_KEY")
        .env_remove("AZURE_OPENAI_ENDPOINT")
        .args([
            "--json",
            "run",
            "--env",
            "dev",
            "--task-id",
            "t-q",
            "--planner",
            "runbook",
            "--alert",
        ])
        .arg(&alert)
        .arg("--attach")
        .arg(format!("disk={}", disk.display())));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let outcome: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let notify = outcome["observations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["tool"] == "notify")
        .unwrap();
    assert_eq!(notify["output"]["queued"], true, "{notify}");
    let id = notify["output"]["outbox_id"].as_str().unwrap().to_string();

    let (out, stdout, _) = run(warden(plugins.path()).args(["--json", "outbox", "list"]));
    assert!(out.status.success());
    let listed: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(listed[0]["id"], id.as_str());
    assert_eq!(listed[0]["secret"], "oncall");
    assert_eq!(listed[0]["task_id"], "t-q");
    assert!(!stdout.contains("/hooks/"), "{stdout}");
    assert!(outbox.join(format!("{id}.json")).exists());

    let receiver = Responder::start(|_| Response::text(200, "ok"));
    let (out, stdout, stderr) = run(warden(plugins.path())
        .env("WARDEN_SECRET_ONCALL", receiver.url("/hooks/T0/tok"))
        .args(["outbox", "deliver", "--all"]));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(&format!("{id} notify -> oncall: delivered (200)")),
        "{stdout}"
    );
    assert_eq!(receiver.hits(), 1);
    assert_eq!(
        receiver.requests()[0].header("idempotency-key"),
        Some(id.as_str())
    );
    let (_, stdout, _) = run(warden(plugins.path()).args(["outbox", "list"]));
    assert!(stdout.contains("is empty"), "{stdout}");

    let (out, stdout, stderr) =
        run(warden(plugins.path()).args(["journal", "export", "--since", "1h"]));
    assert!(out.status.success(), "{stderr}");
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        lines
            .iter()
            .all(|l| l["mac"].as_str().is_some_and(|m| m.len() == 64))
    );
    let delivered = lines
        .iter()
        .find(|l| l["kind"] == "outbox")
        .unwrap_or_else(|| panic!("no outbox record in {stdout}"));
    assert_eq!(delivered["task_id"], "t-q");
    assert_eq!(delivered["data"]["outcome"], "delivered");
    // The export is the journal's own bytes: its tail, line for line.
    let journal = fs_err::read_to_string(plugins.path().join("journal/journal.jsonl")).unwrap();
    assert!(
        journal.ends_with(&stdout),
        "the export is not the journal's tail"
    );
    let (_, future, _) =
        run(warden(plugins.path()).args(["journal", "export", "--since", "2999-01-01T00:00:00Z"]));
    assert!(future.is_empty(), "{future}");
}
