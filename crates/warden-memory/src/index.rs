//! HNSW index over record vectors (see [`Graph`]), with tombstones and a
//! checksummed on-disk dump that is only trusted when it matches the store.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::MemoryError;
use crate::graph::Graph;

/// HNSW construction and search parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HnswParams {
    pub max_connections: usize,
    pub ef_construction: usize,
    pub ef_search: usize,
}

const GRAPH_FILE: &str = "graph.bin";
const META_FILE: &str = "meta.json";
/// 3: warden's own graph file; 2 and before were hnsw_rs dumps, which are
/// rebuilt from the store on open.
const FORMAT: u32 = 3;

/// Written last into the dump directory: what the dump reflects and the
/// checksum of the graph file.
#[derive(Debug, Serialize, Deserialize)]
struct DumpMeta {
    format: u32,
    generation: u64,
    fingerprint: String,
    dim: usize,
    /// Points in the graph: one per distinct vector.
    points: usize,
    graph_sha256: String,
}

/// First 16 bytes of the SHA-256 of a vector's bits: identifies identical vectors.
type VectorDigest = [u8; 16];

/// The in-memory index: the HNSW graph keyed by record slot, plus the slots
/// whose records were deleted or replaced since the graph was built.
///
/// Identical vectors share one graph point. The neighbour heuristic keeps a
/// candidate only if it is closer to the new point than to every neighbour
/// kept so far, so a vector that repeats an earlier one (the same alert
/// firing again, a log line that differs only in masked fields) would get a
/// single link, to its twin: it costs build time, memory and disk and helps
/// no search. The first slot with a vector is its graph point; later slots
/// with the same vector are its `duplicates` and are returned with it.
pub(crate) struct Index {
    graph: Graph,
    dim: usize,
    pub(crate) params: HnswParams,
    tombstones: HashSet<u64>,
    /// Slots added, graph points and duplicates alike, removed ones included.
    points: usize,
    /// Each distinct vector's graph point.
    graph_slot: HashMap<VectorDigest, u64>,
    /// Graph point → the other slots with the identical vector.
    duplicates: HashMap<u64, Vec<u64>>,
}

impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Index")
            .field("dim", &self.dim)
            .field("points", &self.points)
            .field("tombstones", &self.tombstones.len())
            .field("graph_points", &self.graph_slot.len())
            .finish_non_exhaustive()
    }
}

impl Index {
    /// An empty index sized for about `capacity` points.
    pub(crate) fn new(dim: usize, capacity: usize, params: HnswParams) -> Self {
        Self {
            graph: Graph::new(
                dim,
                params.max_connections,
                params.ef_construction,
                capacity,
            ),
            dim,
            params,
            tombstones: HashSet::new(),
            points: 0,
            graph_slot: HashMap::new(),
            duplicates: HashMap::new(),
        }
    }

    /// Builds an index from `(slot, vector)` pairs, linking on all cores.
    pub(crate) fn build(dim: usize, items: &[(u64, Vec<f32>)], params: HnswParams) -> Self {
        let mut index = Self::new(dim, items.len(), params);
        let mut data: Vec<(u64, &[f32])> = Vec::with_capacity(items.len());
        for (slot, v) in items {
            if index.add_distinct(*slot, v) {
                data.push((*slot, v));
            }
        }
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        index.graph.extend(&data, threads);
        Self {
            points: items.len(),
            ..index
        }
    }

    pub(crate) fn dim(&self) -> usize {
        self.dim
    }

    /// Live points.
    pub(crate) fn len(&self) -> usize {
        self.points - self.tombstones.len()
    }

    pub(crate) fn insert(&mut self, slot: u64, v: &[f32]) {
        if self.add_distinct(slot, v) {
            self.graph.insert(slot, v);
        }
        self.points += 1;
    }

    /// Records `slot`; true when its vector is new and needs a graph point,
    /// false when it joined the graph point of an identical vector.
    fn add_distinct(&mut self, slot: u64, v: &[f32]) -> bool {
        match self.graph_slot.entry(digest(v)) {
            std::collections::hash_map::Entry::Occupied(point) => {
                self.duplicates.entry(*point.get()).or_default().push(slot);
                false
            }
            std::collections::hash_map::Entry::Vacant(free) => {
                free.insert(slot);
                true
            }
        }
    }

    /// Marks `slot` deleted; its graph point stays until the next rebuild.
    pub(crate) fn remove(&mut self, slot: u64) {
        self.tombstones.insert(slot);
    }

    /// Whether tombstones exceed `fraction` of the graph, so a rebuild pays off.
    pub(crate) fn needs_rebuild(&self, fraction: f64) -> bool {
        self.points > 0 && self.tombstones.len() as f64 > fraction * self.points as f64
    }

    /// The `k` nearest live slots with their cosine similarity, best first.
    pub(crate) fn search(&self, q: &[f32], k: usize) -> Vec<(u64, f32)> {
        if k == 0 || self.len() == 0 {
            return Vec::new();
        }
        let want = k.min(self.len());
        let extra = self.tombstones.len().min(k + 16);
        let ef = self.params.ef_search.max(k + extra);
        let mut out = self.collect(self.nearest(q, k + extra, ef, None), want);
        if out.len() < want {
            // Many tombstones near the query: skip them while walking.
            let live = |slot: u64| self.members(slot).next().is_some();
            out = self.collect(self.nearest(q, want, ef, Some(&live)), want);
        }
        out
    }

    /// The `n` nearest graph points (of those `accept` passes) as `(slot,
    /// distance)`, nearest first, from a search with beam `ef`.
    fn nearest(
        &self,
        q: &[f32],
        n: usize,
        ef: usize,
        accept: Option<&dyn Fn(u64) -> bool>,
    ) -> Vec<(u64, f32)> {
        let mut hits = self.graph.search(q, ef, accept);
        hits.truncate(n);
        hits
    }

    /// The live slots of graph point `point`: itself, then its duplicates.
    fn members(&self, point: u64) -> impl Iterator<Item = u64> + '_ {
        std::iter::once(point)
            .chain(self.duplicates.get(&point).into_iter().flatten().copied())
            .filter(|slot| !self.tombstones.contains(slot))
    }

    fn collect(&self, hits: Vec<(u64, f32)>, want: usize) -> Vec<(u64, f32)> {
        hits.into_iter()
            .flat_map(|(point, distance)| {
                let sim = 1.0 - distance;
                self.members(point).map(move |slot| (slot, sim))
            })
            .take(want)
            .collect()
    }

    /// Writes the dump into `dir` atomically enough: a fresh temporary
    /// directory renamed over the old one; checksums catch the rest.
    pub(crate) fn save(
        &self,
        dir: &Path,
        generation: u64,
        fingerprint: &str,
    ) -> Result<(), MemoryError> {
        let tmp = dir.with_extension("tmp");
        if tmp.exists() {
            fs_err::remove_dir_all(&tmp).map_err(|e| MemoryError::io(&tmp, e))?;
        }
        fs_err::create_dir_all(&tmp).map_err(|e| MemoryError::io(&tmp, e))?;
        let graph_path = tmp.join(GRAPH_FILE);
        {
            let file =
                fs_err::File::create(&graph_path).map_err(|e| MemoryError::io(&graph_path, e))?;
            let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
            self.graph
                .write_to(&mut w)
                .and_then(|()| std::io::Write::flush(&mut w))
                .map_err(|e| MemoryError::io(&graph_path, e))?;
        }
        let meta = DumpMeta {
            format: FORMAT,
            generation,
            fingerprint: fingerprint.to_owned(),
            dim: self.dim,
            points: self.graph_slot.len(),
            graph_sha256: sha256_file(&graph_path)?,
        };
        let meta_path = tmp.join(META_FILE);
        let json =
            serde_json::to_vec_pretty(&meta).map_err(|e| index_err(&meta_path, e.to_string()))?;
        fs_err::write(&meta_path, json).map_err(|e| MemoryError::io(&meta_path, e))?;
        if dir.exists() {
            fs_err::remove_dir_all(dir).map_err(|e| MemoryError::io(dir, e))?;
        }
        fs_err::rename(&tmp, dir).map_err(|e| MemoryError::io(dir, e))?;
        Ok(())
    }

    /// Loads the dump in `dir` if it reflects exactly `generation` of a store
    /// built with `fingerprint`, its checksums match and its graph holds each
    /// of the store's vectors (`live`) under its slot or an identical one.
    /// Any doubt returns `Err(reason)` and the caller rebuilds from the store.
    pub(crate) fn load(
        dir: &Path,
        generation: u64,
        fingerprint: &str,
        dim: usize,
        params: HnswParams,
        live: &[(u64, Vec<f32>)],
    ) -> Result<Self, String> {
        let meta_path = dir.join(META_FILE);
        let raw = fs_err::read(&meta_path).map_err(|e| e.to_string())?;
        let meta: DumpMeta =
            serde_json::from_slice(&raw).map_err(|e| format!("{}: {e}", meta_path.display()))?;
        if meta.format != FORMAT {
            return Err(format!(
                "dump format {}, this build reads {FORMAT}",
                meta.format
            ));
        }
        if meta.fingerprint != fingerprint || meta.dim != dim {
            return Err(format!(
                "built for {} (d={}), store uses {fingerprint} (d={dim})",
                meta.fingerprint, meta.dim
            ));
        }
        if meta.generation != generation {
            return Err(format!(
                "stale: index generation {}, store generation {generation}",
                meta.generation
            ));
        }
        let path = dir.join(GRAPH_FILE);
        if sha256_file(&path).map_err(|e| e.to_string())? != meta.graph_sha256 {
            return Err("checksum mismatch".to_owned());
        }
        let file = fs_err::File::open(&path).map_err(|e| e.to_string())?;
        let len = file.metadata().map_err(|e| e.to_string())?.len();
        let mut r = std::io::BufReader::with_capacity(1 << 20, file);
        let graph =
            Graph::read_from(&mut r, len, dim).map_err(|e| format!("{}: {e}", path.display()))?;
        if graph.len() != meta.points {
            return Err("point count differs from its metadata".to_owned());
        }
        let want = Graph::new(dim, params.max_connections, params.ef_construction, 0).shape();
        if graph.shape() != want {
            return Err(format!(
                "built with M {} / ef_construction {}, expected {} / {}",
                graph.shape().0,
                graph.shape().1,
                want.0,
                want.1
            ));
        }
        let mut graph_slot = HashMap::with_capacity(meta.points);
        for (slot, v) in graph.nodes() {
            if graph_slot.insert(digest(v), slot).is_some() {
                return Err("two graph points hold the same vector".to_owned());
            }
        }
        let graph_slots: HashSet<u64> = graph_slot.values().copied().collect();
        let mut unseen = graph_slots.clone();
        let mut duplicates: HashMap<u64, Vec<u64>> = HashMap::new();
        for (slot, v) in live {
            match graph_slot.get(&digest(v)) {
                Some(point) if point == slot => {
                    unseen.remove(slot);
                }
                Some(point) if !graph_slots.contains(slot) => {
                    duplicates.entry(*point).or_default().push(*slot);
                }
                _ => {
                    return Err(format!(
                        "store record {slot} has another vector in the index"
                    ));
                }
            }
        }
        // Graph points whose records were deleted stay as tombstones; their
        // duplicates, if any are still stored, are found through them.
        let points = live.len() + unseen.len();
        Ok(Self {
            graph,
            dim,
            params,
            tombstones: unseen,
            points,
            graph_slot,
            duplicates,
        })
    }
}

/// A cosine HNSW index over unit vectors keyed by `u64`: the index a
/// [`Memory`](crate::Memory) keeps, for callers with vectors of their own.
/// Removal leaves a tombstone that searches skip. Identical vectors share one
/// graph point and are all returned, so repeats do not degrade the graph.
///
/// ```
/// use warden_memory::{MemoryOptions, VectorIndex};
///
/// let items = vec![(1, vec![1.0, 0.0]), (2, vec![0.0, 1.0]), (3, vec![0.6, 0.8])];
/// let mut index = VectorIndex::build(2, &items, &MemoryOptions::default())?;
/// assert_eq!(index.search(&[1.0, 0.0], 1)?[0].0, 1);
/// index.remove(1);
/// assert_eq!(index.search(&[1.0, 0.0], 1)?[0].0, 3);
/// # Ok::<(), warden_memory::MemoryError>(())
/// ```
#[derive(Debug)]
pub struct VectorIndex(Index);

impl VectorIndex {
    /// Builds an index of `dim`-dimensional unit vectors, inserting in
    /// parallel; HNSW parameters come from `options`.
    ///
    /// # Errors
    /// [`MemoryError::Dimension`] when a vector has another length.
    pub fn build(
        dim: usize,
        items: &[(u64, Vec<f32>)],
        options: &crate::MemoryOptions,
    ) -> Result<Self, MemoryError> {
        if let Some((_, v)) = items.iter().find(|(_, v)| v.len() != dim) {
            return Err(MemoryError::Dimension {
                expected: dim,
                actual: v.len(),
            });
        }
        Ok(Self(Index::build(dim, items, options.hnsw())))
    }

    /// Adds a vector under `key` (a key must not be reused after removal).
    ///
    /// # Errors
    /// [`MemoryError::Dimension`] when `v` has another length.
    pub fn insert(&mut self, key: u64, v: &[f32]) -> Result<(), MemoryError> {
        self.check(v)?;
        self.0.insert(key, v);
        Ok(())
    }

    /// Removes `key` from search results.
    pub fn remove(&mut self, key: u64) {
        self.0.remove(key);
    }

    /// The `k` nearest keys with their cosine similarity, best first.
    ///
    /// # Errors
    /// [`MemoryError::Dimension`] when `q` has another length.
    pub fn search(&self, q: &[f32], k: usize) -> Result<Vec<(u64, f32)>, MemoryError> {
        self.check(q)?;
        Ok(self.0.search(q, k))
    }

    /// Sets the search beam width (`ef`) for later searches: wider finds
    /// more true neighbours and takes longer. Never below `k`.
    ///
    /// ```
    /// # use warden_memory::{MemoryOptions, VectorIndex};
    /// let mut index = VectorIndex::build(2, &[(1, vec![1.0, 0.0])], &MemoryOptions::default())?;
    /// index.set_ef_search(256);
    /// assert_eq!(index.search(&[1.0, 0.0], 1)?[0].0, 1);
    /// # Ok::<(), warden_memory::MemoryError>(())
    /// ```
    pub fn set_ef_search(&mut self, ef: usize) {
        self.0.params.ef_search = ef;
    }

    /// Live (not removed) vectors.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether no live vector remains.
    pub fn is_empty(&self) -> bool {
        self.0.len() == 0
    }

    /// Writes the index into directory `dir` (replaced if it exists), in the
    /// format a `Memory` keeps beside its store.
    ///
    /// # Errors
    /// I/O and [`MemoryError::Index`] errors naming the directory.
    pub fn save(&self, dir: &Path) -> Result<(), MemoryError> {
        self.0.save(dir, 0, "vector-index")
    }

    fn check(&self, v: &[f32]) -> Result<(), MemoryError> {
        if v.len() == self.0.dim() {
            Ok(())
        } else {
            Err(MemoryError::Dimension {
                expected: self.0.dim(),
                actual: v.len(),
            })
        }
    }
}

fn digest(v: &[f32]) -> VectorDigest {
    let mut hasher = Sha256::new();
    for x in v {
        hasher.update(x.to_le_bytes());
    }
    let mut out = [0u8; 16];
    out.copy_from_slice(&hasher.finalize()[..16]);
    out
}

fn index_err(path: &Path, reason: String) -> MemoryError {
    MemoryError::Index {
        path: PathBuf::from(path),
        reason,
    }
}

fn sha256_file(path: &Path) -> Result<String, MemoryError> {
    use std::io::Read;
    let mut file = fs_err::File::open(path).map_err(|e| MemoryError::io(path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(|e| MemoryError::io(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embed::{dot, l2_normalize};

    const PARAMS: HnswParams = HnswParams {
        max_connections: 16,
        ef_construction: 100,
        ef_search: 64,
    };

    fn vectors(n: usize, dim: usize) -> Vec<(u64, Vec<f32>)> {
        // Deterministic pseudo-random unit vectors (xorshift).
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        (0..n as u64)
            .map(|slot| {
                let mut v: Vec<f32> = (0..dim)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        (x % 2000) as f32 / 1000.0 - 1.0
                    })
                    .collect();
                l2_normalize(&mut v);
                (slot, v)
            })
            .collect()
    }

    #[test]
    fn finds_each_point_as_its_own_nearest_neighbour() {
        let items = vectors(300, 32);
        let index = Index::build(32, &items, PARAMS);
        for (slot, v) in &items {
            let hits = index.search(v, 1);
            assert_eq!(hits[0].0, *slot);
            assert!((hits[0].1 - 1.0).abs() < 1e-4);
        }
    }

    #[test]
    fn tombstoned_points_are_never_returned() {
        let items = vectors(200, 16);
        let mut index = Index::build(16, &items, PARAMS);
        for slot in 0..150 {
            index.remove(slot);
        }
        assert_eq!(index.len(), 50);
        assert!(index.needs_rebuild(0.5));
        let hits = index.search(&items[3].1, 10);
        assert_eq!(hits.len(), 10);
        assert!(hits.iter().all(|(s, _)| *s >= 150));
    }

    #[test]
    fn dump_round_trips_and_is_rejected_when_stale_or_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index");
        let items = vectors(100, 16);
        let mut index = Index::build(16, &items, PARAMS);
        index.remove(7);
        index.save(&path, 5, "fp").unwrap();
        let live: Vec<(u64, Vec<f32>)> = items.iter().filter(|(s, _)| *s != 7).cloned().collect();

        let loaded = Index::load(&path, 5, "fp", 16, PARAMS, &live).unwrap();
        assert_eq!(loaded.len(), 99);
        assert_eq!(loaded.search(&items[42].1, 1)[0].0, 42);

        let stale = Index::load(&path, 6, "fp", 16, PARAMS, &live).unwrap_err();
        assert!(stale.contains("stale"), "{stale}");
        let other = Index::load(&path, 5, "other", 16, PARAMS, &live).unwrap_err();
        assert!(other.contains("built for"), "{other}");
        let wider = HnswParams {
            max_connections: 24,
            ..PARAMS
        };
        let shape = Index::load(&path, 5, "fp", 16, wider, &live).unwrap_err();
        assert!(shape.contains("built with M 16"), "{shape}");
        // An hnsw_rs dump from before format 3 is rebuilt, not misread.
        let meta_path = path.join(META_FILE);
        let meta = fs_err::read_to_string(&meta_path).unwrap();
        fs_err::write(&meta_path, meta.replace("\"format\": 3", "\"format\": 2")).unwrap();
        let old = Index::load(&path, 5, "fp", 16, PARAMS, &live).unwrap_err();
        assert!(old.contains("dump format 2"), "{old}");
        fs_err::write(&meta_path, meta).unwrap();

        let graph = path.join(GRAPH_FILE);
        let mut bytes = fs_err::read(&graph).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0xff;
        fs_err::write(&graph, bytes).unwrap();
        let corrupt = Index::load(&path, 5, "fp", 16, PARAMS, &live).unwrap_err();
        assert!(corrupt.contains("checksum"), "{corrupt}");
    }

    /// 30 distinct vectors, each stored under 20 slots, interleaved.
    fn repeated(dim: usize) -> Vec<(u64, Vec<f32>)> {
        let distinct = vectors(30, dim);
        (0..600u64)
            .map(|slot| (slot, distinct[(slot % 30) as usize].1.clone()))
            .collect()
    }

    fn assert_group_found(index: &Index, items: &[(u64, Vec<f32>)], group: u64, expect: usize) {
        let hits = index.search(&items[group as usize].1, 20);
        assert_eq!(hits.len(), 20);
        let members = hits
            .iter()
            .filter(|(s, sim)| s % 30 == group && (sim - 1.0).abs() < 1e-4)
            .count();
        assert_eq!(members, expect, "group {group}: {hits:?}");
    }

    #[test]
    fn identical_vectors_share_a_graph_point_and_are_all_found() {
        let items = repeated(16);
        let mut index = Index::build(16, &items[..300], PARAMS);
        for (slot, v) in &items[300..] {
            index.insert(*slot, v);
        }
        assert_eq!(index.graph_slot.len(), 30);
        assert_eq!(index.len(), 600);
        for group in 0..30 {
            assert_group_found(&index, &items, group, 20);
        }
        // Removing the graph point keeps its duplicates findable.
        index.remove(4);
        index.remove(34);
        assert_group_found(&index, &items, 4, 18);
        let hits = index.search(&items[4].1, 20);
        assert!(hits.iter().all(|(s, _)| *s != 4 && *s != 34), "{hits:?}");
    }

    #[test]
    fn a_dump_with_duplicates_reloads_them_from_the_store_vectors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index");
        let items = repeated(8);
        Index::build(8, &items, PARAMS)
            .save(&path, 1, "fp")
            .unwrap();
        // The store lost the graph point of group 2 (slot 2) and slot 32.
        let live: Vec<(u64, Vec<f32>)> = items
            .iter()
            .filter(|(s, _)| *s != 2 && *s != 32)
            .cloned()
            .collect();
        let loaded = Index::load(&path, 1, "fp", 8, PARAMS, &live).unwrap();
        assert_eq!(loaded.len(), 598);
        assert_group_found(&loaded, &items, 2, 18);
        assert_group_found(&loaded, &items, 3, 20);

        let mut changed = live.clone();
        changed[0].1 = items[1].1.clone();
        let err = Index::load(&path, 1, "fp", 8, PARAMS, &changed).unwrap_err();
        assert!(err.contains("another vector"), "{err}");
        let mut unknown = live;
        unknown[5].1 = vectors(31, 8)[30].1.clone();
        let err = Index::load(&path, 1, "fp", 8, PARAMS, &unknown).unwrap_err();
        assert!(err.contains("another vector"), "{err}");
    }

    #[test]
    fn points_inserted_after_the_build_are_found() {
        let items = vectors(1400, 24);
        let mut index = Index::build(24, &items[..200], PARAMS);
        for (slot, v) in &items[200..] {
            index.insert(*slot, v);
            assert_eq!(index.search(v, 1)[0].0, *slot);
        }
        assert_eq!(index.graph.len(), 1400);
        for (slot, v) in items.iter().step_by(7) {
            assert_eq!(index.search(v, 1)[0].0, *slot);
        }
    }

    #[test]
    fn an_index_grown_from_empty_finds_the_exact_top_ten() {
        let items = vectors(100, 16);
        let mut index = Index::new(16, 0, PARAMS);
        assert!(index.search(&items[0].1, 3).is_empty());
        for (slot, v) in &items {
            index.insert(*slot, v);
        }
        let q = &items[5].1;
        let mut exact: Vec<(u64, f32)> = items.iter().map(|(s, v)| (*s, dot(q, v))).collect();
        exact.sort_by(|a, b| b.1.total_cmp(&a.1));
        let hits: Vec<u64> = index.search(q, 10).iter().map(|h| h.0).collect();
        let want: Vec<u64> = exact[..10].iter().map(|h| h.0).collect();
        assert_eq!(hits, want);
    }

    #[test]
    fn the_graph_finds_most_true_neighbours() {
        let items = vectors(3000, 32);
        let index = Index::build(32, &items, PARAMS);
        let mut found = 0;
        for (_, q) in items.iter().step_by(60) {
            let mut exact: Vec<(u64, f32)> = items.iter().map(|(s, v)| (*s, dot(q, v))).collect();
            exact.sort_by(|a, b| b.1.total_cmp(&a.1));
            let hits = index.search(q, 10);
            found += hits
                .iter()
                .filter(|(s, _)| exact[..10].iter().any(|(e, _)| e == s))
                .count();
        }
        // 50 queries x 10 on uniform 32-d data, which is hard for any graph.
        assert!(found >= 450, "recall@10 {}", found as f64 / 500.0);
    }

    #[test]
    fn a_missing_dump_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let err = Index::load(&dir.path().join("nope"), 1, "fp", 8, PARAMS, &[]);
        assert!(err.is_err());
    }
}
