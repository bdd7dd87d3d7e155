//! [`backend_from_env`]: the ARM capability configured from environment
//! variables, so a host (the CLI, the service, an embedding) turns it on the
//! way other Azure tooling is configured.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use azure_core::{HttpClient, Url};
use warden_sandbox::ArmBackend;

use crate::backend::AzureBackend;
use crate::client::{AzureArm, TokenSource, error_chain, parse_endpoint};
use crate::error::ArmError;
use crate::tls::http_client;

const SUBSCRIPTION_ID: &str = "AZURE_SUBSCRIPTION_ID";
const ENDPOINT: &str = "WARDEN_ARM_ENDPOINT";
const AUTHORITY_HOST: &str = "AZURE_AUTHORITY_HOST";
const TENANT_ID: &str = "AZURE_TENANT_ID";
const CLIENT_ID: &str = "AZURE_CLIENT_ID";
const CLIENT_SECRET: &str = "AZURE_CLIENT_SECRET";
const FEDERATED_TOKEN_FILE: &str = "AZURE_FEDERATED_TOKEN_FILE";
const EXTRA_CA_FILE: &str = "WARDEN_EXTRA_CA_FILE";

/// Every variable this module reads.
const VARIABLES: [&str; 8] = [
    SUBSCRIPTION_ID,
    ENDPOINT,
    AUTHORITY_HOST,
    TENANT_ID,
    CLIENT_ID,
    CLIENT_SECRET,
    FEDERATED_TOKEN_FILE,
    EXTRA_CA_FILE,
];

const DEFAULT_ENDPOINT: &str = "https://management.azure.com";
const DEFAULT_AUTHORITY_HOST: &str = "https://login.microsoftonline.com";

/// The ARM capability (`SandboxConfig::arm`) configured from the process
/// environment, or `None` when `AZURE_SUBSCRIPTION_ID` is unset.
///
/// | Variable | Meaning |
/// |---|---|
/// | `AZURE_SUBSCRIPTION_ID` | Turns the capability on. Plugins still name the subscription of each request, and the policy checks it. |
/// | `WARDEN_ARM_ENDPOINT` | ARM endpoint; default `https://management.azure.com` (sovereign clouds, or a loopback fake in tests). |
/// | `AZURE_AUTHORITY_HOST` | Microsoft Entra authority; default `https://login.microsoftonline.com`. |
/// | `AZURE_TENANT_ID`, `AZURE_CLIENT_ID`, `AZURE_CLIENT_SECRET` | An app registration's client secret. |
/// | `AZURE_TENANT_ID`, `AZURE_CLIENT_ID`, `AZURE_FEDERATED_TOKEN_FILE` | Workload identity (AKS): the federated token is read once, here. |
/// | `WARDEN_EXTRA_CA_FILE` | A PEM bundle of CA certificates trusted beside the Mozilla roots, for ARM and the token endpoints (read once, here; the LLM client reads the same variable). |
///
/// The credential is the first that is configured, as in `azure_identity`'s
/// default chain: a client secret, then workload identity, else managed
/// identity (App Service, then the VM's IMDS) followed by the Azure CLI
/// (`az login`), which only fail at the first request if neither answers. A
/// client secret or federated token that is set but refused is an error, not
/// a reason to fall through to another identity.
///
/// Empty variables count as unset. Plain `http://` endpoints and authority
/// hosts are refused unless the host is loopback, so secrets and tokens
/// never cross a network in clear.
///
/// # Errors
///
/// [`ArmError::Environment`] naming the variable when a URL is malformed,
/// a variable is not UTF-8, `AZURE_CLIENT_SECRET` or
/// `AZURE_FEDERATED_TOKEN_FILE` is set without `AZURE_TENANT_ID` and
/// `AZURE_CLIENT_ID`, the federated token file cannot be read, or the
/// extra CA file cannot be read or holds no certificate.
///
/// ```no_run
/// use warden_sandbox::SandboxConfig;
///
/// # fn demo() -> Result<(), warden_azure::ArmError> {
/// let mut config = SandboxConfig::default();
/// if let Some(arm) = warden_azure::backend_from_env()? {
///     config.arm(arm);
/// }
/// # Ok(()) }
/// ```
pub fn backend_from_env() -> Result<Option<Arc<dyn ArmBackend>>, ArmError> {
    for name in VARIABLES {
        if let Err(std::env::VarError::NotUnicode(_)) = std::env::var(name) {
            return Err(environment(name, "is not valid UTF-8"));
        }
    }
    backend_from_vars(|name| std::env::var(name).ok())
}

/// [`backend_from_env`] reading variables through `var` instead of the
/// process environment (tests, or hosts with their own configuration).
///
/// Only the managed identity and Azure CLI fallbacks still consult the
/// process environment, inside `azure_identity`.
///
/// ```
/// use std::collections::HashMap;
///
/// let vars = HashMap::from([
///     ("AZURE_SUBSCRIPTION_ID", "00000000-0000-0000-0000-000000000001"),
///     ("AZURE_TENANT_ID", "72f988bf-0000-4000-8000-00000000e17a"),
///     ("AZURE_CLIENT_ID", "5b0c8e6d-0000-4000-8000-0000000c11e7"),
///     ("AZURE_CLIENT_SECRET", "s3cret"),
/// ]);
/// let arm = warden_azure::backend_from_vars(|name| vars.get(name).map(|v| v.to_string()))?;
/// assert!(arm.is_some());
///
/// let nothing = warden_azure::backend_from_vars(|_| None)?;
/// assert!(nothing.is_none());
/// # Ok::<(), warden_azure::ArmError>(())
/// ```
pub fn backend_from_vars(
    var: impl Fn(&str) -> Option<String>,
) -> Result<Option<Arc<dyn ArmBackend>>, ArmError> {
    let var = |name: &str| var(name).filter(|v| !v.trim().is_empty());
    if var(SUBSCRIPTION_ID).is_none() {
        return Ok(None);
    }
    let endpoint = url_var(ENDPOINT, var(ENDPOINT).as_deref(), DEFAULT_ENDPOINT)?;
    let authority = url_var(
        AUTHORITY_HOST,
        var(AUTHORITY_HOST).as_deref(),
        DEFAULT_AUTHORITY_HOST,
    )?;
    let extra_ca = var(EXTRA_CA_FILE);
    let http = http_client(extra_ca.as_deref().map(str::trim).map(Path::new))
        .map_err(|e| environment(EXTRA_CA_FILE, e.to_string()))?;
    let token = credential(&var, &http, authority)?;
    if let TokenSource::Azure { what, .. } = &token {
        tracing::debug!(endpoint = %endpoint, credential = %what, "arm capability configured from the environment");
    }
    let arm = AzureArm::with_token_source(endpoint, http, token);
    Ok(Some(Arc::new(AzureBackend::new(Arc::new(arm)))))
}

fn environment(variable: &str, message: impl Into<String>) -> ArmError {
    ArmError::Environment {
        variable: variable.to_owned(),
        message: message.into(),
    }
}

/// The URL in `name` (or `default`): http(s), and plain http only on loopback.
fn url_var(name: &str, value: Option<&str>, default: &str) -> Result<Url, ArmError> {
    let raw = value.map_or(default, str::trim);
    let url = parse_endpoint(raw).map_err(|e| environment(name, e.to_string()))?;
    if url.scheme() == "http" && !is_loopback(&url) {
        return Err(environment(
            name,
            format!(
                "`{raw}` is plain http on a non-loopback host; use https so tokens and secrets \
                 are not sent in clear"
            ),
        ));
    }
    Ok(url)
}

fn is_loopback(url: &Url) -> bool {
    let host = url
        .host_str()
        .unwrap_or_default()
        .trim_start_matches('[')
        .trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The first configured credential, in `azure_identity`'s default order.
fn credential(
    var: &impl Fn(&str) -> Option<String>,
    http: &Arc<dyn HttpClient>,
    authority: Url,
) -> Result<TokenSource, ArmError> {
    let app = |because: &str| -> Result<(String, String), ArmError> {
        let need = |name: &str| {
            var(name).ok_or_else(|| {
                environment(
                    name,
                    format!(
                        "is not set, but {because} is; it needs {TENANT_ID} and {CLIENT_ID} too"
                    ),
                )
            })
        };
        Ok((need(TENANT_ID)?, need(CLIENT_ID)?))
    };
    if let Some(secret) = var(CLIENT_SECRET) {
        let (tenant, client) = app(CLIENT_SECRET)?;
        return Ok(TokenSource::Azure {
            what: format!(
                "the client secret in {CLIENT_SECRET} (app {client}, tenant {tenant}, \
                 authority {authority})"
            ),
            credential: Arc::new(azure_identity::ClientSecretCredential::new(
                Arc::clone(http),
                authority,
                tenant,
                client,
                secret,
            )),
        });
    }
    if let Some(file) = var(FEDERATED_TOKEN_FILE) {
        let (tenant, client) = app(FEDERATED_TOKEN_FILE)?;
        let assertion = fs_err::read_to_string(&file)
            .map_err(|e| environment(FEDERATED_TOKEN_FILE, e.to_string()))?;
        return Ok(TokenSource::Azure {
            what: format!(
                "workload identity from {FEDERATED_TOKEN_FILE} (app {client}, tenant {tenant}, \
                 authority {authority})"
            ),
            credential: Arc::new(azure_identity::WorkloadIdentityCredential::new(
                Arc::clone(http),
                authority,
                tenant,
                client,
                assertion.trim().to_owned(),
            )),
        });
    }
    let mut options = azure_identity::TokenCredentialOptions::from(Arc::clone(http));
    options.set_authority_host(authority.to_string());
    let mut chain = azure_identity::DefaultAzureCredentialBuilder::new();
    // The environment credentials were handled above, from `var`.
    chain.with_options(options).exclude_environment_credential();
    let chain = chain.build().map_err(|e| ArmError::Credential {
        scope: String::new(),
        message: error_chain(&e),
    })?;
    Ok(TokenSource::Azure {
        credential: Arc::new(chain),
        what: format!(
            "managed identity or the Azure CLI (neither {CLIENT_SECRET} nor \
             {FEDERATED_TOKEN_FILE} is set; on a workstation run `az login`)"
        ),
    })
}
