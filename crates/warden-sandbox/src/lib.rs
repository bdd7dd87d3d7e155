//! The warden plugin host: runs tool plugins as sandboxed wasmtime
//! components.
//!
//! A plugin is a WebAssembly component built for `wasm32-wasip2` that
//! exports `warden:plugin/handler@0.1.0` (see `wit/world.wit`). The host
//!
//! - refuses files that are not components, do not export the interface, or
//!   target another ABI version, naming the file and the problem;
//! - precompiles through an optional cache of `.cwasm` files keyed by
//!   content hash and engine fingerprint, each bound to the `.wasm` it came
//!   from and the engine by an HMAC under the host's
//!   [`cache_key`](SandboxConfig::cache_key) (random per process unless
//!   set); an entry that does not verify (planted, copied from another
//!   plugin, altered, stale) is recompiled, never loaded;
//! - registers a plugin the cache already knows from its entry's tagged
//!   sidecar alone ([`Sandbox::open_file`]): its code is mapped from the
//!   cache file, checked and pre-linked at its first call, so plugins that
//!   are never called cost neither memory nor start-up time;
//! - reads plugin files only when they are regular files within
//!   [`max_plugin_size`](SandboxConfig::max_plugin_size);
//! - pre-links each plugin once (`InstancePre`) and gives every call a fresh
//!   instance, with at most [`max_instances`](SandboxConfig::max_instances)
//!   at once, each reserving address space for its
//!   [`memory_limit`](SandboxConfig::memory_limit) rather than wasmtime's
//!   4 GiB, so a sandbox fits a small box (see [`InstanceAllocation`]);
//! - validates the input against the tool's JSON Schema before the guest
//!   runs;
//! - enforces a wall-time deadline (epoch interruption), a memory cap and an
//!   output cap per call, each with its own error;
//! - grants no filesystem, environment, arguments or sockets; outgoing HTTP
//!   (`wasi:http`) and the key-value store are denied unless the manifest
//!   declares them, and then each use is decided by the embedder's
//!   [`CapabilityGate`](warden_types::CapabilityGate).
//!
//! Azure Resource Manager goes through [`SandboxConfig::arm`]: the host
//! holds the credential and runs the operations a plugin asks for through
//! the `arm` import, each one gated, none that mutates in a dry run.
//!
//! Webhook URLs that carry a token stay on the host: register them with
//! [`SandboxConfig::secret`] and a plugin sends to
//! `https://<name>.secret.warden/` without ever seeing the URL. A webhook
//! that quotes its URL back (a 404 page) is scrubbed before the guest
//! reads it, and everything a call returns (output strings, tool errors,
//! trap messages, guest log records) has every form of every secret
//! replaced by `[secret:<name>]`.
//!
//! With [`SandboxConfig::outbox`], a request to a secret that fails before
//! it leaves the host (DNS, connection refused or timed out) is kept on
//! disk and the guest gets `202 Accepted` with `x-warden-outbox: <id>`;
//! [`Sandbox::deliver_outbox`] sends it later with `Idempotency-Key: <id>`,
//! gated again like a live call, and removes it only after a 2xx (so a
//! crash in between sends it again with the same key).
//!
//! A request to a host name is decided twice: first by name alone
//! ([`CapabilityUse::HttpLookup`](warden_types::CapabilityUse::HttpLookup)),
//! before any DNS query, so a policy can refuse `metadata.google.internal`
//! or `localhost` without the name leaving the host; then with the
//! addresses it resolved to. Addresses reach the gate in one spelling:
//! IPv4 carried in IPv6 (`::ffff:a9fe:a9fe`, `::a9fe:a9fe`) and legacy IPv4
//! notations (`2852039166`) as the IPv4 address they denote. Redirects are
//! never followed; the plugin gets the 3xx.
//!
//! Outgoing requests connect only to the addresses the gate approved, so a
//! DNS answer that changes between check and connection cannot redirect
//! them. HTTPS still verifies the server's certificate for the host name the
//! plugin asked for, against the Mozilla roots built in (`webpki-roots`)
//! plus an optional [`SandboxConfig::extra_ca_file`]; a certificate that
//! does not verify fails the request with a TLS error for the guest.
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `compile` | yes | Cranelift: `.wasm` plugins compile on this host, and `Precompiler` compiles them for another target (`aarch64-unknown-linux-gnu`). Without it the sandbox is runtime-only: it loads the plugins whose code [`Sandbox::install_precompiled`] installed for its [`EngineId`], and refuses others with [`SandboxError::NotPrecompiled`], which names the command that precompiles them |
//! | `cross` | no | `compile` plus Cranelift's other backends, so `Precompiler` compiles for another architecture (a build machine's CLI enables it) |
//!
//! ```no_run
//! # async fn demo() -> Result<(), warden_sandbox::SandboxError> {
//! use std::sync::Arc;
//! use warden_sandbox::{Sandbox, SandboxConfig};
//! use warden_types::{CallContext, CapabilityRequest, GateDecision};
//!
//! let mut config = SandboxConfig::default();
//! config.cache_dir("/var/cache/warden");
//! let sandbox = Sandbox::new(&config)?;
//! let probe = sandbox.load_file("http_probe.wasm")?;
//! let gate = Arc::new(|_: &CapabilityRequest| GateDecision::Allow);
//! let out = probe
//!     .invoke(
//!         &CallContext::default(),
//!         &serde_json::json!({"url": "http://127.0.0.1:8080/health"}),
//!         gate,
//!     )
//!     .await?;
//! assert!(out.denials.is_empty());
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

mod address;
mod arm;
mod bindings;
mod cache;
mod config;
mod engine;
mod error;
mod files;
mod outbound;
mod outbox;
mod plugin;
mod precompile;
mod sandbox;
mod schema;
mod scrub;
mod secret;
mod state;

pub use arm::ArmBackend;
pub use config::{InstanceAllocation, SandboxConfig};
pub use error::{SandboxError, ToolErrorKind};
pub use files::plugin_files;
pub use outbox::{
    Delivery, DeliveryOutcome, DeliveryPass, GateFor, OUTBOX_BODY_LIMIT, Outbox, OutboxEntry,
};
pub use plugin::{CallOutput, Plugin};
pub use precompile::EngineId;
#[cfg(feature = "compile")]
pub use precompile::Precompiler;
pub use sandbox::Sandbox;
pub use schema::{inline_refs, validator_for};
pub use state::Denial;
