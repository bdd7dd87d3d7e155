use std::io::Write;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

pub use warden_fakes::http::{Responder, Response};
use warden_sandbox::{Plugin, Sandbox, SandboxConfig};
use warden_types::{CallContext, CapabilityGate, CapabilityRequest, GateDecision};

/// One compiled-artifact cache for the whole test binary.
pub fn cache_dir() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().unwrap()).path()
}

pub fn sandbox_with(f: impl FnOnce(&mut SandboxConfig)) -> Sandbox {
    let mut config = SandboxConfig::default();
    config
        .cache_dir(cache_dir())
        .timeout(Duration::from_secs(5));
    f(&mut config);
    Sandbox::new(&config).unwrap()
}

pub fn sandbox() -> Sandbox {
    sandbox_with(|_| {})
}

pub fn load(sandbox: &Sandbox, path: &str) -> Plugin {
    sandbox.load_file(path).unwrap()
}

pub fn ctx() -> CallContext {
    CallContext {
        task_id: "t-1".into(),
        step_id: "1".into(),
        dry_run: false,
        idempotency_key: None,
    }
}

pub fn allow_all() -> Arc<dyn CapabilityGate> {
    Arc::new(|_: &CapabilityRequest| GateDecision::Allow)
}

pub fn deny_all() -> Arc<dyn CapabilityGate> {
    Arc::new(warden_types::DenyAll)
}

/// After a hostile call, the same sandbox still serves a normal one.
pub async fn assert_still_serves(sandbox: &Sandbox) {
    let trivial = load(sandbox, test_plugins_artifacts::TRIVIAL);
    let out = trivial
        .invoke(
            &ctx(),
            &serde_json::json!({"text": "still here"}),
            deny_all(),
        )
        .await
        .unwrap();
    assert_eq!(out.output["result"], "still here");
}

/// A loopback HTTP server that answers every request with `200 hello`;
/// its `connections()` counts TCP connections, request or not.
pub fn hello_server() -> Responder {
    Responder::start(|_| Response::text(200, "hello"))
}

/// A loopback webhook that records whole requests (length-delimited or
/// chunked) and answers each with `status` and `body`.
pub fn recorder(status: u16, body: &'static str) -> Responder {
    Responder::start(move |_| Response::text(status, body))
}

/// Everything `tracing` logs on this thread until the guard drops, as
/// text; use on a current-thread runtime so the guest's calls log here.
pub fn capture_logs() -> (
    tracing::subscriber::DefaultGuard,
    Arc<std::sync::Mutex<Vec<u8>>>,
) {
    #[derive(Clone)]
    struct Sink(Arc<std::sync::Mutex<Vec<u8>>>);
    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let logs = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = Sink(logs.clone());
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || sink.clone())
        .finish();
    (tracing::subscriber::set_default(subscriber), logs)
}

/// The text of captured logs.
pub fn logs_text(logs: &std::sync::Mutex<Vec<u8>>) -> String {
    String::from_utf8_lossy(&logs.lock().unwrap()).into_owned()
}
