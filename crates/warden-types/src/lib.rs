//! Shared data of warden: what a tool says about itself, what it may touch,
//! and how a decision about it is expressed.
//!
//! This crate has no I/O and no heavy dependency: the host, the policy engine
//! and every guest plugin link it.
//!
//! ```
//! use warden_types::{Capability, Effect, ToolManifest};
//!
//! let manifest = ToolManifest {
//!     name: "http-probe".into(),
//!     version: "0.1.0".into(),
//!     description: "Probe an HTTP endpoint".into(),
//!     input_schema: serde_json::json!({"type": "object"}),
//!     output_schema: serde_json::json!({"type": "object"}),
//!     effect: Effect::ReadOnly,
//!     supports_dry_run: false,
//!     capabilities: vec![Capability::Http { hosts: vec!["127.0.0.1".into()] }],
//! };
//! assert!(manifest.declares_http_host("127.0.0.1"));
//! assert!(!manifest.declares_http_host("169.254.169.254"));
//! ```
#![deny(missing_docs)]

mod decision;
mod gate;
mod manifest;

pub use decision::{Decision, Verdict};
pub use gate::{
    CapabilityGate, CapabilityRequest, CapabilityUse, DenyAll, GateDecision, HttpRequestInfo,
};
pub use manifest::{CallContext, Capability, Effect, ToolManifest};
