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
        let expiry = self.clone();
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
