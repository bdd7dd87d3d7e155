//! HTTPS to ARM and to the token endpoint: certificates checked against the
//! Mozilla roots plus `WARDEN_EXTRA_CA_FILE`, refusals reported as TLS
//! errors before any token or request is sent.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use warden_azure::{Arm, ArmError, AzureArm, Credential, backend_from_vars};
use warden_fakes::arm::FakeArm;
use warden_fakes::entra::FakeEntra;
use warden_fakes::tls::{ServerCert, TestCa, self_signed};
use warden_sandbox::ArmBackend;

const SUB: &str = "00000000-0000-0000-0000-000000000001";

/// A test CA, its PEM file, and the directory that holds it.
struct Ca {
    ca: TestCa,
    file: PathBuf,
    _dir: tempfile::TempDir,
}

impl Ca {
    fn new() -> Self {
        let ca = TestCa::new();
        let dir = tempfile::tempdir().unwrap();
        let file = ca.write_pem(dir.path());
        Self {
            ca,
            file,
            _dir: dir,
        }
    }

    fn cert(&self, names: &[&str]) -> ServerCert {
        self.ca.server_cert(names)
    }
}

/// What a host would export to reach `arm` with a client secret from `entra`.
fn vars(
    arm: &FakeArm,
    entra: &FakeEntra,
    extra_ca: Option<&Path>,
) -> BTreeMap<&'static str, String> {
    let mut vars = BTreeMap::from([
        ("AZURE_SUBSCRIPTION_ID", SUB.to_owned()),
        ("WARDEN_ARM_ENDPOINT", arm.endpoint()),
        ("AZURE_AUTHORITY_HOST", entra.authority_host()),
        ("AZURE_TENANT_ID", entra.tenant_id().to_owned()),
        ("AZURE_CLIENT_ID", entra.client_id().to_owned()),
        ("AZURE_CLIENT_SECRET", entra.client_secret().to_owned()),
    ]);
    if let Some(file) = extra_ca {
        vars.insert("WARDEN_EXTRA_CA_FILE", file.display().to_string());
    }
    vars
}

#[allow(
    clippy::result_large_err,
    reason = "passes backend_from_vars' own result through"
)]
fn backend(vars: &BTreeMap<&'static str, String>) -> Result<Arc<dyn ArmBackend>, ArmError> {
    backend_from_vars(|name| vars.get(name).cloned()).map(|b| b.expect("a subscription is set"))
}

fn far() -> Instant {
    Instant::now() + Duration::from_secs(60)
}

fn create_group() -> serde_json::Value {
    json!({
        "op": "put-resource-group",
        "subscription": SUB,
        "resource_group": "staging-web",
        "location": "westeurope",
    })
}

#[tokio::test]
async fn provisions_over_https_when_entra_and_arm_are_signed_by_the_extra_ca() {
    let ca = Ca::new();
    let cert = ca.cert(&["127.0.0.1", "localhost"]);
    let arm = FakeArm::start_tls(&cert);
    let entra = FakeEntra::for_arm_tls(&arm, &cert);
    assert!(arm.endpoint().starts_with("https://"));
    let backend = backend(&vars(&arm, &entra, Some(&ca.file))).unwrap();

    let group = backend.call(create_group(), far()).await.unwrap();
    assert_eq!(group["name"], "staging-web", "{group}");
    assert_eq!(group["provisioning_state"], "Succeeded", "{group}");
    // A deployment polls its https operation URL to the end.
    let deployed = backend
        .call(
            json!({
                "op": "deploy",
                "subscription": SUB,
                "resource_group": "staging-web",
                "name": "warden-t-1",
                "template": {
                    "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
                    "contentVersion": "1.0.0.0",
                    "resources": []
                }
            }),
            far(),
        )
        .await
        .unwrap();
    assert_eq!(deployed["state"], "succeeded", "{deployed}");

    assert_eq!(entra.requests().len(), 1, "{:?}", entra.requests());
    let requests = arm.requests();
    assert!(
        requests
            .iter()
            .any(|r| r.method == "PUT" && r.path.ends_with("/resourcegroups/staging-web")),
        "{requests:?}"
    );
    assert!(
        requests
            .iter()
            .all(|r| r.header("authorization") == Some("Bearer fake-arm-token")),
        "{requests:?}"
    );
}

#[tokio::test]
async fn a_token_endpoint_certificate_for_another_name_fails_before_the_secret_is_sent() {
    let ca = Ca::new();
    let arm = FakeArm::start_tls(&ca.cert(&["127.0.0.1"]));
    let entra = FakeEntra::for_arm_tls(&arm, &ca.cert(&["login.other.example"]));
    let backend = backend(&vars(&arm, &entra, Some(&ca.file))).unwrap();

    let err = backend.call(create_group(), far()).await.unwrap_err();
    assert!(err.contains("cannot get an arm token"), "{err}");
    assert!(err.contains("tls handshake"), "{err}");
    assert!(err.contains("certificate not valid for name"), "{err}");
    assert!(!err.contains(entra.client_secret()), "{err}");
    assert!(entra.requests().is_empty(), "{:?}", entra.requests());
    assert!(arm.requests().is_empty(), "{:?}", arm.requests());
}

#[tokio::test]
async fn an_arm_certificate_for_another_name_is_a_tls_error_naming_the_url() {
    let ca = Ca::new();
    let fake = FakeArm::start_tls(&ca.cert(&["management.other.example"]));
    let arm = AzureArm::new_with_extra_ca(
        &fake.endpoint(),
        Credential::StaticToken(fake.token().to_owned()),
        Some(&ca.file),
    )
    .unwrap();

    let err = arm.get_resource_group(SUB, "web").await.unwrap_err();
    match &err {
        ArmError::Tls { url, message } => {
            assert!(url.starts_with(&fake.endpoint()), "{url}");
            assert!(
                message.contains("certificate not valid for name"),
                "{message}"
            );
        }
        other => panic!("expected a tls error, got {other:?}"),
    }
    assert!(
        err.to_string()
            .starts_with("tls handshake with arm at https://"),
        "{err}"
    );
    assert!(fake.requests().is_empty(), "{:?}", fake.requests());
}

#[tokio::test]
async fn a_self_signed_arm_is_refused_without_the_extra_ca() {
    let fake = FakeArm::start_tls(&self_signed(&["127.0.0.1"]));
    let arm = AzureArm::new(
        &fake.endpoint(),
        Credential::StaticToken(fake.token().to_owned()),
    )
    .unwrap();

    let err = arm.list_resource_groups(SUB).await.unwrap_err();
    match &err {
        ArmError::Tls { message, .. } => {
            assert!(
                message.contains("invalid peer certificate: UnknownIssuer"),
                "{message}"
            );
        }
        other => panic!("expected a tls error, got {other:?}"),
    }
    assert!(fake.requests().is_empty(), "{:?}", fake.requests());
}

#[test]
fn an_unusable_extra_ca_file_is_named_with_its_variable() {
    let arm = FakeArm::start();
    let entra = FakeEntra::for_arm(&arm);
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pem");
    let mut vars = vars(&arm, &entra, Some(&missing));
    match backend(&vars) {
        Err(ArmError::Environment { variable, message }) => {
            assert_eq!(variable, "WARDEN_EXTRA_CA_FILE");
            assert!(message.contains("missing.pem"), "{message}");
        }
        Err(other) => panic!("expected an environment error, got {other:?}"),
        Ok(_) => panic!("a missing CA file must be refused"),
    }

    let not_pem = dir.path().join("not-a-cert.pem");
    fs_err::write(&not_pem, "just text\n").unwrap();
    vars.insert("WARDEN_EXTRA_CA_FILE", not_pem.display().to_string());
    assert!(backend(&vars).is_err());
    match AzureArm::new_with_extra_ca(
        "https://management.azure.com",
        Credential::StaticToken("t".into()),
        Some(&not_pem),
    ) {
        Err(ArmError::ExtraCaFile { path, message }) => {
            assert_eq!(path, not_pem);
            assert!(
                message.contains("contains no PEM `CERTIFICATE` block"),
                "{message}"
            );
        }
        other => panic!("expected an extra CA file error, got {other:?}"),
    }
}
