//! Builtins cannot exhaust the host: a call that would build more than the
//! evaluation's limits fails, and the decision denies naming the limit.
//! (How fast that happens is measured by benches, not asserted here.)

use std::time::Duration;

use warden_policy::{
    DEFAULT_MAX_BUILTIN_BYTES, DEFAULT_MAX_BUILTIN_ELEMENTS, Entry, POLICY_ERROR_PREFIX,
    PolicyEngine, PolicyEngineBuilder, RegoQuery,
};
use warden_types::Verdict;

use crate::{bundle, call_returning};

const EMPTY: &str = r#""deny": set(), "approval": set(), "obligations": {}"#;

/// A bundle whose `call` allows when `condition` holds, after `rules`.
fn policy(rules: &str, condition: &str) -> String {
    format!("package warden\n\n{rules}\ncall := {{\"allow\": {condition}, {EMPTY}}}\n")
}

/// Decide an empty call input on the compiled engine and on the
/// interpreter; `configure` adjusts the builder.
fn decide_with(
    rego: &str,
    configure: impl Fn(PolicyEngineBuilder) -> PolicyEngineBuilder,
) -> [(Verdict, Vec<String>); 2] {
    let dir = bundle(&[("p.rego", rego)]);
    [true, false].map(|compiled| {
        let engine = configure(PolicyEngine::builder(dir.path()).with_compiled_engine(compiled))
            .load()
            .unwrap();
        assert_eq!(engine.summary().compiled, compiled, "{rego}");
        let decision = engine
            .decide_json(Entry::Call, &serde_json::json!({}))
            .decision;
        (decision.verdict, decision.reasons)
    })
}

/// Both engines deny with one `policy error` reason holding every fragment.
fn assert_denied(rego: &str, fragments: &[&str]) {
    assert_denied_with(rego, |b| b, fragments);
}

fn assert_denied_with(
    rego: &str,
    configure: impl Fn(PolicyEngineBuilder) -> PolicyEngineBuilder,
    fragments: &[&str],
) {
    for (engine, (verdict, reasons)) in ["compiled", "interpreter"]
        .iter()
        .zip(decide_with(rego, configure))
    {
        assert_eq!(verdict, Verdict::Deny, "{engine}: {reasons:?}");
        assert_eq!(reasons.len(), 1, "{engine}: {reasons:?}");
        assert!(
            reasons[0].starts_with(POLICY_ERROR_PREFIX),
            "{engine}: {reasons:?}"
        );
        for fragment in fragments {
            assert!(
                reasons[0].contains(fragment),
                "{engine}: {fragment:?} not in {reasons:?}"
            );
        }
    }
}

fn assert_allowed(rego: &str) {
    for (engine, (verdict, reasons)) in ["compiled", "interpreter"]
        .iter()
        .zip(decide_with(rego, |b| b))
    {
        assert_eq!(verdict, Verdict::Allow, "{engine}: {reasons:?}");
    }
}

fn element_limit() -> String {
    format!("builtin element limit of {DEFAULT_MAX_BUILTIN_ELEMENTS} per evaluation")
}

fn byte_limit() -> String {
    format!("builtin byte limit of {DEFAULT_MAX_BUILTIN_BYTES} per evaluation")
}

#[test]
fn a_hundred_million_element_range_denies_naming_the_element_limit() {
    let rego = call_returning(&format!(
        "{{\"allow\": count(numbers.range(1, 1e8)) > 0, {EMPTY}}}"
    ));
    assert_denied(
        &rego,
        &[
            "numbers.range would build 100000000 elements",
            &element_limit(),
        ],
    );
}

#[test]
fn a_billion_element_range_denies_instead_of_aborting_the_process() {
    let rego = policy(
        "",
        "count([x | some x in numbers.range(1, 1e9); x > 5]) > 0",
    );
    assert_denied(
        &rego,
        &[
            "numbers.range would build 1000000000 elements",
            &element_limit(),
        ],
    );
}

#[test]
fn a_range_bound_taken_from_the_input_is_checked_at_call_time() {
    let rego = policy(
        "n := 1e9 if not input.small\n",
        "count(numbers.range(1, n)) > 0",
    );
    assert_denied(&rego, &["numbers.range", &element_limit()]);
}

#[test]
fn a_huge_stepped_range_denies_naming_the_element_limit() {
    let rego = policy("", "count(numbers.range_step(0, 1e15, 7)) > 0");
    assert_denied(&rego, &["numbers.range_step would build", &element_limit()]);
}

#[test]
fn expanding_a_whole_address_space_denies_naming_the_element_limit() {
    let rego = policy("", r#"count(net.cidr_expand("::/0")) > 0"#);
    assert_denied(&rego, &["net.cidr_expand would build", &element_limit()]);
}

#[test]
fn sprintf_padding_to_a_hundred_megabytes_denies_naming_the_byte_limit() {
    let rego = policy("", r#"count(sprintf("%0100000000d", [1])) > 0"#);
    assert_denied(&rego, &["sprintf would build", &byte_limit()]);
}

#[test]
fn a_string_doubled_by_a_chain_of_rules_denies_naming_the_byte_limit() {
    let mut rules = String::from("s0 := \"0123456789abcdef\"\n");
    for level in 1..=40 {
        rules.push_str(&format!(
            "s{level} := concat(\"\", [s{prev}, s{prev}])\n",
            prev = level - 1
        ));
    }
    assert_denied(
        &policy(&rules, "count(s40) > 0"),
        &["concat would build", &byte_limit()],
    );
}

#[test]
fn an_array_doubled_by_a_chain_of_rules_denies_naming_the_element_limit() {
    let mut rules = String::from("a0 := [1, 2, 3, 4]\n");
    for level in 1..=40 {
        rules.push_str(&format!(
            "a{level} := array.concat(a{prev}, a{prev})\n",
            prev = level - 1
        ));
    }
    assert_denied(
        &policy(&rules, "count(a40) > 0"),
        &["array.concat would build", &element_limit()],
    );
}

#[test]
fn marshalling_a_value_that_shares_its_parts_denies_naming_the_byte_limit() {
    // Forty levels of `[x, x]` take forty small arrays in memory and would
    // print to terabytes.
    let mut rules = String::from("l0 := [\"0123456789\"]\n");
    for level in 1..=40 {
        rules.push_str(&format!(
            "l{level} := [l{prev}, l{prev}]\n",
            prev = level - 1
        ));
    }
    assert_denied(
        &policy(&rules, "count(json.marshal(l40)) > 0"),
        &["json.marshal would build", &byte_limit()],
    );
}

#[test]
fn walking_a_value_that_shares_its_parts_denies_naming_the_element_limit() {
    let mut rules = String::from("l0 := [1]\n");
    for level in 1..=40 {
        rules.push_str(&format!(
            "l{level} := [l{prev}, l{prev}]\n",
            prev = level - 1
        ));
    }
    assert_denied(
        &policy(&rules, "count(walk(l40)) > 0"),
        &["walk would build", &element_limit()],
    );
}

#[test]
fn replacing_into_a_huge_string_denies_naming_the_byte_limit() {
    let rego = policy(
        "big := sprintf(\"%0100000d\", [0])\n",
        r#"count(replace(big, "0", "0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz")) > 0"#,
    );
    assert_denied(&rego, &["replace would build", &byte_limit()]);
}

#[test]
fn a_nested_comprehension_blowup_denies_naming_the_budget_it_ran_over() {
    let rego = policy(
        "",
        "count([x | some i in numbers.range(1, 100000); some j in numbers.range(1, 100000); x := i * j]) > 0",
    );
    let [
        (compiled_verdict, compiled),
        (interpreted_verdict, interpreted),
    ] = decide_with(&rego, |b| b);
    assert_eq!(compiled_verdict, Verdict::Deny, "{compiled:?}");
    assert_eq!(interpreted_verdict, Verdict::Deny, "{interpreted:?}");
    // Whichever budget runs out first is named: instructions on the
    // compiled engine, else the clock or the element budget shared by the
    // inner range's repeated builds.
    for reasons in [&compiled, &interpreted] {
        assert_eq!(reasons.len(), 1, "{reasons:?}");
        let reason = &reasons[0];
        assert!(reason.starts_with(POLICY_ERROR_PREFIX), "{reason}");
        assert!(
            reason.contains("budget of 1000000 instructions")
                || reason.contains("time budget of 100 ms")
                || reason.contains(&element_limit()),
            "{reason}"
        );
    }
}

#[test]
fn the_limits_are_per_evaluation_and_set_by_the_builder() {
    // Two ranges of 60 fit a budget of 100 elements one at a time, not
    // together.
    let rego = policy(
        "",
        "count(numbers.range(1, 60)) + count(numbers.range(1, 60)) == 120",
    );
    assert_denied_with(
        &rego,
        |b| b.with_max_builtin_elements(100),
        &[
            "numbers.range would build 60 elements",
            "builtin element limit of 100 per evaluation",
            "60 already built",
        ],
    );
    let rego = policy("", r#"count(concat("-", ["abc", "def"])) == 7"#);
    assert_denied_with(
        &rego,
        |b| b.with_max_builtin_bytes(5),
        &[
            "concat would build 7 bytes",
            "builtin byte limit of 5 per evaluation",
        ],
    );
}

#[test]
fn each_evaluation_starts_with_a_full_budget() {
    let dir = bundle(&[("p.rego", &policy("", "count(numbers.range(1, 80)) == 80"))]);
    for compiled in [true, false] {
        let engine = PolicyEngine::builder(dir.path())
            .with_compiled_engine(compiled)
            .with_max_builtin_elements(100)
            .load()
            .unwrap();
        for _ in 0..3 {
            let decision = engine
                .decide_json(Entry::Call, &serde_json::json!({}))
                .decision;
            assert_eq!(decision.verdict, Verdict::Allow, "{:?}", decision.reasons);
        }
    }
}

#[test]
fn a_long_range_stops_at_the_deadline_while_it_is_being_built() {
    let rego = policy("", "count(numbers.range(1, 1000000)) > 0");
    assert_denied_with(
        &rego,
        |b| b.with_timeout(Duration::from_millis(5)),
        &["time budget of 5 ms", "numbers.range"],
    );
}

#[test]
fn guarded_builtins_still_compute_what_regorus_computes() {
    assert_allowed(&policy(
        r##"ok if {
    numbers.range(3, 1) == [3, 2, 1]
    numbers.range_step(10, 1, 3) == [10, 7, 4, 1]
    numbers.range_step(1, 10, 4) == [1, 5, 9]
    array.concat([1], [2, 3]) == [1, 2, 3]
    concat("-", ["a", "b"]) == "a-b"
    sprintf("%05d|%s|%v", [42, "x", [1]]) == "00042|x|[1]"
    replace("abab", "b", "c") == "acac"
    strings.replace_n({"a": "xy"}, "aba") == "xybxy"
    regex.replace("a1b2", "[0-9]", "#") == "a#b#"
    split("a,b", ",") == ["a", "b"]
    indexof_n("abab", "ab") == [0, 2]
    json.marshal({"a": [1]}) == "{\"a\":[1]}"
    hex.encode("hi") == "6869"
    base64.encode("hi") == "aGk="
    count(net.cidr_expand("10.0.0.0/30")) == 4
}
"##,
        "ok",
    ));
}

#[test]
fn non_strict_queries_still_fail_on_a_limit() {
    let query = RegoQuery {
        query: "x := count(numbers.range(1, 1e9))".into(),
        ..RegoQuery::default()
    };
    let error = query.run().unwrap_err().to_string();
    assert!(
        error.contains("numbers.range would build 1000000000 elements"),
        "{error}"
    );
}

#[test]
fn a_rego_test_over_a_limit_is_an_error_naming_it() {
    let dir = bundle(&[
        ("p.rego", "package t\n\nn := 1e9\n"),
        (
            "p_test.rego",
            "package t\n\ntest_range if count(numbers.range(1, n)) > 0\n",
        ),
    ]);
    let report = warden_policy::run_tests(dir.path()).unwrap();
    let failure = report.failures().next().unwrap();
    let text = format!("{:?}", failure.outcome);
    assert!(text.contains("numbers.range would build"), "{text}");
    assert!(text.contains(&element_limit()), "{text}");
}
