//! Decide one plan (or one call) again and again, to time a decision
//! without a bench harness, or to profile one.
//!
//! ```text
//! cargo build --release -p warden-policy --example decide_loop
//! target/release/examples/decide_loop STEPS REPEATS [BUNDLE_DIR]
//! ```
//!
//! Each step runs a read-only tool with one templated argument, as the
//! `agent_step` bench's plan does; `STEPS` 0 decides that tool's call
//! instead. It prints the fastest batch's time per decision; the time per
//! step is the difference between two plan sizes, divided by the
//! difference in steps.

use std::hint::black_box;
use std::io::Write;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use warden_policy::{Entry, PlanStep, PolicyContext, PolicyEngine, PolicyInput, ToolInfo};
use warden_types::{Effect, ToolManifest, Verdict};

/// How many batches of decisions are timed.
const BATCHES: usize = 7;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [steps, repeats, rest @ ..] = args.as_slice() else {
        bail!("usage: decide_loop STEPS REPEATS [BUNDLE_DIR]");
    };
    let steps: usize = steps.parse().context("STEPS")?;
    let repeats: usize = repeats.parse().context("REPEATS")?;
    let dir = match rest.first() {
        Some(dir) => dir.into(),
        None => std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies"),
    };
    // A generous time budget, so a slow run (a profiler, a loaded machine)
    // is not turned into a timed-out decision.
    let engine = PolicyEngine::builder(&dir)
        .with_timeout(std::time::Duration::from_secs(60))
        .load()?;
    let mut ctx = PolicyContext::default();
    ctx.agent.env = "dev".into();
    ctx.history.mutations_last_hour = 0;
    let tool = ToolInfo {
        name: "trivial".into(),
        version: "0.1.0".into(),
        effect: Effect::ReadOnly,
        supports_dry_run: false,
        declared_hosts: Vec::new(),
        declares_kv: false,
    };
    let args = serde_json::json!({"text": "{{ task.id }}"});
    let (entry, input) = if steps == 0 {
        let manifest = ToolManifest {
            name: tool.name.clone(),
            version: tool.version.clone(),
            description: String::new(),
            input_schema: serde_json::json!({}),
            output_schema: serde_json::json!({}),
            effect: tool.effect,
            supports_dry_run: tool.supports_dry_run,
            capabilities: Vec::new(),
        };
        let input = PolicyInput::call(&ctx, &manifest, args, "s0", false);
        (Entry::Call, input)
    } else {
        let plan = (0..steps)
            .map(|i| PlanStep {
                id: format!("s{i}"),
                tool: tool.clone(),
                args: args.clone(),
                dry_run: false,
            })
            .collect();
        (Entry::Plan, PolicyInput::plan(&ctx, plan))
    };
    let first = engine.decide(entry, &input);
    if first.decision.verdict != Verdict::Allow {
        bail!("the input was not allowed: {:?}", first.decision);
    }
    // Batches of `repeats` decisions; the fastest batch is the figure
    // (this machine's other work only ever adds time).
    let mut best = f64::INFINITY;
    for _ in 0..BATCHES {
        let started = Instant::now();
        for _ in 0..repeats {
            black_box(engine.decide(entry, black_box(&input)));
        }
        best = best.min(started.elapsed().as_secs_f64() / repeats.max(1) as f64);
    }
    writeln!(
        std::io::stdout().lock(),
        "{steps} steps: {:.2} us per decision (best of {BATCHES} batches of {repeats})",
        best * 1e6
    )?;
    Ok(())
}
