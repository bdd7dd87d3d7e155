//! Batch clustering over the kNN similarity graph, and cluster labels.
//!
//! Online assignment (nearest centroid above a threshold) lives with the
//! ingest path; this module holds what needs the whole corpus.

use std::collections::HashMap;

use crate::embed::dot;
use crate::normalize::normalize;

/// How the batch re-clustering partitions the similarity graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ClusterMethod {
    /// Connected components of the graph whose edges join mutual k-nearest
    /// neighbours at or above the similarity threshold: single linkage with
    /// the chaining through hubs cut away. Transparent (every member is linked
    /// to the cluster by a chain of similar pairs) and needs no cluster count.
    #[default]
    Components,
    /// Louvain-style modularity optimisation on the same graph, with
    /// communities split into connected parts (a Leiden guarantee).
    Modularity,
}

/// A sparse undirected graph as an edge list over `n` nodes.
#[derive(Debug, Default)]
pub(crate) struct Graph {
    pub n: usize,
    pub edges: Vec<(u32, u32, f32)>,
}

impl Graph {
    /// Keeps edge `i -> j` from the neighbour lists when the similarity is at
    /// least `threshold` and, if `mutual`, `i` is also among `j`'s neighbours.
    pub(crate) fn from_knn(neighbours: &[Vec<(u32, f32)>], threshold: f32, mutual: bool) -> Self {
        let n = neighbours.len();
        let mut edges = Vec::new();
        for (i, list) in neighbours.iter().enumerate() {
            let i = i as u32;
            for &(j, sim) in list {
                if j == i || sim < threshold {
                    continue;
                }
                let back = neighbours[j as usize].iter().any(|&(x, _)| x == i);
                if mutual && !back {
                    continue;
                }
                // Each undirected edge once: from the lower id, or from the
                // only side that lists it.
                if i < j || !back {
                    edges.push((i.min(j), i.max(j), sim));
                }
            }
        }
        edges.sort_by_key(|a| (a.0, a.1));
        edges.dedup_by(|a, b| a.0 == b.0 && a.1 == b.1);
        Self { n, edges }
    }
}

/// Partitions `graph`; returns a cluster number per node, numbered densely
/// from 0 in order of each cluster's smallest node.
pub(crate) fn partition(graph: &Graph, method: ClusterMethod) -> Vec<usize> {
    let raw = match method {
        ClusterMethod::Components => components(graph.n, graph.edges.iter().map(|e| (e.0, e.1))),
        ClusterMethod::Modularity => {
            let communities = louvain(graph);
            // Leiden's guarantee, cheaply: a community must be connected
            // through its own edges, otherwise it is split.
            let inner = graph
                .edges
                .iter()
                .filter(|e| communities[e.0 as usize] == communities[e.1 as usize])
                .map(|e| (e.0, e.1));
            components(graph.n, inner)
        }
    };
    renumber(&raw)
}

fn renumber(labels: &[usize]) -> Vec<usize> {
    let mut map = HashMap::new();
    labels
        .iter()
        .map(|l| {
            let next = map.len();
            *map.entry(*l).or_insert(next)
        })
        .collect()
}

fn components(n: usize, edges: impl Iterator<Item = (u32, u32)>) -> Vec<usize> {
    let mut parent: Vec<usize> = (0..n).collect();
    fn find(parent: &mut [usize], mut x: usize) -> usize {
        while parent[x] != x {
            parent[x] = parent[parent[x]];
            x = parent[x];
        }
        x
    }
    for (a, b) in edges {
        let (ra, rb) = (find(&mut parent, a as usize), find(&mut parent, b as usize));
        if ra != rb {
            parent[ra.max(rb)] = ra.min(rb);
        }
    }
    (0..n).map(|x| find(&mut parent, x)).collect()
}

/// Multi-level Louvain (modularity, resolution 1) with deterministic node order.
fn louvain(graph: &Graph) -> Vec<usize> {
    let mut membership: Vec<usize> = (0..graph.n).collect();
    // Level graph: adjacency with self-loops carrying aggregated inner weight.
    let mut adj: Vec<Vec<(usize, f64)>> = vec![Vec::new(); graph.n];
    for &(a, b, w) in &graph.edges {
        adj[a as usize].push((b as usize, f64::from(w)));
        adj[b as usize].push((a as usize, f64::from(w)));
    }
    let mut self_loops = vec![0f64; graph.n];
    for _level in 0..16 {
        let n = adj.len();
        let degree: Vec<f64> = (0..n)
            .map(|i| adj[i].iter().map(|e| e.1).sum::<f64>() + 2.0 * self_loops[i])
            .collect();
        let two_m: f64 = degree.iter().sum();
        if two_m == 0.0 {
            break;
        }
        let mut comm: Vec<usize> = (0..n).collect();
        let mut tot = degree.clone();
        let mut moved_any = false;
        for _pass in 0..32 {
            let mut moved = false;
            let mut weights: HashMap<usize, f64> = HashMap::new();
            for i in 0..n {
                weights.clear();
                for &(j, w) in &adj[i] {
                    *weights.entry(comm[j]).or_insert(0.0) += w;
                }
                let own = comm[i];
                tot[own] -= degree[i];
                let gain = |c: usize, w_ic: f64| w_ic - tot[c] * degree[i] / two_m;
                let mut best = own;
                let mut best_gain = gain(own, weights.get(&own).copied().unwrap_or(0.0));
                let mut candidates: Vec<(usize, f64)> =
                    weights.iter().map(|(&c, &w)| (c, w)).collect();
                candidates.sort_by_key(|c| c.0);
                for (c, w) in candidates {
                    let g = gain(c, w);
                    if g > best_gain + 1e-12 {
                        best = c;
                        best_gain = g;
                    }
                }
                tot[best] += degree[i];
                if best != own {
                    comm[i] = best;
                    moved = true;
                    moved_any = true;
                }
            }
            if !moved {
                break;
            }
        }
        if !moved_any {
            break;
        }
        let dense = renumber(&comm);
        let k = dense.iter().max().map_or(0, |m| m + 1);
        for m in &mut membership {
            *m = dense[*m];
        }
        let mut next_adj: Vec<HashMap<usize, f64>> = vec![HashMap::new(); k];
        let mut next_loops = vec![0f64; k];
        for i in 0..n {
            next_loops[dense[i]] += self_loops[i];
            for &(j, w) in &adj[i] {
                if dense[i] == dense[j] {
                    // Each inner edge is seen from both ends.
                    next_loops[dense[i]] += w / 2.0;
                } else {
                    *next_adj[dense[i]].entry(dense[j]).or_insert(0.0) += w;
                }
            }
        }
        adj = next_adj
            .into_iter()
            .map(|m| {
                let mut v: Vec<(usize, f64)> = m.into_iter().collect();
                v.sort_by_key(|e| e.0);
                v
            })
            .collect();
        self_loops = next_loops;
    }
    membership
}

/// Words that never make a useful label.
const STOPWORDS: &[&str] = &[
    "the", "and", "for", "with", "from", "that", "this", "not", "are", "was", "were", "but",
    "when", "can", "should", "would", "could", "into", "have", "has", "had", "which", "there",
    "their", "then", "than", "also", "been", "being", "will", "does", "did", "all", "any", "our",
    "you", "your", "its", "use", "used", "using", "after", "before", "while", "only", "some",
    "more", "other", "such", "like", "may", "might", "must", "one", "two", "out", "about", "what",
    "how", "why", "who", "get", "set", "see", "new",
];

/// The words of `text` that can label a cluster: normalised, not masked,
/// not stop words, at least three characters; each once.
pub(crate) fn label_words(text: &str) -> Vec<String> {
    let mut words: Vec<String> = normalize(text)
        .split(' ')
        .filter(|w| w.len() >= 3 && !w.starts_with('<') && !STOPWORDS.contains(w))
        .map(str::to_owned)
        .collect();
    words.sort_unstable();
    words.dedup();
    words
}

/// Document frequencies of label words over a corpus.
#[derive(Debug, Default)]
pub(crate) struct WordStats {
    pub docs: usize,
    pub df: HashMap<String, usize>,
}

impl WordStats {
    pub(crate) fn add(&mut self, words: &[String]) {
        self.docs += 1;
        for w in words {
            *self.df.entry(w.clone()).or_insert(0) += 1;
        }
    }
}

/// The `n` most distinctive words of a cluster: share of members that use
/// the word times its IDF over the whole corpus (TF-IDF of the cluster as one
/// document, with presence instead of counts so one long member cannot
/// dominate).
pub(crate) fn label(members: &[&[String]], corpus: &WordStats, n: usize) -> Vec<String> {
    let mut in_cluster: HashMap<&str, usize> = HashMap::new();
    for words in members {
        for w in *words {
            *in_cluster.entry(w.as_str()).or_insert(0) += 1;
        }
    }
    let size = members.len().max(1) as f64;
    let docs = corpus.docs.max(1) as f64;
    let mut scored: Vec<(f64, &str)> = in_cluster
        .into_iter()
        .map(|(w, c)| {
            let df = corpus.df.get(w).copied().unwrap_or(c) as f64;
            (c as f64 / size * ((1.0 + docs) / (1.0 + df)).ln(), w)
        })
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
    scored
        .into_iter()
        .take(n)
        .map(|(_, w)| w.to_owned())
        .collect()
}

/// Indices of the `n` vectors closest to the (unnormalised) centroid `sum`.
pub(crate) fn representatives(vectors: &[&[f32]], sum: &[f32], n: usize) -> Vec<usize> {
    let mut scored: Vec<(f32, usize)> = vectors
        .iter()
        .enumerate()
        .map(|(i, v)| (dot(v, sum), i))
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    scored.into_iter().take(n).map(|(_, i)| i).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_triangles_and_a_bridge() -> Graph {
        Graph {
            n: 7,
            edges: vec![
                (0, 1, 0.9),
                (0, 2, 0.9),
                (1, 2, 0.9),
                (3, 4, 0.9),
                (3, 5, 0.9),
                (4, 5, 0.9),
                (2, 3, 0.8),
            ],
        }
    }

    #[test]
    fn components_follow_edges_and_leave_isolated_nodes_alone() {
        let labels = partition(&two_triangles_and_a_bridge(), ClusterMethod::Components);
        assert_eq!(labels, vec![0, 0, 0, 0, 0, 0, 1]);
    }

    #[test]
    fn modularity_cuts_the_bridge_between_dense_groups() {
        let labels = partition(&two_triangles_and_a_bridge(), ClusterMethod::Modularity);
        assert_eq!(labels, vec![0, 0, 0, 1, 1, 1, 2]);
    }

    #[test]
    fn mutual_knn_drops_one_sided_and_weak_edges() {
        let knn = vec![
            vec![(1, 0.9), (2, 0.9)],
            vec![(0, 0.9)],
            vec![(1, 0.95)],
            vec![(0, 0.2)],
        ];
        let g = Graph::from_knn(&knn, 0.5, true);
        assert_eq!(g.edges, vec![(0, 1, 0.9)]);
        let g = Graph::from_knn(&knn, 0.5, false);
        assert_eq!(g.edges.len(), 3);
    }

    #[test]
    fn labels_prefer_words_shared_by_members_and_rare_in_the_corpus() {
        let docs = [
            "kafka consumer lag high on orders",
            "kafka consumer lag on payments",
            "disk full on db",
            "disk full on cache",
            "certificate expired on ingress",
        ];
        let words: Vec<Vec<String>> = docs.iter().map(|d| label_words(d)).collect();
        let mut corpus = WordStats::default();
        words.iter().for_each(|w| corpus.add(w));
        let members: Vec<&[String]> = words[..2].iter().map(Vec::as_slice).collect();
        let top = label(&members, &corpus, 3);
        assert_eq!(top, vec!["consumer", "kafka", "lag"]);
    }

    #[test]
    fn representatives_are_closest_to_the_centroid() {
        let a = [1.0, 0.0];
        let b = [0.8, 0.6];
        let c = [0.0, 1.0];
        let reps = representatives(&[&a, &b, &c], &[1.8, 1.6], 1);
        assert_eq!(reps, vec![1]);
    }
}
