//! A policy that cannot decide denies; a bundle that cannot load is an error.

use std::time::Duration;

use warden_policy::{Entry, POLICY_ERROR_PREFIX, PolicyEngine, PolicyError};
use warden_types::Verdict;

use crate::{bundle, call_returning};

const EMPTY: &str = r#""deny": set(), "approval": set(), "obligations": {}"#;

/// Decide an empty call input with a one-file bundle, on both engines; they
/// must agree.
fn decide(rego: &str) -> Vec<String> {
    let dir = bundle(&[("p.rego", rego)]);
    let [compiled, interpreted] = [true, false].map(|compiled| {
        let engine = PolicyEngine::builder(dir.path())
            .with_timeout(Duration::from_millis(50))
            .with_compiled_engine(compiled)
            .load()
            .unwrap();
        let decision = engine
            .decide_json(Entry::Call, &serde_json::json!({}))
            .decision;
        assert_eq!(decision.verdict, Verdict::Deny);
        decision.reasons
    });
    assert_eq!(
        compiled.len(),
        interpreted.len(),
        "{compiled:?} / {interpreted:?}"
    );
    compiled
}

fn assert_policy_error(reasons: &[String], fragment: &str) {
    assert_eq!(reasons.len(), 1, "{reasons:?}");
    assert!(reasons[0].starts_with(POLICY_ERROR_PREFIX), "{reasons:?}");
    assert!(reasons[0].contains(fragment), "{reasons:?}");
}

#[test]
fn a_syntax_error_fails_the_load_naming_file_line_and_column() {
    let dir = bundle(&[
        ("ok.rego", "package warden\n\nx := 1\n"),
        (
            "broken.rego",
            "package warden\n\ncall := {\n  \"allow\": true,\n",
        ),
    ]);
    let err = PolicyEngine::load(dir.path()).unwrap_err();
    let PolicyError::Rego {
        file, line, column, ..
    } = &err
    else {
        panic!("expected a located error, got {err:?}");
    };
    assert!(file.ends_with("broken.rego"), "{err}");
    assert!(*line >= 3 && *column >= 1, "{err}");
    assert!(err.to_string().contains("broken.rego:"), "{err}");
}

#[test]
fn an_unsafe_variable_denies_with_a_policy_error() {
    let reasons = decide("package warden\n\ncall := x if {\n  y := 1\n}\n");
    assert_policy_error(&reasons, "");
}

#[test]
fn check_rejects_a_broken_test_file_that_decisions_never_load() {
    let dir = bundle(&[
        ("p.rego", "package warden\n\nx := 1\n"),
        ("p_test.rego", "package t\n\ntest_x if {\n"),
    ]);
    assert!(PolicyEngine::load(dir.path()).is_ok());
    let err = warden_policy::check(dir.path()).unwrap_err();
    assert!(err.to_string().contains("p_test.rego:"), "{err}");
}

#[test]
fn a_recursive_function_fails_the_load_instead_of_overflowing_the_stack() {
    let dir = bundle(&[(
        "p.rego",
        "package warden\n\nf(n) := g(n + 1)\n\ng(n) := f(n)\n\ncall := {\"allow\": f(1) > 0}\n",
    )]);
    let err = PolicyEngine::load(dir.path()).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("recursive"), "{text}");
    assert!(
        text.contains("data.warden.f -> data.warden.g -> data.warden.f")
            || text.contains("data.warden.g -> data.warden.f -> data.warden.g"),
        "{text}"
    );
}

#[test]
fn a_data_file_that_is_not_json_fails_the_load_naming_the_file() {
    let dir = bundle(&[
        ("p.rego", "package warden\n"),
        ("cfg/data.json", "{ not json"),
    ]);
    let err = PolicyEngine::load(dir.path()).unwrap_err();
    assert!(
        matches!(&err, PolicyError::Data { file, .. } if file.ends_with("cfg/data.json")),
        "{err}"
    );
}

#[test]
fn a_rule_conflict_denies_with_a_policy_error() {
    let rego = format!(
        "package warden\n\ncall := {{\"allow\": true, {EMPTY}}} if true\n\ncall := {{\"allow\": false, {EMPTY}}} if true\n"
    );
    let reasons = decide(&rego);
    assert_policy_error(&reasons, "");
}

#[test]
fn a_function_conflict_denies_with_a_policy_error() {
    let rego = format!(
        "package warden\n\no := [\"1\", \"2\"]\n\nf(x) := o[_] == x\n\ncall := {{\"allow\": f(\"1\"), {EMPTY}}}\n"
    );
    assert_policy_error(&decide(&rego), "");
}

#[test]
fn an_undefined_decision_denies_with_a_policy_error() {
    let rego = format!("package warden\n\ncall := {{\"allow\": true, {EMPTY}}} if input.never\n");
    assert_policy_error(&decide(&rego), "undefined");
}

#[test]
fn a_missing_entry_point_denies_with_a_policy_error() {
    assert_policy_error(&decide("package warden\n\nx := 1\n"), "data.warden.call");
}

#[test]
fn a_non_boolean_allow_denies_with_a_policy_error() {
    let rego = call_returning(&format!("{{\"allow\": \"yes\", {EMPTY}}}"));
    assert_policy_error(&decide(&rego), "allow must be a boolean");
}

#[test]
fn a_decision_that_is_not_an_object_denies_with_a_policy_error() {
    assert_policy_error(&decide(&call_returning("true")), "must be an object");
}

#[test]
fn reasons_that_are_not_strings_deny_with_a_policy_error() {
    let rego =
        call_returning(r#"{"allow": true, "deny": {1}, "approval": set(), "obligations": {}}"#);
    assert_policy_error(&decide(&rego), "deny must be a set of strings");
}

#[test]
fn a_missing_field_denies_with_a_policy_error() {
    let rego = call_returning(r#"{"allow": true, "deny": set(), "approval": set()}"#);
    assert_policy_error(&decide(&rego), "obligations");
}

#[test]
fn a_builtin_error_at_call_time_denies_with_a_policy_error() {
    let rego = call_returning(&format!(
        "{{\"allow\": net.cidr_contains(\"not-a-cidr\", \"10.0.0.1\"), {EMPTY}}}"
    ));
    assert_policy_error(&decide(&rego), "");
}

#[test]
fn recursion_between_rules_fails_the_load() {
    let rego = format!("package warden\n\na if b\n\nb if a\n\ncall := {{\"allow\": a, {EMPTY}}}\n");
    let dir = bundle(&[("p.rego", &rego)]);
    let err = PolicyEngine::load(dir.path()).unwrap_err();
    assert!(err.to_string().contains("is recursive"), "{err}");
}

#[test]
fn locals_named_like_rules_are_not_taken_for_recursion() {
    let rego = format!(
        "package warden\n\nf(x) := x + 1\n\nx := f(2)\n\ng(n) := y if {{\n  y := n\n}}\n\ny := g(x)\n\ncall := {{\"allow\": y == 3, {EMPTY}}}\n"
    );
    let dir = bundle(&[("p.rego", &rego)]);
    let engine = PolicyEngine::load(dir.path()).unwrap();
    let decision = engine
        .decide_json(Entry::Call, &serde_json::json!({}))
        .decision;
    assert_eq!(decision.verdict, Verdict::Allow);
}

#[test]
fn a_time_budget_stops_a_long_evaluation_on_both_engines() {
    let rego = call_returning(&format!(
        "{{\"allow\": count([x | some i in numbers.range(1, 4000); some j in numbers.range(1, 4000); x := i * j]) > 0, {EMPTY}}}"
    ));
    let dir = bundle(&[("p.rego", &rego)]);
    for compiled in [true, false] {
        let engine = PolicyEngine::builder(dir.path())
            .with_timeout(Duration::from_millis(20))
            .with_max_instructions(usize::MAX)
            .with_compiled_engine(compiled)
            .load()
            .unwrap();
        assert_eq!(engine.summary().compiled, compiled);
        let reasons = engine
            .decide_json(Entry::Call, &serde_json::json!({}))
            .decision
            .reasons;
        assert_policy_error(&reasons, "time budget of 20 ms");
    }
}

#[test]
fn a_huge_comprehension_over_its_budget_denies_with_a_policy_error() {
    let rego = call_returning(&format!(
        "{{\"allow\": count([x | some i in numbers.range(1, 4000); some j in numbers.range(1, 4000); x := i * j]) > 0, {EMPTY}}}"
    ));
    assert_policy_error(&decide(&rego), "ran over its");
}

#[test]
fn an_endless_walk_over_a_deep_rule_chain_denies_with_a_policy_error() {
    // Every level doubles the work: far past any budget without the timer.
    let mut rego = String::from("package warden\n\nl0 := [1, 2]\n\n");
    for level in 1..=40 {
        rego.push_str(&format!(
            "l{level} := [x | some a in l{prev}; some b in l0; x := a + b]\n\n",
            prev = level - 1
        ));
    }
    rego.push_str(&format!("call := {{\"allow\": count(l40) > 0, {EMPTY}}}\n"));
    assert_policy_error(&decide(&rego), "ran over its");
}

#[test]
fn an_oversized_or_special_bundle_file_is_refused_at_load() {
    let dir = tempfile::tempdir().unwrap();
    fs_err::write(
        dir.path().join("p.rego"),
        "package warden\ncall := {\"allow\": true, \"deny\": set(), \"approval\": set(), \"obligations\": {}}\n",
    )
    .unwrap();
    // A sparse 17 MiB data file: refused by its size, never read.
    let data = fs_err::File::create(dir.path().join("data.json")).unwrap();
    data.set_len(17 * 1024 * 1024).unwrap();
    let err = PolicyEngine::load(dir.path()).unwrap_err().to_string();
    assert!(err.contains("data.json"), "{err}");
    assert!(err.contains("over the limit"), "{err}");
    // A FIFO named data.json would block a reader forever.
    fs_err::remove_file(dir.path().join("data.json")).unwrap();
    assert!(
        std::process::Command::new("mkfifo")
            .arg(dir.path().join("data.json"))
            .status()
            .unwrap()
            .success()
    );
    let err = PolicyEngine::load(dir.path()).unwrap_err().to_string();
    assert!(err.contains("not a regular file"), "{err}");
}
