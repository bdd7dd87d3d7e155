//! `AzureArm` against the loopback ARM fake.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use warden_azure::{
    Arm, ArmError, AzureArm, Credential, DeploymentMode, DeploymentSpec, OperationState,
};
use warden_fakes::arm::FakeArm;

const SUB: &str = "00000000-0000-0000-0000-000000000001";

fn client(fake: &FakeArm) -> AzureArm {
    AzureArm::new(
        &fake.endpoint(),
        Credential::StaticToken(fake.token().to_owned()),
    )
    .expect("fake endpoint is a valid url")
    .with_default_poll_interval(Duration::ZERO)
}

fn far() -> Instant {
    Instant::now() + Duration::from_secs(120)
}

fn storage(name: &str, sku: &str) -> Value {
    json!({
        "type": "Microsoft.Storage/storageAccounts",
        "apiVersion": "2023-01-01",
        "name": name,
        "location": "eastus",
        "sku": { "name": sku }
    })
}

fn template(resources: Vec<Value>) -> DeploymentSpec {
    DeploymentSpec::new(json!({
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "resources": resources
    }))
}

async fn group(arm: &AzureArm, name: &str) {
    arm.put_resource_group(SUB, name, "eastus", BTreeMap::new())
        .await
        .expect("create resource group");
}

#[tokio::test]
async fn creates_a_resource_group_with_tags_and_reads_it_back() {
    let fake = FakeArm::start();
    let arm = client(&fake);
    let tags = BTreeMap::from([("owner".to_owned(), "warden".to_owned())]);
    let created = arm
        .put_resource_group(SUB, "web-rg", "eastus", tags.clone())
        .await
        .unwrap();
    assert_eq!(created.name, "web-rg");
    assert_eq!(
        created.id,
        format!("/subscriptions/{SUB}/resourceGroups/web-rg")
    );
    assert_eq!(created.provisioning_state, "Succeeded");
    assert_eq!(created.tags, tags);

    let read = arm
        .get_resource_group(SUB, "web-rg")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read, created);
    let listed = arm.list_resource_groups(SUB).await.unwrap();
    assert_eq!(listed, vec![created]);

    let put = &fake.requests()[0];
    assert_eq!(put.method, "PUT");
    assert_eq!(
        put.path,
        format!("/subscriptions/{SUB}/resourcegroups/web-rg")
    );
    assert_eq!(put.query, "api-version=2021-04-01");
    assert_eq!(
        put.body,
        json!({ "location": "eastus", "tags": { "owner": "warden" } })
    );
}

#[tokio::test]
async fn deploys_a_template_and_polls_until_succeeded() {
    let fake = FakeArm::start();
    let arm = client(&fake);
    group(&arm, "web-rg").await;
    let spec = template(vec![storage("webstore", "Standard_LRS")]);

    let state = arm
        .deploy(SUB, "web-rg", "release-1", &spec, far())
        .await
        .unwrap();
    let OperationState::Succeeded { resource } = state else {
        panic!("expected success, got {state:?}");
    };
    assert_eq!(resource["properties"]["provisioningState"], "Succeeded");
    assert_eq!(resource["name"], "release-1");

    let polls: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|r| r.path.contains("/operationStatuses/"))
        .collect();
    assert_eq!(
        polls.len(),
        2,
        "Accepted -> Running -> Succeeded takes two polls"
    );
    let put = fake
        .requests()
        .into_iter()
        .find(|r| r.method == "PUT" && r.path.ends_with("/release-1"))
        .unwrap();
    assert_eq!(put.body["properties"]["mode"], "Incremental");
    assert_eq!(
        put.body["properties"]["template"]["resources"][0]["name"],
        "webstore"
    );

    let deployment = arm
        .get_deployment(SUB, "web-rg", "release-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(deployment.provisioning_state, "Succeeded");
    assert_eq!(deployment.mode, Some(DeploymentMode::Incremental));
    assert_eq!(
        deployment.output_resources,
        vec![format!(
            "/subscriptions/{SUB}/resourceGroups/web-rg/providers/Microsoft.Storage/storageAccounts/webstore"
        )]
    );
    let listed = arm.list_deployments(SUB, "web-rg").await.unwrap();
    assert_eq!(listed, vec![deployment]);
}

#[tokio::test]
async fn reports_a_failed_deployment_with_the_arm_error_code_and_message() {
    let fake = FakeArm::start();
    fake.fail_deployment(
        "release-2",
        "StorageAccountAlreadyTaken",
        "The storage account named webstore is already taken.",
    );
    let arm = client(&fake);
    group(&arm, "web-rg").await;

    let state = arm
        .deploy(
            SUB,
            "web-rg",
            "release-2",
            &template(vec![storage("webstore", "Standard_LRS")]),
            far(),
        )
        .await
        .unwrap();
    let OperationState::Failed {
        code,
        message,
        details,
    } = state
    else {
        panic!("expected failure, got {state:?}");
    };
    assert_eq!(code, "DeploymentFailed");
    assert!(
        message.contains("At least one resource deployment operation failed"),
        "{message}"
    );
    assert_eq!(details.len(), 1);
    assert_eq!(details[0].code, "StorageAccountAlreadyTaken");
    assert_eq!(
        details[0].message,
        "The storage account named webstore is already taken."
    );

    let deployment = arm
        .get_deployment(SUB, "web-rg", "release-2")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(deployment.provisioning_state, "Failed");
    assert_eq!(
        deployment.error.unwrap().details[0].code,
        "StorageAccountAlreadyTaken"
    );
}

#[tokio::test]
async fn retries_throttled_requests_after_retry_after() {
    let fake = FakeArm::start();
    fake.throttle_next(2, 0);
    let arm = client(&fake);
    group(&arm, "web-rg").await;

    let statuses: Vec<_> = fake.requests().iter().map(|r| r.method.clone()).collect();
    assert_eq!(
        statuses,
        ["PUT", "PUT", "PUT"],
        "two throttled attempts, then success"
    );
    assert!(
        arm.get_resource_group(SUB, "web-rg")
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn gives_up_on_throttling_after_the_retry_bound() {
    let fake = FakeArm::start();
    fake.throttle_next(10, 0);
    let arm = client(&fake).with_max_throttle_retries(2);

    let err = arm.get_resource_group(SUB, "web-rg").await.unwrap_err();
    assert!(
        matches!(err, ArmError::Throttled { attempts: 3, .. }),
        "{err:?}"
    );
    assert_eq!(fake.requests().len(), 3);
}

#[tokio::test]
async fn caps_a_long_retry_after_from_a_throttled_answer() {
    let fake = FakeArm::start();
    fake.throttle_next(1, 3600);
    let arm = client(&fake).with_max_retry_after(Duration::ZERO);

    assert_eq!(arm.get_resource_group(SUB, "web-rg").await.unwrap(), None);
    assert_eq!(
        fake.requests().len(),
        2,
        "one throttled attempt, then the real answer"
    );
}

#[tokio::test]
async fn stops_retrying_when_retry_after_would_pass_the_deadline() {
    let fake = FakeArm::start();
    let arm = client(&fake);
    group(&arm, "web-rg").await;
    fake.throttle_next(1, 60);

    let deadline = Instant::now() + Duration::from_secs(5);
    let err = arm
        .deploy(SUB, "web-rg", "release-9", &template(vec![]), deadline)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ArmError::Throttled { attempts: 1, retry_after, .. } if *retry_after == Duration::from_secs(60)),
        "{err:?}"
    );
    assert_eq!(
        arm.get_deployment(SUB, "web-rg", "release-9")
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn reports_running_with_the_operation_url_when_the_deadline_passes() {
    let fake = FakeArm::start();
    fake.slow_deployment("release-3", u32::MAX);
    let arm = client(&fake);
    group(&arm, "web-rg").await;

    let deadline = Instant::now() + Duration::from_millis(50);
    let state = arm
        .deploy(SUB, "web-rg", "release-3", &template(vec![]), deadline)
        .await
        .unwrap();
    let OperationState::Running {
        operation_url,
        last_status,
    } = state
    else {
        panic!("a deadline must never look like success: {state:?}");
    };
    assert!(
        operation_url.starts_with(&fake.endpoint()),
        "{operation_url}"
    );
    assert!(
        operation_url.contains("/deployments/release-3/operationStatuses/"),
        "{operation_url}"
    );
    assert!(
        matches!(last_status.as_str(), "Accepted" | "Running"),
        "{last_status}"
    );
    let deployment = arm
        .get_deployment(SUB, "web-rg", "release-3")
        .await
        .unwrap()
        .unwrap();
    assert_ne!(deployment.provisioning_state, "Succeeded");
}

#[tokio::test]
async fn reports_running_at_once_when_the_deadline_already_passed() {
    let fake = FakeArm::start();
    let arm = client(&fake);
    group(&arm, "web-rg").await;

    let state = arm
        .deploy(
            SUB,
            "web-rg",
            "release-4",
            &template(vec![]),
            Instant::now(),
        )
        .await
        .unwrap();
    assert!(
        matches!(&state, OperationState::Running { last_status, .. } if last_status == "Accepted"),
        "{state:?}"
    );
    assert!(!state.is_succeeded());
}

#[tokio::test]
async fn what_if_predicts_creates_modifications_and_complete_mode_deletes() {
    let fake = FakeArm::start();
    let arm = client(&fake);
    group(&arm, "web-rg").await;

    let first = template(vec![
        storage("webstore", "Standard_LRS"),
        storage("logstore", "Standard_LRS"),
    ]);
    let preview = arm.what_if(SUB, "web-rg", &first, far()).await.unwrap();
    let kinds: Vec<_> = preview
        .changes
        .iter()
        .map(|c| c.change_type.as_str())
        .collect();
    assert_eq!(kinds, ["Create", "Create"]);
    assert!(
        arm.deploy(SUB, "web-rg", "release-5", &first, far())
            .await
            .unwrap()
            .is_succeeded()
    );

    let second =
        template(vec![storage("webstore", "Premium_LRS")]).with_mode(DeploymentMode::Complete);
    let preview = arm.what_if(SUB, "web-rg", &second, far()).await.unwrap();
    let by_kind: BTreeMap<_, _> = preview
        .changes
        .iter()
        .map(|c| (c.change_type.as_str(), c.resource_id.as_str()))
        .collect();
    assert!(by_kind["Modify"].ends_with("/storageAccounts/webstore"));
    assert!(by_kind["Delete"].ends_with("/storageAccounts/logstore"));
    let modify = preview
        .changes
        .iter()
        .find(|c| c.change_type == "Modify")
        .unwrap();
    assert_eq!(modify.delta[0].path, "sku");
    assert_eq!(
        modify.delta[0].after,
        Some(json!({ "name": "Premium_LRS" }))
    );

    let post = fake
        .requests()
        .into_iter()
        .find(|r| r.method == "POST")
        .unwrap();
    assert!(post.path.ends_with("/whatIf"), "{}", post.path);
    assert!(
        fake.requests()
            .iter()
            .any(|r| r.path.contains("/operationresults/"))
    );
}

#[tokio::test]
async fn deletes_a_resource_group_through_its_location_operation() {
    let fake = FakeArm::start();
    let arm = client(&fake);
    group(&arm, "doomed-rg").await;

    let state = arm
        .delete_resource_group(SUB, "doomed-rg", far())
        .await
        .unwrap();
    assert!(state.is_succeeded(), "{state:?}");
    let polls = fake
        .requests()
        .iter()
        .filter(|r| r.path.contains("/operationresults/"))
        .count();
    assert_eq!(polls, 2, "one 202 poll, then the final 200");
    assert_eq!(
        arm.get_resource_group(SUB, "doomed-rg").await.unwrap(),
        None
    );
    assert!(arm.list_resource_groups(SUB).await.unwrap().is_empty());
}

#[tokio::test]
async fn deletes_a_deployment_record() {
    let fake = FakeArm::start();
    let arm = client(&fake);
    group(&arm, "web-rg").await;
    arm.deploy(SUB, "web-rg", "release-6", &template(vec![]), far())
        .await
        .unwrap();

    let state = arm
        .delete_deployment(SUB, "web-rg", "release-6", far())
        .await
        .unwrap();
    assert!(state.is_succeeded(), "{state:?}");
    assert_eq!(
        arm.get_deployment(SUB, "web-rg", "release-6")
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn returns_none_for_missing_resource_groups_and_deployments() {
    let fake = FakeArm::start();
    let arm = client(&fake);
    assert_eq!(arm.get_resource_group(SUB, "ghost-rg").await.unwrap(), None);
    assert_eq!(
        arm.get_deployment(SUB, "ghost-rg", "ghost").await.unwrap(),
        None
    );
    group(&arm, "web-rg").await;
    assert_eq!(
        arm.get_deployment(SUB, "web-rg", "ghost").await.unwrap(),
        None
    );
}

#[tokio::test]
async fn surfaces_arm_error_codes_for_rejected_requests() {
    let fake = FakeArm::start();
    let arm = client(&fake);

    let err = arm
        .delete_resource_group(SUB, "ghost-rg", far())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ArmError::Api { status: 404, code, .. } if code == "ResourceGroupNotFound"),
        "{err:?}"
    );

    group(&arm, "web-rg").await;
    let bad = DeploymentSpec::new(json!({ "contentVersion": "1.0.0.0" }));
    let err = arm
        .deploy(SUB, "web-rg", "release-7", &bad, far())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ArmError::Api { status: 400, code, .. } if code == "InvalidTemplate"),
        "{err:?}"
    );
    assert!(err.to_string().contains("InvalidTemplate"), "{err}");
}

#[tokio::test]
async fn sends_the_bearer_token_on_every_request() {
    let fake = FakeArm::start_with_token("sidecar-token");
    let arm = client(&fake);
    group(&arm, "web-rg").await;
    arm.deploy(SUB, "web-rg", "release-8", &template(vec![]), far())
        .await
        .unwrap();

    let requests = fake.requests();
    assert!(requests.len() >= 4);
    for request in &requests {
        assert_eq!(
            request.header("Authorization"),
            Some("Bearer sidecar-token"),
            "{}",
            request.path
        );
        assert!(
            request.query.contains("api-version=2021-04-01"),
            "{}",
            request.query
        );
    }

    let wrong = AzureArm::new(&fake.endpoint(), Credential::StaticToken("stale".into())).unwrap();
    let err = wrong.get_resource_group(SUB, "web-rg").await.unwrap_err();
    assert!(
        matches!(&err, ArmError::Api { status: 401, code, .. } if code == "InvalidAuthenticationToken"),
        "{err:?}"
    );
}

#[test]
fn keeps_secrets_out_of_debug_output() {
    let secret = Credential::ClientSecret {
        tenant_id: "tenant".into(),
        client_id: "app".into(),
        secret: "hunter2".into(),
    };
    let token = Credential::StaticToken("eyJ0eXAi".into());
    assert!(!format!("{secret:?}").contains("hunter2"));
    assert!(!format!("{token:?}").contains("eyJ0eXAi"));
    let arm = AzureArm::new("http://127.0.0.1:9", token).unwrap();
    assert!(!format!("{arm:?}").contains("eyJ0eXAi"));
}

#[test]
fn rejects_endpoints_that_are_not_http_urls() {
    let err = AzureArm::new("not a url", Credential::StaticToken("t".into())).unwrap_err();
    assert!(matches!(err, ArmError::InvalidUrl { .. }), "{err:?}");
    let err = AzureArm::new(
        "mailto:ops@example.com",
        Credential::StaticToken("t".into()),
    )
    .unwrap_err();
    assert!(matches!(err, ArmError::InvalidUrl { .. }), "{err:?}");
}
