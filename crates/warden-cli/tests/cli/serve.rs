//! `warden serve` as an operator runs it: the built binary on a config in a
//! temp folder, real plugins, the shipped policy bundle (loopback allowed),
//! and a loopback "checkout" service to heal. The tests drive it with a
//! real Prometheus and Alertmanager, and kill it with SIGKILL mid-burst.

mod alertmanager;
mod crash;

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use serde_json::{Value, json};
use warden_fakes::http::{Loopback, bind};

use crate::support::{bundle, repo};

pub const ADMIN: &str = "admin-token-0123456789abcdef";
pub const VIEWER: &str = "viewer-token-0123456789abcdef";
pub const AM_TOKEN: &str = "alertmanager-token-0123456789";

/// Probe the service's health, restart it through its admin URL when the
/// probe fails, probe again. The URLs come from the alert's annotations.
pub const RUNBOOK: &str = warden_fakes::webhook::HEALTH_RUNBOOK;

/// A free port on 127.0.0.1 (for servers whose config must name it up front).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A loopback client that never goes through a proxy.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .tls_backend_preconfigured(warden_tls::client_config(None).unwrap())
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// Poll `f` every 200 ms until it gives a value or `deadline` passes; then
/// fail naming `what`, with `context()` (server logs) in the message.
pub async fn wait_until<T, F, Fut>(
    what: &str,
    deadline: Instant,
    context: impl Fn() -> String,
    mut f: F,
) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if Instant::now() >= deadline {
            panic!("timed out waiting for {what}\n{}", context());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// What a service folder holds besides the defaults.
pub struct Setup {
    pub env: &'static str,
    pub workers: usize,
    pub queue: usize,
    /// Merged into the bundle's `data.warden.config`.
    pub policy: Value,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            env: "dev",
            workers: 2,
            queue: 256,
            policy: json!({}),
        }
    }
}

/// A service folder: `warden.toml`, secrets, plugins, the policy bundle, the
/// runbook; the journal and inbox go in `data/`, the host key in `key/`.
pub struct Workspace {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub port: u16,
}

impl Workspace {
    pub fn new(setup: &Setup) -> Workspace {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let secrets = root.join("secrets");
        fs_err::create_dir(&secrets).unwrap();
        for (name, value) in [("admin", ADMIN), ("viewer", VIEWER), ("am", AM_TOKEN)] {
            fs_err::write(secrets.join(name), format!("{value}\n")).unwrap();
        }
        let plugins = root.join("plugins");
        fs_err::create_dir(&plugins).unwrap();
        for (src, name) in [
            (test_plugins_artifacts::PLUGIN_HTTP_PROBE, "http_probe.wasm"),
            (
                test_plugins_artifacts::PLUGIN_HTTP_ACTION,
                "http_action.wasm",
            ),
        ] {
            fs_err::copy(src, plugins.join(name)).unwrap();
        }
        fs_err::create_dir(root.join("runbooks")).unwrap();
        fs_err::write(root.join("runbooks/health.yaml"), RUNBOOK).unwrap();
        let loopback = json!(["127.0.0.0/8"]);
        let mut policy = json!({"network": {"allowed_private_cidrs":
            {"dev": loopback, "staging": loopback, "prod": loopback}}});
        if let (Some(into), Some(extra)) = (policy.as_object_mut(), setup.policy.as_object()) {
            into.extend(extra.clone());
        }
        bundle(root, policy);
        let port = free_port();
        let toml = format!(
            r#"
[agent]
plugins = "plugins"
policy = "policies"
runbooks = "runbooks"
journal = "data/journal.jsonl"
data_dir = "data/serve"
key_file = "key/host.key"
env = "{env}"

[listen]
addr = "127.0.0.1:{port}"

[limits]
workers = {workers}
queue = {queue}
approval_timeout = "5m"
group_window = "5m"
drain_deadline = "5s"
task_timeout = "2m"

[[tokens]]
name = "admin"
roles = ["operator", "approver"]
token = {{ file = "secrets/admin" }}

[[tokens]]
name = "prometheus"
roles = ["viewer"]
token = {{ file = "secrets/viewer" }}

[receivers.alertmanager]
bearer = {{ file = "secrets/am" }}
"#,
            env = setup.env,
            workers = setup.workers,
            queue = setup.queue,
        );
        let config = root.join("warden.toml");
        fs_err::write(&config, toml).unwrap();
        Workspace { dir, config, port }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `warden journal verify` on the service's journal, as an auditor runs it.
    pub fn verify_journal(&self) -> (bool, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_warden"))
            .current_dir(repo())
            .env("NO_COLOR", "1")
            .env("WARDEN_KEY_FILE", self.path("key/host.key"))
            .args(["journal", "verify"])
            .arg(self.path("data/journal.jsonl"))
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }
}

/// A child process with its output in a log file; killed (SIGKILL) when
/// dropped.
pub struct Daemon {
    pub name: String,
    child: Child,
    log: PathBuf,
}

impl Daemon {
    pub fn start(name: &str, cmd: &mut Command, log: PathBuf) -> Daemon {
        let out = fs_err::File::create(&log).unwrap().into_parts().0;
        let err = out.try_clone().unwrap();
        // Loopback only: whatever proxy the machine has is not for these.
        for var in ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"] {
            cmd.env_remove(var).env_remove(var.to_lowercase());
        }
        let child = cmd
            .env("NO_PROXY", "127.0.0.1,localhost,::1")
            .env("no_proxy", "127.0.0.1,localhost,::1")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        Daemon {
            name: name.into(),
            child,
            log,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The last 60 lines of its log.
    pub fn log_tail(&self) -> String {
        let text = fs_err::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(60)..].join("\n");
        format!(
            "--- {} (pid {}) log tail ---\n{tail}",
            self.name,
            self.pid()
        )
    }

    /// Whether it has exited, and how.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().unwrap()
    }

    /// SIGKILL: no handler runs, nothing is flushed.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then wait at most `limit` for it to exit.
    pub fn terminate(&mut self, limit: Duration) -> ExitStatus {
        let sent = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(sent.success(), "kill -TERM {}", self.pid());
        let start = Instant::now();
        loop {
            if let Some(status) = self.exited() {
                return status;
            }
            assert!(
                start.elapsed() < limit,
                "{} did not stop within {limit:?} of SIGTERM\n{}",
                self.name,
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `warden serve` on `ws`, started and ready (`/readyz` answers 200).
pub async fn start_warden(ws: &Workspace, log_name: &str) -> Daemon {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_warden"));
    cmd.current_dir(ws.dir.path())
        .env("NO_COLOR", "1")
        .env("WARDEN_LOG", "info")
        .arg("serve")
        .arg("--config")
        .arg(&ws.config);
    for var in [
        "WARDEN_LLM_BASE_URL",
        "WARDEN_LLM_MODEL",
        "OPENAI_API_KEY",
        "AZURE_OPENAI_ENDPOINT",
        "WARDEN_KEY_FILE",
        "WARDEN_CONFIG",
    ] {
        cmd.env_remove(var);
    }
    let mut warden = Daemon::start("warden serve", &mut cmd, ws.path(log_name));
    let http = client();
    let url = format!("{}/readyz", ws.base());
    // The first start compiles the plugins (a debug build takes a while).
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(status) = warden.exited() {
            panic!("warden serve exited early: {status}\n{}", warden.log_tail());
        }
        if let Ok(r) = http.get(&url).send().await
            && r.status() == 200
        {
            return warden;
        }
        assert!(
            Instant::now() < deadline,
            "warden serve was not ready within 120 s\n{}",
            warden.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// GET `url` with a bearer token; the status and the body as JSON (or a
/// string when it is not JSON). `None` when nothing answered.
pub async fn get(http: &reqwest::Client, url: &str, token: &str) -> Option<(u16, Value)> {
    let r = http.get(url).bearer_auth(token).send().await.ok()?;
    let status = r.status().as_u16();
    let text = r.text().await.ok()?;
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Some((status, body))
}

/// The service's inbox as `GET /v1/tasks` lists it.
pub async fn tasks(http: &reqwest::Client, ws: &Workspace) -> Option<Vec<Value>> {
    let (status, body) = get(http, &format!("{}/v1/tasks?limit=1000", ws.base()), ADMIN).await?;
    (status == 200).then(|| body["tasks"].as_array().cloned().unwrap_or_default())
}

/// The loopback service the runbook heals. Each fingerprint (the `fp`
/// query parameter; none for the service as a whole) is unhealthy until its
/// `/admin/restart` is called; `/metrics` shows the whole service's
/// `checkout_up` for Prometheus.
pub struct Checkout {
    shop: Arc<Mutex<Shop>>,
    addr: SocketAddr,
    _server: Loopback,
}

#[derive(Default)]
struct Shop {
    healthy: HashSet<String>,
    restarts: HashMap<String, u32>,
    probes: HashMap<String, u32>,
    /// How long `/health` takes to answer (a slow probe keeps tasks running).
    health_delay: Duration,
}

impl Checkout {
    pub fn start(health_delay: Duration) -> Checkout {
        let (listener, addr) = bind();
        let shop = Arc::new(Mutex::new(Shop {
            health_delay,
            ..Shop::default()
        }));
        let server = Loopback::serve("checkout", listener, shop.clone(), serve_shop);
        Checkout {
            shop,
            addr,
            _server: server,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Restarts through `/admin/restart`, by fingerprint ("" for the service).
    pub fn restarts(&self) -> HashMap<String, u32> {
        self.shop.lock().unwrap().restarts.clone()
    }

    /// `/health` requests, by fingerprint.
    pub fn probes(&self) -> HashMap<String, u32> {
        self.shop.lock().unwrap().probes.clone()
    }
}

async fn serve_shop(
    req: hyper::Request<Incoming>,
    shop: Arc<Mutex<Shop>>,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let fp = req
        .uri()
        .query()
        .into_iter()
        .flat_map(|q| q.split('&'))
        .find_map(|kv| kv.strip_prefix("fp="))
        .unwrap_or_default()
        .to_string();
    let (status, body) = match req.uri().path() {
        "/metrics" => {
            let up = u8::from(shop.lock().unwrap().healthy.contains(""));
            (
                200,
                format!(
                    "# HELP checkout_up Whether checkout serves.\n# TYPE checkout_up gauge\ncheckout_up {up}\n"
                ),
            )
        }
        "/health" => {
            let delay = {
                let mut s = shop.lock().unwrap();
                *s.probes.entry(fp.clone()).or_default() += 1;
                s.health_delay
            };
            tokio::time::sleep(delay).await;
            if shop.lock().unwrap().healthy.contains(&fp) {
                (200, "ok".to_string())
            } else {
                (503, "pool exhausted".to_string())
            }
        }
        "/admin/restart" => {
            let mut s = shop.lock().unwrap();
            *s.restarts.entry(fp.clone()).or_default() += 1;
            s.healthy.insert(fp);
            (200, json!({"restarted": true}).to_string())
        }
        _ => (404, "no".to_string()),
    };
    let mut r = hyper::Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
    Ok(r)
}

/// Where a program is on `PATH`, trying each name.
pub fn which(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|p| p.is_file())
}

/// The file's text for a config: a path, quoted for YAML.
pub fn yaml_path(p: &Path) -> String {
    serde_json::to_string(&p.display().to_string()).unwrap()
}
