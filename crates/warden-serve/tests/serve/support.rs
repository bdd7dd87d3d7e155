//! A service under test: a temp folder with plugins, a policy bundle, a
//! runbook, secrets and a `warden.toml`; the server on 127.0.0.1:0; a
//! loopback "checkout" service whose health check fails until its admin
//! endpoint is called.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use test_plugins_artifacts as artifacts;
use warden::journal::{HostKey, JournalRecord, read_journal};
use warden_fakes::http::{Responder, Response};
use warden_serve::{Config, Handle, Server};

pub const ADMIN: &str = "admin-token-0123456789abcdef";
pub const ALICE: &str = "alice-token-0123456789abcdef";
pub const VIEWER: &str = "viewer-token-0123456789abcdef";
pub const AM_TOKEN: &str = "alertmanager-token-0123456789";
pub const AZ_TOKEN: &str = "azure-token-0123456789abcdef";
pub const HOOK_SECRET: &str = "hook-secret-0123456789abcdef";

const RUNBOOK: &str = warden_fakes::webhook::HEALTH_RUNBOOK;

/// One plugin folder for the whole test binary, so each plugin is compiled
/// once (the cache is keyed with the tests' host key).
fn plugins() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        for (src, name) in [
            (artifacts::PLUGIN_HTTP_PROBE, "http_probe.wasm"),
            (artifacts::PLUGIN_HTTP_ACTION, "http_action.wasm"),
        ] {
            fs_err::copy(src, dir.path().join(name)).unwrap();
        }
        dir
    })
    .path()
}

/// The shared host key file (outside every journal's folder), created
/// once before any test reads it.
fn key_file() -> &'static Path {
    static KEY: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &KEY.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("host.key");
        HostKey::load_or_create(&path).unwrap();
        (dir, path)
    })
    .1
}

/// The tests' host key (the one in the shared key file).
pub fn host_key() -> HostKey {
    HostKey::load_or_create(key_file()).unwrap()
}

/// What a test changes from the defaults.
pub struct Options {
    pub env: &'static str,
    pub workers: usize,
    pub queue: usize,
    pub approval_timeout: &'static str,
    pub drain_deadline: &'static str,
    pub retention: &'static str,
    pub body_bytes: usize,
    /// Extra `data.warden.config` settings merged into the bundle.
    pub policy_config: Value,
    pub tls: bool,
    /// `[agent] memory`: an incident store the test filled.
    pub memory: Option<PathBuf>,
    /// Appended to `warden.toml` (new tables, such as `[chat]`).
    pub extra_toml: String,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            env: "dev",
            workers: 2,
            queue: 64,
            approval_timeout: "5m",
            drain_deadline: "5s",
            retention: "7d",
            body_bytes: 64 * 1024,
            policy_config: json!({}),
            tls: false,
            memory: None,
            extra_toml: String::new(),
        }
    }
}

pub struct Harness {
    pub dir: tempfile::TempDir,
    pub base: String,
    pub handle: Handle,
    pub client: reqwest::Client,
    pub checkout: Checkout,
    pub config: PathBuf,
    server: Option<tokio::task::JoinHandle<()>>,
}

/// The loopback service the runbook heals.
pub struct Checkout {
    pub admin_calls: Arc<AtomicU32>,
    server: Responder,
}

impl Checkout {
    fn start() -> Checkout {
        let healthy = Arc::new(AtomicBool::new(false));
        let admin_calls = Arc::new(AtomicU32::new(0));
        let (h, a) = (healthy.clone(), admin_calls.clone());
        let server = Responder::start(move |seen| match seen.path.as_str() {
            "/health" if h.load(Ordering::SeqCst) => Response::text(200, "ok"),
            "/health" => Response::text(503, "pool exhausted"),
            "/admin/restart" => {
                a.fetch_add(1, Ordering::SeqCst);
                h.store(true, Ordering::SeqCst);
                Response::json(200, &json!({"restarted": true}))
            }
            _ => Response::text(404, "no"),
        });
        Checkout {
            admin_calls,
            server,
        }
    }

    pub fn admin_calls(&self) -> u32 {
        self.admin_calls.load(Ordering::SeqCst)
    }

    /// An Alertmanager webhook (one alert) about this service.
    pub fn alert(&self, fingerprint: &str, status: &str) -> Value {
        json!({
            "version": "4", "status": status, "receiver": "warden", "groupKey": "{}:{}",
            "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {}, "externalURL": "",
            "alerts": [{
                "status": status,
                "labels": {"alertname": "ServiceHealthCheckFailing", "service": "checkout", "severity": "critical"},
                "annotations": {
                    "summary": "checkout health check failing",
                    "health_url": self.server.url("/health"),
                    "remediation_url": self.server.url("/admin/restart"),
                },
                "startsAt": "2026-12-05T10:00:00Z",
                "fingerprint": fingerprint,
            }],
        })
    }
}

impl Harness {
    pub async fn start(opts: Options) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let config = write_config(dir.path(), &opts);
        let config_path = config.clone();
        let mut harness = Harness::bind(dir, config_path, &opts).await;
        harness.config = config;
        harness
    }

    async fn bind(dir: tempfile::TempDir, config: PathBuf, opts: &Options) -> Harness {
        // After a restart the old server's last tasks may still be letting
        // go of the inbox (its lock is released when the file closes).
        let mut tries = 0;
        let server = loop {
            match Server::bind(Config::load(&config).unwrap()).await {
                Ok(s) => break s,
                Err(e) if tries < 100 && e.to_string().contains("already open") => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("{e}"),
            }
        };
        let scheme = if opts.tls { "https" } else { "http" };
        let base = format!("{scheme}://{}", server.addr());
        let handle = server.handle();
        let task = tokio::spawn(async move {
            server.run().await.unwrap();
        });
        let ca = opts.tls.then(|| dir.path().join("test-ca.pem"));
        Harness {
            client: client(ca.as_deref()),
            base,
            handle,
            checkout: Checkout::start(),
            config,
            dir,
            server: Some(task),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn journal(&self) -> PathBuf {
        self.dir.path().join("journal.jsonl")
    }

    pub fn records(&self, task: &str) -> Vec<JournalRecord> {
        let key = HostKey::load_or_create(key_file()).unwrap();
        read_journal(self.journal(), &key)
            .unwrap()
            .into_iter()
            .filter(|r| r.task_id == task)
            .collect()
    }

    /// Every journal record, whatever its task.
    pub fn all_records(&self) -> Vec<JournalRecord> {
        let key = HostKey::load_or_create(key_file()).unwrap();
        read_journal(self.journal(), &key).unwrap()
    }

    pub fn verify_journal(&self) -> bool {
        let key = HostKey::load_or_create(key_file()).unwrap();
        warden::journal::verify_journal(self.journal(), &key, None)
            .unwrap()
            .is_ok()
    }

    pub async fn post(&self, path: &str, token: &str, body: &Value) -> (u16, Value) {
        let r = self
            .client
            .post(self.url(path))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        answer(r).await
    }

    pub async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        let r = self
            .client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        answer(r).await
    }

    /// Post an alert as Alertmanager; returns the status and the task id of
    /// its (only) alert.
    pub async fn alert(&self, body: &Value) -> (u16, Value) {
        self.post("/v1/alerts/alertmanager", AM_TOKEN, body).await
    }

    /// The task's inbox entry once it is done (bounded wait).
    pub async fn done(&self, task: &str) -> Value {
        self.wait(&format!("task {task} done"), || async {
            let (_, v) = self.get(&format!("/v1/tasks/{task}"), ADMIN).await;
            (v["task"]["state"] == "done").then_some(v)
        })
        .await
    }

    /// Poll `f` every 50 ms for at most 60 s.
    pub async fn wait<T, F, Fut>(&self, what: &str, mut f: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(60) {
            if let Some(v) = f().await {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("timed out waiting for {what}");
    }

    /// The first pending approval (bounded wait).
    pub async fn pending_approval(&self) -> Value {
        self.wait("an approval request", || async {
            let (_, v) = self.get("/v1/approvals", ADMIN).await;
            v["approvals"].as_array().and_then(|a| a.first().cloned())
        })
        .await
    }

    /// Drain and wait for the server to stop.
    pub async fn stop(&mut self) {
        self.handle.shutdown();
        if let Some(t) = self.server.take() {
            tokio::time::timeout(Duration::from_secs(60), t)
                .await
                .expect("the server stops within a minute")
                .unwrap();
        }
    }

    /// Start a second server on the same folder and config (a restart).
    pub async fn restart(mut self, opts: &Options) -> Harness {
        self.stop().await;
        let Harness {
            dir,
            config,
            checkout,
            handle,
            ..
        } = self;
        // The old server's state (and its inbox lock) goes with its last handle.
        drop(handle);
        let mut h = Harness::bind(dir, config, opts).await;
        h.checkout = checkout;
        h
    }
}

async fn answer(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, v)
}

pub fn client(ca: Option<&Path>) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_backend_preconfigured(warden_tls::client_config(ca).unwrap())
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

fn write_config(dir: &Path, opts: &Options) -> PathBuf {
    let secrets = dir.join("secrets");
    fs_err::create_dir(&secrets).unwrap();
    for (name, value) in [
        ("admin", ADMIN),
        ("alice", ALICE),
        ("viewer", VIEWER),
        ("am", AM_TOKEN),
        ("az", AZ_TOKEN),
        ("hook", HOOK_SECRET),
    ] {
        fs_err::write(secrets.join(name), format!("{value}\n")).unwrap();
    }
    fs_err::create_dir(dir.join("runbooks")).unwrap();
    fs_err::write(dir.join("runbooks/health.yaml"), RUNBOOK).unwrap();
    // The shipped bundle, with loopback allowed everywhere and the test's settings.
    let policy = dir.join("policy");
    fs_err::create_dir(&policy).unwrap();
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies");
    for entry in fs_err::read_dir(&shipped).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "rego") {
            fs_err::copy(&path, policy.join(path.file_name().unwrap())).unwrap();
        }
    }
    let mut data: Value =
        serde_json::from_str(&fs_err::read_to_string(shipped.join("data.json")).unwrap()).unwrap();
    let cidrs = json!(["127.0.0.0/8"]);
    data["warden"]["config"]["network"]["allowed_private_cidrs"] =
        json!({"dev": cidrs, "staging": cidrs, "prod": cidrs});
    if let Some(extra) = opts.policy_config.as_object() {
        for (k, v) in extra {
            data["warden"]["config"][k] = v.clone();
        }
    }
    fs_err::write(policy.join("data.json"), data.to_string()).unwrap();
    let tls = if opts.tls {
        let ca = warden_fakes::tls::TestCa::new();
        ca.write_pem(dir);
        let (cert, key) = ca.write_server_pem(dir, &["127.0.0.1"]);
        format!(
            "tls_cert = \"{}\"\ntls_key = \"{}\"\n",
            cert.display(),
            key.display()
        )
    } else {
        String::new()
    };
    let toml = format!(
        r#"
[agent]
plugins = "{plugins}"
policy = "policy"
runbooks = "runbooks"
journal = "journal.jsonl"
data_dir = "serve"
key_file = "{key}"
env = "{env}"
{memory}
[listen]
addr = "127.0.0.1:0"
{tls}
[limits]
workers = {workers}
queue = {queue}
body_bytes = {body}
approval_timeout = "{approval}"
drain_deadline = "{drain}"
group_window = "5m"
task_timeout = "2m"
retention = "{retention}"

[[tokens]]
name = "admin"
roles = ["operator", "approver"]
token = {{ file = "secrets/admin" }}

[[tokens]]
name = "alice"
roles = ["approver"]
token = {{ file = "secrets/alice" }}

[[tokens]]
name = "val"
roles = ["viewer"]
token = {{ file = "secrets/viewer" }}

[receivers.alertmanager]
bearer = {{ file = "secrets/am" }}

[receivers.azure_monitor]
secret = {{ file = "secrets/az" }}

[receivers.generic]
secret = {{ file = "secrets/hook" }}
"#,
        plugins = plugins().display(),
        key = key_file().display(),
        env = opts.env,
        workers = opts.workers,
        queue = opts.queue,
        body = opts.body_bytes,
        approval = opts.approval_timeout,
        drain = opts.drain_deadline,
        retention = opts.retention,
        memory = opts
            .memory
            .as_ref()
            .map(|m| format!("memory = \"{}\"\n", m.display()))
            .unwrap_or_default(),
    );
    let toml = format!("{toml}\n{}\n", opts.extra_toml);
    let path = dir.join("warden.toml");
    fs_err::write(&path, toml).unwrap();
    path
}

/// The task id of the first alert in a receiver's answer.
pub fn task_of(answer: &Value) -> String {
    answer["alerts"][0]["task_id"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}
