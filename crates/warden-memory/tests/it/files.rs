//! Ingesting files the way `warden incidents ingest` does.

use warden_memory::{Columns, Memory, MemoryError, read_incidents};

#[test]
fn a_jira_csv_export_is_ingested_and_searchable() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("bugs.csv");
    fs_err::write(
        &csv,
        "Summary,Issue id,Status,Priority,Resolution,Created,Resolved,Description\n\
         NameNode OOM during block report,1001,Resolved,Major,Fixed,01/Feb/22 10:00,03/Feb/22 09:00,\"heap exhausted\nwhile processing block reports\"\n\
         DataNode disk failure not detected,1002,Open,Minor,,02/Feb/22 11:30,,volume check never runs\n\
         Web UI shows wrong timezone,1003,Open,Trivial,,05/Feb/22 08:00,,dates in UTC\n",
    )
    .unwrap();
    let records = read_incidents(&csv, &Columns::default()).unwrap();
    let mut memory = Memory::open(dir.path().join("store")).unwrap();
    assert_eq!(memory.ingest(records).unwrap().inserted, 3);
    let hits = memory
        .recall("namenode runs out of heap on block reports", 1)
        .unwrap();
    assert_eq!(hits[0].incident.id, "1001");
    assert_eq!(hits[0].incident.severity.as_deref(), Some("Major"));
    assert_eq!(hits[0].incident.resolution.as_deref(), Some("Fixed"));
}

#[test]
fn a_malformed_line_names_the_file_and_line_and_nothing_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("incidents.jsonl");
    fs_err::write(
        &path,
        "{\"id\": \"a\", \"title\": \"disk full\"}\n{\"id\": \"b\", \"title\": \"cert expired\"}\n{\"id\": \"c\" \"title\": 1}\n",
    )
    .unwrap();
    let err = read_incidents(&path, &Columns::default()).unwrap_err();
    assert!(
        matches!(err, MemoryError::Malformed { line: 3, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("incidents.jsonl:3"), "{err}");
    let memory = Memory::open(dir.path().join("store")).unwrap();
    assert!(memory.is_empty().unwrap());
}

#[test]
fn a_record_over_the_size_limit_is_refused_naming_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("incidents.jsonl");
    let huge = "x".repeat(warden_memory::MAX_RECORD_BYTES + 10);
    fs_err::write(
        &path,
        format!("{{\"id\": \"a\", \"title\": \"disk full\"}}\n{{\"id\": \"b\", \"title\": \"{huge}\"}}\n"),
    )
    .unwrap();
    let err = read_incidents(&path, &Columns::default()).unwrap_err();
    assert!(err.to_string().contains("incidents.jsonl:2"), "{err}");
    assert!(err.to_string().contains("limit"), "{err}");
    // The same cap holds for records handed to ingest directly.
    let mut memory = Memory::open(dir.path().join("store")).unwrap();
    let big = warden_memory::Incident::new("b", "big", huge);
    let err = memory.ingest(vec![big]).unwrap_err();
    assert!(err.to_string().contains("over the limit"), "{err}");
    assert!(memory.is_empty().unwrap());
}

#[test]
fn a_fifo_named_like_an_export_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("incidents.jsonl");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&path)
            .status()
            .unwrap()
            .success()
    );
    let err = read_incidents(&path, &Columns::default()).unwrap_err();
    assert!(err.to_string().contains("not a regular file"), "{err}");
}
