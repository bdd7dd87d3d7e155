use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_openai::Client;
use async_openai::config::{AzureConfig, Config, OPENAI_API_BASE, OpenAIConfig};
use async_openai::error::{OpenAIError, StreamError, WrappedError};
use async_openai::middleware::{HttpRequestFactory, ReqwestService};
use async_openai::types::chat::CreateChatCompletionRequest;
use futures::StreamExt;
use http::header::{AUTHORIZATION, HeaderMap, HeaderValue, RETRY_AFTER};
use secrecy::SecretString;
use serde_json::Value;
use tower::ServiceExt;
use tracing::{Instrument, field};

use crate::retry::{backoff, parse_retry_after};
use crate::tls::{http_client, tls_failure};
use crate::wire::{StreamMerger, TokenCap, build_request, chunk_from_value, completion_from_value};
use crate::{AzureAuth, ChatRequest, ChatResponse, LlmConfig, LlmError, Provider};

/// A chat model behind an OpenAI-compatible API, with retries, a per-attempt
/// timeout and token accounting. Cheap to clone; clones share connections.
///
/// HTTPS uses rustls with ring and checks the server's certificate against
/// the Mozilla roots plus [`LlmConfig::extra_ca_file`]; a refused
/// certificate is [`LlmError::Tls`], never retried. Building a client also
/// installs ring as the process's default rustls provider, unless one was
/// installed before.
///
/// ```no_run
/// use warden_llm::{ChatClient, ChatRequest, LlmConfig, Message, ToolSpec};
///
/// # async fn run() -> Result<(), warden_llm::LlmError> {
/// let Some(config) = LlmConfig::from_env()? else {
///     return Ok(()); // no model configured: plan from runbooks instead
/// };
/// let client = ChatClient::new(config)?;
/// let response = client
///     .complete(&ChatRequest {
///         messages: vec![
///             Message::System("You operate a web fleet.".into()),
///             Message::User("nginx on web-3 returns 502".into()),
///         ],
///         tools: vec![ToolSpec {
///             name: "restart_service".into(),
///             description: "Restart a systemd unit on a host".into(),
///             parameters: serde_json::json!({
///                 "type": "object",
///                 "properties": {"host": {"type": "string"}, "unit": {"type": "string"}},
///                 "required": ["host", "unit"]
///             }),
///         }],
///         parallel_tool_calls: false,
///         stream: false,
///     })
///     .await?;
/// for call in &response.tool_calls {
///     println!("{} {}", call.name, call.arguments);
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct ChatClient {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client<Box<dyn Config>>,
    config: LlmConfig,
    cap: TokenCap,
}

impl fmt::Debug for ChatClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChatClient")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl ChatClient {
    /// Builds a client; no request is made until [`ChatClient::complete`].
    ///
    /// # Errors
    ///
    /// [`LlmError::Config`] for a zero timeout or a bearer token that is not
    /// a header value, [`LlmError::ExtraCaFile`] when the extra CA bundle
    /// cannot be read or holds no certificate.
    pub fn new(config: LlmConfig) -> Result<Self, LlmError> {
        let (wire_config, cap): (Box<dyn Config>, TokenCap) = match &config.provider {
            Provider::OpenAi { api_key } => (
                Box::new(
                    OpenAIConfig::new()
                        .with_api_base(OPENAI_API_BASE)
                        .with_api_key(api_key),
                ),
                TokenCap::MaxCompletionTokens,
            ),
            Provider::Compatible { base_url, api_key } => {
                let base = OpenAIConfig::new()
                    .with_api_base(base_url.trim_end_matches('/'))
                    .with_api_key(api_key.clone().unwrap_or_default());
                let wire: Box<dyn Config> = match api_key {
                    Some(_) => Box::new(base),
                    // Keyless local servers get no `Authorization: Bearer ` at all.
                    None => Box::new(HeaderOverride {
                        inner: base,
                        headers: HeaderMap::new(),
                    }),
                };
                (wire, TokenCap::MaxTokens)
            }
            Provider::Azure {
                endpoint,
                deployment,
                api_version,
                auth,
            } => {
                let base = AzureConfig::new()
                    .with_api_base(endpoint.trim_end_matches('/'))
                    .with_deployment_id(deployment)
                    .with_api_version(api_version);
                let wire: Box<dyn Config> = match auth {
                    AzureAuth::ApiKey(key) => Box::new(base.with_api_key(key)),
                    // AzureConfig only knows `api-key`; Entra ID wants a bearer token.
                    AzureAuth::Bearer(token) => {
                        let mut value =
                            HeaderValue::try_from(format!("Bearer {token}")).map_err(|_| {
                                LlmError::config("azure bearer token is not a valid header value")
                            })?;
                        value.set_sensitive(true);
                        let mut headers = HeaderMap::new();
                        headers.insert(AUTHORIZATION, value);
                        Box::new(HeaderOverride {
                            inner: base,
                            headers,
                        })
                    }
                };
                (wire, TokenCap::MaxCompletionTokens)
            }
        };
        if config.timeout.is_zero() {
            return Err(LlmError::config("timeout must be greater than zero"));
        }
        let http = http_client(config.extra_ca_file.as_deref())?;
        // `Client::build`, not `with_config`: the latter makes (and could
        // panic making) a default reqwest client of its own.
        let client = with_transport(Client::build(http.clone(), wire_config), http);
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                config,
                cap,
            }),
        })
    }

    /// The configuration this client was built with.
    pub fn config(&self) -> &LlmConfig {
        &self.inner.config
    }

    /// Sends `req` and returns the first choice, retrying 429 (honouring
    /// `Retry-After`), 408, 409, 5xx, connection errors and timeouts up to
    /// [`LlmConfig::max_retries`] times. Other 4xx fail at once with the
    /// server's error message.
    pub async fn complete(&self, req: &ChatRequest) -> Result<ChatResponse, LlmError> {
        let config = &self.inner.config;
        let span = tracing::info_span!(
            "llm.chat",
            model = %config.model,
            provider = provider_kind(&config.provider),
            stream = req.stream,
            tools = req.tools.len(),
            attempt = field::Empty,
            prompt_tokens = field::Empty,
            completion_tokens = field::Empty,
            total_tokens = field::Empty,
            cost_usd = field::Empty,
        );
        self.complete_with_retries(req, &span)
            .instrument(span.clone())
            .await
    }

    async fn complete_with_retries(
        &self,
        req: &ChatRequest,
        span: &tracing::Span,
    ) -> Result<ChatResponse, LlmError> {
        let config = &self.inner.config;
        let wire = build_request(&config.model, req, config.max_output_tokens, self.inner.cap)?;
        let mut attempt: u32 = 0;
        let mut retry_wait = Duration::ZERO;
        loop {
            attempt += 1;
            span.record("attempt", attempt);
            let failure =
                match tokio::time::timeout(config.timeout, self.attempt(&wire, req.stream)).await {
                    Ok(Ok(mut response)) => {
                        response.attempts = attempt;
                        response.retry_wait = retry_wait;
                        span.record("prompt_tokens", response.usage.prompt_tokens);
                        span.record("completion_tokens", response.usage.completion_tokens);
                        span.record("total_tokens", response.usage.total_tokens);
                        if let Some(price) = &config.price {
                            span.record("cost_usd", response.usage.cost_usd(price));
                        }
                        tracing::debug!(finish_reason = ?response.finish_reason, "llm answered");
                        return Ok(response);
                    }
                    Ok(Err(failure)) => failure,
                    Err(_elapsed) => Failure::Timeout,
                };
            let (error, wait) = failure.into_error(attempt, config.timeout);
            let Some(wait) = wait.filter(|_| attempt <= config.max_retries) else {
                tracing::warn!(error = %error, "llm request failed");
                return Err(error);
            };
            tracing::warn!(
                error = %error,
                wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                "retrying llm request"
            );
            tokio::time::sleep(wait).await;
            retry_wait += wait;
        }
    }

    async fn attempt(
        &self,
        wire: &CreateChatCompletionRequest,
        stream: bool,
    ) -> Result<ChatResponse, Failure> {
        // The `_byot` calls hand us JSON values so that parsing goes through
        // the same path as `parse_completion` and `merge_sse`.
        let chat = self.inner.client.chat();
        if !stream {
            let value: Value = chat.create_byot(wire).await.map_err(Failure::from)?;
            return completion_from_value(value).map_err(Failure::Llm);
        }
        let mut chunks = chat
            .create_stream_byot::<_, Value>(wire)
            .await
            .map_err(Failure::from)?;
        let mut merger = StreamMerger::default();
        while let Some(chunk) = chunks.next().await {
            let value = chunk.map_err(Failure::from)?;
            merger.push(chunk_from_value(value).map_err(Failure::Llm)?);
        }
        merger.finish().map_err(Failure::Llm)
    }
}

fn provider_kind(provider: &Provider) -> &'static str {
    match provider {
        Provider::OpenAi { .. } => "openai",
        Provider::Compatible { .. } => "compatible",
        Provider::Azure { .. } => "azure",
    }
}

/// Replaces async-openai's default executor (which retries on its own) with
/// a plain reqwest call that turns every non-2xx answer into an
/// [`HttpFailure`], so our retry loop sees the status and `Retry-After`.
fn with_transport<C: Config>(client: Client<C>, http: reqwest::Client) -> Client<C> {
    let reqwest = ReqwestService::new(http);
    let service = tower::service_fn(move |factory: HttpRequestFactory| {
        let reqwest = reqwest.clone();
        async move {
            let response = reqwest.oneshot(factory).await?;
            let status = response.status();
            if status.is_success() {
                return Ok(response);
            }
            let retry_after = response
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let body = response.bytes().await.map_err(OpenAIError::Reqwest)?;
            Err(OpenAIError::Boxed(Box::new(HttpFailure {
                status: status.as_u16(),
                retry_after,
                body: String::from_utf8_lossy(&body).into_owned(),
            })))
        }
    });
    client.with_http_service(service)
}

/// A non-2xx answer, carried through async-openai as `OpenAIError::Boxed`.
#[derive(Debug)]
struct HttpFailure {
    status: u16,
    retry_after: Option<String>,
    body: String,
}

impl fmt::Display for HttpFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "http status {}", self.status)
    }
}

impl std::error::Error for HttpFailure {}

impl HttpFailure {
    fn error_body(&self) -> Option<WrappedError> {
        serde_json::from_str(&self.body).ok()
    }

    fn message(&self) -> String {
        if let Some(wrapped) = self.error_body() {
            return wrapped.error.message;
        }
        let body = self.body.trim();
        if body.is_empty() {
            return http::StatusCode::from_u16(self.status)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("no body")
                .to_owned();
        }
        body.chars().take(500).collect()
    }

    fn is_quota_exhausted(&self) -> bool {
        self.error_body().is_some_and(|w| {
            w.error.r#type.as_deref() == Some("insufficient_quota")
                || w.error.code.as_deref() == Some("insufficient_quota")
        })
    }
}

/// Why one attempt failed.
#[derive(Debug)]
enum Failure {
    Http(HttpFailure),
    Transport { message: String, retryable: bool },
    Tls(String),
    Timeout,
    Llm(LlmError),
}

impl From<OpenAIError> for Failure {
    fn from(error: OpenAIError) -> Self {
        match error {
            OpenAIError::Boxed(boxed) => match boxed.downcast::<HttpFailure>() {
                Ok(failure) => Self::Http(*failure),
                Err(other) => match tls_failure(other.as_ref()) {
                    Some(message) => Self::Tls(message),
                    None => Self::Transport {
                        message: error_chain(other.as_ref()),
                        retryable: false,
                    },
                },
            },
            OpenAIError::Reqwest(e) => match tls_failure(&e) {
                Some(message) => Self::Tls(message),
                None => Self::Transport {
                    retryable: e.is_connect() || e.is_timeout() || e.is_request() || e.is_body(),
                    message: error_chain(&e),
                },
            },
            OpenAIError::ApiError(api) => Self::Http(HttpFailure {
                status: api.status_code.as_u16(),
                retry_after: None,
                body: serde_json::json!({ "error": { "message": api.api_error.message } })
                    .to_string(),
            }),
            OpenAIError::JSONDeserialize(e, content) => {
                match serde_json::from_str::<WrappedError>(&content) {
                    Ok(wrapped) => Self::Llm(LlmError::invalid(format!(
                        "server sent an error instead of a completion: {}",
                        wrapped.error.message
                    ))),
                    Err(_) => Self::Llm(LlmError::invalid(format!(
                        "cannot parse server answer: {e}"
                    ))),
                }
            }
            OpenAIError::StreamError(stream) => match *stream {
                StreamError::EventStream(message) => Self::Transport {
                    message,
                    retryable: true,
                },
                other => Self::Llm(LlmError::invalid(other.to_string())),
            },
            OpenAIError::InvalidArgument(message) => Self::Llm(LlmError::config(message)),
            other => Self::Transport {
                message: other.to_string(),
                retryable: false,
            },
        }
    }
}

impl Failure {
    /// The error to report, and how long to wait before retrying when the
    /// failure is transient.
    fn into_error(self, attempts: u32, timeout: Duration) -> (LlmError, Option<Duration>) {
        match self {
            Self::Http(failure) if failure.status == 429 && !failure.is_quota_exhausted() => {
                let retry_after = failure
                    .retry_after
                    .as_deref()
                    .and_then(|v| parse_retry_after(v, SystemTime::now()));
                let error = LlmError::RateLimited {
                    retry_after,
                    attempts,
                    message: failure.message(),
                };
                (
                    error,
                    Some(retry_after.unwrap_or_else(|| backoff(attempts))),
                )
            }
            Self::Http(failure) => {
                let retryable = matches!(failure.status, 408 | 409 | 500..=599);
                let wait = retryable.then(|| {
                    failure
                        .retry_after
                        .as_deref()
                        .and_then(|v| parse_retry_after(v, SystemTime::now()))
                        .unwrap_or_else(|| backoff(attempts))
                });
                let error = LlmError::Status {
                    status: failure.status,
                    message: failure.message(),
                };
                (error, wait)
            }
            Self::Transport { message, retryable } => (
                LlmError::Transport { message, attempts },
                retryable.then(|| backoff(attempts)),
            ),
            Self::Tls(message) => (LlmError::Tls { message }, None),
            Self::Timeout => (
                LlmError::Timeout {
                    after: timeout,
                    attempts,
                },
                Some(backoff(attempts)),
            ),
            Self::Llm(error) => (error, None),
        }
    }
}

/// reqwest's top-level message hides the cause ("error sending request").
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

/// Another config's URL and query, with our own auth headers.
struct HeaderOverride<C> {
    inner: C,
    headers: HeaderMap,
}

impl<C: Config> Config for HeaderOverride<C> {
    fn headers(&self) -> HeaderMap {
        self.headers.clone()
    }

    fn url(&self, path: &str) -> String {
        self.inner.url(path)
    }

    fn query(&self) -> Vec<(&str, &str)> {
        self.inner.query()
    }

    fn api_base(&self) -> &str {
        self.inner.api_base()
    }

    fn api_key(&self) -> &SecretString {
        self.inner.api_key()
    }
}
