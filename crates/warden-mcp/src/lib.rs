//! `warden mcp`: the agent's tool plugins as an MCP server.
//!
//! Each plugin is an MCP tool: its manifest gives the name, description,
//! `inputSchema` and `outputSchema`; its effect gives the annotations
//! (`readOnlyHint`, `destructiveHint`, `idempotentHint` for read-only
//! tools, `openWorldHint` when it may use the network). Tools that change
//! things gain a `dry_run` argument that is true unless the caller passes
//! false. Three built-in tools read the agent's own data:
//! `incidents_similar`, `journal_show` and `runbook_list`.
//!
//! Every call goes down the agent's one authorized, journaled path
//! ([`warden::Agent::call_until`]): the Rego policy decides, a human
//! approves where it asks, the plugin runs in the sandbox with every
//! capability decided again, and all of it is journaled. The environment
//! and the principal are the server's ([`McpOptions`]); an argument named
//! `env`, `environment` or `principal` is not honoured, and the attempt is
//! journaled with the task. A refusal is a tool error with the policy's
//! reasons, phrased so a model does not retry; input that breaks the
//! plugin's schema is refused before the guest runs, with the JSON path.
//! When the policy wants a human, [`McpApprover`] asks the client's user
//! through MCP elicitation; a client that cannot ask gets a tool error
//! saying approval is required. Calls over a second report progress to a
//! client that sent a progress token, and a client's cancellation stops
//! the call.
//!
//! ```no_run
//! use std::sync::Arc;
//! use warden_mcp::{McpApprover, McpOptions, McpServer};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let approver = McpApprover::new();
//! let agent = warden::Agent::builder()
//!     .name("warden-mcp")
//!     .plugins(".warden/plugins")
//!     .policy("policies")
//!     .approver(approver.clone())
//!     .journal(".warden/journal.jsonl")
//!     .build()?;
//! let mut options = McpOptions::default();
//! options.env("staging").principal("assistant").approver(approver);
//! McpServer::new(Arc::new(agent), options).serve_stdio().await?;
//! # Ok(()) }
//! ```
//!
//! The handler does not depend on the transport: [`McpServer::serve`] takes
//! any byte stream pair, and the same server can later sit behind
//! Streamable HTTP.
#![deny(missing_docs)]

mod approve;
mod builtin;
mod catalog;
mod desk;
mod error;
#[cfg(feature = "http")]
mod http;
mod options;
mod server;
mod tools;

pub use approve::McpApprover;
pub use desk::{ApprovalDesk, Redeemed, Ticket, same_call};
pub use error::McpError;
pub use options::{Caller, McpOptions};
pub use server::{McpServer, McpSession};
