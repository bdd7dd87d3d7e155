//! Approvals in the record, so any worker can show and answer an approval
//! while another runs the task: `warden_approvals` holds each request and
//! its answer; the first answer wins (a conditional update), an answer
//! after `expires_at` is refused, and every change is announced on
//! [`APPROVALS_CHANNEL`](crate::APPROVALS_CHANNEL) for the worker that
//! waits.

use serde_json::Value;
use warden::Approval;

use crate::error::ClusterError;
use crate::feed::APPROVALS_CHANNEL;
use crate::record::Record;

/// A request for approval, as the worker that waits for it stores it.
#[derive(Debug, Clone, Copy)]
pub struct AskedApproval<'a> {
    /// The approval's id (random, unguessable).
    pub id: &'a str,
    /// The task it belongs to.
    pub task_id: &'a str,
    /// The worker waiting for the answer.
    pub worker: &'a str,
    /// What is asked, as the API shows it (JSON).
    pub request: &'a Value,
    /// When it expires unanswered (RFC 3339): later answers are refused.
    pub expires_at: &'a str,
}

/// An approval as the record holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredApproval {
    /// Its id.
    pub id: String,
    /// The task.
    pub task_id: String,
    /// The worker waiting for it.
    pub worker: String,
    /// What is asked.
    pub request: Value,
    /// The answer, once given (an expiry is a no by `timeout`).
    pub answer: Option<Approval>,
    /// Unanswered and not expired: it can still be answered.
    pub open: bool,
}

fn bad_answer(id: &str, e: serde_json::Error) -> ClusterError {
    ClusterError::Task {
        task: String::new(),
        why: format!("approval `{id}`: the stored answer does not read back: {e}"),
    }
}

fn stored(row: &tokio_postgres::Row) -> Result<StoredApproval, ClusterError> {
    let id: String = row.get(0);
    let answer = row
        .get::<_, Option<Value>>(4)
        .map(serde_json::from_value)
        .transpose()
        .map_err(|e| bad_answer(&id, e))?;
    Ok(StoredApproval {
        id,
        task_id: row.get(1),
        worker: row.get(2),
        request: row.get(3),
        answer,
        open: row.get(5),
    })
}

const COLUMNS: &str =
    "id, task_id, worker, request, answer, (answer IS NULL AND expires_at > now())";

fn to_json(id: &str, answer: &Approval) -> Result<Value, ClusterError> {
    serde_json::to_value(answer).map_err(|e| bad_answer(id, e))
}

impl Record {
    /// Store a request for approval and announce it (a request stored
    /// already, or answered before it was stored, is left as it is).
    pub async fn ask_approval(&self, asked: &AskedApproval<'_>) -> Result<(), ClusterError> {
        self.client()
            .await?
            .execute(
                "WITH ins AS (
                     INSERT INTO warden_approvals (id, task_id, worker, request, expires_at)
                     VALUES ($1, $2, $3, $4, CAST($5::text AS timestamptz))
                     ON CONFLICT (id) DO NOTHING RETURNING id)
                 SELECT pg_notify($6, id) FROM ins",
                &[
                    &asked.id,
                    &asked.task_id,
                    &asked.worker,
                    asked.request,
                    &asked.expires_at,
                    &APPROVALS_CHANNEL,
                ],
            )
            .await
            .map_err(ClusterError::pg("ask approval"))?;
        Ok(())
    }

    /// Answer approval `id`: taken only if it is unanswered and has not
    /// expired (the first answer wins, on whichever worker it arrives),
    /// then announced. Returns the request when this answer was taken,
    /// `None` when it was refused (answered, expired, or never asked).
    ///
    /// The worker that asked passes `asked`, so its answer is taken even
    /// if the request has not reached the record yet.
    ///
    /// ```no_run
    /// # async fn demo(record: warden_cluster::Record) -> Result<(), warden_cluster::ClusterError> {
    /// let yes = warden::Approval::yes("alice");
    /// match record.answer_approval("4f1c…", &yes, None).await? {
    ///     Some(_request) => println!("taken; the waiting worker proceeds"),
    ///     None => println!("refused: answered, expired, or never asked"),
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn answer_approval(
        &self,
        id: &str,
        answer: &Approval,
        asked: Option<&AskedApproval<'_>>,
    ) -> Result<Option<Value>, ClusterError> {
        let value = to_json(id, answer)?;
        let client = self.client().await?;
        let row = match asked {
            Some(a) => client
                .query_opt(
                    "WITH up AS (
                         INSERT INTO warden_approvals
                             (id, task_id, worker, request, expires_at, answer, answered_by, answered_at)
                         VALUES ($1, $2, $3, $4, CAST($5::text AS timestamptz), $6, $7, now())
                         ON CONFLICT (id) DO UPDATE
                         SET answer = $6, answered_by = $7, answered_at = now()
                         WHERE warden_approvals.answer IS NULL AND warden_approvals.expires_at > now()
                         RETURNING id, request)
                     SELECT request, pg_notify($8, id) FROM up",
                    &[
                        &id,
                        &a.task_id,
                        &a.worker,
                        a.request,
                        &a.expires_at,
                        &value,
                        &answer.by,
                        &APPROVALS_CHANNEL,
                    ],
                )
                .await,
            None => client
                .query_opt(
                    "WITH up AS (
                         UPDATE warden_approvals SET answer = $2, answered_by = $3, answered_at = now()
                         WHERE id = $1 AND answer IS NULL AND expires_at > now()
                         RETURNING id, request)
                     SELECT request, pg_notify($4, id) FROM up",
                    &[&id, &value, &answer.by, &APPROVALS_CHANNEL],
                )
                .await,
        }
        .map_err(ClusterError::pg("answer approval"))?;
        Ok(row.map(|r| r.get(0)))
    }

    /// Close approval `id` with `no` (nobody answered in time), unless it
    /// was answered first; returns the answer that stands (`None`: no such
    /// approval).
    pub async fn expire_approval(
        &self,
        id: &str,
        no: &Approval,
    ) -> Result<Option<Approval>, ClusterError> {
        let value = to_json(id, no)?;
        let mut client = self.client().await?;
        let tx = client
            .transaction()
            .await
            .map_err(ClusterError::pg("begin"))?;
        let row = tx
            .query_opt(
                "SELECT answer FROM warden_approvals WHERE id = $1 FOR UPDATE",
                &[&id],
            )
            .await
            .map_err(ClusterError::pg("read approval"))?;
        let standing = match row {
            None => None,
            Some(r) => match r.get::<_, Option<Value>>(0) {
                Some(earlier) => {
                    Some(serde_json::from_value(earlier).map_err(|e| bad_answer(id, e))?)
                }
                None => {
                    tx.execute(
                        "UPDATE warden_approvals SET answer = $2, answered_by = $3, answered_at = now()
                         WHERE id = $1",
                        &[&id, &value, &no.by],
                    )
                    .await
                    .map_err(ClusterError::pg("expire approval"))?;
                    tx.execute("SELECT pg_notify($1, $2)", &[&APPROVALS_CHANNEL, &id])
                        .await
                        .map_err(ClusterError::pg("announce approval"))?;
                    Some(no.clone())
                }
            },
        };
        tx.commit().await.map_err(ClusterError::pg("commit"))?;
        Ok(standing)
    }

    /// Approval `id` as stored.
    pub async fn approval(&self, id: &str) -> Result<Option<StoredApproval>, ClusterError> {
        self.client()
            .await?
            .query_opt(
                &format!("SELECT {COLUMNS} FROM warden_approvals WHERE id = $1"),
                &[&id],
            )
            .await
            .map_err(ClusterError::pg("read approval"))?
            .as_ref()
            .map(stored)
            .transpose()
    }

    /// Every approval that can still be answered, oldest first.
    pub async fn open_approvals(&self) -> Result<Vec<StoredApproval>, ClusterError> {
        self.client()
            .await?
            .query(
                &format!(
                    "SELECT {COLUMNS} FROM warden_approvals
                     WHERE answer IS NULL AND expires_at > now() ORDER BY asked_at"
                ),
                &[],
            )
            .await
            .map_err(ClusterError::pg("read approvals"))?
            .iter()
            .map(stored)
            .collect()
    }
}
