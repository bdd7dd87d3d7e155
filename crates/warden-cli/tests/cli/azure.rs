//! `warden run` provisions through the ARM capability configured from the
//! environment, as `examples/runbooks/provision-staging.yaml` documents,
//! against the loopback ARM and Entra ID fakes (real wire formats).

use std::path::Path;
use std::process::Command;

use warden_fakes::arm::FakeArm;
use warden_fakes::entra::FakeEntra;

use crate::support::{bundle, loopback, plugin_dir, run, warden};

fn azure_env<'a>(cmd: &'a mut Command, arm: &FakeArm, entra: &FakeEntra) -> &'a mut Command {
    for v in [
        "WARDEN_LLM_BASE_URL",
        "WARDEN_LLM_MODEL",
        "OPENAI_API_KEY",
        "AZURE_OPENAI_ENDPOINT",
    ] {
        cmd.env_remove(v);
    }
    cmd.env(
        "AZURE_SUBSCRIPTION_ID",
        "00000000-0000-0000-0000-000000000001",
    )
    .env("WARDEN_ARM_ENDPOINT", arm.endpoint())
    .env("AZURE_AUTHORITY_HOST", entra.authority_host())
    .env("AZURE_TENANT_ID", entra.tenant_id())
    .env("AZURE_CLIENT_ID", entra.client_id())
    .env("AZURE_CLIENT_SECRET", entra.client_secret())
    .env("NO_PROXY", "127.0.0.1,localhost")
}

fn attachments(dir: &Path, health: u16, location: &str) -> (String, String) {
    let azure = dir.join("azure.json");
    fs_err::write(
        &azure,
        serde_json::json!({"subscription": "00000000-0000-0000-0000-000000000001",
            "resource_group": "web-staging", "location": "westeurope",
            "health_url": format!("http://127.0.0.1:{health}/health")})
        .to_string(),
    )
    .unwrap();
    let template = dir.join("web-tier.json");
    fs_err::write(
        &template,
        serde_json::json!({"$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
            "contentVersion": "1.0.0.0",
            "resources": [{"type": "Microsoft.Storage/storageAccounts", "apiVersion": "2023-01-01",
                "name": "webstatic", "location": location, "sku": {"name": "Standard_LRS"}, "kind": "StorageV2"}]})
        .to_string(),
    )
    .unwrap();
    (
        format!("azure={}", azure.display()),
        format!("template={}", template.display()),
    )
}

fn provision(
    plugins: &Path,
    policy: &Path,
    journal: &Path,
    azure: &str,
    template: &str,
    extra: &[&str],
) -> Command {
    let mut cmd = warden(plugins);
    cmd.args([
        "run",
        "--goal",
        "provision the staging web tier",
        "--attach",
        azure,
        "--attach",
        template,
        "--policy",
    ])
    .arg(policy)
    .arg("--journal")
    .arg(journal)
    .args(extra);
    cmd
}

fn deployment_puts(arm: &FakeArm) -> usize {
    arm.requests()
        .iter()
        .filter(|r| r.method == "PUT" && r.path.contains("/deployments/"))
        .count()
}

#[test]
fn the_provisioning_runbook_runs_from_the_cli_against_arm() {
    let plugins = plugin_dir();
    let tmp = tempfile::tempdir().unwrap();
    let lo = serde_json::json!(["127.0.0.0/8"]);
    let policy = bundle(
        tmp.path(),
        serde_json::json!({"network": {"allowed_private_cidrs": {"staging": lo, "prod": lo}}}),
    );
    let journal = tmp.path().join("j/journal.jsonl");
    let server = loopback();
    let health = server.port();
    let (azure, template) = attachments(tmp.path(), health, "westeurope");
    let arm = FakeArm::start();
    let entra = FakeEntra::for_arm(&arm);

    // Staging: what-if, deploy, validate.
    let (out, stdout, stderr) = run(azure_env(
        &mut provision(
            plugins.path(),
            &policy,
            &journal,
            &azure,
            &template,
            &["--env", "staging"],
        ),
        &arm,
        &entra,
    ));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("deploy succeeded"), "{stdout}");
    assert_eq!(deployment_puts(&arm), 1);

    // Prod, nobody to approve: nothing is deployed.
    let (out, stdout, _) = run(azure_env(
        &mut provision(
            plugins.path(),
            &policy,
            &journal,
            &azure,
            &template,
            &["--env", "prod"],
        ),
        &arm,
        &entra,
    ));
    assert!(!out.status.success());
    assert!(stdout.contains("rejected"), "{stdout}");
    assert_eq!(deployment_puts(&arm), 1);

    // Prod, approved by the OS user on behalf of alice: deployed.
    let (out, stdout, stderr) = run(azure_env(
        &mut provision(
            plugins.path(),
            &policy,
            &journal,
            &azure,
            &template,
            &["--env", "prod", "--approve", "--principal", "alice"],
        ),
        &arm,
        &entra,
    ));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert_eq!(deployment_puts(&arm), 2);
}

#[test]
fn a_template_in_a_forbidden_region_is_denied_from_the_cli() {
    let plugins = plugin_dir();
    let tmp = tempfile::tempdir().unwrap();
    let lo = serde_json::json!(["127.0.0.0/8"]);
    let policy = bundle(
        tmp.path(),
        serde_json::json!({"network": {"allowed_private_cidrs": {"staging": lo}}}),
    );
    let (azure, template) = attachments(tmp.path(), 9, "eastus");
    let arm = FakeArm::start();
    let entra = FakeEntra::for_arm(&arm);
    let (out, stdout, _) = run(azure_env(
        &mut provision(
            plugins.path(),
            &policy,
            &tmp.path().join("j/journal.jsonl"),
            &azure,
            &template,
            &["--env", "staging"],
        ),
        &arm,
        &entra,
    ));
    assert!(!out.status.success());
    assert!(stdout.contains("eastus"), "{stdout}");
    assert_eq!(deployment_puts(&arm), 0);
}
