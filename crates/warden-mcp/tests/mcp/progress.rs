//! Long calls: progress every second, and the client's cancellation stops
//! the guest.

use std::time::{Duration, Instant};

use rmcp::model::{CallToolRequest, CallToolRequestParams, ClientRequest};
use rmcp::service::PeerRequestOptions;
use warden::OutcomeStatus;
use warden::journal::JournalEvent;

use crate::support::{Harness, Setup, text};

#[tokio::test]
async fn a_call_longer_than_a_second_reports_progress() {
    let h = Harness::start(Setup::default()).await;
    let started = Instant::now();
    // The guest loops until the sandbox's 3 s deadline stops it.
    let r = h.call("loop-forever", serde_json::json!({})).await;
    assert!(started.elapsed() >= Duration::from_secs(2), "{r:?}");
    assert_eq!(r.is_error, Some(true), "{r:?}");
    assert!(text(&r).contains("deadline"), "{r:?}");
    let progress = h.seen.lock().unwrap().progress.clone();
    assert!(!progress.is_empty(), "{r:?}");
    assert!(
        progress[0].progress >= 0.9,
        "the first report comes after a second: {progress:?}"
    );
    assert!(
        progress[0]
            .message
            .as_deref()
            .unwrap()
            .contains("loop-forever")
    );
    h.stop().await;
}

#[tokio::test]
async fn progress_comes_at_the_configured_interval_and_only_increases() {
    let h = Harness::start(Setup {
        progress_every: Duration::from_millis(300),
        ..Setup::default()
    })
    .await;
    let _ = h.call("loop-forever", serde_json::json!({})).await;
    let progress = h.seen.lock().unwrap().progress.clone();
    assert!(progress.len() >= 3, "{progress:?}");
    assert!(
        progress.windows(2).all(|w| w[1].progress > w[0].progress),
        "progress increases: {progress:?}"
    );
    h.stop().await;
}

#[tokio::test]
async fn a_quick_call_sends_no_progress() {
    let h = Harness::start(Setup::default()).await;
    let r = h
        .call("leak-text", serde_json::json!({"text": "hello"}))
        .await;
    assert_eq!(r.is_error, Some(false), "{r:?}");
    assert!(h.seen.lock().unwrap().progress.is_empty());
    h.stop().await;
}

#[tokio::test]
async fn cancelling_a_call_stops_the_guest_and_journals_the_cancellation() {
    let h = Harness::start(Setup::default()).await;
    let request = ClientRequest::CallToolRequest(CallToolRequest::new(CallToolRequestParams::new(
        "loop-forever",
    )));
    let handle = h
        .client
        .send_cancellable_request(request, PeerRequestOptions::no_options())
        .await
        .unwrap();
    // Well inside the sandbox's 3 s deadline even on a loaded machine
    // (waiting for the first progress report was not: it can come late).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let cancelled_at = Instant::now();
    handle
        .cancel(Some("the user pressed stop".into()))
        .await
        .unwrap();
    let outcome = loop {
        let found = h.records().into_iter().find_map(|r| match r.event {
            JournalEvent::Outcome(o) => Some(o),
            _ => None,
        });
        if let Some(o) = found {
            break o;
        }
        assert!(Instant::now() < deadline, "the call never ended");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(outcome.status, OutcomeStatus::Cancelled, "{outcome:?}");
    assert!(
        cancelled_at.elapsed() < Duration::from_millis(1500),
        "stopped promptly, not by the 3 s deadline: {:?}",
        cancelled_at.elapsed()
    );
    let records = h.records();
    assert!(
        records.iter().any(|r| matches!(
            &r.event,
            JournalEvent::Stop {
                status: OutcomeStatus::Cancelled,
                ..
            }
        )),
        "the stop is journaled"
    );
    assert!(
        !records
            .iter()
            .any(|r| matches!(r.event, JournalEvent::Call(_))),
        "the guest's call never finished"
    );
    h.stop().await;
}
