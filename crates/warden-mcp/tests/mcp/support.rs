//! A server under test: an agent on the shipped plugins and policy, a
//! journal in a temp folder, and rmcp's client connected over a duplex
//! stream. The client can answer elicitation and records progress.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientCapabilities, ClientConfig, ElicitRequestParams,
    ElicitResult, ElicitationAction, Implementation, JsonObject, ProgressNotificationParam,
};
use rmcp::service::{NotificationContext, RequestContext, RunningService};
use rmcp::{ClientHandler, ErrorData, RoleClient, ServiceExt as _};
use serde_json::{Value, json};
use test_plugins_artifacts as artifacts;
use warden::journal::{HostKey, JournalEvent, JournalRecord, read_journal};
use warden::sandbox::{Plugin, Sandbox, SandboxConfig};
use warden::{Agent, Approver};
use warden_mcp::{McpApprover, McpOptions, McpServer};

const PROBE_RUNBOOK: &str = "name: probe\ndescription: probe a URL and change it\nmatch: {keywords: [probe]}\nsteps:\n  - id: look\n    tool: http-probe\n    why: see how it is\n    args: {url: \"{{ attachments.url }}\"}\n  - id: poke\n    tool: http-action\n    why: change it\n    args: {url: \"{{ attachments.url }}\"}\n";
const RUNBOOK: &str = "name: health\ndescription: probe, then restart\nmatch: {keywords: [down]}\nsteps:\n  - id: probe\n    tool: http-probe\n    why: confirm\n    args: {url: \"{{ alert.annotations.health_url }}\"}\n";

/// The test key: every journal and the compiled-plugin cache use it.
pub fn key() -> HostKey {
    HostKey::from_bytes([7; 32])
}

/// The plugins, compiled once for the whole test binary.
pub fn plugins() -> &'static [Plugin] {
    static PLUGINS: OnceLock<(tempfile::TempDir, Vec<Plugin>)> = OnceLock::new();
    &PLUGINS
        .get_or_init(|| {
            let cache = tempfile::tempdir().unwrap();
            let mut config = SandboxConfig::default();
            config
                .cache_dir(cache.path())
                .cache_key(key().cache_key())
                .timeout(Duration::from_secs(3));
            let sandbox = Sandbox::new(&config).unwrap();
            let plugins = [
                artifacts::PLUGIN_HTTP_PROBE,
                artifacts::PLUGIN_HTTP_ACTION,
                artifacts::LOOP_FOREVER,
                artifacts::LEAK_TEXT,
            ]
            .iter()
            .map(|p| sandbox.load_file(p).unwrap())
            .collect();
            (cache, plugins)
        })
        .1
}

/// A copy of the shipped policy bundle in `dir/policies`, its
/// `warden.config` data merged with `config`.
pub fn bundle(dir: &Path, config: Value) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies");
    let dst = dir.join("policies");
    fs_err::create_dir_all(&dst).unwrap();
    for entry in fs_err::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "rego") {
            fs_err::copy(&path, dst.join(path.file_name().unwrap())).unwrap();
        }
    }
    let mut data: Value =
        serde_json::from_str(&fs_err::read_to_string(src.join("data.json")).unwrap()).unwrap();
    merge(&mut data["warden"]["config"], config);
    fs_err::write(dst.join("data.json"), data.to_string()).unwrap();
    dst
}

fn merge(into: &mut Value, from: Value) {
    match (into, from) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k).or_insert(Value::Null), v);
            }
        }
        (slot, v) => *slot = v,
    }
}

/// What a test changes from the defaults.
pub struct Setup {
    pub env: &'static str,
    pub principal: &'static str,
    pub approver_id: &'static str,
    /// Extra `data.warden.config` settings.
    pub policy: Value,
    /// How the client answers an approval question; `None`: the client
    /// does not declare elicitation.
    pub answer: Option<Answer>,
    pub progress_every: Duration,
    /// Use this approver instead of the MCP one.
    pub agent_approver: Option<Arc<dyn Approver>>,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            env: "dev",
            principal: "assistant",
            approver_id: "alice",
            policy: json!({}),
            answer: None,
            progress_every: Duration::from_secs(1),
            agent_approver: None,
        }
    }
}

/// How the test client answers an elicitation.
#[derive(Debug, Clone, Copy)]
pub enum Answer {
    Approve,
    Decline,
}

/// What the test client saw.
#[derive(Debug, Default)]
pub struct Seen {
    pub questions: Vec<String>,
    pub progress: Vec<ProgressNotificationParam>,
}

#[derive(Clone)]
pub struct TestClient {
    answer: Option<Answer>,
    pub seen: Arc<Mutex<Seen>>,
}

impl ClientHandler for TestClient {
    fn get_info(&self) -> ClientConfig {
        let caps = if self.answer.is_some() {
            ClientCapabilities::builder().enable_elicitation().build()
        } else {
            ClientCapabilities::default()
        };
        ClientConfig::new(caps, Implementation::new("mcp-test-client", "0.0.0"))
    }

    async fn create_elicitation(
        &self,
        request: ElicitRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, ErrorData> {
        if let ElicitRequestParams::FormElicitationParams { message, .. } = &request {
            self.seen.lock().unwrap().questions.push(message.clone());
        }
        Ok(match self.answer {
            Some(Answer::Approve) => ElicitResult::new(ElicitationAction::Accept)
                .with_content(json!({"approve": true, "note": "looks fine"})),
            _ => ElicitResult::new(ElicitationAction::Decline),
        })
    }

    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        self.seen.lock().unwrap().progress.push(params);
    }
}

pub struct Harness {
    _dir: tempfile::TempDir,
    pub journal: PathBuf,
    pub client: RunningService<RoleClient, TestClient>,
    pub seen: Arc<Mutex<Seen>>,
    server: tokio::task::JoinHandle<()>,
}

impl Harness {
    pub async fn start(setup: Setup) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let journal = dir.path().join("journal/journal.jsonl");
        let approver = McpApprover::new();
        let mut builder = Agent::builder()
            .name("warden-mcp-test")
            // One attempt per call, so a timed-out guest ends the call.
            .budget(warden::Budget {
                retries: 0,
                ..warden::Budget::default()
            })
            .policy(bundle(dir.path(), setup.policy))
            .journal(&journal)
            .host_key(key());
        for p in plugins() {
            builder = builder.plugin(p.clone());
        }
        builder = match setup.agent_approver {
            Some(a) => builder.approver(ArcApprover(a)),
            None => builder.approver(approver.clone()),
        };
        let agent = builder.build().unwrap();
        let mut options = McpOptions::default();
        options
            .env(setup.env)
            .principal(setup.principal)
            .approver(approver)
            .approver_id(setup.approver_id, vec![])
            .progress_every(setup.progress_every)
            .ask_timeout(Duration::from_secs(10));
        let books = dir.path().join("runbooks");
        fs_err::create_dir_all(&books).unwrap();
        fs_err::write(books.join("health.yaml"), RUNBOOK).unwrap();
        fs_err::write(books.join("probe.yaml"), PROBE_RUNBOOK).unwrap();
        options.runbooks(&books);
        let server = McpServer::new(Arc::new(agent), options);
        let (client_io, server_io) = tokio::io::duplex(64 * 1024);
        let server = tokio::spawn(async move {
            let (r, w) = tokio::io::split(server_io);
            let _ = server.serve(r, w).await;
        });
        let seen = Arc::new(Mutex::new(Seen::default()));
        let handler = TestClient {
            answer: setup.answer,
            seen: seen.clone(),
        };
        let client = handler.serve(client_io).await.unwrap();
        Harness {
            _dir: dir,
            journal,
            client,
            seen,
            server,
        }
    }

    pub async fn call(&self, tool: &str, args: Value) -> CallToolResult {
        let args: JsonObject = match args {
            Value::Object(o) => o,
            _ => panic!("arguments must be an object"),
        };
        tokio::time::timeout(
            Duration::from_secs(60),
            self.client
                .call_tool(CallToolRequestParams::new(tool.to_string()).with_arguments(args)),
        )
        .await
        .expect("the call answered within a minute")
        .unwrap()
    }

    pub fn records(&self) -> Vec<JournalRecord> {
        read_journal(&self.journal, &key()).unwrap()
    }

    /// The events of the task a tool result names.
    pub fn task_events(&self, result: &CallToolResult) -> Vec<JournalEvent> {
        let id = task_id(result);
        self.records()
            .into_iter()
            .filter(|r| r.task_id == id)
            .map(|r| r.event)
            .collect()
    }

    pub async fn stop(self) {
        let _ = self.client.cancel().await;
        let _ = tokio::time::timeout(Duration::from_secs(5), self.server).await;
    }
}

/// An approver given as an `Arc`, for the builder.
struct ArcApprover(Arc<dyn Approver>);

#[async_trait::async_trait]
impl Approver for ArcApprover {
    async fn approve(&self, request: &warden::ApprovalRequest) -> warden::Approval {
        self.0.approve(request).await
    }
}

/// All the result's text content, joined.
pub fn text(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The task id a result names in `_meta`.
pub fn task_id(result: &CallToolResult) -> String {
    let meta = result.meta.as_ref().expect("the result has _meta");
    meta.0["warden/task"]
        .as_str()
        .expect("_meta names the task")
        .to_string()
}
