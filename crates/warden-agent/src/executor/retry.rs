//! Invoking a tool with a deadline, and retrying read-only calls with
//! exponential backoff and jitter.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng as _;
use tokio_util::sync::CancellationToken;
use warden_sandbox::{CallOutput, Plugin, SandboxError, ToolErrorKind};
use warden_types::{CallContext, CapabilityGate};

use crate::agent::Budget;

/// How the attempts went.
pub(crate) struct Attempts {
    /// The last attempt's result: the output, or why it failed.
    pub result: Result<CallOutput, String>,
    /// How many attempts ran.
    pub count: u32,
}

/// Whether an error is worth another attempt of a read-only call.
fn retryable(
    result: &Result<Result<CallOutput, SandboxError>, tokio::time::error::Elapsed>,
) -> bool {
    match result {
        Ok(Err(e)) => matches!(
            e,
            SandboxError::Timeout { .. }
                | SandboxError::Tool {
                    kind: ToolErrorKind::Failed,
                    ..
                }
        ),
        _ => true,
    }
}

/// The delay before attempt `attempt + 1`: `base * 2^(attempt-1)`, ±50%.
pub(crate) fn backoff(base: Duration, attempt: u32) -> Duration {
    let base = base.as_secs_f64() * f64::from(1u32 << attempt.saturating_sub(1).min(10));
    Duration::from_secs_f64(base * rand::rng().random_range(0.5..1.5))
}

/// Call `plugin` up to `max_attempts` times, each within `timeout`, until
/// it succeeds, fails for good, the deadline passes or `cancel` fires.
#[allow(clippy::too_many_arguments, reason = "one call's full context")]
pub(crate) async fn invoke(
    plugin: &Plugin,
    ctx: &CallContext,
    args: &serde_json::Value,
    gate: Arc<dyn CapabilityGate>,
    timeout: Duration,
    max_attempts: u32,
    budget: &Budget,
    deadline: Instant,
    cancel: &CancellationToken,
) -> Attempts {
    let mut count = 0;
    loop {
        count += 1;
        let result = tokio::time::timeout(timeout, plugin.invoke(ctx, args, gate.clone())).await;
        let again = retryable(&result);
        let error = match result {
            Ok(Ok(out)) => {
                return Attempts {
                    result: Ok(out),
                    count,
                };
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("the step timed out after {timeout:?}"),
        };
        if count >= max_attempts || !again || Instant::now() >= deadline {
            return Attempts {
                result: Err(error),
                count,
            };
        }
        let delay = backoff(budget.retry_base, count);
        tracing::info!(step = %ctx.step_id, attempt = count, ?delay, reason = %error, "retrying a read-only call");
        tokio::select! {
            () = cancel.cancelled() => return Attempts { result: Err(error), count },
            () = tokio::time::sleep(delay) => {}
        }
    }
}
