//! Address-space footprint: the sandbox runs under `ulimit -v`, and a pool
//! too large for it fails naming the settings to lower.
//!
//! The limit applies to a whole process, so each check runs one ignored
//! test of this binary in a child shell that set the limit first.

use std::process::Command;
use std::time::Duration;

use serde_json::json;
use test_plugins_artifacts as artifacts;
use warden_sandbox::{InstanceAllocation, SandboxConfig, SandboxError};

use crate::support::*;

/// 2 GB of virtual memory, in KiB as `ulimit -v` counts.
const LIMIT_KIB: u32 = 2_000_000;

/// Run the ignored test `name` of this binary under `ulimit -v`, with
/// `WARDEN_TEST_ALLOCATION` set; its combined output and whether it passed.
fn run_limited(name: &str, allocation: &str) -> (bool, String) {
    let exe = std::env::current_exe().unwrap();
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -v {LIMIT_KIB} && exec \"$0\" --exact {name} --ignored --nocapture --test-threads=1"
        ))
        .arg(exe)
        .env("WARDEN_TEST_ALLOCATION", allocation)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success() && text.contains("1 passed"), text)
}

fn allocation() -> InstanceAllocation {
    match std::env::var("WARDEN_TEST_ALLOCATION").as_deref() {
        Ok("pooling") => InstanceAllocation::Pooling,
        _ => InstanceAllocation::OnDemand,
    }
}

#[test]
fn plugins_load_and_run_under_a_2_gb_address_space_limit() {
    for allocation in ["on-demand", "pooling"] {
        let (passed, output) = run_limited(
            "footprint::child_loads_and_calls_several_plugins_at_once",
            allocation,
        );
        assert!(
            passed,
            "{allocation} under ulimit -v {LIMIT_KIB}:\n{output}"
        );
    }
}

/// Run by `plugins_load_and_run_under_a_2_gb_address_space_limit`.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "run in a child process under ulimit -v"]
async fn child_loads_and_calls_several_plugins_at_once() {
    let sandbox = sandbox_with(|c| {
        c.instance_allocation(allocation());
    });
    let trivial = load(&sandbox, artifacts::TRIVIAL);
    let templates = load(&sandbox, artifacts::PLUGIN_LOG_TEMPLATES);
    let anomaly = load(&sandbox, artifacts::PLUGIN_METRIC_ANOMALY);
    let notify = load(&sandbox, artifacts::PLUGIN_NOTIFY);
    let lines: Vec<String> = (0..500)
        .map(|i| format!("disk {} on db{} is {}% full", i % 4, i % 7, 80 + i % 20))
        .collect();
    let series: Vec<f64> = (0..700).map(|i| f64::from(i % 10)).collect();
    let calls: Vec<_> = (0..8)
        .map(|i| {
            let (plugin, input) = match i % 3 {
                0 => (trivial.clone(), json!({"text": format!("call {i}")})),
                1 => (templates.clone(), json!({"lines": lines})),
                _ => (anomaly.clone(), json!({"series": series})),
            };
            tokio::spawn(async move { plugin.invoke(&ctx(), &input, deny_all()).await })
        })
        .collect();
    for call in calls {
        let out = call.await.unwrap().unwrap();
        assert!(!out.output.is_null());
    }
    let input = json!({"target": "slack", "secret": "none", "title": "t", "text": "x"});
    let dry = warden_types::CallContext {
        dry_run: true,
        idempotency_key: None,
        ..ctx()
    };
    let out = notify.invoke(&dry, &input, deny_all()).await.unwrap();
    assert_eq!(out.output["dry_run"], true);
}

#[test]
fn a_pool_too_large_for_the_address_space_names_the_settings_to_lower() {
    let (passed, output) = run_limited("footprint::child_builds_a_pool_of_64_instances", "pooling");
    assert!(passed, "{output}");
}

/// Run by `a_pool_too_large_for_the_address_space_names_the_settings_to_lower`.
#[test]
#[ignore = "run in a child process under ulimit -v"]
fn child_builds_a_pool_of_64_instances() {
    let mut config = SandboxConfig::default();
    config
        .instance_allocation(InstanceAllocation::Pooling)
        .max_instances(64);
    let err = warden_sandbox::Sandbox::new(&config).unwrap_err();
    match &err {
        SandboxError::AddressSpace { what, settings, .. } => {
            assert_eq!(what, "the memory pool");
            assert!(settings.contains(&("max_instances", 64)), "{settings:?}");
            assert!(settings.iter().any(|(s, _)| *s == "memory_limit"));
        }
        other => panic!("expected AddressSpace, got {other}"),
    }
    let text = err.to_string();
    assert!(
        text.contains("SandboxConfig::max_instances (now 64)"),
        "{text}"
    );
    assert!(text.contains("ulimit -v"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plugin_needing_more_tables_than_an_instance_may_have_is_refused_at_load() {
    // A Rust plugin has two tables. The pooling allocator refuses it while
    // compiling, in its own words; both allocators name the setting.
    for allocation in [InstanceAllocation::Pooling, InstanceAllocation::OnDemand] {
        let sandbox = sandbox_with(|c| {
            c.max_tables_per_instance(1).instance_allocation(allocation);
        });
        let err = sandbox.load_file(artifacts::TRIVIAL).unwrap_err();
        assert!(
            matches!(err, SandboxError::InstanceShape { .. }),
            "{allocation:?}: {err}"
        );
        let text = err.to_string();
        assert!(
            text.contains("needs 2 tables per instance, more than SandboxConfig::max_tables_per_instance allows (1)"),
            "{allocation:?}: {text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_call_that_finds_every_instance_slot_busy_fails_after_its_deadline() {
    let deadline = Duration::from_millis(500);
    let sandbox = sandbox_with(|c| {
        c.max_instances(1).timeout(deadline);
    });
    let looping = load(&sandbox, artifacts::LOOP_FOREVER);
    let trivial = load(&sandbox, artifacts::TRIVIAL);
    // The first looping call holds the only slot for its whole deadline,
    // the second queues first and takes the slot next.
    let mut holders = Vec::new();
    for _ in 0..2 {
        let plugin = looping.clone();
        holders.push(tokio::spawn(async move {
            plugin.invoke(&ctx(), &json!({}), deny_all()).await
        }));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let err = trivial
        .invoke(&ctx(), &json!({"text": "hi"}), deny_all())
        .await
        .unwrap_err();
    match &err {
        SandboxError::Busy { limit, waited, .. } => {
            assert_eq!(*limit, 1);
            assert!(*waited >= deadline, "{waited:?}");
        }
        other => panic!("expected Busy, got {other}"),
    }
    assert!(
        err.to_string().contains("SandboxConfig::max_instances"),
        "{err}"
    );
    for holder in holders {
        let err = holder.await.unwrap().unwrap_err();
        assert!(matches!(err, SandboxError::Timeout { .. }), "{err}");
    }
    // The slot is free again.
    let out = trivial
        .invoke(&ctx(), &json!({"text": "hi"}), deny_all())
        .await
        .unwrap();
    assert_eq!(out.output["result"], "hi");
}
