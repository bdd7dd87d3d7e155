//! A small blocking HTTP client over the host's `wasi:http`.
//!
//! Declare the hosts in [`Tool::capabilities`](crate::Tool::capabilities)
//! with [`Capability::Http`](crate::Capability::Http); the host denies
//! everything else, and asks its policy about every request.
//!
//! ```no_run
//! use warden_pdk::http::Request;
//!
//! let response = Request::get("http://127.0.0.1:8080/health").send()?;
//! assert_eq!(response.status, 200);
//! # Ok::<(), warden_pdk::http::HttpError>(())
//! ```
//!
//! # Host-side secrets
//!
//! A webhook URL with a token in it should not pass through a plugin's
//! input or output. The operator registers it on the host under a name;
//! the plugin sends to [`Request::to_secret`] (`https://<name>.secret.warden/`)
//! and declares the host [`secret_host`]`(name)`, or `*.secret.warden` for
//! any secret (a bare `*` does not cover secrets). The host sends the
//! request to the real URL and returns only the response; an undeclared or
//! unknown secret is [`HttpError::Denied`].
//!
//! ```no_run
//! use warden_pdk::http::Request;
//!
//! let response = Request::to_secret("POST", "ops-slack")
//!     .header("content-type", "application/json")
//!     .body(r#"{"text": "disk almost full"}"#)
//!     .send()?;
//! assert!((200..300).contains(&response.status));
//! # Ok::<(), warden_pdk::http::HttpError>(())
//! ```

use std::time::Duration;

use crate::__bindings::wasi::http::outgoing_handler;
use crate::__bindings::wasi::http::types::{
    ErrorCode, Fields, IncomingBody, Method, OutgoingBody, OutgoingRequest, RequestOptions, Scheme,
};
use crate::__bindings::wasi::io::streams::StreamError;
use crate::ToolError;

/// The reserved host suffix of secret references: `<name>.secret.warden`.
pub const SECRET_SUFFIX: &str = ".secret.warden";

/// The host that refers to the host-side secret `name`, for
/// [`Capability::Http`](crate::Capability::Http) declarations.
///
/// ```
/// assert_eq!(warden_pdk::http::secret_host("ops-slack"), "ops-slack.secret.warden");
/// ```
pub fn secret_host(name: &str) -> String {
    format!("{name}{SECRET_SUFFIX}")
}

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    /// The URL could not be parsed.
    InvalidUrl(String),
    /// The host refused the request (undeclared host or policy denial).
    Denied,
    /// The response body was larger than the request's limit.
    BodyTooLarge(usize),
    /// Anything else the transport reported.
    Transport(String),
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HttpError::InvalidUrl(m) => write!(f, "invalid url: {m}"),
            HttpError::Denied => f.write_str("request denied by the host's policy"),
            HttpError::BodyTooLarge(n) => write!(f, "response body exceeds {n} bytes"),
            HttpError::Transport(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for HttpError {}

impl From<HttpError> for ToolError {
    fn from(e: HttpError) -> Self {
        match e {
            HttpError::Denied => ToolError::Denied(e.to_string()),
            other => ToolError::Failed(other.to_string()),
        }
    }
}

/// An outgoing request; build with [`Request::get`] or [`Request::new`].
#[derive(Debug, Clone)]
pub struct Request {
    /// Upper-case method.
    pub method: String,
    /// Absolute `http://` or `https://` URL.
    pub url: String,
    /// Header pairs.
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Option<Vec<u8>>,
    /// Connect and first-byte timeout. Default: the host's call deadline.
    pub timeout: Option<Duration>,
    /// Largest body read; more is an error. Default: 8 MiB.
    pub max_body: usize,
}

/// A response with its whole body read.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Header pairs, names in lower case.
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl Response {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl Request {
    /// A request with `method` to `url`.
    pub fn new(method: &str, url: &str) -> Self {
        Request {
            method: method.to_ascii_uppercase(),
            url: url.to_string(),
            headers: Vec::new(),
            body: None,
            timeout: None,
            max_body: 8 << 20,
        }
    }

    /// A GET request.
    pub fn get(url: &str) -> Self {
        Self::new("GET", url)
    }

    /// A request with `method` to the URL the host holds as secret `name`
    /// (see [the module docs](self)); the plugin never sees the URL.
    pub fn to_secret(method: &str, name: &str) -> Self {
        Self::new(method, &format!("https://{}/", secret_host(name)))
    }

    /// Add a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Set the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = Some(body.into());
        self
    }

    /// Set the connect and first-byte timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Send the request and read the whole response.
    pub fn send(&self) -> Result<Response, HttpError> {
        let url = ParsedUrl::parse(&self.url)?;
        let fields = Fields::new();
        for (k, v) in &self.headers {
            fields
                .append(k, v.as_bytes())
                .map_err(|e| HttpError::InvalidUrl(format!("header `{k}`: {e:?}")))?;
        }
        let request = OutgoingRequest::new(fields);
        let method = match self.method.as_str() {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "DELETE" => Method::Delete,
            "PATCH" => Method::Patch,
            "OPTIONS" => Method::Options,
            other => Method::Other(other.to_string()),
        };
        let bad = |what: &str| HttpError::InvalidUrl(format!("{what} rejected: {}", self.url));
        request.set_method(&method).map_err(|_| bad("method"))?;
        request
            .set_scheme(Some(&if url.https {
                Scheme::Https
            } else {
                Scheme::Http
            }))
            .map_err(|_| bad("scheme"))?;
        request
            .set_authority(Some(&url.authority))
            .map_err(|_| bad("authority"))?;
        request
            .set_path_with_query(Some(&url.path))
            .map_err(|_| bad("path"))?;
        let body = request
            .body()
            .map_err(|_| HttpError::Transport("request body already taken".into()))?;
        let options = RequestOptions::new();
        if let Some(t) = self.timeout {
            let ns = u64::try_from(t.as_nanos()).unwrap_or(u64::MAX);
            let _ = options.set_connect_timeout(Some(ns));
            let _ = options.set_first_byte_timeout(Some(ns));
            let _ = options.set_between_bytes_timeout(Some(ns));
        }
        // Send first, then stream the body: the host buffers only a chunk
        // or two of an outgoing body and drains it once the request is on
        // its way, so a body written in full before `handle` never fits.
        let pending = outgoing_handler::handle(request, Some(options)).map_err(map_error)?;
        let written = match &self.body {
            Some(bytes) => write_body(&body, bytes),
            None => Ok(()),
        };
        let finished = OutgoingBody::finish(body, None).map_err(map_error);
        pending.subscribe().block();
        let response = match pending.get() {
            Some(Ok(Ok(r))) => r,
            Some(Ok(Err(e))) => return Err(map_error(e)),
            Some(Err(())) => return Err(HttpError::Transport("response already taken".into())),
            None => return Err(HttpError::Transport("response not ready".into())),
        };
        // A refused request closes the body stream too; the response's
        // error (above) says why, these only when there was none.
        written?;
        finished?;
        let status = response.status();
        let headers = response
            .headers()
            .entries()
            .into_iter()
            .map(|(k, v)| {
                (
                    k.to_ascii_lowercase(),
                    String::from_utf8_lossy(&v).into_owned(),
                )
            })
            .collect();
        let incoming = response
            .consume()
            .map_err(|_| HttpError::Transport("response body already taken".into()))?;
        let stream = incoming
            .stream()
            .map_err(|_| HttpError::Transport("response body stream unavailable".into()))?;
        let mut body = Vec::new();
        loop {
            match stream.blocking_read(64 << 10) {
                Ok(chunk) => {
                    if body.len() + chunk.len() > self.max_body {
                        return Err(HttpError::BodyTooLarge(self.max_body));
                    }
                    body.extend_from_slice(&chunk);
                }
                Err(StreamError::Closed) => break,
                Err(StreamError::LastOperationFailed(e)) => {
                    return Err(HttpError::Transport(format!(
                        "reading response body: {}",
                        e.to_debug_string()
                    )));
                }
            }
        }
        drop(stream);
        let _ = IncomingBody::finish(incoming);
        Ok(Response {
            status,
            headers,
            body,
        })
    }
}

/// Write `bytes` to the request body as fast as the host takes them: no
/// more than `check-write` allows at a time, waiting on the stream when it
/// allows nothing, then flush.
fn write_body(body: &OutgoingBody, bytes: &[u8]) -> Result<(), HttpError> {
    let failed = |e: StreamError| {
        HttpError::Transport(match e {
            StreamError::Closed => "writing request body: the host closed the stream".into(),
            StreamError::LastOperationFailed(e) => {
                format!("writing request body: {}", e.to_debug_string())
            }
        })
    };
    let stream = body
        .write()
        .map_err(|_| HttpError::Transport("request body stream unavailable".into()))?;
    let mut rest = bytes;
    while !rest.is_empty() {
        let allowed = stream.check_write().map_err(failed)?;
        if allowed == 0 {
            stream.subscribe().block();
            continue;
        }
        let n = rest
            .len()
            .min(usize::try_from(allowed).unwrap_or(usize::MAX));
        let (now, later) = rest.split_at(n);
        stream.write(now).map_err(failed)?;
        rest = later;
    }
    stream.flush().map_err(failed)?;
    // The flush is done when the stream can take bytes again.
    loop {
        stream.subscribe().block();
        if stream.check_write().map_err(failed)? > 0 {
            return Ok(());
        }
    }
}

fn map_error(e: ErrorCode) -> HttpError {
    match e {
        ErrorCode::HttpRequestDenied => HttpError::Denied,
        other => HttpError::Transport(format!("{other:?}")),
    }
}

struct ParsedUrl {
    https: bool,
    authority: String,
    path: String,
}

impl ParsedUrl {
    fn parse(url: &str) -> Result<Self, HttpError> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| HttpError::InvalidUrl(format!("`{url}` has no scheme")))?;
        let https = match scheme.to_ascii_lowercase().as_str() {
            "http" => false,
            "https" => true,
            other => {
                return Err(HttpError::InvalidUrl(format!(
                    "scheme `{other}` is not http or https"
                )));
            }
        };
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let authority = &rest[..end];
        if authority.is_empty() || authority.contains('@') || authority.contains(' ') {
            return Err(HttpError::InvalidUrl(format!("`{url}` has no valid host")));
        }
        let mut path = rest[end..].split('#').next().unwrap_or("").to_string();
        if path.is_empty() || path.starts_with('?') {
            path.insert(0, '/');
        }
        Ok(ParsedUrl {
            https,
            authority: authority.to_string(),
            path,
        })
    }
}
