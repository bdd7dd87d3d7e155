//! The shipped `azure-deploy` plugin in a sandbox whose `arm` import is
//! served by `AzureBackend` over `AzureArm`, against the loopback ARM fake.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers outside #[test] fns should fail loudly too"
)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use warden_azure::{Arm, AzureArm, AzureBackend, Credential};
use warden_fakes::arm::FakeArm;
use warden_sandbox::{CallOutput, Plugin, Sandbox, SandboxConfig, SandboxError, ToolErrorKind};
use warden_types::{CallContext, CapabilityRequest, CapabilityUse, GateDecision};

const SUB: &str = "00000000-0000-0000-0000-000000000001";

fn arm(fake: &FakeArm) -> AzureArm {
    AzureArm::new(
        &fake.endpoint(),
        Credential::StaticToken(fake.token().to_owned()),
    )
    .expect("fake endpoint is a valid url")
    .with_default_poll_interval(Duration::ZERO)
}

/// The plugin in a sandbox with `timeout`, its ARM calls going to `fake`;
/// the resource group `web-rg` exists.
async fn plugin(fake: &FakeArm, timeout: Duration) -> Plugin {
    let client = arm(fake);
    client
        .put_resource_group(SUB, "web-rg", "eastus", BTreeMap::new())
        .await
        .unwrap();
    let mut config = SandboxConfig::default();
    config
        .timeout(timeout)
        .arm(Arc::new(AzureBackend::new(Arc::new(client))));
    let sandbox = Sandbox::new(&config).unwrap();
    sandbox
        .load_file(test_plugins_artifacts::PLUGIN_AZURE_DEPLOY)
        .unwrap()
}

fn allow_all() -> Arc<dyn warden_types::CapabilityGate> {
    Arc::new(|_: &CapabilityRequest| GateDecision::Allow)
}

fn ctx(dry_run: bool) -> CallContext {
    CallContext {
        task_id: "t-1".into(),
        step_id: "s-1".into(),
        dry_run,
        idempotency_key: None,
    }
}

fn deploy(name: &str) -> Value {
    json!({
        "operation": "deploy",
        "subscription": SUB,
        "resource_group": "web-rg",
        "deployment_name": name,
        "template": {
            "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
            "contentVersion": "1.0.0.0",
            "resources": [{
                "type": "Microsoft.Storage/storageAccounts",
                "apiVersion": "2023-01-01",
                "name": "webdata",
                "location": "eastus",
                "sku": {"name": "Standard_LRS"}
            }]
        }
    })
}

fn puts_of_deployments(fake: &FakeArm) -> usize {
    fake.requests()
        .iter()
        .filter(|r| r.method == "PUT" && r.path.contains("/deployments/"))
        .count()
}

async fn call(plugin: &Plugin, dry_run: bool, input: &Value) -> Result<CallOutput, SandboxError> {
    plugin.invoke(&ctx(dry_run), input, allow_all()).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deployment_succeeds_through_the_host_credential() {
    let fake = FakeArm::start();
    let plugin = plugin(&fake, Duration::from_secs(30)).await;
    let out = call(&plugin, false, &deploy("release-1")).await.unwrap();
    assert_eq!(out.output["state"], "succeeded", "{}", out.output);
    assert_eq!(out.output["sent"], "deploy");
    assert_eq!(puts_of_deployments(&fake), 1);
    // The plugin never saw the token, but ARM got it from the host.
    let put = fake
        .requests()
        .into_iter()
        .find(|r| r.method == "PUT" && r.path.contains("/deployments/release-1"))
        .unwrap();
    assert_eq!(
        put.header("authorization"),
        Some(format!("Bearer {}", fake.token()).as_str())
    );
    assert!(!out.output.to_string().contains(fake.token()));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_deployment_surfaces_the_arm_error_code() {
    let fake = FakeArm::start();
    fake.fail_deployment("release-2", "QuotaExceeded", "no cores left in eastus");
    let plugin = plugin(&fake, Duration::from_secs(30)).await;
    let err = call(&plugin, false, &deploy("release-2"))
        .await
        .unwrap_err();
    let SandboxError::Tool { kind, message, .. } = err else {
        panic!("a failed deployment must be a tool error: {err}");
    };
    assert_eq!(kind, ToolErrorKind::Failed);
    assert!(message.contains("QuotaExceeded"), "{message}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deployment_still_running_at_the_deadline_reports_its_operation_url() {
    let fake = FakeArm::start();
    fake.slow_deployment("release-3", u32::MAX);
    let plugin = plugin(&fake, Duration::from_millis(1500)).await;
    let out = call(&plugin, false, &deploy("release-3")).await.unwrap();
    assert_eq!(out.output["state"], "running", "{}", out.output);
    let url = out.output["operation_url"].as_str().unwrap();
    assert!(url.contains("/deployments/release-3/"), "{url}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_what_if_reports_the_predicted_changes() {
    let fake = FakeArm::start();
    let plugin = plugin(&fake, Duration::from_secs(30)).await;
    let mut input = deploy("release-4");
    input["operation"] = "what-if".into();
    let out = call(&plugin, false, &input).await.unwrap();
    assert_eq!(out.output["state"], "succeeded");
    let changes = out.output["result"]["changes"].as_array().unwrap();
    assert!(!changes.is_empty(), "{}", out.output);
    assert_eq!(puts_of_deployments(&fake), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_gate_denying_arm_stops_the_call_before_it_reaches_azure() {
    let fake = FakeArm::start();
    let plugin = plugin(&fake, Duration::from_secs(30)).await;
    let before = fake.requests().len();
    let gate = Arc::new(|r: &CapabilityRequest| match &r.capability {
        CapabilityUse::Arm { operation, .. } => {
            GateDecision::deny(format!("no `{operation}` during the change freeze"))
        }
        _ => GateDecision::Allow,
    });
    let err = plugin
        .invoke(&ctx(false), &deploy("release-5"), gate)
        .await
        .unwrap_err();
    let SandboxError::Tool { kind, message, .. } = err else {
        panic!("a denial must be a tool error: {err}");
    };
    assert_eq!(kind, ToolErrorKind::Denied);
    assert!(message.contains("change freeze"), "{message}");
    assert_eq!(fake.requests().len(), before);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dry_run_deploy_runs_a_what_if_and_puts_nothing() {
    let fake = FakeArm::start();
    let plugin = plugin(&fake, Duration::from_secs(30)).await;
    let out = call(&plugin, true, &deploy("release-6")).await.unwrap();
    assert_eq!(out.output["state"], "planned", "{}", out.output);
    assert_eq!(out.output["sent"], "what-if");
    assert!(out.output["result"]["changes"].is_array());
    assert_eq!(puts_of_deployments(&fake), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dry_run_group_deletion_is_reported_not_sent() {
    let fake = FakeArm::start();
    let plugin = plugin(&fake, Duration::from_secs(30)).await;
    let input =
        json!({"operation": "delete-group", "subscription": SUB, "resource_group": "web-rg"});
    let out = call(&plugin, true, &input).await.unwrap();
    assert_eq!(out.output["state"], "planned");
    assert_eq!(out.output["would_send"]["op"], "delete-resource-group");
    assert!(!fake.requests().iter().any(|r| r.method == "DELETE"));
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_backend_the_plugin_is_told_azure_is_not_configured() {
    let sandbox = Sandbox::new(&SandboxConfig::default()).unwrap();
    let plugin = sandbox
        .load_file(test_plugins_artifacts::PLUGIN_AZURE_DEPLOY)
        .unwrap();
    let input = json!({"operation": "list-groups", "subscription": SUB});
    let err = call(&plugin, false, &input).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("no Azure capability is configured on this host"),
        "{err}"
    );
}
