//! HTTPS from plugins: pinned to the approved address, verified for the
//! host name, against the built-in roots plus an extra CA file.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::json;
use test_plugins_artifacts as guests;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use warden_sandbox::{Sandbox, SandboxConfig, SandboxError};
use warden_types::{CapabilityRequest, CapabilityUse, GateDecision};

use crate::support::*;

/// A test CA that signs leaf certificates.
struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl TestCa {
    fn new() -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "warden test CA");
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        TestCa { issuer }
    }

    /// Write the CA certificate as PEM into `dir`.
    fn write_pem(&self, dir: &Path) -> std::path::PathBuf {
        let path = dir.join("test-ca.pem");
        fs_err::write(&path, self.issuer.pem()).unwrap();
        path
    }

    /// A server certificate for `names` (host names or IP literals).
    fn leaf(&self, names: &[&str]) -> Identity {
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Identity {
            chain: vec![cert.der().clone()],
            key: PrivatePkcs8KeyDer::from(key.serialize_der()).into(),
        }
    }
}

/// A certificate chain and its private key.
struct Identity {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

fn self_signed(names: &[&str]) -> Identity {
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let certified = rcgen::generate_simple_self_signed(names).unwrap();
    Identity {
        chain: vec![certified.cert.der().clone()],
        key: PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der()).into(),
    }
}

/// A loopback HTTPS/1.1 server that answers `200 hello` and records the
/// head of each request it got past a TLS handshake.
struct TlsServer {
    port: u16,
    handshakes: Arc<AtomicUsize>,
    heads: Arc<Mutex<Vec<String>>>,
}

impl TlsServer {
    async fn start(identity: Identity) -> Self {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(identity.chain, identity.key)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let handshakes = Arc::new(AtomicUsize::new(0));
        let heads = Arc::new(Mutex::new(Vec::new()));
        let (seen, recorded) = (handshakes.clone(), heads.clone());
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, seen, recorded) = (acceptor.clone(), seen.clone(), recorded.clone());
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    seen.fetch_add(1, Ordering::SeqCst);
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match tls.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    recorded
                        .lock()
                        .unwrap()
                        .push(String::from_utf8_lossy(&head).into_owned());
                    let _ = tls
                        .write_all(
                            b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello",
                        )
                        .await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        TlsServer {
            port,
            handshakes,
            heads,
        }
    }

    fn handshakes(&self) -> usize {
        self.handshakes.load(Ordering::SeqCst)
    }
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
    let server = TlsServer::start(ca.leaf(&["localhost", "127.0.0.1"])).await;
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
    let url = format!("https://localhost:{}/health?probe=1", server.port);
    let out = plugin
        .invoke(&ctx(), &json!({"url": url}), gate)
        .await
        .unwrap();
    assert_eq!(out.output["result"], "200 hello");
    assert_eq!(server.handshakes(), 1);

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
    let heads = server.heads.lock().unwrap().clone();
    let head = heads[0].to_ascii_lowercase();
    assert!(
        head.starts_with("get /health?probe=1 http/1.1\r\n"),
        "{head}"
    );
    assert!(
        head.contains(&format!("\r\nhost: localhost:{}\r\n", server.port)),
        "{head}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn https_with_a_certificate_for_another_name_fails_cleanly() {
    let ca = TestCa::new();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = ca.write_pem(dir.path());
    let server = TlsServer::start(ca.leaf(&["elsewhere.example"])).await;
    let sandbox = sandbox_with(|c| {
        c.extra_ca_file(&ca_file);
    });

    let err = fetch(&sandbox, &format!("https://localhost:{}/", server.port))
        .await
        .unwrap_err();
    assert!(matches!(err, SandboxError::Tool { .. }), "{err}");
    assert!(err.to_string().contains("TlsCertificateError"), "{err}");
    assert!(
        server.heads.lock().unwrap().is_empty(),
        "a request was sent"
    );
    assert_still_serves(&sandbox).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn https_to_a_self_signed_server_without_its_ca_fails_cleanly() {
    let server = TlsServer::start(self_signed(&["localhost", "127.0.0.1"])).await;
    let sandbox = sandbox();

    let err = fetch(&sandbox, &format!("https://localhost:{}/", server.port))
        .await
        .unwrap_err();
    assert!(matches!(err, SandboxError::Tool { .. }), "{err}");
    assert!(err.to_string().contains("TlsCertificateError"), "{err}");
    assert_eq!(server.handshakes(), 0);
    assert_still_serves(&sandbox).await;

    // A CA file that does not sign this server changes nothing.
    let dir = tempfile::tempdir().unwrap();
    let other_ca = TestCa::new().write_pem(dir.path());
    let sandbox = sandbox_with(|c| {
        c.extra_ca_file(&other_ca);
    });
    let err = fetch(&sandbox, &format!("https://localhost:{}/", server.port))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("TlsCertificateError"), "{err}");
    assert_eq!(server.handshakes(), 0);
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
