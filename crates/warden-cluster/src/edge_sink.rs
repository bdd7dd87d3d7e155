//! The hub's end of the edge records: a durable pull consumer on
//! [`EDGE_IN_STREAM`] that stores every record an edge box forwarded in
//! PostgreSQL, and acks it only after the commit.
//!
//! A journal record (payload `{"journal": "<sealed line>"}`, see
//! [`edge_journal_payload`]) goes to `warden_edge_journal`, keyed by (edge
//! domain, task, seq); any other record to `warden_edge_records`, keyed by
//! (edge domain, record id). Both insert with `ON CONFLICT DO NOTHING`, so
//! a redelivered record (the sink died between commit and ack, a consumer
//! restarted) is stored once. [`verify_edge_journal`] checks each edge
//! task's chain under the key the edge sealed it with.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, AckKind, consumer};
use futures::StreamExt as _;
use tokio_util::sync::CancellationToken;
use warden::journal::{HostKey, JournalEvent, JournalRecord};

use crate::bus::connect_client;
use crate::bus_error::BusError;
use crate::error::ClusterError;
use crate::journal::{ClusterVerify, check_line};
use crate::leaf::{DOMAIN_HEADER, EDGE_IN_STREAM, EdgeRecord, ID_HEADER, record_subject};
use crate::record::Record;
use crate::security::Security;

/// The hub's durable consumer that moves edge records into PostgreSQL.
pub const EDGE_SINK_CONSUMER: &str = "warden-edge-sink";

/// The id of record `seq` of `task`'s journal chain on an edge box: the
/// same each time it is published, so the edge and the hub drop a repeat.
///
/// ```
/// assert_eq!(warden_cluster::edge_journal_id("t-1", 7), "journal:t-1:7");
/// ```
pub fn edge_journal_id(task: &str, seq: u64) -> String {
    format!("journal:{task}:{seq}")
}

/// The payload of an edge journal record: the sealed line exactly as the
/// journal holds it (its MAC covers these bytes).
///
/// ```
/// use warden::journal::{HostKey, JournalEvent, JournalRecord};
/// let key = HostKey::from_bytes([7; 32]);
/// let event = JournalEvent::Skip { step_id: "s1".into(), tool: "probe".into(), reason: "none".into() };
/// let (line, _) = JournalRecord::seal(&key, 0, "2026-12-05T14:00:00Z", "t-1", &event, JournalRecord::GENESIS)?;
/// let payload = warden_cluster::edge_journal_payload(&line);
/// assert_eq!(payload["journal"], line.as_str());
/// # Ok::<(), warden::AgentError>(())
/// ```
pub fn edge_journal_payload(line: &str) -> serde_json::Value {
    serde_json::json!({ "journal": line })
}

/// What one [`EdgeSink::run`] did before it was stopped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SinkStats {
    /// Records stored (journal records and others).
    pub stored: u64,
    /// Records PostgreSQL held already (redeliveries), acked without a write.
    pub duplicates: u64,
    /// Journal records whose (domain, task, seq) is held with a different
    /// line: not stored, logged (an edge that reused a sequence, or a
    /// forgery); the verification of that chain shows which holds.
    pub conflicts: u64,
    /// Malformed records terminated (never delivered again).
    pub terminated: u64,
}

/// The hub's consumer of edge records.
///
/// ```no_run
/// # async fn demo(record: std::sync::Arc<warden_cluster::Record>) -> Result<(), warden_cluster::BusError> {
/// use warden_cluster::{EdgeHub, EdgeSink};
/// let hub = EdgeHub::connect("nats://127.0.0.1:4222").await?;
/// hub.ensure_hub_source("edge1").await?;
/// let sink = EdgeSink::connect("nats://127.0.0.1:4222").await?;
/// let stop = warden::CancellationToken::new();
/// let stats = sink.run(record, stop).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct EdgeSink {
    js: jetstream::Context,
    url: String,
    ack_wait: Duration,
}

impl std::fmt::Debug for EdgeSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EdgeSink")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

enum Stored {
    New,
    Duplicate,
    Conflict,
}

impl EdgeSink {
    /// Connect to the hub's nats-server at `url` (plaintext, loopback
    /// only; see [`EdgeSink::connect_with`]).
    pub async fn connect(url: &str) -> Result<EdgeSink, BusError> {
        EdgeSink::connect_with(url, &Security::default()).await
    }

    /// Connect to the hub's nats-server with TLS and credentials.
    pub async fn connect_with(url: &str, security: &Security) -> Result<EdgeSink, BusError> {
        let client =
            connect_client(url, Duration::from_secs(5), "warden-edge-sink", security).await?;
        Ok(EdgeSink {
            js: jetstream::new(client),
            url: url.to_string(),
            ack_wait: Duration::from_secs(30),
        })
    }

    /// How long a fetched record may stay unacked before JetStream hands
    /// it out again (default 30 s).
    pub fn with_ack_wait(mut self, wait: Duration) -> EdgeSink {
        self.ack_wait = wait.max(Duration::from_millis(100));
        self
    }

    /// The durable consumer, created (or updated) on [`EDGE_IN_STREAM`];
    /// waits while the stream does not exist yet (no edge sourced).
    async fn consumer(
        &self,
        stop: &CancellationToken,
    ) -> Result<Option<consumer::PullConsumer>, BusError> {
        let config = consumer::pull::Config {
            durable_name: Some(EDGE_SINK_CONSUMER.into()),
            description: Some("stores edge records in warden's record".into()),
            ack_policy: consumer::AckPolicy::Explicit,
            ack_wait: self.ack_wait,
            ..Default::default()
        };
        loop {
            match self.js.get_stream(EDGE_IN_STREAM).await {
                Ok(stream) => {
                    return stream
                        .get_or_create_consumer(EDGE_SINK_CONSUMER, config)
                        .await
                        .map(Some)
                        .map_err(|e| BusError::setup("the edge sink", EDGE_SINK_CONSUMER, e));
                }
                Err(e) => {
                    tracing::debug!(error = %e, "no {EDGE_IN_STREAM} yet; waiting");
                    tokio::select! {
                        () = stop.cancelled() => return Ok(None),
                        () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
            }
        }
    }

    /// Store edge records in `record` until `stop` fires: fetch a batch,
    /// store each record (`ON CONFLICT DO NOTHING`), ack after the commit.
    /// While PostgreSQL refuses, a record is retried in place (its ack
    /// deadline extended); if the record's connection is closed for good
    /// this returns [`BusError::Record`], and unacked records are handed
    /// out again after the ack wait.
    pub async fn run(
        &self,
        record: Arc<Record>,
        stop: CancellationToken,
    ) -> Result<SinkStats, BusError> {
        let mut stats = SinkStats::default();
        let Some(consumer) = self.consumer(&stop).await? else {
            return Ok(stats);
        };
        let mut pause = Duration::from_millis(100);
        while !stop.is_cancelled() {
            let fetch = consumer
                .batch()
                .max_messages(64)
                .expires(Duration::from_secs(1))
                .messages();
            let batch = tokio::select! {
                () = stop.cancelled() => break,
                b = fetch => b,
            };
            let mut batch = match batch {
                Ok(b) => {
                    pause = Duration::from_millis(100);
                    b
                }
                Err(e) => {
                    tracing::warn!(error = %e, url = %self.url, "edge sink fetch failed; retrying");
                    tokio::select! {
                        () = stop.cancelled() => break,
                        () = tokio::time::sleep(pause) => {}
                    }
                    pause = (pause * 2).min(Duration::from_secs(2));
                    continue;
                }
            };
            loop {
                let next = tokio::select! {
                    () = stop.cancelled() => None,
                    m = batch.next() => m,
                };
                let Some(Ok(msg)) = next else { break };
                let parsed = parse(&msg);
                let rec = match parsed {
                    Ok(r) => r,
                    Err(why) => {
                        tracing::warn!(subject = %msg.subject, reason = why, "malformed edge record terminated");
                        let _ = msg.ack_with(AckKind::Term).await;
                        stats.terminated += 1;
                        continue;
                    }
                };
                let mut wait = Duration::from_millis(100);
                let stored = loop {
                    match store(&record, &rec).await {
                        Ok(s) => break Some(s),
                        Err(ClusterError::Task { why, .. }) => {
                            tracing::warn!(id = %rec.id, reason = why, "malformed edge record terminated");
                            let _ = msg.ack_with(AckKind::Term).await;
                            stats.terminated += 1;
                            break None;
                        }
                        Err(ClusterError::Postgres { source, what }) if source.is_closed() => {
                            return Err(BusError::Record(ClusterError::Postgres { what, source }));
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, id = %rec.id, "the record refused an edge record; retrying");
                            let _ = msg.ack_with(AckKind::Progress).await;
                            tokio::select! {
                                () = stop.cancelled() => return Ok(stats),
                                () = tokio::time::sleep(wait) => {}
                            }
                            wait = (wait * 2).min(Duration::from_secs(2));
                        }
                    }
                };
                let Some(stored) = stored else { continue };
                // After the commit: a lost ack is a redelivery, stored once.
                if let Err(e) = msg.ack().await {
                    tracing::warn!(error = %e, id = %rec.id, "ack failed; the edge record will be redelivered");
                }
                match stored {
                    Stored::New => stats.stored += 1,
                    Stored::Duplicate => stats.duplicates += 1,
                    Stored::Conflict => {
                        tracing::warn!(domain = %rec.domain, id = %rec.id, "an edge journal record conflicts with the one stored under its task and sequence; kept the first");
                        stats.conflicts += 1;
                    }
                }
            }
        }
        Ok(stats)
    }
}

fn parse(msg: &jetstream::Message) -> Result<EdgeRecord, String> {
    let header = |name: &str| {
        msg.headers
            .as_ref()
            .and_then(|h| h.get(name))
            .map(|v| v.as_str().to_string())
            .filter(|v| !v.is_empty())
            .ok_or_else(|| format!("no {name} header"))
    };
    let sequence = msg.info().map(|i| i.stream_sequence).unwrap_or(0);
    let payload = serde_json::from_slice(&msg.payload)
        .map_err(|e| format!("the payload is not JSON: {e}"))?;
    let domain = header(DOMAIN_HEADER)?;
    // The hub takes each edge's own subject only (`ensure_hub_source`), so
    // the subject names the edge; a header naming another is a forgery.
    if msg.subject.as_str() != record_subject(&domain) {
        return Err(format!(
            "the record says it is from edge {domain:?} but came on {:?}",
            msg.subject.as_str()
        ));
    }
    Ok(EdgeRecord {
        sequence,
        domain,
        id: header(ID_HEADER)?,
        payload,
    })
}

fn i64_of(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Store one edge record: a journal line under (domain, task, seq), any
/// other record under (domain, id).
async fn store(record: &Record, rec: &EdgeRecord) -> Result<Stored, ClusterError> {
    let bad = |why: String| ClusterError::Task {
        task: format!("{}:{}", rec.domain, rec.id),
        why,
    };
    let client = record.client().await?;
    let seq = i64_of(rec.sequence);
    if let Some(line) = rec.payload.get("journal") {
        let line = line
            .as_str()
            .ok_or_else(|| bad("`journal` is not a string".into()))?;
        // The hub need not hold the edge's key to file a line: its task,
        // sequence and MAC are read as they are; verify_edge_journal checks
        // them under the key.
        let fields: serde_json::Value = serde_json::from_str(line.trim_end())
            .map_err(|e| bad(format!("the journal line is not JSON: {e}")))?;
        let task = fields["task_id"]
            .as_str()
            .ok_or_else(|| bad("the journal line has no task_id".into()))?;
        let jseq = fields["seq"]
            .as_u64()
            .ok_or_else(|| bad("the journal line has no seq".into()))?;
        let mac = fields["mac"].as_str().unwrap_or_default();
        let n = client
            .execute(
                "INSERT INTO warden_edge_journal (domain, task_id, seq, line, mac, record_id, stream_seq)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (domain, task_id, seq) DO NOTHING",
                &[&rec.domain, &task, &i64_of(jseq), &line, &mac, &rec.id, &seq],
            )
            .await
            .map_err(ClusterError::pg("store edge journal record"))?;
        if n == 1 {
            return Ok(Stored::New);
        }
        let held: String = client
            .query_one(
                "SELECT line FROM warden_edge_journal WHERE domain = $1 AND task_id = $2 AND seq = $3",
                &[&rec.domain, &task, &i64_of(jseq)],
            )
            .await
            .map_err(ClusterError::pg("read edge journal record"))?
            .get(0);
        return Ok(if held == line {
            Stored::Duplicate
        } else {
            Stored::Conflict
        });
    }
    let n = client
        .execute(
            "INSERT INTO warden_edge_records (domain, record_id, payload, stream_seq)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (domain, record_id) DO NOTHING",
            &[&rec.domain, &rec.id, &rec.payload, &seq],
        )
        .await
        .map_err(ClusterError::pg("store edge record"))?;
    Ok(if n == 1 {
        Stored::New
    } else {
        Stored::Duplicate
    })
}

/// Verify the edge journal records the hub stored, under `key` (the key
/// the edge sealed them with): each (edge, task) chain record by record
/// (MAC, sequence from 0 without gaps, link to the previous record), only
/// `domain`'s edges when given. Edge chains have no anchors: a tail cut
/// off before it reached the hub does not show.
///
/// ```no_run
/// # async fn demo(record: &warden_cluster::Record) -> Result<(), warden_cluster::ClusterError> {
/// let key = warden::journal::HostKey::from_bytes([7; 32]);
/// let report = warden_cluster::verify_edge_journal(record, &key, Some("edge1")).await?;
/// assert!(report.is_ok(), "{:?}", report.problems);
/// # Ok(()) }
/// ```
pub async fn verify_edge_journal(
    record: &Record,
    key: &HostKey,
    domain: Option<&str>,
) -> Result<ClusterVerify, ClusterError> {
    let rows = {
        let client = record.client().await?;
        let sql = "SELECT domain, task_id, seq, line FROM warden_edge_journal
                   WHERE $1::text IS NULL OR domain = $1 ORDER BY domain, task_id, seq";
        client
            .query(sql, &[&domain])
            .await
            .map_err(ClusterError::pg("read edge journal"))?
    };
    let mut report = ClusterVerify::default();
    let mut chains: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for row in rows {
        let (d, task, seq, line): (String, String, i64, String) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        let label = format!("edge `{d}` task `{task}`");
        let chain = chains.entry((d, task.clone())).or_default();
        report.records += 1;
        check_line(key, &label, &task, seq, &line, chain, &mut report.problems);
    }
    report.tasks = chains.len() as u64;
    Ok(report)
}

/// Seal `event` as the next record of `task`'s chain on an edge box and
/// return its id and payload for [`crate::EdgeLink::publish_record`];
/// `prev` is the chain's last MAC ([`JournalRecord::GENESIS`] for its
/// first record) and becomes this record's.
///
/// ```
/// use warden::journal::{HostKey, JournalEvent, JournalRecord};
/// let key = HostKey::from_bytes([7; 32]);
/// let event = JournalEvent::Skip { step_id: "s1".into(), tool: "probe".into(), reason: "none".into() };
/// let mut prev = JournalRecord::GENESIS.to_string();
/// let (id, payload) = warden_cluster::seal_edge_record(&key, "t-1", 0, "2026-12-05T14:00:00Z", &event, &mut prev)?;
/// assert_eq!(id, "journal:t-1:0");
/// assert_ne!(prev, JournalRecord::GENESIS);
/// # Ok::<(), warden_cluster::ClusterError>(())
/// ```
pub fn seal_edge_record(
    key: &HostKey,
    task: &str,
    seq: u64,
    ts: &str,
    event: &JournalEvent,
    prev: &mut String,
) -> Result<(String, serde_json::Value), ClusterError> {
    let (line, rec) =
        JournalRecord::seal(key, seq, ts, task, event, prev).map_err(|e| ClusterError::Task {
            task: task.to_string(),
            why: e.to_string(),
        })?;
    *prev = rec.mac;
    Ok((edge_journal_id(task, seq), edge_journal_payload(&line)))
}
