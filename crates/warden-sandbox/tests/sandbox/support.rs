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

/// One request as a [`Receiver`] read it.
#[derive(Debug, Clone)]
pub struct Received {
    pub request_line: String,
    /// Names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// A loopback HTTP/1.1 server that records whole requests (length-delimited
/// or chunked, at most 1 MiB) and answers each with `status` and `body`; it
/// stops after `max` connections.
pub struct Receiver {
    pub port: u16,
    requests: Arc<std::sync::Mutex<Vec<Received>>>,
}

impl Receiver {
    pub fn start(max: usize, status: u16, body: &'static str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().take(max) {
                let Ok(mut stream) = stream else { break };
                stream.set_read_timeout(Some(Duration::from_secs(5))).ok();
                if let Some(r) = read_request(&stream) {
                    seen.lock().unwrap().push(r);
                }
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} Answer\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Receiver { port, requests }
    }

    pub fn requests(&self) -> Vec<Received> {
        self.requests.lock().unwrap().clone()
    }
}

fn read_request(stream: &std::net::TcpStream) -> Option<Received> {
    use std::io::BufRead;
    let mut r = std::io::BufReader::new(stream.try_clone().ok()?).take(2 << 20);
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    let request_line = line.trim_end().to_string();
    let mut headers = Vec::new();
    loop {
        line.clear();
        r.read_line(&mut line).ok()?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let find = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v): &(String, String)| v.clone())
    };
    let mut body = Vec::new();
    if find("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        loop {
            line.clear();
            r.read_line(&mut line).ok()?;
            let size = usize::from_str_radix(line.trim().split(';').next()?, 16).ok()?;
            if size == 0 {
                line.clear();
                let _ = r.read_line(&mut line);
                break;
            }
            let mut chunk = vec![0; size.min(1 << 20)];
            r.read_exact(&mut chunk).ok()?;
            body.extend_from_slice(&chunk);
            line.clear();
            r.read_line(&mut line).ok()?;
        }
    } else if let Some(len) = find("content-length").and_then(|v| v.parse::<usize>().ok()) {
        body = vec![0; len.min(1 << 20)];
        r.read_exact(&mut body).ok()?;
    }
    Some(Received {
        request_line,
        headers,
        body,
    })
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
