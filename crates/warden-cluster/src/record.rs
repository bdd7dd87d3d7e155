//! PostgreSQL is the record: every task, with its intake key, so a retried
//! webhook or a redelivered message is stored once.

use tokio_postgres::{Client, NoTls};
use warden::Task;

use crate::error::ClusterError;

/// The schema, applied by [`Record::migrate`] under an advisory lock so
/// workers that start together do not race. Each statement is idempotent.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS warden_tasks (
    id          text PRIMARY KEY,
    intake_key  text NOT NULL UNIQUE,
    task        jsonb NOT NULL,
    state       text NOT NULL DEFAULT 'queued',
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS warden_tasks_queued ON warden_tasks (created_at) WHERE state = 'queued';
";

/// Key of the advisory lock that serialises migrations.
const MIGRATE_LOCK: i64 = 0x7761_7264_656e; // "warden"

/// The most bytes one task may take in the record (its alert and attachments).
pub const MAX_TASK_BYTES: usize = 1024 * 1024;

/// What [`Record::enqueue`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enqueued {
    /// The task is new and waits for a worker.
    New(String),
    /// A task with this intake key was already stored: its id.
    Duplicate(String),
}

/// A connection to the cluster's record.
///
/// ```no_run
/// # async fn demo() -> Result<(), warden_cluster::ClusterError> {
/// use warden_cluster::{Enqueued, Record};
/// let record = Record::connect("host=127.0.0.1 port=5432 user=warden dbname=warden").await?;
/// record.migrate().await?;
/// let task = warden::Task::goal("t-1", "check the web tier").in_env("staging");
/// assert!(matches!(record.enqueue("gen:t-1", &task).await?, Enqueued::New(_)));
/// assert!(matches!(record.enqueue("gen:t-1", &task).await?, Enqueued::Duplicate(_)));
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Record {
    client: Client,
}

impl Record {
    /// Connect with a libpq-style string (`host=… port=… user=… dbname=…`)
    /// or a `postgresql://` URL. The connection runs on the current tokio
    /// runtime until the `Record` is dropped.
    pub async fn connect(url: &str) -> Result<Record, ClusterError> {
        let (client, connection) = tokio_postgres::connect(url, NoTls)
            .await
            .map_err(ClusterError::pg("connect"))?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!(error = %e, "PostgreSQL connection ended");
            }
        });
        Ok(Record { client })
    }

    /// Create the tables the cluster needs, if they are not there yet.
    pub async fn migrate(&self) -> Result<(), ClusterError> {
        let sql = format!("BEGIN; SELECT pg_advisory_xact_lock({MIGRATE_LOCK}); {SCHEMA} COMMIT;");
        self.client
            .batch_execute(&sql)
            .await
            .map_err(ClusterError::pg("migrate"))
    }

    /// Store `task` under `intake_key` (`am:<fingerprint>`, `az:<id>`,
    /// `gen:<key>`) unless a task with that key is stored already.
    pub async fn enqueue(&self, intake_key: &str, task: &Task) -> Result<Enqueued, ClusterError> {
        let body = serde_json::to_value(task).map_err(|e| ClusterError::Task {
            task: task.id.clone(),
            why: e.to_string(),
        })?;
        let size = body.to_string().len();
        if size > MAX_TASK_BYTES {
            return Err(ClusterError::Task {
                task: task.id.clone(),
                why: format!("{size} bytes; at most {MAX_TASK_BYTES}"),
            });
        }
        let row = self
            .client
            .query_one(
                "WITH ins AS (
                     INSERT INTO warden_tasks (id, intake_key, task) VALUES ($1, $2, $3)
                     ON CONFLICT (intake_key) DO NOTHING RETURNING id)
                 SELECT id, true FROM ins
                 UNION ALL
                 SELECT id, false FROM warden_tasks WHERE intake_key = $2
                 LIMIT 1",
                &[&task.id, &intake_key, &body],
            )
            .await
            .map_err(ClusterError::pg("enqueue"))?;
        let id: String = row.get(0);
        Ok(if row.get::<_, bool>(1) {
            Enqueued::New(id)
        } else {
            Enqueued::Duplicate(id)
        })
    }
}
