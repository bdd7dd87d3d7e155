//! Incident memory shared by workers: each resolved incident is stored in
//! `warden_incidents` and announced on [`INCIDENTS_CHANNEL`]; each worker's
//! HNSW index is a cache that an [`IncidentFollower`] fills from the record
//! at start and keeps current from the feed.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio_util::sync::CancellationToken;
use warden::memory::Incident;

use crate::error::ClusterError;
use crate::feed::FeedEvent;
use crate::record::Record;

/// The channel new incidents are announced on (payload: the incident id).
pub const INCIDENTS_CHANNEL: &str = "warden_incidents";

/// Key of the advisory lock that serialises incident writes, so their
/// sequence numbers commit in order and a follower reading "after n"
/// misses none.
const INCIDENTS_LOCK: i64 = 0x0077_6172_6465_6e69; // "wardeni"

/// Incidents read per query while catching up.
const PAGE: i64 = 500;

/// How often a follower reads the record again without a notification.
const RESYNC: Duration = Duration::from_secs(30);

impl Record {
    /// Store an incident resolved by task `task_id` (again: an incident
    /// with the same id is replaced and announced anew).
    pub async fn put_incident(
        &self,
        task_id: &str,
        incident: &Incident,
    ) -> Result<(), ClusterError> {
        let value = serde_json::to_value(incident).map_err(|e| ClusterError::Task {
            task: task_id.to_string(),
            why: format!("the incident does not serialize: {e}"),
        })?;
        let mut client = self.client().await?;
        let tx = client
            .transaction()
            .await
            .map_err(ClusterError::pg("begin"))?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&INCIDENTS_LOCK])
            .await
            .map_err(ClusterError::pg("lock incidents"))?;
        tx.execute(
            "INSERT INTO warden_incidents (id, task_id, incident) VALUES ($1, $2, $3)
             ON CONFLICT (id) DO UPDATE
             SET task_id = $2, incident = $3, seq = nextval('warden_incidents_seq'), stored_at = now()",
            &[&incident.id, &task_id, &value],
        )
        .await
        .map_err(ClusterError::pg("store incident"))?;
        tx.execute(
            "SELECT pg_notify($1, $2)",
            &[&INCIDENTS_CHANNEL, &incident.id],
        )
        .await
        .map_err(ClusterError::pg("announce incident"))?;
        tx.commit().await.map_err(ClusterError::pg("commit"))
    }

    /// Up to `max` incidents stored after sequence number `after`, in order,
    /// with their sequence numbers.
    pub async fn incidents_after(
        &self,
        after: i64,
        max: i64,
    ) -> Result<Vec<(i64, Incident)>, ClusterError> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT seq, incident FROM warden_incidents WHERE seq > $1 ORDER BY seq LIMIT $2",
                &[&after, &max],
            )
            .await
            .map_err(ClusterError::pg("read incidents"))?;
        rows.into_iter()
            .map(|r| {
                let seq: i64 = r.get(0);
                serde_json::from_value(r.get::<_, Value>(1))
                    .map(|i| (seq, i))
                    .map_err(|e| ClusterError::Task {
                        task: String::new(),
                        why: format!("stored incident {seq} does not read back: {e}"),
                    })
            })
            .collect()
    }
}

/// Keeps a worker's incident memory current from the record.
///
/// ```no_run
/// # async fn demo(record: std::sync::Arc<warden_cluster::Record>, agent: std::sync::Arc<warden::Agent>) {
/// use warden_cluster::IncidentFollower;
/// let stop = warden::CancellationToken::new();
/// IncidentFollower::new(record)
///     .follow(move |batch| { let _ = agent.remember(batch); }, stop)
///     .await;
/// # }
/// ```
#[derive(Debug)]
pub struct IncidentFollower {
    record: Arc<Record>,
    seen: i64,
}

impl IncidentFollower {
    /// A follower that has seen nothing yet: its first catch-up reads every
    /// stored incident (the cache is rebuilt; unchanged ones stay as they are).
    pub fn new(record: Arc<Record>) -> IncidentFollower {
        IncidentFollower { record, seen: 0 }
    }

    /// Hand every incident stored since the last call to `remember`, in
    /// batches; returns how many.
    pub async fn catch_up(
        &mut self,
        remember: &mut (dyn FnMut(Vec<Incident>) + Send),
    ) -> Result<usize, ClusterError> {
        let mut total = 0;
        loop {
            let page = self.record.incidents_after(self.seen, PAGE).await?;
            let Some((last, _)) = page.last() else {
                return Ok(total);
            };
            self.seen = *last;
            total += page.len();
            let full = page.len() as i64 == PAGE;
            remember(page.into_iter().map(|(_, i)| i).collect());
            if !full {
                return Ok(total);
            }
        }
    }

    /// Catch up now, then on every announcement (and every 30 s, and after
    /// the feed reconnects) until `stop` fires.
    pub async fn follow(
        mut self,
        mut remember: impl FnMut(Vec<Incident>) + Send,
        stop: CancellationToken,
    ) {
        let mut feed = self.record.feed(INCIDENTS_CHANNEL);
        loop {
            if let Err(e) = self.catch_up(&mut remember).await {
                tracing::warn!(error = %e, "cannot read incidents from the record; trying again");
            }
            let event = tokio::select! {
                () = stop.cancelled() => return,
                e = feed.next() => e,
                () = tokio::time::sleep(RESYNC) => Some(FeedEvent::Resync),
            };
            if event.is_none() {
                return;
            }
        }
    }
}
