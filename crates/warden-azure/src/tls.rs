//! The one TLS setup of the ARM client and its credentials: ring, the
//! Mozilla roots (`webpki-roots`) and an optional extra CA bundle, as in the
//! sandbox, so no code path asks rustls for a process default it cannot pick.

use std::path::Path;
use std::sync::{Arc, Once};

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use azure_core::HttpClient;

use crate::error::ArmError;

/// Install ring as the process's rustls provider, once. With more than one
/// provider compiled into a binary rustls cannot pick one itself and panics
/// in any code that asks for the default. If the embedder (or the sandbox)
/// installed one first, theirs is kept.
pub(crate) fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// The HTTP client every ARM and token request goes through: certificates
/// are checked against the Mozilla roots plus the certificates in `extra_ca`.
pub(crate) fn http_client(extra_ca: Option<&Path>) -> Result<Arc<dyn HttpClient>, ArmError> {
    install_crypto_provider();
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(path) = extra_ca {
        add_pem_bundle(&mut roots, path)?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ArmError::HttpClient {
            message: format!("setting up TLS: {e}"),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    // No idle connections, as in `azure_core::new_http_client`: hyper can
    // hang on a pooled connection (hyperium/hyper#2312).
    let client = reqwest_012::Client::builder()
        .pool_max_idle_per_host(0)
        .use_preconfigured_tls(tls)
        .build()
        .map_err(|e| ArmError::HttpClient {
            message: e.to_string(),
        })?;
    Ok(Arc::new(client))
}

fn add_pem_bundle(roots: &mut rustls::RootCertStore, path: &Path) -> Result<(), ArmError> {
    let fail = |message: String| ArmError::ExtraCaFile {
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

/// The TLS failure somewhere in `error`'s sources, if the request failed in
/// the handshake. rustls reports it inside an `io::Error` (itself wrapped in
/// another by the connector), and `io::Error::source` skips the error it
/// wraps, so wrapped errors are unpacked as well.
pub(crate) fn tls_failure(error: &(dyn std::error::Error + 'static)) -> Option<String> {
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
