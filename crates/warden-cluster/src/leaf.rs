//! Edge boxes as NATS leaf nodes: records buffered on the edge, forwarded
//! to the hub by JetStream itself.
//!
//! An edge box runs its own nats-server as a leaf node of the central one,
//! with its own JetStream domain. [`EdgeLink::publish_record`] stores a
//! record (a journal or incident record: an id and an opaque JSON payload)
//! in the edge's stream [`EDGE_STREAM`] on local disk, whether or not the
//! hub is reachable. The hub's stream [`EDGE_IN_STREAM`] *sources* from each
//! edge's stream through the edge domain's API (`$JS.<domain>.API`): the
//! hub pulls while connected and resumes where it stopped after a
//! disconnect, and the `Nats-Msg-Id` (`<domain>:<id>`) lets the hub drop a
//! record it already has.

use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, stream};

use crate::MAX_TASK_BYTES;
use crate::bus::{Published, connect_client, publish_acked};
use crate::bus_error::BusError;
use crate::security::Security;

/// The stream on an edge box that buffers its records.
pub const EDGE_STREAM: &str = "WARDEN_EDGE";
/// The hub's stream that gathers every edge's records.
pub const EDGE_IN_STREAM: &str = "WARDEN_EDGE_IN";
pub(crate) const DOMAIN_HEADER: &str = "Warden-Edge-Domain";
pub(crate) const ID_HEADER: &str = "Warden-Record-Id";
/// Header JetStream puts on a sourced message: `<stream>[:<hash>] <seq> …`.
const SOURCE_HEADER: &str = "Nats-Stream-Source";
/// How long the hub and the edge remember a record id to drop a repeat.
const DEDUP_WINDOW: Duration = Duration::from_secs(10 * 60);
/// The hub's bound on [`EDGE_IN_STREAM`].
const HUB_MAX_BYTES: i64 = 1 << 30;

/// The subject an edge's records are published on.
pub(crate) fn record_subject(domain: &str) -> String {
    format!("warden.edge.{domain}.record")
}

/// Whether `domain` can name a JetStream domain here: one NATS subject
/// token of 1-64 letters, digits, `-` or `_`.
///
/// ```
/// assert!(warden_cluster::is_jetstream_domain("edge-1"));
/// assert!(!warden_cluster::is_jetstream_domain("edge.1"));
/// assert!(!warden_cluster::is_jetstream_domain(""));
/// ```
pub fn is_jetstream_domain(domain: &str) -> bool {
    !domain.is_empty()
        && domain.len() <= 64
        && domain
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn check_domain(domain: &str) -> Result<(), BusError> {
    if is_jetstream_domain(domain) {
        Ok(())
    } else {
        Err(BusError::Name {
            what: "JetStream domain",
            name: domain.to_string(),
        })
    }
}

/// The edge side: a connection to the edge box's own (leaf) nats-server.
///
/// ```no_run
/// # async fn demo() -> Result<(), warden_cluster::BusError> {
/// use warden_cluster::EdgeLink;
/// let edge = EdgeLink::connect("nats://127.0.0.1:4223", "edge1", 256 << 20).await?;
/// edge.publish_record("journal-t-1-7", &serde_json::json!({"kind": "step"})).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct EdgeLink {
    client: async_nats::Client,
    js: jetstream::Context,
    domain: String,
    max_bytes: i64,
}

impl std::fmt::Debug for EdgeLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EdgeLink")
            .field("domain", &self.domain)
            .field("max_bytes", &self.max_bytes)
            .finish_non_exhaustive()
    }
}

impl EdgeLink {
    /// Connect to the edge's nats-server at `url` (JetStream domain
    /// `domain`) and make sure [`EDGE_STREAM`] exists: file storage, at most
    /// `max_bytes`, `discard: new` (a full buffer refuses a record with
    /// [`BusError::EdgeBufferFull`]; it never drops one it accepted).
    pub async fn connect(url: &str, domain: &str, max_bytes: i64) -> Result<EdgeLink, BusError> {
        EdgeLink::connect_with(url, domain, max_bytes, &Security::default()).await
    }

    /// Like [`EdgeLink::connect`], with TLS and credentials for the edge's
    /// nats-server (plaintext is refused to a host that is not loopback
    /// unless `security` allows it).
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), warden_cluster::BusError> {
    /// use warden_cluster::{EdgeLink, NatsAuth, Security};
    /// let security = Security::default().with_nats_auth(NatsAuth::UserPassword {
    ///     user: "edge".into(),
    ///     password: std::env::var("EDGE_NATS_PASSWORD").unwrap_or_default(),
    /// });
    /// let edge = EdgeLink::connect_with("nats://127.0.0.1:4223", "edge1", 256 << 20, &security).await?;
    /// # Ok(()) }
    /// ```
    pub async fn connect_with(
        url: &str,
        domain: &str,
        max_bytes: i64,
        security: &Security,
    ) -> Result<EdgeLink, BusError> {
        check_domain(domain)?;
        let timeout = Duration::from_secs(5);
        let client = connect_client(url, timeout, "warden-edge", security).await?;
        // `$JS.API` on a leaf with its own domain is the leaf's JetStream.
        let js = jetstream::new(client.clone());
        let config = stream::Config {
            name: EDGE_STREAM.into(),
            description: Some(format!("records of edge `{domain}` waiting for the hub")),
            subjects: vec![format!("warden.edge.{domain}.>")],
            storage: stream::StorageType::File,
            discard: stream::DiscardPolicy::New,
            max_bytes,
            max_message_size: i32::try_from(MAX_TASK_BYTES).unwrap_or(i32::MAX),
            duplicate_window: DEDUP_WINDOW,
            ..Default::default()
        };
        js.create_or_update_stream(config)
            .await
            .map_err(|e| BusError::setup("the edge stream", EDGE_STREAM, e))?;
        Ok(EdgeLink {
            client,
            js,
            domain: domain.to_string(),
            max_bytes,
        })
    }

    /// Store a record in the edge's buffer; the hub gets it when connected.
    /// `id` must be stable: publishing the same id again within 10 minutes
    /// is dropped here, and the hub drops a repeat by the same key.
    pub async fn publish_record(
        &self,
        id: &str,
        payload: &serde_json::Value,
    ) -> Result<Published, BusError> {
        if id.is_empty() || id.chars().any(char::is_control) || id.len() > 256 {
            return Err(BusError::Malformed {
                what: "record id".into(),
                why: "empty, over 256 bytes or holding a control character".into(),
            });
        }
        let body = serde_json::to_vec(payload).map_err(|e| BusError::Malformed {
            what: format!("record `{id}`"),
            why: e.to_string(),
        })?;
        if body.len() > MAX_TASK_BYTES {
            return Err(BusError::TooBig {
                id: id.to_string(),
                bytes: body.len(),
                max: MAX_TASK_BYTES,
            });
        }
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", format!("{}:{id}", self.domain).as_str());
        headers.insert(DOMAIN_HEADER, self.domain.as_str());
        headers.insert(ID_HEADER, id);
        match publish_acked(&self.js, record_subject(&self.domain), headers, body).await {
            Err(BusError::Publish { source, .. }) if is_full(&*source) => {
                Err(BusError::EdgeBufferFull {
                    domain: self.domain.clone(),
                    stream: EDGE_STREAM.into(),
                    max_bytes: self.max_bytes,
                    id: id.to_string(),
                })
            }
            other => other,
        }
    }

    /// Records and bytes held in the edge's buffer.
    pub async fn buffered(&self) -> Result<(u64, u64), BusError> {
        let mut s = self
            .js
            .get_stream(EDGE_STREAM)
            .await
            .map_err(|e| BusError::setup("the edge stream", EDGE_STREAM, e))?;
        let info = s
            .info()
            .await
            .map_err(|e| BusError::setup("the edge stream", EDGE_STREAM, e))?;
        Ok((info.state.messages, info.state.bytes))
    }

    /// Free the buffer of what the hub (JetStream domain `hub_domain`)
    /// already holds: asks the hub for the last record it sourced from this
    /// edge, reads the edge sequence from that message's
    /// `Nats-Stream-Source` header, and purges the buffer below it. Sourcing
    /// is in order, so everything below is on the hub. Returns how many
    /// records were purged (0 when the hub is unreachable or has nothing).
    pub async fn trim_forwarded(&self, hub_domain: &str) -> Result<u64, BusError> {
        check_domain(hub_domain)?;
        let hub = jetstream::with_domain(self.client.clone(), hub_domain);
        let Ok(hub_stream) = hub.get_stream_no_info(EDGE_IN_STREAM).await else {
            return Ok(0);
        };
        let Ok(last) = hub_stream
            .get_last_raw_message_by_subject(&record_subject(&self.domain))
            .await
        else {
            return Ok(0);
        };
        let Some(seq) = last
            .headers
            .get(SOURCE_HEADER)
            .and_then(|v| source_sequence(v.as_str()))
        else {
            return Ok(0);
        };
        let edge = self
            .js
            .get_stream_no_info(EDGE_STREAM)
            .await
            .map_err(|e| BusError::setup("the edge stream", EDGE_STREAM, e))?;
        // Purge keeps `seq + 1` and above: `seq` itself is on the hub.
        let purged = edge
            .purge()
            .sequence(seq + 1)
            .await
            .map_err(|e| BusError::setup("the edge stream", EDGE_STREAM, e))?;
        Ok(purged.purged)
    }
}

/// The origin sequence in a `Nats-Stream-Source` header value.
fn source_sequence(value: &str) -> Option<u64> {
    value.split_whitespace().nth(1)?.parse().ok()
}

/// Whether a publish error is a stream at its bound with `discard: new`.
fn is_full(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        let text = err.to_string();
        if text.contains("maximum bytes") || text.contains("maximum messages") {
            return true;
        }
        cur = err.source();
    }
    false
}

/// A record as it arrived on the hub.
#[derive(Debug, Clone, PartialEq)]
pub struct EdgeRecord {
    /// Its sequence in [`EDGE_IN_STREAM`].
    pub sequence: u64,
    /// The edge it came from.
    pub domain: String,
    /// Its stable id.
    pub id: String,
    /// The payload as published.
    pub payload: serde_json::Value,
}

/// The hub side: gathers every edge's records into [`EDGE_IN_STREAM`].
///
/// ```no_run
/// # async fn demo() -> Result<(), warden_cluster::BusError> {
/// use warden_cluster::EdgeHub;
/// let hub = EdgeHub::connect("nats://127.0.0.1:4222").await?;
/// hub.ensure_hub_source("edge1").await?;
/// for record in hub.read(0, 100).await? {
///     println!("{} from {}: {}", record.id, record.domain, record.payload);
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct EdgeHub {
    js: jetstream::Context,
}

impl std::fmt::Debug for EdgeHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EdgeHub").finish_non_exhaustive()
    }
}

impl EdgeHub {
    /// Connect to the central nats-server at `url`.
    pub async fn connect(url: &str) -> Result<EdgeHub, BusError> {
        EdgeHub::connect_with(url, &Security::default()).await
    }

    /// Connect to the hub's NATS server with TLS and credentials.
    pub async fn connect_with(url: &str, security: &Security) -> Result<EdgeHub, BusError> {
        let client =
            connect_client(url, Duration::from_secs(5), "warden-edge-hub", security).await?;
        Ok(EdgeHub {
            js: jetstream::new(client),
        })
    }

    /// Make [`EDGE_IN_STREAM`] source from edge `domain`'s [`EDGE_STREAM`]
    /// (creating the stream on first use). Idempotent: an edge already
    /// sourced is left as it is.
    pub async fn ensure_hub_source(&self, domain: &str) -> Result<(), BusError> {
        check_domain(domain)?;
        // The server wants the domain as an external API prefix (the
        // `domain` field is a convenience of some clients, not the API's).
        let api_prefix = format!("$JS.{domain}.API");
        // Only this edge's own subject is taken from its stream: an edge box
        // (its nats-server is the box owner's) cannot put records on the
        // hub under another edge's domain.
        let filter = record_subject(domain);
        let source = stream::Source {
            name: EDGE_STREAM.into(),
            external: Some(stream::External {
                api_prefix: api_prefix.clone(),
                delivery_prefix: None,
            }),
            filter_subject: Some(filter.clone()),
            ..Default::default()
        };
        let mut config = match self.js.get_stream(EDGE_IN_STREAM).await {
            Ok(mut s) => s
                .info()
                .await
                .map_err(|e| BusError::setup("the hub's edge stream", EDGE_IN_STREAM, e))?
                .config
                .clone(),
            Err(_) => stream::Config {
                name: EDGE_IN_STREAM.into(),
                description: Some("records forwarded by edge boxes".into()),
                storage: stream::StorageType::File,
                discard: stream::DiscardPolicy::New,
                max_bytes: HUB_MAX_BYTES,
                duplicate_window: DEDUP_WINDOW,
                ..Default::default()
            },
        };
        let sources = config.sources.get_or_insert_with(Vec::new);
        let this_edge = |s: &stream::Source| {
            s.name == EDGE_STREAM
                && s.external.as_ref().map(|e| e.api_prefix.as_str()) == Some(api_prefix.as_str())
        };
        if sources
            .iter()
            .any(|s| this_edge(s) && s.filter_subject.as_deref() == Some(filter.as_str()))
        {
            return Ok(());
        }
        // A source set up without the filter (an older hub) is replaced.
        sources.retain(|s| !this_edge(s));
        sources.push(source);
        self.js
            .create_or_update_stream(config)
            .await
            .map_err(|e| BusError::setup("the hub's edge stream", EDGE_IN_STREAM, e))?;
        Ok(())
    }

    /// Records on the hub after sequence `after`, at most `max` of them.
    pub async fn read(&self, after: u64, max: usize) -> Result<Vec<EdgeRecord>, BusError> {
        let mut s = match self.js.get_stream(EDGE_IN_STREAM).await {
            Ok(s) => s,
            Err(_) => return Ok(Vec::new()),
        };
        let info = s
            .info()
            .await
            .map_err(|e| BusError::setup("the hub's edge stream", EDGE_IN_STREAM, e))?;
        let (first, last) = (info.state.first_sequence, info.state.last_sequence);
        let mut out = Vec::new();
        let mut seq = after.saturating_add(1).max(first);
        while seq <= last && out.len() < max {
            // A gap (a purged or deleted message) is skipped.
            if let Ok(m) = s.get_raw_message(seq).await {
                let header = |name: &str| {
                    m.headers
                        .get(name)
                        .map(|v| v.as_str().to_string())
                        .unwrap_or_default()
                };
                let payload =
                    serde_json::from_slice(&m.payload).map_err(|e| BusError::Malformed {
                        what: format!("edge record at {EDGE_IN_STREAM} sequence {seq}"),
                        why: e.to_string(),
                    })?;
                out.push(EdgeRecord {
                    sequence: seq,
                    domain: header(DOMAIN_HEADER),
                    id: header(ID_HEADER),
                    payload,
                });
            }
            seq += 1;
        }
        Ok(out)
    }

    /// How many records [`EDGE_IN_STREAM`] holds (0 before the first edge).
    pub async fn count(&self) -> Result<u64, BusError> {
        let mut s = match self.js.get_stream(EDGE_IN_STREAM).await {
            Ok(s) => s,
            Err(_) => return Ok(0),
        };
        let info = s
            .info()
            .await
            .map_err(|e| BusError::setup("the hub's edge stream", EDGE_IN_STREAM, e))?;
        Ok(info.state.messages)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_origin_sequence_is_read_from_a_stream_source_header() {
        assert_eq!(
            source_sequence("WARDEN_EDGE:abc123 42 > warden.edge.edge1.record"),
            Some(42)
        );
        assert_eq!(source_sequence("WARDEN_EDGE"), None);
    }

    #[test]
    fn a_domain_must_be_one_subject_token() {
        assert!(check_domain("edge1").is_ok());
        assert!(check_domain("edge.1").is_err());
        assert!(check_domain("").is_err());
        assert!(check_domain("a>").is_err());
    }
}
