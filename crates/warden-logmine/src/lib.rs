//! Drain-style log template mining: groups log lines into templates such as
//! `Connected to <*> in <*>`, online or in one go.
//!
//! Pure code with no I/O, threads or C dependencies: the host and WASM
//! plugins (`wasm32-wasip2`) run the same algorithm.
//!
//! How a line is mined:
//! 1. [`strip_header`] drops a leading timestamp/level/logger header, found
//!    by shape rather than by a per-format regex.
//! 2. The message is split on whitespace and variables are masked as `<*>`:
//!    numbers (also inside tokens and with units), durations, IPs, host:port
//!    endpoints, hex ids, UUIDs, paths, URLs, emails and timestamps
//!    ([`Masking`]). Tokens are told apart by [`classify`], the crate's one
//!    token classifier, which other crates (the incident memory's
//!    normaliser) use too.
//! 3. A fixed-depth tree keyed by token count, then by leading tokens, finds
//!    candidate templates; the most similar one at or above
//!    [`Config::similarity`] takes the line and generalises, else a new
//!    template starts ([`Miner`]).
//! 4. [`mine`] then merges templates that differ only in their parameters
//!    and splits those whose wildcard hides a few recurring words.
//!
//! ```
//! use warden_logmine::{Config, Miner, mine};
//!
//! let lines = [
//!     "2024-05-01 10:00:01 INFO db.Pool: Opened connection 17 to 10.0.0.5:5432",
//!     "2024-05-01 10:00:02 INFO db.Pool: Opened connection 18 to 10.0.0.6:5432",
//!     "2024-05-01 10:00:03 WARN disk.Watch: Disk /var/lib/pg is 91% full",
//! ];
//! let mining = mine(&lines, &Config::default());
//! assert_eq!(mining.templates.len(), 2);
//! assert_eq!(mining.templates[0].text, "Opened connection <*> to <*>");
//! assert_eq!(mining.templates[0].count, 2);
//! assert_eq!(mining.assignments, [mining.templates[0].id, mining.templates[0].id, mining.templates[1].id]);
//!
//! // The same, one line at a time.
//! let mut miner = Miner::default();
//! let ids: Vec<_> = lines.iter().map(|l| miner.add(l)).collect();
//! assert_eq!(ids[0], ids[1]);
//! ```
//!
//! | feature | what it adds |
//! | --- | --- |
//! | `schemars` | `JsonSchema` for [`Config`], [`Masking`], [`Mining`], [`Template`], [`TemplateId`] |
#![deny(missing_docs)]

mod config;
mod header;
mod mask;
mod mine;
mod miner;
mod template;
mod token;

pub use config::{Config, Masking};
pub use header::strip_header;
pub use mine::mine;
pub use miner::Miner;
pub use template::{Mining, Template, TemplateId};
pub use token::{Run, Runs, TokenClass, classify, classify_run, runs, strip_wrapping};
