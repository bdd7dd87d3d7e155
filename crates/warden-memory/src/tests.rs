//! Behaviour of the `Memory` handle as a whole: store, index, clusters.

use crate::{HashingEmbedder, Incident, Memory, MemoryError, MemoryOptions};

fn incidents() -> Vec<Incident> {
    vec![
        Incident::new(
            "k1",
            "kafka consumer lag high on orders",
            "lag 12000 messages on partition 3",
        )
        .with_resolution("scaled consumers to 6"),
        Incident::new(
            "k2",
            "kafka consumer lag high on payments",
            "lag 9000 messages on partition 1",
        )
        .with_resolution("restarted stuck consumer"),
        Incident::new("d1", "disk full on db-1", "/var/lib/postgresql at 100%")
            .with_resolution("removed old WAL archives"),
        Incident::new("d2", "disk full on db-2", "/var/lib/postgresql at 99%"),
        Incident::new(
            "t1",
            "TLS certificate expired on ingress",
            "browsers show NET::ERR_CERT_DATE_INVALID",
        ),
    ]
}

fn open(dir: &std::path::Path) -> Memory {
    Memory::open(dir).unwrap()
}

#[test]
fn recall_returns_the_nearest_case_with_its_resolution_and_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = open(dir.path());
    m.ingest(incidents()).unwrap();
    let hits = m
        .recall("db-9 disk is full: /var/lib/postgresql 97%", 2)
        .unwrap();
    assert_eq!(hits.len(), 2);
    assert!(
        hits[0].incident.id.starts_with('d'),
        "{:?}",
        hits[0].incident.id
    );
    assert!(hits[0].score >= hits[1].score);
    let d1 = hits.iter().find(|h| h.incident.id == "d1").unwrap();
    assert_eq!(
        d1.incident.resolution.as_deref(),
        Some("removed old WAL archives")
    );
    assert!(d1.cluster.is_some());
}

#[test]
fn similar_incidents_join_one_cluster_at_ingest() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = open(dir.path());
    let report = m.ingest(incidents()).unwrap();
    assert_eq!(report.inserted, 5);
    let cluster = |id: &str| m.show(id).unwrap().unwrap().cluster.unwrap().id;
    assert_eq!(cluster("d1"), cluster("d2"));
    assert_ne!(cluster("d1"), cluster("t1"));
    assert_eq!(report.new_clusters, m.clusters().unwrap().len());
}

#[test]
fn reingesting_an_id_updates_the_record_instead_of_duplicating_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = open(dir.path());
    m.ingest(incidents()).unwrap();
    let changed = Incident::new(
        "t1",
        "DNS resolution failing in cluster",
        "coredns pods crashloop",
    );
    let report = m.ingest(vec![changed]).unwrap();
    assert_eq!((report.inserted, report.updated), (0, 1));
    assert_eq!(m.len().unwrap(), 5);
    let hits = m.similar("coredns crashloop dns failing", 5).unwrap();
    assert_eq!(hits[0].id, "t1");
    assert_eq!(hits.iter().filter(|h| h.id == "t1").count(), 1);
    let sizes: usize = m.clusters().unwrap().iter().map(|c| c.size).sum();
    assert_eq!(sizes, 5, "the old version left its cluster");
}

#[test]
fn a_metadata_only_update_keeps_the_vector_and_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = open(dir.path());
    m.ingest(incidents()).unwrap();
    let before = m.show("d2").unwrap().unwrap().cluster.unwrap().id;
    let resolved = incidents()[3].clone().with_resolution("grew the volume");
    let report = m.ingest(vec![resolved]).unwrap();
    assert_eq!(report.updated, 1);
    let view = m.show("d2").unwrap().unwrap();
    assert_eq!(view.incident.resolution.as_deref(), Some("grew the volume"));
    assert_eq!(view.cluster.unwrap().id, before);
    assert_eq!(m.index.len(), 5, "no tombstone for an unchanged text");
}

#[test]
fn a_malformed_record_rejects_its_whole_batch() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = open(dir.path());
    m.ingest(incidents()[..2].to_vec()).unwrap();
    let batch = vec![
        Incident::new("new-1", "a fine record", ""),
        Incident::new("", "no id", ""),
    ];
    match m.ingest(batch) {
        Err(MemoryError::Malformed { origin, line, .. }) => {
            assert_eq!((origin.as_str(), line), ("batch", 2))
        }
        other => panic!("expected a malformed-record error, got {other:?}"),
    }
    assert_eq!(m.len().unwrap(), 2);
    assert!(m.show("new-1").unwrap().is_none());
}

#[test]
fn a_failed_transaction_leaves_memory_and_statistics_untouched() {
    #[derive(Debug)]
    struct Broken(HashingEmbedder);
    impl crate::Embedder for Broken {
        fn fingerprint(&self) -> String {
            self.0.fingerprint()
        }
        fn dim(&self) -> usize {
            self.0.dim()
        }
        fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, MemoryError> {
            if texts.iter().any(|t| t.contains("poison")) {
                return Ok(vec![vec![f32::NAN; self.dim()]; texts.len()]);
            }
            self.0.embed(texts)
        }
        fn learn(&mut self, added: &[&str], removed: &[&str]) {
            self.0.learn(added, removed);
        }
        fn state(&self) -> Option<Vec<u8>> {
            self.0.state()
        }
        fn restore(&mut self, state: &[u8]) -> Result<(), MemoryError> {
            self.0.restore(state)
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let mut m = Memory::open_with(
        dir.path(),
        MemoryOptions::default(),
        Box::new(Broken(HashingEmbedder::default())),
    )
    .unwrap();
    m.ingest(incidents()).unwrap();
    let state = m.embedder.state();
    let err = m
        .ingest(vec![Incident::new("p", "poison pill", "")])
        .unwrap_err();
    assert!(matches!(err, MemoryError::Embedder { .. }), "{err}");
    assert_eq!(m.len().unwrap(), 5);
    assert_eq!(m.embedder.state(), state);
    assert_eq!(
        m.similar("kafka consumer lag", 1).unwrap()[0]
            .id
            .chars()
            .next(),
        Some('k')
    );
}

#[test]
fn deleted_incidents_are_never_returned() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = open(dir.path());
    m.ingest(incidents()).unwrap();
    assert_eq!(m.delete(&["d1", "nope"]).unwrap(), 1);
    assert!(m.show("d1").unwrap().is_none());
    let hits = m
        .similar("disk full on db-1 /var/lib/postgresql", 5)
        .unwrap();
    assert!(hits.iter().all(|h| h.id != "d1"));
    assert_eq!(hits.len(), 4);
}

#[test]
fn a_text_without_features_matches_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = open(dir.path());
    m.ingest(incidents()).unwrap();
    assert!(m.similar(" ... ", 3).unwrap().is_empty());
}

#[test]
fn a_clean_reopen_reuses_the_saved_index() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut m = open(dir.path());
        m.ingest(incidents()).unwrap();
        m.flush().unwrap();
    }
    let m = open(dir.path());
    assert!(!m.index_dirty, "the dump matched the store and was loaded");
    assert_eq!(
        m.similar("kafka consumer lag orders", 1).unwrap()[0].id,
        "k1"
    );
}

#[test]
fn a_store_keeps_the_hnsw_shape_it_was_created_with() {
    let dir = tempfile::tempdir().unwrap();
    let wide = MemoryOptions {
        max_connections: 32,
        ef_construction: 200,
        ..MemoryOptions::default()
    };
    {
        let mut m =
            Memory::open_with(dir.path(), wide, Box::new(HashingEmbedder::default())).unwrap();
        m.ingest(incidents()).unwrap();
    }
    let mut m = open(dir.path());
    assert_eq!(m.options.max_connections, 32);
    assert_eq!(m.options.ef_construction, 200);
    m.ingest(vec![Incident::new("n1", "kafka lag on refunds", "")])
        .unwrap();
    drop(m);
    let fresh = tempfile::tempdir().unwrap();
    let m = open(fresh.path());
    assert_eq!(
        m.options.max_connections, 16,
        "a new store takes the options"
    );
}

#[test]
fn a_stale_index_is_rebuilt_from_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let old = tempfile::tempdir().unwrap();
    {
        let mut m = open(dir.path());
        m.ingest(incidents()[..2].to_vec()).unwrap();
        m.flush().unwrap();
        copy_dir(&dir.path().join("index"), old.path());
        m.ingest(incidents()[2..].to_vec()).unwrap();
    }
    fs_err::remove_dir_all(dir.path().join("index")).unwrap();
    copy_dir(old.path(), &dir.path().join("index"));
    let m = open(dir.path());
    assert!(
        m.index_dirty,
        "an index from an older generation was rebuilt"
    );
    assert_eq!(m.similar("TLS certificate expired", 1).unwrap()[0].id, "t1");
}

#[test]
fn a_corrupt_or_missing_index_is_rebuilt_from_the_store() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut m = open(dir.path());
        m.ingest(incidents()).unwrap();
    }
    let graph = dir.path().join("index/graph.bin");
    let mut bytes = fs_err::read(&graph).unwrap();
    bytes.truncate(bytes.len() / 2);
    fs_err::write(&graph, bytes).unwrap();
    {
        let m = open(dir.path());
        assert!(m.index_dirty);
        assert_eq!(m.similar("disk full db", 5).unwrap().len(), 5);
    }
    fs_err::remove_dir_all(dir.path().join("index")).unwrap();
    let m = open(dir.path());
    assert!(m.index_dirty);
    assert_eq!(m.similar("kafka lag", 5).unwrap().len(), 5);
}

#[test]
fn a_second_handle_on_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _first = open(dir.path());
    let second = Memory::open(dir.path());
    assert!(
        matches!(second, Err(MemoryError::Locked { .. })),
        "{second:?}"
    );
}

#[test]
fn vectors_are_recomputed_each_time_the_corpus_doubles() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = open(dir.path());
    let mut reembedded = Vec::new();
    for i in 0..9 {
        let inc = Incident::new(format!("i{i}"), format!("service{i} returns errors"), "");
        reembedded.push(m.ingest(vec![inc]).unwrap().reembedded);
    }
    // Corpus sizes 1..=9: recomputed at 1, 2, 4 and 8 records.
    assert_eq!(
        reembedded,
        [true, true, false, true, false, false, false, true, false]
    );
}

#[test]
fn opening_with_another_embedder_embeds_everything_again() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut m = open(dir.path());
        m.ingest(incidents()).unwrap();
    }
    let m = Memory::open_with(
        dir.path(),
        MemoryOptions::default(),
        Box::new(HashingEmbedder::new(64)),
    )
    .unwrap();
    assert_eq!(m.index.dim(), 64);
    assert_eq!(m.similar("TLS certificate expired", 1).unwrap()[0].id, "t1");
}

#[test]
fn reclustering_labels_clusters_and_keeps_their_ids() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = open(dir.path());
    m.ingest(incidents()).unwrap();
    let before = m.show("k1").unwrap().unwrap().cluster.unwrap().id;
    let report = m.recluster().unwrap();
    assert_eq!(report.records, 5);
    let kafka = m.show("k1").unwrap().unwrap().cluster.unwrap();
    assert_eq!(kafka.id, before);
    assert_eq!(m.show("k2").unwrap().unwrap().cluster.unwrap().id, kafka.id);
    assert_eq!(kafka.size, 2);
    assert!(
        kafka.label.iter().any(|w| w == "kafka" || w == "consumer"),
        "{:?}",
        kafka.label
    );
    assert!(!kafka.label.iter().any(|w| w == "disk"));
    assert_eq!(kafka.representatives.len(), 2);
    let clusters = m.clusters().unwrap();
    assert_eq!(clusters.iter().map(|c| c.size).sum::<usize>(), 5);
    assert!(clusters.windows(2).all(|w| w[0].size >= w[1].size));
}

#[test]
fn cluster_times_span_the_members_opened_times() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = open(dir.path());
    let at = |s: &str| s.parse::<jiff::Timestamp>().unwrap();
    m.ingest(vec![
        Incident::new("a", "disk full on db-1", "").with_opened_at(at("2024-03-01T00:00:00Z")),
        Incident::new("b", "disk full on db-1", "").with_opened_at(at("2024-01-01T00:00:00Z")),
    ])
    .unwrap();
    for _ in 0..2 {
        let c = m.show("a").unwrap().unwrap().cluster.unwrap();
        assert_eq!(c.first_seen, Some(at("2024-01-01T00:00:00Z")));
        assert_eq!(c.last_seen, Some(at("2024-03-01T00:00:00Z")));
        m.recluster().unwrap();
    }
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    fs_err::create_dir_all(to).unwrap();
    for entry in fs_err::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        fs_err::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

#[test]
fn reclustering_an_empty_memory_yields_no_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = open(dir.path());
    let report = m.recluster().unwrap();
    assert_eq!((report.records, report.clusters), (0, 0));
    assert!(m.clusters().unwrap().is_empty());
}

#[test]
fn vector_index_rejects_vectors_of_another_dimension() {
    let items = vec![(1, vec![1.0, 0.0, 0.0])];
    let mut index = crate::VectorIndex::build(3, &items, &MemoryOptions::default()).unwrap();
    assert!(matches!(
        index.insert(2, &[1.0, 0.0]),
        Err(MemoryError::Dimension {
            expected: 3,
            actual: 2
        })
    ));
    assert!(index.search(&[1.0], 1).is_err());
    assert!(crate::VectorIndex::build(2, &items, &MemoryOptions::default()).is_err());
}
