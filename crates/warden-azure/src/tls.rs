//! The ARM client's TLS setup: warden-tls's (ring, the Mozilla roots and an
//! optional extra CA bundle), as in the sandbox.

use std::path::Path;
use std::sync::Arc;

use azure_core::HttpClient;

pub(crate) use warden_tls::tls_failure;

use crate::error::ArmError;

/// The HTTP client every ARM and token request goes through: certificates
/// are checked against the Mozilla roots plus the certificates in `extra_ca`.
pub(crate) fn http_client(extra_ca: Option<&Path>) -> Result<Arc<dyn HttpClient>, ArmError> {
    let tls = warden_tls::client_config(extra_ca).map_err(|e| match e {
        warden_tls::TlsError::ExtraCaFile { path, message } => {
            ArmError::ExtraCaFile { path, message }
        }
        other => ArmError::HttpClient {
            message: other.to_string(),
        },
    })?;
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
