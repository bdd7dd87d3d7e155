//! NATS JetStream carries the cluster's traffic: alert intake (stored once
//! per intake key) and wake-ups for idle workers.
//!
//! A webhook publishes its alert with [`Bus::publish_alert`]; JetStream
//! drops a retry whose `Nats-Msg-Id` (the intake key) it saw within the
//! duplicate window. [`Bus::run_intake`] moves the stream into the record
//! and acks a message only after [`Record::enqueue`] committed it, so a pump
//! that dies in between causes a redelivery, which `enqueue` stores once.

use std::sync::Arc;
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, AckKind, consumer, stream};
use futures::StreamExt as _;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use warden::Task;

use crate::bus_error::{BusError, boxed};
use crate::security::Security;
use crate::{ClusterError, Enqueued, MAX_TASK_BYTES, Record};

/// The stream that holds alerts until a worker stored them in the record.
pub const INTAKE_STREAM: &str = "WARDEN_INTAKE";
/// The subjects [`INTAKE_STREAM`] listens on; alerts go to
/// `warden.intake.<source>`, `<source>` being the intake key's prefix.
pub const INTAKE_SUBJECTS: &str = "warden.intake.>";
/// The durable pull consumer every intake pump shares.
pub const INTAKE_CONSUMER: &str = "warden-intake";
/// Core NATS subject for wake-ups (not stored: a missed one costs at most a
/// worker's poll interval).
pub const WAKE_SUBJECT: &str = "warden.wake";
/// Header carrying the intake key next to `Nats-Msg-Id`.
const INTAKE_KEY_HEADER: &str = "Warden-Intake-Key";
/// Longest intake key accepted (it is a header and a dedup key).
const MAX_KEY_BYTES: usize = 512;

/// Settings for [`Bus::connect_with`]: connection, intake stream and consumer.
///
/// ```
/// use std::time::Duration;
/// let config = warden_cluster::BusConfig::default()
///     .with_ack_wait(Duration::from_secs(10))
///     .with_batch(32);
/// assert_eq!(config.ack_wait(), Duration::from_secs(10));
/// ```
#[derive(Debug, Clone)]
pub struct BusConfig {
    connect_timeout: Duration,
    duplicate_window: Duration,
    max_message_bytes: i32,
    max_stream_bytes: i64,
    ack_wait: Duration,
    max_deliver: i64,
    batch: usize,
    security: Security,
}

impl Default for BusConfig {
    fn default() -> Self {
        BusConfig {
            connect_timeout: Duration::from_secs(5),
            duplicate_window: Duration::from_secs(10 * 60),
            max_message_bytes: i32::try_from(MAX_TASK_BYTES).unwrap_or(i32::MAX),
            max_stream_bytes: 1 << 30,
            ack_wait: Duration::from_secs(30),
            max_deliver: 10,
            batch: 64,
            security: Security::default(),
        }
    }
}

impl BusConfig {
    /// How long [`Bus::connect`] waits for the server. Default 5 s.
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long JetStream remembers an intake key to drop a retried
    /// webhook. Default 10 minutes.
    pub fn with_duplicate_window(mut self, window: Duration) -> Self {
        self.duplicate_window = window;
        self
    }

    /// The most bytes the intake stream holds before it refuses new alerts
    /// (`discard: new`: a webhook is told to retry, nothing is dropped).
    /// Default 1 GiB.
    pub fn with_max_stream_bytes(mut self, bytes: i64) -> Self {
        self.max_stream_bytes = bytes;
        self
    }

    /// How long a fetched alert may stay unacked before JetStream hands it
    /// to another pump. Default 30 s.
    pub fn with_ack_wait(mut self, wait: Duration) -> Self {
        self.ack_wait = wait;
        self
    }

    /// How often an alert is delivered before JetStream gives up on it
    /// (a message that kills its pump every time). Default 10.
    pub fn with_max_deliver(mut self, times: i64) -> Self {
        self.max_deliver = times;
        self
    }

    /// How many alerts one fetch asks for. Default 64.
    pub fn with_batch(mut self, batch: usize) -> Self {
        self.batch = batch.max(1);
        self
    }

    /// TLS and credentials for the connection (default: plaintext, to
    /// loopback only).
    pub fn with_security(mut self, security: Security) -> Self {
        self.security = security;
        self
    }

    /// The ack wait in force.
    pub fn ack_wait(&self) -> Duration {
        self.ack_wait
    }
}

/// What JetStream did with a published message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Published {
    /// Stored at this stream sequence.
    Stored(u64),
    /// A message with the same id was stored within the duplicate window:
    /// this one was dropped.
    Duplicate,
}

/// What one [`Bus::run_intake`] did before it was stopped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IntakeStats {
    /// Alerts stored as new tasks.
    pub stored: u64,
    /// Alerts whose intake key the record held already (redeliveries,
    /// retries outside the duplicate window).
    pub duplicates: u64,
    /// Malformed alerts terminated (never delivered again).
    pub terminated: u64,
}

/// A connection to the cluster's NATS server.
///
/// ```no_run
/// # async fn demo() -> Result<(), warden_cluster::BusError> {
/// use warden_cluster::{Bus, Published};
/// let bus = Bus::connect("nats://127.0.0.1:4222").await?;
/// let task = warden::Task::goal("t-1", "check the web tier").in_env("staging");
/// assert!(matches!(bus.publish_alert("gen:t-1", &task).await?, Published::Stored(_)));
/// assert_eq!(bus.publish_alert("gen:t-1", &task).await?, Published::Duplicate);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Bus {
    client: async_nats::Client,
    js: jetstream::Context,
    url: String,
    config: BusConfig,
}

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bus")
            .field("url", &self.url)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Connect to `url` within `timeout`, naming the URL when that fails.
pub(crate) async fn connect_client(
    url: &str,
    timeout: Duration,
    name: &str,
    security: &Security,
) -> Result<async_nats::Client, BusError> {
    let fail = |why: String| BusError::Connect {
        url: url.to_string(),
        why,
    };
    let opts = security.nats_options(url, name, timeout).map_err(fail)?;
    match tokio::time::timeout(timeout, opts.connect(url)).await {
        Ok(Ok(client)) => Ok(client),
        Ok(Err(e)) => Err(fail(e.to_string())),
        Err(_) => Err(fail(format!("no answer within {timeout:?}"))),
    }
}

impl Bus {
    /// Connect to the NATS server at `url` (`nats://host:port`) with the
    /// default [`BusConfig`] and make sure the intake stream and consumer
    /// exist.
    pub async fn connect(url: &str) -> Result<Bus, BusError> {
        Bus::connect_with(url, BusConfig::default()).await
    }

    /// Connect with `config`. Setting up the stream and consumer is
    /// idempotent: every worker does it at start, and a changed setting
    /// updates them.
    pub async fn connect_with(url: &str, config: BusConfig) -> Result<Bus, BusError> {
        let client =
            connect_client(url, config.connect_timeout, "warden-bus", &config.security).await?;
        let js = jetstream::new(client.clone());
        let bus = Bus {
            client,
            js,
            url: url.to_string(),
            config,
        };
        bus.ensure_intake().await?;
        Ok(bus)
    }

    /// The URL this bus connected to.
    pub fn url(&self) -> &str {
        &self.url
    }

    async fn ensure_intake(&self) -> Result<consumer::PullConsumer, BusError> {
        let c = &self.config;
        let stream_config = stream::Config {
            name: INTAKE_STREAM.into(),
            description: Some("alerts waiting to be stored in warden's record".into()),
            subjects: vec![INTAKE_SUBJECTS.into()],
            retention: stream::RetentionPolicy::WorkQueue,
            storage: stream::StorageType::File,
            discard: stream::DiscardPolicy::New,
            duplicate_window: c.duplicate_window,
            max_message_size: c.max_message_bytes,
            max_bytes: c.max_stream_bytes,
            ..Default::default()
        };
        self.js
            .create_or_update_stream(stream_config)
            .await
            .map_err(|e| BusError::setup("the intake stream", INTAKE_STREAM, e))?;
        let consumer_config = consumer::pull::Config {
            durable_name: Some(INTAKE_CONSUMER.into()),
            description: Some("moves alerts into warden's record".into()),
            ack_policy: consumer::AckPolicy::Explicit,
            ack_wait: c.ack_wait,
            max_deliver: c.max_deliver,
            ..Default::default()
        };
        let stream = self
            .js
            .get_stream(INTAKE_STREAM)
            .await
            .map_err(|e| BusError::setup("the intake stream", INTAKE_STREAM, e))?;
        // Create, or update when a setting changed (create refuses a
        // different config for an existing durable).
        match stream
            .create_consumer(consumer_config.clone())
            .await
            .map_err(boxed)
        {
            Ok(c) => Ok(c),
            Err(_) => {
                self.js
                    .update_consumer_on_stream(consumer_config, INTAKE_STREAM)
                    .await
                    .map_err(|e| BusError::setup("the intake consumer", INTAKE_CONSUMER, e))?;
                stream
                    .get_consumer(INTAKE_CONSUMER)
                    .await
                    .map_err(|e| BusError::setup("the intake consumer", INTAKE_CONSUMER, e))
            }
        }
    }

    /// Publish an alert for the record under `intake_key` (`am:<fingerprint>`,
    /// `az:<id>`, `gen:<key>`). The key is the message's `Nats-Msg-Id`, so
    /// a retried webhook within the duplicate window is stored once; after
    /// the window, [`Record::enqueue`] still stores it once.
    ///
    /// Returns once JetStream has the message on disk.
    pub async fn publish_alert(
        &self,
        intake_key: &str,
        task: &Task,
    ) -> Result<Published, BusError> {
        check_key(intake_key)?;
        let body = serde_json::to_vec(task).map_err(|e| BusError::Malformed {
            what: format!("task `{}`", task.id),
            why: e.to_string(),
        })?;
        if body.len() > MAX_TASK_BYTES {
            return Err(BusError::TooBig {
                id: task.id.clone(),
                bytes: body.len(),
                max: MAX_TASK_BYTES,
            });
        }
        let subject = format!("warden.intake.{}", key_source(intake_key));
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", intake_key);
        headers.insert(INTAKE_KEY_HEADER, intake_key);
        publish_acked(&self.js, subject, headers, body).await
    }

    /// Wake every idle worker on every node (after an enqueue). A core NATS
    /// message, not stored: a worker that misses it finds the task on its
    /// next poll.
    pub async fn wake_all(&self) -> Result<(), BusError> {
        let fail = |e: async_nats::Error| BusError::Publish {
            subject: WAKE_SUBJECT.into(),
            source: e,
        };
        self.client
            .publish(WAKE_SUBJECT, Vec::new().into())
            .await
            .map_err(|e| fail(Box::new(e)))?;
        self.client.flush().await.map_err(|e| fail(Box::new(e)))
    }

    /// Subscribe to wake-ups and notify `wake` for each: every waiter is
    /// woken, and a permit is stored for a worker that is between its poll
    /// and its wait. Returns once the server has the subscription (a round
    /// trip, so a wake-up published after this returns is not missed); the
    /// subscription ends when the returned guard is dropped.
    ///
    /// ```no_run
    /// # async fn demo(bus: warden_cluster::Bus) -> Result<(), warden_cluster::BusError> {
    /// let wake = std::sync::Arc::new(tokio::sync::Notify::new());
    /// let _guard = bus.wake_into(wake.clone()).await?;
    /// wake.notified().await; // after some node's `wake_all`
    /// # Ok(()) }
    /// ```
    pub async fn wake_into(&self, wake: Arc<Notify>) -> Result<WakeGuard, BusError> {
        let fail = |e: async_nats::Error| BusError::Subscribe {
            subject: WAKE_SUBJECT.into(),
            source: e,
        };
        let mut sub = self
            .client
            .subscribe(WAKE_SUBJECT)
            .await
            .map_err(|e| fail(Box::new(e)))?;
        round_trip(&self.client).await.map_err(fail)?;
        let task = tokio::spawn(async move {
            while sub.next().await.is_some() {
                nudge(&wake);
            }
        });
        Ok(WakeGuard { task })
    }

    /// Move alerts from the intake stream into `record` until `stop` is
    /// cancelled: fetch a batch, [`Record::enqueue`] each alert, ack it
    /// after the commit, then notify `wake` and [`Bus::wake_all`] if any
    /// task was new.
    ///
    /// A malformed alert (no intake key, not a task, too big) is terminated
    /// with a logged reason and never delivered again. While PostgreSQL
    /// refuses, the alert is retried in place (its ack deadline extended);
    /// if the record's connection is closed for good, this returns
    /// [`BusError::Record`] and the alert goes to another pump after the
    /// ack wait. Alerts fetched but not acked when `stop` fires are
    /// redelivered after the ack wait.
    pub async fn run_intake(
        &self,
        record: Arc<Record>,
        wake: Arc<Notify>,
        stop: CancellationToken,
    ) -> Result<IntakeStats, BusError> {
        let consumer = self.ensure_intake().await?;
        let mut stats = IntakeStats::default();
        let mut backoff = Backoff::new();
        while !stop.is_cancelled() {
            let fetch = consumer
                .batch()
                .max_messages(self.config.batch)
                .expires(Duration::from_secs(1))
                .messages();
            let batch = tokio::select! {
                () = stop.cancelled() => break,
                b = fetch => b,
            };
            let mut batch = match batch {
                Ok(b) => {
                    backoff.reset();
                    b
                }
                Err(e) => {
                    tracing::warn!(error = %e, url = %self.url, "intake fetch failed; retrying");
                    if !backoff.sleep(&stop).await {
                        break;
                    }
                    continue;
                }
            };
            let mut new = 0u64;
            loop {
                let next = tokio::select! {
                    () = stop.cancelled() => None,
                    m = batch.next() => m,
                };
                let Some(msg) = next else { break };
                let msg = match msg {
                    Ok(m) => m,
                    Err(e) => {
                        tracing::debug!(error = %e, "intake batch ended");
                        break;
                    }
                };
                match take(&record, &msg, &stop).await? {
                    Taken::New => {
                        stats.stored += 1;
                        new += 1;
                    }
                    Taken::Duplicate => stats.duplicates += 1,
                    Taken::Terminated => stats.terminated += 1,
                    Taken::Stopped => break,
                }
            }
            if new > 0 {
                nudge(&wake);
                if let Err(e) = self.wake_all().await {
                    tracing::warn!(error = %e, "could not wake the other workers");
                }
            }
        }
        Ok(stats)
    }

    /// Alerts in the intake stream not yet acked by a pump (waiting or in
    /// flight): for tests, health checks and the benchmark.
    pub async fn intake_backlog(&self) -> Result<u64, BusError> {
        let mut stream = self
            .js
            .get_stream(INTAKE_STREAM)
            .await
            .map_err(|e| BusError::setup("the intake stream", INTAKE_STREAM, e))?;
        let info = stream
            .info()
            .await
            .map_err(|e| BusError::setup("the intake stream", INTAKE_STREAM, e))?;
        Ok(info.state.messages)
    }
}

/// Ends a [`Bus::wake_into`] subscription when dropped.
#[derive(Debug)]
#[must_use = "the subscription ends when the guard is dropped"]
pub struct WakeGuard {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for WakeGuard {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Wait until the server has processed everything this client sent before:
/// `flush` only empties the client's buffer, so a publish from another
/// connection could still overtake a fresh subscription. An echo on a
/// private inbox comes back only after the server handled what preceded it.
async fn round_trip(client: &async_nats::Client) -> Result<(), async_nats::Error> {
    let inbox = client.new_inbox();
    let mut probe = client.subscribe(inbox.clone()).await?;
    client.publish(inbox, Vec::new().into()).await?;
    client.flush().await?;
    match tokio::time::timeout(Duration::from_secs(10), probe.next()).await {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err("the connection closed during a round trip".into()),
        Err(_) => Err("no round trip to the server within 10 s".into()),
    }
}

/// Wake every waiter, and leave a permit for one that is about to wait.
fn nudge(wake: &Notify) {
    wake.notify_waiters();
    wake.notify_one();
}

enum Taken {
    New,
    Duplicate,
    Terminated,
    Stopped,
}

/// Store one alert, then ack it; terminate it when it is malformed.
async fn take(
    record: &Record,
    msg: &jetstream::Message,
    stop: &CancellationToken,
) -> Result<Taken, BusError> {
    let parsed = parse_alert(msg);
    let (key, task) = match parsed {
        Ok(p) => p,
        Err(why) => return terminate(msg, &why).await,
    };
    let mut backoff = Backoff::new();
    loop {
        match record.enqueue(&key, &task).await {
            Ok(done) => {
                // The commit happened; a lost ack means a redelivery,
                // which `enqueue` stores once.
                if let Err(e) = msg.ack().await {
                    tracing::warn!(error = %e, key, "ack failed; the alert will be redelivered");
                }
                return Ok(match done {
                    Enqueued::New(_) => Taken::New,
                    Enqueued::Duplicate(_) => Taken::Duplicate,
                });
            }
            Err(ClusterError::Task { why, .. }) => return terminate(msg, &why).await,
            Err(ClusterError::Postgres { source, what }) if source.is_closed() => {
                return Err(BusError::Record(ClusterError::Postgres { what, source }));
            }
            Err(e) => {
                tracing::warn!(error = %e, key, "the record refused an alert; retrying");
                let _ = msg.ack_with(AckKind::Progress).await;
                if !backoff.sleep(stop).await {
                    return Ok(Taken::Stopped);
                }
            }
        }
    }
}

async fn terminate(msg: &jetstream::Message, why: &str) -> Result<Taken, BusError> {
    tracing::warn!(
        subject = %msg.subject,
        reason = why,
        "malformed alert terminated; it will not be delivered again"
    );
    if let Err(e) = msg.ack_with(AckKind::Term).await {
        tracing::warn!(error = %e, "terminating a malformed alert failed");
    }
    Ok(Taken::Terminated)
}

fn parse_alert(msg: &jetstream::Message) -> Result<(String, Task), String> {
    let key = msg
        .headers
        .as_ref()
        .and_then(|h| h.get(INTAKE_KEY_HEADER).or_else(|| h.get("Nats-Msg-Id")))
        .map(|v| v.as_str().to_string())
        .ok_or_else(|| format!("no {INTAKE_KEY_HEADER} or Nats-Msg-Id header"))?;
    check_key(&key).map_err(|e| e.to_string())?;
    let task: Task = serde_json::from_slice(&msg.payload)
        .map_err(|e| format!("the payload is not a task: {e}"))?;
    Ok((key, task))
}

fn check_key(key: &str) -> Result<(), BusError> {
    let why = if key.trim().is_empty() {
        Some("it is empty".to_string())
    } else if key.len() > MAX_KEY_BYTES {
        Some(format!("{} bytes; at most {MAX_KEY_BYTES}", key.len()))
    } else if key.chars().any(char::is_control) {
        Some("it holds a control character".to_string())
    } else {
        None
    };
    match why {
        Some(why) => Err(BusError::IntakeKey {
            key: key.chars().take(64).collect(),
            why,
        }),
        None => Ok(()),
    }
}

/// The subject token for an intake key: its prefix before `:` when that is
/// a plain word, else `other`.
fn key_source(key: &str) -> &str {
    match key.split_once(':') {
        Some((p, _))
            if !p.is_empty()
                && p.len() <= 32
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
        {
            p
        }
        _ => "other",
    }
}

/// Publish with headers and wait for JetStream's ack.
pub(crate) async fn publish_acked(
    js: &jetstream::Context,
    subject: String,
    headers: HeaderMap,
    body: Vec<u8>,
) -> Result<Published, BusError> {
    let fail = |subject: &str, e: async_nats::Error| BusError::Publish {
        subject: subject.to_string(),
        source: e,
    };
    let ack = js
        .publish_with_headers(subject.clone(), headers, body.into())
        .await
        .map_err(|e| fail(&subject, Box::new(e)))?
        .await
        .map_err(|e| fail(&subject, Box::new(e)))?;
    Ok(if ack.duplicate {
        Published::Duplicate
    } else {
        Published::Stored(ack.sequence)
    })
}

/// 100 ms doubling to 2 s, cancellable.
struct Backoff(Duration);

impl Backoff {
    fn new() -> Self {
        Backoff(Duration::from_millis(100))
    }

    fn reset(&mut self) {
        self.0 = Duration::from_millis(100);
    }

    /// Sleep; false when `stop` fired first.
    async fn sleep(&mut self, stop: &CancellationToken) -> bool {
        let d = self.0;
        self.0 = (self.0 * 2).min(Duration::from_secs(2));
        tokio::select! {
            () = stop.cancelled() => false,
            () = tokio::time::sleep(d) => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_intake_key_prefix_becomes_the_subject_token_only_when_it_is_a_plain_word() {
        assert_eq!(key_source("am:abc"), "am");
        assert_eq!(key_source("gen:x:y"), "gen");
        assert_eq!(key_source("a.b:c"), "other");
        assert_eq!(key_source("nokey"), "other");
        assert_eq!(key_source(":x"), "other");
    }

    #[test]
    fn an_empty_or_multiline_intake_key_is_refused() {
        assert!(check_key("").is_err());
        assert!(check_key("am:a\r\nX: y").is_err());
        assert!(check_key(&"k".repeat(600)).is_err());
        assert!(check_key("am:0123").is_ok());
    }
}
