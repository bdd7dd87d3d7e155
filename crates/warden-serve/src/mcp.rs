//! `/mcp`: the agent's plugins as MCP tools over Streamable HTTP, behind
//! the API's bearer tokens. A caller needs the `operator` role; each call
//! runs on their behalf (the token's name and roles), in the environment
//! `[mcp] env` names, on the same authorized, journaled path as every
//! task. A call the policy sends to a human asks the caller's client when
//! it can (elicitation), or opens an approval that `/v1/approvals`, the
//! page or chat answers; the client then repeats the call with
//! `approval_id`.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::extract::{Request, State as Extract};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;
use warden::{Agent, ApprovalRequest};
use warden_mcp::{ApprovalDesk, Caller, McpApprover, McpOptions, McpServer, Redeemed, Ticket};

use crate::approvals::Approvals;
use crate::config::Config;
use crate::error::ServeError;
use crate::server::State;

/// `[mcp]`: serve MCP at `/mcp` (absent: no MCP endpoint).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpSection {
    /// The environment every MCP call acts on (default: the bundle's
    /// default, the strictest).
    #[serde(default)]
    pub env: String,
    /// `Host` header values `/mcp` answers, a guard against DNS rebinding
    /// (default: `localhost`, `127.0.0.1`, `::1` and the listen address).
    #[serde(default)]
    pub allowed_hosts: Option<Vec<String>>,
    /// Deadline of one plugin call (default 60 s).
    #[serde(default, with = "humantime_serde_opt")]
    pub call_timeout: Option<Duration>,
}

mod humantime_serde_opt {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let text: Option<String> = Option::deserialize(d)?;
        text.map(|t| humantime::parse_duration(&t).map_err(serde::de::Error::custom))
            .transpose()
    }
}

/// The approval queue as an MCP approval desk.
#[derive(Clone)]
struct Desk {
    approvals: Approvals,
    timeout: Duration,
}

impl std::fmt::Debug for Desk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Desk").finish_non_exhaustive()
    }
}

impl ApprovalDesk for Desk {
    fn open(&self, request: &ApprovalRequest) -> Result<Ticket, String> {
        let p = self.approvals.open_ticket(request, self.timeout)?;
        Ok(Ticket {
            id: p.id,
            expires_at: p.expires_at,
        })
    }

    fn redeem(&self, id: &str, request: &ApprovalRequest) -> Redeemed {
        self.approvals.redeem(id, request)
    }
}

/// `[mcp] env` in the bundle's spelling (empty: the bundle's default), or
/// an error naming it: an environment the bundle does not know would
/// refuse every call, so the service does not start with one.
pub(crate) fn env(agent: &Agent, section: &McpSection) -> Result<String, ServeError> {
    let envs = agent.policy().environments();
    if section.env.trim().is_empty() {
        return Ok(envs.default_env().to_string());
    }
    envs.canonical(&section.env)
        .map_err(|e| ServeError::Config {
            reason: format!("[mcp] env: {e}"),
        })
}

/// The MCP server for `config`, following the service's current agent,
/// acting in `env` (see [`env`]).
pub(crate) fn server(
    config: &Config,
    section: &McpSection,
    env: String,
    agent: Arc<RwLock<Arc<Agent>>>,
    approver: McpApprover,
    approvals: &Approvals,
) -> McpServer {
    let mut options = McpOptions::default();
    options
        .env(env)
        .principal("mcp")
        .approver(approver)
        .runbooks(config.agent.runbooks.clone())
        .desk(Arc::new(Desk {
            approvals: approvals.clone(),
            timeout: config.limits.approval_timeout,
        }));
    if let Some(t) = section.call_timeout {
        options.call_timeout(t);
    }
    McpServer::following(
        move || agent.read().unwrap_or_else(|p| p.into_inner()).clone(),
        options,
    )
}

/// The routes: `/mcp`, behind [`authenticate`].
pub(crate) fn router(
    state: &Arc<State>,
    mcp: &McpServer,
    section: &McpSection,
    stop: CancellationToken,
) -> axum::Router<Arc<State>> {
    let hosts = section.allowed_hosts.clone().unwrap_or_else(|| {
        let addr = state.config.listen.addr;
        let mut hosts: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
        hosts.push(addr.ip().to_string());
        hosts.push(addr.to_string());
        hosts
    });
    let service = mcp.http_service(hosts, state.config.limits.body_bytes, stop);
    axum::Router::new()
        .nest_service("/mcp", service)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            authenticate,
        ))
}

/// Let through only a caller with the `operator` role, and hand MCP their
/// identity (never one from the request body).
async fn authenticate(
    Extract(state): Extract<Arc<State>>,
    mut req: Request,
    next: Next,
) -> Response {
    let who = match crate::routes::caller(&state, req.headers(), "operator") {
        Ok(who) => who,
        Err(f) => return f.into_response(),
    };
    req.extensions_mut().insert(Caller {
        name: who.name,
        roles: who.roles,
    });
    next.run(req).await
}
