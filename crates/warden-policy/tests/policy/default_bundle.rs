//! The shipped bundle: its Rego tests, its shape, explanations.

use warden_policy::{
    Entry, PlanStep, PolicyContext, PolicyEngine, PolicyInput, Principal, TestOutcome, ToolInfo,
    check, run_tests,
};
use warden_types::{Effect, ToolManifest, Verdict};

use crate::policies_dir;

fn tool(name: &str, effect: Effect) -> ToolManifest {
    ToolManifest {
        name: name.into(),
        version: "0.1.0".into(),
        description: String::new(),
        input_schema: serde_json::json!({"type": "object"}),
        output_schema: serde_json::json!({"type": "object"}),
        effect,
        supports_dry_run: false,
        capabilities: vec![],
    }
}

fn context(env: &str) -> PolicyContext {
    let mut ctx = PolicyContext::default();
    ctx.agent.name = "edge-01".into();
    ctx.agent.env = env.into();
    ctx.task.id = "t-1".into();
    ctx.now = "2026-11-27T00:00:00Z".into();
    ctx
}

#[test]
fn the_default_bundle_passes_its_own_rego_tests() {
    let report = run_tests(policies_dir()).unwrap();
    let failures: Vec<_> = report.failures().collect();
    assert!(failures.is_empty(), "{failures:#?}");
    assert!(report.passed() >= 80, "only {} tests ran", report.passed());
    for package in ["call", "capability", "plan", "approve", "env"] {
        let prefix = format!("data.warden_test.{package}.test_");
        assert!(
            report.results.iter().any(|r| r.name.starts_with(&prefix)),
            "no Rego test ran from warden_test.{package}"
        );
    }
    assert!(report.is_success());
}

#[test]
fn the_test_runner_reports_failing_and_erroring_tests() {
    let dir = crate::bundle(&[
        ("p.rego", "package t\n\nx := 1\n"),
        (
            "p_test.rego",
            "package t\n\ntest_ok if x == 1\n\ntest_wrong if x == 2\n\ntest_broken if to_number(\"nope\") == 1\n",
        ),
    ]);
    let report = run_tests(dir.path()).unwrap();
    assert_eq!(report.passed(), 1);
    let outcomes: Vec<_> = report
        .failures()
        .map(|r| (&r.name[..], &r.outcome))
        .collect();
    assert!(matches!(
        outcomes[0],
        ("data.t.test_wrong", TestOutcome::Fail { .. })
    ));
    assert!(matches!(
        outcomes[1],
        ("data.t.test_broken", TestOutcome::Error { .. })
    ));
    assert!(!report.is_success());
}

#[test]
fn check_lists_the_bundle_and_finds_every_entry_point() {
    let summary = check(policies_dir()).unwrap();
    assert!(summary.missing_entries.is_empty());
    assert!(summary.packages.contains(&"data.warden".to_string()));
    assert!(
        summary
            .test_files
            .iter()
            .any(|f| f.ends_with("call_test.rego"))
    );
    assert_eq!(summary.hash.len(), 64);
}

#[test]
fn test_files_do_not_change_the_bundle_hash_but_data_does() {
    let base = [
        ("p.rego", "package warden\n\nx := 1\n"),
        ("data.json", r#"{"a": 1}"#),
    ];
    let a = crate::bundle(&base);
    let b = crate::bundle(&[
        base[0],
        base[1],
        ("p_test.rego", "package t\n\ntest_x if true\n"),
    ]);
    let c = crate::bundle(&[base[0], ("data.json", r#"{"a": 2}"#)]);
    let hash = |d: &tempfile::TempDir| check(d.path()).unwrap().hash;
    assert_eq!(hash(&a), hash(&b));
    assert_ne!(hash(&a), hash(&c));
}

#[test]
fn typed_call_and_plan_inputs_reach_the_policy() {
    let engine = PolicyEngine::load(policies_dir()).unwrap();
    let prod = context("prod");
    let restart = tool("restart-service", Effect::Mutating);
    let call = PolicyInput::call(&prod, &restart, serde_json::json!({}), "s1", false);
    assert_eq!(
        engine.decide(Entry::Call, &call).decision.verdict,
        Verdict::NeedsApproval
    );

    let staging = context("staging");
    let call = PolicyInput::call(&staging, &restart, serde_json::json!({}), "s1", false);
    assert_eq!(
        engine.decide(Entry::Call, &call).decision.verdict,
        Verdict::Allow
    );

    let wipe = tool("wipe-volume", Effect::Destructive);
    let steps = vec![PlanStep {
        id: "s1".into(),
        tool: ToolInfo::from(&wipe),
        args: serde_json::json!({}),
        dry_run: false,
    }];
    let plan = PolicyInput::plan(&prod, steps.clone());
    let record = engine.decide(Entry::Plan, &plan);
    assert_eq!(record.decision.verdict, Verdict::Deny);
    let mut glass = prod.clone();
    glass.task.break_glass = Some("CHG-1".into());
    let plan = PolicyInput::plan(&glass, steps);
    assert_eq!(
        engine.decide(Entry::Plan, &plan).decision.verdict,
        Verdict::NeedsApproval
    );
}

#[test]
fn typed_approvals_refuse_self_approval_in_prod_only() {
    let engine = PolicyEngine::load(policies_dir()).unwrap();
    let restart = tool("restart-service", Effect::Mutating);
    let mut prod = context("prod");
    prod.principal.id = "alice".into();
    let call = PolicyInput::call(&prod, &restart, serde_json::json!({}), "s1", false);
    let reasons = engine.decide(Entry::Call, &call).decision.reasons;

    let alice = Principal {
        id: "alice".into(),
        roles: vec!["sre".into()],
    };
    let bob = Principal {
        id: "bob".into(),
        roles: vec![],
    };
    let approve = |ctx: &PolicyContext, approver: &Principal| {
        let input = PolicyInput::approve(
            ctx,
            &restart,
            serde_json::json!({}),
            "s1",
            approver,
            &reasons,
        );
        engine.decide(Entry::Approve, &input).decision
    };
    let own = approve(&prod, &alice);
    assert_eq!(own.verdict, Verdict::Deny);
    assert_eq!(
        own.reasons,
        [
            "`alice` cannot approve their own call in `prod`; another person must approve it, or the bundle must set warden.config.allow_self_approval."
        ]
    );
    assert_eq!(approve(&prod, &bob).verdict, Verdict::Allow);
    let mut staging = prod.clone();
    staging.agent.env = "staging".into();
    assert_eq!(approve(&staging, &alice).verdict, Verdict::Allow);

    let lenient = PolicyEngine::builder(policies_dir())
        .with_data(serde_json::json!({"warden": {"config": {"allow_self_approval": true}}}))
        .load()
        .unwrap();
    let input = PolicyInput::approve(
        &prod,
        &restart,
        serde_json::json!({}),
        "s1",
        &alice,
        &reasons,
    );
    assert_eq!(
        lenient.decide(Entry::Approve, &input).decision.verdict,
        Verdict::Allow
    );
}

#[test]
fn a_bundle_without_an_approve_entry_refuses_every_approval() {
    let dir = crate::bundle(&[(
        "p.rego",
        &crate::call_returning(
            r#"{"allow": true, "deny": set(), "approval": set(), "obligations": {}}"#,
        ),
    )]);
    let engine = PolicyEngine::load(dir.path()).unwrap();
    assert!(engine.summary().missing_entries.contains(&Entry::Approve));
    let decision = engine
        .decide_json(
            Entry::Approve,
            &serde_json::json!({"approver": {"id": "bob"}}),
        )
        .decision;
    assert_eq!(decision.verdict, Verdict::Deny);
    assert!(
        decision.reasons[0].contains("data.warden.approve"),
        "{decision:?}"
    );
}

#[test]
fn records_carry_the_input_and_bundle_hashes() {
    let engine = PolicyEngine::load(policies_dir()).unwrap();
    let input = PolicyInput::call(
        &context("dev"),
        &tool("t", Effect::ReadOnly),
        serde_json::json!({}),
        "s",
        false,
    );
    let a = engine.decide(Entry::Call, &input);
    let b = engine.decide(Entry::Call, &input);
    assert_eq!(a.input_hash, b.input_hash);
    assert_eq!(a.bundle_hash, engine.summary().hash);
    let other = PolicyInput::call(
        &context("prod"),
        &tool("t", Effect::ReadOnly),
        serde_json::json!({}),
        "s",
        false,
    );
    assert_ne!(engine.decide(Entry::Call, &other).input_hash, a.input_hash);
}

#[test]
fn explain_names_the_rule_behind_each_reason() {
    let engine = PolicyEngine::load(policies_dir()).unwrap();
    let mut ctx = context("prod");
    ctx.history.mutations_last_hour = 30;
    let input = PolicyInput::call(
        &ctx,
        &tool("wipe-volume", Effect::Destructive),
        serde_json::json!({}),
        "s1",
        false,
    );
    let explanation = engine.explain(Entry::Call, &serde_json::to_value(&input).unwrap());
    assert_eq!(explanation.record.decision.verdict, Verdict::Deny);
    assert_eq!(explanation.reasons.len(), 2);
    for reason in &explanation.reasons {
        assert_eq!(reason.rules.len(), 1, "{reason:?}");
        let rule = &reason.rules[0];
        assert_eq!(rule.rule, "data.warden.rules.call.deny");
        assert!(rule.file.ends_with("call.rego"));
        assert!(rule.title.is_some());
    }
    let titles: Vec<_> = explanation
        .reasons
        .iter()
        .map(|r| r.rules[0].title.clone().unwrap())
        .collect();
    assert!(
        titles.iter().any(|t| t.starts_with("Rate limit")),
        "{titles:?}"
    );
}

#[test]
fn decisions_fit_on_a_small_thread_stack() {
    // Gates run on the guest's call path, e.g. on a wasmtime fiber stack.
    let engine = PolicyEngine::load(policies_dir()).unwrap();
    let input = PolicyInput::call(
        &context("prod"),
        &tool("azure-deploy", Effect::Mutating),
        serde_json::json!({
            "resources": [{"type": "Microsoft.Compute/virtualMachines", "name": "vm", "location": "westeurope", "sku": "Standard_B2s"}]
        }),
        "s1",
        false,
    );
    let verdict = std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || engine.decide(Entry::Call, &input).decision.verdict)
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(verdict, Verdict::NeedsApproval);
}

#[test]
fn a_full_size_azure_plan_fits_in_the_instruction_budget() {
    let engine = PolicyEngine::load(policies_dir()).unwrap();
    let deploy = tool("azure-deploy", Effect::Mutating);
    let steps: Vec<PlanStep> = (0..50)
        .map(|i| PlanStep {
            id: format!("s{i}"),
            tool: ToolInfo::from(&deploy),
            args: serde_json::json!({"resources": [
                {"type": "Microsoft.Compute/virtualMachines", "name": format!("vm-{i}"), "location": "westeurope", "sku": "Standard_B2s"},
                {"type": "Microsoft.Network/networkInterfaces", "name": format!("nic-{i}"), "location": "westeurope"}
            ]}),
            dry_run: false,
        })
        .collect();
    let mut ctx = context("staging");
    ctx.history.mutations_last_hour = 0;
    let plan = PolicyInput::plan(&ctx, steps);
    let decision = engine.decide(Entry::Plan, &plan).decision;
    assert!(
        decision
            .reasons
            .iter()
            .all(|r| !r.starts_with("policy error")),
        "{decision:?}"
    );
    // 50 changes against a limit of 20 per hour.
    assert_eq!(decision.verdict, Verdict::Deny);
    assert!(
        decision.reasons[0].contains("makes 50 changes"),
        "{decision:?}"
    );
    assert!(decision.obligations.contains_key("cost_ceiling"));
}
