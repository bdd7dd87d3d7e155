//! How the server acts: where, for whom, who approves.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rmcp::RoleServer;
use rmcp::service::RequestContext;

use crate::approve::McpApprover;
use crate::desk::ApprovalDesk;

/// Who makes an MCP request over HTTP, as the service authenticated them:
/// put it into the HTTP request's extensions before the request reaches
/// [`McpServer::http_service`](crate::McpServer::http_service). The task
/// runs on their behalf, with their roles, and they are the person an
/// approval question asks. Over stdio the configured principal is used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// Their name (the token's name in `warden serve`).
    pub name: String,
    /// Their roles, for the policy.
    pub roles: Vec<String>,
}

/// The authenticated caller of the HTTP request behind `context`, if any.
#[cfg(feature = "http")]
pub(crate) fn caller_of(context: &RequestContext<RoleServer>) -> Option<Caller> {
    context
        .extensions
        .get::<http::request::Parts>()
        .and_then(|p| p.extensions.get::<Caller>())
        .cloned()
}

/// Without HTTP there is no authenticated caller.
#[cfg(not(feature = "http"))]
pub(crate) fn caller_of(_context: &RequestContext<RoleServer>) -> Option<Caller> {
    None
}

/// The server's configuration. Environment and principal come from here
/// (the operator's command line), never from a tool's arguments.
#[derive(Debug, Clone)]
pub struct McpOptions {
    pub(crate) env: String,
    pub(crate) principal: String,
    pub(crate) roles: Vec<String>,
    pub(crate) break_glass: Option<String>,
    pub(crate) approver: Option<McpApprover>,
    pub(crate) approver_id: String,
    pub(crate) approver_roles: Vec<String>,
    pub(crate) runbooks: Option<PathBuf>,
    pub(crate) desk: Option<Arc<dyn ApprovalDesk>>,
    pub(crate) call_timeout: Option<Duration>,
    pub(crate) progress_every: Duration,
    pub(crate) ask_timeout: Duration,
}

impl Default for McpOptions {
    fn default() -> Self {
        McpOptions {
            env: String::new(),
            principal: warden::os_user(),
            roles: Vec::new(),
            break_glass: None,
            approver: None,
            approver_id: warden::os_user(),
            approver_roles: Vec::new(),
            runbooks: None,
            desk: None,
            call_timeout: None,
            progress_every: Duration::from_secs(1),
            ask_timeout: Duration::from_secs(600),
        }
    }
}

impl McpOptions {
    /// The environment every call acts on, as the bundle names it (default:
    /// empty, the bundle's default environment).
    pub fn env(&mut self, env: impl Into<String>) -> &mut Self {
        self.env = env.into();
        self
    }

    /// On whose behalf every call runs (default: the OS user).
    pub fn principal(&mut self, principal: impl Into<String>) -> &mut Self {
        self.principal = principal.into();
        self
    }

    /// The principal's roles, for the policy (default: none).
    pub fn roles(&mut self, roles: Vec<String>) -> &mut Self {
        self.roles = roles;
        self
    }

    /// A break-glass ticket for destructive work in protected environments
    /// (default: none).
    pub fn break_glass(&mut self, ticket: impl Into<String>) -> &mut Self {
        self.break_glass = Some(ticket.into());
        self
    }

    /// Ask the client's user through MCP elicitation when the policy wants
    /// a human: `approver` must be the one the agent was built with
    /// (default: none; the agent's own approver answers).
    pub fn approver(&mut self, approver: McpApprover) -> &mut Self {
        self.approver = Some(approver);
        self
    }

    /// Who answers an elicitation, as the journal and the approval policy
    /// see it: the person at the MCP client (default: the OS user). The
    /// approval policy decides whether they may approve; by default nobody
    /// approves their own call in a protected environment.
    pub fn approver_id(&mut self, id: impl Into<String>, roles: Vec<String>) -> &mut Self {
        self.approver_id = id.into();
        self.approver_roles = roles;
        self
    }

    /// The runbook directory behind `runbook_list`, `runbook_run` and the
    /// prompts, read at each request so edits show (default: none).
    pub fn runbooks(&mut self, dir: impl Into<PathBuf>) -> &mut Self {
        self.runbooks = Some(dir.into());
        self
    }

    /// Where a call waits for a person when the client cannot ask its
    /// user: `warden serve`'s approval queue (default: none; such a call is
    /// refused). Tools then take `approval_id`.
    pub fn desk(&mut self, desk: Arc<dyn ApprovalDesk>) -> &mut Self {
        self.desk = Some(desk);
        self
    }

    /// Deadline of one plugin call (default: the agent's step timeout,
    /// 60 s unless its budget says otherwise).
    pub fn call_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.call_timeout = Some(timeout);
        self
    }

    /// How often a running call reports progress to a client that asked
    /// for it (default: every second; the first report after one interval).
    pub fn progress_every(&mut self, every: Duration) -> &mut Self {
        self.progress_every = every.max(Duration::from_millis(10));
        self
    }

    /// How long an approval question waits for the client's answer before
    /// it counts as a no (default: 10 minutes).
    pub fn ask_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.ask_timeout = timeout;
        self
    }
}
