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
