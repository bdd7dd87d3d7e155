//! A task's timeline, live: one tailer per service reads the journal's new
//! bytes a few times a second (only while someone watches) and broadcasts
//! the new records; each server-sent event stream picks its task's records.
//! Streams are bounded in number and in lifetime (the browser's
//! `EventSource` reconnects with `Last-Event-ID`, and the stream resumes
//! after that record), and end when the service drains.

use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use serde_json::json;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, broadcast};
use tokio_util::sync::CancellationToken;
use warden::journal::{JournalEvent, JournalRecord, JournalTail, read_journal, render_record};

use crate::server::State;

/// How often the tailer looks at the journal's length.
const POLL: Duration = Duration::from_millis(250);
/// A stream ends after this; the browser reconnects where it left off.
const STREAM_LIFETIME: Duration = Duration::from_secs(600);
/// A comment line this often keeps proxies from closing an idle stream.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// Batches of new records a slow stream may fall behind before it is
/// ended (and reconnects from its last record).
const BACKLOG: usize = 64;
/// The most text one record's event carries.
const MAX_TEXT: usize = 8 * 1024;

/// New records, a batch per look at the journal.
type Batch = Arc<Vec<JournalRecord>>;

/// The tailer's channel and the stream limit.
#[derive(Debug)]
pub(crate) struct Live {
    tx: broadcast::Sender<Batch>,
    streams: Arc<Semaphore>,
    closing: CancellationToken,
}

impl Live {
    /// Start the tailer for `state`'s journal; it stops when the service
    /// drains (and every stream with it) or goes away.
    pub(crate) fn start(state: &Arc<State>, max_streams: usize) -> Live {
        let (tx, _) = broadcast::channel(BACKLOG);
        let closing = CancellationToken::new();
        tokio::spawn(tail(Arc::downgrade(state), tx.clone(), closing.clone()));
        Live {
            tx,
            streams: Arc::new(Semaphore::new(max_streams)),
            closing,
        }
    }

    /// A slot for one more stream, unless all are taken.
    pub(crate) fn slot(&self) -> Option<OwnedSemaphorePermit> {
        self.streams.clone().try_acquire_owned().ok()
    }

    /// The records of `task` after `after` (from the journal), then each
    /// new one as it is appended.
    pub(crate) fn stream(
        &self,
        state: &Arc<State>,
        task: String,
        after: Option<u64>,
        slot: OwnedSemaphorePermit,
    ) -> Sse<impl Stream<Item = Result<Event, Infallible>> + use<>> {
        // Subscribe before reading the backlog, so nothing appended in
        // between is missed; duplicates are dropped by sequence number.
        let rx = self.tx.subscribe();
        let agent = state.agent();
        let path = agent.journal().path().to_path_buf();
        let key = agent.journal().key().clone();
        let closing = self.closing.clone();
        let deadline = tokio::time::Instant::now() + STREAM_LIFETIME;
        let start = Cursor {
            rx,
            task,
            last: after,
            queue: std::collections::VecDeque::new(),
            backlog: Some((path, key)),
            closing,
            deadline,
            _slot: slot,
        };
        let events = futures::stream::unfold(start, |mut c| async move {
            let event = c.next().await?;
            Some((Ok(event), c))
        });
        Sse::new(events).keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
    }
}

/// One stream's place.
struct Cursor {
    rx: broadcast::Receiver<Batch>,
    task: String,
    last: Option<u64>,
    queue: std::collections::VecDeque<JournalRecord>,
    backlog: Option<(std::path::PathBuf, warden::journal::HostKey)>,
    closing: CancellationToken,
    deadline: tokio::time::Instant,
    _slot: OwnedSemaphorePermit,
}

impl Cursor {
    /// The next event, or `None` to end the stream.
    async fn next(&mut self) -> Option<Event> {
        if let Some((path, key)) = self.backlog.take() {
            let read = tokio::task::spawn_blocking(move || read_journal(path, &key)).await;
            match read {
                Ok(Ok(records)) => self.take(records.iter()),
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "the live timeline could not read the journal")
                }
                Err(e) => tracing::warn!(error = %e, "the journal read failed"),
            }
        }
        loop {
            if let Some(record) = self.queue.pop_front() {
                return Some(event(&record));
            }
            tokio::select! {
                () = self.closing.cancelled() => return None,
                () = tokio::time::sleep_until(self.deadline) => return None,
                batch = self.rx.recv() => match batch {
                    Ok(batch) => self.take(batch.iter()),
                    // Fell behind, or the tailer stopped: end; the browser
                    // reconnects from its last record.
                    Err(_) => return None,
                },
            }
        }
    }

    /// Queue this task's records newer than the last one sent.
    fn take<'a>(&mut self, records: impl Iterator<Item = &'a JournalRecord>) {
        for r in records {
            if r.task_id == self.task && self.last.is_none_or(|l| r.seq > l) {
                self.last = Some(r.seq);
                self.queue.push_back(r.clone());
            }
        }
    }
}

/// One record as an SSE event: `id` is its sequence number, the data a
/// small JSON object the page's script shows as text.
fn event(r: &JournalRecord) -> Event {
    let (status, step) = match &r.event {
        JournalEvent::Outcome(o) => (Some(o.status.as_str()), None),
        JournalEvent::Approval(a) => (None, Some(clip(&a.step_id, 256))),
        _ => (None, None),
    };
    let data = json!({
        "seq": r.seq,
        "time": time_of(&r.ts),
        "kind": r.event.kind(),
        "text": clip(&render_record(r), MAX_TEXT),
        "status": status,
        "step": step,
    });
    Event::default()
        .event("record")
        .id(r.seq.to_string())
        .data(data.to_string())
}

/// `hh:mm:ss` of an RFC 3339 time.
pub(crate) fn time_of(ts: &str) -> &str {
    ts.get(11..19).unwrap_or(ts)
}

/// At most `n` characters of `s`.
pub(crate) fn clip(s: &str, n: usize) -> String {
    match s.char_indices().nth(n) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// The tailer: looks at the journal only while a stream listens.
async fn tail(state: Weak<State>, tx: broadcast::Sender<Batch>, closing: CancellationToken) {
    let mut tail: Option<JournalTail> = None;
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        // Hold the state only for this look: a stopped service must be
        // able to drop it (and its inbox lock).
        let (path, key) = {
            let Some(state) = state.upgrade() else { break };
            if !state.accepting.load(Ordering::SeqCst) {
                break;
            }
            if tx.receiver_count() == 0 {
                continue;
            }
            let agent = state.agent();
            let journal = agent.journal();
            (journal.path().to_path_buf(), journal.key().clone())
        };
        let mut t = tail.take().unwrap_or_else(|| JournalTail::new(&path));
        let read = tokio::task::spawn_blocking(move || {
            let records = t.read(&key);
            (t, records)
        })
        .await;
        match read {
            Ok((t, Ok(records))) => {
                tail = Some(t);
                if !records.is_empty() {
                    let _ = tx.send(Arc::new(records));
                }
            }
            Ok((t, Err(e))) => {
                tail = Some(t);
                tracing::debug!(error = %e, "the live timeline could not read the journal");
            }
            Err(e) => tracing::warn!(error = %e, "the journal tailer failed"),
        }
    }
    closing.cancel();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_keeps_short_text_and_cuts_long_text_on_a_character() {
        assert_eq!(clip("héllo", 10), "héllo");
        assert_eq!(clip("héllo", 2), "hé…");
    }
}
