//! Incident memory for warden agents: remember incidents and tickets, find
//! the similar past ones, group them, and hand the planner what resolved them.
//!
//! ```
//! use warden_memory::{Incident, Memory};
//!
//! let dir = tempfile::tempdir()?;
//! let mut memory = Memory::open(dir.path())?;
//! memory.ingest(vec![
//!     Incident::new("INC-1", "disk full on db-1", "/var/lib/postgresql at 100%")
//!         .with_resolution("expired WAL archives removed"),
//!     Incident::new("INC-2", "TLS certificate expired", "ingress returns 495"),
//! ])?;
//! let hits = memory.recall("db-7: disk full, /var/lib/postgresql 98%", 1)?;
//! assert_eq!(hits[0].incident.id, "INC-1");
//! assert_eq!(hits[0].incident.resolution.as_deref(), Some("expired WAL archives removed"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Pieces
//!
//! - **Embedding** ([`Embedder`]): the default [`HashingEmbedder`] needs no
//!   model file and no network. Text is normalised for logs (numbers,
//!   durations, IPs, host:port endpoints, hex ids, UUIDs, paths, URLs,
//!   emails and timestamps masked, told apart by the same
//!   `warden_logmine::classify` that template mining uses), then word unigrams,
//!   word bigrams and character 3-5-grams are hashed with a sign bit into
//!   512 dimensions, weighted by sublinear TF times an IDF learned from the
//!   store, and L2-normalised. 512 dimensions: a short log line has 100-200
//!   features, so collisions stay rare, while a vector is 2 KiB and an HNSW
//!   distance well under a microsecond. Vectors computed with older corpus
//!   statistics are all recomputed each time the corpus doubles (linear total
//!   cost). The `fastembed` feature adds `FastEmbedder`, a sentence model
//!   loaded from local files.
//! - **Store**: [redb](https://docs.rs/redb), chosen over SQLite because it
//!   is pure Rust (no C toolchain when cross-building for an edge box),
//!   ACID with copy-on-write pages and fsync on commit, so a crash or
//!   `kill -9` never loses a committed batch nor exposes half of one; it
//!   locks the file against a second writer process. Each
//!   [`Memory::ingest`] call is one transaction.
//! - **Index**: HNSW with cosine distance on unit vectors, built as hnswlib
//!   builds it (a full neighbour list is re-chosen with the diversity
//!   heuristic, not cut to its nearest links), on all cores, in safe Rust.
//!   It replaced hnsw_rs, whose graph at a million points reached recall@10
//!   0.72 where hnswlib's reached 0.95 on the same vectors (see
//!   `benches/README.md`). Deleted or replaced records are tombstones
//!   filtered from results, and the index is rebuilt when they pass 20% of
//!   its points. The index is dumped beside the store with the store's
//!   generation counter and a SHA-256 checksum; on open, a dump that is
//!   missing, from another generation, format or embedder, fails its
//!   checksum or any bounds check is rebuilt from the store, never trusted.
//! - **Clustering**: at ingest each record joins the nearest cluster
//!   centroid above a similarity threshold or starts a cluster;
//!   [`Memory::recluster`] recomputes clusters from the graph of mutual
//!   nearest neighbours above a similarity threshold (connected components
//!   by default, or modularity; no cluster count) and labels each with its
//!   most distinctive terms (share of members using a term times the term's
//!   IDF over the corpus).
//!
//! # Features
//!
//! | feature | what it adds |
//! | --- | --- |
//! | `fastembed` | `FastEmbedder`: a sentence-embedding ONNX model (e.g. all-MiniLM-L6-v2) from local files, run by onnxruntime loaded at run time (`ORT_DYLIB_PATH`); no download at build or run time |
#![deny(missing_docs)]

mod cluster;
mod embed;
mod error;
#[cfg(feature = "fastembed")]
mod fastembed;
mod graph;
mod import;
mod index;
mod ingest;
mod memory;
mod normalize;
mod recluster;
mod record;
mod store;
#[cfg(test)]
mod tests;

#[cfg(feature = "fastembed")]
pub use crate::fastembed::FastEmbedder;
/// The most text one incident record may carry (id, title, body, labels,
/// resolution, plan), in bytes: 1 MiB. A larger record is refused, naming
/// its line.
pub const MAX_RECORD_BYTES: usize = 1024 * 1024;

pub use crate::{
    cluster::ClusterMethod,
    embed::{DEFAULT_DIM, Embedder, HashingEmbedder},
    error::MemoryError,
    import::{Columns, read_incidents},
    index::VectorIndex,
    memory::{Memory, MemoryOptions},
    record::{Cluster, Hit, Incident, IncidentView, IngestReport, RecallHit, ReclusterReport},
};
