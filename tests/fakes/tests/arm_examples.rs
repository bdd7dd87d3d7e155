//! Validates the ARM fake against Azure's published REST examples
//! (`../shared/data/arm-examples`, from Azure/azure-rest-api-specs): each
//! example request is sent to the fake, and the status codes and response
//! shapes (top-level keys and `properties` keys) must match the example.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers outside #[test] fns should fail loudly too"
)]

use std::path::{Path, PathBuf};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use warden_fakes::arm::FakeArm;

/// `{workspace}/../shared/data/arm-examples`; override with `WARDEN_ARM_EXAMPLES`.
fn examples_dir() -> PathBuf {
    std::env::var_os("WARDEN_ARM_EXAMPLES").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/arm-examples"),
        PathBuf::from,
    )
}

struct Answer {
    status: u16,
    location: Option<String>,
    body: Value,
}

async fn send(
    fake: &FakeArm,
    method: Method,
    path_and_query: &str,
    body: Option<&Value>,
) -> Answer {
    let authority = fake.endpoint().trim_start_matches("http://").to_owned();
    let stream = tokio::net::TcpStream::connect(&authority).await.unwrap();
    let (mut sender, conn) = http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    let payload = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
    let request = Request::builder()
        .method(method)
        .uri(path_and_query)
        .header("host", &authority)
        .header("authorization", format!("Bearer {}", fake.token()))
        .header("content-type", "application/json")
        .body(Full::new(payload))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Answer {
        status,
        location,
        body,
    }
}

/// The example's response for `status`, failing when the example has none.
fn expected<'a>(example: &'a Value, status: u16, name: &str) -> &'a Value {
    let response = &example["responses"][status.to_string()];
    assert!(
        !response.is_null(),
        "{name}: the fake answered {status}, the example only has {:?}",
        example["responses"]
            .as_object()
            .map(|r| r.keys().collect::<Vec<_>>())
    );
    response
}

/// Every key of the example body (top level and inside `properties`) is in
/// the fake's body, and `provisioningState` / `status` agree.
fn assert_shape(name: &str, example: &Value, actual: &Value) {
    let (Some(want), Some(got)) = (example.as_object(), actual.as_object()) else {
        assert!(
            !example.is_object() || example.as_object().is_some_and(serde_json::Map::is_empty),
            "{name}: expected an object body, got {actual}"
        );
        return;
    };
    for (key, value) in want {
        let got_value = got
            .get(key)
            .unwrap_or_else(|| panic!("{name}: body lacks `{key}`: {actual}"));
        if key == "properties"
            && let (Some(inner), Some(got_inner)) = (value.as_object(), got_value.as_object())
        {
            for inner_key in inner.keys() {
                assert!(
                    got_inner.contains_key(inner_key),
                    "{name}: properties lack `{inner_key}`: {actual}"
                );
            }
            if let Some(state) = inner.get("provisioningState") {
                assert_eq!(
                    got_inner.get("provisioningState"),
                    Some(state),
                    "{name}: provisioningState"
                );
            }
        }
    }
    if let Some(status) = want.get("status") {
        assert_eq!(got.get("status"), Some(status), "{name}: status");
    }
}

fn group_path(params: &Value) -> String {
    format!(
        "/subscriptions/{}/resourcegroups/{}",
        params["subscriptionId"].as_str().unwrap(),
        params["resourceGroupName"].as_str().unwrap()
    )
}

fn deployment_path(params: &Value) -> String {
    format!(
        "{}/providers/Microsoft.Resources/deployments/{}",
        group_path(params),
        params["deploymentName"].as_str().unwrap()
    )
}

async fn make_group(fake: &FakeArm, params: &Value, version: &str) {
    let put = send(
        fake,
        Method::PUT,
        &format!("{}?api-version={version}", group_path(params)),
        Some(&json!({ "location": "eastus" })),
    )
    .await;
    assert_eq!(put.status, 201, "{}", put.body);
}

/// Sends one example to a fresh fake; `false` when the fake does not
/// implement the example's operation.
async fn check(name: &str, example: &Value) -> bool {
    let fake = FakeArm::start();
    let params = &example["parameters"];
    let version = params["api-version"].as_str().unwrap();
    let stem = name.rsplit('/').next().unwrap().trim_end_matches(".json");
    match stem {
        "CreateResourceGroup" => {
            let url = format!("{}?api-version={version}", group_path(params));
            for want in [201, 200] {
                let answer = send(&fake, Method::PUT, &url, Some(&params["parameters"])).await;
                assert_eq!(answer.status, want, "{name}: {}", answer.body);
                assert_shape(
                    name,
                    &expected(example, answer.status, name)["body"],
                    &answer.body,
                );
            }
        }
        "ResourceGroups_Get" => {
            make_group(&fake, params, version).await;
            let answer = send(
                &fake,
                Method::GET,
                &format!("{}?api-version={version}", group_path(params)),
                None,
            )
            .await;
            assert_shape(
                name,
                &expected(example, answer.status, name)["body"],
                &answer.body,
            );
        }
        "ListResourceGroups" => {
            let sub = params["subscriptionId"].as_str().unwrap();
            let url = format!("/subscriptions/{sub}/resourcegroups?api-version={version}");
            let answer = send(&fake, Method::GET, &url, None).await;
            assert_shape(
                name,
                &expected(example, answer.status, name)["body"],
                &answer.body,
            );
            assert!(answer.body["value"].is_array(), "{name}: {}", answer.body);
        }
        s if s.starts_with("PutDeployment") => {
            make_group(&fake, params, version).await;
            let url = format!("{}?api-version={version}", deployment_path(params));
            let answer = send(&fake, Method::PUT, &url, Some(&params["parameters"])).await;
            assert_eq!(answer.status, 201, "{name}: {}", answer.body);
            assert_shape(
                name,
                &expected(example, answer.status, name)["body"],
                &answer.body,
            );
        }
        s if s.starts_with("PostDeploymentWhatIf") => {
            make_group(&fake, params, version).await;
            let url = format!("{}/whatIf?api-version={version}", deployment_path(params));
            let mut answer = send(&fake, Method::POST, &url, Some(&params["parameters"])).await;
            let accepted = expected(example, answer.status, name);
            assert_eq!(answer.status, 202, "{name}: {}", answer.body);
            assert!(
                accepted["headers"]["Location"].is_string() == answer.location.is_some(),
                "{name}: Location header"
            );
            for _ in 0..10 {
                let Some(location) = answer.location.filter(|_| answer.status == 202) else {
                    break;
                };
                let path = location.trim_start_matches(&fake.endpoint()).to_owned();
                answer = send(&fake, Method::GET, &path, None).await;
            }
            assert_shape(
                name,
                &expected(example, answer.status, name)["body"],
                &answer.body,
            );
        }
        _ => return false,
    }
    true
}

#[tokio::test]
async fn fake_answers_published_arm_examples_with_matching_shapes() {
    let dir = examples_dir();
    if !dir.is_dir() {
        eprintln!(
            "skipping: ARM examples not found at {} (set WARDEN_ARM_EXAMPLES)",
            dir.display()
        );
        return;
    }
    let mut checked = Vec::new();
    let mut skipped = Vec::new();
    let mut versions: Vec<_> = fs_err::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    versions.sort();
    for version in versions {
        let mut files: Vec<_> = fs_err::read_dir(&version)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for file in files
            .into_iter()
            .filter(|f| f.extension().is_some_and(|e| e == "json"))
        {
            let name = format!(
                "{}/{}",
                version.file_name().unwrap().to_string_lossy(),
                file.file_name().unwrap().to_string_lossy()
            );
            let example: Value =
                serde_json::from_str(&fs_err::read_to_string(&file).unwrap()).unwrap();
            if check(&name, &example).await {
                checked.push(name);
            } else {
                skipped.push(name);
            }
        }
    }
    eprintln!("checked {} ARM examples: {checked:?}", checked.len());
    eprintln!("not implemented by the fake (skipped): {skipped:?}");
    assert!(
        checked.len() >= 5,
        "too few examples exercised: {checked:?}"
    );
}

#[tokio::test]
async fn fake_rejects_requests_without_the_bearer_token() {
    let fake = FakeArm::start();
    let authority = fake.endpoint().trim_start_matches("http://").to_owned();
    let stream = tokio::net::TcpStream::connect(&authority).await.unwrap();
    let (mut sender, conn) = http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    let request = Request::builder()
        .uri("/subscriptions/s/resourcegroups?api-version=2021-04-01")
        .header("host", &authority)
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status().as_u16(), 401);
    let challenge = response.headers()["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.starts_with("Bearer authorization_uri=") && challenge.contains("invalid_token"),
        "{challenge}"
    );
    let body: Value =
        serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(body["error"]["code"], "AuthenticationFailed");
    assert_eq!(
        fake.requests().len(),
        1,
        "rejected requests are recorded too"
    );
}

#[tokio::test]
async fn fake_rejects_unknown_api_versions() {
    let fake = FakeArm::start();
    let answer = send(
        &fake,
        Method::GET,
        "/subscriptions/s/resourcegroups?api-version=2019-01-01",
        None,
    )
    .await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.body["error"]["code"], "InvalidApiVersionParameter");
    let answer = send(&fake, Method::GET, "/subscriptions/s/resourcegroups", None).await;
    assert_eq!(answer.body["error"]["code"], "MissingApiVersionParameter");
}
