//! The one TLS client setup every warden HTTP client uses (the sandbox's
//! outgoing requests, the LLM client, the ARM client): ring as the rustls
//! provider, certificates checked against the Mozilla roots
//! (`webpki-roots`) plus an optional extra CA bundle, so no code path asks
//! rustls for a process default it cannot pick.
//!
//! ```
//! let config = warden_tls::client_config(None)?;
//! assert!(config.alpn_protocols.is_empty());
//! let err = warden_tls::client_config(Some(std::path::Path::new("/nonexistent.pem"))).unwrap_err();
//! assert!(err.to_string().contains("/nonexistent.pem"), "{err}");
//! # Ok::<(), warden_tls::TlsError>(())
//! ```
#![deny(missing_docs)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Once};

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// What went wrong setting TLS up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// The extra CA bundle cannot be used.
    #[error("extra CA file {}: {message}", path.display())]
    ExtraCaFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// A certificate chain or key (the server's, or a client's for mutual
    /// TLS) cannot be used.
    #[error("TLS {what} file {}: {message}", path.display())]
    ServerFile {
        /// `certificate` or `key`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// rustls refused the configuration.
    #[error("setting up TLS: {message}")]
    Config {
        /// Why.
        message: String,
    },
}

/// Install ring as the process's rustls provider, once. With more than one
/// provider compiled into a binary rustls cannot pick one itself and panics
/// in any code that asks for the default. If the embedder installed one
/// first, theirs is kept.
pub fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// The Mozilla roots plus the certificates in `extra_ca` (a PEM bundle).
pub fn root_store(extra_ca: Option<&Path>) -> Result<rustls::RootCertStore, TlsError> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(path) = extra_ca {
        add_pem_bundle(&mut roots, path)?;
    }
    Ok(roots)
}

/// A client configuration on ring that trusts [`root_store`]`(extra_ca)`.
pub fn client_config(extra_ca: Option<&Path>) -> Result<rustls::ClientConfig, TlsError> {
    install_crypto_provider();
    let roots = root_store(extra_ca)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config {
            message: e.to_string(),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// A client configuration on ring that trusts [`root_store`]`(extra_ca)`
/// and, given `identity` (a PEM certificate chain, leaf first, and its PEM
/// private key), presents that certificate to servers that ask for one
/// (mutual TLS to PostgreSQL or NATS).
///
/// ```
/// let err = warden_tls::client_config_with_identity(
///     None,
///     Some((std::path::Path::new("/nonexistent.pem"), std::path::Path::new("/nonexistent.key"))),
/// )
/// .unwrap_err();
/// assert!(err.to_string().contains("TLS certificate file /nonexistent.pem"), "{err}");
/// ```
pub fn client_config_with_identity(
    extra_ca: Option<&Path>,
    identity: Option<(&Path, &Path)>,
) -> Result<rustls::ClientConfig, TlsError> {
    let Some((cert, key)) = identity else {
        return client_config(extra_ca);
    };
    install_crypto_provider();
    let roots = root_store(extra_ca)?;
    let (chain, private) = load_identity(cert, key)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config {
            message: e.to_string(),
        })?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, private)
        .map_err(|e| identity_error("key", key, format!("does not match the certificate: {e}")))
}

fn identity_error(what: &'static str, path: &Path, message: String) -> TlsError {
    TlsError::ServerFile {
        what,
        path: path.to_path_buf(),
        message,
    }
}

/// A PEM certificate chain (leaf first) and its PEM private key.
fn load_identity(
    cert: &Path,
    key: &Path,
) -> Result<
    (
        Vec<CertificateDer<'static>>,
        rustls::pki_types::PrivateKeyDer<'static>,
    ),
    TlsError,
> {
    use rustls::pki_types::PrivateKeyDer;
    let bytes =
        fs_err::read(cert).map_err(|e| identity_error("certificate", cert, e.to_string()))?;
    let chain = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| identity_error("certificate", cert, format!("not PEM: {}", pem_error(&e))))?;
    if chain.is_empty() {
        return Err(identity_error(
            "certificate",
            cert,
            "contains no PEM `CERTIFICATE` block".into(),
        ));
    }
    let bytes = fs_err::read(key).map_err(|e| identity_error("key", key, e.to_string()))?;
    let private = PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| {
        identity_error(
            "key",
            key,
            format!("no usable private key: {}", pem_error(&e)),
        )
    })?;
    Ok((chain, private))
}

/// A server configuration on ring from a PEM certificate chain (leaf first)
/// and its PEM private key, speaking HTTP/1.1 over ALPN.
pub fn server_config(cert: &Path, key: &Path) -> Result<rustls::ServerConfig, TlsError> {
    install_crypto_provider();
    let (chain, private) = load_identity(cert, key)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config {
            message: e.to_string(),
        })?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(|e| identity_error("key", key, format!("does not match the certificate: {e}")))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

fn add_pem_bundle(roots: &mut rustls::RootCertStore, path: &Path) -> Result<(), TlsError> {
    let fail = |message: String| TlsError::ExtraCaFile {
        path: path.to_path_buf(),
        message,
    };
    // fs-err's message names the path again, but keeps the OS's reason.
    let bytes = fs_err::read(path).map_err(|e| fail(e.to_string()))?;
    let mut added = 0usize;
    for (i, cert) in CertificateDer::pem_slice_iter(&bytes).enumerate() {
        let n = i + 1;
        let cert = cert.map_err(|e| fail(format!("not a PEM bundle: {}", pem_error(&e))))?;
        roots.add(cert).map_err(|e| {
            fail(match e {
                rustls::Error::InvalidCertificate(why) => {
                    format!("certificate {n} is not a usable X.509 certificate ({why:?})")
                }
                other => format!("certificate {n}: {other}"),
            })
        })?;
        added += 1;
    }
    if added == 0 {
        return Err(fail("contains no PEM `CERTIFICATE` block".into()));
    }
    Ok(())
}

/// The pem crate's messages print markers as byte arrays.
fn pem_error(e: &rustls::pki_types::pem::Error) -> String {
    use rustls::pki_types::pem::Error;
    match e {
        Error::MissingSectionEnd { end_marker } => {
            format!(
                "missing `-----END {}-----`",
                String::from_utf8_lossy(end_marker)
            )
        }
        Error::IllegalSectionStart { line } => {
            format!("malformed line `{}`", String::from_utf8_lossy(line))
        }
        other => other.to_string(),
    }
}

/// The TLS failure somewhere in `error`'s sources, if a request failed in
/// the handshake. rustls reports it inside an `io::Error` (itself wrapped in
/// another by the connector), and `io::Error::source` skips the error it
/// wraps, so wrapped errors are unpacked as well.
pub fn tls_failure(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cause = Some(error);
    while let Some(current) = cause {
        let mut inner = Some(current);
        while let Some(e) = inner {
            if let Some(tls) = e.downcast_ref::<rustls::Error>() {
                return Some(tls.to_string());
            }
            inner = e
                .downcast_ref::<std::io::Error>()
                .and_then(std::io::Error::get_ref)
                .map(|e| e as &(dyn std::error::Error + 'static));
        }
        cause = current.source();
    }
    None
}
