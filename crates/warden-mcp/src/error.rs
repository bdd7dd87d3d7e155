//! What can go wrong serving MCP.

/// An MCP session could not be served.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum McpError {
    /// The client never completed the handshake (it closed the stream, or
    /// sent something other than `initialize`).
    #[error("the MCP handshake failed: {reason}")]
    Handshake {
        /// What went wrong.
        reason: String,
    },
    /// The session's task ended abnormally.
    #[error("the MCP session ended abnormally: {reason}")]
    Session {
        /// What went wrong.
        reason: String,
    },
}
