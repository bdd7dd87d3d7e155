//! Rego policy decisions for warden.
//!
//! Every tool call (`data.warden.call`), every capability a plugin uses
//! inside a call (`data.warden.capability`), every plan
//! (`data.warden.plan`) and every approval of a call (`data.warden.approve`)
//! is decided by a Rego bundle: a folder of `*.rego`
//! files plus `data.json` / `data.yaml` files (mounted at their folder's
//! path, as in OPA bundles). `*_test.rego` files hold `test_*` rules for
//! [`run_tests`] and are not loaded for decisions. Each entry returns
//! `{allow, deny: [reason], approval: [reason], obligations: {...}}`, read
//! into a [`Decision`](warden_types::Decision).
//!
//! Policies fail closed. A bundle that does not parse or compile (including
//! recursion between rules or functions, which OPA also rejects) is a load
//! error naming the file, line and column: the agent refuses to start. At
//! decision time, an evaluation error, an undefined or malformed result, a
//! rule conflict, or an evaluation over one of its [limits](#limits) denies
//! with a reason starting `policy error:`. Nothing allows by default.
//!
//! # Limits
//!
//! A bundle cannot hurt the host: every evaluation runs under these limits,
//! and going over one denies with a `policy error:` reason naming it.
//!
//! | Limit | Default | Setter |
//! | --- | --- | --- |
//! | CPU time of one evaluation (its thread's; 10× in wall-clock time as a backstop) | [`DEFAULT_TIMEOUT`] (100 ms) | [`PolicyEngineBuilder::with_timeout`] |
//! | Instructions of one evaluation (compiled engine) | [`DEFAULT_MAX_INSTRUCTIONS`] (1,000,000) | [`PolicyEngineBuilder::with_max_instructions`] |
//! | Elements built by builtins in one evaluation | [`DEFAULT_MAX_BUILTIN_ELEMENTS`] (1,000,000) | [`PolicyEngineBuilder::with_max_builtin_elements`] |
//! | String bytes built by builtins in one evaluation | [`DEFAULT_MAX_BUILTIN_BYTES`] (16 MiB) | [`PolicyEngineBuilder::with_max_builtin_bytes`] |
//!
//! regorus reads its clock between instructions, and a builtin call is one
//! instruction: `numbers.range(1, 1e9)` alone would reserve 24 GB. So the
//! builtins that can build far more than their arguments hold run, on both
//! engines, as size-checked versions that work out what a call would build
//! before building it and charge it to the evaluation's element and byte
//! budgets: `numbers.range`, `numbers.range_step`, `net.cidr_expand`,
//! `array.concat`, `split`, `indexof_n` and `walk` (elements); `concat`,
//! `sprintf` (widths included), `replace`, `strings.replace_n`,
//! `regex.replace`, `json.marshal`, `json.marshal_with_options`,
//! `yaml.marshal`, `urlquery.encode`, `urlquery.encode_object`,
//! `hex.encode` and the `base64` encoders (bytes). A value that shares its
//! parts (`x := [y, y]`, forty times) is measured as it would print. The
//! budgets are shared by all calls of one evaluation, so a loop that
//! rebuilds a range adds up, and each decision starts afresh. The ranges
//! also check the clock while they are built, and a decision that
//! finishes past its time budget (one slow instruction at the end) denies
//! too. For example, `numbers.range(1, 1e8)` denies at once with `policy
//! error: numbers.range would build 100000000 elements, over the builtin
//! element limit of 1000000 per evaluation`.
//!
//! What stays bounded only by time: builtins whose output is at most a
//! small multiple of their input (`upper`, `substring`, `json.unmarshal`,
//! `sort`, ...) and arithmetic on big integers, which regorus does as one
//! instruction.
//!
//! The engine is [`regorus`], a Rego implementation in Rust; its types never
//! appear in this crate's API. Decisions run on regorus's compiled engine
//! (the RVM: entry points compiled to bytecode at load), an order of
//! magnitude faster than its interpreter; the Rego tests (which need
//! `with`), explanations and [`RegoQuery`] run on the interpreter, and so
//! does any bundle the RVM compiler rejects ([`BundleSummary::compiled`]
//! says which). OPA's own `opa-wasm` route is not offered: it needs the
//! `opa` CLI to compile Rego to WebAssembly, and that CLI cannot be obtained
//! from the registries this project builds from.
//!
//! ```
//! use warden_policy::{Entry, PolicyContext, PolicyEngine, PolicyInput};
//! use warden_types::{Effect, ToolManifest, Verdict};
//!
//! let policies = concat!(env!("CARGO_MANIFEST_DIR"), "/../../policies");
//! let engine = PolicyEngine::load(policies)?;
//!
//! let mut ctx = PolicyContext::default();
//! ctx.agent.name = "edge-01".into();
//! ctx.agent.env = "prod".into();
//! let restart = ToolManifest {
//!     name: "restart-service".into(),
//!     version: "0.1.0".into(),
//!     description: "Restart a systemd unit".into(),
//!     input_schema: serde_json::json!({"type": "object"}),
//!     output_schema: serde_json::json!({"type": "object"}),
//!     effect: Effect::Mutating,
//!     supports_dry_run: false,
//!     capabilities: vec![],
//! };
//! let input = PolicyInput::call(&ctx, &restart, serde_json::json!({"unit": "nginx"}), "s1", false);
//! let record = engine.decide(Entry::Call, &input);
//! assert_eq!(record.decision.verdict, Verdict::NeedsApproval);
//! assert_eq!(record.bundle_hash, engine.summary().hash);
//! # Ok::<(), warden_policy::PolicyError>(())
//! ```
//!
//! The bundle also says which environments exist
//! ([`PolicyEngine::environments`]): hosts canonicalise a task's
//! environment with [`Environments::canonical`] (`Prod`, `production` ->
//! `prod`), and the default bundle denies every decision for a name it does
//! not know.
//!
//! Long-running agents reload the folder with [`PolicyEngine::reload`] or
//! [`PolicyEngine::watch`]; a broken new bundle is rejected and the old one
//! stays. [`PolicyGate`] puts the engine behind the sandbox's
//! [`CapabilityGate`](warden_types::CapabilityGate).
#![deny(missing_docs)]

mod analysis;
mod bundle;
mod compiled;
mod decision;
mod engine;
mod env;
mod error;
mod explain;
mod gate;
mod input;
mod limits;
mod query;
mod rego_value;
mod testing;

pub use bundle::BundleSummary;
pub use decision::{DecisionRecord, Entry, POLICY_ERROR_PREFIX};
pub use engine::{
    DEFAULT_MAX_INSTRUCTIONS, DEFAULT_TIMEOUT, DecisionSink, PolicyEngine, PolicyEngineBuilder,
    Watcher,
};
pub use env::Environments;
pub use error::PolicyError;
pub use explain::{Explanation, ReasonSource, RuleSource};
pub use gate::PolicyGate;
pub use input::{
    AgentInfo, ApprovalInfo, CallInfo, History, PlanInfo, PlanStep, PolicyContext, PolicyInput,
    Principal, TaskInfo, ToolInfo,
};
pub use limits::{DEFAULT_MAX_BUILTIN_BYTES, DEFAULT_MAX_BUILTIN_ELEMENTS};
pub use query::RegoQuery;
pub use testing::{TestOutcome, TestReport, TestResult, check, run_tests};
