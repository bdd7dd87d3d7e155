use crate::support::*;

#[test]
fn policy_test_runs_the_default_bundle_tests_and_passes() {
    let plugins = plugin_dir();
    let (out, stdout, stderr) = run(warden(plugins.path()).args(["policy", "test", "policies"]));
    assert!(out.status.success(), "{stdout}\n{stderr}");
}

#[test]
fn policy_check_rejects_a_broken_bundle_naming_file_and_line() {
    let plugins = plugin_dir();
    let bad = tempfile::tempdir().unwrap();
    fs_err::write(
        bad.path().join("broken.rego"),
        "package warden\n\ncall := {\"allow\": true\n",
    )
    .unwrap();
    let (out, _, stderr) = run(warden(plugins.path())
        .args(["policy", "check"])
        .arg(bad.path()));
    assert!(!out.status.success());
    assert!(stderr.contains("broken.rego"), "{stderr}");
}

#[test]
fn mutating_plugin_in_prod_needs_approval_and_runs_once_approved() {
    let plugins = plugin_dir();
    let guest = test_plugins_artifacts::KV_COUNTER;
    let (out, _, stderr) =
        run(warden(plugins.path())
            .args(["plugin", "call", guest, "--env", "prod", "--input", "{}"]));
    assert!(!out.status.success());
    assert!(stderr.contains("needs approval"), "{stderr}");
    assert!(stderr.contains("--approve"), "{stderr}");

    // Approved by the OS user on behalf of someone else (approving your
    // own call in prod is refused: see trust.rs).
    let (out, stdout, stderr) = run(warden(plugins.path()).args([
        "plugin",
        "call",
        guest,
        "--env",
        "prod",
        "--approve",
        "--principal",
        "on-call-bot",
        "--input",
        "{}",
    ]));
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("\"result\": \"1\""), "{stdout}");
}
