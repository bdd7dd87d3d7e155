//! The policy decisions around a CLI tool call: `data.warden.call` before
//! the call, `data.warden.capability` for each capability inside it.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use clap::Args;
use warden_policy::{Entry, PolicyContext, PolicyEngine, PolicyGate, PolicyInput};
use warden_types::{CapabilityGate, ToolManifest, Verdict};

/// Who is calling, where, under which policy.
#[derive(Debug, Clone, Args)]
pub struct PolicyArgs {
    /// Policy bundle directory (`*.rego` + `data.json`).
    #[arg(long, default_value = "policies", env = "WARDEN_POLICY")]
    pub policy: PathBuf,
    /// Environment the call acts on; the policy keys on it (`dev`, `staging`, `prod`).
    #[arg(long, default_value = "dev", env = "WARDEN_ENV")]
    pub env: String,
    /// Principal on whose behalf the call runs.
    #[arg(long, default_value_t = default_principal())]
    pub principal: String,
    /// Approve a call the policy says needs approval (recorded as approved by the principal).
    #[arg(long)]
    pub approve: bool,
    /// Break-glass ticket id for destructive work in protected environments.
    #[arg(long)]
    pub break_glass: Option<String>,
}

fn default_principal() -> String {
    std::env::var("USER").unwrap_or_else(|_| "cli".into())
}

/// Decide the call; on allow (or approval) return the gate for its capabilities.
pub fn authorize_call(
    args: &PolicyArgs,
    manifest: &ToolManifest,
    input: &serde_json::Value,
    task: &str,
    dry_run: bool,
) -> anyhow::Result<Arc<dyn CapabilityGate>> {
    let engine = PolicyEngine::load(&args.policy)
        .with_context(|| format!("loading policy bundle {}", args.policy.display()))?;
    let mut ctx = PolicyContext::default();
    ctx.agent.name = "warden-cli".into();
    ctx.agent.env = args.env.clone();
    ctx.principal.id = args.principal.clone();
    ctx.task.id = task.to_string();
    ctx.task.source = "cli".into();
    ctx.task.break_glass = args.break_glass.clone();
    ctx.now = now_rfc3339();
    let record = engine.decide(
        Entry::Call,
        &PolicyInput::call(&ctx, manifest, input.clone(), "1", dry_run),
    );
    let decision = &record.decision;
    match decision.verdict {
        Verdict::Allow => {}
        Verdict::Deny => {
            let reasons = decision.reasons.join("\n  - ");
            bail!(
                "policy denied `{}` in `{}`:\n  - {reasons}",
                manifest.name,
                args.env
            );
        }
        Verdict::NeedsApproval => {
            if !args.approve {
                let reasons = decision.reasons.join("\n  - ");
                bail!(
                    "`{}` needs approval in `{}`:\n  - {reasons}\nhint: rerun with --approve to approve it as `{}`, or with --dry-run",
                    manifest.name,
                    args.env,
                    args.principal
                );
            }
            tracing::warn!(tool = %manifest.name, principal = %args.principal, "call approved on the command line");
        }
    }
    Ok(Arc::new(PolicyGate::new(engine, ctx, manifest)))
}

/// The current UTC time, RFC 3339.
fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}
