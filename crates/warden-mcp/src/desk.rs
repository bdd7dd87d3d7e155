//! Approvals answered away from the MCP client: a call the client's user
//! cannot approve (the client has no elicitation) opens a request at an
//! [`ApprovalDesk`] — `warden serve`'s `/v1/approvals`, its page, Slack or
//! Teams — and fails with the request's id. An approver answers there,
//! authenticated; the client then repeats the call with the same arguments
//! and `approval_id`, and the desk hands over the answer once.

use warden::{Approval, ApprovalRequest};

/// A request opened at a desk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    /// The approval id (unguessable; answering it still needs an
    /// authenticated approver).
    pub id: String,
    /// When it expires unanswered (RFC 3339).
    pub expires_at: String,
}

/// What a desk says about an approval id a client brings back.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Redeemed {
    /// Answered: the answer, given up once (a second call with the same id
    /// finds nothing). The approval policy still decides whether the person
    /// who answered may approve.
    Answered(Approval),
    /// Nobody has answered yet.
    Waiting,
    /// The id names an approval for a different call (another tool,
    /// environment, principal or other arguments): it is left untouched.
    OtherCall,
    /// No such approval (never was, used, or expired).
    Unknown,
}

/// Where approvals wait for a person when the MCP client cannot ask one
/// (see the [module documentation](self)). `warden serve` implements it
/// on its approval queue.
pub trait ApprovalDesk: Send + Sync + std::fmt::Debug {
    /// Open a request for `request`; nobody waits on it.
    ///
    /// # Errors
    /// Why it could not be opened (too many waiting, say).
    fn open(&self, request: &ApprovalRequest) -> Result<Ticket, String>;

    /// The answer to approval `id`, if it was given for this very call:
    /// same tool, effect, environment, principal and arguments.
    fn redeem(&self, id: &str, request: &ApprovalRequest) -> Redeemed;
}

/// Whether two requests ask about the same call: what a person approved
/// is exactly what runs.
pub fn same_call(a: &ApprovalRequest, b: &ApprovalRequest) -> bool {
    a.tool == b.tool
        && a.effect == b.effect
        && a.env == b.env
        && a.principal == b.principal
        && a.args == b.args
}
