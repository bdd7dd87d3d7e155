//! The history the policy's rate limits read, shared by every worker: each
//! change counted in `warden_mutations` (agent, principal, env, task, when)
//! and read back as the changes of the last hour. A decision reads the
//! count and records its change in one transaction that holds an advisory
//! lock on each of its scopes (the agent, the principal, the environment),
//! so two workers cannot both take the last change under a limit.

use warden::journal::RecentMutations;

use crate::error::ClusterError;
use crate::record::{Fence, Record};

/// Who makes a change: agent name, principal, environment.
type Who<'a> = (&'a str, &'a str, &'a str);

/// The advisory lock key of one scope (`agent`, `principal`, `env`) and
/// name: FNV-1a, so every worker computes the same key for the same scope.
fn scope_key(scope: &str, name: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in scope.bytes().chain([0]).chain(name.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    i64::from_ne_bytes(h.to_ne_bytes())
}

/// The keys to lock for `who`, sorted and without repeats, so workers
/// locking overlapping scopes take them in the same order (no deadlock).
fn scope_keys((agent, principal, env): Who<'_>) -> Vec<i64> {
    let mut keys = vec![
        scope_key("agent", agent),
        scope_key("principal", principal),
        scope_key("env", env),
    ];
    keys.sort_unstable();
    keys.dedup();
    keys
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

const COUNT: &str = "SELECT count(*) FILTER (WHERE agent = $1),
                            count(*) FILTER (WHERE principal = $2),
                            count(*) FILTER (WHERE env = $3)
                     FROM warden_mutations WHERE at > now() - interval '1 hour'";

impl Record {
    /// Decide a call of the task `fence` holds against the changes every
    /// worker made in the last hour by `who`'s agent, principal and
    /// environment: in one transaction, lock those three scopes, check the
    /// fence (else [`ClusterError::Fenced`], nothing written), count,
    /// call `decide`, and when it returns `true` (the decision is a
    /// change) record the change. Returns what `decide` returned.
    ///
    /// ```no_run
    /// # async fn demo(record: warden_cluster::Record, fence: warden_cluster::Fence) -> Result<(), warden_cluster::ClusterError> {
    /// let allowed = record
    ///     .decide(&fence, ("warden", "alice", "prod"), |recent| {
    ///         let allow = recent.by_agent < 10;
    ///         (allow, allow)
    ///     })
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn decide<T>(
        &self,
        fence: &Fence,
        who: Who<'_>,
        decide: impl FnOnce(RecentMutations) -> (T, bool),
    ) -> Result<T, ClusterError> {
        let mut client = self.client().await?;
        let tx = client
            .transaction()
            .await
            .map_err(ClusterError::pg("begin"))?;
        for key in scope_keys(who) {
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&key])
                .await
                .map_err(ClusterError::pg("lock history"))?;
        }
        let epoch = i64::try_from(fence.epoch).unwrap_or(i64::MAX);
        let live = tx
            .query_opt(
                "SELECT 1 FROM warden_tasks
                 WHERE id = $1 AND owner = $2 AND epoch = $3 AND state = 'running'
                   AND lease_until > now()",
                &[&fence.task, &fence.owner, &epoch],
            )
            .await
            .map_err(ClusterError::pg("fence"))?;
        if live.is_none() {
            return Err(ClusterError::Fenced {
                task: fence.task.clone(),
                epoch: fence.epoch,
            });
        }
        let (agent, principal, env) = who;
        let row = tx
            .query_one(COUNT, &[&agent, &principal, &env])
            .await
            .map_err(ClusterError::pg("count changes"))?;
        let recent = RecentMutations {
            by_agent: count(row.get(0)),
            by_principal: count(row.get(1)),
            in_env: count(row.get(2)),
        };
        let (out, change) = decide(recent);
        if change {
            tx.execute(
                "INSERT INTO warden_mutations (agent, principal, env, task_id) VALUES ($1, $2, $3, $4)",
                &[&agent, &principal, &env, &fence.task],
            )
            .await
            .map_err(ClusterError::pg("count a change"))?;
            // Older than any limit reads; the journal keeps the history.
            tx.execute(
                "DELETE FROM warden_mutations WHERE at < now() - interval '1 day'",
                &[],
            )
            .await
            .map_err(ClusterError::pg("forget old changes"))?;
        }
        tx.commit().await.map_err(ClusterError::pg("commit"))?;
        Ok(out)
    }

    /// The changes every worker made in the last hour by `agent`, by
    /// `principal` and in `env`.
    pub async fn recent_mutations(&self, who: Who<'_>) -> Result<RecentMutations, ClusterError> {
        let (agent, principal, env) = who;
        let row = self
            .client()
            .await?
            .query_one(COUNT, &[&agent, &principal, &env])
            .await
            .map_err(ClusterError::pg("count changes"))?;
        Ok(RecentMutations {
            by_agent: count(row.get(0)),
            by_principal: count(row.get(1)),
            in_env: count(row.get(2)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_keys_are_sorted_distinct_and_the_same_on_every_worker() {
        let a = scope_keys(("warden", "alice", "prod"));
        assert_eq!(a, scope_keys(("warden", "alice", "prod")));
        assert!(a.windows(2).all(|w| w[0] < w[1]));
        // The same name in two scopes is two locks.
        assert_eq!(scope_keys(("x", "x", "x")).len(), 3);
        assert_ne!(scope_key("agent", "a"), scope_key("agent", "b"));
    }
}
