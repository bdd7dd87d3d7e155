use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

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

/// A loopback HTTP server that answers `200 hello` and counts connections;
/// it stops after `max` connections or when dropped.
pub struct Loopback {
    pub port: u16,
    pub connections: Arc<AtomicUsize>,
}

impl Loopback {
    pub fn start(max: usize) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(AtomicUsize::new(0));
        let seen = connections.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().take(max) {
                let Ok(mut stream) = stream else { break };
                seen.fetch_add(1, Ordering::SeqCst);
                stream.set_read_timeout(Some(Duration::from_secs(5))).ok();
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf);
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello",
                );
            }
        });
        Loopback { port, connections }
    }

    pub fn count(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}
