use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A plugin directory holding copies of the shipped plugins.
pub fn plugin_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for path in test_plugins_artifacts::PLUGINS {
        let name = Path::new(path).file_name().unwrap();
        fs_err::copy(path, dir.path().join(name)).unwrap();
    }
    dir
}

/// The `warden` binary, with its host key and default journal kept in the
/// test's plugin directory (never the user's own).
pub fn warden(plugin_dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_warden"));
    cmd.current_dir(repo())
        .env("NO_COLOR", "1")
        .env("WARDEN_KEY_FILE", plugin_dir.join("key/host.key"))
        .env("WARDEN_JOURNAL", plugin_dir.join("journal/journal.jsonl"))
        .env_remove("WARDEN_ENV")
        .env_remove("WARDEN_POLICY")
        .arg("--plugin-dir")
        .arg(plugin_dir);
    cmd
}

pub fn run(cmd: &mut Command) -> (Output, String, String) {
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out, stdout, stderr)
}

/// Serves `max` requests on 127.0.0.1 with `200 {"status":"ok"}`.
pub fn loopback(max: usize) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(max) {
            let Ok(mut stream) = stream else { break };
            stream.set_read_timeout(Some(Duration::from_secs(5))).ok();
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let body = br#"{"status":"ok"}"#;
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(body);
        }
    });
    port
}

/// A copy of the shipped policy bundle in `dir/policies`, its
/// `warden.config` data merged with `config`.
pub fn bundle(dir: &Path, config: serde_json::Value) -> PathBuf {
    let src = repo().join("policies");
    let dst = dir.join("policies");
    fs_err::create_dir_all(&dst).unwrap();
    for entry in fs_err::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "rego") {
            fs_err::copy(&path, dst.join(path.file_name().unwrap())).unwrap();
        }
    }
    let mut data: serde_json::Value =
        serde_json::from_str(&fs_err::read_to_string(src.join("data.json")).unwrap()).unwrap();
    merge(&mut data["warden"]["config"], config);
    fs_err::write(dst.join("data.json"), data.to_string()).unwrap();
    dst
}

fn merge(into: &mut serde_json::Value, from: serde_json::Value) {
    match (into, from) {
        (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k).or_insert(serde_json::Value::Null), v);
            }
        }
        (slot, v) => *slot = v,
    }
}

/// Counts requests on 127.0.0.1 and answers each `200 {"status":"ok"}`;
/// stops after `max`.
pub fn counting_loopback(max: usize) -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = count.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(max) {
            let Ok(mut stream) = stream else { break };
            stream.set_read_timeout(Some(Duration::from_secs(5))).ok();
            let mut buf = [0u8; 4096];
            if stream.read(&mut buf).unwrap_or(0) > 0 {
                seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            let body = br#"{"status":"ok"}"#;
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(body);
        }
    });
    (port, count)
}
