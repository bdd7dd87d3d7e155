//! Integration tests of warden-memory's public API, one module per topic.

mod crash;
mod files;
