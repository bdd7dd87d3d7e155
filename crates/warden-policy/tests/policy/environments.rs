//! Environments as bundle data: canonical names, the default, load checks.

use warden_policy::{Entry, PolicyEngine, PolicyError};
use warden_types::Verdict;

use crate::{bundle, call_returning, policies_dir};

const ALLOW: &str = r#"{"allow": true, "deny": set(), "approval": set(), "obligations": {}}"#;

/// A one-entry bundle whose data.json holds `environments`.
fn with_environments(environments: &str) -> tempfile::TempDir {
    let data = format!(r#"{{"warden": {{"config": {{"environments": {environments}}}}}}}"#);
    bundle(&[("p.rego", &call_returning(ALLOW)), ("data.json", &data)])
}

fn load_error(environments: &str) -> String {
    let dir = with_environments(environments);
    let err = PolicyEngine::load(dir.path()).unwrap_err();
    assert!(matches!(err, PolicyError::Config { .. }), "{err:?}");
    err.to_string()
}

#[test]
fn spellings_of_prod_canonicalise_to_prod() {
    let envs = PolicyEngine::load(policies_dir()).unwrap().environments();
    for name in [
        "Prod",
        "PROD",
        " prod ",
        "prod\n",
        "production",
        "Production",
        "PRD",
    ] {
        assert_eq!(envs.canonical(name).unwrap(), "prod", "{name:?}");
    }
    assert_eq!(envs.canonical("stg").unwrap(), "staging");
    assert_eq!(envs.canonical("Development").unwrap(), "dev");
}

#[test]
fn an_unknown_environment_is_an_error_listing_the_known_ones() {
    let envs = PolicyEngine::load(policies_dir()).unwrap().environments();
    let err = envs.canonical("qa").unwrap_err();
    let PolicyError::UnknownEnvironment { name, known } = &err else {
        panic!("expected UnknownEnvironment, got {err:?}");
    };
    assert_eq!(name, "qa");
    assert_eq!(known, &["dev", "prod", "staging"]);
    assert_eq!(
        err.to_string(),
        "environment `qa` is not known to the policy bundle (known: dev, prod, staging)"
    );
    assert!(envs.canonical("   ").is_err());
}

#[test]
fn the_default_bundle_defaults_to_prod_and_protects_only_prod() {
    let envs = PolicyEngine::load(policies_dir()).unwrap().environments();
    assert_eq!(envs.default_env(), "prod");
    assert_eq!(envs.known(), ["dev", "staging", "prod"]);
    assert!(envs.is_protected("prod"));
    assert!(!envs.is_protected("staging"));
    assert!(!envs.is_protected("dev"));
}

#[test]
fn every_canonical_name_is_accepted_by_the_bundle_and_every_alias_is_refused() {
    // The host's canonical names and the Rego check must agree.
    let engine = PolicyEngine::load(policies_dir()).unwrap();
    let envs = engine.environments();
    let input = |env: &str| {
        serde_json::json!({
            "agent": {"name": "edge-01", "env": env},
            "principal": {"id": "alice", "roles": []},
            "task": {"id": "t-1"},
            "tool": {"name": "disk-usage", "version": "0.1.0", "effect": "read-only"},
            "call": {"args": {}, "step": "s1", "dry_run": false},
            "history": {"calls_in_task": 0, "mutations_last_hour": 0},
            "now": "2026-11-27T00:00:00Z",
        })
    };
    for env in envs.known() {
        let verdict = engine
            .decide_json(Entry::Call, &input(env))
            .decision
            .verdict;
        assert_eq!(verdict, Verdict::Allow, "{env}");
    }
    for alias in ["production", "Prod", "prod "] {
        let decision = engine.decide_json(Entry::Call, &input(alias)).decision;
        assert_eq!(decision.verdict, Verdict::Deny, "{alias:?}");
        assert!(decision.reasons[0].contains("is not known"), "{decision:?}");
    }
}

#[test]
fn a_bundle_without_environments_lowercases_any_name() {
    let dir = bundle(&[("p.rego", &call_returning(ALLOW))]);
    let envs = PolicyEngine::load(dir.path()).unwrap().environments();
    assert_eq!(envs.canonical(" QA ").unwrap(), "qa");
    assert_eq!(envs.canonical("Production").unwrap(), "production");
    assert!(envs.canonical("").is_err());
    assert_eq!(envs.default_env(), "prod");
    assert!(envs.known().is_empty());
    assert!(!envs.is_protected("prod"));
}

#[test]
fn a_default_outside_the_known_environments_fails_the_load() {
    let err =
        load_error(r#"{"known": ["dev", "prod"], "default": "staging", "protected": ["prod"]}"#);
    assert!(
        err.contains("data.warden.config.environments.default"),
        "{err}"
    );
    assert!(err.contains("`staging`"), "{err}");
}

#[test]
fn an_alias_to_an_unknown_environment_fails_the_load() {
    let err = load_error(
        r#"{"known": ["dev", "prod"], "aliases": {"stage": "staging"}, "default": "prod", "protected": ["prod"]}"#,
    );
    assert!(
        err.contains("data.warden.config.environments.aliases.stage"),
        "{err}"
    );
}

#[test]
fn environments_data_of_the_wrong_type_fails_the_load() {
    for (environments, path) in [
        (
            r#""prod""#,
            "data.warden.config.environments must be an object",
        ),
        (
            r#"{"known": "prod", "default": "prod", "protected": []}"#,
            "data.warden.config.environments.known",
        ),
        (
            r#"{"known": ["prod"], "default": 1, "protected": []}"#,
            "data.warden.config.environments.default",
        ),
        (
            r#"{"known": ["prod"], "default": "prod", "protected": "prod"}"#,
            "data.warden.config.environments.protected",
        ),
        (
            r#"{"known": ["prod"], "default": "prod", "protected": [], "aliases": ["prd"]}"#,
            "data.warden.config.environments.aliases",
        ),
        (
            r#"{"known": ["prod"], "default": "prod"}"#,
            "data.warden.config.environments.protected is missing",
        ),
        (
            r#"{"known": ["prod"], "default": "prod", "protected": ["staging"]}"#,
            "data.warden.config.environments.protected names `staging`",
        ),
    ] {
        let err = load_error(environments);
        assert!(err.contains(path), "{environments}: {err}");
    }
}

#[test]
fn a_data_overlay_that_breaks_the_environments_fails_the_load() {
    let err = PolicyEngine::builder(policies_dir())
        .with_data(serde_json::json!({"warden": {"config": {"environments": {"default": "qa"}}}}))
        .load()
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("data.warden.config.environments.default"),
        "{err}"
    );
}

#[test]
fn a_non_boolean_allow_self_approval_fails_the_load() {
    let dir = bundle(&[
        ("p.rego", &call_returning(ALLOW)),
        (
            "data.json",
            r#"{"warden": {"config": {"allow_self_approval": "yes"}}}"#,
        ),
    ]);
    let err = PolicyEngine::load(dir.path()).unwrap_err();
    assert!(
        err.to_string()
            .contains("data.warden.config.allow_self_approval"),
        "{err}"
    );
}

#[test]
fn settings_the_rules_would_deny_everything_for_fail_the_load() {
    for (config, path) in [
        (
            r#"{"max_mutations_per_hour": "lots"}"#,
            "max_mutations_per_hour",
        ),
        (
            r#"{"max_mutations_per_hour": -1}"#,
            "max_mutations_per_hour",
        ),
        (
            r#"{"max_mutations_per_hour_per_principal": null}"#,
            "max_mutations_per_hour_per_principal",
        ),
        (r#"{"max_plan_steps": "50"}"#, "max_plan_steps"),
        (r#"{"approval_envs": "prod"}"#, "approval_envs"),
        (r#"{"break_glass_envs": ["prod", 1]}"#, "break_glass_envs"),
        (r#""oops""#, "data.warden.config must be an object"),
    ] {
        let data = format!(r#"{{"warden": {{"config": {config}}}}}"#);
        let dir = bundle(&[("p.rego", &call_returning(ALLOW)), ("data.json", &data)]);
        let err = PolicyEngine::load(dir.path()).unwrap_err();
        assert!(
            matches!(err, PolicyError::Config { .. }),
            "{config}: {err:?}"
        );
        assert!(err.to_string().contains(path), "{config}: {err}");
    }
}

#[test]
fn a_bundle_or_overlay_cannot_vouch_for_its_own_settings() {
    // data.warden.host.checked_config lets the rules skip their settings
    // checks; only the host may write it, after checking.
    let vouching = r#"{"warden": {"host": {"checked_config": {"max_mutations_per_hour": 5}}, "config": {"max_mutations_per_hour": 5}}}"#;
    let dir = bundle(&[("p.rego", &call_returning(ALLOW)), ("data.json", vouching)]);
    let err = PolicyEngine::load(dir.path()).unwrap_err();
    assert!(err.to_string().contains("data.warden.host"), "{err}");

    let dir = bundle(&[
        ("p.rego", &call_returning(ALLOW)),
        ("warden/host/data.json", r#"{"checked_config": {}}"#),
    ]);
    let err = PolicyEngine::load(dir.path()).unwrap_err();
    assert!(err.to_string().contains("data.warden.host"), "{err}");

    let err = PolicyEngine::builder(policies_dir())
        .with_data(serde_json::json!({"warden": {"host": {"checked_config": {}}}}))
        .load()
        .unwrap_err();
    assert!(err.to_string().contains("data.warden.host"), "{err}");
}

#[test]
fn settings_changed_after_the_check_are_checked_again_by_the_rules() {
    // The shipped rules skip their settings checks only while the settings
    // are the ones the host checked; settings swapped in afterwards (a
    // test's `with`) are checked on every decision.
    let rules = r#"package warden

import data.warden.lib.input_errors

errors := e if {
	"swap" in object.keys(input)
	e := input_errors with data.warden.config.max_mutations_per_hour as input.swap
}

errors := input_errors if not "swap" in object.keys(input)

call := {"allow": count(errors) == 0, "deny": errors, "approval": set(), "obligations": {}}
"#;
    let shipped = |name: &str| fs_err::read_to_string(policies_dir().join(name)).unwrap();
    let dir = bundle(&[
        ("p.rego", rules),
        ("lib.rego", &shipped("lib.rego")),
        ("fn.rego", &shipped("fn.rego")),
    ]);
    let engine = PolicyEngine::load(dir.path()).unwrap();
    let decide = |input: serde_json::Value| engine.decide_json(Entry::Call, &input).decision;
    let agent = serde_json::json!({"name": "a", "env": "dev"});

    let checked = decide(serde_json::json!({"agent": agent}));
    assert_eq!(checked.verdict, Verdict::Allow, "{checked:?}");
    let swapped_ok = decide(serde_json::json!({"agent": agent, "swap": 5}));
    assert_eq!(swapped_ok.verdict, Verdict::Allow, "{swapped_ok:?}");
    let swapped_bad = decide(serde_json::json!({"agent": agent, "swap": "lots"}));
    assert_eq!(swapped_bad.verdict, Verdict::Deny, "{swapped_bad:?}");
    assert!(
        swapped_bad
            .reasons
            .iter()
            .any(|r| r.contains("max_mutations_per_hour is not a number")),
        "{swapped_bad:?}"
    );
}

#[test]
fn reload_reads_the_environments_again() {
    let dir = with_environments(
        r#"{"known": ["dev", "prod"], "default": "prod", "protected": ["prod"]}"#,
    );
    let engine = PolicyEngine::load(dir.path()).unwrap();
    assert!(engine.environments().canonical("lab").is_err());
    fs_err::write(
        dir.path().join("data.json"),
        r#"{"warden": {"config": {"environments": {"known": ["dev", "lab", "prod"], "default": "lab", "protected": ["prod"]}}}}"#,
    )
    .unwrap();
    engine.reload().unwrap();
    let envs = engine.environments();
    assert_eq!(envs.canonical("LAB").unwrap(), "lab");
    assert_eq!(envs.default_env(), "lab");
}

#[test]
fn a_broken_reload_keeps_the_old_environments() {
    let dir = with_environments(
        r#"{"known": ["dev", "prod"], "default": "prod", "protected": ["prod"]}"#,
    );
    let engine = PolicyEngine::load(dir.path()).unwrap();
    fs_err::write(
        dir.path().join("data.json"),
        r#"{"warden": {"config": {"environments": {"known": ["dev"], "default": "prod", "protected": []}}}}"#,
    )
    .unwrap();
    assert!(engine.reload().is_err());
    assert_eq!(engine.environments().known(), ["dev", "prod"]);
}

#[test]
fn the_default_rules_without_environments_data_accept_any_name_on_both_engines() {
    // The shipped rules, with data.json stripped of `environments`: the
    // fallback paths must behave alike compiled and interpreted.
    let dir = tempfile::tempdir().unwrap();
    for entry in fs_err::read_dir(policies_dir()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".rego") && !name.ends_with("_test.rego") {
            fs_err::copy(&path, dir.path().join(&name)).unwrap();
        }
    }
    let mut data: serde_json::Value =
        serde_json::from_str(&fs_err::read_to_string(policies_dir().join("data.json")).unwrap())
            .unwrap();
    data["warden"]["config"]
        .as_object_mut()
        .unwrap()
        .remove("environments");
    fs_err::write(dir.path().join("data.json"), data.to_string()).unwrap();

    let input = |env: &str, effect: &str| {
        serde_json::json!({
            "agent": {"name": "edge-01", "env": env},
            "principal": {"id": "alice", "roles": []},
            "task": {"id": "t-1"},
            "tool": {"name": "restart-service", "version": "0.1.0", "effect": effect},
            "call": {"args": {}, "step": "s1", "dry_run": false},
            "history": {"calls_in_task": 0, "mutations_last_hour": 0},
            "now": "2026-11-27T00:00:00Z",
        })
    };
    for compiled in [true, false] {
        let engine = PolicyEngine::builder(dir.path())
            .with_compiled_engine(compiled)
            .load()
            .unwrap();
        assert_eq!(engine.summary().compiled, compiled);
        assert!(!engine.environments().is_declared());
        let verdict = |env: &str, effect: &str| {
            engine
                .decide_json(Entry::Call, &input(env, effect))
                .decision
                .verdict
        };
        assert_eq!(
            verdict("qa", "read-only"),
            Verdict::Allow,
            "compiled={compiled}"
        );
        assert_eq!(
            verdict("qa", "mutating"),
            Verdict::Allow,
            "compiled={compiled}"
        );
        assert_eq!(
            verdict("prod", "mutating"),
            Verdict::NeedsApproval,
            "compiled={compiled}"
        );
        assert_eq!(
            verdict("prod", "destructive"),
            Verdict::Deny,
            "compiled={compiled}"
        );
    }
}
