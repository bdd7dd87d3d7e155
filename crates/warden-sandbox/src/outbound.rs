//! Sending one gated HTTP request: connect only to the addresses the gate
//! saw (never resolving again), and for `https` verify the server's
//! certificate for the host name against the trusted roots.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::{Error as HttpError, WasiBody};

use crate::SandboxError;
use crate::scrub::Scrubber;

/// What the connection finishes with once the response head is back.
pub(crate) type IoFuture = Box<dyn Future<Output = Result<(), HttpError>> + Send>;

/// Install ring as the process's rustls provider, once (see warden-tls).
pub(crate) fn install_crypto_provider() {
    warden_tls::install_crypto_provider();
}

/// The TLS client for plugins' HTTPS: the Mozilla roots (`webpki-roots`)
/// plus the certificates of `extra_ca`, a PEM bundle (warden-tls's setup,
/// shared with the LLM and ARM clients).
pub(crate) fn client_config(
    extra_ca: Option<&Path>,
) -> Result<Arc<rustls::ClientConfig>, SandboxError> {
    warden_tls::client_config(extra_ca)
        .map(Arc::new)
        .map_err(|e| match e {
            warden_tls::TlsError::ExtraCaFile { path, message } => {
                SandboxError::ExtraCaFile { path, message }
            }
            other => SandboxError::Config {
                message: format!("setting up the TLS client: {other}"),
            },
        })
}

/// Where a request goes.
pub(crate) struct Target<'a> {
    /// Addresses the gate approved, tried in order.
    pub addrs: &'a [IpAddr],
    pub port: u16,
    /// For `https`: the name the certificate must be valid for, and the
    /// client to check it with.
    pub tls: Option<(ServerName<'static>, Arc<rustls::ClientConfig>)>,
    /// How logs name the destination (a secret's name, never its URL).
    pub label: &'a str,
}

/// Per-phase deadlines, each already capped by the call's timeout.
#[derive(Clone, Copy)]
pub(crate) struct Timeouts {
    pub connect: Duration,
    pub first_byte: Duration,
    pub between_bytes: Duration,
}

/// Send `request` to `target` over HTTP/1.1.
pub(crate) async fn send(
    request: http::Request<WasiBody>,
    target: Target<'_>,
    timeouts: Timeouts,
) -> Result<(http::Response<WasiBody>, IoFuture), HttpError> {
    let stream = connect(target.addrs, target.port, timeouts.connect).await?;
    let Some((name, config)) = target.tls else {
        return exchange(stream, request, timeouts).await;
    };
    let handshake = tokio_rustls::TlsConnector::from(config).connect(name, stream);
    let stream = match tokio::time::timeout(timeouts.connect, handshake).await {
        Err(_) => return Err(HttpError::ConnectionTimeout),
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::warn!(host = target.label, error = %e, "TLS handshake failed");
            return Err(tls_error(e));
        }
    };
    exchange(stream, request, timeouts).await
}

async fn connect(addrs: &[IpAddr], port: u16, limit: Duration) -> Result<TcpStream, HttpError> {
    let deadline = tokio::time::Instant::now() + limit;
    let mut last = None;
    for ip in addrs {
        let attempt = TcpStream::connect(SocketAddr::new(*ip, port));
        match tokio::time::timeout_at(deadline, attempt).await {
            Err(_) => return Err(HttpError::ConnectionTimeout),
            Ok(Ok(stream)) => return Ok(stream),
            Ok(Err(e)) => last = Some(e),
        }
    }
    Err(last.map_or(HttpError::DestinationNotFound, HttpError::Connect))
}

/// A certificate the roots do not vouch for is a certificate error for the
/// guest; anything else stays a TLS protocol error.
fn tls_error(e: std::io::Error) -> HttpError {
    let rustls_error = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    match rustls_error {
        Some(rustls::Error::InvalidCertificate(_)) => HttpError::TlsCertificateError,
        _ => HttpError::Tls(e),
    }
}

async fn exchange<S>(
    stream: S,
    mut request: http::Request<WasiBody>,
    timeouts: Timeouts,
) -> Result<(http::Response<WasiBody>, IoFuture), HttpError>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let handshake = hyper::client::conn::http1::handshake(TokioIo::new(stream));
    let (mut sender, conn) = tokio::time::timeout(timeouts.connect, handshake)
        .await
        .map_err(|_| HttpError::ConnectionTimeout)??;
    // Origin form on the wire: the scheme and authority are only for proxies.
    let path = request
        .uri()
        .path_and_query()
        .map_or_else(|| "/".to_string(), |p| p.as_str().to_string());
    *request.uri_mut() = http::Uri::builder()
        .path_and_query(path)
        .build()
        .map_err(|_| HttpError::HttpRequestUriInvalid)?;

    // The connection must be driven while waiting for the response head.
    let mut conn = Box::pin(conn);
    let mut conn_done = false;
    let response = tokio::time::timeout(timeouts.first_byte, sender.send_request(request));
    tokio::pin!(response);
    let response = loop {
        tokio::select! {
            biased;
            r = &mut response => {
                break r.map_err(|_| HttpError::ConnectionReadTimeout)??;
            }
            done = &mut conn, if !conn_done => {
                conn_done = true;
                done?;
            }
        }
    };

    // Tokio panics on a zero interval.
    let gap = timeouts.between_bytes.max(Duration::from_nanos(1));
    let mut timer = tokio::time::interval(gap);
    timer.reset();
    let response = response.map(|incoming| TimedBody { incoming, timer }.boxed_unsync());
    let io: IoFuture = Box::new(async move {
        if conn_done {
            return Ok(());
        }
        conn.await.map_err(|e| {
            if e.is_timeout() {
                HttpError::HttpResponseTimeout
            } else {
                e.into()
            }
        })
    });
    Ok((response, io))
}

/// A response body that fails when no bytes arrive for a while.
struct TimedBody {
    incoming: Incoming,
    timer: tokio::time::Interval,
}

impl Body for TimedBody {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        match Pin::new(&mut self.incoming).poll_frame(cx) {
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(if e.is_timeout() {
                HttpError::HttpResponseTimeout
            } else {
                e.into()
            }))),
            Poll::Ready(Some(Ok(frame))) => {
                self.timer.reset();
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Pending => {
                ready!(self.timer.poll_tick(cx));
                Poll::Ready(Some(Err(HttpError::ConnectionReadTimeout)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.incoming.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.incoming.size_hint()
    }
}

/// Largest answer read from a secret's destination: it is held whole to
/// be scrubbed (a webhook answers `ok` or an error page).
const SECRET_RESPONSE_LIMIT: usize = 1 << 20;

/// A response from a secret's destination, read whole and handed on with
/// every form of every secret replaced in its headers and body, so a
/// webhook that quotes its own URL cannot give it to the guest.
pub(crate) async fn scrubbed(
    response: http::Response<WasiBody>,
    io: IoFuture,
    scrub: &Scrubber,
) -> Result<(http::Response<WasiBody>, IoFuture), HttpError> {
    let (mut parts, mut body) = response.into_parts();
    // The connection has to be driven while the body is read.
    let mut io = Box::into_pin(io);
    let mut io_result = None;
    let read = async {
        let mut bytes = Vec::new();
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame?.into_data() {
                if bytes.len() + data.len() > SECRET_RESPONSE_LIMIT {
                    return Err(HttpError::HttpResponseBodySize(Some(
                        SECRET_RESPONSE_LIMIT as u64,
                    )));
                }
                bytes.extend_from_slice(&data);
            }
        }
        Ok(bytes)
    };
    tokio::pin!(read);
    let bytes = loop {
        tokio::select! {
            bytes = &mut read => break bytes?,
            done = &mut io, if io_result.is_none() => io_result = Some(done),
        }
    };
    let bytes = scrub.bytes(&bytes).unwrap_or(bytes);
    let mut headers = http::HeaderMap::with_capacity(parts.headers.len());
    for (name, value) in &parts.headers {
        let value = match scrub.bytes(value.as_bytes()) {
            None => value.clone(),
            // The markers are plain ASCII, so this only fails on a header
            // that was not valid to begin with: drop it rather than pass it.
            Some(clean) => match http::HeaderValue::from_bytes(&clean) {
                Ok(clean) => clean,
                Err(_) => continue,
            },
        };
        headers.append(name.clone(), value);
    }
    parts.headers = headers;
    parts.headers.remove(http::header::TRANSFER_ENCODING);
    parts.headers.insert(
        http::header::CONTENT_LENGTH,
        http::HeaderValue::from(bytes.len()),
    );
    let body = http_body_util::Full::new(Bytes::from(bytes))
        .map_err(|never| match never {})
        .boxed_unsync();
    let io: IoFuture = match io_result {
        Some(done) => Box::new(std::future::ready(done)),
        None => Box::new(io),
    };
    Ok((http::Response::from_parts(parts, body), io))
}
