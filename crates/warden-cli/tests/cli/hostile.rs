//! Hostile input at the CLI's trust boundaries: whoever sends an alert can
//! put terminal escapes in it or make it huge; a file named like an input
//! can be a FIFO or `/dev/zero`.

use crate::support::{loopback, plugin_dir, run, warden};

const RUNBOOK: &str = r#"
name: probe-it
match: {labels: {alertname: ProbeMe}}
steps:
  - id: probe
    tool: http-probe
    verify: true
    args: {url: "{{ alert.annotations.url }}", expect_status: [200]}
summary: "probe said {{ steps.probe.output.status }} for {{ alert.labels.team }}"
"#;

fn books(dir: &std::path::Path) -> std::path::PathBuf {
    let books = dir.join("runbooks");
    fs_err::create_dir_all(&books).unwrap();
    fs_err::write(books.join("probe.yaml"), RUNBOOK).unwrap();
    books
}

fn no_control(text: &str) -> bool {
    !text.chars().any(|c| c.is_control() && c != '\n')
}

#[test]
fn terminal_escapes_in_an_alert_never_reach_the_terminal() {
    let plugins = plugin_dir();
    let tmp = tempfile::tempdir().unwrap();
    let server = loopback();
    // A title-setting OSC, a colour, and a CR that would overwrite the line.
    let evil = "\u{1b}]0;pwned\u{7}\u{1b}[31mred\rFAKE: OK";
    let alert = warden_fakes::webhook::alertmanager(
        serde_json::json!({"alertname": "ProbeMe", "team": evil}),
        serde_json::json!({"summary": format!("probe me {evil}"), "url": server.url("/health")}),
    );
    let alert_file = tmp.path().join("alert.json");
    fs_err::write(&alert_file, alert.to_string()).unwrap();
    let journal = tmp.path().join("j/journal.jsonl");
    let (out, stdout, stderr) = run(warden(plugins.path())
        .args(["run", "--env", "dev", "--task-id", "t-evil", "--alert"])
        .arg(&alert_file)
        .arg("--runbooks")
        .arg(books(tmp.path()))
        .arg("--journal")
        .arg(&journal)
        .env_remove("WARDEN_LLM_BASE_URL")
        .env_remove("OPENAI_API_KEY"));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        no_control(&stdout),
        "run printed a control character: {stdout:?}"
    );
    assert!(stdout.contains("\\u{1b}"), "shown escaped: {stdout}");
    for args in [
        vec!["journal", "list", "--journal"],
        vec!["journal", "show", "t-evil", "--journal"],
    ] {
        let (out, stdout, stderr) = run(warden(plugins.path()).args(&args).arg(&journal));
        assert!(out.status.success(), "{stderr}");
        assert!(
            no_control(&stdout),
            "{args:?} printed a control character: {stdout:?}"
        );
        assert!(no_control(&stderr));
    }
    // --json stays exact: the escape is there, JSON-encoded.
    let (_, stdout, _) = run(warden(plugins.path())
        .args(["--json", "journal", "show", "t-evil", "--journal"])
        .arg(&journal));
    assert!(stdout.contains("\\u001b]0;pwned"), "{stdout}");
}

#[test]
fn an_alert_over_the_size_limit_is_refused_naming_the_limit() {
    let plugins = plugin_dir();
    let tmp = tempfile::tempdir().unwrap();
    let alert_file = tmp.path().join("alert.json");
    let big = serde_json::json!({"version": "4", "alerts": [], "pad": "x".repeat(2 * 1024 * 1024)});
    fs_err::write(&alert_file, big.to_string()).unwrap();
    let (out, _, stderr) = run(warden(plugins.path())
        .args(["run", "--env", "dev", "--alert"])
        .arg(&alert_file)
        .arg("--runbooks")
        .arg(books(tmp.path()))
        .arg("--journal")
        .arg(tmp.path().join("j/journal.jsonl")));
    assert!(!out.status.success());
    assert!(stderr.contains("alert body"), "{stderr}");
    assert!(stderr.contains("limit of 1048576 bytes"), "{stderr}");
}

#[test]
fn a_fifo_or_dev_zero_given_as_input_is_refused_without_hanging() {
    let plugins = plugin_dir();
    let tmp = tempfile::tempdir().unwrap();
    let fifo = tmp.path().join("alert.json");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let zero = tmp.path().join("logs.txt");
    std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
    let (out, _, stderr) = run(warden(plugins.path())
        .args(["run", "--env", "dev", "--alert"])
        .arg(&fifo)
        .arg("--runbooks")
        .arg(books(tmp.path()))
        .arg("--journal")
        .arg(tmp.path().join("j/journal.jsonl")));
    assert!(!out.status.success());
    assert!(stderr.contains("not a regular file"), "{stderr}");
    let (out, _, stderr) = run(warden(plugins.path())
        .args(["run", "--env", "dev", "--goal", "probe", "--attach"])
        .arg(format!("logs={}", zero.display()))
        .arg("--runbooks")
        .arg(books(tmp.path()))
        .arg("--journal")
        .arg(tmp.path().join("j/journal.jsonl")));
    assert!(!out.status.success());
    assert!(stderr.contains("attachment"), "{stderr}");
}

#[test]
fn https_from_a_plugin_works_with_the_extra_ca_and_fails_cleanly_without_it() {
    use warden_fakes::tls::TestCa;
    let plugins = plugin_dir();
    let tmp = tempfile::tempdir().unwrap();
    let ca = TestCa::new();
    let ca_file = ca.write_pem(tmp.path());
    let server = warden_fakes::http::OkServer::start_tls(&ca.server_cert(&["127.0.0.1"]));
    let input = format!(r#"{{"url":"https://127.0.0.1:{}/health"}}"#, server.port());
    let call = |ca: Option<&std::path::Path>| {
        let mut cmd = warden(plugins.path());
        cmd.args([
            "plugin",
            "call",
            "http-probe",
            "--env",
            "dev",
            "--input",
            &input,
        ]);
        match ca {
            Some(ca) => cmd.env("WARDEN_EXTRA_CA_FILE", ca),
            None => cmd.env_remove("WARDEN_EXTRA_CA_FILE"),
        };
        run(&mut cmd)
    };
    let (out, stdout, stderr) = call(Some(&ca_file));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let result: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(result["status"], 200, "{result}");
    assert_eq!(server.hits(), 1);
    // Without the CA: the probe reports the failure; warden does not crash.
    let (out, stdout, stderr) = call(None);
    assert_ne!(out.status.code(), Some(101), "a panic: {stderr}");
    assert!(!stdout.contains("\"status\": 200"), "{stdout}");
    assert_eq!(server.hits(), 1, "the handshake failed before any request");
}
