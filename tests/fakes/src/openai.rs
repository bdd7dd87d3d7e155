//! A scripted OpenAI-compatible Chat Completions server.

use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use crate::server::{Loopback, bind};
use crate::tls::ServerCert;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use hyper::{Request, Response, StatusCode};
use serde_json::{Value, json};

/// Fixed `created` timestamp, so recorded answers are reproducible.
const CREATED: u64 = 1_700_000_000;

/// One scripted answer.
///
/// Token usage is deterministic: `prompt_tokens` is 10 per request message,
/// `completion_tokens` is the word count of a text answer or 10 per tool call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// An assistant text answer, `finish_reason: "stop"`.
    Text(String),
    /// Tool calls as `(id, name, arguments JSON text)`, `finish_reason: "tool_calls"`.
    ToolCalls(Vec<(String, String, String)>),
    /// An error status with a raw body (use [`Reply::error`] for an OpenAI
    /// error body) and an optional `Retry-After` header value.
    Status {
        /// HTTP status code.
        code: u16,
        /// `Retry-After` header value, sent verbatim.
        retry_after: Option<String>,
        /// Response body, sent verbatim as `application/json`.
        body: String,
    },
    /// Never answers; the connection stays open until the server is dropped.
    Hang,
}

impl Reply {
    /// A tool-call answer from `(id, name, arguments)` string slices.
    ///
    /// ```
    /// use warden_fakes::openai::Reply;
    ///
    /// let reply = Reply::tool_calls(&[("call_1", "restart", r#"{"unit":"nginx"}"#)]);
    /// assert_eq!(
    ///     reply,
    ///     Reply::ToolCalls(vec![("call_1".into(), "restart".into(), r#"{"unit":"nginx"}"#.into())])
    /// );
    /// ```
    pub fn tool_calls(calls: &[(&str, &str, &str)]) -> Self {
        Self::ToolCalls(
            calls
                .iter()
                .map(|(id, name, args)| ((*id).to_owned(), (*name).to_owned(), (*args).to_owned()))
                .collect(),
        )
    }

    /// An error status with an OpenAI error body
    /// `{"error":{"message","type","code"}}`.
    pub fn error(code: u16, message: &str) -> Self {
        Self::Status {
            code,
            retry_after: None,
            body: error_body(message, error_type(code)),
        }
    }
}

/// Which credentials the fake demands; a mismatch is answered 401 without
/// consuming the script.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ExpectAuth {
    /// Accept any request.
    #[default]
    Any,
    /// Require `Authorization: Bearer <token>`.
    Bearer(String),
    /// Require the Azure `api-key: <key>` header.
    ApiKey(String),
}

/// A request the fake received.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRequest {
    /// HTTP method.
    pub method: String,
    /// Path and query, e.g. `/v1/chat/completions`.
    pub path: String,
    /// Headers with lowercase names (the last value wins).
    pub headers: BTreeMap<String, String>,
    /// Body parsed as JSON; `Value::Null` when it was not JSON.
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

#[derive(Debug, Default)]
struct State {
    script: VecDeque<Reply>,
    requests: Vec<RecordedRequest>,
    auth: ExpectAuth,
}

/// A running scripted server; it stops when dropped.
///
/// ```
/// use warden_fakes::openai::{ExpectAuth, FakeOpenAi, Reply};
///
/// let fake = FakeOpenAi::start_with(vec![Reply::Hang], ExpectAuth::ApiKey("k".into()));
/// assert!(fake.endpoint().starts_with("http://127.0.0.1:"));
/// drop(fake); // the hanging connection is closed here
/// ```
#[derive(Debug)]
pub struct FakeOpenAi {
    addr: SocketAddr,
    scheme: &'static str,
    state: Arc<Mutex<State>>,
    _server: Loopback,
}

impl FakeOpenAi {
    /// Starts a server that accepts any credentials and answers with `script`
    /// in order; once it is used up every request gets 500 "script exhausted".
    pub fn start(script: Vec<Reply>) -> Self {
        Self::start_with(script, ExpectAuth::Any)
    }

    /// Like [`FakeOpenAi::start`], demanding `auth`.
    pub fn start_with(script: Vec<Reply>, auth: ExpectAuth) -> Self {
        Self::spawn(script, auth, None)
    }

    /// Like [`FakeOpenAi::start`], over HTTPS with `cert`: [`base_url`]
    /// and [`endpoint`] then start with `https://127.0.0.1:`. A client that
    /// refuses the certificate never gets a request through, so
    /// [`FakeOpenAi::requests`] stays empty.
    ///
    /// ```
    /// use warden_fakes::openai::{FakeOpenAi, Reply};
    /// use warden_fakes::tls::TestCa;
    ///
    /// let ca = TestCa::new();
    /// let fake = FakeOpenAi::start_tls(vec![Reply::Text("hi".into())], &ca.server_cert(&["127.0.0.1"]));
    /// assert!(fake.base_url().starts_with("https://127.0.0.1:"));
    /// ```
    ///
    /// [`base_url`]: FakeOpenAi::base_url
    /// [`endpoint`]: FakeOpenAi::endpoint
    pub fn start_tls(script: Vec<Reply>, cert: &ServerCert) -> Self {
        Self::spawn(script, ExpectAuth::Any, Some(cert))
    }

    fn spawn(script: Vec<Reply>, auth: ExpectAuth, cert: Option<&ServerCert>) -> Self {
        let (listener, addr) = bind();
        let state = Arc::new(Mutex::new(State {
            script: script.into(),
            requests: Vec::new(),
            auth,
        }));
        let server = Loopback::serve_tls("fake-openai", listener, cert, Arc::clone(&state), handle);
        Self {
            addr,
            scheme: if cert.is_some() { "https" } else { "http" },
            state,
            _server: server,
        }
    }

    /// Base URL for OpenAI-style clients: `http://127.0.0.1:PORT/v1`
    /// (`https` when started with [`FakeOpenAi::start_tls`]).
    pub fn base_url(&self) -> String {
        format!("{}/v1", self.endpoint())
    }

    /// Endpoint for Azure-style clients: `http://127.0.0.1:PORT`
    /// (`https` when started with [`FakeOpenAi::start_tls`]).
    pub fn endpoint(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// Every request received so far, in order (including rejected ones).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.lock().requests.clone()
    }

    /// Replies not yet used.
    pub fn remaining(&self) -> usize {
        self.lock().script.len()
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
    let path = req
        .uri()
        .path_and_query()
        .map_or_else(|| req.uri().path().to_owned(), |p| p.as_str().to_owned());
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
    let route = route(req.uri().path(), req.uri().query());
    let body_bytes = match req.into_body().collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let body: Value = serde_json::from_slice(&body_bytes).unwrap_or(Value::Null);
    let recorded = RecordedRequest {
        method: method.clone(),
        path,
        headers,
        body,
    };

    let reply = {
        let mut state = state.lock().unwrap_or_else(PoisonError::into_inner);
        state.requests.push(recorded.clone());
        if let Some(response) = rejection(&method, route, &recorded, &state.auth) {
            return Ok(response);
        }
        state.script.pop_front()
    };
    let Some(reply) = reply else {
        return Ok(json_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            error_body("fake openai: script exhausted", "server_error"),
        ));
    };
    Ok(answer(reply, &recorded.body).await)
}

#[derive(Debug, Clone, Copy)]
enum Route {
    Chat,
    AzureWithoutVersion,
    Unknown,
}

fn route(path: &str, query: Option<&str>) -> Route {
    if path == "/v1/chat/completions" {
        return Route::Chat;
    }
    let azure = path
        .strip_prefix("/openai/deployments/")
        .and_then(|rest| rest.strip_suffix("/chat/completions"))
        .is_some_and(|deployment| !deployment.is_empty() && !deployment.contains('/'));
    if !azure {
        return Route::Unknown;
    }
    let has_version = query.unwrap_or_default().split('&').any(|pair| {
        pair.strip_prefix("api-version=")
            .is_some_and(|v| !v.is_empty())
    });
    if has_version {
        Route::Chat
    } else {
        Route::AzureWithoutVersion
    }
}

/// The error answer for a request the script must not see, if any.
fn rejection(
    method: &str,
    route: Route,
    req: &RecordedRequest,
    auth: &ExpectAuth,
) -> Option<Response<Full<Bytes>>> {
    match route {
        Route::Chat => {}
        Route::AzureWithoutVersion => {
            return Some(json_response(
                StatusCode::BAD_REQUEST,
                error_body(
                    "missing required query parameter api-version",
                    "invalid_request_error",
                ),
            ));
        }
        Route::Unknown => {
            return Some(json_response(
                StatusCode::NOT_FOUND,
                error_body(
                    &format!("no route for {}", req.path),
                    "invalid_request_error",
                ),
            ));
        }
    }
    if method != "POST" {
        return Some(json_response(
            StatusCode::METHOD_NOT_ALLOWED,
            error_body("chat completions take POST", "invalid_request_error"),
        ));
    }
    let authorised = match auth {
        ExpectAuth::Any => true,
        ExpectAuth::Bearer(token) => {
            req.header(AUTHORIZATION.as_str()) == Some(format!("Bearer {token}").as_str())
        }
        ExpectAuth::ApiKey(key) => req.header("api-key") == Some(key.as_str()),
    };
    if !authorised {
        return Some(json_response(
            StatusCode::UNAUTHORIZED,
            error_body("Incorrect API key provided", "invalid_request_error"),
        ));
    }
    if !req.body.is_object() {
        return Some(json_response(
            StatusCode::BAD_REQUEST,
            error_body("request body is not a JSON object", "invalid_request_error"),
        ));
    }
    None
}

async fn answer(reply: Reply, request: &Value) -> Response<Full<Bytes>> {
    let model = request
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("fake-model")
        .to_owned();
    let messages = request
        .get("messages")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    let prompt_tokens = 10 * messages as u64;
    let stream = request.get("stream").and_then(Value::as_bool) == Some(true);
    let include_usage = request
        .pointer("/stream_options/include_usage")
        .and_then(Value::as_bool)
        == Some(true);

    let (message, finish_reason, completion_tokens) = match &reply {
        Reply::Text(text) => (
            Answer::Text(text.clone()),
            "stop",
            text.split_whitespace().count().max(1) as u64,
        ),
        Reply::ToolCalls(calls) => (
            Answer::Calls(calls.clone()),
            "tool_calls",
            10 * calls.len() as u64,
        ),
        Reply::Status {
            code,
            retry_after,
            body,
        } => {
            let mut response = json_response(
                StatusCode::from_u16(*code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                body.clone(),
            );
            if let Some(value) = retry_after
                && let Ok(value) = value.parse()
            {
                response.headers_mut().insert(RETRY_AFTER, value);
            }
            return response;
        }
        Reply::Hang => std::future::pending().await,
    };
    let usage = json!({
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    });
    if stream {
        let body = sse_body(
            &model,
            &message,
            finish_reason,
            include_usage.then_some(usage),
        );
        let mut response = Response::new(Full::new(Bytes::from(body)));
        response.headers_mut().insert(
            CONTENT_TYPE,
            hyper::header::HeaderValue::from_static("text/event-stream"),
        );
        return response;
    }
    let message = match message {
        Answer::Text(text) => json!({"role": "assistant", "content": text, "refusal": null}),
        Answer::Calls(calls) => json!({
            "role": "assistant",
            "content": null,
            "refusal": null,
            "tool_calls": calls.iter().map(|(id, name, args)| json!({
                "id": id, "type": "function", "function": {"name": name, "arguments": args}
            })).collect::<Vec<_>>(),
        }),
    };
    let body = json!({
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": CREATED,
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish_reason}],
        "usage": usage,
        "system_fingerprint": "fp_fake",
    });
    json_response(StatusCode::OK, body.to_string())
}

enum Answer {
    Text(String),
    Calls(Vec<(String, String, String)>),
}

/// Chunks the way the real API does: a role delta, content or tool-call
/// deltas (each call's head, then its arguments in two halves, interleaved
/// across calls so merging must go by `index`), a finish delta, an optional
/// usage chunk and `[DONE]`.
fn sse_body(model: &str, answer: &Answer, finish_reason: &str, usage: Option<Value>) -> String {
    let with_usage = usage.is_some();
    let chunk = |delta: Value, finish: Option<&str>| {
        let mut chunk = json!({
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": model,
            "system_fingerprint": "fp_fake",
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
        });
        if with_usage {
            chunk["usage"] = Value::Null;
        }
        format!("data: {chunk}\n\n")
    };
    let mut out = String::new();
    match answer {
        Answer::Text(text) => {
            out.push_str(&chunk(
                json!({"role": "assistant", "content": "", "refusal": null}),
                None,
            ));
            for piece in text.split_inclusive(' ') {
                out.push_str(&chunk(json!({"content": piece}), None));
            }
        }
        Answer::Calls(calls) => {
            out.push_str(&chunk(json!({"role": "assistant", "content": null}), None));
            for (index, (id, name, _)) in calls.iter().enumerate() {
                out.push_str(&chunk(
                    json!({"tool_calls": [{"index": index, "id": id, "type": "function",
                        "function": {"name": name, "arguments": ""}}]}),
                    None,
                ));
            }
            let halves: Vec<(&str, &str)> =
                calls.iter().map(|(_, _, args)| split_half(args)).collect();
            for part in 0..2 {
                for (index, (first, second)) in halves.iter().enumerate() {
                    let piece = if part == 0 { first } else { second };
                    out.push_str(&chunk(
                        json!({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}),
                        None,
                    ));
                }
            }
        }
    }
    out.push_str(&chunk(json!({}), Some(finish_reason)));
    if let Some(usage) = usage {
        let last = json!({
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": model,
            "system_fingerprint": "fp_fake",
            "choices": [],
            "usage": usage,
        });
        out.push_str(&format!("data: {last}\n\n"));
    }
    out.push_str("data: [DONE]\n\n");
    out
}

fn split_half(text: &str) -> (&str, &str) {
    let mut mid = text.len() / 2;
    while !text.is_char_boundary(mid) {
        mid -= 1;
    }
    text.split_at(mid)
}

fn error_type(code: u16) -> &'static str {
    match code {
        429 => "rate_limit_exceeded",
        500..=599 => "server_error",
        _ => "invalid_request_error",
    }
}

fn error_body(message: &str, kind: &str) -> String {
    json!({"error": {"message": message, "type": kind, "param": null, "code": null}}).to_string()
}

fn json_response(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}
