//! What can go wrong in a cluster.

/// Errors from the cluster's record (PostgreSQL) and bus (NATS).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// PostgreSQL refused or lost a statement; `what` says which one.
    #[error("PostgreSQL: {what}: {}", pg_detail(source))]
    Postgres {
        /// The operation that failed (`connect`, `migrate`, `enqueue`, …).
        what: &'static str,
        /// The driver's error.
        #[source]
        source: tokio_postgres::Error,
    },
    /// This worker no longer holds the task: its lease expired, or another
    /// worker claimed it at a later epoch. Nothing was written.
    #[error("task `{task}`: fenced out at epoch {epoch}")]
    Fenced {
        /// The task.
        task: String,
        /// The epoch this worker held.
        epoch: u64,
    },
    /// The connection's TLS or credentials cannot be set up, or would
    /// send plaintext where it must not.
    #[error("cluster connection: {why}")]
    Security {
        /// What is wrong.
        why: String,
    },
    /// A task could not be written to or read from the record.
    #[error("task `{task}`: {why}")]
    Task {
        /// The task's id.
        task: String,
        /// What was wrong with it.
        why: String,
    },
}

impl ClusterError {
    pub(crate) fn pg(what: &'static str) -> impl Fn(tokio_postgres::Error) -> ClusterError + Copy {
        move |source| ClusterError::Postgres { what, source }
    }
}

/// The driver's message, with the server's own when there is one: the
/// driver alone says only "db error".
fn pg_detail(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db, db.code().code()),
        None => e.to_string(),
    }
}
