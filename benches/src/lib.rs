//! Benchmarks for warden; see `benches/*.rs`.
