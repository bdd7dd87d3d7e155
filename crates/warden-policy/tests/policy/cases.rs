//! Data-driven cases: one YAML file per case in `policies/cases/`.

use serde::Deserialize;
use warden_policy::{Entry, PolicyEngine};
use warden_types::Verdict;

use crate::policies_dir;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    description: String,
    entry: Entry,
    #[serde(default)]
    data: Option<serde_json::Value>,
    input: serde_json::Value,
    expect: Expect,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    verdict: Verdict,
    /// Each must be part of some reason.
    #[serde(default)]
    reasons: Vec<String>,
    /// When given, must equal the obligations exactly.
    #[serde(default)]
    obligations: Option<serde_json::Map<String, serde_json::Value>>,
}

#[test]
fn every_case_in_policies_cases_gets_its_expected_decision() {
    let dir = policies_dir().join("cases");
    let mut paths: Vec<_> = fs_err::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    paths.sort();
    assert!(
        paths.len() >= 15,
        "expected the shipped cases, found {}",
        paths.len()
    );
    let plain = PolicyEngine::load(policies_dir()).unwrap();
    assert!(
        plain.summary().compiled,
        "the default bundle must run compiled"
    );
    let mut failures = Vec::new();
    let mut entries = Vec::new();
    for path in &paths {
        let case: Case = serde_yaml_ng::from_str(&fs_err::read_to_string(path).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        entries.push(case.entry);
        let builder = || match &case.data {
            Some(data) => PolicyEngine::builder(policies_dir()).with_data(data.clone()),
            None => PolicyEngine::builder(policies_dir()),
        };
        let engine = match &case.data {
            Some(_) => builder().load().unwrap(),
            None => plain.clone(),
        };
        let decision = engine.decide_json(case.entry, &case.input).decision;
        // The Rego tests and explanations run on the interpreter: both
        // engines must agree on every case.
        let interpreted = builder()
            .with_compiled_engine(false)
            .load()
            .unwrap()
            .decide_json(case.entry, &case.input)
            .decision;
        assert_eq!(
            decision,
            interpreted,
            "{}: the compiled engine and the interpreter disagree",
            path.display()
        );
        let mut problems = Vec::new();
        if decision.verdict != case.expect.verdict {
            problems.push(format!(
                "verdict {} instead of {}",
                decision.verdict, case.expect.verdict
            ));
        }
        for want in &case.expect.reasons {
            if !decision.reasons.iter().any(|r| r.contains(want.as_str())) {
                problems.push(format!("no reason contains {want:?}"));
            }
        }
        if let Some(want) = &case.expect.obligations
            && *want != decision.obligations
        {
            problems.push(format!("obligations {:?}", decision.obligations));
        }
        if !problems.is_empty() {
            failures.push(format!(
                "{} ({}): {}; reasons: {:?}",
                path.file_name().unwrap().to_string_lossy(),
                case.description,
                problems.join(", "),
                decision.reasons
            ));
        }
    }
    let untested: Vec<Entry> = Entry::ALL
        .into_iter()
        .filter(|e| !entries.contains(e))
        .collect();
    assert!(untested.is_empty(), "no case exercises {untested:?}");
    assert!(
        failures.is_empty(),
        "failing cases:\n{}",
        failures.join("\n")
    );
}
