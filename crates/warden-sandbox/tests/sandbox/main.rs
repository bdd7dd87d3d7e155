//! Sandbox integration tests: hostile guests, loading, caching, gating.

mod guests;
mod loading;
mod support;
