//! The local "checkout" service the example incident is about: its health
//! check fails because its database connection pool is exhausted, until the
//! pool is restarted through the admin endpoint.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

/// What the service has seen.
#[derive(Debug, Default)]
pub struct State {
    /// The pool was restarted.
    pub healthy: AtomicBool,
    /// Admin calls received.
    pub admin_calls: AtomicU32,
}

/// Start the service on 127.0.0.1 (an ephemeral port); it stops with the runtime.
pub async fn start() -> anyhow::Result<(SocketAddr, Arc<State>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let state = Arc::new(State::default());
    let shared = state.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                break;
            };
            let state = shared.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| handle(req, state.clone()));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok((addr, state))
}

fn json(status: StatusCode, body: serde_json::Value) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}

async fn handle(
    req: Request<hyper::body::Incoming>,
    state: Arc<State>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let _ = body.collect().await;
    let reply = match (parts.method.as_str(), parts.uri.path()) {
        ("GET", "/health") if state.healthy.load(Ordering::SeqCst) => json(
            StatusCode::OK,
            serde_json::json!({"status": "ok", "db_pool": {"active": 4, "max": 50}}),
        ),
        ("GET", "/health") => json(
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({"status": "degraded", "reason": "db connection pool exhausted (50/50 in use)"}),
        ),
        ("POST", "/admin/restart-pool") => {
            state.admin_calls.fetch_add(1, Ordering::SeqCst);
            state.healthy.store(true, Ordering::SeqCst);
            json(
                StatusCode::OK,
                serde_json::json!({"restarted": "db-pool", "connections_closed": 50}),
            )
        }
        _ => json(
            StatusCode::NOT_FOUND,
            serde_json::json!({"error": "not found"}),
        ),
    };
    Ok(reply)
}
