//! A read-only copy of the hnsw_rs graph laid out for search: vectors in one
//! contiguous array, links as `u32` ids, and a per-thread visited list.
//!
//! hnsw_rs searches its own graph through `Arc` points behind `RwLock`s: each
//! visited point costs a `HashMap` insert with SipHash, two atomic reference
//! count updates and a heap allocation for its candidate entry, and each
//! vector lives in its own allocation. That bookkeeping, not the distance,
//! was 3/4 of a query at 100k points (0.61 ms, hnswlib 0.12 ms on the same
//! kind of data). hnsw_rs still builds, inserts and dumps; this copy only
//! answers queries, with the search of the HNSW paper (greedy descent, then
//! a beam of width `ef` on layer 0) as hnswlib implements it.

use std::cell::RefCell;
use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap};

use hnsw_rs::prelude::{Distance, Hnsw, PointId};

use crate::embed::dot;

/// A candidate or result: its distance `1 - a.b` and its graph id.
#[derive(Debug, Clone, Copy)]
struct Near {
    dist: f32,
    id: u32,
}

impl PartialEq for Near {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Near {}

impl PartialOrd for Near {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Near {
    fn cmp(&self, other: &Self) -> Ordering {
        self.dist
            .total_cmp(&other.dist)
            .then(self.id.cmp(&other.id))
    }
}

/// Per-thread search state, reused across queries so a query allocates
/// nothing but its result.
#[derive(Default)]
struct Scratch {
    /// `visited[id] == stamp` marks `id` visited in the current query.
    visited: Vec<u32>,
    stamp: u32,
    candidates: BinaryHeap<Reverse<Near>>,
    results: BinaryHeap<Near>,
}

impl Scratch {
    /// Starts a query over `n` graph points.
    fn reset(&mut self, n: usize) {
        if self.visited.len() < n {
            self.visited.resize(n, 0);
        }
        self.stamp = self.stamp.wrapping_add(1);
        if self.stamp == 0 {
            self.visited.iter_mut().for_each(|v| *v = 0);
            self.stamp = 1;
        }
        self.candidates.clear();
        self.results.clear();
    }

    /// Marks `id` visited; false when it already was.
    fn visit(&mut self, id: u32) -> bool {
        match self.visited.get_mut(id as usize) {
            Some(v) if *v != self.stamp => {
                *v = self.stamp;
                true
            }
            _ => false,
        }
    }
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// The graph of an hnsw_rs index at one moment, for search only.
#[derive(Debug)]
pub(crate) struct Frozen {
    dim: usize,
    /// Graph id `i`'s vector is `vectors[i * dim..(i + 1) * dim]`.
    vectors: Vec<f32>,
    /// Graph id → the slot hnsw_rs knows it by.
    slots: Vec<u64>,
    /// Layer-0 links: graph id `i`'s are `links0[offsets0[i]..offsets0[i + 1]]`.
    links0: Vec<u32>,
    offsets0: Vec<usize>,
    /// Layers 1 and up, small: `upper[l - 1][&id]` are `id`'s links on layer `l`.
    upper: Vec<HashMap<u32, Vec<u32>>>,
    entry: u32,
}

impl Frozen {
    /// Copies the graph of `hnsw`; `None` when it is empty.
    pub(crate) fn new<D: Distance<f32> + Send + Sync>(
        hnsw: &Hnsw<'_, f32, D>,
        dim: usize,
    ) -> Option<Self> {
        let indexation = hnsw.get_point_indexation();
        let n = indexation.get_nb_point();
        if n == 0 || u32::try_from(n).is_err() {
            return None;
        }
        let mut ids: HashMap<PointId, u32> = HashMap::with_capacity(n);
        let mut vectors = Vec::with_capacity(n * dim);
        let mut slots = Vec::with_capacity(n);
        let mut points = Vec::with_capacity(n);
        for (point, id) in indexation.into_iter().zip(0u32..) {
            let v = point.get_v();
            if v.len() != dim {
                return None;
            }
            vectors.extend_from_slice(v);
            slots.push(point.get_origin_id() as u64);
            ids.insert(point.get_point_id(), id);
            points.push(point);
        }
        let top = usize::from(indexation.get_max_level_observed());
        let entry = indexation
            .get_layer_iterator(top)
            .next()
            .and_then(|p| ids.get(&p.get_point_id()).copied())?;
        let mut links0 = Vec::with_capacity(n * 2 * hnsw.get_max_nb_connection() as usize);
        let mut offsets0 = Vec::with_capacity(n + 1);
        let mut upper: Vec<HashMap<u32, Vec<u32>>> = vec![HashMap::new(); top];
        offsets0.push(0);
        for (point, id) in points.iter().zip(0u32..) {
            for (layer, neighbours) in point.get_neighborhood_id().into_iter().enumerate() {
                let linked = neighbours
                    .iter()
                    .filter_map(|nb| ids.get(&nb.p_id).copied());
                if layer == 0 {
                    links0.extend(linked);
                } else if let Some(map) = upper.get_mut(layer - 1) {
                    map.insert(id, linked.collect());
                }
            }
            offsets0.push(links0.len());
        }
        Some(Self {
            dim,
            vectors,
            slots,
            links0,
            offsets0,
            upper,
            entry,
        })
    }

    /// Graph points copied.
    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    fn vector(&self, id: u32) -> &[f32] {
        let start = id as usize * self.dim;
        self.vectors
            .get(start..start + self.dim)
            .unwrap_or_default()
    }

    fn dist(&self, q: &[f32], id: u32) -> f32 {
        // As `CosineDistance`: clamped, and a NaN maps to 0.
        (1.0 - dot(q, self.vector(id))).max(0.0)
    }

    fn links0(&self, id: u32) -> &[u32] {
        let i = id as usize;
        match (self.offsets0.get(i), self.offsets0.get(i + 1)) {
            (Some(&a), Some(&b)) => self.links0.get(a..b).unwrap_or_default(),
            _ => &[],
        }
    }

    /// The `ef` nearest graph points to `q` among those whose slot passes
    /// `accept` (all when `None`), as `(slot, distance)`, nearest first.
    pub(crate) fn search(
        &self,
        q: &[f32],
        ef: usize,
        accept: Option<&dyn Fn(u64) -> bool>,
    ) -> Vec<(u64, f32)> {
        let ef = ef.max(1);
        // Greedy descent through the upper layers, as long as a link is closer.
        let mut cur = Near {
            dist: self.dist(q, self.entry),
            id: self.entry,
        };
        for layer in self.upper.iter().rev() {
            loop {
                let mut moved = false;
                for &nb in layer.get(&cur.id).map_or(&[][..], Vec::as_slice) {
                    let d = self.dist(q, nb);
                    if d < cur.dist {
                        cur = Near { dist: d, id: nb };
                        moved = true;
                    }
                }
                if !moved {
                    break;
                }
            }
        }
        let accepted = |id: u32| {
            accept.is_none_or(|f| f(self.slots.get(id as usize).copied().unwrap_or(u64::MAX)))
        };
        SCRATCH.with(|cell| {
            let Ok(mut scratch) = cell.try_borrow_mut() else {
                // Only reachable if `accept` itself searches; stay correct.
                return self.beam(q, ef, cur, &accepted, &mut Scratch::default());
            };
            self.beam(q, ef, cur, &accepted, &mut scratch)
        })
    }

    /// The layer-0 beam search from `start`; results only hold accepted
    /// points, but the walk goes through all of them.
    fn beam(
        &self,
        q: &[f32],
        ef: usize,
        start: Near,
        accepted: &dyn Fn(u32) -> bool,
        s: &mut Scratch,
    ) -> Vec<(u64, f32)> {
        s.reset(self.len());
        s.visit(start.id);
        s.candidates.push(Reverse(start));
        if accepted(start.id) {
            s.results.push(start);
        }
        let mut bound = s.results.peek().map_or(f32::INFINITY, |n| n.dist);
        while let Some(Reverse(c)) = s.candidates.pop() {
            if c.dist > bound && s.results.len() >= ef {
                break;
            }
            for &nb in self.links0(c.id) {
                if !s.visit(nb) {
                    continue;
                }
                let d = self.dist(q, nb);
                if s.results.len() < ef || d < bound {
                    let near = Near { dist: d, id: nb };
                    s.candidates.push(Reverse(near));
                    if accepted(nb) {
                        s.results.push(near);
                        if s.results.len() > ef {
                            s.results.pop();
                        }
                    }
                    bound = s.results.peek().map_or(f32::INFINITY, |n| n.dist);
                }
            }
        }
        let mut out: Vec<Near> = s.results.drain().collect();
        out.sort_unstable();
        out.into_iter()
            .filter_map(|n| Some((*self.slots.get(n.id as usize)?, n.dist)))
            .collect()
    }
}
