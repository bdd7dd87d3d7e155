//! The service: listener, shared state, workers, drain and reload.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use warden::journal::{HostKey, JournalEvent};
use warden::policy::{DecisionRecord, PolicyEngine};
use warden::{Agent, Budget, ChannelApprover, OutcomeStatus, Task};
use warden_mcp::{McpApprover, McpServer};

use crate::approvals::Approvals;
use crate::auth::Secrets;
use crate::config::Config;
use crate::error::ServeError;
use crate::inbox::{Inbox, Item};
use crate::metrics::Metrics;

/// Shared by every handler and worker.
pub(crate) struct State {
    pub config: Config,
    pub secrets: Secrets,
    pub inbox: Arc<Inbox>,
    agent: Arc<RwLock<Arc<Agent>>>,
    /// Answers MCP calls' approvals in their clients, everything else
    /// through the approval queue.
    approver: McpApprover,
    /// `/mcp`, when `[mcp]` is configured.
    pub mcp: Option<McpServer>,
    /// Ends every MCP session (the service is stopping).
    pub mcp_stop: CancellationToken,
    pub approvals: Approvals,
    /// Slack and Teams, when configured.
    pub chat: crate::chat::Chat,
    pub metrics: Arc<Metrics>,
    /// Running tasks: how to stop each, and why it was stopped.
    running: Mutex<HashMap<String, (CancellationToken, Option<String>)>>,
    /// Rings when an item is queued.
    pub wake: Notify,
    /// False once draining: receivers answer 503.
    pub accepting: AtomicBool,
    /// Per-source arrivals in the current minute, for the intake limits.
    rates: Mutex<HashMap<String, (Instant, u32)>>,
    /// Workers stop claiming.
    pub(crate) stop_claiming: CancellationToken,
    /// The cluster's ledger (and through it the record), with `--cluster`.
    pub cluster: Option<Arc<warden_cluster::ClusterLedger>>,
    /// With `[edge]`: the journal's tap, set again on every rebuilt agent.
    edge_tap: Option<Arc<dyn warden::journal::JournalTap>>,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("addr", &self.config.listen.addr)
            .finish_non_exhaustive()
    }
}

impl State {
    /// The agent tasks run on now (replaced whole on reload).
    pub fn agent(&self) -> Arc<Agent> {
        self.agent.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Run an inbox operation off the async threads (it fsyncs).
    pub async fn inbox<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Inbox) -> Result<T, ServeError> + Send + 'static,
    ) -> Result<T, ServeError> {
        let inbox = self.inbox.clone();
        tokio::task::spawn_blocking(move || f(&inbox))
            .await
            .map_err(|e| ServeError::Inbox {
                path: self.config.agent.data_dir.clone(),
                reason: format!("the inbox task failed: {e}"),
            })?
    }

    /// Journal an intake event for `task_id`. A journal that cannot be
    /// written stops the intake (the caller answers 500): nothing is
    /// accepted unrecorded.
    pub fn journal(&self, task_id: &str, event: &JournalEvent) -> Result<(), ServeError> {
        let agent = self.agent();
        agent.journal().append(task_id, event)?;
        agent.journal().checkpoint()?;
        Ok(())
    }

    /// Whether `source` may send one more alert this minute (the bundle's
    /// `data.warden.config.intake`).
    pub fn admit(&self, source: &str) -> bool {
        let Some(limit) = self.agent().policy().intake_limit(source) else {
            return true;
        };
        let mut rates = self.rates.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let entry = rates.entry(source.to_string()).or_insert((now, 0));
        if now.duration_since(entry.0) >= Duration::from_secs(60) {
            *entry = (now, 0);
        }
        if entry.1 >= limit {
            return false;
        }
        entry.1 += 1;
        true
    }

    /// Stop the running task `id` (its alert resolved): its pending steps
    /// do not run.
    pub fn stop_task(&self, id: &str, why: &str) -> bool {
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        match running.get_mut(id) {
            Some((token, reason)) => {
                *reason = Some(why.to_string());
                token.cancel();
                true
            }
            None => false,
        }
    }

    fn stop_all(&self, why: &str) {
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        for (token, reason) in running.values_mut() {
            reason.get_or_insert_with(|| why.to_string());
            token.cancel();
        }
    }

    fn running_count(&self) -> usize {
        self.running.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Rebuild the agent from the config (policy, runbooks, plugins): the
    /// new one takes the next tasks, running ones finish on the old one. A
    /// broken bundle or runbook keeps the old agent.
    pub fn reload(&self) -> Result<(), ServeError> {
        let fresh = build_agent(
            &self.config,
            self.approver.clone(),
            self.metrics.clone(),
            self.cluster.clone(),
            self.edge_tap.clone(),
        )?;
        *self.agent.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(fresh);
        tracing::info!("reloaded the policy, runbooks and plugins");
        if let Some(mcp) = self.mcp.clone() {
            tokio::spawn(async move {
                let told = mcp.tools_changed().await;
                tracing::info!(clients = told, "told MCP clients their tools changed");
            });
        }
        Ok(())
    }
}

/// Build the agent the config describes, with `approver` for approvals and
/// every policy decision counted in `metrics`; `tap` hears every journal
/// record (an edge's forwarder).
fn build_agent(
    config: &Config,
    approver: McpApprover,
    metrics: Arc<Metrics>,
    ledger: Option<Arc<warden_cluster::ClusterLedger>>,
    tap: Option<Arc<dyn warden::journal::JournalTap>>,
) -> Result<Agent, ServeError> {
    let a = &config.agent;
    let policy = PolicyEngine::builder(&a.policy)
        .with_sink(move |r: &DecisionRecord| metrics.decision(r))
        .load()
        .map_err(|e| ServeError::Config {
            reason: format!("loading the policy bundle {}: {e}", a.policy.display()),
        })?;
    let mut sandbox = warden::sandbox::SandboxConfig::default();
    sandbox.cache_dir(a.plugins.join(".cache"));
    sandbox.from_vars(std::env::vars());
    sandbox.outbox(crate::outbox::dir(&a.data_dir));
    #[cfg(feature = "azure")]
    if let Some(arm) = warden::azure::backend_from_env().map_err(|e| ServeError::Config {
        reason: format!("Azure: {e}"),
    })? {
        sandbox.arm(arm);
    }
    let key = match &a.key_file {
        Some(path) => HostKey::at_for_journal(path, &a.journal)?,
        None => HostKey::for_journal(&a.journal)?,
    };
    let budget = Budget {
        wall_time: config.limits.task_timeout,
        ..Budget::default()
    };
    let mut builder = Agent::builder()
        .name("warden-serve")
        .sandbox(sandbox)
        .plugins(&a.plugins)
        .policy_engine(policy)
        .runbooks(&a.runbooks)
        .journal(&a.journal)
        .host_key(key)
        .approver(approver)
        .budget(budget)
        .dry_run(a.dry_run);
    if let Some(dir) = &a.memory {
        let memory = warden::memory::Memory::open(dir).map_err(|e| ServeError::Config {
            reason: format!("incident memory {}: {e}", dir.display()),
        })?;
        builder = builder.memory(memory);
    }
    #[cfg(feature = "llm")]
    if let Some(planner) = warden::LlmPlanner::from_env()? {
        builder = builder.planner(planner);
    }
    if let Some(ledger) = ledger {
        builder = builder.ledger(ledger);
    }
    let agent = builder.build()?;
    if let Some(tap) = tap {
        agent.journal().tap(tap);
    }
    Ok(agent)
}

/// What [`check`] found in a config.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CheckSummary {
    /// Where it would listen.
    pub listen: String,
    /// Whether it would speak HTTPS.
    pub tls: bool,
    /// The tools the agent loaded.
    pub tools: Vec<String>,
    /// The planner.
    pub planner: String,
    /// The policy bundle's hash.
    pub policy: String,
    /// Receivers that are on.
    pub receivers: Vec<String>,
    /// API tokens configured.
    pub tokens: usize,
    /// The environment MCP calls act in, when `/mcp` is on.
    pub mcp: Option<String>,
    /// With `--cluster`: the record (no password), worker id, lease, NATS.
    pub cluster: Option<crate::cluster::ClusterSummary>,
    /// With `[edge]`: where the journal is forwarded.
    pub edge: Option<EdgeSummary>,
}

/// The `[edge]` settings as `--check-config` reports them.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EdgeSummary {
    /// This edge's JetStream domain.
    pub domain: String,
    /// The edge's own nats-server.
    pub nats: String,
    /// The hub's JetStream domain.
    pub hub_domain: String,
    /// The buffer's bound, in bytes.
    pub buffer_bytes: u64,
    /// How often the buffer is freed of what the hub holds, in seconds.
    pub trim_every_secs: f64,
    /// Whether TLS to the edge's nats-server is configured (`[edge.tls]`).
    pub tls: bool,
}

impl std::fmt::Display for EdgeSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "edge {} of hub {}: journal and incidents through {} (buffer {} MiB, trimmed every {}s, tls {})",
            self.domain,
            self.hub_domain,
            self.nats,
            self.buffer_bytes >> 20,
            self.trim_every_secs,
            if self.tls {
                "on"
            } else {
                "off (loopback only)"
            }
        )
    }
}

impl std::fmt::Display for CheckSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} on {}, {} tool(s) ({}), planner {}, policy {}, receivers [{}], {} token(s){}",
            if self.tls { "https" } else { "http" },
            self.listen,
            self.tools.len(),
            self.tools.join(", "),
            self.planner,
            self.policy.get(..12).unwrap_or(&self.policy),
            self.receivers.join(", "),
            self.tokens,
            self.mcp
                .as_ref()
                .map(|e| format!(", MCP at /mcp in `{e}`"))
                .unwrap_or_default()
        )?;
        if let Some(c) = &self.cluster {
            write!(f, "; {c}")?;
        }
        if let Some(e) = &self.edge {
            write!(f, "; {e}")?;
        }
        Ok(())
    }
}

/// Check everything a [`Server`] would load (secrets, TLS files, policy,
/// runbooks, plugins, the `[cluster]` settings) without listening or
/// touching the inbox.
pub fn check(config: &Config) -> Result<CheckSummary, ServeError> {
    let cluster = match &config.cluster {
        Some(section) => Some(crate::cluster::check(config, section)?),
        None => None,
    };
    let edge = match &config.edge {
        Some(section) => Some(check_edge(config, section)?),
        None => None,
    };
    Secrets::load(config)?;
    crate::chat::Chat::load(config)?;
    let tls = match (&config.listen.tls_cert, &config.listen.tls_key) {
        (Some(cert), Some(key)) => {
            warden_tls::server_config(cert, key).map_err(|e| ServeError::Config {
                reason: e.to_string(),
            })?;
            true
        }
        _ => false,
    };
    let (approver, _requests) = ChannelApprover::new(1);
    let agent = build_agent(
        config,
        McpApprover::with_fallback(approver),
        Arc::new(Metrics::new()),
        None,
        None,
    )?;
    // The service defers plugin code to the first call; a check loads it all.
    agent.load_plugins()?;
    let r = &config.receivers;
    let receivers = [
        ("alertmanager", r.alertmanager.is_some()),
        ("azure-monitor", r.azure_monitor.is_some()),
        ("generic", r.generic.is_some()),
        ("slack", config.chat.slack.is_some()),
        ("teams", config.chat.teams.is_some()),
    ]
    .into_iter()
    .filter(|&(_, on)| on)
    .map(|(name, _)| name.to_string())
    .collect();
    Ok(CheckSummary {
        listen: config.listen.addr.to_string(),
        tls,
        tools: agent.tools().iter().map(|m| m.name.clone()).collect(),
        planner: agent.planner_name(),
        policy: agent.policy().summary().hash,
        receivers,
        tokens: config.tokens.len(),
        mcp: config
            .mcp
            .as_ref()
            .map(|section| crate::mcp::env(&agent, section))
            .transpose()?,
        cluster,
        edge,
    })
}

/// Check `[edge]`: not with `--cluster`, its TLS, credentials and NATS URL.
fn check_edge(
    config: &Config,
    section: &crate::config::EdgeSection,
) -> Result<EdgeSummary, ServeError> {
    if config.cluster.is_some() {
        return Err(ServeError::Config {
            reason: "[edge] is for a service that runs alone (its alerts handled on the box, its journal forwarded to the hub): start it without --cluster".into(),
        });
    }
    let security = section.security(&config.base)?;
    security
        .check_nats(&section.nats)
        .map_err(|e| ServeError::Config {
            reason: format!("[edge] nats: {e}"),
        })?;
    Ok(EdgeSummary {
        domain: section.domain.clone(),
        nats: section.nats.clone(),
        hub_domain: section.hub_domain.clone(),
        buffer_bytes: section.buffer,
        trim_every_secs: section.trim_every.as_secs_f64(),
        tls: security.has_tls(),
    })
}

/// A bound service, not yet serving.
///
/// ```no_run
/// # async fn demo() -> Result<(), warden_serve::ServeError> {
/// let config = warden_serve::Config::load("warden.toml".as_ref())?;
/// let server = warden_serve::Server::bind(config).await?;
/// println!("listening on {}", server.addr());
/// let handle = server.handle();
/// tokio::spawn(async move {
///     let _ = tokio::signal::ctrl_c().await;
///     handle.shutdown();
/// });
/// server.run().await
/// # }
/// ```
#[derive(Debug)]
pub struct Server {
    state: Arc<State>,
    listener: TcpListener,
    addr: SocketAddr,
    shutdown: CancellationToken,
    tls: Option<Arc<rustls::ServerConfig>>,
    /// With `[edge]`: the journal's forwarder, started by `run`.
    edge: Option<crate::edge::Edge>,
}

/// Controls a running [`Server`] from elsewhere (signals, tests).
#[derive(Debug, Clone)]
pub struct Handle {
    state: Arc<State>,
    shutdown: CancellationToken,
}

impl Handle {
    /// Drain and stop: no new alerts (503), running tasks get the drain
    /// deadline, then are stopped and journaled as interrupted.
    pub fn shutdown(&self) {
        // At once, so no alert is accepted after this returns.
        self.state.accepting.store(false, Ordering::SeqCst);
        self.shutdown.cancel();
    }

    /// Reload policy, runbooks and plugins atomically; on error the old
    /// ones stay.
    pub fn reload(&self) -> Result<(), ServeError> {
        self.state.reload()
    }
}

impl Server {
    /// Open the inbox, close tasks a crash interrupted, build the agent and
    /// bind the listener.
    pub async fn bind(config: Config) -> Result<Server, ServeError> {
        let secrets = Secrets::load(&config)?;
        let tls = match (&config.listen.tls_cert, &config.listen.tls_key) {
            (Some(cert), Some(key)) => Some(Arc::new(
                warden_tls::server_config(cert, key).map_err(|e| ServeError::Config {
                    reason: e.to_string(),
                })?,
            )),
            _ => None,
        };
        let inbox = Arc::new(Inbox::open(&config.agent.data_dir, config.limits.queue)?);
        let metrics = Arc::new(Metrics::new());
        let (channel, requests) = ChannelApprover::new(config.limits.queue.max(16));
        let approver = McpApprover::with_fallback(channel);
        let edge = match &config.edge {
            Some(section) => {
                check_edge(&config, section)?;
                Some(crate::edge::Edge::open(
                    section,
                    &config.base,
                    &config.agent.data_dir,
                )?)
            }
            None => None,
        };
        let edge_tap = edge.as_ref().map(|e| crate::edge::tap(e.bell.clone()));
        let cluster = match &config.cluster {
            Some(section) => Some(crate::cluster::connect(&config, section).await?),
            None => None,
        };
        let agent = Arc::new(RwLock::new(Arc::new(build_agent(
            &config,
            approver.clone(),
            metrics.clone(),
            cluster.clone(),
            edge_tap.clone(),
        )?)));
        let approvals = Approvals::default();
        if let Some(ledger) = &cluster {
            crate::cluster::share_approvals(&approvals, ledger);
        }
        let mcp = match &config.mcp {
            Some(section) => {
                let current = agent.read().unwrap_or_else(|p| p.into_inner()).clone();
                let env = crate::mcp::env(&current, section)?;
                Some(crate::mcp::server(
                    &config,
                    section,
                    env,
                    agent.clone(),
                    approver.clone(),
                    &approvals,
                ))
            }
            None => None,
        };
        let gauge = metrics.clone();
        let chat = crate::chat::Chat::load(&config)?;
        chat.follow(&approvals);
        approvals.serve(requests, config.limits.approval_timeout, move |n| {
            gauge.approvals_pending(n);
        });
        let addr = config.listen.addr;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| ServeError::Listen {
                addr: addr.to_string(),
                reason: e.to_string(),
            })?;
        let addr = listener.local_addr().map_err(|e| ServeError::Listen {
            addr: addr.to_string(),
            reason: e.to_string(),
        })?;
        let state = Arc::new(State {
            config,
            secrets,
            inbox,
            agent,
            approver,
            mcp,
            mcp_stop: CancellationToken::new(),
            approvals,
            chat,
            metrics,
            running: Mutex::new(HashMap::new()),
            wake: Notify::new(),
            accepting: AtomicBool::new(true),
            rates: Mutex::new(HashMap::new()),
            stop_claiming: CancellationToken::new(),
            cluster,
            edge_tap,
        });
        recover(&state).await?;
        Ok(Server {
            state,
            listener,
            addr,
            shutdown: CancellationToken::new(),
            tls,
            edge,
        })
    }

    /// Where it listens (the real port when the config said 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Whether it speaks HTTPS.
    pub fn tls(&self) -> bool {
        self.tls.is_some()
    }

    /// A handle to stop or reload it.
    pub fn handle(&self) -> Handle {
        Handle {
            state: self.state.clone(),
            shutdown: self.shutdown.clone(),
        }
    }

    /// Serve until [`Handle::shutdown`], then drain.
    pub async fn run(self) -> Result<(), ServeError> {
        let Server {
            state,
            listener,
            addr,
            shutdown,
            tls,
            edge,
        } = self;
        // The forwarder stops after the workers, to forward their last records.
        let stop_edge = CancellationToken::new();
        let forwarder = edge.map(|edge| {
            let journal = state.config.agent.journal.clone();
            let key = state.agent().journal().key().clone();
            tokio::spawn(crate::edge::forward(edge, journal, key, stop_edge.clone()))
        });
        let mut workers = tokio::task::JoinSet::new();
        if let Some(ledger) = state.cluster.clone() {
            // Clustered: the inbox only forwards accepted alerts to the
            // record, and the cluster's workers run what they claim there.
            workers.spawn(crate::cluster::run(state.clone(), ledger));
        } else {
            for _ in 0..state.config.limits.workers {
                workers.spawn(worker(state.clone()));
            }
        }
        workers.spawn({
            let state = state.clone();
            async move {
                loop {
                    tokio::select! {
                        () = state.stop_claiming.cancelled() => return,
                        () = tokio::time::sleep(Duration::from_secs(3600)) => prune(&state).await,
                    }
                }
            }
        });
        let app = crate::routes::router(state.clone());
        let stop_http = CancellationToken::new();
        let http = {
            let stop = stop_http.clone();
            tokio::spawn(crate::listen::serve(listener, app, tls, stop))
        };
        let _outbox = crate::outbox::spawn(state.clone(), shutdown.clone());
        tracing::info!(%addr, "warden serve is listening");
        shutdown.cancelled().await;

        // Drain: refuse new work, let running tasks finish up to the deadline.
        tracing::info!("draining");
        state.accepting.store(false, Ordering::SeqCst);
        state.stop_claiming.cancel();
        let deadline = Instant::now() + state.config.limits.drain_deadline;
        while state.running_count() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        state.stop_all("interrupted: the service stopped before the task ended");
        state
            .approvals
            .reject_all("the service is stopping; nobody can answer");
        while workers.join_next().await.is_some() {}
        if let Some(mut forwarder) = forwarder {
            stop_edge.cancel();
            if tokio::time::timeout(Duration::from_secs(10), &mut forwarder)
                .await
                .is_err()
            {
                forwarder.abort();
                tracing::warn!(
                    "the edge forwarder did not finish within 10s; the journal keeps what it did not forward"
                );
            }
        }
        state.mcp_stop.cancel();
        stop_http.cancel();
        let _ = http.await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// After a crash: tasks that were running are closed as interrupted (a
/// step that had changed something must not change it twice) and the
/// journal says so; pending items simply run.
async fn recover(state: &Arc<State>) -> Result<(), ServeError> {
    crate::recovery::journal_missing_intake(state).await?;
    let reason = "interrupted: the service stopped while the task ran; not run again, so no step runs twice (start a new task after checking the timeline)";
    let items = state
        .inbox(move |inbox| inbox.interrupt_running(reason))
        .await?;
    for item in items {
        tracing::warn!(task = %item.id, "closing a task the last run left unfinished");
        state.journal(
            &item.id,
            &JournalEvent::Stop {
                status: OutcomeStatus::Cancelled,
                reason: reason.into(),
            },
        )?;
        state.metrics.task("interrupted");
    }
    let pending = state.inbox(|inbox| inbox.pending()).await?;
    state.metrics.queue_depth(pending);
    prune(state).await;
    Ok(())
}

/// Forget ended tasks past the retention (at start and then hourly).
async fn prune(state: &Arc<State>) {
    let keep = state.config.limits.retention;
    match state.inbox(move |inbox| inbox.prune(keep)).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(removed = n, "pruned ended tasks past the retention"),
        Err(e) => tracing::warn!(error = %e, "pruning the inbox failed"),
    }
}

async fn worker(state: Arc<State>) {
    while let Some(item) = next_item(&state).await {
        if let Ok(n) = state.inbox(|inbox| inbox.pending()).await {
            state.metrics.queue_depth(n);
        }
        run_item(&state, item).await;
    }
}

/// The next inbox item to handle, waiting for one (a wake-up, or a poll
/// each second); `None` once the service stops claiming. Shared by the
/// local workers and the cluster's forwarder.
pub(crate) async fn next_item(state: &State) -> Option<Item> {
    loop {
        if state.stop_claiming.is_cancelled() {
            return None;
        }
        match state.inbox(|inbox| inbox.claim()).await {
            Ok(Some(item)) => return Some(item),
            Ok(None) => {
                tokio::select! {
                    () = state.wake.notified() => {}
                    () = state.stop_claiming.cancelled() => return None,
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "claiming from the inbox failed");
                tokio::select! {
                    () = state.stop_claiming.cancelled() => return None,
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    }
}

async fn run_item(state: &Arc<State>, item: Item) {
    let id = item.id.clone();
    let (status, reason) = match task_of(&item) {
        Err(why) => ("refused".to_string(), why),
        Ok(task) => {
            let cancel = CancellationToken::new();
            state
                .running
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(id.clone(), (cancel.clone(), None));
            state.metrics.running(1);
            let agent = state.agent();
            let result = agent.run_until(task, cancel).await;
            state.metrics.running(-1);
            let stopped_because = state
                .running
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&id)
                .and_then(|(_, why)| why);
            match result {
                Ok(outcome) => {
                    state.metrics.outcome(&outcome);
                    match (outcome.status, stopped_because) {
                        (OutcomeStatus::Cancelled, Some(why)) => {
                            let status = if why.starts_with("interrupted") {
                                "interrupted"
                            } else {
                                "cancelled"
                            };
                            (status.to_string(), why)
                        }
                        (s, _) => (s.as_str().to_string(), outcome.reason.clone()),
                    }
                }
                Err(e) => {
                    state.metrics.task("error");
                    ("error".to_string(), e.to_string())
                }
            }
        }
    };
    tracing::info!(task = %id, %status, "task ended");
    let done = {
        let id = id.clone();
        state
            .inbox(move |inbox| inbox.finish(&id, &status, &reason))
            .await
    };
    if let Err(e) = done {
        tracing::error!(task = %id, error = %e, "could not mark the task done");
    }
}

/// The agent's task for an inbox item.
pub(crate) fn task_of(item: &Item) -> Result<Task, String> {
    let mut task = if item.source == "api" || item.source == "chat" {
        match item.body.get("goal").and_then(|g| g.as_str()) {
            Some(goal) => Task::goal(&item.id, goal).by(&item.principal),
            None => Task::from_webhook(&item.id, &item.body["alert"]).map_err(|e| e.to_string())?,
        }
    } else {
        Task::from_webhook(&item.id, &item.body).map_err(|e| e.to_string())?
    };
    task.source = item.source.clone();
    if item.source == "api" || item.source == "chat" {
        // Whoever holds the token (or was mapped in chat) asked for it,
        // whatever the alert says.
        task.principal = item.principal.clone();
    } else if item.source == "generic" {
        let name = task
            .alert
            .as_ref()
            .map(|a| a.name.clone())
            .unwrap_or_default();
        task.principal = format!("generic:{name}");
    }
    task.env = item.env.clone();
    Ok(task)
}
