//! Delivering the outbox in the background: notifications that were
//! queued while their webhook was unreachable go out every ~30 s, on the
//! agent's path (policy, journal).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use warden::sandbox::{DeliveryOutcome, DeliveryPass};

use crate::server::State;

/// Time between delivery passes.
const INTERVAL: Duration = Duration::from_secs(30);
/// Longest a pass keeps starting new attempts.
const PASS_BUDGET: Duration = Duration::from_secs(20);

/// Where the service queues requests to unreachable secret webhooks:
/// `$WARDEN_OUTBOX` (as `warden run` and `warden outbox` read it), else
/// `outbox` in the service's data directory.
pub(crate) fn dir(data_dir: &Path) -> PathBuf {
    std::env::var_os("WARDEN_OUTBOX")
        .filter(|v| !v.is_empty())
        .map_or_else(|| data_dir.join("outbox"), PathBuf::from)
}

/// Deliver due entries every [`INTERVAL`] until `stop`.
pub(crate) fn spawn(state: Arc<State>, stop: CancellationToken) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                () = tokio::time::sleep(INTERVAL) => {}
            }
            let agent = state.agent();
            let pass = DeliveryPass::due().time_budget(PASS_BUDGET);
            match agent.deliver_outbox(pass).await {
                Ok(done) => {
                    for d in &done {
                        let outcome = match &d.outcome {
                            DeliveryOutcome::Delivered { .. } => "delivered",
                            DeliveryOutcome::Retry { .. } => "retry",
                            DeliveryOutcome::Dropped { .. } => "dropped",
                            _ => "skipped",
                        };
                        tracing::info!(outbox_id = %d.entry.id, secret = %d.entry.secret, task = %d.entry.task_id, outcome, "outbox delivery");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "outbox delivery pass failed"),
            }
        }
    })
}
