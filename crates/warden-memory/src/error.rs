//! The crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong in the incident memory.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MemoryError {
    /// Reading or writing a file failed.
    #[error("i/o error on {path}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Another process holds the store open.
    #[error("store {path} is in use by another process")]
    Locked {
        /// The store file.
        path: PathBuf,
    },
    /// The embedded database reported an error.
    #[error("store {path}: {reason}")]
    Store {
        /// The store file.
        path: PathBuf,
        /// What the database said.
        reason: String,
    },
    /// A record in an input file or batch is malformed; nothing of its batch was written.
    #[error("{origin}:{line}: {reason}")]
    Malformed {
        /// The file, or `batch` for records passed in memory.
        origin: String,
        /// 1-based line (file) or position (batch).
        line: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// The embedding model failed or its state could not be restored.
    #[error("embedder: {reason}")]
    Embedder {
        /// What failed.
        reason: String,
    },
    /// A vector does not have the dimension of the store.
    #[error("vector has {actual} dimensions, the store uses {expected}")]
    Dimension {
        /// The store's dimension.
        expected: usize,
        /// The vector's dimension.
        actual: usize,
    },
    /// The vector index could not be written.
    #[error("index {path}: {reason}")]
    Index {
        /// The index directory.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
}

impl MemoryError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}
