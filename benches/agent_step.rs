//! Overhead of one agent step, excluding the tool's own work and the LLM:
//! render the step's arguments, validate them, decide the call with the Rego
//! policy, invoke the plugin in the sandbox (with the capability gate),
//! append the call and decision records to the on-disk journal, and hand the
//! observation on.
//!
//! - `agent/steps/1` and `agent/steps/21`: whole tasks (task record, plan
//!   policy check, outcome, journal checkpoint with fsync) of 1 and 21
//!   chained steps of the `trivial` guest. The marginal cost of a step is
//!   `(t21 - t1) / 20`.
//! - `agent-on-demand/steps/{1,21}`: the same with the sandbox's on-demand
//!   instance allocator ([`InstanceAllocation::OnDemand`]), which maps and
//!   unmaps each call's memory and stack, instead of the default pool.
//! - `baseline/invoke-trivial`: the same plugin call alone, to subtract.
//! - `journal/append`: one journal record.
//!
//! Run: `cargo bench -p warden-bench --bench agent_step`.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "benchmark setup")]

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use serde_json::json;
use warden_agent::{Agent, AgentError, Journal, PlanContext, Planner, Proposal, Step, Task};
use warden_sandbox::{InstanceAllocation, Sandbox, SandboxConfig};
use warden_types::{CallContext, DenyAll};

/// A chain of `n` trivial steps, each depending on the one before.
struct Chain(usize);

#[async_trait]
impl Planner for Chain {
    fn name(&self) -> String {
        "chain".into()
    }

    async fn plan(&self, _ctx: &PlanContext<'_>) -> Result<Proposal, AgentError> {
        let steps = (0..self.0)
            .map(|i| {
                let mut s = Step::new(format!("s{i}"), "trivial", json!({"text": "{{ task.id }}"}));
                if i > 0 {
                    s.depends_on = vec![format!("s{}", i - 1)];
                }
                s
            })
            .collect();
        Ok(Proposal::steps("chain", steps))
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

fn policies() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../policies"))
}

fn bench(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let sandbox = Sandbox::new(&SandboxConfig::default()).unwrap();
    let trivial = sandbox.load_file(test_plugins_artifacts::TRIVIAL).unwrap();
    let on_demand =
        Sandbox::new(SandboxConfig::default().instance_allocation(InstanceAllocation::OnDemand))
            .unwrap();
    let trivial_on_demand = on_demand
        .load_file(test_plugins_artifacts::TRIVIAL)
        .unwrap();

    for (name, plugin) in [("agent", &trivial), ("agent-on-demand", &trivial_on_demand)] {
        let mut group = c.benchmark_group(name);
        group.measurement_time(Duration::from_secs(8));
        for n in [1usize, 21] {
            let agent = Agent::builder()
                .plugin(plugin.clone())
                .policy(policies())
                .planner(Chain(n))
                .journal(dir.path().join(format!("journal-{name}-{n}.jsonl")))
                .host_key(warden_agent::HostKey::from_bytes([1; 32]))
                .build()
                .unwrap();
            let mut i = 0u64;
            group.bench_with_input(BenchmarkId::new("steps", n), &n, |b, _| {
                b.iter(|| {
                    i += 1;
                    let outcome = rt
                        .block_on(agent.run(Task::goal(format!("t-{i}"), "bench").in_env("dev")))
                        .unwrap();
                    assert!(outcome.is_resolved(), "{}", outcome.reason);
                    black_box(outcome)
                });
            });
        }
        group.finish();
    }

    let input = json!({"text": "t-1"});
    let gate: Arc<dyn warden_types::CapabilityGate> = Arc::new(DenyAll);
    c.bench_function("baseline/invoke-trivial", |b| {
        b.iter(|| {
            rt.block_on(trivial.invoke(&CallContext::default(), &input, gate.clone()))
                .unwrap()
        });
    });

    // The plan check grows with the plan; measured alone for the split.
    let engine = warden_policy::PolicyEngine::load(policies()).unwrap();
    let ctx = {
        let mut ctx = warden_policy::PolicyContext::default();
        ctx.agent.env = "dev".into();
        ctx
    };
    for n in [1usize, 21] {
        let steps: Vec<warden_policy::PlanStep> = (0..n)
            .map(|i| warden_policy::PlanStep {
                id: format!("s{i}"),
                tool: warden_policy::ToolInfo::from(trivial.manifest()),
                args: json!({"text": "{{ task.id }}"}),
                dry_run: false,
            })
            .collect();
        let input = warden_policy::PolicyInput::plan(&ctx, steps);
        c.bench_function(&format!("policy/plan-{n}-steps"), |b| {
            b.iter(|| black_box(engine.decide(warden_policy::Entry::Plan, &input)));
        });
    }
    let call = warden_policy::PolicyInput::call(
        &ctx,
        trivial.manifest(),
        json!({"text": "t-1"}),
        "s1",
        false,
    );
    c.bench_function("policy/call", |b| {
        b.iter(|| black_box(engine.decide(warden_policy::Entry::Call, &call)));
    });

    let journal = Journal::open(
        dir.path().join("append.jsonl"),
        warden_agent::HostKey::from_bytes([1; 32]),
    )
    .unwrap();
    let record = warden_agent::JournalEvent::Call(warden_agent::CallEnded {
        step_id: "s1".into(),
        tool: "trivial".into(),
        effect: Some(warden_types::Effect::ReadOnly),
        status: warden_agent::StepStatus::Succeeded,
        attempts: 1,
        dry_run: false,
        duration_us: 31,
        args: json!({"text": "t-1"}),
        output: Some(json!({"result": "t-1"})),
        reasons: vec![],
    });
    c.bench_function("journal/append", |b| {
        b.iter(|| journal.append("t-1", &record).unwrap());
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
