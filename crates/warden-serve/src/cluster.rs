//! `warden serve --cluster`: the record in PostgreSQL, the inbox as a
//! durable forwarder into it, and the cluster's workers.
//!
//! An accepted alert is still committed to the local inbox before the
//! webhook is answered (so a PostgreSQL outage loses nothing); the
//! forwarder moves it into the record (`Record::enqueue`, stored once per
//! intake key across every worker) and closes the inbox item as
//! `forwarded`. The cluster's [`Worker`] then claims tasks from the record,
//! whichever worker received them, and runs them on the agent's one path
//! with the ledger.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use warden::journal::HostKey;
use warden_cluster::{
    Bus, BusError, ClusterError, ClusterLedger, Enqueued, IncidentFollower, Published, Record,
    Worker,
};

use crate::config::{ClusterSection, Config};
use crate::error::ServeError;
use crate::inbox::Item;
use crate::server::State;

/// The `[cluster]` settings as `--check-config` reports them.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ClusterSummary {
    /// PostgreSQL, without its password (`user@host:port/db`).
    pub postgres: String,
    /// This worker's id.
    pub worker: String,
    /// The lease, in seconds.
    pub lease_secs: f64,
    /// NATS, when configured.
    pub nats: Option<String>,
    /// Whether TLS to both servers is configured (`[cluster.tls]`).
    pub tls: bool,
    /// Edge boxes whose records this hub stores (`[cluster] edges`).
    pub edges: Vec<String>,
}

impl std::fmt::Display for ClusterSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "cluster: record {}, worker {}, lease {}s, nats {}, tls {}",
            self.postgres,
            self.worker,
            self.lease_secs,
            self.nats.as_deref().unwrap_or("none (polling)"),
            if self.tls {
                "on"
            } else {
                "off (loopback only)"
            }
        )?;
        if !self.edges.is_empty() {
            write!(f, ", edge sink for [{}]", self.edges.join(", "))?;
        }
        Ok(())
    }
}

fn bad(reason: String) -> ServeError {
    ServeError::Config { reason }
}

impl ClusterSection {
    /// The PostgreSQL connection string, a secret read from the
    /// environment or its file when configured so (`config` resolves a
    /// relative file). It may hold a password: show it with
    /// `warden_cluster::Record::describe`, never as it is.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("warden.toml");
    /// std::fs::write(&path, "[agent]\n[cluster]\npostgres = \"host=db user=warden dbname=w\"\n")?;
    /// let config = warden_serve::Config::load(&path)?;
    /// let url = config.cluster.as_ref().unwrap().postgres_url(&config)?;
    /// assert_eq!(url, "host=db user=warden dbname=w");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn postgres_url(&self, config: &Config) -> Result<String, ServeError> {
        self.postgres.read(&config.base)
    }
}

/// Read and describe the `[cluster]` settings (no connection).
pub(crate) fn check(
    config: &Config,
    section: &ClusterSection,
) -> Result<ClusterSummary, ServeError> {
    let url = section.postgres.read(&config.base)?;
    let postgres = Record::describe(&url).map_err(|e| bad(format!("[cluster] postgres: {e}")))?;
    let security = section.security(&config.base)?;
    security
        .check_postgres(&url)
        .map_err(|e| bad(format!("[cluster] postgres: {e}")))?;
    if let Some(nats) = &section.nats {
        security
            .check_nats(nats)
            .map_err(|e| bad(format!("[cluster] nats: {e}")))?;
    }
    Ok(ClusterSummary {
        postgres,
        worker: section.worker_id(),
        lease_secs: section.lease.as_secs_f64(),
        nats: section.nats.clone(),
        tls: security.has_tls(),
        edges: section.edges.clone(),
    })
}

/// Connect to the record, bring its schema up to date, and make this
/// worker's ledger. A PostgreSQL that cannot be reached is an error naming
/// `[cluster] postgres`.
pub(crate) async fn connect(
    config: &Config,
    section: &ClusterSection,
) -> Result<Arc<ClusterLedger>, ServeError> {
    let summary = check(config, section)?;
    let url = section.postgres_url(config)?;
    let unreachable = |e: ClusterError| {
        bad(format!(
            "[cluster] postgres: cannot use PostgreSQL at {}: {e}",
            summary.postgres
        ))
    };
    let security = section.security(&config.base)?;
    let record = Record::connect_with(&url, &security)
        .await
        .map_err(unreachable)?;
    record.migrate().await.map_err(unreachable)?;
    let a = &config.agent;
    // Every worker seals the shared journal with the same key: give each
    // the same `key_file`.
    let key = match &a.key_file {
        Some(path) => HostKey::at_for_journal(path, &a.journal)?,
        None => HostKey::for_journal(&a.journal)?,
    };
    tracing::info!(record = %summary.postgres, worker = %summary.worker, "clustered");
    Ok(Arc::new(ClusterLedger::new(
        Arc::new(record),
        summary.worker,
        key,
    )))
}

/// Keep the service's approvals in the record too, so any worker lists and
/// answers them while another runs the task.
pub(crate) fn share_approvals(approvals: &crate::approvals::Approvals, ledger: &ClusterLedger) {
    approvals.share(ledger.record().clone(), ledger.owner());
}

/// Forward the inbox into the record and run the cluster's worker until
/// the service stops; running tasks get the drain deadline, then are left
/// to their leases.
pub(crate) async fn run(state: Arc<State>, ledger: Arc<ClusterLedger>) {
    let wake = Arc::new(Notify::new());
    let bus = match state.config.cluster.as_ref() {
        Some(section) => match (&section.nats, section.security(&state.config.base)) {
            (Some(url), Ok(security)) => connect_bus(url, security).await,
            (Some(_), Err(e)) => {
                tracing::error!(error = %e, "[cluster] nats: not used");
                None
            }
            (None, _) => None,
        },
        None => None,
    };
    // With the bus: wake-ups from every worker, and this worker's intake
    // pump from the shared stream into the record.
    let _wakeups = match &bus {
        Some(bus) => match bus.wake_into(wake.clone()).await {
            Ok(guard) => Some(guard),
            Err(e) => {
                tracing::warn!(error = %e, "no wake-ups from NATS; polling the record");
                None
            }
        },
        None => None,
    };
    let pump = bus.clone().map(|bus| {
        let record = ledger.record().clone();
        let wake = wake.clone();
        let stop = state.stop_claiming.clone();
        tokio::spawn(async move { pump_intake(&bus, record, wake, stop).await })
    });
    // With incident memory: this worker's index follows every worker's
    // resolved incidents in the record (rebuilt from it at start).
    let follower = state.config.agent.memory.is_some().then(|| {
        let record = ledger.record().clone();
        let stop = state.stop_claiming.clone();
        let current = state.clone();
        tokio::spawn(async move {
            let remember = move |batch| {
                if let Err(e) = current.agent().remember(batch) {
                    tracing::warn!(error = %e, "could not remember incidents from the record");
                }
            };
            IncidentFollower::new(record).follow(remember, stop).await;
        })
    });
    // A hub: the edges' records into the record, on a connection of its own.
    let edge_sink = match state.config.cluster.as_ref() {
        Some(section) if !section.edges.is_empty() => {
            let setup = section
                .security(&state.config.base)
                .and_then(|s| Ok((s, section.postgres_url(&state.config)?)));
            match (setup, &section.nats) {
                (Ok((security, postgres)), Some(nats)) => Some(tokio::spawn(crate::edge_hub::hub(
                    nats.clone(),
                    postgres,
                    security,
                    section.edges.clone(),
                    state.stop_claiming.clone(),
                ))),
                (Err(e), _) => {
                    tracing::error!(error = %e, "[cluster] edges: no edge sink");
                    None
                }
                (_, None) => None,
            }
        }
        _ => None,
    };
    let lease = state
        .config
        .cluster
        .as_ref()
        .map_or(Duration::from_secs(15), |c| c.lease);
    let max_attempts = state
        .config
        .cluster
        .as_ref()
        .map_or(warden_cluster::DEFAULT_MAX_ATTEMPTS, |c| c.max_attempts);
    let worker = {
        let current = state.clone();
        Worker::with_agent(ledger.clone(), move || current.agent())
            .lease(lease)
            .max_attempts(max_attempts)
            .parallel(state.config.limits.workers)
            .wake(wake.clone())
    };
    let abort = CancellationToken::new();
    let deadline = {
        let stop = state.stop_claiming.clone();
        let abort = abort.clone();
        let drain = state.config.limits.drain_deadline;
        tokio::spawn(async move {
            stop.cancelled().await;
            tokio::time::sleep(drain).await;
            abort.cancel();
        })
    };
    let stop = state.stop_claiming.clone();
    let (_, result) = tokio::join!(
        forward(&state, ledger.record(), bus.as_deref(), &wake),
        worker.run_until(stop, abort)
    );
    deadline.abort();
    if let Some(pump) = pump {
        pump.abort();
    }
    if let Some(follower) = follower {
        follower.abort();
    }
    if let Some(sink) = edge_sink {
        // Stopped by `stop_claiming`; an unacked record is handed out again.
        let _ = tokio::time::timeout(Duration::from_secs(5), sink).await;
    }
    if let Err(e) = result {
        tracing::error!(error = %e, "the cluster worker stopped");
    }
}

/// NATS for intake and wake-ups; a bus that cannot be reached at start is
/// logged and the worker runs without it (webhooks go straight into the
/// record, workers poll), as it does whenever the bus is down.
async fn connect_bus(url: &str, security: warden_cluster::Security) -> Option<Arc<Bus>> {
    match Bus::connect_with(
        url,
        warden_cluster::BusConfig::default().with_security(security),
    )
    .await
    {
        Ok(bus) => {
            tracing::info!(nats = %url, "cluster intake and wake-ups on NATS JetStream");
            Some(Arc::new(bus))
        }
        Err(e) => {
            tracing::warn!(error = %e, "[cluster] nats: not reachable; alerts go straight into the record");
            None
        }
    }
}

/// Run the intake pump until the service stops, starting it again (after a
/// pause) when its record connection or the bus fails.
async fn pump_intake(bus: &Bus, record: Arc<Record>, wake: Arc<Notify>, stop: CancellationToken) {
    while !stop.is_cancelled() {
        match bus
            .run_intake(record.clone(), wake.clone(), stop.clone())
            .await
        {
            Ok(stats) => tracing::debug!(?stats, "intake pump stopped"),
            Err(e) => tracing::warn!(error = %e, "intake pump failed; starting it again"),
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

async fn forward(state: &Arc<State>, record: &Record, bus: Option<&Bus>, wake: &Notify) {
    while let Some(item) = crate::server::next_item(state).await {
        forward_item(state, record, bus, item).await;
        wake.notify_one();
    }
}

/// The record's intake key for an inbox item: its deduplication key and,
/// for an alert, when it started, so a retried webhook (on any worker) is
/// stored once and an alert that fires again later is a new task.
fn intake_key(item: &Item) -> String {
    if item.key.is_empty() {
        return format!("id:{}", item.id);
    }
    match item.body.get("startsAt").and_then(|s| s.as_str()) {
        Some(at) => format!("{}@{at}", item.key),
        None => item.key.clone(),
    }
}

async fn forward_item(state: &Arc<State>, record: &Record, bus: Option<&Bus>, item: Item) {
    let id = item.id.clone();
    let (status, reason) = match crate::server::task_of(&item) {
        Err(why) => ("refused".to_string(), why),
        Ok(task) => 'done: {
            let key = intake_key(&item);
            // Through the bus when there is one: JetStream drops a retried
            // webhook (same intake key) and any worker's pump stores it.
            // When the bus fails, straight into the record below: the
            // record stores a key once either way.
            if let Some(bus) = bus {
                match bus.publish_alert(&key, &task).await {
                    Ok(Published::Stored(_)) => {
                        break 'done (
                            "forwarded".to_string(),
                            "published to the cluster's intake; a worker stores and runs it"
                                .to_string(),
                        );
                    }
                    Ok(Published::Duplicate) => {
                        break 'done (
                            "duplicate".to_string(),
                            "the cluster's intake already holds it".to_string(),
                        );
                    }
                    Err(
                        e @ (BusError::TooBig { .. }
                        | BusError::Malformed { .. }
                        | BusError::IntakeKey { .. }),
                    ) => {
                        break 'done ("refused".to_string(), e.to_string());
                    }
                    Err(e) => {
                        tracing::warn!(task = %id, error = %e, "NATS intake failed; storing in the record directly");
                    }
                }
            }
            let mut pause = Duration::from_millis(100);
            loop {
                match record.enqueue(&key, &task).await {
                    Ok(Enqueued::New(_)) => {
                        break (
                            "forwarded".to_string(),
                            "stored in the cluster's record; a worker runs it".to_string(),
                        );
                    }
                    Ok(Enqueued::Duplicate(other)) => {
                        break (
                            "duplicate".to_string(),
                            format!("the cluster's record already holds it as task {other}"),
                        );
                    }
                    Err(e @ ClusterError::Task { .. }) => {
                        break ("refused".to_string(), e.to_string());
                    }
                    Err(e) => {
                        tracing::warn!(task = %id, error = %e, "cannot forward to the record yet; retrying");
                        tokio::select! {
                            // Left running in the inbox: the next start closes it as interrupted.
                            () = state.stop_claiming.cancelled() => return,
                            () = tokio::time::sleep(pause) => {}
                        }
                        pause = (pause * 2).min(Duration::from_secs(5));
                    }
                }
            }
        }
    };
    let done = {
        let id = id.clone();
        state
            .inbox(move |inbox| inbox.finish(&id, &status, &reason))
            .await
    };
    if let Err(e) = done {
        tracing::error!(task = %id, error = %e, "could not close the forwarded inbox item");
    }
}
