//! A stateful fake of Azure Resource Manager (resource groups, template
//! deployments, what-if) speaking the REST contract of api-version
//! `2021-04-01` (and accepting `2025-04-01`).
//!
//! Deployments go `Accepted` -> `Running` -> `Succeeded` (or `Failed`) over a
//! fixed number of polls of their `Azure-AsyncOperation` URL, so tests are
//! deterministic; deletions and what-if answer `202` + `Location`. Every
//! request is recorded, and every request must carry
//! `Authorization: Bearer <token>` (else `401` with ARM's error body and
//! `WWW-Authenticate` challenge); [`crate::entra::FakeEntra::for_arm`]
//! issues that token to a client that authenticates.

mod rest;
mod wire;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use crate::server::{Loopback, bind};
use crate::tls::ServerCert;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use serde_json::Value;

use rest::State;

/// The bearer token [`FakeArm::start`] demands.
pub const DEFAULT_TOKEN: &str = "fake-arm-token";

/// Polls of a deployment's async-operation URL before it finishes, unless
/// [`FakeArm::slow_deployment`] says otherwise: poll 1 reports `Running`,
/// poll 2 the terminal state.
pub const DEFAULT_DEPLOYMENT_POLLS: u32 = 2;

/// A request the fake received.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRequest {
    /// HTTP method, e.g. `PUT`.
    pub method: String,
    /// Path without the query, e.g. `/subscriptions/s/resourcegroups/rg`.
    pub path: String,
    /// Raw query string, e.g. `api-version=2021-04-01` (empty when none).
    pub query: String,
    /// Headers with lowercase names (the last value wins).
    pub headers: BTreeMap<String, String>,
    /// Body parsed as JSON; `Value::Null` when empty or not JSON.
    pub body: Value,
}

impl RecordedRequest {
    /// Header value by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
}

/// A running fake ARM server on `127.0.0.1`; it stops when dropped.
///
/// ```
/// use warden_fakes::arm::{FakeArm, DEFAULT_TOKEN};
///
/// let arm = FakeArm::start();
/// assert!(arm.endpoint().starts_with("http://127.0.0.1:"));
/// assert_eq!(arm.token(), DEFAULT_TOKEN);
/// arm.fail_deployment("release-1", "InvalidTemplateDeployment", "quota exceeded");
/// arm.throttle_next(1, 0);
/// assert!(arm.requests().is_empty());
/// ```
#[derive(Debug)]
pub struct FakeArm {
    addr: SocketAddr,
    scheme: &'static str,
    token: String,
    state: Arc<Mutex<State>>,
    _server: Loopback,
}

impl FakeArm {
    /// Starts a fake demanding `Authorization: Bearer fake-arm-token`.
    pub fn start() -> Self {
        Self::start_with_token(DEFAULT_TOKEN)
    }

    /// Starts a fake demanding `Authorization: Bearer {token}`.
    pub fn start_with_token(token: &str) -> Self {
        Self::spawn(token, None)
    }

    /// Like [`FakeArm::start`], over HTTPS with `cert`: the endpoint and the
    /// operation URLs in its answers start with `https://127.0.0.1:`.
    ///
    /// ```
    /// use warden_fakes::arm::FakeArm;
    /// use warden_fakes::tls::TestCa;
    ///
    /// let ca = TestCa::new();
    /// let arm = FakeArm::start_tls(&ca.server_cert(&["127.0.0.1"]));
    /// assert!(arm.endpoint().starts_with("https://127.0.0.1:"));
    /// ```
    pub fn start_tls(cert: &ServerCert) -> Self {
        Self::spawn(DEFAULT_TOKEN, Some(cert))
    }

    fn spawn(token: &str, cert: Option<&ServerCert>) -> Self {
        let (listener, addr) = bind();
        let scheme = if cert.is_some() { "https" } else { "http" };
        let state = Arc::new(Mutex::new(State::new(
            format!("{scheme}://{addr}"),
            token.to_owned(),
        )));
        let server = Loopback::serve_tls("fake-arm", listener, cert, Arc::clone(&state), handle);
        Self {
            addr,
            scheme,
            token: token.to_owned(),
            state,
            _server: server,
        }
    }

    /// ARM endpoint, `http://127.0.0.1:PORT` (no trailing slash; `https`
    /// when started with [`FakeArm::start_tls`]).
    pub fn endpoint(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// The bearer token the fake demands.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Deployments named `name` (in any group) that start after this call end
    /// `Failed` with a `DeploymentFailed` error whose single detail is
    /// `{code, message}`.
    pub fn fail_deployment(&self, name: &str, code: &str, message: &str) {
        self.lock().failures.insert(
            name.to_ascii_lowercase(),
            (code.to_owned(), message.to_owned()),
        );
    }

    /// Deployments named `name` that start after this call need `polls`
    /// async-operation polls to finish (default [`DEFAULT_DEPLOYMENT_POLLS`]).
    pub fn slow_deployment(&self, name: &str, polls: u32) {
        self.lock()
            .slow
            .insert(name.to_ascii_lowercase(), polls.max(1));
    }

    /// The next `n` authenticated requests get `429 TooManyRequests` with
    /// `Retry-After: {retry_after_secs}`.
    pub fn throttle_next(&self, n: u32, retry_after_secs: u64) {
        self.lock().throttle = Some((n, retry_after_secs));
    }

    /// `Retry-After` sent with long-running-operation answers (default 0).
    pub fn set_poll_retry_after(&self, secs: u64) {
        self.lock().retry_after = secs;
    }

    /// Every request received so far, in order (including rejected ones).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.lock().requests.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

async fn handle(
    req: Request<Incoming>,
    state: Arc<Mutex<State>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let method = req.method().to_string();
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or_default().to_owned();
    let headers: BTreeMap<String, String> = req
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body_bytes = match req.into_body().collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let body: Value = serde_json::from_slice(&body_bytes).unwrap_or(Value::Null);
    let recorded = RecordedRequest {
        method,
        path,
        query,
        headers,
        body,
    };
    let mut state = state.lock().unwrap_or_else(PoisonError::into_inner);
    state.requests.push(recorded.clone());
    Ok(state.answer(&recorded))
}
