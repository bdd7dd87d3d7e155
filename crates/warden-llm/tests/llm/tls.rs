//! HTTPS to the model: certificates checked against the Mozilla roots plus
//! an extra CA file, refusals reported as TLS errors and never retried.

use std::path::Path;
use std::time::{Duration, Instant};

use warden_fakes::openai::{FakeOpenAi, Reply};
use warden_fakes::tls::{TestCa, self_signed};
use warden_llm::{ChatClient, ChatRequest, LlmConfig, LlmError, Message, Provider};

fn over_https(fake: &FakeOpenAi, extra_ca: Option<&Path>) -> LlmConfig {
    assert!(fake.base_url().starts_with("https://127.0.0.1:"));
    let mut config = LlmConfig::new(
        Provider::Compatible {
            base_url: fake.base_url(),
            api_key: Some("sk-test".into()),
        },
        "qwen2.5:7b",
    );
    config.extra_ca_file = extra_ca.map(Path::to_path_buf);
    config
}

fn ask(text: &str, stream: bool) -> ChatRequest {
    ChatRequest {
        messages: vec![Message::User(text.into())],
        stream,
        ..ChatRequest::default()
    }
}

/// The refusal of a certificate: a TLS error that says why, reached without
/// the retries a connection error would get, and no request reached the server.
#[allow(
    clippy::panic,
    reason = "a test helper: the panic is the failed assertion"
)]
async fn assert_refused(fake: &FakeOpenAi, config: LlmConfig, why: &str) {
    let mut config = config;
    // Retried, five attempts would wait at least 7.75 s in backoff.
    config.max_retries = 5;
    let client = ChatClient::new(config).unwrap();
    let started = Instant::now();
    let err = client.complete(&ask("ping", false)).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "retried: {:?}",
        started.elapsed()
    );
    match &err {
        LlmError::Tls { message } => {
            assert!(message.contains("certificate"), "{message}");
            assert!(message.contains(why), "{message}");
        }
        other => panic!("expected a tls error, got {other:?}"),
    }
    assert!(err.to_string().starts_with("tls handshake"), "{err}");
    assert!(fake.requests().is_empty(), "{:?}", fake.requests());
    assert_eq!(fake.remaining(), 1);
}

#[tokio::test]
async fn completes_a_chat_over_https_with_a_server_signed_by_the_extra_ca() {
    let ca = TestCa::new();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = ca.write_pem(dir.path());
    let fake = FakeOpenAi::start_tls(
        vec![
            Reply::Text("all good".into()),
            Reply::Text("still good".into()),
        ],
        &ca.server_cert(&["127.0.0.1", "localhost"]),
    );
    let client = ChatClient::new(over_https(&fake, Some(&ca_file))).unwrap();

    let response = client.complete(&ask("status?", false)).await.unwrap();
    assert_eq!(response.content.as_deref(), Some("all good"));
    let streamed = client.complete(&ask("and now?", true)).await.unwrap();
    assert_eq!(streamed.content.as_deref(), Some("still good"));

    let requests = fake.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].path, "/v1/chat/completions");
    assert_eq!(requests[0].header("authorization"), Some("Bearer sk-test"));
    assert_eq!(requests[1].body["stream"], true);
}

#[tokio::test]
async fn refuses_a_certificate_for_another_name_even_from_the_trusted_ca() {
    let ca = TestCa::new();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = ca.write_pem(dir.path());
    let fake = FakeOpenAi::start_tls(
        vec![Reply::Text("never sent".into())],
        &ca.server_cert(&["llm.other.example"]),
    );
    assert_refused(&fake, over_https(&fake, Some(&ca_file)), "not valid for").await;
}

#[tokio::test]
async fn refuses_a_self_signed_certificate_without_the_extra_ca() {
    let fake = FakeOpenAi::start_tls(
        vec![Reply::Text("never sent".into())],
        &self_signed(&["127.0.0.1"]),
    );
    assert_refused(&fake, over_https(&fake, None), "UnknownIssuer").await;
}

#[tokio::test]
async fn refuses_a_server_signed_by_a_ca_that_is_not_the_extra_one() {
    let trusted = TestCa::new();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = trusted.write_pem(dir.path());
    let fake = FakeOpenAi::start_tls(
        vec![Reply::Text("never sent".into())],
        &TestCa::new().server_cert(&["127.0.0.1"]),
    );
    assert_refused(&fake, over_https(&fake, Some(&ca_file)), "UnknownIssuer").await;
}

#[test]
fn an_unusable_extra_ca_file_is_an_error_naming_the_file() {
    let fake = FakeOpenAi::start(vec![]);
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pem");
    let not_pem = dir.path().join("not-a-cert.pem");
    fs_err::write(&not_pem, "just text\n").unwrap();

    for (path, why) in [
        (&missing, "No such file"),
        (&not_pem, "contains no PEM `CERTIFICATE` block"),
    ] {
        let mut config = over_https_plain(&fake);
        config.extra_ca_file = Some(path.clone());
        let err = ChatClient::new(config).unwrap_err();
        match &err {
            LlmError::ExtraCaFile {
                path: named,
                message,
            } => {
                assert_eq!(named, path);
                assert!(message.contains(why), "{message}");
            }
            other => panic!("expected an extra CA file error, got {other:?}"),
        }
        assert!(err.to_string().contains(&*path.to_string_lossy()), "{err}");
    }
}

fn over_https_plain(fake: &FakeOpenAi) -> LlmConfig {
    LlmConfig::new(
        Provider::Compatible {
            base_url: fake.base_url(),
            api_key: None,
        },
        "m",
    )
}

#[test]
fn building_a_client_installs_ring_as_the_process_crypto_provider() {
    let fake = FakeOpenAi::start(vec![]);
    ChatClient::new(over_https_plain(&fake)).unwrap();
    let provider = rustls::crypto::CryptoProvider::get_default().unwrap();
    let ring = rustls::crypto::ring::default_provider();
    let names = |p: &rustls::crypto::CryptoProvider| {
        p.cipher_suites
            .iter()
            .map(|s| format!("{:?}", s.suite()))
            .collect::<Vec<_>>()
    };
    assert_eq!(names(provider), names(&ring));
}
