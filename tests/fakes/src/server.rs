//! The loopback HTTP(S) server under each fake: its own thread and
//! current-thread runtime, so a fake works from sync tests and from any
//! tokio flavour; dropping it stops the accept loop and closes the
//! connections still open (a hanging reply included). It counts the
//! connections it accepts and the TLS handshakes that complete, so a test
//! can tell "nothing connected" from "connected but sent nothing".

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::oneshot;

use crate::tls::ServerCert;

/// A running server; stops when dropped.
#[derive(Debug)]
pub struct Loopback {
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    counts: Arc<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    connections: AtomicUsize,
    handshakes: AtomicUsize,
}

/// A non-blocking listener on 127.0.0.1 and its address.
#[allow(
    clippy::expect_used,
    reason = "test fixture: without a loopback socket no test can run"
)]
pub fn bind() -> (std::net::TcpListener, SocketAddr) {
    let listener =
        std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port for the fake");
    listener
        .set_nonblocking(true)
        .expect("make the fake's listener non-blocking");
    let addr = listener
        .local_addr()
        .expect("read the fake's local address");
    (listener, addr)
}

impl Loopback {
    /// Serve every connection on `listener` with `handle(request, state)`.
    pub fn serve<S, H, F>(
        name: &str,
        listener: std::net::TcpListener,
        state: Arc<Mutex<S>>,
        handle: H,
    ) -> Self
    where
        S: Send + 'static,
        H: Fn(Request<Incoming>, Arc<Mutex<S>>) -> F + Copy + Send + Sync + 'static,
        F: Future<Output = Result<Response<Full<Bytes>>, Infallible>> + Send + 'static,
    {
        Self::serve_tls(name, listener, None, state, handle)
    }

    /// [`Loopback::serve`], over HTTPS with `cert` when it is given. A
    /// connection whose handshake fails (the client refused the
    /// certificate) is dropped before any request is read.
    #[allow(
        clippy::expect_used,
        reason = "test fixture: without a thread or runtime no test can run"
    )]
    pub fn serve_tls<S, H, F>(
        name: &str,
        listener: std::net::TcpListener,
        cert: Option<&ServerCert>,
        state: Arc<Mutex<S>>,
        handle: H,
    ) -> Self
    where
        S: Send + 'static,
        H: Fn(Request<Incoming>, Arc<Mutex<S>>) -> F + Copy + Send + Sync + 'static,
        F: Future<Output = Result<Response<Full<Bytes>>, Infallible>> + Send + 'static,
    {
        let tls = cert.map(ServerCert::acceptor);
        let (shutdown, stop) = oneshot::channel();
        let counts = Arc::new(Counts::default());
        let counting = Arc::clone(&counts);
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("build the fake's runtime");
                runtime.block_on(accept(listener, tls, state, counting, stop, handle));
            })
            .expect("spawn the fake's thread");
        Loopback {
            shutdown: Some(shutdown),
            thread: Some(thread),
            counts,
        }
    }

    /// How many TCP connections it accepted, whether or not a request (or
    /// a TLS handshake) followed.
    pub fn connections(&self) -> usize {
        self.counts.connections.load(Ordering::SeqCst)
    }

    /// How many TLS handshakes completed; always 0 over plain HTTP.
    pub fn tls_handshakes(&self) -> usize {
        self.counts.handshakes.load(Ordering::SeqCst)
    }
}

impl Drop for Loopback {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn accept<S, H, F>(
    listener: std::net::TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    state: Arc<Mutex<S>>,
    counts: Arc<Counts>,
    mut stop: oneshot::Receiver<()>,
    handle: H,
) where
    S: Send + 'static,
    H: Fn(Request<Incoming>, Arc<Mutex<S>>) -> F + Copy + Send + Sync + 'static,
    F: Future<Output = Result<Response<Full<Bytes>>, Infallible>> + Send + 'static,
{
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
        return;
    };
    loop {
        let stream = tokio::select! {
            _ = &mut stop => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => {
                    // Out of file descriptors and the like: back off
                    // rather than spin on the same error.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        counts.connections.fetch_add(1, Ordering::SeqCst);
        let state = Arc::clone(&state);
        let tls = tls.clone();
        let counts = Arc::clone(&counts);
        tokio::spawn(async move {
            match tls {
                None => serve_connection(stream, state, handle).await,
                Some(acceptor) => {
                    if let Ok(stream) = acceptor.accept(stream).await {
                        counts.handshakes.fetch_add(1, Ordering::SeqCst);
                        serve_connection(stream, state, handle).await;
                    }
                }
            }
        });
    }
}

async fn serve_connection<I, S, H, F>(io: I, state: Arc<Mutex<S>>, handle: H)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: Send + 'static,
    H: Fn(Request<Incoming>, Arc<Mutex<S>>) -> F + Copy + Send + Sync + 'static,
    F: Future<Output = Result<Response<Full<Bytes>>, Infallible>> + Send + 'static,
{
    let service = service_fn(move |req| handle(req, Arc::clone(&state)));
    let _ = http1::Builder::new()
        .serve_connection(TokioIo::new(io), service)
        .await;
}
