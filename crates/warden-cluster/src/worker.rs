//! A worker: claim a task, run it on the agent's one path with the ledger,
//! record how it ended, and claim the next.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::Notify;
use warden::{Agent, AgentError, CancellationToken};

use crate::error::ClusterError;
use crate::ledger::ClusterLedger;
use crate::record::{Claim, Finish};

/// The longest an idle worker waits before looking at the record again,
/// wake-up or not: the bus only makes it sooner.
const MAX_IDLE: Duration = Duration::from_secs(1);

/// Claims of a task before it ends `failed`, unless [`Worker::max_attempts`]
/// says otherwise.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;

/// What a worker did, counted as it went.
#[derive(Debug, Default)]
pub struct WorkerStats {
    /// Tasks claimed.
    pub claimed: AtomicU64,
    /// Tasks ended `done`.
    pub done: AtomicU64,
    /// Tasks ended `unknown` (a mutating call's outcome is unknown).
    pub unknown: AtomicU64,
    /// Tasks ended `failed`: their last attempt failed too.
    pub failed: AtomicU64,
    /// Tasks this worker lost to another (fenced out).
    pub fenced: AtomicU64,
    /// Record errors it waited out (PostgreSQL unreachable, say).
    pub errors: AtomicU64,
    /// Tasks running now.
    pub running: AtomicU64,
}

/// Where a worker gets the agent for its next task.
type AgentSource = Arc<dyn Fn() -> Arc<Agent> + Send + Sync>;

/// Runs tasks from the record, `parallel` at a time, until stopped.
///
/// Between empty polls it waits on `wake` (the bus's wake-ups), never
/// longer than a second. While a task runs its lease is renewed every third
/// of the lease; when a renewal finds the task taken over, the run is
/// cancelled, and any write it still tries is fenced out.
///
/// Stopping does not cancel running tasks (a mutating call cut off mid-way
/// would end `unknown` wherever the task resumes): [`Worker::run`] stops
/// claiming and waits for them; [`Worker::run_until`] also takes a token
/// that cancels them, leaving them to their leases.
///
/// ```no_run
/// # async fn demo(agent: warden::Agent, ledger: std::sync::Arc<warden_cluster::ClusterLedger>) -> Result<(), warden_cluster::ClusterError> {
/// use std::sync::Arc;
/// use std::time::Duration;
/// use warden_cluster::Worker;
///
/// let stop = warden::CancellationToken::new();
/// let worker = Worker::new(ledger, Arc::new(agent)).lease(Duration::from_secs(15)).parallel(4);
/// worker.run(stop).await?;
/// # Ok(()) }
/// ```
pub struct Worker {
    ledger: Arc<ClusterLedger>,
    agent: AgentSource,
    lease: Duration,
    parallel: usize,
    max_attempts: u32,
    wake: Arc<Notify>,
    stats: Arc<WorkerStats>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("ledger", &self.ledger)
            .field("lease", &self.lease)
            .field("parallel", &self.parallel)
            .field("max_attempts", &self.max_attempts)
            .finish_non_exhaustive()
    }
}

impl Worker {
    /// A worker running `agent` (built with `.ledger(ledger)`) on the
    /// tasks it claims through `ledger`.
    pub fn new(ledger: Arc<ClusterLedger>, agent: Arc<Agent>) -> Worker {
        Worker::with_agent(ledger, move || agent.clone())
    }

    /// A worker that asks `current` for the agent of each task it claims
    /// (a service that reloads its agent). Each agent must be built with
    /// `.ledger(ledger)`.
    pub fn with_agent(
        ledger: Arc<ClusterLedger>,
        current: impl Fn() -> Arc<Agent> + Send + Sync + 'static,
    ) -> Worker {
        Worker {
            ledger,
            agent: Arc::new(current),
            lease: Duration::from_secs(15),
            parallel: 1,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            wake: Arc::new(Notify::new()),
            stats: Arc::new(WorkerStats::default()),
        }
    }

    /// How long a claim holds before another worker may take the task over
    /// (default 15 s).
    pub fn lease(mut self, lease: Duration) -> Worker {
        self.lease = lease.max(Duration::from_millis(100));
        self
    }

    /// Tasks run at once (default 1).
    pub fn parallel(mut self, n: usize) -> Worker {
        self.parallel = n.max(1);
        self
    }

    /// How many times a task is claimed before it ends `failed` (default
    /// 5, at least 1). Every claim counts: a run that failed with an agent
    /// error, and one whose worker died or was stopped. The run that uses
    /// the last attempt ends the task `failed` when it fails; a task
    /// claimed with no attempt left (its last worker died) ends `failed`
    /// without running.
    pub fn max_attempts(mut self, n: u32) -> Worker {
        self.max_attempts = n.max(1);
        self
    }

    /// Wake-ups to wait on between empty polls (default: one nobody
    /// notifies, so the worker polls every second at most).
    pub fn wake(mut self, wake: Arc<Notify>) -> Worker {
        self.wake = wake;
        self
    }

    /// Its counters, shared with the running worker.
    pub fn stats(&self) -> Arc<WorkerStats> {
        self.stats.clone()
    }

    /// Claim and run tasks until `stop` fires, then let the running ones
    /// end.
    pub async fn run(&self, stop: CancellationToken) -> Result<(), ClusterError> {
        self.run_until(stop, CancellationToken::new()).await
    }

    /// Claim and run tasks until `stop` fires; `abort` cancels the running
    /// ones, which are left to their leases: another worker resumes them.
    pub async fn run_until(
        &self,
        stop: CancellationToken,
        abort: CancellationToken,
    ) -> Result<(), ClusterError> {
        let slots = (0..self.parallel).map(|_| self.slot(&stop, &abort));
        futures::future::join_all(slots).await;
        Ok(())
    }

    async fn slot(&self, stop: &CancellationToken, abort: &CancellationToken) {
        let mut idle = Duration::from_millis(20);
        while !stop.is_cancelled() {
            match self.ledger.claim(self.lease).await {
                Ok(Some(claim)) => {
                    idle = Duration::from_millis(20);
                    self.stats.claimed.fetch_add(1, Ordering::Relaxed);
                    self.stats.running.fetch_add(1, Ordering::Relaxed);
                    self.handle(claim, abort).await;
                    self.stats.running.fetch_sub(1, Ordering::Relaxed);
                }
                Ok(None) => {
                    tokio::select! {
                        () = stop.cancelled() => {}
                        () = self.wake.notified() => {}
                        () = tokio::time::sleep(idle) => {}
                    }
                    idle = (idle * 2).min(MAX_IDLE);
                }
                Err(e) => {
                    self.stats.errors.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(worker = self.ledger.owner(), error = %e, "cannot claim; waiting");
                    tokio::select! {
                        () = stop.cancelled() => {}
                        () = tokio::time::sleep(idle) => {}
                    }
                    idle = (idle * 2).min(MAX_IDLE);
                }
            }
        }
    }

    async fn handle(&self, claim: Claim, abort: &CancellationToken) {
        let fence = claim.fence.clone();
        let task_id = fence.task.clone();
        let attempts = claim.attempts;
        if attempts > self.max_attempts {
            // The last attempt's worker died (or was stopped) before it
            // could record an error: give up without running it again.
            let why = match &claim.last_error {
                Some(e) => format!(
                    "no attempt left after {} runs; the last error: {e}",
                    attempts - 1
                ),
                None => format!(
                    "no attempt left after {} runs, which ended without a result (their workers died or were stopped)",
                    attempts - 1
                ),
            };
            self.give_up(&task_id, &why, attempts - 1).await;
            return;
        }
        let cancel = abort.child_token();
        let renewing = {
            let ledger = self.ledger.clone();
            let cancel = cancel.clone();
            let lease = self.lease;
            let fence = fence.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(lease / 3).await;
                    match ledger.renew(&fence, lease).await {
                        Ok(()) => {}
                        Err(ClusterError::Fenced { .. }) => {
                            tracing::warn!(task = %fence.task, epoch = fence.epoch, "lost the task's lease; stopping it");
                            cancel.cancel();
                            return;
                        }
                        Err(e) => {
                            tracing::warn!(task = %fence.task, error = %e, "cannot renew the lease; trying again");
                        }
                    }
                }
            })
        };
        let agent = (self.agent)();
        let result = agent.run_until(claim.task, cancel.clone()).await;
        renewing.abort();
        match result {
            // Aborted from outside: leave the task to its lease.
            Ok(_) if abort.is_cancelled() => self.ledger.release(&task_id),
            Ok(_) if cancel.is_cancelled() => {
                self.stats.fenced.fetch_add(1, Ordering::Relaxed);
                self.ledger.release(&task_id);
            }
            Ok(outcome) => match self.ledger.finish(&outcome).await {
                Ok(Finish::Done) => {
                    self.stats.done.fetch_add(1, Ordering::Relaxed);
                }
                Ok(Finish::Unknown) => {
                    self.stats.unknown.fetch_add(1, Ordering::Relaxed);
                }
                Ok(Finish::Failed) => {
                    self.stats.failed.fetch_add(1, Ordering::Relaxed);
                }
                Err(ClusterError::Fenced { .. }) => {
                    self.stats.fenced.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => {
                    self.stats.errors.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(task = %task_id, error = %e, "could not record the task's end; its lease will run out and another worker resumes it");
                }
            },
            Err(AgentError::Fenced { epoch, .. }) => {
                self.stats.fenced.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(task = %task_id, epoch, "fenced out: another worker holds the task");
                self.ledger.release(&task_id);
            }
            Err(e) if attempts >= self.max_attempts => {
                self.stats.errors.fetch_add(1, Ordering::Relaxed);
                let why = e.to_string();
                tracing::warn!(task = %task_id, error = %why, attempts, "the task failed on its last attempt");
                self.give_up(&task_id, &why, attempts).await;
            }
            Err(e) => {
                self.stats.errors.fetch_add(1, Ordering::Relaxed);
                let why = e.to_string();
                tracing::warn!(task = %task_id, error = %why, attempts, max = self.max_attempts, "the task failed; its lease will run out and another worker runs it again");
                if let Err(e) = self.ledger.fail(&task_id, &why, attempts, false).await {
                    tracing::warn!(task = %task_id, error = %e, "could not keep the task's error");
                }
            }
        }
    }

    /// End a task `failed` with `why`.
    async fn give_up(&self, task_id: &str, why: &str, attempts: u32) {
        match self.ledger.fail(task_id, why, attempts, true).await {
            Ok(()) => {
                self.stats.failed.fetch_add(1, Ordering::Relaxed);
            }
            Err(ClusterError::Fenced { .. }) => {
                self.stats.fenced.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                self.stats.errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(task = %task_id, error = %e, "could not end the task as failed; its lease will run out");
            }
        }
    }
}
