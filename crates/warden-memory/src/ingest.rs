//! The write path: ingest, delete and full re-embedding, each one transaction.

use std::collections::HashMap;

use jiff::Timestamp;

use crate::embed::{Embedder, dot};
use crate::index::Index;
use crate::memory::MemoryOptions;
use crate::store::{ClusterRow, Row, Writer, key};
use crate::{Cluster, Incident, IngestReport, Memory, MemoryError};

/// Candidates examined for online assignment: the clusters of this many
/// nearest records.
const ONLINE_CANDIDATES: usize = 10;
/// Words of the founding record that label a cluster until re-clustering
/// computes a corpus-aware label.
const ONLINE_LABEL_WORDS: usize = 5;

impl Memory {
    /// Stores a batch of incidents atomically: all of them or, on any error,
    /// none. A record whose id is already stored replaces it (identical
    /// records are left alone); within a batch the last record with an id wins.
    /// Each new or changed record joins the nearest cluster or starts one.
    ///
    /// ```
    /// use warden_memory::{Incident, Memory};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let mut memory = Memory::open(dir.path())?;
    /// memory.ingest(vec![Incident::new("INC-1", "disk full on db-1", "")])?;
    /// let report = memory.ingest(vec![Incident::new("INC-1", "disk full on db-1", "")])?;
    /// assert_eq!((report.inserted, report.unchanged), (0, 1));
    /// assert_eq!(memory.len()?, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`MemoryError::Malformed`] naming the batch position of a record with
    /// an empty id or neither title nor body; store and embedder errors.
    pub fn ingest(&mut self, batch: Vec<Incident>) -> Result<IngestReport, MemoryError> {
        let batch = validate(batch)?;
        if batch.is_empty() {
            return Ok(IngestReport::default());
        }
        self.transact(|txn| txn.ingest(batch))
    }

    /// Deletes the incidents with these ids; returns how many existed.
    ///
    /// # Errors
    /// Store errors; nothing is deleted then.
    pub fn delete(&mut self, ids: &[&str]) -> Result<usize, MemoryError> {
        self.transact(|txn| {
            let mut removed = Vec::new();
            for id in ids {
                if let Some(row) = txn.w.row(id)? {
                    removed.push(row.incident.text());
                    txn.drop_slot(row.slot)?;
                    txn.w.remove_row(id)?;
                    txn.report.updated += 1;
                }
            }
            let refs: Vec<&str> = removed.iter().map(String::as_str).collect();
            txn.embedder.learn(&[], &refs);
            Ok(())
        })
        .map(|r| r.updated)
    }

    /// Embeds every stored record again with the current embedder and
    /// recomputes cluster centroids, in one transaction.
    pub(crate) fn reembed_all(&mut self) -> Result<(), MemoryError> {
        self.transact(|txn| {
            let rows = txn.w.rows()?;
            let texts: Vec<String> = rows.iter().map(|r| r.incident.text()).collect();
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            txn.embedder.learn(&refs, &[]);
            txn.reembed(&rows)
        })
        .map(|_| ())
    }

    /// Runs `body` and [`Txn::finish`] in one write transaction, then keeps
    /// the in-memory state consistent with what was (or was not) committed.
    fn transact(
        &mut self,
        body: impl FnOnce(&mut Txn<'_, '_>) -> Result<(), MemoryError>,
    ) -> Result<IngestReport, MemoryError> {
        let snapshot = self.embedder.state();
        let Self {
            store,
            embedder,
            index,
            options,
            next_slot,
            ..
        } = self;
        let result = store.write(|w| {
            let mut txn = Txn {
                w,
                embedder: embedder.as_mut(),
                index,
                options,
                next_slot,
                learns: snapshot.is_some(),
                clusters: HashMap::new(),
                report: IngestReport::default(),
            };
            body(&mut txn)?;
            txn.finish()
        });
        match result {
            Ok(report) => {
                self.index_dirty = true;
                if report.reembedded || self.index.needs_rebuild(self.options.rebuild_fraction) {
                    self.rebuild_index()?;
                }
                Ok(report)
            }
            Err(e) => {
                // Nothing was committed: undo the statistics and the index edits.
                if let Some(state) = snapshot {
                    self.embedder.restore(&state)?;
                }
                self.rebuild_index()?;
                Err(e)
            }
        }
    }
}

/// Rejects what can be rejected before the transaction starts, and keeps the
/// last record of each id.
fn validate(batch: Vec<Incident>) -> Result<Vec<Incident>, MemoryError> {
    let mut last: HashMap<String, usize> = HashMap::new();
    for (i, inc) in batch.iter().enumerate() {
        let bad = |reason: &str| MemoryError::Malformed {
            origin: "batch".to_owned(),
            line: i as u64 + 1,
            reason: reason.to_owned(),
        };
        if inc.id.trim().is_empty() {
            return Err(bad("the id is empty"));
        }
        if inc.title.trim().is_empty() && inc.body.trim().is_empty() {
            return Err(bad("the record has neither a title nor a body"));
        }
        let size = record_size(inc);
        if size > crate::MAX_RECORD_BYTES {
            return Err(bad(&format!(
                "the record holds {size} bytes of text, over the limit of {} bytes",
                crate::MAX_RECORD_BYTES
            )));
        }
        last.insert(inc.id.clone(), i);
    }
    Ok(batch
        .into_iter()
        .enumerate()
        .filter(|(i, inc)| last.get(&inc.id) == Some(i))
        .map(|(_, inc)| inc)
        .collect())
}

/// The bytes of text a record carries (what is embedded and stored).
fn record_size(inc: &Incident) -> usize {
    inc.id.len()
        + inc.title.len()
        + inc.body.len()
        + inc.labels.iter().map(String::len).sum::<usize>()
        + inc.resolution.as_ref().map_or(0, String::len)
        + inc.service.as_ref().map_or(0, String::len)
        + inc.severity.as_ref().map_or(0, String::len)
        + inc.plan.as_ref().map_or(0, |p| p.to_string().len())
}

/// One write transaction's working state.
struct Txn<'a, 't> {
    w: &'a mut Writer<'t>,
    embedder: &'a mut dyn Embedder,
    index: &'a mut Index,
    options: &'a MemoryOptions,
    next_slot: &'a mut u64,
    /// Whether the embedder keeps corpus statistics.
    learns: bool,
    /// Clusters touched in this transaction, written back by `finish`.
    clusters: HashMap<u64, Option<ClusterRow>>,
    report: IngestReport,
}

impl Txn<'_, '_> {
    fn ingest(&mut self, batch: Vec<Incident>) -> Result<(), MemoryError> {
        let now = Timestamp::now();
        let mut added = Vec::new();
        let mut removed = Vec::new();
        // (incident, replaced row, whether it needs a new vector)
        let mut work: Vec<(Incident, Option<Row>, bool)> = Vec::new();
        for inc in batch {
            match self.w.row(&inc.id)? {
                Some(old) if old.incident == inc => self.report.unchanged += 1,
                Some(old) => {
                    self.report.updated += 1;
                    let (old_text, new_text) = (old.incident.text(), inc.text());
                    let changed = old_text != new_text;
                    if changed {
                        removed.push(old_text);
                        added.push(new_text);
                    }
                    work.push((inc, Some(old), changed));
                }
                None => {
                    self.report.inserted += 1;
                    added.push(inc.text());
                    work.push((inc, None, true));
                }
            }
        }
        let added_refs: Vec<&str> = added.iter().map(String::as_str).collect();
        let removed_refs: Vec<&str> = removed.iter().map(String::as_str).collect();
        self.embedder.learn(&added_refs, &removed_refs);

        // Vectors computed with old corpus statistics drift from new ones;
        // recomputing all of them whenever the corpus has doubled keeps the
        // total work linear in the number of records ingested.
        let docs = self.w.len()? + self.report.inserted as u64;
        let embedded = self.w.meta_u64(key::EMBEDDED_DOCS)?.unwrap_or(0);
        if self.learns && docs >= 2 * embedded && embedded < docs {
            let rows = self.w.rows()?;
            self.reembed(&rows)?;
        }

        let vectors = self.embedder.embed(&added_refs)?;
        if vectors.len() != added.len() {
            return Err(MemoryError::Embedder {
                reason: format!(
                    "the embedder returned {} vectors for {} texts",
                    vectors.len(),
                    added.len()
                ),
            });
        }
        let mut fresh = vectors.iter().zip(&added);
        for (inc, old, changed) in work {
            let new = if changed { fresh.next() } else { None };
            match (old, new) {
                (old, Some((v, text))) => {
                    self.check_vector(v)?;
                    if let Some(old) = old {
                        self.drop_slot(old.slot)?;
                    }
                    let seen = inc.opened_at.unwrap_or(now);
                    let id = inc.id.clone();
                    let slot = *self.next_slot;
                    *self.next_slot += 1;
                    self.w.put_slot(slot, &id, v)?;
                    self.w.put_row(&Row {
                        incident: inc,
                        slot,
                        ingested_at: now,
                    })?;
                    self.assign(slot, &id, text, v, seen)?;
                    self.index.insert(slot, v);
                }
                // Same text, other fields changed: keep vector, slot and cluster.
                (Some(old), None) => self.w.put_row(&Row {
                    incident: inc,
                    slot: old.slot,
                    ingested_at: old.ingested_at,
                })?,
                (None, None) => {}
            }
        }
        Ok(())
    }

    fn check_vector(&self, v: &[f32]) -> Result<(), MemoryError> {
        if v.len() != self.index.dim() {
            return Err(MemoryError::Dimension {
                expected: self.index.dim(),
                actual: v.len(),
            });
        }
        if v.iter().any(|x| !x.is_finite()) {
            return Err(MemoryError::Embedder {
                reason: "the embedder returned a non-finite value".to_owned(),
            });
        }
        Ok(())
    }

    /// Recomputes the vectors of `rows` and every cluster centroid.
    fn reembed(&mut self, rows: &[Row]) -> Result<(), MemoryError> {
        let texts: Vec<String> = rows.iter().map(|r| r.incident.text()).collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let vectors = self.embedder.embed(&refs)?;
        let dim = self.index.dim();
        for info in self.w.clusters()? {
            let sum = vec![0.0; dim];
            self.clusters
                .insert(info.id, Some(ClusterRow { info, sum }));
        }
        for (row, v) in rows.iter().zip(&vectors) {
            self.check_vector(v)?;
            self.w.put_vector(row.slot, v)?;
            if let Some(c) = self.w.cluster_of(row.slot)?
                && let Some(Some(cluster)) = self.clusters.get_mut(&c)
            {
                cluster.sum.iter_mut().zip(v).for_each(|(s, x)| *s += x);
            }
        }
        self.w.set_meta_u64(
            key::EMBEDDED_DOCS,
            self.w.len()? + self.report.inserted as u64,
        )?;
        self.report.reembedded = true;
        Ok(())
    }

    fn cluster(&mut self, id: u64) -> Result<Option<&mut ClusterRow>, MemoryError> {
        if !self.clusters.contains_key(&id) {
            let row = self.w.cluster(id)?;
            self.clusters.insert(id, row);
        }
        Ok(self.clusters.get_mut(&id).and_then(Option::as_mut))
    }

    /// Removes a record version: its vector, its place in a cluster and in the index.
    fn drop_slot(&mut self, slot: u64) -> Result<(), MemoryError> {
        let cluster = self.w.cluster_of(slot)?;
        let v = self.w.vector(slot)?;
        if let (Some(c), Some(v)) = (cluster, v) {
            let id = self.w.id_of(slot)?;
            if let Some(row) = self.cluster(c)? {
                row.sum.iter_mut().zip(&v).for_each(|(s, x)| *s -= x);
                row.info.size = row.info.size.saturating_sub(1);
                if let Some(id) = id {
                    row.info.representatives.retain(|r| *r != id);
                }
                if row.info.size == 0 {
                    self.clusters.insert(c, None);
                }
            }
        }
        self.w.remove_slot(slot)?;
        self.index.remove(slot);
        Ok(())
    }

    /// Online assignment: the nearest centroid among the clusters of the
    /// nearest records, if similar enough; else a new cluster.
    fn assign(
        &mut self,
        slot: u64,
        id: &str,
        text: &str,
        v: &[f32],
        seen: Timestamp,
    ) -> Result<(), MemoryError> {
        let mut candidates = Vec::new();
        for (s, _) in self.index.search(v, ONLINE_CANDIDATES) {
            if let Some(c) = self.w.cluster_of(s)?
                && !candidates.contains(&c)
            {
                candidates.push(c);
            }
        }
        let mut best: Option<(u64, f32)> = None;
        for c in candidates {
            if let Some(row) = self.cluster(c)? {
                let norm = dot(&row.sum, &row.sum).sqrt();
                let sim = if norm > 0.0 {
                    dot(v, &row.sum) / norm
                } else {
                    0.0
                };
                if best.is_none_or(|(_, b)| sim > b) {
                    best = Some((c, sim));
                }
            }
        }
        let chosen = match best {
            Some((c, sim)) if sim >= self.options.online_threshold => c,
            _ => {
                let c = self.w.next(key::NEXT_CLUSTER)?;
                self.report.new_clusters += 1;
                self.clusters.insert(
                    c,
                    Some(ClusterRow {
                        info: Cluster {
                            id: c,
                            label: founder_label(text),
                            size: 0,
                            first_seen: Some(seen),
                            last_seen: Some(seen),
                            representatives: Vec::new(),
                        },
                        sum: vec![0.0; v.len()],
                    }),
                );
                c
            }
        };
        if let Some(row) = self.cluster(chosen)? {
            row.sum.iter_mut().zip(v).for_each(|(s, x)| *s += x);
            row.info.size += 1;
            row.info.first_seen = row.info.first_seen.min(Some(seen)).or(Some(seen));
            row.info.last_seen = row.info.last_seen.max(Some(seen));
            if row.info.representatives.len() < 3 {
                row.info.representatives.push(id.to_owned());
            }
        }
        self.w.set_cluster_of(slot, chosen)
    }

    /// Writes touched clusters, counters and embedder state; bumps the generation.
    fn finish(self) -> Result<IngestReport, MemoryError> {
        for (id, row) in &self.clusters {
            match row {
                Some(row) => self.w.put_cluster(row)?,
                None => self.w.remove_cluster(*id)?,
            }
        }
        let generation = self.w.meta_u64(key::GENERATION)?.unwrap_or(0) + 1;
        self.w.set_meta_u64(key::GENERATION, generation)?;
        self.w.set_meta_u64(key::NEXT_SLOT, *self.next_slot)?;
        self.w
            .set_meta(key::FINGERPRINT, self.embedder.fingerprint().as_bytes())?;
        self.w.set_meta_u64(key::DIM, self.embedder.dim() as u64)?;
        self.w
            .set_meta_u64(key::HNSW_LINKS, self.options.max_connections as u64)?;
        self.w.set_meta_u64(
            key::HNSW_EF_CONSTRUCTION,
            self.options.ef_construction as u64,
        )?;
        if self.learns
            && let Some(state) = self.embedder.state()
        {
            self.w.set_meta(key::EMBEDDER_STATE, &state)?;
        }
        Ok(self.report)
    }
}

fn founder_label(text: &str) -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    for w in crate::normalize::normalize(text).split(' ') {
        if words.len() == ONLINE_LABEL_WORDS {
            break;
        }
        let w = w.to_owned();
        if crate::cluster::label_words(&w).len() == 1 && !words.contains(&w) {
            words.push(w);
        }
    }
    words
}
