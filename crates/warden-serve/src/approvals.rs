//! Approvals waiting for a human: the agent's [`ChannelApprover`] hands each
//! request here; the API (and chat) answers it with the caller's
//! authenticated identity; nobody answering within the timeout is a no.
//!
//! With `--cluster` ([`Approvals::share`]) every request is also stored in
//! the record, so any worker lists and answers it: an answer is taken there
//! first (the first answer wins across workers, an expired one is refused),
//! and the worker that waits learns it from the record's change feed.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use warden::{Approval, ApprovalRequest, ApprovalRequests};
use warden_cluster::{APPROVALS_CHANNEL, AskedApproval, FeedEvent, Record};

use crate::auth::Identity;

/// One request as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pending {
    /// Approval id (random; what `POST /v1/approvals/{id}` takes).
    pub id: String,
    /// When it was asked (RFC 3339).
    pub asked_at: String,
    /// When it expires unanswered (RFC 3339).
    pub expires_at: String,
    /// What is asked.
    #[serde(flatten)]
    pub request: ApprovalRequest,
}

struct Waiting {
    pending: Pending,
    reply: Reply,
}

/// Where an answer goes.
enum Reply {
    /// To the agent's call, which waits for it.
    Agent(oneshot::Sender<Approval>),
    /// Kept for an MCP client that comes back with the approval id.
    Ticket,
}

/// A ticket's answer, kept until the client redeems it or it expires.
struct Answered {
    pending: Pending,
    answer: Approval,
}

/// Most tickets waiting or answered at once.
const MAX_TICKETS: usize = 1024;

/// What became of an approval, for whoever shows approvals elsewhere
/// (chat): asked, then closed exactly once.
#[derive(Debug, Clone)]
pub(crate) enum ApprovalEvent {
    /// A request is waiting.
    Asked(Pending),
    /// It is no longer waiting: `answer` is what the agent was told (the
    /// approval policy still has the last word on a yes).
    Closed {
        /// The request.
        pending: Pending,
        /// The answer handed to the agent.
        answer: Approval,
        /// How it closed.
        how: Closing,
    },
}

/// How an approval stopped waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Closing {
    /// Someone answered, through `via` (`the API`, `Slack`, `Teams`).
    Answered {
        /// Where the answer came from.
        via: &'static str,
    },
    /// Nobody answered in time.
    Expired,
    /// The service stopped.
    Shutdown,
}

type Observer = Arc<dyn Fn(&ApprovalEvent) + Send + Sync>;

/// Told how many approvals wait, after each change (the gauge).
type Gauge = Arc<dyn Fn(usize) + Send + Sync>;

/// The approvals waiting for an answer.
#[derive(Clone, Default)]
pub(crate) struct Approvals {
    waiting: Arc<Mutex<BTreeMap<String, Waiting>>>,
    /// Answered tickets not yet redeemed.
    answered: Arc<Mutex<BTreeMap<String, Answered>>>,
    observers: Arc<Mutex<Vec<Observer>>>,
    /// Told the number waiting after each change (the gauge).
    on_change: Arc<Mutex<Option<Gauge>>>,
    /// With `--cluster`: the record every worker's approvals are in.
    shared: Arc<OnceLock<Arc<Shared>>>,
}

/// The record's side of the approvals, with `--cluster`.
struct Shared {
    record: Arc<Record>,
    worker: String,
    /// Requests other workers wait for, as the record's feed last showed them.
    elsewhere: Mutex<BTreeMap<String, Pending>>,
}

impl Shared {
    fn elsewhere(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Pending>> {
        self.elsewhere.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// How often the record is read again even without a notification (one
/// lost while the feed reconnected, say).
const RESYNC: Duration = Duration::from_secs(5);

/// Where the answer came from, for an answer given on another worker.
const ELSEWHERE: &str = "another worker";

/// Why an answer was not taken.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum AnswerError {
    /// No such approval (never was, answered, or expired).
    Unknown,
}

impl Approvals {
    /// Call `f` on every event from now on. It runs on the path that asks
    /// or answers, so it must not block (hand the event to a task).
    pub(crate) fn observe(&self, f: impl Fn(&ApprovalEvent) + Send + Sync + 'static) {
        self.observers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Arc::new(f));
    }

    fn notify(&self, event: &ApprovalEvent) {
        let observers = self
            .observers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        for o in observers {
            o(event);
        }
    }

    /// Take requests from the agent until its approver is dropped.
    pub(crate) fn serve(
        &self,
        mut requests: ApprovalRequests,
        timeout: Duration,
        on_change: impl Fn(usize) + Send + Sync + 'static,
    ) {
        *self.on_change.lock().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(on_change));
        let this = self.clone();
        tokio::spawn(async move {
            while let Some((request, reply)) = requests.recv().await {
                this.ask(request, Reply::Agent(reply), timeout);
            }
        });
    }

    fn changed(&self) {
        let f = self
            .on_change
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(f) = f {
            f(self.len());
        }
    }

    /// Put `request` up for an answer until `timeout`.
    fn ask(&self, request: ApprovalRequest, reply: Reply, timeout: Duration) -> Pending {
        let id = new_id();
        let now = jiff::Timestamp::now();
        let expires = now
            .checked_add(jiff::SignedDuration::try_from(timeout).unwrap_or_default())
            .unwrap_or(now);
        let pending = Pending {
            id: id.clone(),
            asked_at: now.to_string(),
            expires_at: expires.to_string(),
            request,
        };
        self.insert(Waiting {
            pending: pending.clone(),
            reply,
        });
        self.changed();
        if let Some(shared) = self.shared() {
            tokio::spawn(store(shared, pending.clone(), timeout));
        }
        let expiry = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(timeout).await;
            let no = Approval::no(
                "timeout",
                format!(
                    "nobody answered within {}",
                    humantime::format_duration(timeout)
                ),
            );
            // In a cluster, the record says whether someone answered first.
            let (answer, how) = match expiry.shared() {
                Some(shared) => match shared.record.expire_approval(&id, &no).await {
                    Ok(Some(standing)) if standing != no => {
                        (standing, Closing::Answered { via: ELSEWHERE })
                    }
                    Ok(_) => (no, Closing::Expired),
                    Err(e) => {
                        tracing::warn!(approval = %id, error = %e, "cannot close the approval in the record; it expires here (the record refuses later answers too)");
                        (no, Closing::Expired)
                    }
                },
                None => (no, Closing::Expired),
            };
            if expiry.answer_as(&id, answer, how).is_ok() {
                expiry.changed();
            }
            // An answered ticket is good until the question would have
            // expired: a yes does not wait forever to be used.
            expiry
                .answered
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&id);
        });
        pending
    }

    /// Open a ticket for an MCP call whose client cannot ask its user: it
    /// waits like any approval (API, page, chat), and its answer is kept
    /// for [`Approvals::redeem`].
    pub(crate) fn open_ticket(
        &self,
        request: &ApprovalRequest,
        timeout: Duration,
    ) -> Result<Pending, String> {
        let tickets = {
            let waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
            let answered = self.answered.lock().unwrap_or_else(|p| p.into_inner());
            waiting
                .values()
                .filter(|w| matches!(w.reply, Reply::Ticket))
                .count()
                + answered.len()
        };
        if tickets >= MAX_TICKETS {
            return Err(format!(
                "{MAX_TICKETS} approvals are already open; answer or let some expire first"
            ));
        }
        Ok(self.ask(request.clone(), Reply::Ticket, timeout))
    }

    /// What became of ticket `id`, for the call `request` (see
    /// [`warden_mcp::ApprovalDesk::redeem`]).
    pub(crate) fn redeem(&self, id: &str, request: &ApprovalRequest) -> warden_mcp::Redeemed {
        use warden_mcp::{Redeemed, same_call};
        {
            let waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(w) = waiting.get(id) {
                return match w.reply {
                    Reply::Ticket if same_call(&w.pending.request, request) => Redeemed::Waiting,
                    _ => Redeemed::OtherCall,
                };
            }
        }
        let mut answered = self.answered.lock().unwrap_or_else(|p| p.into_inner());
        match answered.get(id) {
            None => Redeemed::Unknown,
            Some(a) if !same_call(&a.pending.request, request) => Redeemed::OtherCall,
            Some(_) => match answered.remove(id) {
                Some(a) => Redeemed::Answered(a.answer),
                None => Redeemed::Unknown,
            },
        }
    }

    fn insert(&self, w: Waiting) -> usize {
        let mut map = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        // Told while the entry is locked in, so an answer (which must take
        // it out first) is always told after the question.
        self.notify(&ApprovalEvent::Asked(w.pending.clone()));
        map.insert(w.pending.id.clone(), w);
        map.len()
    }

    /// How many wait (in a cluster: on every worker).
    pub(crate) fn len(&self) -> usize {
        self.list().len()
    }

    /// Every waiting request, oldest first (in a cluster: every worker's).
    pub(crate) fn list(&self) -> Vec<Pending> {
        let mut out: Vec<Pending> = {
            let map = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
            map.values().map(|w| w.pending.clone()).collect()
        };
        if let Some(shared) = self.shared() {
            let elsewhere = shared.elsewhere();
            out.extend(
                elsewhere
                    .values()
                    .filter(|p| !out.iter().any(|o| o.id == p.id))
                    .cloned()
                    .collect::<Vec<_>>(),
            );
        }
        out.sort_by(|a, b| a.asked_at.cmp(&b.asked_at));
        out
    }

    /// The waiting request `id` (in a cluster: on any worker).
    pub(crate) fn get(&self, id: &str) -> Option<Pending> {
        self.get_here(id).or_else(|| {
            self.shared()
                .and_then(|shared| shared.elsewhere().get(id).cloned())
        })
    }

    /// The request `id` waiting on this worker.
    fn get_here(&self, id: &str) -> Option<Pending> {
        let map = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        map.get(id).map(|w| w.pending.clone())
    }

    fn shared(&self) -> Option<Arc<Shared>> {
        self.shared.get().cloned()
    }

    /// Keep every request in the record too, so any worker of the cluster
    /// lists and answers it, and learn from the record's feed about the
    /// requests of the other workers and the answers they took. Once, at
    /// start; a second call is ignored.
    pub(crate) fn share(&self, record: Arc<Record>, worker: &str) {
        let shared = Arc::new(Shared {
            record,
            worker: worker.to_string(),
            elsewhere: Mutex::new(BTreeMap::new()),
        });
        if self.shared.set(shared.clone()).is_err() {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            let mut feed = shared.record.feed(APPROVALS_CHANNEL);
            loop {
                let event = tokio::select! {
                    e = feed.next() => e,
                    () = tokio::time::sleep(RESYNC) => Some(FeedEvent::Resync),
                };
                match event {
                    Some(FeedEvent::Notified(id)) => this.refresh(&shared, &id).await,
                    Some(FeedEvent::Resync) => this.resync(&shared).await,
                    None => return,
                }
            }
        });
    }

    /// Read approval `id` from the record: a request elsewhere is listed, an
    /// answer taken elsewhere is handed to the call waiting here.
    async fn refresh(&self, shared: &Shared, id: &str) {
        let stored = match shared.record.approval(id).await {
            Ok(Some(s)) => s,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(approval = %id, error = %e, "cannot read the approval from the record");
                return;
            }
        };
        let here = self.get_here(id).is_some();
        match stored.answer {
            Some(answer) => {
                shared.elsewhere().remove(id);
                if here
                    && self
                        .answer_as(id, answer, Closing::Answered { via: ELSEWHERE })
                        .is_ok()
                {
                    self.changed();
                }
            }
            None if stored.open && !here => {
                if let Ok(p) = serde_json::from_value::<Pending>(stored.request) {
                    shared.elsewhere().insert(p.id.clone(), p);
                    self.changed();
                }
            }
            None => {}
        }
    }

    /// Read every open approval again, and the state of those waiting here.
    async fn resync(&self, shared: &Shared) {
        let open = match shared.record.open_approvals().await {
            Ok(open) => open,
            Err(e) => {
                tracing::debug!(error = %e, "cannot read the approvals from the record");
                return;
            }
        };
        let here: Vec<String> = {
            let map = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
            map.keys().cloned().collect()
        };
        let fresh: BTreeMap<String, Pending> = open
            .iter()
            .filter(|s| !here.contains(&s.id))
            .filter_map(|s| serde_json::from_value::<Pending>(s.request.clone()).ok())
            .map(|p| (p.id.clone(), p))
            .collect();
        let changed = {
            let mut elsewhere = shared.elsewhere();
            let changed = elsewhere.len() != fresh.len()
                || elsewhere.keys().zip(fresh.keys()).any(|(a, b)| a != b);
            *elsewhere = fresh;
            changed
        };
        if changed {
            self.changed();
        }
        // A request of ours no longer open was answered (or expired)
        // while the feed did not say so.
        for id in here {
            if !open.iter().any(|s| s.id == id) {
                self.refresh(shared, &id).await;
            }
        }
    }

    /// Answer `id` as `who`: the identity comes from authentication, never
    /// from the request body. The agent then asks the approval policy
    /// whether `who` may approve this call.
    pub(crate) async fn answer(
        &self,
        id: &str,
        who: &Identity,
        approved: bool,
        note: Option<String>,
    ) -> Result<Pending, AnswerError> {
        self.answer_via(id, who, approved, note, "the API").await
    }

    /// [`Approvals::answer`], saying where the answer came from (`Slack`,
    /// `Teams`) to those who observe.
    ///
    /// In a cluster the record takes the answer first: the first answer on
    /// any worker wins, and one after the request expired is refused.
    pub(crate) async fn answer_via(
        &self,
        id: &str,
        who: &Identity,
        approved: bool,
        note: Option<String>,
        via: &'static str,
    ) -> Result<Pending, AnswerError> {
        let answer = Approval {
            approved,
            by: who.name.clone(),
            roles: who.roles.clone(),
            note,
        };
        let Some(shared) = self.shared() else {
            return self.answer_as(id, answer, Closing::Answered { via });
        };
        let here = self.get_here(id);
        let request = here.as_ref().map(serde_json::to_value).transpose();
        let request = request.map_err(|_| AnswerError::Unknown)?;
        let asked = here
            .as_ref()
            .zip(request.as_ref())
            .map(|(p, r)| AskedApproval {
                id,
                task_id: &p.request.task_id,
                worker: &shared.worker,
                request: r,
                expires_at: &p.expires_at,
            });
        let taken = match shared
            .record
            .answer_approval(id, &answer, asked.as_ref())
            .await
        {
            Ok(Some(request)) => request,
            Ok(None) => return Err(AnswerError::Unknown),
            Err(e) => {
                tracing::warn!(approval = %id, error = %e, "cannot answer in the record");
                return Err(AnswerError::Unknown);
            }
        };
        shared.elsewhere().remove(id);
        match here {
            Some(pending) => {
                // The feed may have handed it over already; taken either way.
                let _ = self.answer_as(id, answer, Closing::Answered { via });
                Ok(pending)
            }
            // The worker that waits learns it from the feed.
            None => {
                self.changed();
                serde_json::from_value(taken).map_err(|_| AnswerError::Unknown)
            }
        }
    }

    fn answer_as(&self, id: &str, answer: Approval, how: Closing) -> Result<Pending, AnswerError> {
        let waiting = {
            let mut map = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
            map.remove(id).ok_or(AnswerError::Unknown)?
        };
        match waiting.reply {
            // The task may have ended meanwhile (cancelled): nothing to tell.
            Reply::Agent(reply) => {
                let _ = reply.send(answer.clone());
            }
            Reply::Ticket if how != Closing::Expired && how != Closing::Shutdown => {
                self.answered
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(
                        id.to_string(),
                        Answered {
                            pending: waiting.pending.clone(),
                            answer: answer.clone(),
                        },
                    );
            }
            Reply::Ticket => {}
        }
        self.notify(&ApprovalEvent::Closed {
            pending: waiting.pending.clone(),
            answer,
            how,
        });
        Ok(waiting.pending)
    }

    /// Reject everything still waiting (the service is stopping).
    pub(crate) fn reject_all(&self, why: &str) {
        let ids: Vec<String> = {
            let map = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
            map.keys().cloned().collect()
        };
        let shared = self.shared();
        for id in ids {
            let no = Approval::no("shutdown", why);
            let _ = self.answer_as(&id, no.clone(), Closing::Shutdown);
            // Best effort: the other workers stop listing it; if this does
            // not reach the record before the process ends, it still expires
            // there.
            if let Some(shared) = shared.clone() {
                tokio::spawn(async move {
                    let _ = shared.record.expire_approval(&id, &no).await;
                });
            }
        }
    }
}

/// Put a request into the record, retrying until it expires while the
/// record cannot be reached (until then only this worker can answer it).
async fn store(shared: Arc<Shared>, pending: Pending, timeout: Duration) {
    let Ok(request) = serde_json::to_value(&pending) else {
        return;
    };
    let asked = AskedApproval {
        id: &pending.id,
        task_id: &pending.request.task_id,
        worker: &shared.worker,
        request: &request,
        expires_at: &pending.expires_at,
    };
    let end = tokio::time::Instant::now() + timeout;
    let mut pause = Duration::from_millis(100);
    while let Err(e) = shared.record.ask_approval(&asked).await {
        if tokio::time::Instant::now() + pause > end {
            tracing::warn!(approval = %pending.id, error = %e, "the approval never reached the record; only this worker could answer it");
            return;
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(2));
    }
}

/// 128 random bits, hex: not guessable, so an id in a chat message or a
/// URL grants nothing by itself (answering still needs authentication).
pub(crate) fn new_id() -> String {
    let bytes: [u8; 16] = rand::random();
    hex::encode(bytes)
}
