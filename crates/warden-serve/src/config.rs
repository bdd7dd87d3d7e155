//! `warden.toml`: what the service loads, where it listens, who may call it.
//!
//! Secrets are never inline: every token, password and signing secret is
//! `{ env = "NAME" }` or `{ file = "path" }`, read once at start-up (and on
//! reload), so the file can be committed and shown.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::error::ServeError;

/// The most a config file may hold.
const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// The whole `warden.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// What the agent loads.
    pub agent: AgentSection,
    /// Where the service listens.
    #[serde(default)]
    pub listen: ListenSection,
    /// Queue, workers, body sizes and time limits.
    #[serde(default)]
    pub limits: LimitsSection,
    /// API tokens: who may call the API, with which roles.
    #[serde(default)]
    pub tokens: Vec<TokenConfig>,
    /// Alert receivers; a receiver that is not configured answers 404.
    #[serde(default)]
    pub receivers: ReceiversSection,
    /// Slack and Teams: approvals and the `/warden` copilot.
    #[serde(default)]
    pub chat: crate::chat::ChatSection,
    /// The browser pages under `/ui`.
    #[serde(default)]
    pub ui: crate::page::UiSection,
    /// MCP over Streamable HTTP at `/mcp` (absent: none).
    #[serde(default)]
    pub mcp: Option<crate::mcp::McpSection>,
    /// Scale-out (`warden serve --cluster`): PostgreSQL is the record of
    /// tasks, steps and the journal; several workers share the work. Read
    /// only when the service is started with `--cluster`.
    #[serde(default)]
    pub cluster: Option<ClusterSection>,
    /// This box is an edge of a hub (absent: it is not): its journal and
    /// resolved incidents are forwarded through its leaf nats-server to
    /// the hub's PostgreSQL. For a service running alone, not `--cluster`.
    #[serde(default)]
    pub edge: Option<EdgeSection>,
    /// Where the config was read from: relative paths resolve against its folder.
    #[serde(skip)]
    pub base: PathBuf,
}

/// `[agent]`: plugins, policy, runbooks, journal, memory and the service's data.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentSection {
    /// Directory of built plugins.
    #[serde(default = "default_plugins")]
    pub plugins: PathBuf,
    /// Policy bundle directory.
    #[serde(default = "default_policy")]
    pub policy: PathBuf,
    /// Runbook directory.
    #[serde(default = "default_runbooks")]
    pub runbooks: PathBuf,
    /// Journal file.
    #[serde(default = "default_journal")]
    pub journal: PathBuf,
    /// The host key that signs the journal [default: $WARDEN_KEY_FILE, else
    /// ~/.config/warden/host.key]; never in the journal's folder.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// Incident store (optional): recall, similar incidents, learning.
    #[serde(default)]
    pub memory: Option<PathBuf>,
    /// The service's own data: the durable inbox.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// Environment for tasks from alerts [default: the bundle's default].
    #[serde(default)]
    pub env: Option<String>,
    /// Mutating calls only report what they would do.
    #[serde(default)]
    pub dry_run: bool,
}

fn default_plugins() -> PathBuf {
    ".warden/plugins".into()
}
fn default_policy() -> PathBuf {
    "policies".into()
}
fn default_runbooks() -> PathBuf {
    "examples/runbooks".into()
}
fn default_journal() -> PathBuf {
    ".warden/journal.jsonl".into()
}
fn default_data_dir() -> PathBuf {
    ".warden/serve".into()
}

/// `[listen]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenSection {
    /// Address and port [default: 127.0.0.1:8087].
    #[serde(default = "default_addr")]
    pub addr: SocketAddr,
    /// PEM certificate chain: with `tls_key`, the service speaks HTTPS only.
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for `tls_cert`.
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
}

impl Default for ListenSection {
    fn default() -> Self {
        ListenSection {
            addr: default_addr(),
            tls_cert: None,
            tls_key: None,
        }
    }
}

fn default_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8087))
}

/// `[limits]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    /// Largest request body in bytes [default: 1 MiB].
    #[serde(default = "default_body")]
    pub body_bytes: usize,
    /// Alerts waiting to run before receivers answer 429 [default: 256].
    #[serde(default = "default_queue")]
    pub queue: usize,
    /// Tasks run at once [default: 2].
    #[serde(default = "default_workers")]
    pub workers: usize,
    /// An approval nobody answers is rejected after this [default: 15m].
    #[serde(default = "default_approval", with = "humantime_serde")]
    pub approval_timeout: Duration,
    /// A firing alert that repeats within this of its task's end joins
    /// that task instead of starting another [default: 5m].
    #[serde(default = "default_group", with = "humantime_serde")]
    pub group_window: Duration,
    /// On SIGTERM, running tasks get this long to finish [default: 30s].
    #[serde(default = "default_drain", with = "humantime_serde")]
    pub drain_deadline: Duration,
    /// Ended tasks stay listed in `/v1/tasks` this long; their history
    /// stays in the journal [default: 7d].
    #[serde(default = "default_retention", with = "humantime_serde")]
    pub retention: Duration,
    /// Wall time for one task [default: 10m].
    #[serde(default = "default_task_time", with = "humantime_serde")]
    pub task_timeout: Duration,
}

impl Default for LimitsSection {
    fn default() -> Self {
        LimitsSection {
            body_bytes: default_body(),
            queue: default_queue(),
            workers: default_workers(),
            approval_timeout: default_approval(),
            group_window: default_group(),
            drain_deadline: default_drain(),
            task_timeout: default_task_time(),
            retention: default_retention(),
        }
    }
}

fn default_body() -> usize {
    1024 * 1024
}
fn default_queue() -> usize {
    256
}
fn default_workers() -> usize {
    2
}
fn default_approval() -> Duration {
    Duration::from_secs(15 * 60)
}
fn default_group() -> Duration {
    Duration::from_secs(5 * 60)
}
fn default_drain() -> Duration {
    Duration::from_secs(30)
}
fn default_retention() -> Duration {
    Duration::from_secs(7 * 24 * 3600)
}
fn default_task_time() -> Duration {
    Duration::from_secs(600)
}

/// `humantime` durations (`"90s"`, `"15m"`) in TOML.
pub(crate) mod humantime_serde {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text)
            .map_err(|e| serde::de::Error::custom(format!("`{text}` is not a duration: {e}")))
    }
}

/// Where a secret comes from: never the config file itself.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretRef {
    /// An environment variable.
    #[serde(default)]
    pub env: Option<String>,
    /// A file (its contents, trailing newline trimmed).
    #[serde(default)]
    pub file: Option<PathBuf>,
}

impl SecretRef {
    /// Read the secret; `what` names it in errors.
    pub(crate) fn read(&self, base: &Path, what: &str) -> Result<String, ServeError> {
        let bad = |reason: String| ServeError::Config {
            reason: format!("{what}: {reason}"),
        };
        let value = match (&self.env, &self.file) {
            (Some(var), None) => std::env::var(var)
                .map_err(|_| bad(format!("the environment variable {var} is not set")))?,
            (None, Some(file)) => {
                let path = base.join(file);
                let meta = fs_err::metadata(&path).map_err(|e| bad(e.to_string()))?;
                if !meta.is_file() || meta.len() > 64 * 1024 {
                    return Err(bad(format!(
                        "{} is not a regular file of at most 64 KiB",
                        path.display()
                    )));
                }
                fs_err::read_to_string(&path).map_err(|e| bad(e.to_string()))?
            }
            _ => return Err(bad("give exactly one of `env` or `file`".into())),
        };
        let value = value.trim_end_matches(['\r', '\n']).to_string();
        if value.len() < 16 {
            return Err(bad(
                "the secret is shorter than 16 characters: too easy to guess".into(),
            ));
        }
        Ok(value)
    }
}

/// `[cluster]`: the record the workers share, and who this worker is.
///
/// ```
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("warden.toml");
/// std::fs::write(&path, "[agent]\n[cluster]\npostgres = \"host=db user=warden dbname=warden\"\nlease = \"20s\"\n")?;
/// let config = warden_serve::Config::load(&path)?;
/// let cluster = config.cluster.unwrap();
/// assert_eq!(cluster.lease, std::time::Duration::from_secs(20));
/// // A password is a secret: never inline.
/// std::fs::write(&path, "[agent]\n[cluster]\npostgres = \"host=db user=warden password=hunter2\"\n")?;
/// assert!(warden_serve::Config::load(&path).unwrap_err().to_string().contains("[cluster] postgres"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSection {
    /// PostgreSQL: a libpq string or `postgresql://` URL without a
    /// password, or `{ env = … }` / `{ file = … }` for one with it.
    pub postgres: PostgresUrl,
    /// NATS for intake and wake-ups (optional; without it a webhook goes
    /// straight into PostgreSQL and idle workers poll it every second).
    #[serde(default)]
    pub nats: Option<String>,
    /// This worker's id [default: `<hostname>-<pid>`].
    #[serde(default)]
    pub worker: Option<String>,
    /// How long a claim on a task holds before another worker may take it
    /// over [default: 15s].
    #[serde(default = "default_lease", with = "humantime_serde")]
    pub lease: Duration,
    /// `[cluster.tls]`: TLS to PostgreSQL and NATS.
    #[serde(default)]
    pub tls: Option<ClusterTls>,
    /// `[cluster.nats_auth]`: how this worker authenticates to NATS.
    #[serde(default)]
    pub nats_auth: Option<NatsAuthConfig>,
    /// Allow plaintext to PostgreSQL or NATS hosts that are not loopback
    /// (a private network you trust) [default: false: such a connection
    /// without TLS is refused at start].
    #[serde(default)]
    pub allow_plaintext: bool,
    /// Claims of a task before it ends `failed` with its last error (a run
    /// that fails, or whose worker dies, counts) [default: 5].
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Edge boxes (their JetStream domains) whose records this hub stores:
    /// each worker makes sure the hub's `WARDEN_EDGE_IN` stream sources
    /// from each, and runs the edge sink into PostgreSQL; needs `nats`
    /// [default: none].
    #[serde(default)]
    pub edges: Vec<String>,
}

fn default_max_attempts() -> u32 {
    5
}

/// `[cluster.tls]`: certificates for the links to PostgreSQL and NATS.
/// Paths are relative to the configuration file. With this section TLS is
/// required to both servers (a PostgreSQL string saying `sslmode=disable`
/// is an error); their certificates are checked against the Mozilla roots
/// plus `ca`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterTls {
    /// A PEM bundle of extra CAs (your private CA).
    #[serde(default)]
    pub ca: Option<PathBuf>,
    /// This worker's certificate chain (PEM), for servers that require
    /// client certificates; needs `key`.
    #[serde(default)]
    pub cert: Option<PathBuf>,
    /// The certificate's private key (PEM).
    #[serde(default)]
    pub key: Option<PathBuf>,
}

/// `[cluster.nats_auth]`: an nkey seed, or a user and password; the secret
/// parts are `{ env = … }` / `{ file = … }`, never inline.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatsAuthConfig {
    /// An nkey seed (`SU…`).
    #[serde(default)]
    pub nkey: Option<SecretRef>,
    /// A user name (with `password`).
    #[serde(default)]
    pub user: Option<String>,
    /// The user's password.
    #[serde(default)]
    pub password: Option<SecretRef>,
}

impl ClusterSection {
    /// TLS and NATS credentials as the cluster crate takes them; `base`
    /// (the configuration's directory) resolves relative paths and secret
    /// files.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("warden.toml");
    /// std::fs::write(&path, "[agent]\n[cluster]\npostgres = \"host=db user=w\"\n[cluster.tls]\n")?;
    /// let config = warden_serve::Config::load(&path)?;
    /// let security = config.cluster.as_ref().unwrap().security(&config.base)?;
    /// assert!(security.has_tls());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn security(&self, base: &Path) -> Result<warden_cluster::Security, ServeError> {
        security(
            "cluster",
            self.tls.as_ref(),
            self.nats_auth.as_ref(),
            self.allow_plaintext,
            base,
        )
    }
}

/// TLS and NATS credentials of `[<section>.tls]` and `[<section>.nats_auth]`.
fn security(
    section: &str,
    tls: Option<&ClusterTls>,
    nats_auth: Option<&NatsAuthConfig>,
    allow_plaintext: bool,
    base: &Path,
) -> Result<warden_cluster::Security, ServeError> {
    let bad = |reason: String| ServeError::Config { reason };
    let mut security = warden_cluster::Security::default().allow_plaintext(allow_plaintext);
    if let Some(tls) = tls {
        let ca = tls.ca.as_ref().map(|p| base.join(p));
        let identity = match (&tls.cert, &tls.key) {
            (Some(cert), Some(key)) => Some((base.join(cert), base.join(key))),
            (None, None) => None,
            _ => {
                return Err(bad(format!(
                    "[{section}.tls] give both `cert` and `key`, or neither"
                )));
            }
        };
        security = security
            .with_tls(
                ca.as_deref(),
                identity.as_ref().map(|(c, k)| (c.as_path(), k.as_path())),
            )
            .map_err(|e| bad(format!("[{section}.tls]: {e}")))?;
    }
    if let Some(auth) = nats_auth {
        let auth = match (&auth.nkey, &auth.user, &auth.password) {
            (Some(seed), None, None) => warden_cluster::NatsAuth::Nkey {
                seed: seed.read(base, &format!("[{section}.nats_auth] nkey"))?,
            },
            (None, Some(user), Some(password)) => warden_cluster::NatsAuth::UserPassword {
                user: user.clone(),
                password: password.read(base, &format!("[{section}.nats_auth] password"))?,
            },
            _ => {
                return Err(bad(format!(
                    "[{section}.nats_auth] give either `nkey`, or `user` and `password`"
                )));
            }
        };
        security = security.with_nats_auth(auth);
    }
    Ok(security)
}

fn default_lease() -> Duration {
    Duration::from_secs(15)
}

/// `[cluster] postgres`: plain (no password) or a secret.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum PostgresUrl {
    /// A connection string without a password.
    Plain(String),
    /// A connection string read from the environment or a file.
    Secret(SecretRef),
}

impl PostgresUrl {
    /// The connection string; `base` resolves a secret file.
    pub(crate) fn read(&self, base: &Path) -> Result<String, ServeError> {
        match self {
            PostgresUrl::Plain(url) => Ok(url.clone()),
            PostgresUrl::Secret(secret) => secret.read(base, "[cluster] postgres"),
        }
    }
}

impl ClusterSection {
    /// The worker id: configured, else `<hostname>-<pid>`.
    pub fn worker_id(&self) -> String {
        self.worker.clone().unwrap_or_else(|| {
            let host = fs_err::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .ok()
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "warden".into());
            format!("{host}-{}", std::process::id())
        })
    }

    fn check(&self) -> Result<(), String> {
        if let PostgresUrl::Plain(url) = &self.postgres {
            let lower = url.to_ascii_lowercase();
            let in_url = lower
                .split_once("://")
                .and_then(|(_, rest)| rest.split_once('@'))
                .is_some_and(|(user, _)| user.contains(':'));
            if lower.contains("password=") || in_url {
                return Err("[cluster] postgres holds a password: put the connection string in a secret, `postgres = { env = \"WARDEN_POSTGRES\" }` or `{ file = … }`".into());
            }
        }
        if let Some(nats) = &self.nats
            && nats_url_has_credentials(nats)
        {
            return Err("[cluster] nats holds credentials: put them in `[cluster.nats_auth]` (a secret), not in the URL".into());
        }
        if self.lease < Duration::from_secs(1) {
            return Err("[cluster] lease must be at least 1s".into());
        }
        if self.max_attempts == 0 {
            return Err("[cluster] max_attempts must be at least 1".into());
        }
        if self.worker.as_deref().is_some_and(|w| w.trim().is_empty()) {
            return Err("[cluster] worker is empty".into());
        }
        if !self.edges.is_empty() && self.nats.is_none() {
            return Err(
                "[cluster] edges needs `nats`: the hub's nats-server the edges are leaf nodes of"
                    .into(),
            );
        }
        if self.edges.len() > 1024 {
            return Err("[cluster] edges: at most 1024".into());
        }
        for domain in &self.edges {
            check_domain("[cluster] edges", domain)?;
        }
        Ok(())
    }
}

/// `[edge]`: this box is an edge of a hub. Its own nats-server is a leaf
/// node of the hub's, with JetStream domain `domain`; every journal record
/// (sealed onto its task's edge chain) and every resolved incident is
/// buffered there and forwarded to the hub, whose `warden serve --cluster`
/// stores them in PostgreSQL (`[cluster] edges`).
///
/// ```
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("warden.toml");
/// std::fs::write(&path, "[agent]\n[edge]\ndomain = \"edge1\"\nnats = \"nats://127.0.0.1:4223\"\nhub_domain = \"hub\"\nbuffer = \"64MiB\"\n")?;
/// let edge = warden_serve::Config::load(&path)?.edge.unwrap();
/// assert_eq!(edge.buffer, 64 << 20);
/// assert_eq!(edge.trim_every, std::time::Duration::from_secs(60));
/// // A domain is one NATS subject token.
/// std::fs::write(&path, "[agent]\n[edge]\ndomain = \"edge.1\"\nnats = \"nats://127.0.0.1:4223\"\nhub_domain = \"hub\"\n")?;
/// assert!(warden_serve::Config::load(&path).unwrap_err().to_string().contains("[edge] domain"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EdgeSection {
    /// This edge's JetStream domain (its leaf nats-server's `jetstream {
    /// domain }`); records reach the hub as `<domain>:<id>`.
    pub domain: String,
    /// The edge's own (leaf) nats-server, normally on loopback.
    pub nats: String,
    /// The hub's JetStream domain: asked what it holds already, so the
    /// edge's buffer is freed of it.
    pub hub_domain: String,
    /// The most the edge's buffer (`WARDEN_EDGE`, on the leaf's disk) holds
    /// while the hub is away: bytes, or `"256MiB"`, `"1GiB"`; a full buffer
    /// refuses new records, which wait in the journal [default: 256MiB].
    #[serde(default = "default_edge_buffer", with = "byte_size")]
    pub buffer: u64,
    /// How often the buffer is freed of what the hub holds [default: 60s].
    #[serde(default = "default_trim_every", with = "humantime_serde")]
    pub trim_every: Duration,
    /// `[edge.tls]`: TLS to the edge's nats-server.
    #[serde(default)]
    pub tls: Option<ClusterTls>,
    /// `[edge.nats_auth]`: how this service authenticates to it.
    #[serde(default)]
    pub nats_auth: Option<NatsAuthConfig>,
    /// Allow plaintext to a nats-server that is not on loopback [default: false].
    #[serde(default)]
    pub allow_plaintext: bool,
}

fn default_edge_buffer() -> u64 {
    256 << 20
}
fn default_trim_every() -> Duration {
    Duration::from_secs(60)
}

impl EdgeSection {
    /// TLS and credentials for the edge's nats-server; `base` (the
    /// configuration's directory) resolves relative paths and secret files.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("warden.toml");
    /// std::fs::write(&path, "[agent]\n[edge]\ndomain = \"edge1\"\nnats = \"nats://127.0.0.1:4223\"\nhub_domain = \"hub\"\n")?;
    /// let config = warden_serve::Config::load(&path)?;
    /// let security = config.edge.as_ref().unwrap().security(&config.base)?;
    /// assert!(!security.has_tls());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn security(&self, base: &Path) -> Result<warden_cluster::Security, ServeError> {
        security(
            "edge",
            self.tls.as_ref(),
            self.nats_auth.as_ref(),
            self.allow_plaintext,
            base,
        )
    }

    fn check(&self) -> Result<(), String> {
        check_domain("[edge] domain", &self.domain)?;
        check_domain("[edge] hub_domain", &self.hub_domain)?;
        if self.domain == self.hub_domain {
            return Err("[edge] domain and hub_domain must differ".into());
        }
        if nats_url_has_credentials(&self.nats) {
            return Err("[edge] nats holds credentials: put them in `[edge.nats_auth]` (a secret), not in the URL".into());
        }
        if !(1 << 20..=1 << 40).contains(&self.buffer) {
            return Err("[edge] buffer must be between 1MiB and 1TiB".into());
        }
        if self.trim_every < Duration::from_secs(1) {
            return Err("[edge] trim_every must be at least 1s".into());
        }
        Ok(())
    }
}

/// Whether any server of a comma-separated NATS URL list carries
/// `user[:password]@`: credentials belong in a secret, not in the file.
fn nats_url_has_credentials(nats: &str) -> bool {
    nats.split(',').any(|server| {
        server
            .split_once("://")
            .map_or(server, |(_, rest)| rest)
            .contains('@')
    })
}

/// A JetStream domain: one NATS subject token of letters, digits, `-`, `_`.
fn check_domain(what: &str, domain: &str) -> Result<(), String> {
    if warden_cluster::is_jetstream_domain(domain) {
        Ok(())
    } else {
        Err(format!(
            "{what}: `{domain}` is not a JetStream domain (1-64 letters, digits, `-` or `_`)"
        ))
    }
}

/// Sizes in TOML: a number of bytes, or `"256MiB"` (`B`, `KiB`, `MiB`, `GiB`, `TiB`).
pub(crate) mod byte_size {
    use serde::{Deserialize, Deserializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Size {
        Bytes(u64),
        Text(String),
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        match Size::deserialize(d)? {
            Size::Bytes(n) => Ok(n),
            Size::Text(text) => parse(&text).ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "`{text}` is not a size (bytes, or a number with B, KiB, MiB, GiB or TiB)"
                ))
            }),
        }
    }

    pub(crate) fn parse(text: &str) -> Option<u64> {
        let text = text.trim();
        let digits = text.bytes().take_while(u8::is_ascii_digit).count();
        let (n, unit) = text.split_at(digits);
        let shift = match unit.trim() {
            "" | "B" => 0,
            "KiB" => 10,
            "MiB" => 20,
            "GiB" => 30,
            "TiB" => 40,
            _ => return None,
        };
        n.parse::<u64>().ok()?.checked_mul(1 << shift)
    }
}

/// One `[[tokens]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// The identity a request with this token acts as (journaled as the approver).
    pub name: String,
    /// `viewer` (read), `operator` (start tasks), `approver` (answer
    /// approvals); the approval policy sees them too.
    pub roles: Vec<String>,
    /// The bearer token.
    pub token: SecretRef,
}

/// `[receivers]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiversSection {
    /// Alertmanager webhook v4 at `POST /v1/alerts/alertmanager`.
    #[serde(default)]
    pub alertmanager: Option<AlertmanagerReceiver>,
    /// Azure Monitor common alert schema at
    /// `POST /v1/alerts/azure-monitor?token=…` (action groups cannot add headers).
    #[serde(default)]
    pub azure_monitor: Option<TokenReceiver>,
    /// Any JSON alert at `POST /v1/alerts/generic`, signed with HMAC-SHA256.
    #[serde(default)]
    pub generic: Option<TokenReceiver>,
}

/// Alertmanager's `http_config`: a bearer token or basic auth.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertmanagerReceiver {
    /// `authorization: { credentials: … }` in Alertmanager.
    #[serde(default)]
    pub bearer: Option<SecretRef>,
    /// `basic_auth.username`.
    #[serde(default)]
    pub basic_user: Option<String>,
    /// `basic_auth.password`.
    #[serde(default)]
    pub basic_password: Option<SecretRef>,
    /// Environment for its tasks [default: `[agent] env`].
    #[serde(default)]
    pub env: Option<String>,
}

/// A receiver authenticated by one shared secret.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenReceiver {
    /// The token (Azure Monitor) or the HMAC signing secret (generic).
    pub secret: SecretRef,
    /// Environment for its tasks [default: `[agent] env`].
    #[serde(default)]
    pub env: Option<String>,
}

impl Config {
    /// Read and check `path`. Relative paths inside resolve against its folder.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("warden.toml");
    /// std::fs::write(&path, "[agent]\npolicy = \"policies\"\n[limits]\nworkers = 3\n")?;
    /// let config = warden_serve::Config::load(&path)?;
    /// assert_eq!(config.limits.workers, 3);
    /// assert_eq!(config.agent.policy, dir.path().join("policies"));
    /// // Secrets are never inline.
    /// std::fs::write(&path, "[agent]\n[[tokens]]\nname = \"a\"\nroles = []\ntoken = \"hunter2\"\n")?;
    /// assert!(warden_serve::Config::load(&path).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn load(path: &Path) -> Result<Config, ServeError> {
        let bad = |reason: String| ServeError::Config {
            reason: format!("{}: {reason}", path.display()),
        };
        let meta = fs_err::metadata(path).map_err(|e| bad(e.to_string()))?;
        if !meta.is_file() || meta.len() > MAX_CONFIG_BYTES {
            return Err(bad("not a regular file of at most 1 MiB".into()));
        }
        let text = fs_err::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        let mut config: Config = toml::from_str(&text).map_err(|e| bad(e.to_string()))?;
        config.base = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        config.resolve_paths();
        config.check().map_err(bad)?;
        Ok(config)
    }

    fn resolve_paths(&mut self) {
        let base = self.base.clone();
        let at = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        let a = &mut self.agent;
        at(&mut a.plugins);
        at(&mut a.policy);
        at(&mut a.runbooks);
        at(&mut a.journal);
        at(&mut a.data_dir);
        if let Some(m) = a.memory.as_mut() {
            at(m);
        }
        if let Some(k) = a.key_file.as_mut() {
            at(k);
        }
        if let Some(c) = self.listen.tls_cert.as_mut() {
            at(c);
        }
        if let Some(k) = self.listen.tls_key.as_mut() {
            at(k);
        }
        self.chat.resolve_paths(&base);
    }

    fn check(&self) -> Result<(), String> {
        let l = &self.limits;
        if l.workers == 0 || l.workers > 256 {
            return Err("limits.workers must be between 1 and 256".into());
        }
        if l.queue == 0 || l.queue > 1_000_000 {
            return Err("limits.queue must be between 1 and 1000000".into());
        }
        if l.body_bytes < 1024 || l.body_bytes > 64 * 1024 * 1024 {
            return Err("limits.body_bytes must be between 1 KiB and 64 MiB".into());
        }
        self.ui.check()?;
        if self.listen.tls_cert.is_some() != self.listen.tls_key.is_some() {
            return Err("listen.tls_cert and listen.tls_key go together".into());
        }
        let mut names = BTreeMap::new();
        for t in &self.tokens {
            if t.name.trim().is_empty() {
                return Err("a [[tokens]] entry has an empty name".into());
            }
            if names.insert(t.name.as_str(), ()).is_some() {
                return Err(format!("two [[tokens]] entries are named `{}`", t.name));
            }
            for r in &t.roles {
                if !matches!(r.as_str(), "viewer" | "operator" | "approver") {
                    return Err(format!(
                        "token `{}`: unknown role `{r}` (viewer, operator, approver)",
                        t.name
                    ));
                }
            }
        }
        if let Some(am) = &self.receivers.alertmanager {
            let basic = am.basic_user.is_some() || am.basic_password.is_some();
            if am.bearer.is_some() == basic {
                return Err("receivers.alertmanager needs `bearer`, or `basic_user` with `basic_password` (one of them)".into());
            }
            if basic && (am.basic_user.is_none() || am.basic_password.is_none()) {
                return Err(
                    "receivers.alertmanager: `basic_user` and `basic_password` go together".into(),
                );
            }
        }
        self.chat.check()?;
        if let Some(c) = &self.cluster {
            c.check()?;
        }
        if let Some(e) = &self.edge {
            e.check()?;
        }
        Ok(())
    }
}
