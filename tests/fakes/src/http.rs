//! The loopback HTTP server every fake and test service runs on, and the
//! smallest one: [`OkServer`] answers `200 {"status":"ok"}` and counts.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};

pub use crate::server::{Loopback, bind};

/// A request a test server saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// `GET`, `POST`, …
    pub method: String,
    /// Path and query.
    pub path: String,
    /// The body, as text.
    pub body: String,
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
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    _server: Loopback,
}

impl OkServer {
    /// Start it on a free loopback port.
    pub fn start() -> OkServer {
        OkServer::start_with(None)
    }

    /// Start it serving HTTPS with `cert` (see [`crate::tls::TestCa`]).
    pub fn start_tls(cert: &crate::tls::ServerCert) -> OkServer {
        OkServer::start_with(Some(cert))
    }

    fn start_with(cert: Option<&crate::tls::ServerCert>) -> OkServer {
        let (listener, addr) = bind();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let server = Loopback::serve_tls("ok-server", listener, cert, Arc::clone(&seen), answer);
        OkServer {
            addr,
            seen,
            _server: server,
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

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// How many requests arrived.
    pub fn hits(&self) -> usize {
        self.seen.lock().map(|s| s.len()).unwrap_or_default()
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

async fn answer(
    req: Request<Incoming>,
    seen: Arc<Mutex<Vec<Seen>>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    if let Ok(mut s) = seen.lock() {
        s.push(Seen {
            method: parts.method.to_string(),
            path: parts
                .uri
                .path_and_query()
                .map_or_else(|| parts.uri.path().to_string(), |p| p.to_string()),
            body: String::from_utf8_lossy(&body).into_owned(),
        });
    }
    let mut response = Response::new(Full::new(Bytes::from_static(br#"{"status":"ok"}"#)));
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    Ok(response)
}
