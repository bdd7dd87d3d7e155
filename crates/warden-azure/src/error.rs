//! The crate's one error type.

use std::path::PathBuf;
use std::time::Duration;

use crate::model::ErrorDetail;

/// Everything that can go wrong talking to Azure Resource Manager.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ArmError {
    /// ARM answered with an error status and (usually) an
    /// `{"error":{"code","message","details"}}` body.
    #[error("arm returned {status} {code} for {method} {url}: {message}")]
    Api {
        /// HTTP method of the failed request.
        method: String,
        /// URL of the failed request (without credentials; ARM URLs carry none).
        url: String,
        /// HTTP status code.
        status: u16,
        /// ARM error code, e.g. `ResourceGroupNotFound`; `"Unknown"` when the body had none.
        code: String,
        /// ARM error message.
        message: String,
        /// Nested errors from `error.details`.
        details: Vec<ErrorDetail>,
    },
    /// ARM kept answering 429 after the bounded number of retries, or the
    /// next `Retry-After` would have passed the deadline.
    #[error(
        "arm throttled {method} {url} after {attempts} attempts (last retry-after {retry_after:?})"
    )]
    Throttled {
        /// HTTP method of the throttled request.
        method: String,
        /// URL of the throttled request.
        url: String,
        /// Requests sent, including the first.
        attempts: u32,
        /// The last `Retry-After` ARM asked for.
        retry_after: Duration,
    },
    /// A what-if did not finish before its deadline (operations that return
    /// [`OperationState`](crate::OperationState) report this as `Running` instead).
    #[error("arm operation at {operation_url} still {last_status} at the deadline")]
    DeadlineExceeded {
        /// URL that was being polled.
        operation_url: String,
        /// Last status ARM reported.
        last_status: String,
    },
    /// A long-running operation ended in `Failed` or `Canceled` where the
    /// caller expected a result (what-if).
    #[error("arm operation failed with {code}: {message}")]
    OperationFailed {
        /// ARM error code.
        code: String,
        /// ARM error message.
        message: String,
        /// Nested errors.
        details: Vec<ErrorDetail>,
    },
    /// The request never got an HTTP answer (connection refused, TLS, ...).
    #[error("cannot reach arm at {url}: {message}")]
    Transport {
        /// URL of the request.
        url: String,
        /// Underlying error text.
        message: String,
    },
    /// The TLS handshake with ARM failed, most often because its
    /// certificate is not valid for the endpoint's name or not signed by a
    /// trusted CA (the Mozilla roots, plus the extra CA file). Not retried.
    #[error("tls handshake with arm at {url} failed: {message}")]
    Tls {
        /// URL of the request.
        url: String,
        /// rustls's reason, e.g. `invalid peer certificate: UnknownIssuer`.
        message: String,
    },
    /// The extra CA bundle given to [`AzureArm::new_with_extra_ca`](crate::AzureArm::new_with_extra_ca)
    /// cannot be read or holds no usable certificate.
    #[error("extra CA file {}: {message}", path.display())]
    ExtraCaFile {
        /// The configured file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// The HTTP client could not be built (its TLS setup, or a proxy
    /// variable reqwest cannot read).
    #[error("cannot build the arm http client: {message}")]
    HttpClient {
        /// Underlying error text.
        message: String,
    },
    /// The credential could not produce a bearer token.
    #[error("cannot get an arm token for scope {scope}: {message}")]
    Credential {
        /// Token scope asked for.
        scope: String,
        /// Underlying error text.
        message: String,
    },
    /// A 2xx answer whose body did not match the ARM schema.
    #[error("cannot decode arm answer from {url}: {message}")]
    Decode {
        /// URL of the request.
        url: String,
        /// Underlying error text.
        message: String,
    },
    /// The endpoint, a name, or an operation URL could not be turned into a
    /// URL this client is willing to call.
    #[error("invalid arm url {url}: {message}")]
    InvalidUrl {
        /// The offending URL or URL fragment.
        url: String,
        /// Why it was refused.
        message: String,
    },
    /// A variable read by [`backend_from_env`](crate::backend_from_env) is
    /// missing, malformed or points at something unreadable.
    #[error("environment variable {variable}: {message}")]
    Environment {
        /// The variable, e.g. `WARDEN_ARM_ENDPOINT`.
        variable: String,
        /// What is wrong with it.
        message: String,
    },
}
