//! `opa test` and `opa check` for bundles.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::bundle::{self, BundleSummary, LoadOptions, rule_ref};
use crate::engine::describe;
use crate::limits;

/// Budget of one Rego test; tests may build large fixtures.
const TEST_TIMEOUT: Duration = Duration::from_secs(10);

/// How one `test_*` rule went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum TestOutcome {
    /// The rule is `true`.
    Pass,
    /// The rule is undefined, `false` or another value.
    Fail {
        /// What it evaluated to.
        got: String,
    },
    /// Evaluation failed.
    Error {
        /// The error.
        message: String,
    },
}

/// One test rule's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TestResult {
    /// Full rule path (`data.warden.rules.call_test.test_reads_are_allowed`).
    pub name: String,
    /// File that defines it.
    pub file: PathBuf,
    /// Line of its head.
    pub line: u32,
    /// Outcome.
    #[serde(flatten)]
    pub outcome: TestOutcome,
    /// Evaluation time in microseconds.
    pub duration_us: u64,
}

/// Results of [`run_tests`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TestReport {
    /// Bundle hash (the policy files the tests ran against).
    pub bundle_hash: String,
    /// One result per test rule, in file and line order.
    pub results: Vec<TestResult>,
}

impl TestReport {
    /// Number of passing tests.
    pub fn passed(&self) -> usize {
        self.results
            .iter()
            .filter(|r| r.outcome == TestOutcome::Pass)
            .count()
    }

    /// Tests that failed or errored.
    pub fn failures(&self) -> impl Iterator<Item = &TestResult> {
        self.results
            .iter()
            .filter(|r| r.outcome != TestOutcome::Pass)
    }

    /// Whether at least one test ran and every test passed.
    pub fn is_success(&self) -> bool {
        !self.results.is_empty() && self.failures().next().is_none()
    }
}

/// Run every `test_*` rule of the bundle in `dir`, like `opa test`.
///
/// Policy, data and `*_test.rego` files are loaded together; each test runs
/// on a fresh copy of the prepared engine, so tests cannot see each other.
/// A bundle that does not load is an error, not a failed test.
///
/// ```
/// let dir = tempfile::tempdir()?;
/// std::fs::write(dir.path().join("p.rego"), "package t\nx := 2\n")?;
/// std::fs::write(dir.path().join("p_test.rego"),
///     "package t\ntest_two if x == 2\ntest_three if x == 3\n")?;
/// let report = warden_policy::run_tests(dir.path())?;
/// assert_eq!(report.passed(), 1);
/// assert_eq!(report.failures().count(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn run_tests(dir: impl AsRef<Path>) -> Result<TestReport, crate::PolicyError> {
    let mut opts = LoadOptions::new(dir.as_ref(), TEST_TIMEOUT);
    // Tests run on the interpreter (they need `with`).
    opts.use_compiled = false;
    let bundle = bundle::load(&opts, true)?;
    let mut results: Vec<TestResult> = Vec::new();
    for module in &bundle.modules {
        for rule in &module.rules {
            let is_test = rule.path.last().is_some_and(|n| n.starts_with("test_"));
            let name = rule_ref(&rule.path);
            if !is_test || results.iter().any(|r| r.name == name) {
                continue;
            }
            let started = Instant::now();
            let mut engine = bundle.engine.clone();
            let (result, exceeded) =
                limits::scoped(bundle.limits, limits::Stopwatch::start(), || {
                    engine.eval_rule(name.clone())
                });
            let outcome = match (result, exceeded) {
                (_, Some(exceeded)) => TestOutcome::Error {
                    message: exceeded.to_string(),
                },
                (Ok(regorus::Value::Bool(true)), None) => TestOutcome::Pass,
                (Ok(regorus::Value::Undefined), None) => TestOutcome::Fail {
                    got: "undefined".into(),
                },
                (Ok(other), None) => TestOutcome::Fail {
                    got: other.to_string(),
                },
                (Err(e), None) => TestOutcome::Error {
                    message: describe(&format!("{e:#}"), &bundle),
                },
            };
            results.push(TestResult {
                name,
                file: PathBuf::from(&module.file),
                line: rule.line,
                outcome,
                duration_us: u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
            });
        }
    }
    Ok(TestReport {
        bundle_hash: bundle.summary.hash,
        results,
    })
}

/// Load the bundle in `dir` (test files included) without evaluating any
/// decision: every parse, compile and data error comes out here.
pub fn check(dir: impl AsRef<Path>) -> Result<BundleSummary, crate::PolicyError> {
    let opts = LoadOptions::new(dir.as_ref(), crate::DEFAULT_TIMEOUT);
    Ok(bundle::load(&opts, true)?.summary)
}
