//! The `Embedder` trait and the default model-free `HashingEmbedder`.

use crate::MemoryError;
use crate::normalize::normalize_into;

/// Turns text into fixed-size, L2-normalised vectors compared by cosine.
///
/// Embedders that learn corpus statistics (like [`HashingEmbedder`]'s IDF)
/// implement [`Embedder::learn`] and the state methods; the store persists
/// that state in the same transaction as the records it describes, so the two
/// never disagree after a crash. A pure model (fastembed) keeps the defaults.
pub trait Embedder: Send + Sync + std::fmt::Debug {
    /// Names the vector space: name, version and dimension. When it differs
    /// from the one a store was built with, stored vectors are recomputed.
    fn fingerprint(&self) -> String;

    /// Length of every vector this embedder returns.
    fn dim(&self) -> usize;

    /// Embeds each text; every returned vector has [`Embedder::dim`] entries
    /// and unit length (or is all zeros for a text without features).
    ///
    /// # Errors
    /// Returns [`MemoryError::Embedder`] when the model fails.
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, MemoryError>;

    /// Updates corpus statistics: `added` documents enter the corpus,
    /// `removed` ones (deleted or replaced records) leave it. Default: no-op.
    fn learn(&mut self, added: &[&str], removed: &[&str]) {
        let _ = (added, removed);
    }

    /// Serialised corpus statistics, or `None` for an embedder without any.
    fn state(&self) -> Option<Vec<u8>> {
        None
    }

    /// Restores statistics saved by [`Embedder::state`].
    ///
    /// # Errors
    /// Returns [`MemoryError::Embedder`] when `state` is not recognised.
    fn restore(&mut self, state: &[u8]) -> Result<(), MemoryError> {
        let _ = state;
        Ok(())
    }
}

/// Default vector length: 512 keeps feature collisions low for short texts
/// (a log line has ~100-200 features, a ticket a few hundred) while an HNSW
/// distance still costs well under a microsecond; see the crate docs.
pub const DEFAULT_DIM: usize = 512;

/// Tokens after which a text is cut: a pasted stack trace must not dominate
/// a ticket, nor cost unbounded time.
const MAX_TOKENS: usize = 1024;

/// Width of each count-min row for document frequencies (2 rows of 2^19 u32 = 4 MiB).
const SKETCH_BITS: u32 = 19;
const SKETCH_WIDTH: usize = 1 << SKETCH_BITS;

// Relative weights of the feature kinds. Character n-grams carry inflections
// and identifiers split differently (`NameNode`, `namenodes`); bigrams keep a
// little word order. Chosen once over both evaluation tasks (Loghub and the
// Hadoop duplicates), not per dataset: see examples/memory_eval.rs.
const W_WORD: f32 = 1.0;
const W_BIGRAM: f32 = 0.3;
const W_CHAR: f32 = 0.5;

const KIND_WORD: u64 = 0x9e37_79b9_7f4a_7c15;
const KIND_BIGRAM: u64 = 0xc2b2_ae3d_27d4_eb4f;
const KIND_CHAR: u64 = 0x1656_67b1_9e37_79f9;

const STATE_MAGIC: &[u8; 8] = b"WDNIDF01";

/// Model-free, deterministic text embedder: signed feature hashing of word
/// unigrams, word bigrams and character 3-5-grams of log-normalised text,
/// weighted by sublinear TF times IDF learned from the store.
///
/// ```
/// use warden_memory::{Embedder, HashingEmbedder};
///
/// let e = HashingEmbedder::new(256);
/// let v = e.embed(&["disk /dev/sda1 full on 10.0.0.7", "disk /dev/sdb2 full on 10.0.0.9"])?;
/// let cos: f32 = v[0].iter().zip(&v[1]).map(|(a, b)| a * b).sum();
/// assert!(cos > 0.99, "only masked values differ");
/// # Ok::<(), warden_memory::MemoryError>(())
/// ```
#[derive(Clone)]
pub struct HashingEmbedder {
    dim: usize,
    docs: u64,
    /// Count-min sketch of document frequencies, two rows.
    df: Vec<u32>,
}

impl std::fmt::Debug for HashingEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HashingEmbedder")
            .field("dim", &self.dim)
            .field("docs", &self.docs)
            .finish_non_exhaustive()
    }
}

impl Default for HashingEmbedder {
    fn default() -> Self {
        Self::new(DEFAULT_DIM)
    }
}

impl HashingEmbedder {
    /// Creates an embedder with `dim` dimensions (at least 8) and empty statistics.
    pub fn new(dim: usize) -> Self {
        Self {
            dim: dim.max(8),
            docs: 0,
            df: vec![0; 2 * SKETCH_WIDTH],
        }
    }

    fn idf(&self, h: u64) -> f32 {
        let df = self.df[row0(h)].min(self.df[row1(h)]);
        // Smoothed IDF (as in scikit-learn): 1 for an empty corpus, never zero.
        (((1 + self.docs) as f32) / (1.0 + df as f32)).ln() + 1.0
    }

    fn embed_one(&self, text: &str, scratch: &mut Scratch) -> Vec<f32> {
        features(text, scratch);
        let mut v = vec![0f32; self.dim];
        let dim = self.dim as u64;
        let feats = &scratch.feats;
        let mut i = 0;
        while i < feats.len() {
            let (h, w) = feats[i];
            let mut j = i + 1;
            while j < feats.len() && feats[j].0 == h {
                j += 1;
            }
            let tf = 1.0 + ((j - i) as f32).ln();
            let value = w * tf * self.idf(h);
            // Multiply-shift range reduction on the low 32 bits; bit 63 is the sign.
            let bucket = (((h & 0xffff_ffff) * dim) >> 32) as usize;
            v[bucket] += if h >> 63 == 0 { value } else { -value };
            i = j;
        }
        l2_normalize(&mut v);
        v
    }
}

impl Embedder for HashingEmbedder {
    fn fingerprint(&self) -> String {
        // v2: tokens classified by `warden_logmine::classify` (durations,
        // relative paths, `/ip:port`); stores built with v1 embed again.
        format!("hashing-v2-d{}", self.dim)
    }

    fn dim(&self) -> usize {
        self.dim
    }

    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, MemoryError> {
        let mut scratch = Scratch::default();
        Ok(texts
            .iter()
            .map(|t| self.embed_one(t, &mut scratch))
            .collect())
    }

    fn learn(&mut self, added: &[&str], removed: &[&str]) {
        let mut scratch = Scratch::default();
        for (texts, add) in [(added, true), (removed, false)] {
            for text in texts {
                features(text, &mut scratch);
                scratch.feats.dedup_by_key(|f| f.0);
                for &(h, _) in &scratch.feats {
                    for slot in [row0(h), row1(h)] {
                        let c = &mut self.df[slot];
                        *c = if add {
                            c.saturating_add(1)
                        } else {
                            c.saturating_sub(1)
                        };
                    }
                }
                self.docs = if add {
                    self.docs.saturating_add(1)
                } else {
                    self.docs.saturating_sub(1)
                };
            }
        }
    }

    fn state(&self) -> Option<Vec<u8>> {
        let mut out = Vec::with_capacity(16 + self.df.len() * 4);
        out.extend_from_slice(STATE_MAGIC);
        out.extend_from_slice(&self.docs.to_le_bytes());
        for c in &self.df {
            out.extend_from_slice(&c.to_le_bytes());
        }
        Some(out)
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), MemoryError> {
        let expected = 16 + self.df.len() * 4;
        if state.len() != expected || !state.starts_with(STATE_MAGIC) {
            return Err(MemoryError::Embedder {
                reason: format!(
                    "hashing embedder state has {} bytes or a wrong header (expected {expected})",
                    state.len()
                ),
            });
        }
        let mut docs = [0u8; 8];
        docs.copy_from_slice(&state[8..16]);
        self.docs = u64::from_le_bytes(docs);
        for (c, bytes) in self.df.iter_mut().zip(state[16..].chunks_exact(4)) {
            *c = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        }
        Ok(())
    }
}

fn row0(h: u64) -> usize {
    ((h >> 32) as usize) & (SKETCH_WIDTH - 1)
}

fn row1(h: u64) -> usize {
    SKETCH_WIDTH + (((h >> (32 + SKETCH_BITS)) as usize) & (SKETCH_WIDTH - 1))
}

#[derive(Default)]
struct Scratch {
    text: String,
    feats: Vec<(u64, f32)>,
    gram: Vec<u8>,
}

/// Fills `scratch.feats` with `(feature hash, kind weight)`, sorted by hash.
fn features(text: &str, scratch: &mut Scratch) {
    scratch.text.clear();
    scratch.feats.clear();
    normalize_into(text, MAX_TOKENS, &mut scratch.text);
    let mut prev = KIND_BIGRAM;
    for tok in scratch.text.split(' ').filter(|t| !t.is_empty()) {
        let h = hash_bytes(tok.as_bytes());
        scratch.feats.push((mix(h ^ KIND_WORD), W_WORD));
        scratch.feats.push((
            mix(prev.wrapping_mul(31).wrapping_add(h) ^ KIND_BIGRAM),
            W_BIGRAM,
        ));
        prev = h;
        if tok.len() >= 3 && !tok.starts_with('<') {
            scratch.gram.clear();
            scratch.gram.push(b'^');
            scratch.gram.extend_from_slice(tok.as_bytes());
            scratch.gram.push(b'$');
            for n in 3..=5 {
                for w in scratch.gram.windows(n) {
                    scratch.feats.push((mix(hash_bytes(w) ^ KIND_CHAR), W_CHAR));
                }
            }
        }
    }
    scratch.feats.sort_unstable_by_key(|f| f.0);
}

/// FNV-1a: stable across Rust versions and platforms, unlike `DefaultHasher`,
/// because stored vectors must stay comparable with new ones.
fn hash_bytes(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// SplitMix64 finaliser: FNV's low bits are weak, and buckets, signs and
/// sketch rows each take different bits of the feature hash.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Scales `v` to unit length; an all-zero vector stays zero.
pub(crate) fn l2_normalize(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}

/// Dot product written so the compiler vectorises it without `unsafe` or
/// target features: eight independent accumulators.
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    simd::dot(a, b)
}

/// The dot product compiled for each x86/Arm SIMD level and picked at run
/// time (AVX2 with FMA on most x86 servers): the index spends most of a
/// query here. simdeez's macro holds the `unsafe` feature dispatch.
mod simd {
    use simdeez::prelude::*;
    use simdeez::simd_runtime_generate;

    simd_runtime_generate!(
        pub(super) fn dot(a: &[f32], b: &[f32]) -> f32 {
            let n = a.len().min(b.len());
            let (mut a, mut b) = (&a[..n], &b[..n]);
            let w = S::Vf32::WIDTH;
            // Four independent sums hide the add latency.
            let (mut s0, mut s1, mut s2, mut s3) = (
                S::Vf32::zeroes(),
                S::Vf32::zeroes(),
                S::Vf32::zeroes(),
                S::Vf32::zeroes(),
            );
            while a.len() >= 4 * w {
                s0 = S::Vf32::load_from_slice(a).mul_add(S::Vf32::load_from_slice(b), s0);
                s1 = S::Vf32::load_from_slice(&a[w..])
                    .mul_add(S::Vf32::load_from_slice(&b[w..]), s1);
                s2 = S::Vf32::load_from_slice(&a[2 * w..])
                    .mul_add(S::Vf32::load_from_slice(&b[2 * w..]), s2);
                s3 = S::Vf32::load_from_slice(&a[3 * w..])
                    .mul_add(S::Vf32::load_from_slice(&b[3 * w..]), s3);
                a = &a[4 * w..];
                b = &b[4 * w..];
            }
            while a.len() >= w {
                s0 = S::Vf32::load_from_slice(a).mul_add(S::Vf32::load_from_slice(b), s0);
                a = &a[w..];
                b = &b[w..];
            }
            let mut sum = ((s0 + s1) + (s2 + s3)).horizontal_add();
            for (x, y) in a.iter().zip(b) {
                sum += x * y;
            }
            sum
        }
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cos(e: &HashingEmbedder, a: &str, b: &str) -> f32 {
        let v = e.embed(&[a, b]).unwrap();
        dot(&v[0], &v[1])
    }

    #[test]
    fn vectors_have_unit_length_and_the_configured_dimension() {
        let e = HashingEmbedder::new(128);
        let v = e.embed(&["NameNode failed over to standby"]).unwrap();
        assert_eq!(v[0].len(), 128);
        assert!((dot(&v[0], &v[0]) - 1.0).abs() < 1e-5);
    }

    #[test]
    fn empty_text_embeds_to_the_zero_vector() {
        let v = HashingEmbedder::default().embed(&["  ...  "]).unwrap();
        assert!(v[0].iter().all(|&x| x == 0.0));
    }

    #[test]
    fn embedding_is_deterministic_across_instances() {
        let a = HashingEmbedder::new(64).embed(&["kafka lag high"]).unwrap();
        let b = HashingEmbedder::new(64).embed(&["kafka lag high"]).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn related_texts_are_closer_than_unrelated_ones() {
        let e = HashingEmbedder::default();
        let near = cos(
            &e,
            "DataNode disk full on /data1",
            "datanode disks are full",
        );
        let far = cos(
            &e,
            "DataNode disk full on /data1",
            "TLS certificate expired for ingress",
        );
        assert!(near > far + 0.2, "near {near} far {far}");
    }

    #[test]
    fn learned_idf_downweights_words_every_document_shares() {
        let mut e = HashingEmbedder::default();
        let before = cos(&e, "error in kafka broker", "error in nginx proxy");
        let corpus: Vec<String> = (0..50).map(|i| format!("error in component{i}x")).collect();
        let refs: Vec<&str> = corpus.iter().map(String::as_str).collect();
        e.learn(&refs, &[]);
        let after = cos(&e, "error in kafka broker", "error in nginx proxy");
        assert!(after < before - 0.1, "before {before} after {after}");
        e.learn(&[], &refs);
        let forgotten = cos(&e, "error in kafka broker", "error in nginx proxy");
        assert!((forgotten - before).abs() < 1e-5);
    }

    #[test]
    fn state_round_trips_and_rejects_garbage() {
        let mut e = HashingEmbedder::default();
        e.learn(&["alpha beta", "beta gamma"], &[]);
        let state = e.state().unwrap();
        let mut f = HashingEmbedder::default();
        f.restore(&state).unwrap();
        assert_eq!(
            e.embed(&["beta alpha"]).unwrap(),
            f.embed(&["beta alpha"]).unwrap()
        );
        assert!(f.restore(b"nope").is_err());
    }

    #[test]
    fn simd_dot_matches_a_plain_sum_at_every_length() {
        for n in 0..80 {
            let a: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..n).map(|i| (i as f32 * 0.11).cos()).collect();
            let plain: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            assert!((dot(&a, &b) - plain).abs() < 1e-4, "length {n}");
        }
    }

    #[test]
    fn dot_handles_lengths_that_are_not_multiples_of_eight() {
        let a: Vec<f32> = (0..13).map(|i| i as f32).collect();
        let expected: f32 = a.iter().map(|x| x * x).sum();
        assert_eq!(dot(&a, &a), expected);
    }
}
