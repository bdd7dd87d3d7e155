//! Delivering queued requests: each one decided again by the gate, with
//! fresh DNS and the same address checks as a live call.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http_body_util::BodyExt as _;
use warden_types::{CallContext, Capability, CapabilityGate, ToolManifest};
use wasmtime_wasi_http::Error as HttpError;

use super::{OutboxEntry, millis};
use crate::SandboxError;
use crate::sandbox::Sandbox;
use crate::secret::SECRET_SUFFIX;
use crate::state::{CallScope, KvMap};

/// What one delivery pass does.
///
/// ```
/// use std::time::Duration;
/// use warden_sandbox::DeliveryPass;
///
/// let pass = DeliveryPass::due().time_budget(Duration::from_secs(20));
/// assert!(format!("{pass:?}").contains("20s"));
/// ```
#[derive(Debug, Clone)]
pub struct DeliveryPass {
    now: Option<SystemTime>,
    all: bool,
    max_entries: usize,
    time_budget: Option<Duration>,
}

impl DeliveryPass {
    /// The entries whose backoff has passed, at most 100, no time budget.
    pub fn due() -> Self {
        DeliveryPass {
            now: None,
            all: false,
            max_entries: 100,
            time_budget: None,
        }
    }

    /// Every entry, due or not (`warden outbox deliver --all`). Default: off.
    pub fn all(mut self) -> Self {
        self.all = true;
        self
    }

    /// Take `now` as the current time (backoff and expiry are measured
    /// from it). Default: the system clock.
    pub fn at(mut self, now: SystemTime) -> Self {
        self.now = Some(now);
        self
    }

    /// Attempt at most `n` entries. Default: 100.
    pub fn max_entries(mut self, n: usize) -> Self {
        self.max_entries = n;
        self
    }

    /// Start no attempt after `budget` has passed (an attempt in flight
    /// finishes, within the sandbox's call timeout). Default: none.
    pub fn time_budget(mut self, budget: Duration) -> Self {
        self.time_budget = Some(budget);
        self
    }
}

/// How one entry's attempt ended.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum DeliveryOutcome {
    /// The receiver answered 2xx; the entry is gone.
    Delivered {
        /// The status it answered.
        status: u16,
    },
    /// It failed in a way worth retrying (unreachable, 408, 429, 5xx); the
    /// entry stays, due again at `next_at_ms`.
    Retry {
        /// What went wrong.
        reason: String,
        /// When it is due again, milliseconds since the Unix epoch.
        next_at_ms: u64,
    },
    /// It will never succeed (a 4xx other than 408/429, a denial, too old);
    /// the entry is gone.
    Dropped {
        /// Why.
        reason: String,
    },
    /// Not attempted: this host does not hold the secret (a shell without
    /// the `WARDEN_SECRET_*` variables); the entry is left as it was.
    Skipped {
        /// Why.
        reason: String,
    },
}

/// One entry's attempt in a pass.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Delivery {
    /// The entry as it is now (attempts counted; body omitted from JSON).
    #[serde(serialize_with = "entry_summary")]
    pub entry: OutboxEntry,
    /// How the attempt ended.
    #[serde(flatten)]
    pub outcome: DeliveryOutcome,
}

fn entry_summary<S: serde::Serializer>(e: &OutboxEntry, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeStruct as _;
    let mut st = s.serialize_struct("OutboxEntry", 7)?;
    st.serialize_field("id", &e.id)?;
    st.serialize_field("secret", &e.secret)?;
    st.serialize_field("plugin", &e.plugin)?;
    st.serialize_field("task_id", &e.task_id)?;
    st.serialize_field("step_id", &e.step_id)?;
    st.serialize_field("attempts", &e.attempts)?;
    st.serialize_field("bytes", &e.body.len())?;
    st.end()
}

/// Hands the gate that decides one entry's delivery (the agent's gate
/// journals under the entry's task and step).
pub type GateFor<'a> = &'a (dyn Fn(&OutboxEntry) -> Arc<dyn CapabilityGate> + Send + Sync);

impl Sandbox {
    /// Send the outbox's due entries (see [`SandboxConfig::outbox`](crate::SandboxConfig::outbox)).
    ///
    /// Each entry goes to its secret's current URL with the header
    /// `Idempotency-Key: <id>`, decided again by the gate `gate_for`
    /// returns for it, as a live call is: a fresh DNS lookup, the resolved
    /// addresses in the [`CapabilityUse::Http`](warden_types::CapabilityUse::Http)
    /// the gate sees, the connection pinned to them. Before sending, the
    /// entry's attempt count and next due time are written, so a crash
    /// mid-send backs off too. An entry is removed after a 2xx
    /// (delivered), a 4xx other than 408 and 429, a denial, or once it is
    /// older than the [maximum age](crate::SandboxConfig::outbox_max_age)
    /// (dropped); otherwise it is retried later with exponential backoff
    /// and jitter. A crash between the receiver's 2xx and the removal sends
    /// it again with the same key: receivers should ignore a key they have
    /// seen.
    ///
    /// Returns every attempt of the pass; nothing when no outbox is
    /// configured or another pass holds it.
    pub async fn deliver_outbox(
        &self,
        gate_for: GateFor<'_>,
        pass: DeliveryPass,
    ) -> Result<Vec<Delivery>, SandboxError> {
        let inner = &self.inner;
        let Some(outbox) = &inner.outbox else {
            return Ok(Vec::new());
        };
        let Some(_lock) = outbox.try_lock()? else {
            tracing::debug!(outbox = %outbox.dir().display(), "another delivery pass holds the outbox");
            return Ok(Vec::new());
        };
        let started = Instant::now();
        let retry = inner.config.retry;
        let mut done = Vec::new();
        for mut entry in outbox.list()? {
            if done.len() >= pass.max_entries
                || pass.time_budget.is_some_and(|b| started.elapsed() >= b)
            {
                break;
            }
            let now = pass.now.unwrap_or_else(SystemTime::now);
            let now_ms = millis(now);
            if !pass.all && entry.next_at_ms > now_ms {
                continue;
            }
            let age = Duration::from_millis(now_ms.saturating_sub(entry.created_ms));
            if age > retry.max_age {
                outbox.remove(&entry.id)?;
                let reason = format!(
                    "not delivered within the outbox's maximum age of {}s ({} attempts; last: {})",
                    retry.max_age.as_secs(),
                    entry.attempts,
                    entry.last_error
                );
                done.push(Delivery {
                    entry,
                    outcome: DeliveryOutcome::Dropped { reason },
                });
                continue;
            }
            if inner.config.secrets.get(&entry.secret).is_none() {
                let reason = format!(
                    "this host does not hold the secret `{}`; left for a host that does",
                    entry.secret
                );
                done.push(Delivery {
                    entry,
                    outcome: DeliveryOutcome::Skipped { reason },
                });
                continue;
            }
            entry.attempts += 1;
            let next_at_ms = millis(now + retry.delay(entry.attempts));
            entry.next_at_ms = next_at_ms;
            outbox.put(&entry)?;
            let outcome = match self.attempt(&entry, gate_for(&entry)).await {
                Attempt::Answered(status, _) if (200..300).contains(&status) => {
                    outbox.remove(&entry.id)?;
                    DeliveryOutcome::Delivered { status }
                }
                Attempt::Answered(status, body)
                    if status == 408 || status == 429 || status >= 500 =>
                {
                    DeliveryOutcome::Retry {
                        reason: format!("the receiver answered {status}: {body}"),
                        next_at_ms,
                    }
                }
                Attempt::Answered(status, body) => {
                    outbox.remove(&entry.id)?;
                    DeliveryOutcome::Dropped {
                        reason: format!(
                            "the receiver answered {status}, which a retry will not change: {body}"
                        ),
                    }
                }
                Attempt::Denied(reason) => {
                    outbox.remove(&entry.id)?;
                    DeliveryOutcome::Dropped {
                        reason: format!("denied at delivery: {reason}"),
                    }
                }
                Attempt::Failed(reason) => DeliveryOutcome::Retry { reason, next_at_ms },
            };
            if let DeliveryOutcome::Retry { reason, .. } = &outcome {
                entry.last_error = reason.clone();
                outbox.put(&entry)?;
            }
            tracing::info!(
                outbox_id = %entry.id,
                secret = %entry.secret,
                plugin = %entry.plugin,
                attempts = entry.attempts,
                outcome = ?outcome,
                "outbox delivery attempt"
            );
            done.push(Delivery { entry, outcome });
        }
        Ok(done)
    }

    async fn attempt(&self, entry: &OutboxEntry, gate: Arc<dyn CapabilityGate>) -> Attempt {
        let inner = &self.inner;
        let host = format!("{}{SECRET_SUFFIX}", entry.secret);
        let manifest = Arc::new(ToolManifest {
            name: entry.plugin.clone(),
            version: entry.plugin_version.clone(),
            description: String::new(),
            input_schema: serde_json::Value::Null,
            output_schema: serde_json::Value::Null,
            effect: entry.effect,
            supports_dry_run: false,
            capabilities: vec![Capability::Http {
                hosts: vec![host.clone()],
            }],
        });
        let scope = CallScope {
            manifest,
            gate,
            ctx: CallContext {
                task_id: entry.task_id.clone(),
                step_id: entry.step_id.clone(),
                dry_run: false,
                idempotency_key: None,
            },
            denials: Mutex::new(Vec::new()),
            kv: KvMap::default(),
            kv_max_keys: 0,
            kv_max_value: 0,
            timeout: inner.config.timeout,
            secrets: inner.config.secrets.clone(),
            arm: None,
            tls: inner.tls.clone(),
            scrub: inner.scrub.clone(),
            started: Instant::now(),
            // A delivery that fails is retried here, never queued again.
            outbox: None,
            retry: inner.config.retry,
            outbox_body_limit: 0,
        };
        let request = match build_request(entry, &host) {
            Ok(r) => r,
            Err(reason) => return Attempt::Denied(reason),
        };
        match scope.send(request, None).await {
            Ok((response, io)) => {
                let status = response.status().as_u16();
                let body = match response.into_body().collect().await {
                    Ok(b) => excerpt(&b.to_bytes()),
                    Err(_) => String::new(),
                };
                drop(io);
                Attempt::Answered(status, body)
            }
            Err(HttpError::HttpRequestDenied) => {
                let reason = scope
                    .denials
                    .lock()
                    .ok()
                    .and_then(|d| d.last().map(|d| d.reason.clone()))
                    .unwrap_or_else(|| "the request was refused".into());
                Attempt::Denied(reason)
            }
            Err(e) => Attempt::Failed(e.to_string()),
        }
    }
}

enum Attempt {
    Answered(u16, String),
    Denied(String),
    Failed(String),
}

fn build_request(
    entry: &OutboxEntry,
    host: &str,
) -> Result<http::Request<wasmtime_wasi_http::WasiBody>, String> {
    let body = http_body_util::Full::new(Bytes::from(entry.body.clone()))
        .map_err(|never| match never {})
        .boxed_unsync();
    let mut builder = http::Request::builder()
        .method(entry.method.as_str())
        .uri(format!("https://{host}/"))
        .header("idempotency-key", &entry.id)
        .header(http::header::CONTENT_LENGTH, entry.body.len());
    for (name, value) in &entry.headers {
        builder = builder.header(name, value);
    }
    builder
        .body(body)
        .map_err(|e| format!("outbox entry {} is not a valid request: {e}", entry.id))
}

/// The first 200 characters of an answer, on one line (scrubbed already).
fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.is_empty() {
        return "(empty body)".into();
    }
    let mut cut: String = text.chars().take(200).collect();
    if cut.len() < text.len() {
        cut.push('…');
    }
    cut
}
