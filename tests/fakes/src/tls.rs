//! HTTPS for the fakes: a throwaway certificate authority, server
//! certificates it signs (or self-signed ones), and the rustls server side
//! the fakes run when started with a [`ServerCert`].
//!
//! A client trusts the fakes by reading [`TestCa::write_pem`]'s file as its
//! extra CA bundle; a certificate for another name, or a self-signed one,
//! lets tests check that the client refuses the handshake.
//!
//! ```
//! use warden_fakes::tls::{TestCa, self_signed};
//!
//! let ca = TestCa::new();
//! assert!(ca.pem().starts_with("-----BEGIN CERTIFICATE-----"));
//! let _trusted = ca.server_cert(&["127.0.0.1", "localhost"]);
//! let _untrusted = self_signed(&["127.0.0.1"]);
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A certificate authority made for one test; its key never leaves memory.
#[derive(Debug)]
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Default for TestCa {
    fn default() -> Self {
        Self::new()
    }
}

impl TestCa {
    /// A fresh CA named "warden test CA {n}", `n` unique in the process, so
    /// two test CAs are told apart by name as real ones are.
    #[allow(
        clippy::expect_used,
        reason = "test fixture: rcgen only fails on invalid parameters, which are fixed here"
    )]
    pub fn new() -> Self {
        static COUNT: AtomicUsize = AtomicUsize::new(1);
        let n = COUNT.fetch_add(1, Ordering::Relaxed);
        let mut params =
            CertificateParams::new(Vec::<String>::new()).expect("empty CA parameters are valid");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, format!("warden test CA {n}"));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().expect("generate the test CA's key");
        let issuer = CertifiedIssuer::self_signed(params, key).expect("self-sign the test CA");
        Self { issuer }
    }

    /// The CA certificate, PEM encoded.
    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// Writes the CA certificate as `dir/test-ca.pem` and returns the path:
    /// the value for an extra CA file setting (`WARDEN_EXTRA_CA_FILE`).
    #[allow(
        clippy::expect_used,
        reason = "test fixture: a test that cannot write its temp dir cannot run"
    )]
    pub fn write_pem(&self, dir: &Path) -> PathBuf {
        let path = dir.join("test-ca.pem");
        fs_err::write(&path, self.pem()).expect("write the test CA's PEM file");
        path
    }

    /// A server certificate signed by this CA for `names`: DNS names or IP
    /// literals such as `127.0.0.1`.
    #[allow(
        clippy::expect_used,
        reason = "test fixture: rcgen only fails on invalid names, which are the test's own"
    )]
    pub fn server_cert(&self, names: &[&str]) -> ServerCert {
        let mut params =
            CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
                .expect("valid subject alternative names");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().expect("generate a server key");
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("sign the server certificate");
        ServerCert::new(
            vec![cert.der().clone()],
            PrivatePkcs8KeyDer::from(key.serialize_der()).into(),
        )
    }

    /// A server certificate for `names` signed by this CA, written as PEM
    /// files `dir/server.pem` and `dir/server.key` (for a server that loads
    /// its certificate from files, as `warden serve` does). Returns both paths.
    #[allow(
        clippy::expect_used,
        reason = "test fixture: rcgen only fails on invalid names, and a test that cannot write its temp dir cannot run"
    )]
    pub fn write_server_pem(&self, dir: &Path, names: &[&str]) -> (PathBuf, PathBuf) {
        let mut params =
            CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
                .expect("valid subject alternative names");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().expect("generate a server key");
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("sign the server certificate");
        let (cert_path, key_path) = (dir.join("server.pem"), dir.join("server.key"));
        fs_err::write(&cert_path, cert.pem()).expect("write the server certificate");
        fs_err::write(&key_path, key.serialize_pem()).expect("write the server key");
        (cert_path, key_path)
    }

    /// A client certificate (for mutual TLS) with common name `name`,
    /// signed by this CA, written as PEM files `dir/<name>.pem` and
    /// `dir/<name>.key`. Returns both paths.
    #[allow(
        clippy::expect_used,
        reason = "test fixture: rcgen only fails on invalid names, and a test that cannot write its temp dir cannot run"
    )]
    pub fn write_client_pem(&self, dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("empty parameters");
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let key = KeyPair::generate().expect("generate a client key");
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("sign the client certificate");
        let (cert_path, key_path) = (
            dir.join(format!("{name}.pem")),
            dir.join(format!("{name}.key")),
        );
        fs_err::write(&cert_path, cert.pem()).expect("write the client certificate");
        fs_err::write(&key_path, key.serialize_pem()).expect("write the client key");
        (cert_path, key_path)
    }
}

/// A self-signed server certificate for `names`, which no CA vouches for.
#[allow(
    clippy::expect_used,
    reason = "test fixture: rcgen only fails on invalid names, which are the test's own"
)]
pub fn self_signed(names: &[&str]) -> ServerCert {
    let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    let certified = rcgen::generate_simple_self_signed(names).expect("self-sign a certificate");
    ServerCert::new(
        vec![certified.cert.der().clone()],
        PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der()).into(),
    )
}

/// A server certificate and its key, ready to serve HTTPS/1.1 (ring
/// provider, TLS 1.2 and 1.3). Cheap to clone, so one certificate can serve
/// several fakes.
#[derive(Clone)]
pub struct ServerCert {
    config: Arc<rustls::ServerConfig>,
}

impl std::fmt::Debug for ServerCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerCert")
    }
}

impl ServerCert {
    #[allow(
        clippy::expect_used,
        reason = "test fixture: the certificate and key were just made together"
    )]
    fn new(chain: Vec<CertificateDer<'static>>, key: PrivateKeyDer<'static>) -> Self {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("the key matches the certificate");
        Self {
            config: Arc::new(config),
        }
    }

    pub(crate) fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(Arc::clone(&self.config))
    }
}
