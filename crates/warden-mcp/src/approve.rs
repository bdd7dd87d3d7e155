//! Approvals asked of the MCP client's user through elicitation.
//!
//! The agent holds one [`Approver`] for its lifetime, but the person to ask
//! is whoever sits at the client that made the call. [`McpApprover`] finds
//! that client by task id: each plugin call registers its session before it
//! enters the agent, and leaves when it ends.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rmcp::model::{ElicitRequestParams, ElicitationAction, ElicitationSchema};
use rmcp::service::ElicitationMode;
use rmcp::{Peer, RoleServer};
use serde_json::{Value, json};
use warden::{Approval, ApprovalRequest, Approver};

use crate::desk::{ApprovalDesk, Redeemed, Ticket};

/// Longest argument text shown in an approval question.
const ARGS_LIMIT: usize = 2048;

/// Asks the user of the MCP client that made a call, through MCP
/// elicitation (form mode), whether a call the policy sends to a human may
/// run. Build the agent with it and hand the same value to
/// [`McpOptions::approver`](crate::McpOptions::approver).
///
/// The answer is recorded as given by the configured approver identity
/// ([`McpOptions::approver_id`](crate::McpOptions::approver_id)), never by
/// a name the client sends; the approval policy then decides whether that
/// person may approve. A client without elicitation, a declined or
/// cancelled question, a timeout or a call from no MCP session is a no.
///
/// A call that is not an MCP call (in `warden serve`, a task from an
/// alert) goes to the fallback approver, when there is one.
#[derive(Clone, Default)]
pub struct McpApprover {
    waiting: Arc<Mutex<HashMap<String, Arc<Waiting>>>>,
    fallback: Option<Arc<dyn Approver>>,
}

impl std::fmt::Debug for McpApprover {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpApprover")
            .field("fallback", &self.fallback.is_some())
            .finish_non_exhaustive()
    }
}

/// One call in flight: where to ask, as whom, and what happened.
pub(crate) struct Waiting {
    pub peer: Peer<RoleServer>,
    pub approver: String,
    pub roles: Vec<String>,
    pub timeout: Duration,
    /// The approval id the client brought back (`approval_id`).
    pub ticket: Option<String>,
    /// Where to open a request when the client cannot ask its user.
    pub desk: Option<Arc<dyn ApprovalDesk>>,
    pub asked: Mutex<Option<Asked>>,
}

impl std::fmt::Debug for Waiting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Waiting")
            .field("approver", &self.approver)
            .finish_non_exhaustive()
    }
}

/// What the approval question found, for the tool result.
#[derive(Debug, Clone)]
pub(crate) struct Asked {
    /// The policy's reasons for asking.
    pub reasons: Vec<String>,
    /// Why nobody could be asked, when nobody was.
    pub unasked: Option<String>,
    /// The request opened at the desk for a person to answer elsewhere.
    pub opened: Option<Ticket>,
}

/// Removes a call's registration when the call ends, however it ends.
pub(crate) struct Registration {
    approver: McpApprover,
    task_id: String,
    pub waiting: Arc<Waiting>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Ok(mut map) = self.approver.waiting.lock() {
            map.remove(&self.task_id);
        }
    }
}

impl McpApprover {
    /// An approver with no calls in flight; a call from no MCP session is
    /// refused.
    pub fn new() -> Self {
        McpApprover::default()
    }

    /// An approver that hands calls from no MCP session (a task from an
    /// alert, in `warden serve`) to `fallback`.
    ///
    /// ```
    /// use warden_mcp::McpApprover;
    ///
    /// let approver = McpApprover::with_fallback(warden::RejectAll);
    /// # let _ = approver;
    /// ```
    pub fn with_fallback(fallback: impl Approver + 'static) -> Self {
        McpApprover {
            waiting: Arc::default(),
            fallback: Some(Arc::new(fallback)),
        }
    }

    pub(crate) fn register(&self, task_id: &str, waiting: Waiting) -> Registration {
        let waiting = Arc::new(waiting);
        if let Ok(mut map) = self.waiting.lock() {
            map.insert(task_id.to_string(), waiting.clone());
        }
        Registration {
            approver: self.clone(),
            task_id: task_id.to_string(),
            waiting,
        }
    }

    fn find(&self, task_id: &str) -> Option<Arc<Waiting>> {
        self.waiting.lock().ok()?.get(task_id).cloned()
    }
}

fn note(waiting: &Waiting, reasons: &[String], unasked: Option<String>, opened: Option<Ticket>) {
    if let Ok(mut a) = waiting.asked.lock() {
        *a = Some(Asked {
            reasons: reasons.to_vec(),
            unasked,
            opened,
        });
    }
}

/// The question: tool, environment, principal, arguments, the policy's
/// reasons. Arguments are cut to [`ARGS_LIMIT`] bytes.
fn question(request: &ApprovalRequest, approver: &str) -> String {
    let mut args = serde_json::to_string_pretty(&request.args).unwrap_or_default();
    if args.len() > ARGS_LIMIT {
        let mut cut = ARGS_LIMIT;
        while !args.is_char_boundary(cut) {
            cut -= 1;
        }
        args.truncate(cut);
        args.push_str("… [cut]");
    }
    let mut text = format!(
        "warden: `{}` ({}) needs a human's approval in `{}` (on behalf of `{}`, task {}).\n",
        request.tool, request.effect, request.env, request.principal, request.task_id
    );
    for r in &request.reasons {
        text.push_str(&format!("policy: {r}\n"));
    }
    text.push_str(&format!("arguments:\n{args}\n"));
    text.push_str(&format!(
        "Your answer is recorded as given by `{approver}`; the approval policy decides whether it counts."
    ));
    text
}

fn schema() -> Option<ElicitationSchema> {
    let schema = json!({
        "type": "object",
        "properties": {
            "approve": {"type": "boolean", "title": "Approve this call", "default": false},
            "note": {"type": "string", "title": "Note for the journal", "maxLength": 500},
        },
        "required": ["approve"],
    });
    match schema {
        Value::Object(o) => ElicitationSchema::from_json_schema(o).ok(),
        _ => None,
    }
}

#[async_trait]
impl Approver for McpApprover {
    async fn approve(&self, request: &ApprovalRequest) -> Approval {
        let Some(waiting) = self.find(&request.task_id) else {
            return match &self.fallback {
                Some(f) => f.approve(request).await,
                None => Approval::no("mcp", "no MCP client is waiting for this call"),
            };
        };
        let me = waiting.approver.clone();
        let no_one = |why: String| {
            note(&waiting, &request.reasons, Some(why.clone()), None);
            Approval::no("mcp", why)
        };
        if let Some(id) = &waiting.ticket {
            let Some(desk) = &waiting.desk else {
                return no_one(
                    "`approval_id` needs warden serve: this server has no approval queue".into(),
                );
            };
            let id: String = id.chars().take(64).collect();
            return match desk.redeem(&id, request) {
                Redeemed::Answered(answer) => {
                    note(&waiting, &request.reasons, None, None);
                    answer
                }
                Redeemed::Waiting => no_one(format!(
                    "approval {id} has not been answered yet; call again once an approver has answered it"
                )),
                Redeemed::OtherCall => no_one(format!(
                    "approval {id} is for a different call (tool, environment, principal or arguments differ)"
                )),
                Redeemed::Unknown => no_one(format!(
                    "no approval {id} is open (unknown, already used, or expired)"
                )),
            };
        }
        if !waiting
            .peer
            .supported_elicitation_modes()
            .contains(&ElicitationMode::Form)
        {
            if let Some(desk) = &waiting.desk {
                return match desk.open(request) {
                    Ok(ticket) => {
                        let why =
                            format!("waiting for an approver to answer approval {}", ticket.id);
                        note(&waiting, &request.reasons, None, Some(ticket));
                        Approval::no("mcp", why)
                    }
                    Err(e) => no_one(format!("the approval could not be opened: {e}")),
                };
            }
            return no_one(
                "the MCP client cannot ask its user (it does not support elicitation)".into(),
            );
        }
        let Some(schema) = schema() else {
            return no_one("the approval form could not be built".into());
        };
        note(&waiting, &request.reasons, None, None);
        let params = ElicitRequestParams::FormElicitationParams {
            meta: None,
            message: question(request, &me),
            requested_schema: schema,
        };
        let answer = waiting
            .peer
            .create_elicitation_with_timeout(params, Some(waiting.timeout))
            .await;
        let result = match answer {
            Ok(r) => r,
            Err(e) => return no_one(format!("the MCP client could not ask its user: {e}")),
        };
        let content = result.content.unwrap_or(Value::Null);
        let said = content
            .get("note")
            .and_then(Value::as_str)
            .map(|n| n.chars().take(500).collect::<String>());
        match result.action {
            ElicitationAction::Accept if content.get("approve") == Some(&Value::Bool(true)) => {
                Approval {
                    approved: true,
                    by: me,
                    roles: waiting.roles.clone(),
                    note: said.or_else(|| Some("approved in the MCP client".into())),
                }
            }
            ElicitationAction::Accept | ElicitationAction::Decline => Approval::no(
                me,
                said.unwrap_or_else(|| "declined in the MCP client".into()),
            ),
            _ => Approval::no(me, "the question was dismissed in the MCP client"),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    fn request(args: Value) -> ApprovalRequest {
        ApprovalRequest {
            task_id: "mcp-1".into(),
            step_id: "1".into(),
            tool: "http-action".into(),
            effect: "mutating".into(),
            env: "prod".into(),
            principal: "assistant".into(),
            args,
            reasons: vec!["a human must approve this call".into()],
            why: String::new(),
        }
    }

    #[tokio::test]
    async fn a_call_from_no_mcp_session_is_not_approved() {
        let answer = McpApprover::new().approve(&request(json!({}))).await;
        assert!(!answer.approved);
        assert_eq!(answer.by, "mcp");
        assert!(answer.note.unwrap().contains("no MCP client"));
    }

    #[test]
    fn the_question_names_the_call_and_cuts_long_arguments() {
        let q = question(&request(json!({"body": "x".repeat(10_000)})), "alice");
        assert!(
            q.contains("`http-action` (mutating) needs a human's approval in `prod`"),
            "{q}"
        );
        assert!(q.contains("policy: a human must approve this call"), "{q}");
        assert!(q.contains("recorded as given by `alice`"), "{q}");
        assert!(q.contains("… [cut]"), "{q}");
        assert!(q.len() < ARGS_LIMIT + 1024, "{}", q.len());
    }

    #[test]
    fn the_form_asks_a_yes_or_no() {
        let s = serde_json::to_value(schema().unwrap()).unwrap();
        assert_eq!(s["properties"]["approve"]["type"], json!("boolean"));
        assert_eq!(s["required"], json!(["approve"]));
    }
}
