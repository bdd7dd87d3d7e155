//! The CLI takes the one authorized, journaled path: `plugin call` is
//! journaled, environments are the bundle's, approvals are the OS user's
//! and limits hold across processes.

use std::path::Path;

use crate::support::{bundle, loopback, plugin_dir, run, warden};

fn action(port: u16) -> String {
    format!(
        r#"{{"url":"http://127.0.0.1:{port}/admin/restart","body":{{"action":"restart-pool"}}}}"#
    )
}

/// `plugin call http-action` against `port`, with a journal in `dir`.
fn call_action(
    plugins: &Path,
    policy: &Path,
    journal: &Path,
    port: u16,
    extra: &[&str],
) -> std::process::Output {
    let mut cmd = warden(plugins);
    cmd.args([
        "plugin",
        "call",
        "http-action",
        "--input",
        &action(port),
        "--policy",
    ])
    .arg(policy)
    .arg("--journal")
    .arg(journal)
    .args(extra);
    cmd.output().unwrap()
}

fn loopback_everywhere(dir: &Path) -> std::path::PathBuf {
    let lo = serde_json::json!(["127.0.0.0/8"]);
    bundle(
        dir,
        serde_json::json!({"network": {"allowed_private_cidrs": {"dev": lo, "staging": lo, "prod": lo}}}),
    )
}

#[test]
fn plugin_call_is_journaled_with_the_os_user_as_approver() {
    let plugins = plugin_dir();
    let tmp = tempfile::tempdir().unwrap();
    let policy = loopback_everywhere(tmp.path());
    let journal = tmp.path().join("j/journal.jsonl");
    let server = loopback();
    let port = server.port();
    let out = call_action(
        plugins.path(),
        &policy,
        &journal,
        port,
        &[
            "--env",
            "prod",
            "--approve",
            "--principal",
            "alice",
            "--task",
            "c-1",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(server.hits(), 1);
    let (out, stdout, _) = run(warden(plugins.path())
        .args(["journal", "show", "c-1", "--journal"])
        .arg(&journal));
    assert!(out.status.success(), "{stdout}");
    let me = whoami();
    assert!(
        stdout.contains(&format!("approved by {me} for alice")),
        "{stdout}"
    );
    for kind in [
        "policy 1 `http-action`",
        "capability 1 `http-action` http",
        "call 1 `http-action`",
        "outcome: RESOLVED",
    ] {
        assert!(stdout.contains(kind), "missing {kind}: {stdout}");
    }
    let (out, stdout, _) = run(warden(plugins.path())
        .args(["journal", "verify"])
        .arg(&journal));
    assert!(out.status.success(), "{stdout}");
}

fn whoami() -> String {
    let out = std::process::Command::new("id")
        .arg("-un")
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn approving_your_own_call_in_prod_is_refused() {
    let plugins = plugin_dir();
    let tmp = tempfile::tempdir().unwrap();
    let policy = loopback_everywhere(tmp.path());
    let server = loopback();
    let port = server.port();
    // No --principal: the principal is the OS user, who also approves.
    let out = call_action(
        plugins.path(),
        &policy,
        &tmp.path().join("j/journal.jsonl"),
        port,
        &["--env", "prod", "--approve"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("approval policy"), "{stderr}");
    assert!(stderr.contains("own call"), "{stderr}");
    assert_eq!(server.hits(), 0);
}

#[test]
fn other_spellings_of_prod_and_no_env_at_all_need_approval() {
    let plugins = plugin_dir();
    let tmp = tempfile::tempdir().unwrap();
    let policy = loopback_everywhere(tmp.path());
    let journal = tmp.path().join("j/journal.jsonl");
    let server = loopback();
    let port = server.port();
    for env in [
        Some("Prod"),
        Some("PROD"),
        Some("production"),
        Some("prod "),
        None,
    ] {
        let extra: Vec<&str> = env.map(|e| vec!["--env", e]).unwrap_or_default();
        let out = call_action(plugins.path(), &policy, &journal, port, &extra);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{env:?}");
        assert!(
            stderr.contains("needs approval in `prod`"),
            "{env:?}: {stderr}"
        );
    }
    let out = call_action(plugins.path(), &policy, &journal, port, &["--env", "qa"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("dev, prod, staging") || stderr.contains("known"),
        "{stderr}"
    );
    assert_eq!(server.hits(), 0);
}

#[test]
fn the_hourly_change_limit_holds_across_three_processes() {
    let plugins = plugin_dir();
    let tmp = tempfile::tempdir().unwrap();
    let lo = serde_json::json!(["127.0.0.0/8"]);
    let policy = bundle(
        tmp.path(),
        serde_json::json!({"max_mutations_per_hour": 2, "network": {"allowed_private_cidrs": {"dev": lo}}}),
    );
    let journal = tmp.path().join("j/journal.jsonl");
    let server = loopback();
    let port = server.port();
    // Three processes at once, two calls each.
    let workers: Vec<_> = (0..3)
        .map(|_| {
            let (plugins, policy, journal) = (
                plugins.path().to_path_buf(),
                policy.clone(),
                journal.clone(),
            );
            std::thread::spawn(move || {
                (0..2)
                    .map(|_| {
                        call_action(&plugins, &policy, &journal, port, &["--env", "dev"])
                            .status
                            .success()
                    })
                    .filter(|ok| *ok)
                    .count()
            })
        })
        .collect();
    let allowed: usize = workers.into_iter().map(|w| w.join().unwrap()).sum();
    assert_eq!(allowed, 2, "exactly the limit, across processes");
    assert_eq!(server.hits(), 2);
    let out = call_action(plugins.path(), &policy, &journal, port, &["--env", "dev"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("already made 2 changes"), "{stderr}");
    let (out, stdout, _) = run(warden(plugins.path())
        .args(["journal", "verify"])
        .arg(&journal));
    assert!(out.status.success(), "{stdout}");
}

#[test]
fn an_anchor_taken_earlier_catches_a_rolled_back_journal() {
    let plugins = plugin_dir();
    let tmp = tempfile::tempdir().unwrap();
    let policy = loopback_everywhere(tmp.path());
    let journal = tmp.path().join("j/journal.jsonl");
    let server = loopback();
    let port = server.port();
    assert!(
        call_action(plugins.path(), &policy, &journal, port, &["--env", "dev"])
            .status
            .success()
    );
    let old = fs_err::read(&journal).unwrap();
    let head = tmp.path().join("j/journal.jsonl.head");
    let old_head = fs_err::read(&head).unwrap();
    assert!(
        call_action(plugins.path(), &policy, &journal, port, &["--env", "dev"])
            .status
            .success()
    );
    let (out, anchor, _) = run(warden(plugins.path())
        .args(["journal", "anchor"])
        .arg(&journal));
    assert!(out.status.success());
    let parsed: serde_json::Value = serde_json::from_str(anchor.trim()).unwrap();
    assert!(parsed["records"].as_u64().unwrap() > 0);
    let (out, stdout, _) = run(warden(plugins.path())
        .args(["journal", "verify", "--anchor", anchor.trim()])
        .arg(&journal));
    assert!(out.status.success(), "{stdout}");
    // Roll back journal and head together: only the anchor notices.
    fs_err::write(&journal, old).unwrap();
    fs_err::write(&head, old_head).unwrap();
    let (out, _, _) = run(warden(plugins.path())
        .args(["journal", "verify"])
        .arg(&journal));
    assert!(out.status.success());
    let (out, stdout, _) = run(warden(plugins.path())
        .args(["journal", "verify", "--anchor", anchor.trim()])
        .arg(&journal));
    assert!(!out.status.success());
    assert!(stdout.contains("Anchor"), "{stdout}");
}

#[test]
fn two_plugins_with_one_name_are_an_error_naming_both_files() {
    let plugins = plugin_dir();
    fs_err::copy(
        plugins.path().join("http_probe.wasm"),
        plugins.path().join("zz_probe_copy.wasm"),
    )
    .unwrap();
    for args in [
        vec!["plugin", "list"],
        vec!["plugin", "call", "http-probe", "--input", "{}"],
    ] {
        let (out, _, stderr) = run(warden(plugins.path()).args(&args));
        assert!(!out.status.success(), "{args:?}");
        assert!(
            stderr.contains("two plugins are named `http-probe`"),
            "{stderr}"
        );
        assert!(
            stderr.contains("http_probe.wasm") && stderr.contains("zz_probe_copy.wasm"),
            "{stderr}"
        );
    }
}
