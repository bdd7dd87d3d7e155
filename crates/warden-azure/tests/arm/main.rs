//! The ARM client and its configuration against the loopback ARM and Entra
//! ID fakes; one binary, one module per topic.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers outside #[test] fns should fail loudly too"
)]

mod client;
mod env;
mod tls;
