//! `backend_from_vars`: the ARM capability configured from environment
//! variables, authenticating at the Entra ID fake before calling the ARM fake.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use warden_azure::{ArmError, backend_from_vars};
use warden_fakes::arm::FakeArm;
use warden_fakes::entra::{FEDERATED_TOKEN, FakeEntra};
use warden_sandbox::ArmBackend;

const SUB: &str = "00000000-0000-0000-0000-000000000001";

/// The variables a host would export to run against `arm` with a client
/// secret issued by `entra`.
fn vars(arm: &FakeArm, entra: &FakeEntra) -> BTreeMap<&'static str, String> {
    BTreeMap::from([
        ("AZURE_SUBSCRIPTION_ID", SUB.to_owned()),
        ("WARDEN_ARM_ENDPOINT", arm.endpoint()),
        ("AZURE_AUTHORITY_HOST", entra.authority_host()),
        ("AZURE_TENANT_ID", entra.tenant_id().to_owned()),
        ("AZURE_CLIENT_ID", entra.client_id().to_owned()),
        ("AZURE_CLIENT_SECRET", entra.client_secret().to_owned()),
    ])
}

#[allow(
    clippy::result_large_err,
    reason = "passes backend_from_vars' own result through"
)]
fn backend(vars: &BTreeMap<&'static str, String>) -> Result<Option<Arc<dyn ArmBackend>>, ArmError> {
    backend_from_vars(|name| vars.get(name).cloned())
}

fn configured(vars: &BTreeMap<&'static str, String>) -> Arc<dyn ArmBackend> {
    backend(vars)
        .expect("the variables are valid")
        .expect("a subscription turns the capability on")
}

fn refused(vars: &BTreeMap<&'static str, String>) -> (String, String) {
    match backend(vars) {
        Err(ArmError::Environment { variable, message }) => (variable, message),
        Err(other) => panic!("expected an environment error, got {other:?}"),
        Ok(arm) => panic!(
            "expected an environment error, got a backend: {}",
            arm.is_some()
        ),
    }
}

fn far() -> Instant {
    Instant::now() + Duration::from_secs(60)
}

fn create_group() -> Value {
    json!({
        "op": "put-resource-group",
        "subscription": SUB,
        "resource_group": "staging-web",
        "location": "westeurope",
        "tags": {"env": "staging", "owner": "warden"}
    })
}

fn deploy() -> Value {
    json!({
        "op": "deploy",
        "subscription": SUB,
        "resource_group": "staging-web",
        "name": "warden-t-1",
        "template": {
            "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
            "contentVersion": "1.0.0.0",
            "resources": [{
                "type": "Microsoft.Web/serverfarms",
                "apiVersion": "2022-09-01",
                "name": "staging-plan",
                "location": "westeurope",
                "sku": {"name": "B1"}
            }]
        }
    })
}

#[tokio::test]
async fn provisions_a_group_and_a_deployment_with_a_token_from_entra() {
    let arm = FakeArm::start_with_token("entra-issued-token");
    let entra = FakeEntra::for_arm(&arm);
    let backend = configured(&vars(&arm, &entra));

    let group = backend.call(create_group(), far()).await.unwrap();
    assert_eq!(group["name"], "staging-web", "{group}");
    assert_eq!(group["provisioning_state"], "Succeeded", "{group}");
    assert_eq!(group["tags"]["env"], "staging", "{group}");
    let deployed = backend.call(deploy(), far()).await.unwrap();
    assert_eq!(deployed["state"], "succeeded", "{deployed}");

    // One client-credentials exchange, in the form body, for the ARM scope;
    // the token is cached for every later call.
    let tokens = entra.requests();
    assert_eq!(tokens.len(), 1, "{tokens:?}");
    let token = &tokens[0];
    assert_eq!(token.method, "POST");
    assert_eq!(
        token.path,
        format!("/{}/oauth2/v2.0/token", entra.tenant_id())
    );
    assert_eq!(
        token.content_type.as_deref(),
        Some("application/x-www-form-urlencoded")
    );
    assert!(!token.has_authorization);
    assert_eq!(token.form["grant_type"], "client_credentials");
    assert_eq!(token.form["client_id"], entra.client_id());
    assert_eq!(token.form["client_secret"], entra.client_secret());
    assert_eq!(token.form["scope"], format!("{}/.default", arm.endpoint()));

    let requests = arm.requests();
    assert!(
        requests
            .iter()
            .any(|r| r.method == "PUT" && r.path.ends_with("/deployments/warden-t-1")),
        "{requests:?}"
    );
    for request in &requests {
        assert_eq!(
            request.header("authorization"),
            Some("Bearer entra-issued-token"),
            "{} {}",
            request.method,
            request.path
        );
    }
}

#[tokio::test]
async fn a_wrong_client_secret_fails_authentication_before_arm_is_called() {
    let arm = FakeArm::start();
    let entra = FakeEntra::for_arm(&arm);
    let mut vars = vars(&arm, &entra);
    vars.insert("AZURE_CLIENT_SECRET", "stale-secret-8f3a".into());
    let backend = configured(&vars);

    let err = backend.call(create_group(), far()).await.unwrap_err();
    assert!(
        err.contains("authentication with the client secret in AZURE_CLIENT_SECRET"),
        "{err}"
    );
    assert!(err.contains(entra.client_id()), "{err}");
    // Entra's OAuth error body was read, and its reason kept.
    assert!(
        err.contains("the token endpoint answered invalid_client: AADSTS7000215: Invalid client secret provided"),
        "{err}"
    );
    assert!(!err.contains("stale-secret-8f3a"), "{err}");

    let tokens = entra.requests();
    assert_eq!(tokens.len(), 1, "{tokens:?}");
    assert_eq!(tokens[0].form["client_secret"], "stale-secret-8f3a");
    assert!(
        arm.requests().is_empty(),
        "no request may reach arm without a token"
    );
}

#[tokio::test]
async fn exchanges_a_federated_token_file_for_workload_identity() {
    let arm = FakeArm::start();
    let entra = FakeEntra::for_arm(&arm);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("azure-identity-token");
    fs_err::write(&file, format!("{FEDERATED_TOKEN}\n")).unwrap();
    let mut vars = vars(&arm, &entra);
    vars.remove("AZURE_CLIENT_SECRET");
    vars.insert(
        "AZURE_FEDERATED_TOKEN_FILE",
        file.to_string_lossy().into_owned(),
    );
    let backend = configured(&vars);

    let group = backend.call(create_group(), far()).await.unwrap();
    assert_eq!(group["name"], "staging-web", "{group}");
    let tokens = entra.requests();
    assert_eq!(tokens.len(), 1, "{tokens:?}");
    assert_eq!(tokens[0].form["client_assertion"], FEDERATED_TOKEN);
    assert!(!tokens[0].form.contains_key("client_secret"));
    assert_eq!(
        arm.requests()[0].header("authorization"),
        Some(format!("Bearer {}", arm.token()).as_str())
    );
}

#[test]
fn is_off_when_the_subscription_is_unset_or_empty() {
    let arm = FakeArm::start();
    let entra = FakeEntra::for_arm(&arm);
    let mut vars = vars(&arm, &entra);
    vars.remove("AZURE_SUBSCRIPTION_ID");
    assert!(backend(&vars).unwrap().is_none());
    vars.insert("AZURE_SUBSCRIPTION_ID", "  ".into());
    assert!(backend(&vars).unwrap().is_none());
    assert!(backend_from_vars(|_| None).unwrap().is_none());
    assert!(entra.requests().is_empty() && arm.requests().is_empty());
}

#[test]
fn turns_on_without_an_app_credential_for_managed_identity_or_the_cli() {
    // Nothing is fetched until the first call, so this stays offline.
    let vars = BTreeMap::from([("AZURE_SUBSCRIPTION_ID", SUB.to_owned())]);
    assert!(backend(&vars).unwrap().is_some());
}

#[test]
fn names_the_variable_of_a_malformed_or_clear_text_url() {
    let arm = FakeArm::start();
    let entra = FakeEntra::for_arm(&arm);
    for (variable, value) in [
        ("WARDEN_ARM_ENDPOINT", "not a url"),
        ("WARDEN_ARM_ENDPOINT", "mailto:ops@example.com"),
        ("WARDEN_ARM_ENDPOINT", "http://arm.example.com"),
        ("AZURE_AUTHORITY_HOST", "login.microsoftonline.com"),
        ("AZURE_AUTHORITY_HOST", "http://10.0.0.5:8080"),
    ] {
        let mut vars = vars(&arm, &entra);
        vars.insert(variable, value.into());
        let (named, message) = refused(&vars);
        assert_eq!(named, variable, "{value}: {message}");
    }
    let mut vars = vars(&arm, &entra);
    vars.insert("WARDEN_ARM_ENDPOINT", "http://arm.example.com".into());
    let err = backend(&vars).err().unwrap().to_string();
    assert!(
        err.starts_with("environment variable WARDEN_ARM_ENDPOINT: "),
        "{err}"
    );
    assert!(err.contains("https"), "{err}");
}

#[test]
fn accepts_plain_http_only_on_loopback_hosts() {
    let arm = FakeArm::start();
    let entra = FakeEntra::for_arm(&arm);
    for endpoint in ["http://127.0.0.1:9", "http://[::1]:9", "http://localhost:9"] {
        let mut vars = vars(&arm, &entra);
        vars.insert("WARDEN_ARM_ENDPOINT", endpoint.into());
        assert!(backend(&vars).unwrap().is_some(), "{endpoint}");
    }
}

#[test]
fn names_the_missing_app_variable_when_a_credential_is_half_set() {
    let arm = FakeArm::start();
    let entra = FakeEntra::for_arm(&arm);
    for missing in ["AZURE_TENANT_ID", "AZURE_CLIENT_ID"] {
        let mut vars = vars(&arm, &entra);
        vars.remove(missing);
        let (named, message) = refused(&vars);
        assert_eq!(named, missing);
        assert!(message.contains("AZURE_CLIENT_SECRET"), "{message}");
    }

    let mut vars = vars(&arm, &entra);
    vars.remove("AZURE_CLIENT_SECRET");
    vars.remove("AZURE_TENANT_ID");
    vars.insert("AZURE_FEDERATED_TOKEN_FILE", "/var/run/token".into());
    let (named, message) = refused(&vars);
    assert_eq!(named, "AZURE_TENANT_ID");
    assert!(message.contains("AZURE_FEDERATED_TOKEN_FILE"), "{message}");
}

#[test]
fn names_an_unreadable_federated_token_file() {
    let arm = FakeArm::start();
    let entra = FakeEntra::for_arm(&arm);
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-token");
    let mut vars = vars(&arm, &entra);
    vars.remove("AZURE_CLIENT_SECRET");
    vars.insert(
        "AZURE_FEDERATED_TOKEN_FILE",
        missing.to_string_lossy().into_owned(),
    );
    let (named, message) = refused(&vars);
    assert_eq!(named, "AZURE_FEDERATED_TOKEN_FILE");
    assert!(message.contains("no-such-token"), "{message}");
}
