//! warden: agents that touch real infrastructure without being trusted
//! blindly.
//!
//! This crate gathers the pieces behind one import:
//! - [`Agent`] — plan, gate, approve, run and journal a [`Task`];
//! - [`sandbox`] — WebAssembly tool plugins under wasmtime;
//! - [`policy`] — Rego decisions on every call and capability;
//! - [`memory`] — incident memory with recall and clustering;
//! - [`types`] — manifests, capabilities and decisions shared by all.
//!
//! ```no_run
//! use warden::{Agent, DenyAll, Task};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let agent = Agent::builder()
//!     .plugins(".warden/plugins")
//!     .policy("policies")
//!     .runbooks("examples/runbooks")
//!     .approver(DenyAll)
//!     .journal(".warden/journal.jsonl")
//!     .build()?;
//! let alert = serde_json::from_str(&std::fs::read_to_string("alert.json")?)?;
//! let task = Task::from_webhook("inc-42", &alert)?.in_env("staging");
//! let outcome = agent.run(task).await?;
//! println!("{}: {}", outcome.status.as_str(), outcome.summary);
//! # Ok(()) }
//! ```
//!
//! `examples/embed.rs` shows a custom tool and approver linked into your own
//! program.
#![deny(missing_docs)]

pub use warden_agent::*;

/// WebAssembly tool plugins: loading, limits, calls.
pub mod sandbox {
    pub use warden_sandbox::*;
}

/// Rego policy decisions.
pub mod policy {
    pub use warden_policy::*;
}

/// Incident memory: embeddings, index, clusters, recall.
pub mod memory {
    pub use warden_memory::*;
}

/// Types shared by host and plugins.
pub mod types {
    pub use warden_types::*;
}
