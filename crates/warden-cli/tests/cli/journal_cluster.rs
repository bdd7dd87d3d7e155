//! `warden journal verify --cluster` against a real PostgreSQL: the
//! journal a cluster keeps there verifies, and a tampered row fails naming
//! its task and record.

use std::time::Duration;

use warden::Task;
use warden::journal::{HostKey, JournalEvent};
use warden_cluster::{Commit, Record};

use crate::support::{run, warden};

#[path = "../../../warden-cluster/tests/cluster/support.rs"]
#[allow(
    dead_code,
    clippy::print_stderr,
    reason = "the cluster harness, which says loudly what it skips; this test needs only PostgreSQL"
)]
mod servers;

fn records(step: &str) -> Commit {
    Commit {
        records: ["one", "two"]
            .iter()
            .map(|n| {
                (
                    "2026-12-05T14:00:00Z".to_string(),
                    JournalEvent::Skip {
                        step_id: step.into(),
                        tool: "probe".into(),
                        reason: format!("record {n}"),
                    },
                )
            })
            .collect(),
        ..Commit::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn journal_verify_cluster_passes_then_names_the_task_and_record_of_a_tampered_row() {
    let Some(pg) = servers::Postgres::start() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let key = HostKey::load_or_create(tmp.path().join("key/host.key")).unwrap();
    let record = Record::connect(&pg.url()).await.unwrap();
    record.migrate().await.unwrap();
    for t in ["t-1", "t-2"] {
        record
            .enqueue(&format!("gen:{t}"), &Task::goal(t, "check").in_env("dev"))
            .await
            .unwrap();
        let claim = record
            .claim("w-1", Duration::from_secs(30))
            .await
            .unwrap()
            .unwrap();
        for done in 0..2 {
            record
                .commit(&claim.fence, done, &key, &records(&format!("s{done}")))
                .await
                .unwrap();
        }
    }
    // A password in the URL is never shown (the test server trusts loopback).
    let url = format!("{} password=never-shown-s3cret", pg.url());
    let verify = |extra: &[&str]| {
        let mut cmd = warden(tmp.path());
        cmd.args(["journal", "verify", "--cluster"]).args(extra);
        let (out, stdout, stderr) = run(&mut cmd);
        assert!(
            !stdout.contains("never-shown") && !stderr.contains("never-shown"),
            "{stdout}{stderr}"
        );
        (out.status.success(), stdout, stderr)
    };

    let (ok, stdout, stderr) = verify(&["--postgres", &url]);
    assert!(ok, "{stdout}{stderr}");
    assert!(
        stdout.contains("OK, 2 task chains, 8 records, 4 anchors"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("warden@127.0.0.1:{}/warden", pg.port())),
        "{stdout}"
    );
    let (ok, stdout, _) = verify(&["--postgres", &url, "--json"]);
    assert!(ok);
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["ok"], true);
    assert_eq!(report["records"], 8);

    // Someone with database access edits one record of t-2.
    let (client, conn) = tokio_postgres::connect(&pg.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let n = client
        .execute(
            "UPDATE warden_journal SET line = replace(line, 'record two', 'record 2')
             WHERE task_id = 't-2' AND seq = 3",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(n, 1);

    let (ok, stdout, _) = verify(&["--postgres", &url]);
    assert!(!ok, "a tampered journal must fail: {stdout}");
    assert!(stdout.contains("problem(s)"), "{stdout}");
    assert!(stdout.contains("task `t-2` record 3"), "{stdout}");
    assert!(!stdout.contains("task `t-1`"), "{stdout}");
    let (ok, stdout, _) = verify(&["--postgres", &url, "--json"]);
    assert!(!ok);
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["ok"], false);
    assert!(
        report["problems"][0]
            .as_str()
            .unwrap()
            .contains("task `t-2` record 3"),
        "{report}"
    );

    // The same from the service's config, `[cluster] postgres`.
    let config = tmp.path().join("warden.toml");
    fs_err::write(
        &config,
        format!("[agent]\n[cluster]\npostgres = {:?}\n", pg.url()),
    )
    .unwrap();
    let mut cmd = warden(tmp.path());
    cmd.args(["journal", "verify", "--cluster", "--config"])
        .arg(&config)
        .env_remove("WARDEN_POSTGRES");
    let (out, stdout, stderr) = run(&mut cmd);
    assert!(!out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("task `t-2` record 3"), "{stdout}{stderr}");
}
