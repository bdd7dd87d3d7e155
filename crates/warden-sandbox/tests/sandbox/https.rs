//! HTTPS from plugins: pinned to the approved address, verified for the
//! host name, against the built-in roots plus an extra CA file.

use std::sync::{Arc, Mutex};

use rcgen::KeyPair;
use serde_json::json;
use test_plugins_artifacts as guests;
use warden_fakes::tls::{ServerCert, TestCa, self_signed};
use warden_sandbox::{Sandbox, SandboxConfig, SandboxError};
use warden_types::{CapabilityRequest, CapabilityUse, GateDecision};

use crate::support::*;

/// A loopback HTTPS/1.1 server with `cert` that answers `200 hello`; it
/// counts completed handshakes and records each request that got past one.
fn tls_server(cert: &ServerCert) -> Responder {
    Responder::start_tls(cert, |_| Response::text(200, "hello"))
}

async fn fetch(sandbox: &Sandbox, url: &str) -> Result<String, SandboxError> {
    let plugin = load(sandbox, guests::HTTP_FETCH);
    let out = plugin
        .invoke(&ctx(), &json!({"url": url}), allow_all())
        .await?;
    Ok(out.output["result"].as_str().unwrap().to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn https_to_a_server_signed_by_the_extra_ca_succeeds() {
    let ca = TestCa::new();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = ca.write_pem(dir.path());
    let server = tls_server(&ca.server_cert(&["localhost", "127.0.0.1"]));
    let sandbox = sandbox_with(|c| {
        c.extra_ca_file(&ca_file);
    });
    let plugin = load(&sandbox, guests::HTTP_FETCH);

    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let gate = Arc::new(move |r: &CapabilityRequest| {
        record.lock().unwrap().push(r.capability.clone());
        GateDecision::Allow
    });
    let url = format!("https://localhost:{}/health?probe=1", server.port());
    let out = plugin
        .invoke(&ctx(), &json!({"url": url}), gate)
        .await
        .unwrap();
    assert_eq!(out.output["result"], "200 hello");
    assert_eq!(server.tls_handshakes(), 1);

    // The gate saw the name, then the name and its loopback addresses; the
    // server got the name (not the address) in the request and the path in
    // origin form.
    match seen.lock().unwrap().as_slice() {
        [CapabilityUse::HttpLookup(lookup), CapabilityUse::Http(info)] => {
            assert_eq!(lookup.host, "localhost");
            assert!(lookup.resolved.is_empty());
            assert_eq!(info.scheme, "https");
            assert_eq!(info.host, "localhost");
            assert!(!info.resolved.is_empty());
            assert!(info.resolved.iter().all(|ip| ip.is_loopback()));
        }
        other => panic!("gate saw {other:?}"),
    }
    let got = server.requests();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].request_line(), "GET /health?probe=1 HTTP/1.1");
    assert_eq!(
        got[0].header("host"),
        Some(format!("localhost:{}", server.port()).as_str())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn https_with_a_certificate_for_another_name_fails_cleanly() {
    let ca = TestCa::new();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = ca.write_pem(dir.path());
    let server = tls_server(&ca.server_cert(&["elsewhere.example"]));
    let sandbox = sandbox_with(|c| {
        c.extra_ca_file(&ca_file);
    });

    let err = fetch(&sandbox, &format!("https://localhost:{}/", server.port()))
        .await
        .unwrap_err();
    assert!(matches!(err, SandboxError::Tool { .. }), "{err}");
    assert!(err.to_string().contains("TlsCertificateError"), "{err}");
    assert_eq!(server.hits(), 0, "a request was sent");
    assert_still_serves(&sandbox).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn https_to_a_self_signed_server_without_its_ca_fails_cleanly() {
    let server = tls_server(&self_signed(&["localhost", "127.0.0.1"]));
    let sandbox = sandbox();

    let err = fetch(&sandbox, &format!("https://localhost:{}/", server.port()))
        .await
        .unwrap_err();
    assert!(matches!(err, SandboxError::Tool { .. }), "{err}");
    assert!(err.to_string().contains("TlsCertificateError"), "{err}");
    // It connected, and gave up in the handshake.
    assert!(server.connections() >= 1);
    assert_eq!(server.tls_handshakes(), 0);
    assert_still_serves(&sandbox).await;

    // A CA file that does not sign this server changes nothing.
    let dir = tempfile::tempdir().unwrap();
    let other_ca = TestCa::new().write_pem(dir.path());
    let sandbox = sandbox_with(|c| {
        c.extra_ca_file(&other_ca);
    });
    let err = fetch(&sandbox, &format!("https://localhost:{}/", server.port()))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("TlsCertificateError"), "{err}");
    assert_eq!(server.tls_handshakes(), 0);
}

#[test]
fn unusable_extra_ca_file_is_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing-ca.pem");
    let garbage = dir.path().join("garbage-ca.pem");
    fs_err::write(&garbage, "-----BEGIN CERTIFICATE-----\n!!!\n").unwrap();
    let no_cert = dir.path().join("key-only.pem");
    fs_err::write(&no_cert, KeyPair::generate().unwrap().serialize_pem()).unwrap();
    let bad_der = dir.path().join("bad-der.pem");
    fs_err::write(
        &bad_der,
        "-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n",
    )
    .unwrap();

    for path in [&missing, &garbage, &no_cert, &bad_der] {
        let mut config = SandboxConfig::default();
        config.extra_ca_file(path);
        let err = Sandbox::new(&config).unwrap_err();
        assert!(matches!(err, SandboxError::ExtraCaFile { .. }), "{err}");
        let name = path.file_name().unwrap().to_str().unwrap();
        assert!(err.to_string().contains(name), "{err}");
    }
}

#[test]
fn a_sandbox_installs_a_process_crypto_provider() {
    let _sandbox = Sandbox::new(&SandboxConfig::default()).unwrap();
    assert!(rustls::crypto::CryptoProvider::get_default().is_some());
    // Without one, any default rustls client in the process panics when
    // both ring and aws-lc-rs are compiled in.
    let _ = rustls::ClientConfig::builder();
}
