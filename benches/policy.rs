//! Cost of one policy decision with the default bundle, next to its baselines:
//!
//! - `warden/call` and `warden/capability`: `PolicyEngine::decide` on a
//!   typical call and HTTP capability input (input to JSON, hash, clone of
//!   the prepared engine, evaluation, result check, record);
//! - `raw-regorus/default-bundle-call`: the same evaluation written directly
//!   against regorus (prepared engine cloned per call), no warden layer;
//! - `raw-rvm/default-bundle-call`: the same on regorus's compiled engine
//!   (the RVM, which warden uses), one reused machine, no warden layer;
//! - `raw-regorus/one-rule`: a one-line policy on the interpreter, the floor
//!   of the engine;
//! - `first-decision-after-load` and `bundle-load`.
//!
//! Before criterion runs, p50/p99 of 20,000 single decisions are printed.
//!
//! Run: `cargo bench -p warden-bench --bench policy`.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "benchmark setup")]
#![allow(clippy::print_stdout, reason = "the benchmark prints its percentiles")]

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use warden_policy::{Entry, PolicyContext, PolicyEngine, PolicyInput, ToolInfo};
use warden_types::{
    Capability, CapabilityRequest, CapabilityUse, Effect, HttpRequestInfo, ToolManifest,
};

fn policies() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../policies")
}

fn context() -> PolicyContext {
    let mut ctx = PolicyContext::default();
    ctx.agent.name = "edge-01".into();
    ctx.agent.env = "prod".into();
    ctx.principal.id = "alice".into();
    ctx.principal.roles = vec!["sre".into()];
    ctx.task.id = "t-42".into();
    ctx.task.goal = "web-1 answers slowly".into();
    ctx.task.source = "alertmanager".into();
    ctx.history.calls_in_task = 3;
    ctx.history.mutations_last_hour = 2;
    ctx.now = "2026-11-27T00:00:00Z".into();
    ctx
}

fn http_probe() -> ToolManifest {
    ToolManifest {
        name: "http-probe".into(),
        version: "0.1.0".into(),
        description: "Probe an HTTP endpoint".into(),
        input_schema: serde_json::json!({"type": "object"}),
        output_schema: serde_json::json!({"type": "object"}),
        effect: Effect::ReadOnly,
        supports_dry_run: false,
        capabilities: vec![Capability::Http {
            hosts: vec!["api.example.com".into()],
        }],
    }
}

/// A read-only probe in prod: the most common call.
fn call_input() -> PolicyInput {
    PolicyInput::call(
        &context(),
        &http_probe(),
        serde_json::json!({"url": "https://api.example.com/health", "timeout_ms": 2000}),
        "s3",
        false,
    )
}

fn capability_input() -> PolicyInput {
    let request = CapabilityRequest {
        plugin: "http-probe".into(),
        plugin_version: "0.1.0".into(),
        effect: Effect::ReadOnly,
        task_id: "t-42".into(),
        step_id: "s3".into(),
        dry_run: false,
        capability: CapabilityUse::Http(HttpRequestInfo {
            method: "GET".into(),
            scheme: "https".into(),
            host: "api.example.com".into(),
            port: 443,
            path: "/health".into(),
            resolved: vec!["93.184.216.34".parse().unwrap()],
        }),
    };
    PolicyInput::capability(&context(), ToolInfo::from(&http_probe()), &request)
}

fn raw_default_bundle() -> regorus::Engine {
    let mut engine = regorus::Engine::new();
    for entry in fs_err::read_dir(policies()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.to_string_lossy().to_string();
        if name.ends_with(".rego") && !name.ends_with("_test.rego") {
            engine
                .add_policy(name, fs_err::read_to_string(&path).unwrap())
                .unwrap();
        }
    }
    let data = fs_err::read_to_string(policies().join("data.json")).unwrap();
    engine.add_data_json(&data).unwrap();
    engine.eval_query("true".into(), false).unwrap();
    engine
}

fn percentiles(engine: &PolicyEngine, entry: Entry, input: &PolicyInput, label: &str) {
    const N: usize = 20_000;
    for _ in 0..1_000 {
        black_box(engine.decide(entry, input));
    }
    let mut samples: Vec<Duration> = (0..N)
        .map(|_| {
            let started = Instant::now();
            black_box(engine.decide(entry, black_box(input)));
            started.elapsed()
        })
        .collect();
    samples.sort();
    let mean = samples.iter().sum::<Duration>() / N as u32;
    println!(
        "{label}: n={N} p50={:.1}us p99={:.1}us mean={:.1}us",
        samples[N / 2].as_secs_f64() * 1e6,
        samples[N * 99 / 100].as_secs_f64() * 1e6,
        mean.as_secs_f64() * 1e6,
    );
}

fn bench(c: &mut Criterion) {
    let engine = PolicyEngine::load(policies()).unwrap();
    let call = call_input();
    let capability = capability_input();
    assert!(engine.decide(Entry::Call, &call).decision.is_allow());
    assert!(
        engine
            .decide(Entry::Capability, &capability)
            .decision
            .is_allow()
    );
    percentiles(&engine, Entry::Call, &call, "warden/call");
    percentiles(&engine, Entry::Capability, &capability, "warden/capability");

    let mut group = c.benchmark_group("policy");
    group.bench_function("warden/call", |b| {
        b.iter(|| engine.decide(Entry::Call, black_box(&call)))
    });
    group.bench_function("warden/capability", |b| {
        b.iter(|| engine.decide(Entry::Capability, black_box(&capability)))
    });

    let raw = raw_default_bundle();
    let raw_input = regorus::Value::from(serde_json::to_value(&call).unwrap());
    group.bench_function("raw-regorus/default-bundle-call", |b| {
        b.iter(|| {
            let mut e = raw.clone();
            e.set_input(raw_input.clone());
            e.eval_rule("data.warden.call".into()).unwrap()
        })
    });

    let rule: regorus::Rc<str> = "data.warden.call".into();
    let compiled = raw.clone().compile_with_entrypoint(&rule).unwrap();
    let program = regorus::languages::rego::compiler::Compiler::compile_from_policy(
        &compiled,
        &["data.warden.call"],
    )
    .unwrap();
    let mut vm = regorus::rvm::RegoVM::new();
    vm.load_program(program);
    let data = fs_err::read_to_string(policies().join("data.json")).unwrap();
    vm.set_data(regorus::Value::from_json_str(&data).unwrap())
        .unwrap();
    group.bench_function("raw-rvm/default-bundle-call", |b| {
        b.iter(|| {
            vm.set_input(raw_input.clone());
            vm.execute_entry_point_by_name("data.warden.call").unwrap()
        })
    });

    let mut tiny = regorus::Engine::new();
    tiny.add_policy(
        "tiny.rego".into(),
        "package t\n\nallow if input.tool.effect == \"read-only\"\n".into(),
    )
    .unwrap();
    tiny.eval_query("true".into(), false).unwrap();
    group.bench_function("raw-regorus/one-rule", |b| {
        b.iter(|| {
            let mut e = tiny.clone();
            e.set_input(raw_input.clone());
            e.eval_rule("data.t.allow".into()).unwrap()
        })
    });

    group.bench_function("first-decision-after-load", |b| {
        b.iter_batched(
            || PolicyEngine::load(policies()).unwrap(),
            |engine| engine.decide(Entry::Call, &call),
            BatchSize::PerIteration,
        )
    });
    group.bench_function("bundle-load", |b| {
        b.iter(|| PolicyEngine::load(policies()).unwrap())
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
