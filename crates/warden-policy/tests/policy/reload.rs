//! Hot reload: atomic swaps, broken bundles rejected.

use std::time::{Duration, Instant};

use warden_policy::{Entry, PolicyEngine};
use warden_types::Verdict;

use crate::{bundle, call_returning};

fn verdict(engine: &PolicyEngine) -> Verdict {
    engine
        .decide_json(Entry::Call, &serde_json::json!({}))
        .decision
        .verdict
}

const ALLOW: &str = r#"{"allow": true, "deny": set(), "approval": set(), "obligations": {}}"#;
const DENY: &str = r#"{"allow": false, "deny": {"Closed for maintenance."}, "approval": set(), "obligations": {}}"#;

#[test]
fn reload_swaps_in_the_new_bundle() {
    let dir = bundle(&[("p.rego", &call_returning(ALLOW))]);
    let engine = PolicyEngine::load(dir.path()).unwrap();
    let old_hash = engine.summary().hash;
    assert_eq!(verdict(&engine), Verdict::Allow);
    fs_err::write(dir.path().join("p.rego"), call_returning(DENY)).unwrap();
    let summary = engine.reload().unwrap();
    assert_ne!(summary.hash, old_hash);
    assert_eq!(verdict(&engine), Verdict::Deny);
    let record = engine.decide_json(Entry::Call, &serde_json::json!({}));
    assert_eq!(record.bundle_hash, summary.hash);
}

#[test]
fn a_broken_new_bundle_is_rejected_and_the_old_one_keeps_deciding() {
    let dir = bundle(&[("p.rego", &call_returning(ALLOW))]);
    let engine = PolicyEngine::load(dir.path()).unwrap();
    let clone = engine.clone();
    let hash = engine.summary().hash;
    fs_err::write(dir.path().join("p.rego"), "package warden\n\ncall := {\n").unwrap();
    assert!(engine.reload().is_err());
    assert_eq!(verdict(&clone), Verdict::Allow);
    assert_eq!(clone.summary().hash, hash);
}

#[test]
fn the_watcher_reloads_a_changed_folder_until_stopped() {
    let dir = bundle(&[("p.rego", &call_returning(ALLOW))]);
    let engine = PolicyEngine::load(dir.path()).unwrap();
    let watcher = engine.watch(Duration::from_millis(10));
    fs_err::write(dir.path().join("p.rego"), call_returning(DENY)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while verdict(&engine) != Verdict::Deny && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(verdict(&engine), Verdict::Deny);
    watcher.stop();
    fs_err::write(dir.path().join("p.rego"), call_returning(ALLOW)).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        verdict(&engine),
        Verdict::Deny,
        "a stopped watcher must not reload"
    );
}

#[test]
fn concurrent_decisions_always_match_the_bundle_they_report() {
    let dir = bundle(&[("p.rego", &call_returning(ALLOW))]);
    let engine = PolicyEngine::load(dir.path()).unwrap();
    let allow_hash = engine.summary().hash;
    fs_err::write(dir.path().join("p.rego"), call_returning(DENY)).unwrap();
    let deny_hash = engine.reload().unwrap().hash;
    let workers: Vec<_> = (0..3)
        .map(|_| {
            let engine = engine.clone();
            std::thread::spawn(move || {
                (0..300)
                    .map(|_| engine.decide_json(Entry::Call, &serde_json::json!({})))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for round in 0..20 {
        let text = if round % 2 == 0 { ALLOW } else { DENY };
        fs_err::write(dir.path().join("p.rego"), call_returning(text)).unwrap();
        engine.reload().unwrap();
    }
    for worker in workers {
        for record in worker.join().unwrap() {
            let expected = if record.bundle_hash == allow_hash {
                Verdict::Allow
            } else {
                assert_eq!(record.bundle_hash, deny_hash);
                Verdict::Deny
            };
            assert_eq!(record.decision.verdict, expected);
        }
    }
}
