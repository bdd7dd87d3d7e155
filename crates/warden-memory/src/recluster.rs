//! Batch re-clustering of the whole memory over its kNN similarity graph.

use std::collections::HashMap;

use crate::cluster::{Graph, WordStats, label, label_words, partition, representatives};
use crate::index::Index;
use crate::store::{ClusterRow, key};
use crate::{Cluster, Memory, MemoryError, ReclusterReport};

/// Terms in a cluster label.
const LABEL_TERMS: usize = 4;
/// Representative members kept per cluster.
const REPRESENTATIVES: usize = 3;

impl Memory {
    /// Re-clusters every record from scratch: builds the graph joining each
    /// record to its mutual nearest neighbours above
    /// [`MemoryOptions::edge_threshold`](crate::MemoryOptions::edge_threshold),
    /// partitions it (no cluster count is given), then relabels clusters with
    /// their most distinctive terms. Cluster ids are kept where a new cluster
    /// overlaps an old one most.
    ///
    /// ```
    /// use warden_memory::{Incident, Memory};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let mut memory = Memory::open(dir.path())?;
    /// memory.ingest(vec![
    ///     Incident::new("1", "disk full on db-1", "/var/lib/postgresql at 100%"),
    ///     Incident::new("2", "disk full on db-2", "/var/lib/postgresql at 97%"),
    ///     Incident::new("3", "TLS certificate expired on ingress", ""),
    /// ])?;
    /// let report = memory.recluster()?;
    /// assert_eq!(report.clusters, 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// Store errors; the previous clustering is kept then.
    pub fn recluster(&mut self) -> Result<ReclusterReport, MemoryError> {
        let snapshot = self.store.read()?;
        let rows = snapshot.rows()?;
        let mut vectors = Vec::with_capacity(rows.len());
        let mut old = Vec::with_capacity(rows.len());
        for row in &rows {
            vectors.push(snapshot.vector(row.slot)?.unwrap_or_default());
            old.push(snapshot.cluster_of(row.slot)?);
        }
        drop(snapshot);

        // Identical vectors (log lines differing only in masked values) become
        // one graph node: otherwise a large group of duplicates fills every
        // member's neighbour list with itself and hides its other neighbours.
        let mut node_of = Vec::with_capacity(rows.len());
        let mut nodes: Vec<usize> = Vec::new();
        let mut seen: HashMap<Vec<u32>, usize> = HashMap::new();
        for (i, v) in vectors.iter().enumerate() {
            let bits: Vec<u32> = v.iter().map(|x| x.to_bits()).collect();
            let next = nodes.len();
            let node = *seen.entry(bits).or_insert(next);
            if node == next {
                nodes.push(i);
            }
            node_of.push(node);
        }
        drop(seen);
        let k = self.options.graph_neighbours;
        let neighbours = if nodes.len() == rows.len() {
            let slot_node: HashMap<u64, u32> = rows
                .iter()
                .enumerate()
                .map(|(i, r)| (r.slot, i as u32))
                .collect();
            knn(&self.index, &vectors, k, |slot| {
                slot_node.get(&slot).copied()
            })
        } else {
            let items: Vec<(u64, Vec<f32>)> = nodes
                .iter()
                .enumerate()
                .map(|(n, &i)| (n as u64, vectors[i].clone()))
                .collect();
            let temp = Index::build(self.index.dim(), &items, self.options.hnsw());
            let node_vectors: Vec<Vec<f32>> = items.into_iter().map(|(_, v)| v).collect();
            knn(&temp, &node_vectors, k, |slot| u32::try_from(slot).ok())
        };
        let graph = Graph::from_knn(&neighbours, self.options.edge_threshold, true);
        let node_labels = partition(&graph, self.options.method);

        let mut groups: Vec<Vec<usize>> = Vec::new();
        for (i, &node) in node_of.iter().enumerate() {
            let g = node_labels[node];
            if g >= groups.len() {
                groups.resize_with(g + 1, Vec::new);
            }
            groups[g].push(i);
        }
        groups.retain(|g| !g.is_empty());
        groups.sort_by(|a, b| b.len().cmp(&a.len()).then(a[0].cmp(&b[0])));

        let words: Vec<Vec<String>> = rows
            .iter()
            .map(|r| label_words(&r.incident.text()))
            .collect();
        let mut corpus = WordStats::default();
        words.iter().for_each(|w| corpus.add(w));

        let report = ReclusterReport {
            records: rows.len(),
            clusters: groups.len(),
            singletons: groups.iter().filter(|g| g.len() == 1).count(),
            edges: graph.edges.len(),
        };
        let dim = self.index.dim();
        self.store.write(|w| {
            let mut next_id = w.meta_u64(key::NEXT_CLUSTER)?.unwrap_or(0);
            let mut taken = std::collections::HashSet::new();
            w.clear_clusters()?;
            for members in &groups {
                let id = stable_id(members, &old, &mut taken).unwrap_or_else(|| {
                    next_id += 1;
                    next_id - 1
                });
                let mut sum = vec![0f32; dim];
                for &i in members {
                    sum.iter_mut().zip(&vectors[i]).for_each(|(s, x)| *s += x);
                    w.set_cluster_of(rows[i].slot, id)?;
                }
                let member_vectors: Vec<&[f32]> =
                    members.iter().map(|&i| vectors[i].as_slice()).collect();
                let member_words: Vec<&[String]> =
                    members.iter().map(|&i| words[i].as_slice()).collect();
                let seen = members.iter().map(|&i| rows[i].seen_at());
                w.put_cluster(&ClusterRow {
                    info: Cluster {
                        id,
                        label: label(&member_words, &corpus, LABEL_TERMS),
                        size: members.len(),
                        first_seen: seen.clone().min(),
                        last_seen: seen.max(),
                        representatives: representatives(&member_vectors, &sum, REPRESENTATIVES)
                            .into_iter()
                            .map(|j| rows[members[j]].incident.id.clone())
                            .collect(),
                    },
                    sum,
                })?;
            }
            w.set_meta_u64(key::NEXT_CLUSTER, next_id)
        })?;
        Ok(report)
    }
}

/// The old cluster id most members came from, unless a larger new cluster
/// already took it.
fn stable_id(
    members: &[usize],
    old: &[Option<u64>],
    taken: &mut std::collections::HashSet<u64>,
) -> Option<u64> {
    let mut votes: HashMap<u64, usize> = HashMap::new();
    for &i in members {
        if let Some(c) = old[i] {
            *votes.entry(c).or_insert(0) += 1;
        }
    }
    let mut ranked: Vec<(usize, u64)> = votes.into_iter().map(|(c, n)| (n, c)).collect();
    ranked.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let id = ranked
        .into_iter()
        .map(|(_, c)| c)
        .find(|c| !taken.contains(c))?;
    taken.insert(id);
    Some(id)
}

/// The `k` nearest neighbours (node, similarity) of every vector, searched
/// in parallel; `node` maps an index slot to a node and drops unknown slots.
fn knn(
    index: &Index,
    vectors: &[Vec<f32>],
    k: usize,
    node: impl Fn(u64) -> Option<u32> + Sync,
) -> Vec<Vec<(u32, f32)>> {
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let chunk = vectors.len().div_ceil(threads).max(1);
    let mut out: Vec<Vec<(u32, f32)>> = Vec::with_capacity(vectors.len());
    std::thread::scope(|scope| {
        let handles: Vec<_> = vectors
            .chunks(chunk)
            .enumerate()
            .map(|(c, part)| {
                let node = &node;
                let len = part.len();
                let handle = scope.spawn(move || {
                    part.iter()
                        .enumerate()
                        .map(|(j, v)| {
                            let me = (c * chunk + j) as u32;
                            index
                                .search(v, k + 1)
                                .into_iter()
                                .filter_map(|(slot, sim)| node(slot).map(|n| (n, sim)))
                                .filter(|&(n, _)| n != me)
                                .take(k)
                                .collect::<Vec<_>>()
                        })
                        .collect::<Vec<_>>()
                });
                (len, handle)
            })
            .collect();
        for (len, h) in handles {
            // A search thread cannot panic short of a bug in the graph; its
            // records then simply get no neighbours.
            out.extend(h.join().unwrap_or_else(|_| vec![Vec::new(); len]));
        }
    });
    out
}
