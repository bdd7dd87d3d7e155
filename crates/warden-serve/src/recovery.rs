//! After a crash: intake the inbox committed but the journal never heard of.
//!
//! A receiver commits an alert to the inbox, then journals its intake, then
//! answers. A crash between the first two (a SIGKILL while requests wait
//! for the journal's lock) leaves an accepted task with no `received`
//! record: it would run, or be closed as interrupted, with its intake
//! missing from the audit trail. On start, every open item is checked
//! against the journal and the missing record written, marked `recovered`.

use std::collections::HashSet;
use std::sync::Arc;

use warden::journal::{JournalEvent, read_journal};

use crate::error::ServeError;
use crate::inbox::ItemState;
use crate::server::State;

/// Journal a `received` record, disposition `recovered`, for each pending or
/// running item whose task has none. Returns how many were written.
pub(crate) async fn journal_missing_intake(state: &Arc<State>) -> Result<usize, ServeError> {
    let open: Vec<_> = state
        .inbox(|inbox| inbox.items())
        .await?
        .into_iter()
        .filter(|item| item.state != ItemState::Done)
        .collect();
    if open.is_empty() {
        return Ok(0);
    }
    let agent = state.agent();
    let path = agent.journal().path().to_path_buf();
    let key = agent.journal().key().clone();
    let records = tokio::task::spawn_blocking(move || read_journal(&path, &key))
        .await
        .map_err(|e| ServeError::Config {
            reason: format!("reading the journal at start-up failed: {e}"),
        })??;
    let received: HashSet<&str> = records
        .iter()
        .filter(|r| matches!(r.event, JournalEvent::Received { .. }))
        .map(|r| r.task_id.as_str())
        .collect();
    let mut written = 0;
    for item in open.iter().filter(|i| !received.contains(i.id.as_str())) {
        tracing::warn!(task = %item.id, "journaling the intake of a task the last run accepted but did not journal");
        let api = item.source == "api";
        state.journal(
            &item.id,
            &JournalEvent::Received {
                source: item.source.clone(),
                key: item.key.clone(),
                status: if api { "goal" } else { "firing" }.into(),
                disposition: "recovered".into(),
                by: if api {
                    item.principal.clone()
                } else {
                    item.source.clone()
                },
            },
        )?;
        written += 1;
    }
    Ok(written)
}
