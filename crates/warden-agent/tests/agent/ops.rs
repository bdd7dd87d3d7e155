//! The shipped runbooks in `examples/runbooks/` with the shipped plugins:
//! disk forecast -> notify (Slack), rightsize -> notify (Teams). The webhook
//! URLs are host-side secrets pointing at a loopback receiver.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use warden_agent::{Agent, JournalEvent, OutcomeStatus, StepStatus, Task, read_journal};
use warden_azure::{AzureArm, AzureBackend, Credential};
use warden_fakes::arm::FakeArm;
use warden_sandbox::{Sandbox, SandboxConfig};

use super::policy;
use super::service::Service;

fn agent(svc: &Service, journal: &Path) -> Agent {
    agent_with(svc, journal, SandboxConfig::default())
}

/// A sandbox whose ARM capability talks to `fake`.
fn arm_config(fake: &FakeArm) -> SandboxConfig {
    let arm = AzureArm::new(
        &fake.endpoint(),
        Credential::StaticToken(fake.token().to_owned()),
    )
    .unwrap()
    .with_default_poll_interval(Duration::ZERO);
    let mut config = SandboxConfig::default();
    config.arm(Arc::new(AzureBackend::new(Arc::new(arm))));
    config
}

fn agent_with(svc: &Service, journal: &Path, mut config: SandboxConfig) -> Agent {
    config
        .timeout(Duration::from_secs(10))
        .cache_dir(test_plugins_artifacts::PLUGIN_CACHE)
        .secret(
            "oncall",
            &format!("http://{}/hooks/slack/T0/B0/tok", svc.addr),
        )
        .secret("finops", &format!("http://{}/hooks/teams/abc", svc.addr));
    let sandbox = Sandbox::new(&config).unwrap();
    let mut builder = Agent::builder()
        .policy_engine(policy())
        .journal(journal)
        .host_key(super::key());
    for path in test_plugins_artifacts::PLUGINS {
        builder = builder.plugin(sandbox.load_file(path).unwrap());
    }
    builder
        .runbooks(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/runbooks"))
        .build()
        .unwrap()
}

fn alert(labels: serde_json::Value, summary: &str) -> serde_json::Value {
    warden_fakes::webhook::alertmanager(labels, json!({"summary": summary}))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_filling_disk_is_forecast_and_on_call_is_told_through_a_secret_webhook() {
    let svc = Service::start().await;
    let dir = tempfile::tempdir().unwrap();
    let agent = agent(&svc, &dir.path().join("j.jsonl"));
    let gib = 1024.0 * 1024.0 * 1024.0;
    let series: Vec<_> = (0..10)
        .map(|d| json!({"t": 1_764_000_000 + d * 86_400, "used_bytes": (400.0 + 10.0 * d as f64) * gib}))
        .collect();
    let body = alert(
        json!({"alertname": "DiskFillingUp", "severity": "warning", "instance": "db-1", "mountpoint": "/var/lib/postgresql"}),
        "disk on db-1 filling up",
    );
    let task = Task::from_webhook("t-disk", &body)
        .unwrap()
        .in_env("dev")
        .attach(
            "disk",
            json!({"series": series, "capacity_bytes": 500.0 * gib, "smart": {"5": 0, "197": 8}}),
        );
    let outcome = agent.run(task).await.unwrap();

    assert_eq!(outcome.status, OutcomeStatus::Resolved, "{outcome:?}");
    assert_eq!(outcome.planner, "runbook:disk-filling-up");
    let hooks = svc.state.hooks.lock().unwrap().clone();
    assert_eq!(hooks.len(), 1);
    assert_eq!(hooks[0].0, "/hooks/slack/T0/B0/tok");
    let blocks = hooks[0].1["blocks"].as_array().unwrap();
    assert_eq!(blocks[0]["type"], "header");
    assert!(
        blocks[0]["text"]["text"]
            .as_str()
            .unwrap()
            .contains("db-1: disk filling up")
    );
    // The webhook URL (a secret) is nowhere in the journal.
    let journal = fs_err::read_to_string(dir.path().join("j.jsonl")).unwrap();
    assert!(
        !journal.contains("/hooks/slack"),
        "the secret leaked into the journal"
    );
    assert!(
        outcome.summary.contains("full") || outcome.summary.contains("Full"),
        "{}",
        outcome.summary
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_oversized_vm_gets_a_rightsize_recommendation_sent_to_teams() {
    let svc = Service::start().await;
    let dir = tempfile::tempdir().unwrap();
    let agent = agent(&svc, &dir.path().join("j.jsonl"));
    let cpu: Vec<f64> = (0..200).map(|i| 8.0 + f64::from(i % 12)).collect();
    let mem: Vec<f64> = (0..200).map(|i| 28.0 + f64::from(i % 12)).collect();
    let body = alert(
        json!({"alertname": "VmOverprovisioned", "severity": "info", "vm": "web-7", "vm_size": "Standard_D8s_v5", "region": "eastus"}),
        "web-7 is idle most of the day",
    );
    let task = Task::from_webhook("t-cost", &body)
        .unwrap()
        .in_env("dev")
        .attach("usage", json!({"cpu_pct": cpu, "memory_pct": mem}));
    let outcome = agent.run(task).await.unwrap();

    assert_eq!(outcome.status, OutcomeStatus::Resolved, "{outcome:?}");
    assert_eq!(outcome.observations[1].status, StepStatus::Succeeded);
    let hooks = svc.state.hooks.lock().unwrap().clone();
    assert_eq!(hooks.len(), 1);
    let card = &hooks[0].1["attachments"][0];
    assert_eq!(
        card["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    assert_eq!(card["content"]["type"], "AdaptiveCard");
    assert!(
        outcome.summary.starts_with("resize: Standard_D8s_v5 -> "),
        "{}",
        outcome.summary
    );
    let kinds: Vec<String> = read_journal(dir.path().join("j.jsonl"), &super::key())
        .unwrap()
        .into_iter()
        .map(|r| r.event.kind().to_string())
        .collect();
    assert_eq!(kinds.iter().filter(|k| *k == "call").count(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_provisioning_runbook_previews_deploys_and_validates_through_the_arm_capability() {
    let svc = Service::start().await;
    svc.state
        .healthy
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let fake = FakeArm::start();
    let config = arm_config(&fake);
    let dir = tempfile::tempdir().unwrap();
    let agent = agent_with(&svc, &dir.path().join("j.jsonl"), config);
    let template = json!({"$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "resources": [{"type": "Microsoft.Storage/storageAccounts", "apiVersion": "2023-01-01",
            "name": "webstatic", "location": "westeurope", "sku": {"name": "Standard_LRS"}, "kind": "StorageV2"}]});
    let task = Task::goal("t-prov", "provision the staging web tier")
        .in_env("staging")
        .attach(
            "azure",
            json!({"subscription": "00000000-0000-0000-0000-000000000001",
            "resource_group": "web-staging", "location": "westeurope",
            "health_url": format!("http://{}/health", svc.addr)}),
        )
        .attach("template", template);
    let outcome = agent.run(task).await.unwrap();

    assert_eq!(outcome.status, OutcomeStatus::Resolved, "{outcome:?}");
    assert_eq!(outcome.planner, "runbook:provision-staging");
    assert!(
        outcome.summary.contains("deploy succeeded"),
        "{}",
        outcome.summary
    );
    let puts: Vec<String> = fake
        .requests()
        .into_iter()
        .filter(|r| r.method == "PUT")
        .map(|r| r.path)
        .collect();
    assert!(
        puts.iter()
            .any(|p| p.ends_with("/resourcegroups/web-staging")),
        "{puts:?}"
    );
    assert!(
        puts.iter()
            .any(|p| p.contains("/deployments/warden-t-prov")),
        "{puts:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_template_in_a_forbidden_region_is_denied_before_anything_is_deployed() {
    let svc = Service::start().await;
    let fake = FakeArm::start();
    let config = arm_config(&fake);
    let dir = tempfile::tempdir().unwrap();
    let agent = agent_with(&svc, &dir.path().join("j.jsonl"), config);
    let template = json!({"resources": [{"type": "Microsoft.Compute/virtualMachines", "name": "vm-1",
        "location": "eastus", "properties": {"hardwareProfile": {"vmSize": "Standard_B2s"}}}]});
    let task = Task::goal("t-region", "provision the staging web tier")
        .in_env("staging")
        .attach("azure", json!({"subscription": "s", "resource_group": "rg", "location": "westeurope", "health_url": "http://127.0.0.1:9/"}))
        .attach("template", template);
    let outcome = agent.run(task).await.unwrap();
    let preview = outcome
        .observations
        .iter()
        .find(|o| o.step_id == "preview")
        .unwrap();
    assert_eq!(preview.status, StepStatus::Denied, "{outcome:?}");
    assert!(
        preview
            .reasons
            .iter()
            .any(|r| r.contains("region `eastus`")),
        "{:?}",
        preview.reasons
    );
    assert!(
        fake.requests()
            .iter()
            .all(|r| !r.path.contains("/deployments/"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn in_prod_provisioning_waits_for_approval_and_sends_nothing_without_it() {
    let svc = Service::start().await;
    let fake = FakeArm::start();
    let config = arm_config(&fake);
    let dir = tempfile::tempdir().unwrap();
    let agent = agent_with(&svc, &dir.path().join("j.jsonl"), config); // DenyAll
    let task = Task::goal("t-prod-prov", "provision the web tier")
        .in_env("prod")
        .attach("azure", json!({"subscription": "s", "resource_group": "rg", "location": "westeurope", "health_url": "http://127.0.0.1:9/"}))
        .attach("template", json!({"resources": []}));
    let outcome = agent.run(task).await.unwrap();
    assert_eq!(
        outcome.observations[0].status,
        StepStatus::Rejected,
        "{outcome:?}"
    );
    assert!(fake.requests().iter().all(|r| r.method != "PUT"));
    let approvals = read_journal(dir.path().join("j.jsonl"), &super::key())
        .unwrap()
        .into_iter()
        .filter(|r| matches!(r.event, JournalEvent::Approval(_)))
        .count();
    assert_eq!(approvals, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn alerts_from_several_monitors_become_one_status_report_on_the_webhook() {
    let svc = Service::start().await;
    let dir = tempfile::tempdir().unwrap();
    let agent = agent(&svc, &dir.path().join("j.jsonl"));
    let alerts = json!([
        alert(json!({"alertname": "CheckoutDown", "service": "checkout", "severity": "critical"}), "checkout down"),
        {"host": "web01", "service": "HTTP", "state": "CRITICAL", "state_type": "HARD",
         "output": "HTTP CRITICAL: 503", "timestamp": 1_714_557_780},
        {"host": "web01", "service": "HTTP", "state": "CRITICAL", "state_type": "HARD",
         "output": "HTTP CRITICAL: 503", "timestamp": 1_714_557_840}
    ]);
    let task = Task::goal("t-status", "send the morning status report")
        .in_env("dev")
        .attach("alerts", alerts);
    let outcome = agent.run(task).await.unwrap();

    assert_eq!(outcome.status, OutcomeStatus::Resolved, "{outcome:?}");
    assert_eq!(outcome.planner, "runbook:hybrid-status-report");
    let report = outcome.observations[0].output.as_ref().unwrap();
    assert_eq!(
        report["alerts"], 2,
        "the repeated Nagios alert is deduplicated: {report}"
    );
    let hooks = svc.state.hooks.lock().unwrap().clone();
    assert_eq!(hooks.len(), 1);
    assert_eq!(hooks[0].1["severity"], "critical");
    assert!(
        hooks[0].1["title"]
            .as_str()
            .unwrap()
            .starts_with("Status: 2 firing"),
        "{}",
        hooks[0].1
    );
}
