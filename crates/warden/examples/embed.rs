//! Embedding warden in your own program: your planner, your approver (a
//! chat bot here), the shipped plugins and policy, a journal.
//!
//! The planner below is ordinary Rust: it probes every URL named in the
//! goal. The approver answers approval requests from a channel, as a chat
//! integration would. Your own tool is a WebAssembly plugin (`warden plugin
//! new my-tool`), loaded from its file next to the shipped ones. Build the
//! plugins first (`warden plugin build`), then:
//!
//! ```sh
//! cargo run -p warden --example embed -- "check https://example.com/health and http://127.0.0.1:9/" [my_tool.wasm]
//! ```
#![allow(clippy::print_stdout, reason = "an example program")]

use async_trait::async_trait;
use warden::{
    Agent, AgentError, Approval, ChannelApprover, PlanContext, Planner, Proposal, Step, Task,
};

/// Probe every http(s) URL in the goal, in parallel (they are read-only).
struct ProbeEveryUrl;

#[async_trait]
impl Planner for ProbeEveryUrl {
    fn name(&self) -> String {
        "probe-every-url".into()
    }

    async fn plan(&self, ctx: &PlanContext<'_>) -> Result<Proposal, AgentError> {
        let steps: Vec<Step> = ctx
            .task
            .goal
            .split_whitespace()
            .filter(|w| w.starts_with("http://") || w.starts_with("https://"))
            .enumerate()
            .map(|(i, url)| {
                let mut s = Step::new(
                    format!("probe-{i}"),
                    "http-probe",
                    serde_json::json!({"url": url, "latency_budget_ms": 2000}),
                );
                s.why = format!("the goal names {url}");
                s
            })
            .collect();
        if steps.is_empty() {
            return Ok(Proposal::no_match("the goal names no URL"));
        }
        Ok(Proposal::steps(self.name(), steps))
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let goal = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "check http://127.0.0.1:9/health".into());

    // A "chat bot" that approves only read-only work.
    let (approver, mut requests) = ChannelApprover::new(8);
    tokio::spawn(async move {
        while let Some((request, reply)) = requests.recv().await {
            let answer = if request.effect == "read-only" {
                Approval::yes("chat:bot")
            } else {
                Approval::no("chat:bot", "the bot only approves read-only calls")
            };
            let _ = reply.send(answer);
        }
    });

    let mut builder = Agent::builder();
    if let Some(path) = std::env::args().nth(2) {
        // Your own tool, with its own limits.
        let mut config = warden::sandbox::SandboxConfig::default();
        config.timeout(std::time::Duration::from_secs(5));
        let sandbox = warden::sandbox::Sandbox::new(&config)?;
        builder = builder.plugin(sandbox.load_file(&path)?);
    }
    let agent = builder
        .name("embed-example")
        .plugins(".warden/plugins")
        .policy("policies")
        .planner(ProbeEveryUrl)
        .approver(approver)
        .journal(".warden/embed-journal.jsonl")
        .build()?; // keyed with the host key ($WARDEN_KEY_FILE or ~/.config/warden/host.key)
    let outcome = agent.run(Task::goal("embed-1", goal).in_env("dev")).await?;
    for o in &outcome.observations {
        let status = o.output.as_ref().and_then(|v| v.get("status")).cloned();
        println!(
            "{:<8} {:<10} {:?} {:?}",
            o.step_id,
            o.status.as_str(),
            status,
            o.reasons
        );
    }
    println!("{}: {}", outcome.status.as_str(), outcome.reason);
    Ok(())
}
