//! The Entra ID fake refuses what Entra refuses, with Entra's status codes
//! and `AADSTS` error codes, and issues the ARM fake's token otherwise.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers outside #[test] fns should fail loudly too"
)]

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use warden_fakes::arm::FakeArm;
use warden_fakes::entra::{CLIENT_ID, CLIENT_SECRET, EXPIRES_IN, FakeEntra, TENANT_ID};

const FORM: &str = "application/x-www-form-urlencoded";

async fn post(
    entra: &FakeEntra,
    method: Method,
    path: &str,
    content_type: &str,
    form: &[(&str, &str)],
) -> (u16, Value) {
    let authority = entra
        .authority_host()
        .trim_start_matches("http://")
        .to_owned();
    let stream = tokio::net::TcpStream::connect(&authority).await.unwrap();
    let (mut sender, conn) = http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("host", &authority)
        .header("content-type", content_type)
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap())
}

fn good(scope: &str) -> Vec<(&'static str, String)> {
    vec![
        ("grant_type", "client_credentials".to_owned()),
        ("client_id", CLIENT_ID.to_owned()),
        ("client_secret", CLIENT_SECRET.to_owned()),
        ("scope", scope.to_owned()),
    ]
}

/// `form` with `key` replaced by `value`, or removed when `None`.
fn with(
    form: &[(&'static str, String)],
    key: &'static str,
    value: Option<&str>,
) -> Vec<(&'static str, String)> {
    let mut form: Vec<_> = form.iter().filter(|(k, _)| *k != key).cloned().collect();
    if let Some(value) = value {
        form.push((key, value.to_owned()));
    }
    form
}

fn pairs<'a>(form: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    form.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

#[tokio::test]
async fn issues_the_arm_token_for_the_arm_scope_to_the_app() {
    let arm = FakeArm::start_with_token("issued");
    let entra = FakeEntra::for_arm(&arm);
    let path = format!("/{TENANT_ID}/oauth2/v2.0/token");
    let (status, body) = post(
        &entra,
        Method::POST,
        &path,
        FORM,
        &pairs(&good(entra.scope())),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["access_token"], "issued");
    assert_eq!(body["expires_in"], EXPIRES_IN);
    assert_eq!(entra.requests().len(), 1);
}

/// A request that Entra refuses, and how.
struct Mistake {
    name: &'static str,
    path: String,
    content_type: &'static str,
    form: Vec<(&'static str, String)>,
    status: u16,
    error: &'static str,
    code: u64,
}

#[tokio::test]
async fn refuses_each_mistake_with_entras_status_and_code() {
    let arm = FakeArm::start();
    let entra = FakeEntra::for_arm(&arm);
    let path = format!("/{TENANT_ID}/oauth2/v2.0/token");
    let good = good(entra.scope());
    let mistake = |name, form: Vec<(&'static str, String)>, status, error, code| Mistake {
        name,
        path: path.clone(),
        content_type: FORM,
        form,
        status,
        error,
        code,
    };
    let cases = [
        Mistake {
            path: format!("/{CLIENT_ID}/oauth2/v2.0/token"),
            ..mistake("wrong tenant", good.clone(), 400, "invalid_request", 90_002)
        },
        Mistake {
            content_type: "application/json",
            ..mistake("json body", good.clone(), 400, "invalid_request", 900_144)
        },
        mistake(
            "no grant",
            with(&good, "grant_type", None),
            400,
            "invalid_request",
            900_144,
        ),
        mistake(
            "password grant",
            with(&good, "grant_type", Some("password")),
            400,
            "unsupported_grant_type",
            70_003,
        ),
        mistake(
            "unknown app",
            with(&good, "client_id", Some(TENANT_ID)),
            400,
            "unauthorized_client",
            700_016,
        ),
        mistake(
            "no secret",
            with(&good, "client_secret", None),
            401,
            "invalid_client",
            7_000_218,
        ),
        mistake(
            "wrong secret",
            with(&good, "client_secret", Some("nope")),
            401,
            "invalid_client",
            7_000_215,
        ),
        mistake(
            "no default suffix",
            with(
                &good,
                "scope",
                Some("https://management.azure.com/user_impersonation"),
            ),
            400,
            "invalid_scope",
            1_002_012,
        ),
        mistake(
            "other resource",
            with(&good, "scope", Some("https://vault.azure.net/.default")),
            400,
            "invalid_resource",
            500_011,
        ),
    ];
    for case in cases {
        let name = case.name;
        let (status, body) = post(
            &entra,
            Method::POST,
            &case.path,
            case.content_type,
            &pairs(&case.form),
        )
        .await;
        assert_eq!(status, case.status, "{name}: {body}");
        assert_eq!(body["error"], case.error, "{name}: {body}");
        assert_eq!(body["error_codes"][0], case.code, "{name}: {body}");
        let description = body["error_description"].as_str().unwrap();
        assert!(
            description.starts_with(&format!("AADSTS{}: ", case.code)),
            "{name}: {description}"
        );
        assert!(body.get("access_token").is_none(), "{name}: {body}");
    }
    let (status, body) = post(&entra, Method::GET, &path, FORM, &pairs(&good)).await;
    assert_eq!(status, 405, "{body}");
}
