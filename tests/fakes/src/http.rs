//! The loopback HTTP server every fake and test service runs on, and two
//! ready-made ones: [`Responder`] answers each request with whatever a
//! closure makes of it, and [`OkServer`] answers `200 {"status":"ok"}`.
//! Both record every request as a [`Seen`], serve HTTP or HTTPS on
//! `127.0.0.1` only, and stop when dropped.
//!
//! ```
//! use warden_fakes::http::{Responder, Response};
//!
//! // A 404 that quotes the path, as real webhooks do.
//! let server = Responder::start(|seen| Response::text(404, format!("no hook at {}", seen.path)));
//! assert!(server.url("/hooks/x").starts_with("http://127.0.0.1:"));
//! assert_eq!((server.hits(), server.connections()), (0, 0));
//! ```

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Request, StatusCode};

pub use crate::server::{Loopback, bind};
use crate::tls::ServerCert;

/// The most of a request body a test server reads; a longer body is
/// recorded as empty (no test sends one on purpose; the PDK's streaming
/// test sends 1.5 MiB).
const MAX_BODY: usize = 4 << 20;

/// A request a test server saw; the body arrives de-chunked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// `GET`, `POST`, …
    pub method: String,
    /// Path and query.
    pub path: String,
    /// The body, as text.
    pub body: String,
    /// The request target as the client sent it: the path and query
    /// (origin form) unless the client sent a whole URL (absolute form).
    pub target: String,
    /// `HTTP/1.1`, …
    pub version: String,
    /// Every header in the order sent; names in lower case.
    pub headers: Vec<(String, String)>,
}

impl Seen {
    /// `GET /path?query HTTP/1.1`.
    pub fn request_line(&self) -> String {
        format!("{} {} {}", self.method, self.target, self.version)
    }

    /// The first header called `name`, in any case.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    ///
    /// # Panics
    ///
    /// When the body is not JSON, naming the request and the body, so the
    /// test that expected JSON fails there.
    #[track_caller]
    #[allow(
        clippy::panic,
        reason = "test fixture: a test asking for JSON the client did not send has failed"
    )]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| {
            panic!(
                "{} sent a body that is not JSON ({e}): {}",
                self.request_line(),
                self.body
            )
        })
    }

    async fn read(req: Request<Incoming>) -> Seen {
        let (parts, body) = req.into_parts();
        let body = Limited::new(body, MAX_BODY)
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        Seen {
            method: parts.method.to_string(),
            path: parts
                .uri
                .path_and_query()
                .map_or_else(|| parts.uri.path().to_owned(), |p| p.to_string()),
            body: String::from_utf8_lossy(&body).into_owned(),
            target: parts.uri.to_string(),
            version: format!("{:?}", parts.version),
            headers: parts
                .headers
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_owned(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
        }
    }
}

/// What a [`Responder`] answers: a status, headers and a body.
///
/// ```
/// use warden_fakes::http::Response;
///
/// let moved = Response::text(302, "moved").with_header("location", "http://169.254.169.254/");
/// assert_eq!(moved.status, 302);
/// assert_eq!(moved.headers[1], ("location".to_owned(), "http://169.254.169.254/".to_owned()));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code; one hyper refuses (outside 100..=999) turns into
    /// a 500 that says why.
    pub status: u16,
    /// Headers in order; `content-length` is added from the body. An
    /// invalid name or value turns the answer into a 500 that says why.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// `status` with no headers and an empty body.
    pub fn new(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// `status` with a `text/plain` body.
    pub fn text(status: u16, body: impl Into<String>) -> Self {
        Self::new(status)
            .with_header("content-type", "text/plain")
            .with_body(body.into())
    }

    /// `status` with an `application/json` body.
    pub fn json(status: u16, body: &serde_json::Value) -> Self {
        Self::new(status)
            .with_header("content-type", "application/json")
            .with_body(body.to_string())
    }

    /// This answer with one more header.
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// This answer with `body` instead of its body.
    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    fn into_hyper(self) -> hyper::Response<Full<Bytes>> {
        let mut response = hyper::Response::new(Full::new(Bytes::from(self.body)));
        let Ok(status) = StatusCode::from_u16(self.status) else {
            return broken(format!("fake: invalid status {}", self.status));
        };
        *response.status_mut() = status;
        for (name, value) in &self.headers {
            let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) else {
                return broken(format!("fake: invalid header `{name}: {value}`"));
            };
            response.headers_mut().append(name, value);
        }
        response
    }
}

/// The 500 a fixture answers when the test handed it an answer HTTP
/// cannot carry.
fn broken(why: String) -> hyper::Response<Full<Bytes>> {
    let mut response = hyper::Response::new(Full::new(Bytes::from(why)));
    *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    response
}

type Respond = Arc<dyn Fn(&Seen) -> Response + Send + Sync>;

struct Shared {
    seen: Vec<Seen>,
    respond: Respond,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("seen", &self.seen)
            .finish_non_exhaustive()
    }
}

/// A loopback server that records each request and answers it with
/// `respond(&seen)`; over HTTP, or HTTPS with [`Responder::start_tls`].
/// The request is recorded before `respond` runs, so a client that got an
/// answer finds its request in [`Responder::requests`]. It stops when
/// dropped, closing the connections still open.
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use warden_fakes::http::{Responder, Response};
///
/// // A 302 to the metadata endpoint.
/// let _redirector = Responder::start(|_| {
///     Response::text(302, "moved").with_header("location", "http://169.254.169.254/latest/")
/// });
/// // A 200 that counts what it answered.
/// let answered = Arc::new(AtomicUsize::new(0));
/// let counter = Arc::clone(&answered);
/// let _hello = Responder::start(move |_| {
///     counter.fetch_add(1, Ordering::SeqCst);
///     Response::text(200, "hello")
/// });
/// ```
#[derive(Debug)]
pub struct Responder {
    addr: SocketAddr,
    scheme: &'static str,
    shared: Arc<Mutex<Shared>>,
    server: Loopback,
}

impl Responder {
    /// Start it on a free loopback port, serving HTTP.
    pub fn start(respond: impl Fn(&Seen) -> Response + Send + Sync + 'static) -> Self {
        Self::spawn(None, Arc::new(respond))
    }

    /// Start it serving HTTPS with `cert` (see [`crate::tls::TestCa`]). A
    /// client that refuses the certificate is counted in
    /// [`Responder::connections`] but not in [`Responder::tls_handshakes`],
    /// and never gets a request through.
    pub fn start_tls(
        cert: &ServerCert,
        respond: impl Fn(&Seen) -> Response + Send + Sync + 'static,
    ) -> Self {
        Self::spawn(Some(cert), Arc::new(respond))
    }

    fn spawn(cert: Option<&ServerCert>, respond: Respond) -> Self {
        let (listener, addr) = bind();
        let shared = Arc::new(Mutex::new(Shared {
            seen: Vec::new(),
            respond,
        }));
        let server = Loopback::serve_tls("responder", listener, cert, Arc::clone(&shared), answer);
        Self {
            addr,
            scheme: if cert.is_some() { "https" } else { "http" },
            shared,
            server,
        }
    }

    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `http://127.0.0.1:<port><path>` (`https` when started with
    /// [`Responder::start_tls`]).
    pub fn url(&self, path: &str) -> String {
        format!("{}://{}{path}", self.scheme, self.addr)
    }

    /// How many requests arrived.
    pub fn hits(&self) -> usize {
        self.shared.lock().map(|s| s.seen.len()).unwrap_or_default()
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<Seen> {
        self.shared
            .lock()
            .map(|s| s.seen.clone())
            .unwrap_or_default()
    }

    /// How many TCP connections it accepted, a request or not.
    pub fn connections(&self) -> usize {
        self.server.connections()
    }

    /// How many TLS handshakes completed; always 0 over plain HTTP.
    pub fn tls_handshakes(&self) -> usize {
        self.server.tls_handshakes()
    }
}

async fn answer(
    req: Request<Incoming>,
    shared: Arc<Mutex<Shared>>,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let seen = Seen::read(req).await;
    let respond = match shared.lock() {
        Ok(mut shared) => {
            shared.seen.push(seen.clone());
            Arc::clone(&shared.respond)
        }
        Err(_) => return Ok(broken("fake: a request recorder panicked".to_owned())),
    };
    Ok(respond(&seen).into_hyper())
}

/// Answers every request on 127.0.0.1 with `200 {"status":"ok"}` and
/// records it; stops when dropped.
///
/// ```
/// let server = warden_fakes::http::OkServer::start();
/// assert!(server.url("/health").starts_with("http://127.0.0.1:"));
/// assert_eq!(server.hits(), 0);
/// ```
#[derive(Debug)]
pub struct OkServer {
    inner: Responder,
}

impl OkServer {
    /// Start it on a free loopback port.
    pub fn start() -> OkServer {
        OkServer {
            inner: Responder::start(ok),
        }
    }

    /// Start it serving HTTPS with `cert` (see [`crate::tls::TestCa`]).
    pub fn start_tls(cert: &ServerCert) -> OkServer {
        OkServer {
            inner: Responder::start_tls(cert, ok),
        }
    }

    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        self.inner.addr()
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.inner.port()
    }

    /// `http://127.0.0.1:<port><path>` (`https` when started with
    /// [`OkServer::start_tls`]).
    pub fn url(&self, path: &str) -> String {
        self.inner.url(path)
    }

    /// How many requests arrived.
    pub fn hits(&self) -> usize {
        self.inner.hits()
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Seen> {
        self.inner.requests()
    }
}

fn ok(_: &Seen) -> Response {
    Response::json(200, &serde_json::json!({"status": "ok"}))
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on setup errors"
)]
mod tests {
    use std::io::{Read as _, Write as _};
    use std::net::TcpStream;
    use std::time::Duration;

    use super::*;

    /// Send `request` raw and read the whole answer (the request asks the
    /// server to close).
    fn exchange(addr: SocketAddr, request: &str) -> String {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        answer
    }

    #[test]
    fn a_chunked_request_is_recorded_de_chunked_with_its_line_and_headers() {
        let server = Responder::start(|_| Response::text(200, "ok"));
        let answer = exchange(
            server.addr(),
            "POST /hooks/x?a=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Token: abc\r\n\
             Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\
             Connection: close\r\n\r\n5\r\n{\"a\":\r\n3\r\n 1}\r\n0\r\n\r\n",
        );
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
        let seen = server.requests();
        assert_eq!(seen.len(), 1);
        let seen = &seen[0];
        assert_eq!(seen.request_line(), "POST /hooks/x?a=1 HTTP/1.1");
        assert_eq!(seen.path, "/hooks/x?a=1");
        assert_eq!(seen.header("x-token"), Some("abc"));
        assert_eq!(seen.header("CONTENT-TYPE"), Some("application/json"));
        assert_eq!(seen.header("x-missing"), None);
        assert_eq!(seen.body, "{\"a\": 1}");
        assert_eq!(seen.json()["a"], 1);
    }

    #[test]
    fn the_closure_answers_with_status_headers_and_body_from_the_request() {
        let server = Responder::start(|seen| {
            Response::text(404, format!("no hook at {}", seen.path))
                .with_header("x-requested", &format!("{} {}", seen.method, seen.path))
        });
        let answer = exchange(
            server.addr(),
            "GET /a/b HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
        );
        assert!(answer.starts_with("HTTP/1.1 404 Not Found\r\n"), "{answer}");
        assert!(answer.contains("\r\nx-requested: GET /a/b\r\n"), "{answer}");
        assert!(
            answer.contains("\r\ncontent-type: text/plain\r\n"),
            "{answer}"
        );
        assert!(answer.ends_with("\r\n\r\nno hook at /a/b"), "{answer}");
    }

    #[test]
    fn an_answer_http_cannot_carry_becomes_a_500_that_says_why() {
        let server = Responder::start(|_| Response::new(200).with_header("bad name", "x"));
        let answer = exchange(
            server.addr(),
            "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
        );
        assert!(answer.starts_with("HTTP/1.1 500 "), "{answer}");
        assert!(answer.ends_with("invalid header `bad name: x`"), "{answer}");
    }

    #[test]
    fn a_connection_without_a_request_is_counted_but_not_recorded() {
        let server = Responder::start(|_| Response::new(204));
        drop(TcpStream::connect(server.addr()).unwrap());
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while server.connections() == 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(server.connections(), 1);
        assert_eq!(server.tls_handshakes(), 0);
        assert_eq!(server.hits(), 0);
    }

    #[test]
    fn a_dropped_server_refuses_connections() {
        let server = Responder::start(|_| Response::new(200));
        let addr = server.addr();
        drop(server);
        assert!(TcpStream::connect(addr).is_err());
    }

    #[test]
    fn ok_server_answers_json_ok_and_its_tls_url_says_https() {
        let server = OkServer::start();
        let answer = exchange(
            server.addr(),
            "GET /health HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
        );
        assert!(
            answer.contains("\r\ncontent-type: application/json\r\n"),
            "{answer}"
        );
        assert!(answer.ends_with("\r\n\r\n{\"status\":\"ok\"}"), "{answer}");
        assert_eq!(server.requests()[0].path, "/health");
        let tls = OkServer::start_tls(&crate::tls::self_signed(&["127.0.0.1"]));
        assert!(tls.url("/x").starts_with("https://127.0.0.1:"));
    }
}
