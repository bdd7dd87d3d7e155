//! PostgreSQL is the record: every task with its intake key (a retried
//! webhook or a redelivered message is stored once), the lease and epoch of
//! the worker holding it, its plan, the outcome of each step, and its
//! journal. Every write a worker makes for a task is fenced: one
//! transaction that succeeds only while the worker still holds the task.

use std::time::Duration;

use serde_json::Value;
use tokio::sync::{Mutex, MutexGuard};
use tokio_postgres::Client;
use warden::Task;
use warden::journal::{HostKey, JournalEvent, JournalRecord};

use crate::error::ClusterError;
use crate::security::Security;

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
ALTER TABLE warden_tasks ADD COLUMN IF NOT EXISTS owner text;
ALTER TABLE warden_tasks ADD COLUMN IF NOT EXISTS epoch bigint NOT NULL DEFAULT 0;
ALTER TABLE warden_tasks ADD COLUMN IF NOT EXISTS lease_until timestamptz;
ALTER TABLE warden_tasks ADD COLUMN IF NOT EXISTS commits bigint NOT NULL DEFAULT 0;
ALTER TABLE warden_tasks ADD COLUMN IF NOT EXISTS outcome jsonb;
ALTER TABLE warden_tasks ADD COLUMN IF NOT EXISTS finished_at timestamptz;
CREATE INDEX IF NOT EXISTS warden_tasks_running ON warden_tasks (lease_until) WHERE state = 'running';
CREATE TABLE IF NOT EXISTS warden_plans (
    task_id   text NOT NULL REFERENCES warden_tasks (id),
    revision  integer NOT NULL,
    proposal  jsonb NOT NULL,
    PRIMARY KEY (task_id, revision)
);
CREATE TABLE IF NOT EXISTS warden_steps (
    task_id     text NOT NULL REFERENCES warden_tasks (id),
    step_id     text NOT NULL,
    revision    integer NOT NULL,
    status      text,
    observation jsonb,
    in_flight   boolean NOT NULL,
    epoch       bigint NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (task_id, step_id, revision)
);
CREATE TABLE IF NOT EXISTS warden_journal (
    task_id  text NOT NULL,
    seq      bigint NOT NULL,
    line     text NOT NULL,
    mac      text NOT NULL,
    PRIMARY KEY (task_id, seq)
);
CREATE TABLE IF NOT EXISTS warden_anchors (
    seq   bigint PRIMARY KEY,
    line  text NOT NULL,
    mac   text NOT NULL
);
-- Attempt limit: claims of a task so far, and the last run's error.
ALTER TABLE warden_tasks ADD COLUMN IF NOT EXISTS attempts integer NOT NULL DEFAULT 0;
ALTER TABLE warden_tasks ADD COLUMN IF NOT EXISTS last_error text;
-- Edge records stored by the hub's edge sink: journal lines per (edge, task, seq), other records per (edge, id).
CREATE TABLE IF NOT EXISTS warden_edge_journal (
    domain      text NOT NULL,
    task_id     text NOT NULL,
    seq         bigint NOT NULL,
    line        text NOT NULL,
    mac         text NOT NULL,
    record_id   text NOT NULL,
    stream_seq  bigint NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (domain, task_id, seq)
);
CREATE TABLE IF NOT EXISTS warden_edge_records (
    domain      text NOT NULL,
    record_id   text NOT NULL,
    payload     jsonb NOT NULL,
    stream_seq  bigint NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (domain, record_id)
);
CREATE TABLE IF NOT EXISTS warden_mutations (
    id         bigserial PRIMARY KEY,
    agent      text NOT NULL,
    principal  text NOT NULL,
    env        text NOT NULL,
    task_id    text NOT NULL,
    at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS warden_mutations_at ON warden_mutations (at);
CREATE TABLE IF NOT EXISTS warden_approvals (
    id           text PRIMARY KEY,
    task_id      text NOT NULL,
    worker       text NOT NULL,
    request      jsonb NOT NULL,
    asked_at     timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    answer       jsonb,
    answered_by  text,
    answered_at  timestamptz
);
CREATE INDEX IF NOT EXISTS warden_approvals_open ON warden_approvals (asked_at) WHERE answer IS NULL;
CREATE SEQUENCE IF NOT EXISTS warden_incidents_seq;
CREATE TABLE IF NOT EXISTS warden_incidents (
    id         text PRIMARY KEY,
    task_id    text NOT NULL,
    incident   jsonb NOT NULL,
    seq        bigint NOT NULL DEFAULT nextval('warden_incidents_seq'),
    stored_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS warden_incidents_by_seq ON warden_incidents (seq);
";

/// Key of the advisory lock that serialises migrations.
const MIGRATE_LOCK: i64 = 0x7761_7264_656e; // "warden"
/// How often a migration that lost a deadlock is tried again.
const MIGRATE_TRIES: u32 = 5;
/// Key of the advisory lock that serialises appends to the global anchor
/// chain (held to the end of each fenced commit that journals).
const ANCHOR_LOCK: i64 = 0x7761_7264_656f;

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

/// A worker's hold on a task: who, at which epoch. Every fenced write
/// carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    /// The task.
    pub task: String,
    /// The worker holding it.
    pub owner: String,
    /// The epoch of this hold: each claim adds one.
    pub epoch: u64,
}

/// A task a worker claimed.
#[derive(Debug, Clone)]
pub struct Claim {
    /// The hold.
    pub fence: Fence,
    /// The task.
    pub task: Task,
    /// Fenced commits made for the task so far (by every worker).
    pub commits: u64,
    /// Claims of the task so far, this one included: 1 on its first run.
    pub attempts: u32,
    /// Why the previous run failed, when it did (an agent error; a run
    /// whose worker died leaves none).
    pub last_error: Option<String>,
}

/// How a task ended, as the record keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    /// Every step has a known outcome.
    Done,
    /// A mutating call's outcome is unknown: a human or a verify step decides.
    Unknown,
    /// Its runs failed (agent errors, or workers that died) as many times
    /// as the attempt limit allows; the outcome holds the last error.
    Failed,
}

impl Finish {
    /// `done`, `unknown` or `failed`, the task's state in the record.
    pub fn as_str(self) -> &'static str {
        match self {
            Finish::Done => "done",
            Finish::Unknown => "unknown",
            Finish::Failed => "failed",
        }
    }
}

/// The writes of one fenced commit.
#[derive(Debug, Default, Clone)]
pub struct Commit {
    /// A proposal stored as plan revision `.0`.
    pub plan: Option<(u32, Value)>,
    /// A step's row.
    pub step: Option<StepRow>,
    /// Journal records to append to the task's chain (timestamp, event).
    pub records: Vec<(String, JournalEvent)>,
    /// The task ended: its state and outcome.
    pub finish: Option<(Finish, Value)>,
}

/// One step of a task, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StepRow {
    /// Step id.
    pub step_id: String,
    /// Plan revision that added it.
    pub revision: u32,
    /// Its status (`succeeded`, …), once committed.
    pub status: Option<String>,
    /// Its observation, once committed.
    pub observation: Option<Value>,
    /// A mutating call was started and has no outcome yet.
    pub in_flight: bool,
    /// The epoch of the worker that wrote the row.
    pub epoch: u64,
}

/// A connection to the cluster's record. It reconnects on its own when
/// PostgreSQL went away (a restart): the operation that found the
/// connection broken fails, the next one connects again.
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
    url: String,
    security: Security,
    client: Mutex<Client>,
}

fn task_err(task: &str, why: impl std::fmt::Display) -> ClusterError {
    ClusterError::Task {
        task: task.to_string(),
        why: why.to_string(),
    }
}

fn i64_of(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn u64_of(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

impl Record {
    /// Connect with a libpq-style string (`host=… port=… user=… dbname=…`)
    /// or a `postgresql://` URL. The connection runs on the current tokio
    /// runtime until the `Record` is dropped.
    ///
    /// Plaintext, so only to loopback or a Unix socket unless the string
    /// says `sslmode=…`; see [`Record::connect_with`].
    pub async fn connect(url: &str) -> Result<Record, ClusterError> {
        Record::connect_with(url, &Security::default()).await
    }

    /// Connect with TLS and the plaintext rule of `security` (see
    /// [`Security`]); reconnects use the same settings.
    pub async fn connect_with(url: &str, security: &Security) -> Result<Record, ClusterError> {
        Ok(Record {
            url: url.to_string(),
            security: security.clone(),
            client: Mutex::new(security.connect_postgres(url).await?),
        })
    }

    /// `url` without its password, for logs and `--check-config`:
    /// `user@host:port/dbname`; an error when it does not parse.
    ///
    /// ```
    /// let shown = warden_cluster::Record::describe("host=db port=5433 user=warden password=s3cret dbname=w")?;
    /// assert_eq!(shown, "warden@db:5433/w");
    /// # Ok::<(), warden_cluster::ClusterError>(())
    /// ```
    pub fn describe(url: &str) -> Result<String, ClusterError> {
        let config: tokio_postgres::Config = url.parse().map_err(ClusterError::pg("parse"))?;
        let hosts: Vec<String> = config
            .get_hosts()
            .iter()
            .map(|h| match h {
                tokio_postgres::config::Host::Tcp(name) => name.clone(),
                tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
            })
            .collect();
        let port = config.get_ports().first().copied().unwrap_or(5432);
        Ok(format!(
            "{}@{}:{port}/{}",
            config.get_user().unwrap_or("?"),
            if hosts.is_empty() {
                "localhost".to_string()
            } else {
                hosts.join(",")
            },
            config.get_dbname().unwrap_or("?")
        ))
    }

    /// The connection string it was opened with.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// The TLS and plaintext settings it was opened with.
    pub(crate) fn security(&self) -> &Security {
        &self.security
    }

    /// The connection, opened again if PostgreSQL dropped it.
    pub(crate) async fn client(&self) -> Result<MutexGuard<'_, Client>, ClusterError> {
        let mut client = self.client.lock().await;
        if client.is_closed() {
            *client = self.security.connect_postgres(&self.url).await?;
            tracing::info!("reconnected to PostgreSQL");
        }
        Ok(client)
    }

    /// Create the tables the cluster needs, if they are not there yet.
    ///
    /// Workers that start together wait for each other on an advisory
    /// lock. The schema applied last is stored in `warden_schema`; a worker
    /// that finds this build's schema there changes nothing. That matters
    /// because `ALTER TABLE … IF NOT EXISTS` locks its table even when there
    /// is nothing to add, which deadlocks against the task loops of workers
    /// already running. When the schema does change under running workers
    /// and PostgreSQL picks the migration as a deadlock's victim, it is
    /// rolled back whole and tried again.
    pub async fn migrate(&self) -> Result<(), ClusterError> {
        let mut tries = 0;
        loop {
            match self.migrate_once().await {
                Err(ClusterError::Postgres { source, .. })
                    if tries < MIGRATE_TRIES
                        && source.code()
                            == Some(&tokio_postgres::error::SqlState::T_R_DEADLOCK_DETECTED) =>
                {
                    tries += 1;
                    tracing::warn!(tries, "schema migration lost a deadlock; trying again");
                    tokio::time::sleep(Duration::from_millis(100 * tries as u64)).await;
                }
                other => return other,
            }
        }
    }

    async fn migrate_once(&self) -> Result<(), ClusterError> {
        let failed = ClusterError::pg("migrate");
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(failed)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATE_LOCK])
            .await
            .map_err(failed)?;
        tx.batch_execute("CREATE TABLE IF NOT EXISTS warden_schema (applied text NOT NULL)")
            .await
            .map_err(failed)?;
        let applied = tx
            .query("SELECT applied FROM warden_schema", &[])
            .await
            .map_err(failed)?;
        if let [row] = applied.as_slice()
            && row.get::<_, &str>(0) == SCHEMA
        {
            return tx.commit().await.map_err(failed);
        }
        tx.batch_execute(SCHEMA).await.map_err(failed)?;
        tx.execute("DELETE FROM warden_schema", &[])
            .await
            .map_err(failed)?;
        tx.execute(
            "INSERT INTO warden_schema (applied) VALUES ($1)",
            &[&SCHEMA],
        )
        .await
        .map_err(failed)?;
        tx.commit().await.map_err(failed)
    }

    /// Store `task` under `intake_key` (`am:<fingerprint>`, `az:<id>`,
    /// `gen:<key>`) unless a task with that key is stored already.
    pub async fn enqueue(&self, intake_key: &str, task: &Task) -> Result<Enqueued, ClusterError> {
        let body = serde_json::to_value(task).map_err(|e| task_err(&task.id, e))?;
        let size = body.to_string().len();
        if size > MAX_TASK_BYTES {
            return Err(task_err(
                &task.id,
                format!("{size} bytes; at most {MAX_TASK_BYTES}"),
            ));
        }
        let row = self
            .client()
            .await?
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

    /// Claim the oldest runnable task for `owner` for `lease`: one that is
    /// queued, or running under a lease that expired (its worker died or
    /// stalled). The claim adds one to the task's epoch, which fences out
    /// the previous holder. Workers claiming together skip each other's
    /// rows (`FOR UPDATE SKIP LOCKED`).
    pub async fn claim(&self, owner: &str, lease: Duration) -> Result<Option<Claim>, ClusterError> {
        let rows = self
            .client()
            .await?
            .query(
                "WITH c AS (
                     SELECT id FROM warden_tasks
                     WHERE state = 'queued' OR (state = 'running' AND lease_until < now())
                     ORDER BY created_at, id
                     LIMIT 1
                     FOR UPDATE SKIP LOCKED)
                 UPDATE warden_tasks t
                 SET state = 'running', owner = $1, epoch = t.epoch + 1,
                     lease_until = now() + make_interval(secs => $2),
                     attempts = t.attempts + 1
                 FROM c WHERE t.id = c.id
                 RETURNING t.id, t.task, t.epoch, t.commits, t.attempts, t.last_error",
                &[&owner, &lease.as_secs_f64()],
            )
            .await
            .map_err(ClusterError::pg("claim"))?;
        let Some(row) = rows.into_iter().next() else {
            return Ok(None);
        };
        let id: String = row.get(0);
        let task: Task = serde_json::from_value(row.get(1)).map_err(|e| task_err(&id, e))?;
        Ok(Some(Claim {
            fence: Fence {
                task: id,
                owner: owner.to_string(),
                epoch: u64_of(row.get(2)),
            },
            task,
            commits: u64_of(row.get(3)),
            attempts: u32::try_from(row.get::<_, i32>(4)).unwrap_or(0),
            last_error: row.get(5),
        }))
    }

    /// Keep why a run of the task `fence` holds failed (fenced; the task
    /// stays claimed until its lease runs out, then runs again).
    /// [`ClusterError::Fenced`] when the worker no longer holds it.
    pub async fn note_failure(&self, fence: &Fence, error: &str) -> Result<(), ClusterError> {
        let n = self
            .client()
            .await?
            .execute(
                "UPDATE warden_tasks SET last_error = $4
                 WHERE id = $1 AND owner = $2 AND epoch = $3 AND state = 'running'",
                &[&fence.task, &fence.owner, &i64_of(fence.epoch), &error],
            )
            .await
            .map_err(ClusterError::pg("note failure"))?;
        if n == 1 {
            Ok(())
        } else {
            Err(ClusterError::Fenced {
                task: fence.task.clone(),
                epoch: fence.epoch,
            })
        }
    }

    /// Extend the lease of a task this worker holds; [`ClusterError::Fenced`]
    /// when it no longer does (the lease expired, or another worker claimed
    /// the task).
    pub async fn renew(&self, fence: &Fence, lease: Duration) -> Result<(), ClusterError> {
        let n = self
            .client()
            .await?
            .execute(
                "UPDATE warden_tasks SET lease_until = now() + make_interval(secs => $4)
                 WHERE id = $1 AND owner = $2 AND epoch = $3 AND state = 'running'
                   AND lease_until > now()",
                &[
                    &fence.task,
                    &fence.owner,
                    &i64_of(fence.epoch),
                    &lease.as_secs_f64(),
                ],
            )
            .await
            .map_err(ClusterError::pg("renew"))?;
        if n == 1 {
            Ok(())
        } else {
            Err(ClusterError::Fenced {
                task: fence.task.clone(),
                epoch: fence.epoch,
            })
        }
    }

    /// The stored plan revisions (proposals, revision order) and step rows
    /// of a task.
    pub async fn stored(&self, task: &str) -> Result<(Vec<Value>, Vec<StepRow>), ClusterError> {
        let client = self.client().await?;
        let plans = client
            .query(
                "SELECT proposal FROM warden_plans WHERE task_id = $1 ORDER BY revision",
                &[&task],
            )
            .await
            .map_err(ClusterError::pg("read plans"))?
            .into_iter()
            .map(|r| r.get::<_, Value>(0))
            .collect();
        let steps = client
            .query(
                "SELECT step_id, revision, status, observation, in_flight, epoch
                 FROM warden_steps WHERE task_id = $1",
                &[&task],
            )
            .await
            .map_err(ClusterError::pg("read steps"))?
            .into_iter()
            .map(|r| StepRow {
                step_id: r.get(0),
                revision: u32::try_from(r.get::<_, i32>(1)).unwrap_or(0),
                status: r.get(2),
                observation: r.get(3),
                in_flight: r.get(4),
                epoch: u64_of(r.get(5)),
            })
            .collect();
        Ok((plans, steps))
    }

    /// Write `commit` for the task `fence` holds, as commit number
    /// `done + 1`, in one transaction that succeeds only while the worker
    /// still holds the task (same owner and epoch, lease not expired, still
    /// running); otherwise [`ClusterError::Fenced`] and nothing is written.
    /// The journal records are sealed under `key` onto the task's chain,
    /// and the chain's new head onto the global anchor chain.
    ///
    /// Retrying a commit whose first attempt did commit (the connection
    /// broke before the answer) is recognised by its number and succeeds
    /// without writing twice.
    pub async fn commit(
        &self,
        fence: &Fence,
        done: u64,
        key: &HostKey,
        commit: &Commit,
    ) -> Result<(), ClusterError> {
        let mut client = self.client().await?;
        let pg = ClusterError::pg("fenced commit");
        let tx = client
            .transaction()
            .await
            .map_err(ClusterError::pg("begin"))?;
        let row = tx
            .query_opt(
                "SELECT owner, epoch, lease_until > now(), commits, state
                 FROM warden_tasks WHERE id = $1 FOR UPDATE",
                &[&fence.task],
            )
            .await
            .map_err(ClusterError::pg("fence"))?
            .ok_or_else(|| task_err(&fence.task, "no such task in the record"))?;
        let owner: Option<String> = row.get(0);
        let mine =
            owner.as_deref() == Some(fence.owner.as_str()) && u64_of(row.get(1)) == fence.epoch;
        let commits = u64_of(row.get(3));
        if mine && commits == done + 1 {
            return Ok(()); // this commit went through before
        }
        let live: bool = row.get::<_, Option<bool>>(2).unwrap_or(false);
        let state: String = row.get(4);
        if !(mine && live && state == "running" && commits == done) {
            return Err(ClusterError::Fenced {
                task: fence.task.clone(),
                epoch: fence.epoch,
            });
        }
        if let Some((revision, proposal)) = &commit.plan {
            tx.execute(
                "INSERT INTO warden_plans (task_id, revision, proposal) VALUES ($1, $2, $3)",
                &[
                    &fence.task,
                    &i32::try_from(*revision).unwrap_or(i32::MAX),
                    proposal,
                ],
            )
            .await
            .map_err(ClusterError::pg("store plan"))?;
        }
        if let Some(s) = &commit.step {
            tx.execute(
                "INSERT INTO warden_steps (task_id, step_id, revision, status, observation, in_flight, epoch)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (task_id, step_id, revision) DO UPDATE
                 SET status = $4, observation = $5, in_flight = $6, epoch = $7, updated_at = now()",
                &[
                    &fence.task,
                    &s.step_id,
                    &i32::try_from(s.revision).unwrap_or(i32::MAX),
                    &s.status,
                    &s.observation,
                    &s.in_flight,
                    &i64_of(s.epoch),
                ],
            )
            .await
            .map_err(ClusterError::pg("store step"))?;
        }
        if !commit.records.is_empty() {
            append_journal(&tx, &fence.task, key, &commit.records).await?;
        }
        match &commit.finish {
            Some((finish, outcome)) => {
                tx.execute(
                    "UPDATE warden_tasks SET commits = commits + 1, state = $2, outcome = $3,
                            lease_until = NULL, finished_at = now(),
                            last_error = CASE WHEN $2::text = 'failed' THEN $3::jsonb->>'error' ELSE last_error END
                     WHERE id = $1",
                    &[&fence.task, &finish.as_str(), outcome],
                )
                .await
            }
            None => {
                tx.execute(
                    "UPDATE warden_tasks SET commits = commits + 1 WHERE id = $1",
                    &[&fence.task],
                )
                .await
            }
        }
        .map_err(ClusterError::pg("update task"))?;
        tx.commit().await.map_err(pg)
    }

    /// How many tasks are in each state (`queued`, `running`, `done`,
    /// `unknown`, `failed`).
    pub async fn counts(&self) -> Result<std::collections::BTreeMap<String, u64>, ClusterError> {
        Ok(self
            .client()
            .await?
            .query(
                "SELECT state, count(*) FROM warden_tasks GROUP BY state",
                &[],
            )
            .await
            .map_err(ClusterError::pg("count tasks"))?
            .into_iter()
            .map(|r| (r.get::<_, String>(0), u64_of(r.get(1))))
            .collect())
    }

    /// The journal lines of every task (task, seq order), then the anchor
    /// lines (seq order): what [`crate::verify_journal`] reads.
    pub(crate) async fn journal_lines(
        &self,
        task: Option<&str>,
    ) -> Result<(Vec<(String, i64, String)>, Vec<(i64, String)>), ClusterError> {
        let client = self.client().await?;
        let rows = match task {
            Some(t) => client
                .query(
                    "SELECT task_id, seq, line FROM warden_journal WHERE task_id = $1 ORDER BY seq",
                    &[&t],
                )
                .await,
            None => {
                client
                    .query(
                        "SELECT task_id, seq, line FROM warden_journal ORDER BY task_id, seq",
                        &[],
                    )
                    .await
            }
        }
        .map_err(ClusterError::pg("read journal"))?;
        let lines = rows
            .into_iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        let anchors = client
            .query("SELECT seq, line FROM warden_anchors ORDER BY seq", &[])
            .await
            .map_err(ClusterError::pg("read anchors"))?
            .into_iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        Ok((lines, anchors))
    }
}

/// Seal `records` onto the task's chain and anchor its new head.
async fn append_journal(
    tx: &tokio_postgres::Transaction<'_>,
    task: &str,
    key: &HostKey,
    records: &[(String, JournalEvent)],
) -> Result<(), ClusterError> {
    let last = tx
        .query_opt(
            "SELECT seq, mac FROM warden_journal WHERE task_id = $1 ORDER BY seq DESC LIMIT 1",
            &[&task],
        )
        .await
        .map_err(ClusterError::pg("read journal head"))?;
    let (mut seq, mut prev) = match last {
        Some(r) => (u64_of(r.get::<_, i64>(0)) + 1, r.get::<_, String>(1)),
        None => (0, JournalRecord::GENESIS.to_string()),
    };
    for (ts, event) in records {
        let (line, rec) =
            JournalRecord::seal(key, seq, ts, task, event, &prev).map_err(|e| task_err(task, e))?;
        tx.execute(
            "INSERT INTO warden_journal (task_id, seq, line, mac) VALUES ($1, $2, $3, $4)",
            &[&task, &i64_of(seq), &line, &rec.mac],
        )
        .await
        .map_err(ClusterError::pg("append journal"))?;
        seq += 1;
        prev = rec.mac;
    }
    // The global chain is one chain: appends to it wait for each other
    // until the transaction ends.
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&ANCHOR_LOCK])
        .await
        .map_err(ClusterError::pg("lock anchors"))?;
    let last = tx
        .query_opt(
            "SELECT seq, mac FROM warden_anchors ORDER BY seq DESC LIMIT 1",
            &[],
        )
        .await
        .map_err(ClusterError::pg("read anchor head"))?;
    let (aseq, aprev) = match last {
        Some(r) => (u64_of(r.get::<_, i64>(0)) + 1, r.get::<_, String>(1)),
        None => (0, JournalRecord::GENESIS.to_string()),
    };
    let ts = records
        .last()
        .map(|(ts, _)| ts.as_str())
        .unwrap_or_default();
    let anchor = JournalEvent::Anchored {
        task: task.to_string(),
        records: seq,
        head: prev,
    };
    let (line, rec) =
        JournalRecord::seal(key, aseq, ts, "-", &anchor, &aprev).map_err(|e| task_err(task, e))?;
    tx.execute(
        "INSERT INTO warden_anchors (seq, line, mac) VALUES ($1, $2, $3)",
        &[&i64_of(aseq), &line, &rec.mac],
    )
    .await
    .map_err(ClusterError::pg("append anchor"))?;
    Ok(())
}
