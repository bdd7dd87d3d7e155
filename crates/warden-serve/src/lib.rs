//! `warden serve`: the agent as a long-running service.
//!
//! Alerts arrive by webhook (Alertmanager v4 with bearer or basic auth,
//! Azure Monitor's common schema with a token in the URL, or any JSON
//! signed with HMAC-SHA256), are committed to a durable inbox before the
//! answer, deduplicated by fingerprint, and run on a bounded worker pool on
//! the agent's one authorized, journaled path. Calls the policy sends to a
//! human wait in `/v1/approvals` for someone with a token and the
//! `approver` role; the approval policy decides whether that someone may.
//! `/metrics` exports tasks, steps, policy decisions, sandbox limit hits,
//! queue depth and pending approvals. With `[chat.slack]` or `[chat.teams]`,
//! approvals also appear in chat (Slack buttons, Teams cards) and are
//! answered there by people the config maps to identities; `/warden` in
//! Slack reports status, recalls similar incidents and turns a question
//! into a task.
//!
//! ```no_run
//! # async fn demo() -> Result<(), warden_serve::ServeError> {
//! let config = warden_serve::Config::load("examples/serve/warden.toml".as_ref())?;
//! let server = warden_serve::Server::bind(config).await?;
//! let handle = server.handle();
//! tokio::spawn(async move {
//!     let _ = tokio::signal::ctrl_c().await;
//!     handle.shutdown();
//! });
//! server.run().await
//! # }
//! ```
//!
//! | route | who | what |
//! |---|---|---|
//! | `GET /healthz`, `GET /readyz` | anyone | liveness; readiness (503 while draining) |
//! | `POST /v1/alerts/alertmanager` | Alertmanager's credentials | Alertmanager webhook v4 |
//! | `POST /v1/alerts/azure-monitor?token=…` | the receiver's token | Azure Monitor common alert schema |
//! | `POST /v1/alerts/generic` | HMAC signature | `{"name", "status", "key", "summary", …}` |
//! | `POST /v1/tasks` | `operator` | `{"goal": …}` or `{"alert": …}`, optional `env` |
//! | `GET /v1/tasks`, `GET /v1/tasks/{id}` | `viewer` | tasks; one task's timeline from the journal |
//! | `GET /v1/approvals`, `POST /v1/approvals/{id}` | `viewer`, `approver` | pending approvals; `{"approve": bool, "reason": …}` |
//! | `GET /v1/incidents/similar?q=…` | `viewer` | past incidents most like `q` |
//! | `GET /metrics` | `viewer` | Prometheus text format |
//! | `POST /v1/chat/slack/interactions` | Slack's v0 signature, a mapped `approver` | Approve / Reject buttons |
//! | `POST /v1/chat/slack/commands` | Slack's v0 signature, a mapped user | `/warden status`, `similar <text>`, a question (`operator`) |
//! | `POST /v1/chat/teams/actions` | Teams outgoing-webhook HMAC, a mapped user | `approve <id>`, `reject <id>`, `status`, `similar <text>` |
//! | `GET /ui/login`, `POST /ui/login`, `POST /ui/logout` | anyone; a token pasted once | browser session (HttpOnly, SameSite=Strict cookie) |
//! | `GET /ui/tasks`, `/ui/tasks/{id}`, `/ui/tasks/{id}/events` | session | tasks; a task's timeline, live over server-sent events |
//! | `GET /ui/approvals`, `/ui/approvals/{id}`, `POST /ui/approvals/{id}` | session (`approver` to answer) | approvals with Approve / Reject (CSRF-checked form) |
//! | `GET /ui/journal`, `GET /ui/incidents` | session | journal verification; incident clusters |
//! | `POST`/`GET`/`DELETE /mcp` | `operator` | MCP over Streamable HTTP (with `[mcp]`): the plugins as tools, each call on the caller's behalf |
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `llm` | yes | plans with a model when one is configured in the environment |
//! | `azure` | no | the ARM capability from the environment |
#![deny(missing_docs)]

mod approvals;
mod auth;
mod chat;
mod cluster;
mod config;
mod edge;
mod edge_hub;
mod error;
mod inbox;
mod intake;
mod listen;
mod mcp;
mod metrics;
mod outbox;
mod page;
mod recovery;
mod routes;
mod server;

pub use approvals::Pending;
pub use auth::{Identity, sign};
pub use chat::{ChatSection, ChatUser, SlackSection, TeamsSection};
pub use cluster::ClusterSummary;
pub use config::{
    AgentSection, AlertmanagerReceiver, ClusterSection, Config, EdgeSection, LimitsSection,
    ListenSection, PostgresUrl, ReceiversSection, SecretRef, TokenConfig, TokenReceiver,
};
pub use error::ServeError;
pub use mcp::McpSection;
pub use page::UiSection;
pub use server::{CheckSummary, EdgeSummary, Handle, Server, check};
