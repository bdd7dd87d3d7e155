//! How the server acts: where, for whom, who approves.

use std::time::Duration;

use warden::Runbooks;

use crate::approve::McpApprover;

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
    pub(crate) runbooks: Option<Runbooks>,
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

    /// Runbooks that `runbook_list` shows (default: none).
    pub fn runbooks(&mut self, runbooks: Runbooks) -> &mut Self {
        self.runbooks = Some(runbooks);
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
