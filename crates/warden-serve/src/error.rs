//! What can go wrong running the service.

use std::path::PathBuf;

/// Errors of the service.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The config is unusable.
    #[error("config: {reason}")]
    Config {
        /// What is wrong, naming the file or the key.
        reason: String,
    },
    /// The agent could not be built (plugins, policy, runbooks, journal).
    #[error("agent: {0}")]
    Agent(#[from] warden::AgentError),
    /// The durable inbox failed.
    #[error("inbox {}: {reason}", path.display())]
    Inbox {
        /// The inbox file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The edge forwarder's progress file (`[edge]`) failed.
    #[error("edge progress {}: {reason}", path.display())]
    Edge {
        /// The progress file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Listening or serving failed.
    #[error("listening on {addr}: {reason}")]
    Listen {
        /// The address.
        addr: String,
        /// Why.
        reason: String,
    },
}
