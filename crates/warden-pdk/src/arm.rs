//! Azure Resource Manager through the host, which holds the credential.
//!
//! Requests and answers are JSON (operations and fields are listed in
//! `wit/world.wit`). Each operation is decided by the host's policy, and in
//! a dry run the host refuses operations that change Azure, so use
//! `what-if` there.
//!
//! ```no_run
//! use warden_pdk::serde_json::json;
//!
//! let groups = warden_pdk::arm::call(&json!({
//!     "op": "list-resource-groups",
//!     "subscription": "00000000-0000-0000-0000-000000000000",
//! }));
//! ```

use crate::__bindings::warden::plugin::arm as wit;
use crate::ToolError;

/// Run one ARM operation; a host refusal is [`ToolError::Denied`], any other
/// failure [`ToolError::Failed`].
pub fn call(request: &serde_json::Value) -> Result<serde_json::Value, ToolError> {
    let text = serde_json::to_string(request)
        .map_err(|e| ToolError::InvalidInput(format!("arm request: {e}")))?;
    let answer = wit::call(&text).map_err(|e| match e.strip_prefix("denied: ") {
        Some(reason) => ToolError::Denied(reason.to_string()),
        None => ToolError::Failed(e),
    })?;
    serde_json::from_str(&answer)
        .map_err(|e| ToolError::Failed(format!("arm answer is not JSON: {e}")))
}
