//! The long-lived policy handle: evaluation, hot reload, the polling watcher.

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use sha2::{Digest, Sha256};
use warden_types::{Decision, Verdict};

use crate::bundle::{self, Bundle, BundleSummary, LoadOptions};
use crate::decision::{DecisionRecord, Entry, interpret, policy_error};
use crate::env::Environments;
use crate::error::{PolicyError, locate, message_of};
use crate::explain::{self, Explanation};
use crate::input::PolicyInput;
use crate::limits;
use crate::rego_value;

/// Receives every decision record, e.g. the agent's journal.
///
/// Runs on the decision path: keep it quick (push to a channel).
pub trait DecisionSink: Send + Sync {
    /// Take one record.
    fn record(&self, record: &DecisionRecord);
}

impl<F> DecisionSink for F
where
    F: Fn(&DecisionRecord) + Send + Sync,
{
    fn record(&self, record: &DecisionRecord) {
        self(record)
    }
}

/// Decides calls, capabilities and plans with a Rego bundle.
///
/// Cheap to clone: clones share one bundle. [`PolicyEngine::reload`] swaps
/// the bundle atomically; evaluations already running finish on the bundle
/// they started with. Evaluation never fails: anything that keeps the
/// policy from deciding (an error, an undefined or malformed result, a
/// conflict, running over the time budget) denies with a reason starting
/// `policy error:`.
///
/// ```
/// use warden_policy::{Entry, PolicyEngine};
/// use warden_types::Verdict;
///
/// let dir = tempfile::tempdir()?;
/// std::fs::write(dir.path().join("p.rego"), r#"
///     package warden
///     call := {"allow": input.tool.effect == "read-only", "deny": set(), "approval": set(), "obligations": {}}
/// "#)?;
/// let engine = PolicyEngine::load(dir.path())?;
/// let record = engine.decide_json(Entry::Call, &serde_json::json!({"tool": {"effect": "read-only"}}));
/// assert_eq!(record.decision.verdict, Verdict::Allow);
/// // No `capability` entry in this bundle: fail closed.
/// let record = engine.decide_json(Entry::Capability, &serde_json::json!({}));
/// assert!(record.decision.reasons[0].starts_with("policy error:"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct PolicyEngine {
    inner: Arc<Inner>,
}

struct Inner {
    options: LoadOptions,
    current: RwLock<Arc<Bundle>>,
    sink: Option<Arc<dyn DecisionSink>>,
}

impl std::fmt::Debug for PolicyEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyEngine")
            .field("dir", &self.inner.options.dir)
            .field("hash", &self.current().summary.hash)
            .finish_non_exhaustive()
    }
}

/// Options for [`PolicyEngine`]; see [`PolicyEngine::builder`].
#[must_use]
pub struct PolicyEngineBuilder {
    options: LoadOptions,
    sink: Option<Arc<dyn DecisionSink>>,
}

impl std::fmt::Debug for PolicyEngineBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyEngineBuilder")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// Default time budget of one evaluation (CPU time of the evaluating
/// thread).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(100);

/// Default instruction budget of one evaluation on the compiled engine.
pub const DEFAULT_MAX_INSTRUCTIONS: usize = 1_000_000;

impl PolicyEngineBuilder {
    /// Time budget of one evaluation: the CPU time of the thread that
    /// evaluates, so a machine busy with other work does not turn a cheap
    /// decision into a denial. Over it, the decision is a `policy error`
    /// denial. The size-checked builtins check it while they build, and
    /// the engine once more when the evaluation ends; regorus checks ten
    /// times the budget in wall-clock time between instructions, as a
    /// backstop. Default [`DEFAULT_TIMEOUT`] (100 ms).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.options.timeout = timeout;
        self
    }

    /// Instruction budget of one evaluation on the compiled engine; over it,
    /// the decision is a `policy error` denial. Default
    /// [`DEFAULT_MAX_INSTRUCTIONS`] (one million).
    pub fn with_max_instructions(mut self, max: usize) -> Self {
        self.options.max_instructions = max;
        self
    }

    /// Elements (array, set and object members) that the size-checked
    /// builtins (`numbers.range`, `array.concat`, `split`, `walk`, ...) of
    /// one evaluation may build together; over it, the call fails and the
    /// decision is a `policy error` denial naming the builtin and this
    /// limit. Default [`DEFAULT_MAX_BUILTIN_ELEMENTS`] (one million).
    ///
    /// [`DEFAULT_MAX_BUILTIN_ELEMENTS`]: crate::DEFAULT_MAX_BUILTIN_ELEMENTS
    pub fn with_max_builtin_elements(mut self, max: usize) -> Self {
        self.options.max_builtin_elements = max;
        self
    }

    /// String bytes that the size-checked builtins (`concat`, `sprintf`,
    /// `replace`, `json.marshal`, ...) of one evaluation may build together;
    /// over it, the call fails and the decision is a `policy error` denial
    /// naming the builtin and this limit. Default
    /// [`DEFAULT_MAX_BUILTIN_BYTES`] (16 MiB).
    ///
    /// [`DEFAULT_MAX_BUILTIN_BYTES`]: crate::DEFAULT_MAX_BUILTIN_BYTES
    pub fn with_max_builtin_bytes(mut self, max: usize) -> Self {
        self.options.max_builtin_bytes = max;
        self
    }

    /// Whether decisions run on regorus's compiled engine (the RVM) when the
    /// bundle allows it. Default `true`; `false` keeps every decision on the
    /// interpreter, which is slower but is what the Rego tests and
    /// explanations use.
    pub fn with_compiled_engine(mut self, on: bool) -> Self {
        self.options.use_compiled = on;
        self
    }

    /// Data merged over the bundle's data files, winning on conflicts
    /// (e.g. `{"warden": {"config": {...}}}` for one deployment). It is part
    /// of the bundle hash and survives reloads. Default: none.
    pub fn with_data(mut self, overlay: serde_json::Value) -> Self {
        self.options.overlay = Some(overlay);
        self
    }

    /// Where every decision record goes besides the `tracing` event.
    /// Default: nowhere.
    pub fn with_sink(mut self, sink: impl DecisionSink + 'static) -> Self {
        self.sink = Some(Arc::new(sink));
        self
    }

    /// Load the bundle. A bundle that does not parse or compile is an error:
    /// the agent must refuse to start.
    pub fn load(self) -> Result<PolicyEngine, PolicyError> {
        let bundle = bundle::load(&self.options, false)?;
        log_loaded(&bundle.summary, "policy bundle loaded");
        Ok(PolicyEngine {
            inner: Arc::new(Inner {
                options: self.options,
                current: RwLock::new(Arc::new(bundle)),
                sink: self.sink,
            }),
        })
    }
}

fn log_loaded(summary: &BundleSummary, message: &str) {
    tracing::info!(
        dir = %summary.dir.display(),
        bundle_hash = %summary.hash,
        policies = summary.policy_files.len(),
        data_files = summary.data_files.len(),
        "{message}"
    );
    for entry in &summary.missing_entries {
        tracing::warn!(
            dir = %summary.dir.display(),
            entry = %entry.rule(),
            "policy bundle does not define this entry point; every such decision will deny"
        );
    }
}

impl PolicyEngine {
    /// Load the bundle in `dir` with default options.
    pub fn load(dir: impl AsRef<Path>) -> Result<PolicyEngine, PolicyError> {
        Self::builder(dir).load()
    }

    /// Start configuring an engine for the bundle in `dir`.
    pub fn builder(dir: impl AsRef<Path>) -> PolicyEngineBuilder {
        PolicyEngineBuilder {
            options: LoadOptions::new(dir.as_ref(), DEFAULT_TIMEOUT),
            sink: None,
        }
    }

    fn current(&self) -> Arc<Bundle> {
        let guard = self
            .inner
            .current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        Arc::clone(&guard)
    }

    /// What the current bundle holds (its hash in particular).
    pub fn summary(&self) -> BundleSummary {
        self.current().summary.clone()
    }

    /// The environments the current bundle knows
    /// (`data.warden.config.environments`); read again on every reload.
    pub fn environments(&self) -> Environments {
        self.current().environments.clone()
    }

    /// How many alert notifications per minute the current bundle lets a
    /// service accept from `source` (`alertmanager`, `azure-monitor`,
    /// `generic`, `api`): `data.warden.config.intake.<source>.per_minute`,
    /// or `None` for no limit. Read again on every reload.
    pub fn intake_limit(&self, source: &str) -> Option<u32> {
        crate::bundle::intake_limit(&self.current().data, source)
    }

    /// Whether a mutating MCP tool's `dry_run` defaults to true in `env`:
    /// `data.warden.config.mcp.dry_run_default`, a boolean or an object of
    /// environment → boolean; true unless the bundle says otherwise.
    ///
    /// ```
    /// # fn demo(engine: &warden_policy::PolicyEngine) {
    /// let dry = engine.mcp_dry_run_default("prod");
    /// # let _ = dry; }
    /// ```
    pub fn mcp_dry_run_default(&self, env: &str) -> bool {
        crate::bundle::mcp_dry_run_default(&self.current().data, env)
    }

    /// Decide `input` at `entry`.
    pub fn decide(&self, entry: Entry, input: &PolicyInput) -> DecisionRecord {
        self.decide_serialized(entry, input)
    }

    /// Decide a raw JSON `input` at `entry`.
    pub fn decide_json(&self, entry: Entry, input: &serde_json::Value) -> DecisionRecord {
        self.decide_serialized(entry, input)
    }

    fn decide_serialized<T: serde::Serialize + ?Sized>(
        &self,
        entry: Entry,
        input: &T,
    ) -> DecisionRecord {
        let started = Instant::now();
        let bundle = self.current();
        let value = match rego_value::to_rego(input) {
            Ok(value) => value,
            Err(e) => {
                let decision = policy_error(format!("the input is not JSON: {e}"));
                return self.finish(entry, decision, String::new(), &bundle, started);
            }
        };
        // A span (for traces) around the evaluation; the reasons and the
        // verdict are policy text, never the input, so no secret lands in it.
        let span = tracing::info_span!(
            target: "warden_policy::decision",
            "warden.policy.decision",
            entry = %entry,
            verdict = tracing::field::Empty,
            reasons = tracing::field::Empty,
            bundle_hash = %bundle.summary.hash,
        );
        let _enter = span.enter();
        let input_hash = hash_value(&value);
        let decision = evaluate(&bundle, entry, value);
        span.record("verdict", tracing::field::display(decision.verdict));
        if !decision.reasons.is_empty() {
            span.record("reasons", decision.reasons.join("; "));
        }
        self.finish(entry, decision, input_hash, &bundle, started)
    }

    fn finish(
        &self,
        entry: Entry,
        decision: Decision,
        input_hash: String,
        bundle: &Bundle,
        started: Instant,
    ) -> DecisionRecord {
        let record = DecisionRecord::new(
            entry,
            decision,
            input_hash,
            bundle.summary.hash.clone(),
            started.elapsed(),
        );
        emit(&record);
        if let Some(sink) = &self.inner.sink {
            sink.record(&record);
        }
        record
    }

    /// Decide like [`PolicyEngine::decide_json`], then find which rules
    /// produced each reason (a second, slower evaluation; for the CLI and
    /// for humans, not the hot path).
    pub fn explain(&self, entry: Entry, input: &serde_json::Value) -> Explanation {
        let record = self.decide_json(entry, input);
        let bundle = self.current();
        explain::explain(&bundle, record, input)
    }

    /// Load the bundle folder again and swap it in.
    ///
    /// A bundle that fails to load is rejected and logged at error level;
    /// the old bundle stays in force.
    pub fn reload(&self) -> Result<BundleSummary, PolicyError> {
        match bundle::load(&self.inner.options, false) {
            Ok(bundle) => {
                let summary = bundle.summary.clone();
                let new = Arc::new(bundle);
                let old = {
                    let mut guard = self
                        .inner
                        .current
                        .write()
                        .unwrap_or_else(|poisoned| poisoned.into_inner());
                    std::mem::replace(&mut *guard, new)
                };
                if old.summary.hash != summary.hash {
                    log_loaded(&summary, "policy bundle reloaded");
                }
                Ok(summary)
            }
            Err(error) => {
                tracing::error!(
                    dir = %self.inner.options.dir.display(),
                    error = %error,
                    kept_bundle_hash = %self.current().summary.hash,
                    "REJECTED new policy bundle; the previous bundle stays in force"
                );
                Err(error)
            }
        }
    }

    /// Check the bundle folder every `every` and reload it when a file
    /// changed. Stops when the returned [`Watcher`] is stopped or dropped.
    pub fn watch(&self, every: Duration) -> Watcher {
        let (stop, stopped) = mpsc::channel::<()>();
        let engine = self.clone();
        let dir = self.inner.options.dir.clone();
        // Start from what the current bundle was loaded from, so a change
        // made between load and this call is not missed.
        let mut seen = self.current().fingerprint.clone();
        let handle = std::thread::Builder::new()
            .name("warden-policy-watch".into())
            .spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                    let now = fingerprint(&dir);
                    if now != seen {
                        seen = now;
                        // reload() logs both outcomes.
                        let _ = engine.reload();
                    }
                }
            });
        match handle {
            Ok(handle) => Watcher {
                stop: Some(stop),
                handle: Some(handle),
            },
            Err(error) => {
                tracing::error!(%error, "cannot start the policy watcher; hot reload is off");
                Watcher {
                    stop: None,
                    handle: None,
                }
            }
        }
    }
}

/// Stops the polling watcher started by [`PolicyEngine::watch`] when dropped.
#[derive(Debug)]
pub struct Watcher {
    stop: Option<mpsc::Sender<()>>,
    handle: Option<JoinHandle<()>>,
}

impl Watcher {
    /// Stop watching and wait for the watcher thread to end.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        drop(self.stop.take());
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Names, sizes and modification times of a bundle's files.
pub(crate) type Fingerprint = Vec<(PathBuf, u64, Option<SystemTime>)>;

/// The fingerprint of the bundle folder `dir` now.
pub(crate) fn fingerprint(dir: &Path) -> Fingerprint {
    let Ok(files) = bundle::list_files(dir) else {
        return Vec::new();
    };
    files
        .policies
        .iter()
        .chain(files.data.iter())
        .map(|rel| {
            let meta = fs_err::metadata(dir.join(rel)).ok();
            (
                rel.clone(),
                meta.as_ref().map_or(0, |m| m.len()),
                meta.and_then(|m| m.modified().ok()),
            )
        })
        .collect()
}

fn hash_value(value: &regorus::Value) -> String {
    // regorus objects are sorted maps, so this JSON is canonical.
    let bytes = serde_json::to_vec(value).unwrap_or_default();
    hex::encode(Sha256::digest(&bytes))
}

/// Evaluate one entry on a clone of the prepared engine, failing closed.
pub(crate) fn evaluate(bundle: &Bundle, entry: Entry, input: regorus::Value) -> Decision {
    if bundle.summary.missing_entries.contains(&entry) {
        return policy_error(format!("the bundle does not define {}", entry.rule()));
    }
    let started = limits::Stopwatch::start();
    let run = || match &bundle.compiled {
        Some(compiled) => compiled.run(entry, input),
        None => {
            let mut engine = bundle.engine.clone();
            engine.set_input(input);
            engine
                .eval_rule(entry.rule().to_string())
                .map_err(|e| format!("{e:#}"))
        }
    };
    let (outcome, exceeded) = limits::scoped(bundle.limits, started, || {
        std::panic::catch_unwind(AssertUnwindSafe(run))
    });
    // A limit a builtin hit is the reason, whatever the engine made of the
    // error (it may even have been swallowed on the way up).
    if let Some(exceeded) = exceeded {
        return policy_error(exceeded);
    }
    // regorus reads its (wall) clock only between instructions, against a
    // backstop; the budget is the CPU time the evaluation spent, so one that
    // finished past it (one slow instruction at the end) still fails closed.
    if outcome.is_ok() && started.over(bundle.timeout) {
        return policy_error(format!(
            "evaluation ran over its time budget of {} ms",
            bundle.timeout.as_millis()
        ));
    }
    match outcome {
        Ok(Ok(value)) => interpret(entry, &value),
        Ok(Err(error)) => policy_error(describe(&error, bundle)),
        Err(_) => policy_error("the Rego engine panicked while evaluating the bundle"),
    }
}

/// One line for an evaluation error: what went wrong and where.
pub(crate) fn describe(text: &str, bundle: &Bundle) -> String {
    if text.contains("exceeded time limit") {
        return format!(
            "evaluation ran over its time budget of {} ms",
            bundle.timeout.as_millis()
        );
    }
    if text.contains("exceeded maximum instruction limit") {
        return format!(
            "evaluation ran over its budget of {} instructions",
            bundle.max_instructions
        );
    }
    let message = message_of(text);
    match locate(text) {
        Some((file, line, column)) => format!("{message} (at {file}:{line}:{column})"),
        None => message,
    }
}

fn emit(record: &DecisionRecord) {
    let decision = &record.decision;
    let failed = decision.verdict == Verdict::Deny
        && decision
            .reasons
            .first()
            .is_some_and(|r| r.starts_with(crate::decision::POLICY_ERROR_PREFIX));
    if failed {
        tracing::error!(
            target: "warden_policy::decision",
            entry = %record.entry,
            verdict = %decision.verdict,
            reasons = ?decision.reasons,
            input_hash = %record.input_hash,
            bundle_hash = %record.bundle_hash,
            duration_us = record.duration_us,
            "policy failed to decide; denied"
        );
    } else {
        tracing::info!(
            target: "warden_policy::decision",
            entry = %record.entry,
            verdict = %decision.verdict,
            reasons = ?decision.reasons,
            obligations = %serde_json::Value::Object(decision.obligations.clone()),
            input_hash = %record.input_hash,
            bundle_hash = %record.bundle_hash,
            duration_us = record.duration_us,
            "policy decision"
        );
    }
}
