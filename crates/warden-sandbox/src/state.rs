//! Per-call store state: the locked-down WASI context, the gate, the
//! key-value store and the resource limiter.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::BodyExt as _;
use rustls::pki_types::ServerName;
use warden_types::{
    CallContext, CapabilityGate, CapabilityRequest, CapabilityUse, GateDecision, HttpRequestInfo,
    ToolManifest,
};
use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{
    Error as HttpError, RequestOptions, WasiBody, WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks,
    WasiHttpView,
};

use crate::address;
use crate::arm::ArmBackend;
use crate::bindings::warden::plugin::{kv, log, types};
use crate::outbound::{self, IoFuture, Target, Timeouts};
use crate::outbox::{self, Outbox, Retry};
use crate::scrub::Scrubber;
use crate::secret::{self, Secrets};

/// A capability use the host refused during a call.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Denial {
    /// What the plugin tried.
    pub capability: CapabilityUse,
    /// Why it was refused.
    pub reason: String,
    /// True when the host refused it because the manifest did not declare it
    /// (the gate was not asked).
    pub undeclared: bool,
}

/// A plugin's key-value store: shared by its calls, bounded in size.
pub(crate) type KvMap = Arc<Mutex<BTreeMap<String, Vec<u8>>>>;

/// Everything the host functions of one call need to decide and record.
pub(crate) struct CallScope {
    pub manifest: Arc<ToolManifest>,
    pub gate: Arc<dyn CapabilityGate>,
    pub ctx: CallContext,
    pub denials: Mutex<Vec<Denial>>,
    pub kv: KvMap,
    pub kv_max_keys: usize,
    pub kv_max_value: usize,
    pub timeout: Duration,
    pub secrets: Secrets,
    pub arm: Option<Arc<dyn ArmBackend>>,
    /// TLS client for `https` (trusted roots plus any extra CA).
    pub tls: Arc<rustls::ClientConfig>,
    /// Replaces secret URLs and their parts in what the guest hands back.
    pub scrub: Scrubber,
    /// When the call started; the ARM deadline counts from here.
    pub started: Instant,
    /// Where requests to secrets that cannot be reached are queued.
    pub outbox: Option<Outbox>,
    /// Backoff of queued requests.
    pub retry: Retry,
    /// Largest body the outbox keeps.
    pub outbox_body_limit: usize,
}

impl CallScope {
    fn request(&self, capability: CapabilityUse) -> CapabilityRequest {
        CapabilityRequest {
            plugin: self.manifest.name.clone(),
            plugin_version: self.manifest.version.clone(),
            effect: self.manifest.effect,
            task_id: self.ctx.task_id.clone(),
            step_id: self.ctx.step_id.clone(),
            dry_run: self.ctx.dry_run,
            capability,
        }
    }

    pub(crate) fn deny(
        &self,
        capability: CapabilityUse,
        reason: String,
        undeclared: bool,
    ) -> String {
        tracing::warn!(
            plugin = %self.manifest.name,
            task = %self.ctx.task_id,
            step = %self.ctx.step_id,
            capability = ?capability,
            undeclared,
            %reason,
            "capability denied"
        );
        if let Ok(mut d) = self.denials.lock() {
            d.push(Denial {
                capability,
                reason: reason.clone(),
                undeclared,
            });
        }
        reason
    }

    /// Ask the gate about a declared capability; `Err(reason)` on denial.
    pub(crate) fn ask(&self, capability: CapabilityUse) -> Result<(), String> {
        let decision = self.gate.check(&self.request(capability.clone()));
        match decision {
            GateDecision::Allow => {
                tracing::debug!(plugin = %self.manifest.name, capability = ?capability, "capability allowed");
                Ok(())
            }
            GateDecision::Deny { reason } => Err(self.deny(capability, reason, false)),
        }
    }

    fn kv_check(&self, capability: CapabilityUse) -> Result<(), String> {
        if !self.manifest.declares_kv() {
            return Err(self.deny(
                capability,
                format!(
                    "plugin `{}` did not declare the key-value capability",
                    self.manifest.name
                ),
                true,
            ));
        }
        self.ask(capability)
    }

    /// Decide one outgoing HTTP request; on success, what the gate saw and
    /// where to connect.
    pub(crate) async fn authorize_http(
        &self,
        request: &mut http::Request<WasiBody>,
    ) -> Result<(HttpRequestInfo, Destination), HttpError> {
        let mut uri = request.uri().clone();
        let mut scheme = uri.scheme_str().unwrap_or("https").to_ascii_lowercase();
        let mut host = uri
            .host()
            .ok_or(HttpError::HttpRequestUriInvalid)?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let mut port = uri
            .port_u16()
            .unwrap_or(if scheme == "https" { 443 } else { 80 });
        let mut info = HttpRequestInfo {
            method: request.method().as_str().to_ascii_uppercase(),
            scheme: scheme.clone(),
            host: host.clone(),
            port,
            path: uri
                .path_and_query()
                .map(|p| p.as_str().to_string())
                .unwrap_or_else(|| "/".into()),
            resolved: Vec::new(),
        };
        let lower = host.to_ascii_lowercase();
        let secret_name = secret::reserved_name(&lower).map(str::to_string);
        if let Some(name) = &secret_name {
            // From here on the request goes to the secret's URL; `info`
            // keeps the guest's host and path, so the gate, the denials and
            // the logs name the secret, never the URL.
            uri = self.open_secret(name, &info)?;
            scheme = uri.scheme_str().unwrap_or("https").to_ascii_lowercase();
            host = uri
                .host()
                .ok_or(HttpError::HttpRequestUriInvalid)?
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string();
            port = uri
                .port_u16()
                .unwrap_or(if scheme == "https" { 443 } else { 80 });
            info.host = format!("{name}{}", secret::SECRET_SUFFIX);
            info.scheme = scheme.clone();
            info.port = port;
            *request.uri_mut() = uri.clone();
            // wasi-http set `host` to the guest's authority.
            let authority = uri.authority().map(|a| a.as_str()).unwrap_or_default();
            let value = http::HeaderValue::from_str(authority)
                .map_err(|_| HttpError::HttpRequestUriInvalid)?;
            request.headers_mut().insert(http::header::HOST, value);
        } else if !self.manifest.declares_http_host(&host) {
            self.deny(
                CapabilityUse::Http(info),
                format!(
                    "plugin `{}` did not declare HTTP access to host `{host}`",
                    self.manifest.name
                ),
                true,
            );
            return Err(HttpError::HttpRequestDenied);
        }
        let literal = address::literal(&host);
        // A name is judged on its own before it reaches the resolver, so a
        // policy can refuse `metadata.google.internal` or `localhost`
        // without the name ever leaving the host. A secret's host is the
        // operator's, not the plugin's: it goes straight to its address check.
        if literal.is_none()
            && secret_name.is_none()
            && self.ask(CapabilityUse::HttpLookup(info.clone())).is_err()
        {
            return Err(HttpError::HttpRequestDenied);
        }
        let resolved = match literal {
            Some(ip) => Ok(vec![ip]),
            None => resolve(&host, port, self.timeout).await,
        };
        info.resolved = match resolved {
            Ok(ips) => ips,
            Err(e) => {
                return Err(match &secret_name {
                    Some(name) => secret::redact_error(e, name),
                    None => e,
                });
            }
        };
        if self.ask(CapabilityUse::Http(info.clone())).is_err() {
            return Err(HttpError::HttpRequestDenied);
        }
        if !request.headers().contains_key(http::header::HOST) {
            let host_header = if uri_has_port(&info) {
                format!("{}:{}", bracket(&host), port)
            } else {
                bracket(&host)
            };
            if let Ok(v) = http::HeaderValue::from_str(&host_header) {
                request.headers_mut().insert(http::header::HOST, v);
            }
        }
        // A mutating call's requests carry its idempotency key, so a
        // service can tell a repeat (a re-claimed task) from a new change.
        if let Some(key) = &self.ctx.idempotency_key
            && !matches!(info.method.as_str(), "GET" | "HEAD" | "OPTIONS")
            && !request.headers().contains_key("idempotency-key")
            && let Ok(v) = http::HeaderValue::from_str(key)
        {
            request.headers_mut().insert("idempotency-key", v);
        }
        let destination = Destination {
            https: scheme == "https",
            host,
            port,
        };
        Ok((info, destination))
    }

    /// The URL of secret `name`, if the manifest declares it, the request
    /// addresses its root, and the host holds it.
    fn open_secret(&self, name: &str, info: &HttpRequestInfo) -> Result<http::Uri, HttpError> {
        let plugin = &self.manifest.name;
        let refuse = |reason: String, undeclared: bool| {
            self.deny(CapabilityUse::Http(info.clone()), reason, undeclared);
            HttpError::HttpRequestDenied
        };
        if !secret::valid_name(name) {
            return Err(refuse(
                format!(
                    "plugin `{plugin}` addressed `{}`, which is not a valid secret name",
                    info.host
                ),
                false,
            ));
        }
        if !secret::declares_secret(&self.manifest, name) {
            return Err(refuse(
                format!(
                    "plugin `{plugin}` did not declare the secret `{name}` (HTTP host `{name}{}`)",
                    secret::SECRET_SUFFIX
                ),
                true,
            ));
        }
        if info.path != "/" {
            return Err(refuse(
                format!(
                    "plugin `{plugin}` sent to secret `{name}` with a path or query; the secret holds the whole URL, so send to `/`"
                ),
                false,
            ));
        }
        self.secrets.get(name).ok_or_else(|| {
            refuse(
                format!(
                    "plugin `{plugin}` asked for secret `{name}`, which the host does not hold"
                ),
                false,
            )
        })
    }
}

/// Where an approved request connects: the resolved addresses are in the
/// [`HttpRequestInfo`] the gate saw.
pub(crate) struct Destination {
    /// The host name (or IP literal) the certificate must be valid for.
    host: String,
    port: u16,
    https: bool,
}

fn uri_has_port(info: &HttpRequestInfo) -> bool {
    !((info.scheme == "http" && info.port == 80) || (info.scheme == "https" && info.port == 443))
}

fn bracket(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

/// The addresses DNS gives for `host`, canonical (see [`address::canonical`])
/// and without duplicates.
async fn resolve(host: &str, port: u16, timeout: Duration) -> Result<Vec<IpAddr>, HttpError> {
    let lookup = tokio::net::lookup_host((host, port));
    let addrs = match tokio::time::timeout(timeout, lookup).await {
        Err(_) => return Err(HttpError::DnsTimeout),
        Ok(Err(e)) => {
            return Err(HttpError::DnsError {
                rcode: Some(e.to_string()),
                info_code: None,
            });
        }
        Ok(Ok(a)) => a,
    };
    let mut ips: Vec<IpAddr> = Vec::new();
    for a in addrs {
        let ip = address::canonical(a.ip());
        if !ips.contains(&ip) {
            ips.push(ip);
        }
    }
    if ips.is_empty() {
        return Err(HttpError::DestinationNotFound);
    }
    Ok(ips)
}

/// `wasi:http` hooks that route every outgoing request through the gate.
pub(crate) struct GateHooks {
    scope: Arc<CallScope>,
}

type ResponseFuture =
    Box<dyn Future<Output = Result<(http::Response<WasiBody>, IoFuture), HttpError>> + Send>;

impl WasiHttpHooks for GateHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> ResponseFuture {
        let scope = self.scope.clone();
        Box::new(async move {
            drop(fut);
            scope.send_or_queue(request, options).await
        })
    }
}

impl CallScope {
    /// Send `request` as [`CallScope::send`] does; a request to a secret
    /// that fails before it leaves the host goes to the outbox, when one
    /// is configured, and the guest gets `202 Accepted`.
    async fn send_or_queue(
        &self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
    ) -> Result<(http::Response<WasiBody>, IoFuture), HttpError> {
        let host = request
            .uri()
            .host()
            .unwrap_or_default()
            .to_ascii_lowercase();
        let secret_name = secret::reserved_name(&host).map(str::to_string);
        let (Some(outbox), Some(name)) = (&self.outbox, secret_name) else {
            return self.send(request, options).await;
        };
        if self.ctx.dry_run {
            return self.send(request, options).await;
        }
        let (parts, body) = request.into_parts();
        let body = match outbox::buffer_body(body, self.outbox_body_limit).await? {
            outbox::QueuedBody::Whole(bytes) => bytes,
            outbox::QueuedBody::TooLarge(body) => {
                tracing::debug!(plugin = %self.manifest.name, secret = %name, "request body over the outbox limit; it will not be queued");
                return self
                    .send(http::Request::from_parts(parts, body), options)
                    .await;
            }
        };
        let method = parts.method.as_str().to_ascii_uppercase();
        let headers: Vec<(String, String)> = outbox::KEPT_HEADERS
            .iter()
            .filter_map(|h| {
                let v = parts.headers.get(*h)?.to_str().ok()?;
                Some(((*h).to_string(), v.to_string()))
            })
            .collect();
        let full = http_body_util::Full::new(body.clone())
            .map_err(|never| match never {})
            .boxed_unsync();
        let error = match self
            .send(http::Request::from_parts(parts, full), options)
            .await
        {
            Err(e) if outbox::connection_phase(&e) => e,
            other => return other,
        };
        let reason = error.to_string();
        let now = std::time::SystemTime::now();
        let entry = outbox::OutboxEntry {
            id: outbox::new_id(),
            secret: name.clone(),
            method,
            headers,
            body: body.to_vec(),
            plugin: self.manifest.name.clone(),
            plugin_version: self.manifest.version.clone(),
            effect: self.manifest.effect,
            task_id: self.ctx.task_id.clone(),
            step_id: self.ctx.step_id.clone(),
            created_ms: outbox::millis(now),
            attempts: 0,
            next_at_ms: outbox::millis(now + self.retry.delay(1)),
            last_error: reason.clone(),
        };
        if let Err(e) = outbox.put(&entry) {
            tracing::warn!(plugin = %self.manifest.name, secret = %name, error = %e, "could not queue the request in the outbox");
            return Err(error);
        }
        tracing::info!(
            plugin = %self.manifest.name,
            task = %self.ctx.task_id,
            step = %self.ctx.step_id,
            secret = %name,
            outbox_id = %entry.id,
            %reason,
            "destination unreachable; request queued in the outbox"
        );
        outbox::queued_response(&entry.id, &name, &reason)
    }

    /// Decide and send one request: the gate, then the approved
    /// addresses, with a secret's answer scrubbed.
    pub(crate) async fn send(
        &self,
        mut request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
    ) -> Result<(http::Response<WasiBody>, IoFuture), HttpError> {
        let (info, destination) = self.authorize_http(&mut request).await?;
        let secret_name =
            secret::reserved_name(&info.host.to_ascii_lowercase()).map(str::to_string);
        let redact = |e| match &secret_name {
            Some(name) => secret::redact_error(e, name),
            None => e,
        };
        let cap = self.timeout;
        let options = options.unwrap_or_default();
        let timeouts = Timeouts {
            connect: options.connect_timeout.unwrap_or(cap).min(cap),
            first_byte: options.first_byte_timeout.unwrap_or(cap).min(cap),
            between_bytes: options.between_bytes_timeout.unwrap_or(cap).min(cap),
        };
        // Connect to the addresses the gate saw, so a DNS answer that
        // changes between the check and the connection cannot redirect
        // the request; TLS still verifies the certificate for the name.
        let tls = if destination.https {
            let name = ServerName::try_from(destination.host)
                .map_err(|e| redact(HttpError::InvalidDnsNameError(e)))?;
            Some((name, self.tls.clone()))
        } else {
            None
        };
        let target = Target {
            addrs: &info.resolved,
            port: destination.port,
            tls,
            label: &info.host,
        };
        let (res, io) = outbound::send(request, target, timeouts)
            .await
            .map_err(redact)?;
        if secret_name.is_some() {
            // A webhook may quote its own URL (a 404 page with the
            // path): the guest gets the answer with the secret scrubbed.
            return outbound::scrubbed(res, io, &self.scrub)
                .await
                .map_err(redact);
        }
        Ok((res, io))
    }
}
/// Caps linear memory and remembers whether the cap was hit, so a guest
/// that aborts after a failed allocation is reported as `MemoryLimit`.
pub(crate) struct Limiter {
    pub memory_limit: usize,
    pub memory_hit: bool,
    pub table_elements: usize,
}

impl wasmtime::ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_limit {
            self.memory_hit = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= self.table_elements)
    }
}

/// The `T` of `Store<T>` for one call.
pub(crate) struct State {
    pub wasi: WasiCtx,
    pub http: WasiHttpCtx,
    pub table: ResourceTable,
    pub hooks: GateHooks,
    pub limiter: Limiter,
    pub scope: Arc<CallScope>,
    pub stderr: MemoryOutputPipe,
    pub logs_left: usize,
}

impl State {
    pub fn new(scope: Arc<CallScope>, limits: &crate::SandboxConfig) -> Self {
        let stderr = MemoryOutputPipe::new(16 << 10);
        // No preopens, no environment, no arguments, no network: the guest
        // reaches the outside only through the gated imports.
        let wasi = WasiCtx::builder()
            .stdout(MemoryOutputPipe::new(16 << 10))
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .socket_addr_check(|_, _| Box::pin(async { false }))
            .build();
        State {
            wasi,
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            hooks: GateHooks {
                scope: scope.clone(),
            },
            limiter: Limiter {
                memory_limit: limits.memory_limit,
                memory_hit: false,
                table_elements: limits.max_table_elements as usize,
            },
            scope,
            stderr,
            logs_left: limits.log_records_per_call,
        }
    }

    /// The guest's last stderr output (a Rust panic message lands here).
    pub fn stderr_tail(&self) -> String {
        let bytes = self.stderr.contents();
        let text = String::from_utf8_lossy(&bytes);
        let text = text.trim();
        let start = text
            .char_indices()
            .rev()
            .nth(2000)
            .map(|(i, _)| i)
            .unwrap_or(0);
        text[start..].to_string()
    }
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for State {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

impl types::Host for State {}

impl log::Host for State {
    fn log(&mut self, level: log::Level, message: String, fields: Vec<(String, String)>) {
        if self.logs_left == 0 {
            return;
        }
        self.logs_left -= 1;
        let plugin = self.scope.manifest.name.as_str();
        let scrub = &self.scope.scrub;
        let message: String = message.chars().take(4096).collect();
        let message = scrub.text(&message);
        let fields: Vec<(String, String)> = fields
            .into_iter()
            .take(32)
            .map(|(k, v)| (scrub.text(&k).into_owned(), scrub.text(&v).into_owned()))
            .collect();
        match level {
            log::Level::Trace => {
                tracing::trace!(target: "warden::plugin", plugin, ?fields, "{message}")
            }
            log::Level::Debug => {
                tracing::debug!(target: "warden::plugin", plugin, ?fields, "{message}")
            }
            log::Level::Info => {
                tracing::info!(target: "warden::plugin", plugin, ?fields, "{message}")
            }
            log::Level::Warn => {
                tracing::warn!(target: "warden::plugin", plugin, ?fields, "{message}")
            }
            log::Level::Error => {
                tracing::error!(target: "warden::plugin", plugin, ?fields, "{message}")
            }
        }
    }
}

impl kv::Host for State {
    fn get(&mut self, key: String) -> Result<Option<Vec<u8>>, String> {
        let scope = self.scope.clone();
        scope.kv_check(CapabilityUse::KvRead { key: key.clone() })?;
        let map = scope.kv.lock().map_err(|_| "key-value store is poisoned")?;
        Ok(map.get(&key).cloned())
    }

    fn set(&mut self, key: String, value: Vec<u8>) -> Result<(), String> {
        let scope = self.scope.clone();
        scope.kv_check(CapabilityUse::KvWrite { key: key.clone() })?;
        if value.len() > scope.kv_max_value {
            return Err(format!(
                "value of {} bytes exceeds the key-value limit of {} bytes",
                value.len(),
                scope.kv_max_value
            ));
        }
        let mut map = scope.kv.lock().map_err(|_| "key-value store is poisoned")?;
        if !map.contains_key(&key) && map.len() >= scope.kv_max_keys {
            return Err(format!(
                "key-value store is full ({} keys)",
                scope.kv_max_keys
            ));
        }
        map.insert(key, value);
        Ok(())
    }

    fn delete(&mut self, key: String) -> Result<(), String> {
        let scope = self.scope.clone();
        scope.kv_check(CapabilityUse::KvWrite { key: key.clone() })?;
        let mut map = scope.kv.lock().map_err(|_| "key-value store is poisoned")?;
        map.remove(&key);
        Ok(())
    }
}
