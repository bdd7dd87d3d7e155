//! `warden logs templates`: the miner on files and standard input.

use std::io::Write as _;
use std::process::Stdio;

use serde_json::Value;

use crate::support::{plugin_dir, run, warden};

fn log_file(dir: &std::path::Path) -> std::path::PathBuf {
    let mut text = String::new();
    for i in 0..300 {
        text.push_str(&format!(
            "2024-05-01 10:00:{:02} INFO db.Pool: Opened connection {i} to 10.0.0.{}:5432\n",
            i % 60,
            i % 200
        ));
    }
    text.push_str("2024-05-01 10:01:00 WARN disk.Watch: Disk /var/lib/pg is 91% full\n");
    text.push_str(&format!("{}\n", "x".repeat(100 * 1024)));
    text.push_str("\u{1b}[2J evil \u{1b}]0;title\u{7} line\n");
    let path = dir.join("app.log");
    fs_err::write(&path, text).unwrap();
    path
}

#[test]
fn templates_of_a_file_are_counted_most_common_first() {
    let dir = plugin_dir();
    let log = log_file(dir.path());
    let (out, stdout, stderr) = run(warden(dir.path())
        .args(["--json", "logs", "templates"])
        .arg(&log));
    assert!(out.status.success(), "{stderr}");
    let v: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["lines"], 303);
    assert_eq!(v["cut_lines"], 1, "the 100 KiB line was cut, not refused");
    assert_eq!(v["shown"][0]["text"], "Opened connection <*> to <*>");
    assert_eq!(v["shown"][0]["count"], 300);
    assert!(
        v["shown"].as_array().unwrap().iter().any(|t| t["text"]
            .as_str()
            .unwrap()
            .starts_with("Disk <*> is <*> full")),
        "{v}"
    );
}

#[test]
fn standard_input_works_and_escape_sequences_never_reach_the_terminal() {
    let dir = plugin_dir();
    let log = fs_err::read(log_file(dir.path())).unwrap();
    let mut child = warden(dir.path())
        .args(["logs", "templates", "-", "--top", "0"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&log).unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with("303 lines"), "{stdout}");
    assert!(stdout.contains("Opened connection <*> to <*>"), "{stdout}");
    assert!(!stdout.contains('\u{1b}'), "no raw escape: {stdout:?}");
    assert!(!stdout.contains('\u{7}'), "no raw bell: {stdout:?}");
}

#[test]
fn exact_refines_and_a_bad_similarity_is_refused() {
    let dir = plugin_dir();
    let log = log_file(dir.path());
    let (out, stdout, _) = run(warden(dir.path())
        .args(["--json", "logs", "templates", "--exact"])
        .arg(&log));
    assert!(out.status.success());
    let v: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["shown"][0]["count"], 300);
    let (out, _, stderr) = run(warden(dir.path())
        .args(["logs", "templates", "--similarity", "3"])
        .arg(&log));
    assert!(!out.status.success());
    assert!(
        stderr.contains("--similarity must be between 0 and 1"),
        "{stderr}"
    );
    let (out, _, stderr) = run(warden(dir.path()).args(["logs", "templates", "/no/such/file"]));
    assert!(!out.status.success());
    assert!(stderr.contains("/no/such/file"), "{stderr}");
}
