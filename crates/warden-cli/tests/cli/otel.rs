//! Traces over OTLP: a task, its steps, the policy decisions and the
//! sandboxed calls reach a collector as nested spans with the verdicts and
//! the bundle hash; secret values never do.

use warden_fakes::otlp::OtlpReceiver;

use crate::support::{loopback, plugin_dir, run, warden};

const RUNBOOK: &str = r#"
name: probe-it
match: {labels: {alertname: ProbeMe}}
steps:
  - id: probe
    tool: http-probe
    verify: true
    args: {url: "{{ alert.annotations.url }}", expect_status: [200]}
"#;

#[test]
fn a_run_exports_its_task_steps_decisions_and_calls_as_nested_spans() {
    let plugins = plugin_dir();
    let tmp = tempfile::tempdir().unwrap();
    let books = tmp.path().join("runbooks");
    fs_err::create_dir(&books).unwrap();
    fs_err::write(books.join("probe.yaml"), RUNBOOK).unwrap();
    let server = loopback();
    let alert = warden_fakes::webhook::alertmanager(
        serde_json::json!({"alertname": "ProbeMe", "severity": "warning"}),
        serde_json::json!({"summary": "probe me", "url": format!("http://127.0.0.1:{}/health", server.port())}),
    );
    let alert_file = tmp.path().join("alert.json");
    fs_err::write(&alert_file, alert.to_string()).unwrap();
    let collector = OtlpReceiver::start();
    let secret = "https://hooks.example.invalid/T000/B000/very-secret-token-xyz";

    let (out, stdout, stderr) = run(warden(plugins.path())
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", collector.endpoint())
        .env("WARDEN_SECRET_ONCALL", secret)
        .env_remove("WARDEN_LLM_BASE_URL")
        .env_remove("OPENAI_API_KEY")
        .env_remove("AZURE_OPENAI_ENDPOINT")
        .args(["run", "--env", "dev", "--task-id", "t-otel", "--alert"])
        .arg(&alert_file)
        .arg("--runbooks")
        .arg(&books)
        .arg("--journal")
        .arg(tmp.path().join("journal.jsonl")));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(collector.errors().is_empty(), "{:?}", collector.errors());

    let spans = collector.spans();
    let named = |name: &str| spans.iter().filter(|s| s.name == name).collect::<Vec<_>>();
    let task = named("warden.task");
    assert_eq!(task.len(), 1, "{spans:#?}");
    let task = task[0];
    assert_eq!(task.attr("task_id"), Some("t-otel"));
    assert_eq!(task.attr("env"), Some("dev"));
    assert_eq!(task.attr("status"), Some("resolved"));
    assert_eq!(task.service, "warden");

    let step = named("warden.step");
    assert_eq!(step.len(), 1);
    assert_eq!(step[0].parent, task.span_id, "a step is the task's child");
    assert_eq!(step[0].attr("tool"), Some("http-probe"));
    assert_eq!(step[0].attr("status"), Some("succeeded"));

    let calls = named("warden.sandbox.call");
    assert_eq!(calls.len(), 1);
    assert_eq!(
        calls[0].parent, step[0].span_id,
        "the call is the step's child"
    );

    let decisions = named("warden.policy.decision");
    let call_decision = decisions
        .iter()
        .find(|d| d.attr("entry") == Some("call"))
        .unwrap_or_else(|| panic!("the call decision in {decisions:#?}"));
    assert_eq!(call_decision.parent, step[0].span_id);
    assert_eq!(call_decision.attr("verdict"), Some("allow"));
    assert_eq!(call_decision.attr("bundle_hash").map(str::len), Some(64));
    assert!(
        decisions
            .iter()
            .any(|d| d.attr("entry") == Some("capability") && d.parent == calls[0].span_id),
        "each capability the call used is decided under it (call {}): {:?}",
        calls[0].span_id,
        decisions
            .iter()
            .map(|d| (d.attr("entry"), &d.parent))
            .collect::<Vec<_>>()
    );
    assert!(decisions.iter().all(|d| d.trace_id == task.trace_id));

    let raw = collector.raw();
    assert!(
        !raw.windows(b"very-secret-token".len())
            .any(|w| w == b"very-secret-token"),
        "a secret value reached the collector"
    );
}
