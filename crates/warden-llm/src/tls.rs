//! The client's TLS setup: warden-tls's (ring, the Mozilla roots and an
//! optional extra CA bundle), as in the sandbox.

use std::path::Path;

pub(crate) use warden_tls::tls_failure;

use crate::LlmError;

/// The HTTP client every request goes through: certificates are checked
/// against the Mozilla roots plus the certificates in `extra_ca`.
pub(crate) fn http_client(extra_ca: Option<&Path>) -> Result<reqwest::Client, LlmError> {
    let tls = warden_tls::client_config(extra_ca).map_err(|e| match e {
        warden_tls::TlsError::ExtraCaFile { path, message } => {
            LlmError::ExtraCaFile { path, message }
        }
        other => LlmError::config(other.to_string()),
    })?;
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .build()
        .map_err(|e| LlmError::config(format!("building the http client: {e}")))
}
