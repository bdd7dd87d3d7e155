//! Human approval of calls the policy will not allow on its own.

use std::io::{BufRead as _, IsTerminal as _, Write as _};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

/// A call waiting for a human.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalRequest {
    /// Task id.
    pub task_id: String,
    /// Step id.
    pub step_id: String,
    /// Tool name.
    pub tool: String,
    /// `read-only`, `mutating` or `destructive`.
    pub effect: String,
    /// Environment (canonical).
    pub env: String,
    /// On whose behalf the work is done.
    pub principal: String,
    /// The arguments, rendered.
    pub args: serde_json::Value,
    /// Why the policy asks.
    pub reasons: Vec<String>,
    /// Why the step is in the plan.
    pub why: String,
}

/// A human's answer.
///
/// `by` is the approver's identity as the approver established it (the OS
/// user at a terminal, the authenticated user of a chat or web UI), never
/// a name typed into the request: the journal records it beside the
/// principal, and the approval policy sees both.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Approval {
    /// Yes or no.
    pub approved: bool,
    /// Who answered.
    pub by: String,
    /// The approver's roles, for the approval policy.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Anything they said.
    #[serde(default)]
    pub note: Option<String>,
}

impl Approval {
    /// A yes from `by`.
    pub fn yes(by: impl Into<String>) -> Self {
        Approval {
            approved: true,
            by: by.into(),
            roles: Vec::new(),
            note: None,
        }
    }

    /// A no from `by`, saying why.
    pub fn no(by: impl Into<String>, note: impl Into<String>) -> Self {
        Approval {
            approved: false,
            by: by.into(),
            roles: Vec::new(),
            note: Some(note.into()),
        }
    }
}

/// Decides calls the policy sends to a human. Every answer is journaled
/// with who gave it and when.
#[async_trait]
pub trait Approver: Send + Sync {
    /// Ask about one call.
    async fn approve(&self, request: &ApprovalRequest) -> Approval;
}

/// The name of the user this process runs as, from the operating system
/// (not `$USER`, which anyone can set).
pub fn os_user() -> String {
    whoami::username()
}

/// Rejects every approval request: for unattended runs, where nobody can
/// answer. (The sandbox's capability gate that denies everything is
/// `warden_types::DenyAll`.)
#[derive(Debug, Clone, Copy, Default)]
pub struct RejectAll;

#[async_trait]
impl Approver for RejectAll {
    async fn approve(&self, _request: &ApprovalRequest) -> Approval {
        Approval::no(
            "reject-all",
            "nobody can approve in a non-interactive run (use a terminal, --approve, or an approver channel)",
        )
    }
}

/// Approves everything in the name of a person who said so up front (the
/// CLI's `--approve`): the journal records that person, and the approval
/// policy still has the last word (no self-approval in protected
/// environments by default).
#[derive(Debug, Clone)]
pub struct PreApproved {
    by: String,
}

impl PreApproved {
    /// Approvals in the name of `by`, an identity the embedder established.
    pub fn by(by: impl Into<String>) -> Self {
        PreApproved { by: by.into() }
    }

    /// Approvals in the name of the OS user running this process.
    pub fn by_os_user() -> Self {
        PreApproved::by(os_user())
    }
}

#[async_trait]
impl Approver for PreApproved {
    async fn approve(&self, _request: &ApprovalRequest) -> Approval {
        Approval {
            approved: true,
            by: self.by.clone(),
            roles: Vec::new(),
            note: Some("approved in advance on the command line".into()),
        }
    }
}

/// Asks on the terminal: shows the tool, the arguments and the policy's
/// reasons on stderr and reads `y`/`N` from stdin. Without a terminal it
/// refuses.
#[derive(Debug, Clone)]
pub struct TerminalApprover {
    who: String,
}

impl TerminalApprover {
    /// Answers are recorded as given by `who`.
    pub fn new(who: impl Into<String>) -> Self {
        TerminalApprover { who: who.into() }
    }

    /// Answers are recorded as given by the OS user running this process.
    pub fn os_user() -> Self {
        TerminalApprover::new(os_user())
    }
}

#[async_trait]
impl Approver for TerminalApprover {
    async fn approve(&self, request: &ApprovalRequest) -> Approval {
        if !std::io::stdin().is_terminal() {
            return Approval::no(&self.who, "stdin is not a terminal, so nobody could answer");
        }
        let request = request.clone();
        let who = self.who.clone();
        let answer = tokio::task::spawn_blocking(move || {
            let mut err = std::io::stderr().lock();
            // Everything here may come from outside (alert text, the model):
            // escaped so it cannot drive the terminal.
            let t = crate::terminal_safe;
            let args = serde_json::to_string_pretty(&request.args).unwrap_or_default();
            let _ = writeln!(
                err,
                "\n── approval needed ── {} ({}) in `{}` for {}, step `{}`",
                t(&request.tool),
                request.effect,
                t(&request.env),
                t(&request.principal),
                t(&request.step_id)
            );
            if !request.why.is_empty() {
                let _ = writeln!(err, "why: {}", t(&request.why));
            }
            for r in &request.reasons {
                let _ = writeln!(err, "policy: {}", t(r));
            }
            let _ = writeln!(err, "args: {args}");
            let _ = write!(err, "approve as `{who}`? [y/N] ");
            let _ = err.flush();
            let mut line = String::new();
            let _ = std::io::stdin().lock().read_line(&mut line);
            matches!(line.trim().to_ascii_lowercase().as_str(), "y" | "yes")
        })
        .await
        .unwrap_or(false);
        if answer {
            Approval::yes(&self.who)
        } else {
            Approval::no(&self.who, "declined at the terminal")
        }
    }
}

/// Hands each request to the embedder through a channel and waits for the
/// answer: for chat bots, web UIs and tests.
///
/// ```
/// use warden_agent::{Approval, ChannelApprover};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let (approver, mut requests) = ChannelApprover::new(8);
/// tokio::spawn(async move {
///     while let Some((request, reply)) = requests.recv().await {
///         let _ = reply.send(Approval::yes(format!("bot approving {}", request.tool)));
///     }
/// });
/// # drop(approver);
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct ChannelApprover {
    tx: mpsc::Sender<(ApprovalRequest, oneshot::Sender<Approval>)>,
}

/// The embedder's end of a [`ChannelApprover`].
pub type ApprovalRequests = mpsc::Receiver<(ApprovalRequest, oneshot::Sender<Approval>)>;

impl ChannelApprover {
    /// An approver and the receiving end for requests (`capacity` pending).
    pub fn new(capacity: usize) -> (Self, ApprovalRequests) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        (ChannelApprover { tx }, rx)
    }
}

#[async_trait]
impl Approver for ChannelApprover {
    async fn approve(&self, request: &ApprovalRequest) -> Approval {
        let (reply, answer) = oneshot::channel();
        if self.tx.send((request.clone(), reply)).await.is_err() {
            return Approval::no("channel", "the approval channel is closed");
        }
        answer
            .await
            .unwrap_or_else(|_| Approval::no("channel", "the approver dropped the request"))
    }
}
