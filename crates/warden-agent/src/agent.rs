//! The agent and its builder.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use warden_memory::Memory;
use warden_policy::PolicyEngine;
use warden_sandbox::{Plugin, Sandbox, SandboxConfig};
use warden_types::ToolManifest;

use crate::approve::{Approver, RejectAll};
use crate::case::CasePlanner;
use crate::error::AgentError;
use crate::journal::{HostKey, Journal};
use crate::planner::{Fallback, Planner, PlannerChain};
use crate::runbook::{RunbookPlanner, Runbooks};

/// Limits that stop a task cleanly, with the reason journaled.
#[derive(Debug, Clone, PartialEq)]
pub struct Budget {
    /// Most steps one task may run (default 32).
    pub max_steps: usize,
    /// Wall time for one task (default 10 minutes).
    pub wall_time: Duration,
    /// LLM tokens for one task (default 200 000).
    pub max_tokens: u64,
    /// Read-only steps run at once (default 4).
    pub max_parallel: usize,
    /// Retries of a failed read-only call (default 2; mutating calls never retry).
    pub retries: u32,
    /// First retry delay; doubles each time, with ±50% jitter (default 200 ms).
    pub retry_base: Duration,
    /// Per-step timeout when the step sets none (default 60 s).
    pub step_timeout: Duration,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            max_steps: 32,
            wall_time: Duration::from_secs(600),
            max_tokens: 200_000,
            max_parallel: 4,
            retries: 2,
            retry_base: Duration::from_millis(200),
            step_timeout: Duration::from_secs(60),
        }
    }
}

/// An agent: plugins, a policy, a planner, an approver and a journal.
///
/// ```no_run
/// use warden_agent::{Agent, RejectAll, Task};
///
/// # async fn demo() -> Result<(), warden_agent::AgentError> {
/// let agent = Agent::builder()
///     .plugins(".warden/plugins")
///     .policy("policies")
///     .runbooks("examples/runbooks")
///     .approver(RejectAll)
///     .journal(".warden/journal.jsonl")
///     .build()?;
/// let outcome = agent.run(Task::goal("t-1", "checkout is down").in_env("staging")).await?;
/// println!("{}: {}", outcome.status.as_str(), outcome.summary);
/// # Ok(()) }
/// ```
pub struct Agent {
    pub(crate) name: String,
    pub(crate) tools: BTreeMap<String, Plugin>,
    pub(crate) manifests: Vec<ToolManifest>,
    pub(crate) policy: PolicyEngine,
    pub(crate) planner: Option<Box<dyn Planner>>,
    pub(crate) approver: Arc<dyn Approver>,
    pub(crate) journal: Arc<Journal>,
    pub(crate) memory: Option<Mutex<Memory>>,
    pub(crate) recall_k: usize,
    pub(crate) learn: bool,
    pub(crate) budget: Budget,
    pub(crate) dry_run: bool,
    pub(crate) ledger: Option<Arc<dyn crate::executor::Ledger>>,
    /// Renders step arguments and summaries; built once, shared by runs.
    pub(crate) renderer: crate::template::Renderer,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field("name", &self.name)
            .field("tools", &self.tools.keys().collect::<Vec<_>>())
            .field("planner", &self.planner_name())
            .field("journal", &self.journal.path())
            .finish_non_exhaustive()
    }
}

impl Agent {
    /// Start building an agent.
    pub fn builder() -> AgentBuilder {
        AgentBuilder::default()
    }

    /// The loaded tools' manifests.
    pub fn tools(&self) -> &[ToolManifest] {
        &self.manifests
    }

    /// Load the code of every plugin whose loading was deferred to its
    /// first call, so a broken one is reported now, by name (a
    /// configuration check wants this; a running agent does not).
    pub fn load_plugins(&self) -> Result<(), AgentError> {
        for plugin in self.tools.values() {
            plugin.load()?;
        }
        Ok(())
    }

    /// The planner's name (`none` for an agent built only for calls).
    pub fn planner_name(&self) -> String {
        self.planner
            .as_ref()
            .map_or_else(|| "none".into(), |p| p.name())
    }

    /// The journal.
    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    /// The past incidents most like `text`, best first, with their
    /// resolutions: what the planner is handed. Empty without incident memory.
    pub fn recall(
        &self,
        text: &str,
        k: usize,
    ) -> Result<Vec<warden_memory::RecallHit>, AgentError> {
        let Some(memory) = &self.memory else {
            return Ok(Vec::new());
        };
        let memory = memory.lock().map_err(|_| AgentError::Config {
            reason: "the incident memory lock is poisoned".into(),
        })?;
        memory.recall(text, k).map_err(|e| AgentError::Config {
            reason: format!("recalling incidents: {e}"),
        })
    }

    /// Add incidents resolved elsewhere (another worker of a cluster) to
    /// the incident memory; an incident it holds already is updated, or left
    /// as it is when unchanged. `None` without incident memory.
    pub fn remember(
        &self,
        incidents: Vec<warden_memory::Incident>,
    ) -> Result<Option<warden_memory::IngestReport>, AgentError> {
        let Some(memory) = &self.memory else {
            return Ok(None);
        };
        let mut memory = memory.lock().map_err(|_| AgentError::Config {
            reason: "the incident memory lock is poisoned".into(),
        })?;
        memory
            .ingest(incidents)
            .map(Some)
            .map_err(|e| AgentError::Config {
                reason: format!("remembering incidents: {e}"),
            })
    }

    /// The incident clusters in memory, largest first: `None` without
    /// incident memory.
    pub fn clusters(&self) -> Result<Option<Vec<warden_memory::Cluster>>, AgentError> {
        let Some(memory) = &self.memory else {
            return Ok(None);
        };
        let memory = memory.lock().map_err(|_| AgentError::Config {
            reason: "the incident memory lock is poisoned".into(),
        })?;
        memory.clusters().map(Some).map_err(|e| AgentError::Config {
            reason: format!("reading incident clusters: {e}"),
        })
    }

    /// The policy engine deciding this agent's plans, calls and capabilities.
    pub fn policy(&self) -> &PolicyEngine {
        &self.policy
    }
}

/// Builds an [`Agent`]; see [`Agent::builder`].
#[derive(Default)]
pub struct AgentBuilder {
    name: Option<String>,
    plugin_dirs: Vec<PathBuf>,
    plugins: Vec<Plugin>,
    sandbox: Option<SandboxConfig>,
    policy_dir: Option<PathBuf>,
    policy: Option<PolicyEngine>,
    runbooks: Option<PathBuf>,
    runbook: Option<String>,
    planner: Option<Box<dyn Planner>>,
    approver: Option<Arc<dyn Approver>>,
    journal: Option<PathBuf>,
    host_key: Option<HostKey>,
    memory: Option<Memory>,
    case_threshold: Option<f32>,
    budget: Budget,
    dry_run: bool,
    ledger: Option<Arc<dyn crate::executor::Ledger>>,
}

impl std::fmt::Debug for AgentBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentBuilder")
            .field("plugin_dirs", &self.plugin_dirs)
            .field("policy_dir", &self.policy_dir)
            .field("runbooks", &self.runbooks)
            .field("journal", &self.journal)
            .finish_non_exhaustive()
    }
}

impl AgentBuilder {
    /// The agent's name in policy input and the journal (default `warden`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Load every `*.wasm` plugin in `dir`. A plugin the cache already
    /// knows is only registered (its manifest); its code loads at its first
    /// call ([`Sandbox::open_file`]). [`Agent::load_plugins`] loads them all.
    pub fn plugins(mut self, dir: impl Into<PathBuf>) -> Self {
        self.plugin_dirs.push(dir.into());
        self
    }

    /// Add a plugin loaded by the embedder.
    pub fn plugin(mut self, plugin: Plugin) -> Self {
        self.plugins.push(plugin);
        self
    }

    /// Sandbox limits and host-side secrets for plugins loaded from
    /// directories (default: [`SandboxConfig::default`] with the compiled-code
    /// cache in `<first plugin dir>/.cache`).
    pub fn sandbox(mut self, config: SandboxConfig) -> Self {
        self.sandbox = Some(config);
        self
    }

    /// The Rego bundle directory.
    pub fn policy(mut self, dir: impl Into<PathBuf>) -> Self {
        self.policy_dir = Some(dir.into());
        self
    }

    /// An already loaded policy engine.
    pub fn policy_engine(mut self, engine: PolicyEngine) -> Self {
        self.policy = Some(engine);
        self
    }

    /// Runbook directory for the default offline planner (validated against
    /// the plugins at build time).
    pub fn runbooks(mut self, dir: impl Into<PathBuf>) -> Self {
        self.runbooks = Some(dir.into());
        self
    }

    /// Always use this runbook, whatever the task.
    pub fn runbook(mut self, name: impl Into<String>) -> Self {
        self.runbook = Some(name.into());
        self
    }

    /// Use this planner instead of runbooks and cases.
    pub fn planner(mut self, planner: impl Planner + 'static) -> Self {
        self.planner = Some(Box::new(planner));
        self
    }

    /// Who answers approval requests (default [`RejectAll`]).
    pub fn approver(mut self, approver: impl Approver + 'static) -> Self {
        self.approver = Some(Arc::new(approver));
        self
    }

    /// Append the journal to this file (required: every action is
    /// journaled).
    pub fn journal(mut self, path: impl Into<PathBuf>) -> Self {
        self.journal = Some(path.into());
        self
    }

    /// The key that makes the journal and the plugin cache tamper-evident
    /// (default: [`HostKey::load_or_create`] at [`HostKey::default_path`],
    /// which must be outside the journal's directory).
    pub fn host_key(mut self, key: HostKey) -> Self {
        self.host_key = Some(key);
        self
    }

    /// Recall similar incidents from this memory, plan from resolved cases
    /// when no runbook matches, and remember resolved tasks.
    pub fn memory(mut self, memory: Memory) -> Self {
        self.memory = Some(memory);
        self
    }

    /// Similarity a past case needs before its plan is reused (default 0.6).
    pub fn case_threshold(mut self, threshold: f32) -> Self {
        self.case_threshold = Some(threshold);
        self
    }

    /// Budgets and retry settings.
    pub fn budget(mut self, budget: Budget) -> Self {
        self.budget = budget;
        self
    }

    /// Dry run: mutating and destructive calls run with `dry_run` set, or are
    /// skipped with a note when the tool cannot dry-run.
    pub fn dry_run(mut self, on: bool) -> Self {
        self.dry_run = on;
        self
    }

    /// Keep the plan and step outcomes of the tasks `ledger` holds there, so
    /// another worker can resume them without repeating a step (default:
    /// none). The ledger also taps the journal. See [`Ledger`].
    ///
    /// [`Ledger`]: crate::Ledger
    pub fn ledger<L: crate::executor::Ledger + 'static>(mut self, ledger: Arc<L>) -> Self {
        self.ledger = Some(ledger as Arc<dyn crate::executor::Ledger>);
        self
    }

    /// Load plugins, policy and runbooks; any problem is an error naming it.
    pub fn build(self) -> Result<Agent, AgentError> {
        let Some(journal_path) = self.journal else {
            return Err(AgentError::Config {
                reason:
                    "no journal: every plan, decision and call is journaled; pass .journal(path)"
                        .into(),
            });
        };
        let key = match self.host_key {
            Some(k) => k,
            None => HostKey::for_journal(&journal_path)?,
        };
        let mut tools = BTreeMap::new();
        let mut plugins = self.plugins;
        if !self.plugin_dirs.is_empty() {
            // Compiled plugins are cached beside the first plugin directory,
            // as `warden plugin build` does, bound to the host key.
            let mut config = self.sandbox.unwrap_or_else(|| {
                let mut c = SandboxConfig::default();
                c.cache_dir(self.plugin_dirs[0].join(".cache"));
                c
            });
            config.cache_key(key.cache_key());
            let sandbox = Sandbox::new(&config)?;
            for dir in &self.plugin_dirs {
                plugins.extend(load_dir(&sandbox, dir)?);
            }
        }
        for plugin in plugins {
            let name = plugin.manifest().name.clone();
            let file = |p: &Plugin| {
                p.path()
                    .map_or_else(|| "(embedded)".to_string(), |p| p.display().to_string())
            };
            if let Some(first) = tools.get(&name) {
                return Err(AgentError::Config {
                    reason: format!(
                        "two plugins are named `{name}`: {} and {}",
                        file(first),
                        file(&plugin)
                    ),
                });
            }
            tools.insert(name, plugin);
        }
        let manifests: Vec<ToolManifest> = tools.values().map(|p| p.manifest().clone()).collect();
        let policy = match (self.policy, self.policy_dir) {
            (Some(engine), _) => engine,
            (None, Some(dir)) => PolicyEngine::load(&dir)?,
            (None, None) => {
                return Err(AgentError::Config {
                    reason: "no policy: every call is decided by a Rego bundle; pass .policy(dir)"
                        .into(),
                });
            }
        };
        let threshold = self.case_threshold.unwrap_or(0.6);
        let offline: Option<Box<dyn Planner>> = {
            let mut chain: Vec<Box<dyn Planner>> = Vec::new();
            if let Some(dir) = &self.runbooks {
                let books = Runbooks::load_dir(dir, &manifests)?;
                let planner = RunbookPlanner::new(books);
                chain.push(Box::new(match &self.runbook {
                    Some(name) => planner.only(name.clone()),
                    None => planner,
                }));
            }
            if self.memory.is_some() {
                chain.push(Box::new(CasePlanner::new(threshold)));
            }
            (!chain.is_empty()).then(|| Box::new(PlannerChain::new(chain)) as Box<dyn Planner>)
        };
        // A model plans when one is given; runbooks and past cases take
        // over when it cannot be reached (a flaky network, an edge box).
        // An agent without a planner still serves single calls.
        let planner: Option<Box<dyn Planner>> = match (self.planner, offline) {
            (Some(p), Some(offline)) => Some(Box::new(Fallback::new(p, offline))),
            (Some(p), None) => Some(p),
            (None, offline) => offline,
        };
        let journal = Arc::new(Journal::open(journal_path, key)?);
        if let Some(ledger) = &self.ledger {
            journal.tap(ledger.clone());
        }
        Ok(Agent {
            name: self.name.unwrap_or_else(|| "warden".into()),
            tools,
            manifests,
            policy,
            planner,
            approver: self.approver.unwrap_or_else(|| Arc::new(RejectAll)),
            journal,
            memory: self.memory.map(Mutex::new),
            recall_k: 3,
            learn: true,
            budget: self.budget,
            dry_run: self.dry_run,
            ledger: self.ledger,
            renderer: crate::template::Renderer::new(),
        })
    }
}

/// Every plugin in `dir`, in file-name order.
fn load_dir(sandbox: &Sandbox, dir: &Path) -> Result<Vec<Plugin>, AgentError> {
    let files = warden_sandbox::plugin_files(dir).map_err(|e| AgentError::Config {
        reason: format!("plugin directory: {e}\nhint: run `warden plugin build` first"),
    })?;
    let mut plugins = Vec::with_capacity(files.len());
    for file in files {
        plugins.push(sandbox.open_file(&file)?);
    }
    Ok(plugins)
}
