//! Approvals waiting for a human: the agent's [`ChannelApprover`] hands each
//! request here; the API (and chat) answers it with the caller's
//! authenticated identity; nobody answering within the timeout is a no.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::oneshot;
use warden::{Approval, ApprovalRequest, ApprovalRequests};

use crate::auth::Identity;

/// One request as the API shows it.
#[derive(Debug, Clone, Serialize)]
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
    reply: oneshot::Sender<Approval>,
}

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

/// The approvals waiting for an answer.
#[derive(Clone, Default)]
pub(crate) struct Approvals {
    waiting: Arc<Mutex<BTreeMap<String, Waiting>>>,
    observers: Arc<Mutex<Vec<Observer>>>,
}

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
        let this = self.clone();
        let on_change = Arc::new(on_change);
        tokio::spawn(async move {
            while let Some((request, reply)) = requests.recv().await {
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
                let count = this.insert(Waiting { pending, reply });
                on_change(count);
                let expiry = this.clone();
                let on_change = on_change.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(timeout).await;
                    let answer = Approval::no(
                        "timeout",
                        format!(
                            "nobody answered within {}",
                            humantime::format_duration(timeout)
                        ),
                    );
                    if expiry.answer_as(&id, answer, Closing::Expired).is_ok() {
                        on_change(expiry.len());
                    }
                });
            }
        });
    }

    fn insert(&self, w: Waiting) -> usize {
        let mut map = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        // Told while the entry is locked in, so an answer (which must take
        // it out first) is always told after the question.
        self.notify(&ApprovalEvent::Asked(w.pending.clone()));
        map.insert(w.pending.id.clone(), w);
        map.len()
    }

    /// How many wait.
    pub(crate) fn len(&self) -> usize {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Every waiting request, oldest first.
    pub(crate) fn list(&self) -> Vec<Pending> {
        let map = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<Pending> = map.values().map(|w| w.pending.clone()).collect();
        out.sort_by(|a, b| a.asked_at.cmp(&b.asked_at));
        out
    }

    /// The waiting request `id`.
    pub(crate) fn get(&self, id: &str) -> Option<Pending> {
        let map = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        map.get(id).map(|w| w.pending.clone())
    }

    /// Answer `id` as `who`: the identity comes from authentication, never
    /// from the request body. The agent then asks the approval policy
    /// whether `who` may approve this call.
    pub(crate) fn answer(
        &self,
        id: &str,
        who: &Identity,
        approved: bool,
        note: Option<String>,
    ) -> Result<Pending, AnswerError> {
        self.answer_via(id, who, approved, note, "the API")
    }

    /// [`Approvals::answer`], saying where the answer came from (`Slack`,
    /// `Teams`) to those who observe.
    pub(crate) fn answer_via(
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
        self.answer_as(id, answer, Closing::Answered { via })
    }

    fn answer_as(&self, id: &str, answer: Approval, how: Closing) -> Result<Pending, AnswerError> {
        let waiting = {
            let mut map = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
            map.remove(id).ok_or(AnswerError::Unknown)?
        };
        // The task may have ended meanwhile (cancelled): nothing to tell.
        let _ = waiting.reply.send(answer.clone());
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
        for id in ids {
            let _ = self.answer_as(&id, Approval::no("shutdown", why), Closing::Shutdown);
        }
    }
}

/// 128 random bits, hex: not guessable, so an id in a chat message or a
/// URL grants nothing by itself (answering still needs authentication).
pub(crate) fn new_id() -> String {
    let bytes: [u8; 16] = rand::random();
    hex::encode(bytes)
}
