use std::path::PathBuf;
use std::time::Duration;

/// Everything that can go wrong when configuring or calling a chat model.
///
/// Transient failures (429, 5xx, connection errors, timeouts) are retried
/// inside [`ChatClient::complete`](crate::ChatClient::complete); the variants
/// below are what is left once retries are exhausted or not allowed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LlmError {
    /// The configuration is incomplete or malformed.
    #[error("invalid llm configuration: {reason}")]
    Config {
        /// What is wrong, naming the setting or environment variable.
        reason: String,
    },
    /// The extra CA bundle ([`LlmConfig::extra_ca_file`](crate::LlmConfig::extra_ca_file),
    /// `WARDEN_EXTRA_CA_FILE`) cannot be read or holds no usable certificate.
    #[error("extra CA file {}: {message}", path.display())]
    ExtraCaFile {
        /// The configured file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// The TLS handshake failed, most often because the server's certificate
    /// is not valid for its name or not signed by a trusted CA (the Mozilla
    /// roots, plus [`LlmConfig::extra_ca_file`](crate::LlmConfig::extra_ca_file)).
    /// Not retried: the next attempt would get the same certificate.
    #[error("tls handshake with the llm server failed: {message}")]
    Tls {
        /// rustls's reason, e.g. `invalid peer certificate: UnknownIssuer`.
        message: String,
    },
    /// The request could not be sent or the connection broke.
    #[error("llm transport error after {attempts} attempt(s): {message}")]
    Transport {
        /// Underlying error text.
        message: String,
        /// Requests made, including the failed retries.
        attempts: u32,
    },
    /// The server answered with a non-success status that is not retried, or
    /// kept answering 5xx until retries ran out.
    #[error("llm server answered {status}: {message}")]
    Status {
        /// HTTP status code.
        status: u16,
        /// `error.message` from the OpenAI error body, or the raw body.
        message: String,
    },
    /// The server kept answering 429 until retries ran out.
    #[error("llm rate limited after {attempts} attempt(s): {message}")]
    RateLimited {
        /// The last `Retry-After` the server sent, if any.
        retry_after: Option<Duration>,
        /// Requests made.
        attempts: u32,
        /// `error.message` from the last 429 body.
        message: String,
    },
    /// No complete answer arrived within the per-request timeout.
    #[error("llm request timed out after {after:?} ({attempts} attempt(s))")]
    Timeout {
        /// The per-request timeout that expired.
        after: Duration,
        /// Requests made.
        attempts: u32,
    },
    /// The server answered, but not with a chat completion we can read.
    #[error("invalid llm response: {reason}")]
    InvalidResponse {
        /// What could not be parsed.
        reason: String,
    },
}

impl LlmError {
    pub(crate) fn config(reason: impl Into<String>) -> Self {
        Self::Config {
            reason: reason.into(),
        }
    }

    pub(crate) fn invalid(reason: impl Into<String>) -> Self {
        Self::InvalidResponse {
            reason: reason.into(),
        }
    }
}
