use serde_json::Value;

use crate::support::*;

#[test]
fn incidents_ingest_then_similar_finds_the_matching_case() {
    let plugins = plugin_dir();
    let data = tempfile::tempdir().unwrap();
    let fixture = repo().join("examples/data/incidents.jsonl");
    let (out, _, stderr) = run(warden(plugins.path())
        .args(["incidents", "--data-dir"])
        .arg(data.path())
        .arg("ingest")
        .arg(&fixture));
    assert!(out.status.success(), "{stderr}");

    let (out, stdout, stderr) = run(warden(plugins.path())
        .args(["--json", "incidents", "--data-dir"])
        .arg(data.path())
        .args([
            "similar",
            "payments upstream timed out in checkout",
            "-k",
            "2",
        ]));
    assert!(out.status.success(), "{stderr}");
    let hits: Value = serde_json::from_str(&stdout).unwrap();
    let ids: Vec<&str> = hits
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2, "{stdout}");
    assert!(
        ids.iter().all(|id| *id == "INC-101" || *id == "INC-103"),
        "{ids:?}"
    );

    // Re-ingesting the same ids updates, never duplicates.
    let (out, _, stderr) = run(warden(plugins.path())
        .args(["incidents", "--data-dir"])
        .arg(data.path())
        .arg("ingest")
        .arg(&fixture));
    assert!(out.status.success(), "{stderr}");
    let (out, stdout, _) = run(warden(plugins.path())
        .args(["--json", "incidents", "--data-dir"])
        .arg(data.path())
        .args(["similar", "certificate expired", "-k", "10"]));
    assert!(out.status.success());
    let hits: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(hits.as_array().unwrap().len(), 4, "{stdout}");
}
