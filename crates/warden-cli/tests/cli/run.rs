use crate::support::{loopback, plugin_dir, run, warden};

const RUNBOOK: &str = r#"
name: probe-it
match: {labels: {alertname: ProbeMe}}
steps:
  - id: probe
    tool: http-probe
    verify: true
    args: {url: "{{ alert.annotations.url }}", expect_status: [200]}
summary: "probe said {{ steps.probe.output.status }}"
"#;

fn alert(port: u16) -> String {
    warden_fakes::webhook::alertmanager(
        serde_json::json!({"alertname": "ProbeMe", "severity": "warning"}),
        serde_json::json!({"summary": "probe me", "url": format!("http://127.0.0.1:{port}/health")}),
    )
    .to_string()
}

fn no_llm(cmd: &mut std::process::Command) -> &mut std::process::Command {
    for v in [
        "WARDEN_LLM_BASE_URL",
        "WARDEN_LLM_MODEL",
        "OPENAI_API_KEY",
        "AZURE_OPENAI_ENDPOINT",
        "WARDEN_JOURNAL",
        "WARDEN_RUNBOOKS",
    ] {
        cmd.env_remove(v);
    }
    cmd
}

#[test]
fn run_resolves_an_alert_from_a_runbook_and_the_journal_verifies_and_shows_it() {
    let plugins = plugin_dir();
    let tmp = tempfile::tempdir().unwrap();
    let books = tmp.path().join("runbooks");
    fs_err::create_dir(&books).unwrap();
    fs_err::write(books.join("probe.yaml"), RUNBOOK).unwrap();
    let alert_file = tmp.path().join("alert.json");
    let server = loopback();
    fs_err::write(&alert_file, alert(server.port())).unwrap();
    let journal = tmp.path().join("journal.jsonl");

    let (out, stdout, stderr) = run(no_llm(
        warden(plugins.path())
            .args([
                "--json",
                "run",
                "--env",
                "dev",
                "--task-id",
                "t-cli",
                "--alert",
            ])
            .arg(&alert_file)
            .arg("--runbooks")
            .arg(&books)
            .arg("--journal")
            .arg(&journal),
    ));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stderr.contains("no LLM configured"), "{stderr}");
    let outcome: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(outcome["status"], "resolved");
    assert_eq!(outcome["summary"], "probe said 200");

    let (out, stdout, _) = run(warden(plugins.path())
        .args(["journal", "verify"])
        .arg(&journal));
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("keyed chain intact"), "{stdout}");
    let (out, stdout, _) = run(warden(plugins.path())
        .args(["journal", "show", "t-cli", "--journal"])
        .arg(&journal));
    assert!(out.status.success());
    assert!(stdout.contains("plan by runbook:probe-it"), "{stdout}");
    assert!(stdout.contains("outcome: RESOLVED"), "{stdout}");

    // Edit the outcome after the fact: verify names the record.
    let text = fs_err::read_to_string(&journal).unwrap();
    fs_err::write(&journal, text.replace("probe said 200", "probe said 500")).unwrap();
    let (out, stdout, _) = run(warden(plugins.path())
        .args(["journal", "verify"])
        .arg(&journal));
    assert!(!out.status.success());
    assert!(
        stdout.contains("Edited") && stdout.contains("outcome"),
        "{stdout}"
    );
}

#[test]
fn run_without_a_matching_runbook_is_refused_with_the_reason() {
    let plugins = plugin_dir();
    let tmp = tempfile::tempdir().unwrap();
    let books = tmp.path().join("runbooks");
    fs_err::create_dir(&books).unwrap();
    fs_err::write(books.join("probe.yaml"), RUNBOOK).unwrap();
    let (out, stdout, stderr) = run(no_llm(
        warden(plugins.path())
            .args(["run", "--goal", "make coffee", "--runbooks"])
            .arg(&books)
            .arg("--journal")
            .arg(tmp.path().join("j.jsonl")),
    ));
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stdout.contains("REFUSED"), "{stdout}");
    assert!(stdout.contains("none of 1 runbooks matches"), "{stdout}");
}

#[test]
fn run_with_a_broken_runbook_names_the_file_and_line() {
    let plugins = plugin_dir();
    let tmp = tempfile::tempdir().unwrap();
    let books = tmp.path().join("runbooks");
    fs_err::create_dir(&books).unwrap();
    fs_err::write(
        books.join("bad.yaml"),
        "name: bad\nsteps:\n  - id: x\n    tool: nope\n",
    )
    .unwrap();
    let (out, _, stderr) = run(no_llm(
        warden(plugins.path())
            .args(["run", "--goal", "x", "--runbooks"])
            .arg(&books)
            .arg("--journal")
            .arg(tmp.path().join("j.jsonl")),
    ));
    assert!(!out.status.success());
    assert!(
        stderr.contains("bad.yaml:3: step `x`: unknown tool `nope`"),
        "{stderr}"
    );
}
