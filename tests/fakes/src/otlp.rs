//! An OpenTelemetry collector's OTLP/HTTP trace endpoint on loopback:
//! `POST /v1/traces` with a protobuf `ExportTraceServiceRequest`, decoded
//! with the official generated types, so a test reads what a real
//! collector would receive (span names, parents, attributes).

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::{Request, Response};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use prost::Message as _;

use crate::server::{Loopback, bind};

/// One received span, flattened.
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    /// Span name (`warden.task`, …).
    pub name: String,
    /// Span id, hex.
    pub span_id: String,
    /// Parent span id, hex (empty for a root).
    pub parent: String,
    /// Trace id, hex.
    pub trace_id: String,
    /// String, integer and boolean attributes, as text.
    pub attributes: Vec<(String, String)>,
    /// The resource's `service.name`.
    pub service: String,
}

impl Span {
    /// The attribute `key`, if present.
    pub fn attr(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Default)]
struct Seen {
    spans: Vec<Span>,
    raw: Vec<u8>,
    errors: Vec<String>,
}

/// A running receiver; stops when dropped.
#[derive(Debug)]
pub struct OtlpReceiver {
    url: String,
    seen: Arc<Mutex<Seen>>,
    _server: Loopback,
}

impl OtlpReceiver {
    /// Start it on a loopback port.
    pub fn start() -> Self {
        let (listener, addr) = bind();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let server = Loopback::serve("otlp", listener, seen.clone(), handle);
        OtlpReceiver {
            url: format!("http://{addr}"),
            seen,
            _server: server,
        }
    }

    /// The base URL, the value for `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub fn endpoint(&self) -> &str {
        &self.url
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<Span> {
        self.lock().spans.clone()
    }

    /// Every request body received so far, concatenated (to search for
    /// what must never be sent).
    pub fn raw(&self) -> Vec<u8> {
        self.lock().raw.clone()
    }

    /// Requests that were not valid OTLP protobuf.
    pub fn errors(&self) -> Vec<String> {
        self.lock().errors.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner())
    }
}

async fn handle(
    request: Request<hyper::body::Incoming>,
    seen: Arc<Mutex<Seen>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path_ok = request.method() == hyper::Method::POST && request.uri().path() == "/v1/traces";
    let body = request
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let mut s = seen.lock().unwrap_or_else(|p| p.into_inner());
    if !path_ok {
        s.errors.push("not POST /v1/traces".into());
        return Ok(status(404, Vec::new()));
    }
    s.raw.extend_from_slice(&body);
    match ExportTraceServiceRequest::decode(body.as_ref()) {
        Ok(export) => {
            s.spans.extend(flatten(export));
            let answer = ExportTraceServiceResponse::default().encode_to_vec();
            Ok(status(200, answer))
        }
        Err(e) => {
            s.errors
                .push(format!("not an ExportTraceServiceRequest: {e}"));
            Ok(status(400, Vec::new()))
        }
    }
}

fn status(code: u16, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = hyper::StatusCode::from_u16(code).unwrap_or(hyper::StatusCode::OK);
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/x-protobuf"),
    );
    r
}

fn text(v: Option<&Value>) -> String {
    match v {
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::BoolValue(b)) => b.to_string(),
        Some(Value::DoubleValue(d)) => d.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

fn flatten(export: ExportTraceServiceRequest) -> Vec<Span> {
    let mut out = Vec::new();
    for rs in export.resource_spans {
        let service = rs
            .resource
            .as_ref()
            .and_then(|r| r.attributes.iter().find(|a| a.key == "service.name"))
            .map(|a| text(a.value.as_ref().and_then(|v| v.value.as_ref())))
            .unwrap_or_default();
        for ss in rs.scope_spans {
            for span in ss.spans {
                out.push(Span {
                    name: span.name,
                    span_id: hex(&span.span_id),
                    parent: hex(&span.parent_span_id),
                    trace_id: hex(&span.trace_id),
                    attributes: span
                        .attributes
                        .iter()
                        .map(|a| {
                            (
                                a.key.clone(),
                                text(a.value.as_ref().and_then(|v| v.value.as_ref())),
                            )
                        })
                        .collect(),
                    service: service.clone(),
                });
            }
        }
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
