//! The `Memory` handle: opening a data directory, queries, persistence.

use std::path::{Path, PathBuf};

use crate::cluster::ClusterMethod;
use crate::embed::{Embedder, HashingEmbedder};
use crate::index::{HnswParams, Index};
use crate::store::{Store, key};
use crate::{Cluster, Hit, IncidentView, MemoryError, RecallHit};

const STORE_FILE: &str = "incidents.redb";
const INDEX_DIR: &str = "index";

/// Tunables of a [`Memory`]. One configuration serves log lines and tickets
/// alike; the defaults are what the evaluation in `examples/memory_eval.rs`
/// reports.
///
/// ```
/// use warden_memory::MemoryOptions;
///
/// let mut opts = MemoryOptions::default();
/// opts.ef_search = 128; // trade latency for recall
/// assert_eq!(opts.graph_neighbours, 10);
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct MemoryOptions {
    /// Online assignment joins the nearest cluster whose centroid has at
    /// least this cosine similarity to the new record, else starts a new
    /// cluster. Default `0.7`.
    pub online_threshold: f32,
    /// Batch re-clustering keeps graph edges of at least this similarity.
    /// Default `0.75`.
    pub edge_threshold: f32,
    /// Neighbours searched per record to build the similarity graph. This
    /// bounds the graph's degree, not the number of clusters. Default `10`.
    pub graph_neighbours: usize,
    /// Graph partitioning used by re-clustering. Default [`ClusterMethod::Components`].
    pub method: ClusterMethod,
    /// HNSW links per node on layers above 0 (layer 0 holds twice as
    /// many), clamped to 2..=128; this and `ef_construction` are kept in the
    /// store on its first write and win over the options on later opens, so
    /// rebuilds keep the shape. Default `16`: recall@10 is 1.0 up to 100k
    /// records and building stays cheap on small boxes. On 1M synthetic
    /// 384-d vectors (`benches/memory.rs`, isotropic mixture) it gives
    /// recall@10 0.86 at the default `ef_search` of 64, 0.95 at 128 and 0.97
    /// at 256 (search p50 0.92 ms); near a million records, raise
    /// `ef_search` before `max_connections`.
    pub max_connections: usize,
    /// HNSW candidate list size while building. Default `100`.
    pub ef_construction: usize,
    /// HNSW candidate list size while searching (raised to `k` when smaller). Default `64`.
    pub ef_search: usize,
    /// The index is rebuilt from the store when deleted or replaced entries
    /// exceed this fraction of its points. Default `0.2`.
    pub rebuild_fraction: f64,
}

impl Default for MemoryOptions {
    fn default() -> Self {
        Self {
            online_threshold: 0.7,
            edge_threshold: 0.75,
            graph_neighbours: 10,
            method: ClusterMethod::Components,
            max_connections: 16,
            ef_construction: 100,
            ef_search: 64,
            rebuild_fraction: 0.2,
        }
    }
}

impl MemoryOptions {
    pub(crate) fn hnsw(&self) -> HnswParams {
        HnswParams {
            max_connections: self.max_connections,
            ef_construction: self.ef_construction,
            ef_search: self.ef_search,
        }
    }
}

/// The incident memory of one data directory: a redb store
/// (`incidents.redb`) and the HNSW index derived from it (`index/`).
///
/// Only one process may have a directory open for writing; a second gets
/// [`MemoryError::Locked`].
pub struct Memory {
    pub(crate) dir: PathBuf,
    pub(crate) store: Store,
    pub(crate) embedder: Box<dyn Embedder>,
    pub(crate) index: Index,
    pub(crate) options: MemoryOptions,
    /// Slots are never reused within a process, even after a rolled-back batch,
    /// so the in-memory index can never confuse two records.
    pub(crate) next_slot: u64,
    /// The index differs from its dump on disk.
    pub(crate) index_dirty: bool,
}

impl std::fmt::Debug for Memory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Memory")
            .field("dir", &self.dir)
            .field("embedder", &self.embedder)
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

impl Memory {
    /// Opens (creating if needed) the memory in `dir` with the default
    /// [`HashingEmbedder`] and [`MemoryOptions`].
    ///
    /// # Errors
    /// [`MemoryError::Locked`] when another process has it open, I/O and
    /// store errors naming the file.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, MemoryError> {
        Self::open_with(
            dir,
            MemoryOptions::default(),
            Box::new(HashingEmbedder::default()),
        )
    }

    /// Opens the memory in `dir` with a given embedder and options.
    ///
    /// Pass a fresh embedder: its corpus statistics are restored from the
    /// store. If the store was built with a different embedder (see
    /// [`Embedder::fingerprint`]), every record is embedded again. An index
    /// dump that is missing, older than the store, built for another embedder
    /// or fails its checksums is rebuilt from the store.
    ///
    /// # Errors
    /// As [`Memory::open`], plus [`MemoryError::Embedder`].
    pub fn open_with(
        dir: impl AsRef<Path>,
        options: MemoryOptions,
        embedder: Box<dyn Embedder>,
    ) -> Result<Self, MemoryError> {
        let dir = dir.as_ref().to_path_buf();
        fs_err::create_dir_all(&dir).map_err(|e| MemoryError::io(&dir, e))?;
        let store = Store::open(&dir.join(STORE_FILE))?;
        let dim = embedder.dim();
        let mut memory = Self {
            index: Index::new(dim, 0, options.hnsw()),
            dir,
            store,
            embedder,
            options,
            next_slot: 0,
            index_dirty: false,
        };
        let fingerprint = memory.embedder.fingerprint();
        let snapshot = memory.store.read()?;
        memory.next_slot = snapshot.meta_u64(key::NEXT_SLOT)?.unwrap_or(0);
        let stored_shape = (
            snapshot.meta_u64(key::HNSW_LINKS)?,
            snapshot.meta_u64(key::HNSW_EF_CONSTRUCTION)?,
        );
        if let (Some(links), Some(ef)) = stored_shape {
            let opts = &mut memory.options;
            opts.max_connections = usize::try_from(links).unwrap_or(opts.max_connections);
            opts.ef_construction = usize::try_from(ef).unwrap_or(opts.ef_construction);
        }
        let stored_fp = snapshot.meta_str(key::FINGERPRINT)?;
        let empty = snapshot.len()? == 0;
        if stored_fp.as_deref() == Some(fingerprint.as_str()) {
            if let Some(state) = snapshot.meta(key::EMBEDDER_STATE)? {
                memory.embedder.restore(&state)?;
            }
        } else if !empty {
            tracing::info!(
                from = stored_fp.as_deref().unwrap_or("?"),
                to = %fingerprint,
                "embedder changed; embedding every record again"
            );
            drop(snapshot);
            memory.reembed_all()?;
        }
        memory.load_index()?;
        Ok(memory)
    }

    fn load_index(&mut self) -> Result<(), MemoryError> {
        let snapshot = self.store.read()?;
        let generation = snapshot.meta_u64(key::GENERATION)?.unwrap_or(0);
        let vectors = snapshot.vectors()?;
        let fingerprint = self.embedder.fingerprint();
        let dir = self.dir.join(INDEX_DIR);
        match Index::load(
            &dir,
            generation,
            &fingerprint,
            self.embedder.dim(),
            self.options.hnsw(),
            &vectors,
        ) {
            Ok(index) => {
                self.index = index;
                self.index_dirty = false;
            }
            Err(reason) => {
                if !vectors.is_empty() || dir.exists() {
                    tracing::info!(index = %dir.display(), %reason, "rebuilding index from the store");
                }
                self.index = Index::build(self.embedder.dim(), &vectors, self.options.hnsw());
                self.index_dirty = true;
            }
        }
        Ok(())
    }

    /// Rebuilds the in-memory index from the vectors in the store.
    pub(crate) fn rebuild_index(&mut self) -> Result<(), MemoryError> {
        let vectors = self.store.read()?.vectors()?;
        self.index = Index::build(self.embedder.dim(), &vectors, self.options.hnsw());
        self.index_dirty = true;
        Ok(())
    }

    /// Writes the index beside the store if it changed since it was loaded,
    /// so the next open need not rebuild it. Dropping a `Memory` does this
    /// too, logging instead of returning a failure.
    ///
    /// # Errors
    /// [`MemoryError::Index`] or I/O errors naming the index directory.
    pub fn flush(&mut self) -> Result<(), MemoryError> {
        if !self.index_dirty {
            return Ok(());
        }
        let generation = self.store.read()?.meta_u64(key::GENERATION)?.unwrap_or(0);
        self.index.save(
            &self.dir.join(INDEX_DIR),
            generation,
            &self.embedder.fingerprint(),
        )?;
        self.index_dirty = false;
        Ok(())
    }

    /// Number of stored incidents.
    ///
    /// # Errors
    /// Store errors.
    pub fn len(&self) -> Result<usize, MemoryError> {
        Ok(self.store.read()?.len()? as usize)
    }

    /// Whether the memory holds no incident.
    ///
    /// # Errors
    /// Store errors.
    pub fn is_empty(&self) -> Result<bool, MemoryError> {
        Ok(self.len()? == 0)
    }

    /// The `k` stored incidents most similar to `text`, best first.
    ///
    /// A text without any feature (empty, or punctuation only) matches nothing.
    ///
    /// # Errors
    /// Store and embedder errors.
    pub fn similar(&self, text: &str, k: usize) -> Result<Vec<Hit>, MemoryError> {
        let Some(q) = self.query_vector(text)? else {
            return Ok(Vec::new());
        };
        let snapshot = self.store.read()?;
        let mut hits = Vec::new();
        for (slot, score) in self.index.search(&q, k) {
            if let Some(id) = snapshot.id_of(slot)? {
                hits.push(Hit {
                    id,
                    score,
                    cluster: snapshot.cluster_of(slot)?,
                });
            }
        }
        Ok(hits)
    }

    /// Like [`Memory::similar`], with each incident (its resolution and plan
    /// included) and its cluster: what a case-based planner needs.
    ///
    /// # Errors
    /// Store and embedder errors.
    pub fn recall(&self, text: &str, k: usize) -> Result<Vec<RecallHit>, MemoryError> {
        let hits = self.similar(text, k)?;
        let snapshot = self.store.read()?;
        let mut out = Vec::with_capacity(hits.len());
        for hit in hits {
            let Some(row) = snapshot.row(&hit.id)? else {
                continue;
            };
            let cluster = match hit.cluster {
                Some(c) => snapshot.cluster_info(c)?,
                None => None,
            };
            out.push(RecallHit {
                incident: row.incident,
                score: hit.score,
                cluster,
            });
        }
        Ok(out)
    }

    /// The stored incident `id` with its cluster, if there is one.
    ///
    /// # Errors
    /// Store errors.
    pub fn show(&self, id: &str) -> Result<Option<IncidentView>, MemoryError> {
        let snapshot = self.store.read()?;
        let Some(row) = snapshot.row(id)? else {
            return Ok(None);
        };
        let cluster = match snapshot.cluster_of(row.slot)? {
            Some(c) => snapshot.cluster_info(c)?,
            None => None,
        };
        Ok(Some(IncidentView {
            incident: row.incident,
            cluster,
        }))
    }

    /// Every cluster, largest first.
    ///
    /// # Errors
    /// Store errors.
    pub fn clusters(&self) -> Result<Vec<Cluster>, MemoryError> {
        let mut out = self.store.read()?.clusters()?;
        out.sort_by(|a, b| b.size.cmp(&a.size).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    /// The embedded query, or `None` when the text has no features.
    fn query_vector(&self, text: &str) -> Result<Option<Vec<f32>>, MemoryError> {
        let q = self.embedder.embed(&[text])?.pop().unwrap_or_default();
        if q.len() != self.index.dim() {
            return Err(MemoryError::Dimension {
                expected: self.index.dim(),
                actual: q.len(),
            });
        }
        Ok(q.iter().any(|x| *x != 0.0).then_some(q))
    }
}

impl Drop for Memory {
    fn drop(&mut self) {
        if let Err(e) = self.flush() {
            tracing::warn!(error = %e, "could not save the index; it will be rebuilt on next open");
        }
    }
}
