//! [`AzureArm`]: the real ARM client and its HTTP layer.
//!
//! Requests are built from `azure_mgmt_resources` wire models and sent through
//! `azure_core`'s HTTP client directly rather than the generated request
//! builders: their pipeline turns every error status into an opaque error
//! (dropping `Retry-After` and `error.details`), and their LRO futures re-send
//! the PUT until `provisioningState` settles, with no deadline and no
//! operation URL. See `lro.rs` for the polling.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use azure_core::auth::TokenCredential;
use azure_core::headers::{self, HeaderName, Headers};
use azure_core::{HttpClient, Method, Request, Url};
use azure_mgmt_resources::package_resources_2021_04::models as wire;
use bytes::Bytes;
use serde::Serialize;

use crate::error::ArmError;
use crate::model::ErrorDetail;
use crate::tls::{http_client, tls_failure};

/// API version of the `azure_mgmt_resources` models this crate speaks.
pub(crate) const API_VERSION: &str = "2021-04-01";

/// How [`AzureArm`] gets its bearer token.
#[derive(Clone)]
#[non_exhaustive]
pub enum Credential {
    /// A token obtained elsewhere (a sidecar, a test); sent verbatim.
    StaticToken(String),
    /// A Microsoft Entra app registration with a client secret.
    ClientSecret {
        /// Directory (tenant) id.
        tenant_id: String,
        /// Application (client) id.
        client_id: String,
        /// Client secret.
        secret: String,
    },
    /// The signed-in Azure CLI (`az account get-access-token`).
    AzureCli,
    /// `azure_identity`'s default chain: environment, workload identity,
    /// managed identity, Azure CLI.
    Default,
}

impl std::fmt::Debug for Credential {
    // Hand-written so secrets never reach logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::StaticToken(_) => f.write_str("StaticToken(<redacted>)"),
            Self::ClientSecret {
                tenant_id,
                client_id,
                ..
            } => f
                .debug_struct("ClientSecret")
                .field("tenant_id", tenant_id)
                .field("client_id", client_id)
                .field("secret", &"<redacted>")
                .finish(),
            Self::AzureCli => f.write_str("AzureCli"),
            Self::Default => f.write_str("Default"),
        }
    }
}

/// Where the bearer token comes from.
#[derive(Clone)]
pub(crate) enum TokenSource {
    Static(String),
    Azure {
        credential: Arc<dyn TokenCredential>,
        /// Names the credential in errors, e.g. "the Azure CLI".
        what: String,
    },
}

/// Azure Resource Manager over HTTPS (or plain HTTP on loopback, for tests).
///
/// HTTPS uses rustls with ring and checks certificates against the Mozilla
/// roots (plus an extra CA file with [`AzureArm::new_with_extra_ca`]); a
/// refused certificate is [`ArmError::Tls`]. Building a client also
/// installs ring as the process's default rustls provider, unless one was
/// installed before.
///
/// Long-running operations poll `Azure-AsyncOperation` (preferred) or
/// `Location`, honouring `Retry-After` up to a cap; 429 answers are retried
/// a bounded number of times after their `Retry-After`.
///
/// ```
/// use std::time::Duration;
/// use warden_azure::{AzureArm, Credential};
///
/// let arm = AzureArm::new("https://management.azure.com", Credential::StaticToken("eyJ0...".into()))?
///     .with_max_retry_after(Duration::from_secs(30))
///     .with_max_throttle_retries(5);
/// assert_eq!(arm.endpoint(), "https://management.azure.com/");
/// # Ok::<(), warden_azure::ArmError>(())
/// ```
#[derive(Clone)]
pub struct AzureArm {
    pub(crate) endpoint: Url,
    http: Arc<dyn HttpClient>,
    token: TokenSource,
    scope: String,
    pub(crate) max_retry_after: Duration,
    pub(crate) default_poll_interval: Duration,
    max_throttle_retries: u32,
    request_timeout: Duration,
}

impl std::fmt::Debug for AzureArm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AzureArm")
            .field("endpoint", &self.endpoint.as_str())
            .field("scope", &self.scope)
            .field("max_retry_after", &self.max_retry_after)
            .field("max_throttle_retries", &self.max_throttle_retries)
            .finish_non_exhaustive()
    }
}

impl AzureArm {
    /// A client for the ARM `endpoint` (e.g. `https://management.azure.com`).
    ///
    /// The token scope is `{endpoint}/.default`. Defaults: `Retry-After`
    /// capped at 60 s, 10 s between polls when ARM sends no `Retry-After`,
    /// 5 retries of a throttled request, 100 s per HTTP request.
    pub fn new(endpoint: &str, credential: Credential) -> Result<Self, ArmError> {
        Self::new_with_extra_ca(endpoint, credential, None)
    }

    /// [`AzureArm::new`], trusting the CA certificates in the PEM bundle
    /// `extra_ca_file` beside the Mozilla roots, for ARM and for the token
    /// requests of `credential` (an Azure Stack Hub, a TLS-inspecting proxy).
    ///
    /// # Errors
    ///
    /// [`ArmError::ExtraCaFile`] when the file cannot be read or holds no
    /// certificate, [`ArmError::InvalidUrl`] for a malformed endpoint.
    pub fn new_with_extra_ca(
        endpoint: &str,
        credential: Credential,
        extra_ca_file: Option<&Path>,
    ) -> Result<Self, ArmError> {
        let endpoint = parse_endpoint(endpoint)?;
        let http = http_client(extra_ca_file)?;
        let token = match credential {
            Credential::StaticToken(token) => TokenSource::Static(token),
            Credential::ClientSecret {
                tenant_id,
                client_id,
                secret,
            } => TokenSource::Azure {
                what: format!("the client secret of app {client_id} in tenant {tenant_id}"),
                credential: Arc::new(azure_identity::ClientSecretCredential::new(
                    Arc::clone(&http),
                    azure_core::authority_hosts::AZURE_PUBLIC_CLOUD.clone(),
                    tenant_id,
                    client_id,
                    secret,
                )),
            },
            Credential::AzureCli => TokenSource::Azure {
                credential: Arc::new(azure_identity::AzureCliCredential::new()),
                what: "the Azure CLI (`az account get-access-token`)".into(),
            },
            Credential::Default => TokenSource::Azure {
                credential: {
                    let options = azure_identity::TokenCredentialOptions::from(Arc::clone(&http));
                    let mut chain = azure_identity::DefaultAzureCredentialBuilder::new();
                    chain.with_options(options);
                    Arc::new(chain.build().map_err(|e| ArmError::Credential {
                        scope: String::new(),
                        message: error_chain(&e),
                    })?)
                },
                what: "azure_identity's default credential chain".into(),
            },
        };
        Ok(Self::with_token_source(endpoint, http, token))
    }

    /// A client for an already parsed `endpoint`, with the defaults of [`AzureArm::new`].
    pub(crate) fn with_token_source(
        endpoint: Url,
        http: Arc<dyn HttpClient>,
        token: TokenSource,
    ) -> Self {
        let scope = format!("{}/.default", endpoint.as_str().trim_end_matches('/'));
        Self {
            endpoint,
            http,
            token,
            scope,
            max_retry_after: Duration::from_secs(60),
            default_poll_interval: Duration::from_secs(10),
            max_throttle_retries: 5,
            request_timeout: Duration::from_secs(100),
        }
    }

    /// Caps every `Retry-After` wait, for polls and for 429s (default 60 s).
    #[must_use]
    pub fn with_max_retry_after(mut self, cap: Duration) -> Self {
        self.max_retry_after = cap;
        self
    }

    /// Poll interval when ARM sends no `Retry-After` (default 10 s).
    #[must_use]
    pub fn with_default_poll_interval(mut self, interval: Duration) -> Self {
        self.default_poll_interval = interval;
        self
    }

    /// How many times a 429 answer is retried before [`ArmError::Throttled`] (default 5).
    #[must_use]
    pub fn with_max_throttle_retries(mut self, retries: u32) -> Self {
        self.max_throttle_retries = retries;
        self
    }

    /// Time limit for one HTTP request (default 100 s).
    #[must_use]
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// The ARM endpoint, normalised.
    pub fn endpoint(&self) -> &str {
        self.endpoint.as_str()
    }

    /// `{endpoint}{path}?api-version=2021-04-01`, with each path segment escaped.
    pub(crate) fn url(&self, segments: &[&str]) -> Result<Url, ArmError> {
        let mut url = self.endpoint.clone();
        {
            let mut path = url.path_segments_mut().map_err(|()| ArmError::InvalidUrl {
                url: self.endpoint.to_string(),
                message: "the endpoint cannot carry a path".into(),
            })?;
            path.pop_if_empty();
            for segment in segments {
                if segment.is_empty() {
                    return Err(ArmError::InvalidUrl {
                        url: segments.join("/"),
                        message: "empty name".into(),
                    });
                }
                path.push(segment);
            }
        }
        url.query_pairs_mut()
            .append_pair("api-version", API_VERSION);
        Ok(url)
    }

    /// Resolves an operation URL from a response header and refuses other
    /// origins, so the bearer token only ever goes to the ARM endpoint.
    pub(crate) fn operation_url(&self, raw: &str) -> Result<Url, ArmError> {
        let url = self.endpoint.join(raw).map_err(|e| ArmError::InvalidUrl {
            url: raw.to_owned(),
            message: e.to_string(),
        })?;
        if url.origin() != self.endpoint.origin() {
            return Err(ArmError::InvalidUrl {
                url: url.to_string(),
                message: format!("operation url is not on the arm endpoint {}", self.endpoint),
            });
        }
        Ok(url)
    }

    async fn bearer(&self) -> Result<String, ArmError> {
        match &self.token {
            TokenSource::Static(token) => Ok(token.clone()),
            TokenSource::Azure { credential, what } => credential
                .get_token(&[self.scope.as_str()])
                .await
                .map(|t| t.token.secret().to_owned())
                .map_err(|e| {
                    let why = match tls_failure(&e) {
                        Some(tls) => format!("tls handshake with the token endpoint failed: {tls}"),
                        None => error_chain(&e),
                    };
                    ArmError::Credential {
                        scope: self.scope.clone(),
                        message: format!("authentication with {what} failed: {why}"),
                    }
                }),
        }
    }

    /// Sends one request, retrying 429s after their (capped) `Retry-After`.
    /// Any other status is returned for the caller to interpret.
    pub(crate) async fn send(
        &self,
        method: Method,
        url: &Url,
        body: Option<Bytes>,
        deadline: Option<Instant>,
    ) -> Result<Reply, ArmError> {
        let mut attempts = 0;
        loop {
            attempts += 1;
            let mut request = Request::new(url.clone(), method);
            request.insert_header(
                headers::AUTHORIZATION,
                format!("Bearer {}", self.bearer().await?),
            );
            request.insert_header(headers::ACCEPT, "application/json");
            if let Some(body) = &body {
                request.insert_header(headers::CONTENT_TYPE, "application/json");
                request.set_body(body.clone());
            }
            let reply = self.execute(&request, url).await?;
            if reply.status != 429 {
                return Ok(reply);
            }
            let wait = self
                .retry_after(&reply.headers)
                .unwrap_or(Duration::from_secs(1));
            let past_deadline = deadline.is_some_and(|d| Instant::now() + wait > d);
            if attempts > self.max_throttle_retries || past_deadline {
                return Err(ArmError::Throttled {
                    method: method.to_string(),
                    url: url.to_string(),
                    attempts,
                    retry_after: wait,
                });
            }
            tracing::debug!(%url, attempts, ?wait, "arm throttled the request; retrying");
            tokio::time::sleep(wait).await;
        }
    }

    async fn execute(&self, request: &Request, url: &Url) -> Result<Reply, ArmError> {
        let transport = |e: String| ArmError::Transport {
            url: url.to_string(),
            message: e,
        };
        let exchange = async {
            let response = self.http.execute_request(request).await?;
            let (status, headers, body) = response.deconstruct();
            let body = body.collect().await?;
            Ok::<_, azure_core::Error>(Reply {
                status: u16::from(status),
                headers,
                body,
            })
        };
        match tokio::time::timeout(self.request_timeout, exchange).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(e)) => Err(match tls_failure(&e) {
                Some(message) => ArmError::Tls {
                    url: url.to_string(),
                    message,
                },
                None => transport(error_chain(&e)),
            }),
            Err(_) => Err(transport(format!(
                "no answer within {:?}",
                self.request_timeout
            ))),
        }
    }

    /// `retry-after-ms`, `x-ms-retry-after-ms` or `Retry-After` seconds, capped.
    pub(crate) fn retry_after(&self, headers: &Headers) -> Option<Duration> {
        let ms = |name: &'static str| {
            headers
                .get_optional_str(&HeaderName::from_static(name))
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_millis)
        };
        let secs = headers
            .get_optional_str(&headers::RETRY_AFTER)
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        ms("retry-after-ms")
            .or_else(|| ms("x-ms-retry-after-ms"))
            .or(secs)
            .map(|d| d.min(self.max_retry_after))
    }

    /// Sends a JSON body built from a wire model.
    pub(crate) async fn send_json<T: Serialize>(
        &self,
        method: Method,
        url: &Url,
        body: &T,
        deadline: Option<Instant>,
    ) -> Result<Reply, ArmError> {
        let body = serde_json::to_vec(body).map_err(|e| ArmError::Decode {
            url: url.to_string(),
            message: format!("cannot encode the request body: {e}"),
        })?;
        self.send(method, url, Some(Bytes::from(body)), deadline)
            .await
    }
}

/// An ARM endpoint: an http(s) URL that can carry a path.
pub(crate) fn parse_endpoint(raw: &str) -> Result<Url, ArmError> {
    let endpoint = Url::parse(raw).map_err(|e| ArmError::InvalidUrl {
        url: raw.to_owned(),
        message: e.to_string(),
    })?;
    if !matches!(endpoint.scheme(), "http" | "https") || endpoint.cannot_be_a_base() {
        return Err(ArmError::InvalidUrl {
            url: endpoint.to_string(),
            message: "the endpoint must be an http(s) base url".into(),
        });
    }
    Ok(endpoint)
}

/// How `azure_identity`'s client secret credential (through `oauth2`)
/// reports a token endpoint's refusal.
type TokenEndpointError =
    oauth2::RequestTokenError<azure_core::Error, oauth2::basic::BasicErrorResponse>;

/// `error: source: source ...`: `azure_core` errors put the useful part
/// (the token endpoint's refusal, the CLI's message) in their sources.
pub(crate) fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        // oauth2's Display drops the answer ("Server returned error
        // response"), and with it Entra's `AADSTS...` reason.
        let cause_text = match cause.downcast_ref::<TokenEndpointError>() {
            Some(oauth2::RequestTokenError::ServerResponse(answer)) => {
                format!("the token endpoint answered {answer}")
            }
            _ => cause.to_string(),
        };
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// A raw ARM answer.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: Headers,
    pub(crate) body: Bytes,
}

impl Reply {
    pub(crate) fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    pub(crate) fn header(&self, name: &'static str) -> Option<&str> {
        self.headers
            .get_optional_str(&HeaderName::from_static(name))
            .filter(|v| !v.trim().is_empty())
    }

    /// Decodes a 2xx body into a wire model.
    pub(crate) fn json<T: serde::de::DeserializeOwned>(&self, url: &Url) -> Result<T, ArmError> {
        serde_json::from_slice(&self.body).map_err(|e| ArmError::Decode {
            url: url.to_string(),
            message: e.to_string(),
        })
    }

    /// The ARM error in this answer's body (`{"error":{...}}`).
    pub(crate) fn error_detail(&self) -> ErrorDetail {
        let parsed: Option<wire::CloudError> = serde_json::from_slice(&self.body).ok();
        match parsed.and_then(|c| c.error) {
            Some(e) => ErrorDetail::from(e),
            None => ErrorDetail {
                code: "Unknown".into(),
                message: String::from_utf8_lossy(&self.body)
                    .chars()
                    .take(500)
                    .collect(),
                target: None,
                details: Vec::new(),
            },
        }
    }

    pub(crate) fn into_error(self, method: Method, url: &Url) -> ArmError {
        let detail = self.error_detail();
        ArmError::Api {
            method: method.to_string(),
            url: url.to_string(),
            status: self.status,
            code: detail.code,
            message: detail.message,
            details: detail.details,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arm() -> AzureArm {
        AzureArm::new(
            "https://management.azure.com",
            Credential::StaticToken("t".into()),
        )
        .unwrap()
        .with_max_retry_after(Duration::from_secs(30))
    }

    #[test]
    fn resolves_relative_operation_urls_against_the_endpoint() {
        let url = arm()
            .operation_url("/subscriptions/s/operationresults/abc?api-version=2021-04-01")
            .unwrap();
        assert_eq!(
            url.as_str(),
            "https://management.azure.com/subscriptions/s/operationresults/abc?api-version=2021-04-01"
        );
    }

    #[test]
    fn refuses_operation_urls_on_other_origins_so_the_token_stays_home() {
        for raw in [
            "https://evil.example/subscriptions/s/operationresults/abc",
            "http://management.azure.com/subscriptions/s/operationresults/abc",
            "https://management.azure.com:8443/x",
        ] {
            let err = arm().operation_url(raw).unwrap_err();
            assert!(matches!(err, ArmError::InvalidUrl { .. }), "{raw}: {err:?}");
        }
    }

    #[test]
    fn escapes_names_into_single_path_segments() {
        let url = arm()
            .url(&["subscriptions", "s", "resourcegroups", "a/../b?x"])
            .unwrap();
        assert_eq!(
            url.as_str(),
            "https://management.azure.com/subscriptions/s/resourcegroups/a%2F..%2Fb%3Fx?api-version=2021-04-01"
        );
        assert!(arm().url(&["subscriptions", ""]).is_err());
    }

    #[test]
    fn caps_retry_after_and_prefers_the_millisecond_headers() {
        let mut headers = Headers::new();
        headers.insert("retry-after", "3600");
        assert_eq!(arm().retry_after(&headers), Some(Duration::from_secs(30)));
        headers.insert("retry-after-ms", "250");
        assert_eq!(
            arm().retry_after(&headers),
            Some(Duration::from_millis(250))
        );
        assert_eq!(arm().retry_after(&Headers::new()), None);
    }
}
