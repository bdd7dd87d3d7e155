//! Queuing during a live call: which failures are queued, the body held
//! before sending, and the `202 Accepted` the guest gets instead.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt as _;
use hyper::body::{Body, Frame, SizeHint};
use wasmtime_wasi_http::{Error as HttpError, WasiBody};

use crate::outbound::IoFuture;

/// A request body read before sending.
pub(crate) enum QueuedBody {
    /// The whole body, within the limit: the request can be queued.
    Whole(Bytes),
    /// Over the limit: what was read, then the rest, to be sent as it is
    /// (and not queued).
    TooLarge(WasiBody),
}

/// Read `body` whole if it fits in `limit` bytes.
pub(crate) async fn buffer_body(mut body: WasiBody, limit: usize) -> Result<QueuedBody, HttpError> {
    let mut held = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame?;
        let Ok(data) = frame.into_data() else {
            // Trailers: a webhook has no use for them.
            continue;
        };
        held.extend_from_slice(&data);
        if held.len() > limit {
            let rest = Prefixed {
                head: Some(held.freeze()),
                rest: body,
            };
            return Ok(QueuedBody::TooLarge(rest.boxed_unsync()));
        }
    }
    Ok(QueuedBody::Whole(held.freeze()))
}

/// Bytes already read, then the rest of the body.
struct Prefixed {
    head: Option<Bytes>,
    rest: WasiBody,
}

impl Body for Prefixed {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        if let Some(head) = self.head.take() {
            return Poll::Ready(Some(Ok(Frame::data(head))));
        }
        Pin::new(&mut self.rest).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.head.is_none() && self.rest.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let mut hint = self.rest.size_hint();
        let head = self.head.as_ref().map_or(0, |h| h.len() as u64);
        hint.set_lower(hint.lower() + head);
        if let Some(upper) = hint.upper() {
            hint.set_upper(upper + head);
        }
        hint
    }
}

/// Whether `error` happened before any byte of the request left the host:
/// the name did not resolve, or no connection could be made (refused,
/// unreachable, timed out, including a TLS handshake that timed out).
/// Certificate and TLS protocol errors, and anything after the request
/// was written, are not: the receiver may have seen it, or is not who
/// it should be.
pub(crate) fn connection_phase(error: &HttpError) -> bool {
    matches!(
        error,
        HttpError::DnsTimeout
            | HttpError::DnsError { .. }
            | HttpError::DestinationNotFound
            | HttpError::DestinationUnavailable
            | HttpError::DestinationIpUnroutable
            | HttpError::Connect(_)
            | HttpError::ConnectionRefused
            | HttpError::ConnectionTimeout
    )
}

/// The guest's answer for a queued request: `202 Accepted`, header
/// `x-warden-outbox: <id>`, and `{"queued": true, "outbox_id": …,
/// "secret": …, "reason": …}`.
pub(crate) fn queued_response(
    id: &str,
    secret: &str,
    reason: &str,
) -> Result<(http::Response<WasiBody>, IoFuture), HttpError> {
    let body = serde_json::json!({
        "queued": true,
        "outbox_id": id,
        "secret": secret,
        "reason": reason,
    })
    .to_string();
    let body = http_body_util::Full::new(Bytes::from(body))
        .map_err(|never| match never {})
        .boxed_unsync();
    let response = http::Response::builder()
        .status(http::StatusCode::ACCEPTED)
        .header(http::header::CONTENT_TYPE, "application/json")
        .header("x-warden-outbox", id)
        .body(body)
        .map_err(|e| HttpError::InternalError(Some(format!("building the outbox answer: {e}"))))?;
    let io: IoFuture = Box::new(std::future::ready(Ok(())));
    Ok((response, io))
}
