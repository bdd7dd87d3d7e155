//! End-to-end tests of the `warden` binary.

mod plugin;
mod support;
