//! The store survives `kill -9` in the middle of an ingest: every batch that
//! was committed is there in full, no batch is there in part, and the memory
//! opens and answers queries (its index rebuilt from the store).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use warden_memory::{Incident, Memory};

const CHILD_ENV: &str = "WARDEN_MEMORY_CRASH_DIR";
const BATCH: usize = 300;
/// Commits the parent waits for before it kills the child.
const COMMITS_BEFORE_KILL: usize = 3;

fn batch(b: usize) -> Vec<Incident> {
    (0..BATCH)
        .map(|i| {
            Incident::new(
                format!("b{b}-{i}"),
                format!("service{} error rate above threshold in batch {b}", i % 17),
                format!(
                    "pod restarted {i} times; node worker{} under memory pressure",
                    i % 5
                ),
            )
        })
        .collect()
}

/// Not a test on its own: the body of the child process, which ingests
/// batches until it is killed. Without the variable it does nothing.
#[test]
fn child_ingests_batches_until_killed() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let mut memory = Memory::open(&dir).unwrap();
    for b in 0..10_000 {
        memory.ingest(batch(b)).unwrap();
        println!("committed {b}");
    }
}

#[test]
fn store_survives_kill_9_mid_ingest_without_losing_committed_batches() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "crash::child_ingests_batches_until_killed",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut committed = Vec::new();
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for line in lines {
        let line = line.unwrap();
        // The harness may print the test name on the same line first.
        if let Some(pos) = line.find("committed ") {
            committed.push(
                line[pos + "committed ".len()..]
                    .trim()
                    .parse::<usize>()
                    .unwrap(),
            );
            if committed.len() == COMMITS_BEFORE_KILL {
                break;
            }
        }
    }
    // The next batch is being written now. On unix `kill` sends SIGKILL.
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "the child was killed, not finished");
    assert_eq!(committed, (0..COMMITS_BEFORE_KILL).collect::<Vec<_>>());

    let memory = Memory::open(dir.path()).unwrap();
    let stored = memory.len().unwrap();
    assert_eq!(
        stored % BATCH,
        0,
        "{stored} records: a batch was half-written"
    );
    assert!(
        stored >= COMMITS_BEFORE_KILL * BATCH,
        "{stored} records: a committed batch was lost"
    );
    for b in 0..stored / BATCH {
        for i in [0, BATCH / 2, BATCH - 1] {
            let view = memory.show(&format!("b{b}-{i}")).unwrap();
            assert!(view.is_some(), "b{b}-{i} missing");
        }
    }
    let hits = memory
        .similar("service3 error rate above threshold in batch 1", 3)
        .unwrap();
    assert_eq!(hits.len(), 3);
    assert!(hits.iter().all(|h| h.id.starts_with('b')));
}
