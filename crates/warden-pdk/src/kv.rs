//! The plugin's own key-value store. Declare [`Capability::Kv`](crate::Capability::Kv)
//! in [`Tool::capabilities`](crate::Tool::capabilities); every use is gated.
//!
//! ```no_run
//! warden_pdk::kv::set("last-run", b"2026-11-27").ok();
//! let last = warden_pdk::kv::get("last-run").ok().flatten();
//! ```

use crate::__bindings::warden::plugin::kv as wit;
use crate::ToolError;

/// Read a key; `Ok(None)` when absent.
pub fn get(key: &str) -> Result<Option<Vec<u8>>, ToolError> {
    wit::get(key).map_err(ToolError::Denied)
}

/// Write a key.
pub fn set(key: &str, value: &[u8]) -> Result<(), ToolError> {
    wit::set(key, value).map_err(ToolError::Denied)
}

/// Delete a key.
pub fn delete(key: &str) -> Result<(), ToolError> {
    wit::delete(key).map_err(ToolError::Denied)
}
