use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub use warden_fakes::http::OkServer;

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

/// The `warden` binary, with its host key, default journal and outbox kept
/// in the test's plugin directory (never the user's own).
pub fn warden(plugin_dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_warden"));
    cmd.current_dir(repo())
        .env("NO_COLOR", "1")
        .env("WARDEN_KEY_FILE", plugin_dir.join("key/host.key"))
        .env("WARDEN_JOURNAL", plugin_dir.join("journal/journal.jsonl"))
        .env("WARDEN_OUTBOX", plugin_dir.join("outbox"))
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

/// A loopback server answering `200 {"status":"ok"}` and counting requests.
pub fn loopback() -> OkServer {
    OkServer::start()
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
