use serde_json::Value;

use crate::support::*;

#[test]
fn plugin_list_shows_every_shipped_plugin() {
    let dir = plugin_dir();
    let (out, stdout, stderr) = run(warden(dir.path()).args(["plugin", "list", "--json"]));
    assert!(out.status.success(), "{stderr}");
    let list: Vec<Value> = serde_json::from_str(&stdout).unwrap();
    let mut names: Vec<&str> = list
        .iter()
        .map(|p| p["manifest"]["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "azure-deploy",
            "disk-forecast",
            "http-action",
            "http-probe",
            "log-templates",
            "metric-anomaly",
            "notify",
            "rightsize",
            "summarize"
        ]
    );
    // Every plugin publishes its input schema.
    assert!(
        list.iter()
            .all(|p| p["manifest"]["input_schema"]["type"] == "object")
    );

    let (out, stdout, _) = run(warden(dir.path()).args(["plugin", "list"]));
    assert!(out.status.success());
    assert!(stdout.starts_with("NAME"), "{stdout}");
    assert!(stdout.contains("read-only"));
}

#[test]
fn plugin_call_probes_a_loopback_service() {
    let dir = plugin_dir();
    let server = loopback();
    let port = server.port();
    let input = format!(r#"{{"url":"http://127.0.0.1:{port}/health","body_contains":"ok"}}"#);
    let (out, stdout, stderr) = run(warden(dir.path()).args([
        "plugin",
        "call",
        "http-probe",
        "--env",
        "dev",
        "--input",
        &input,
    ]));
    assert!(out.status.success(), "{stderr}");
    let result: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(result["ok"], true, "{result}");
    assert_eq!(result["status"], 200);
}

#[test]
fn plugin_call_to_cloud_metadata_is_denied_by_policy() {
    let dir = plugin_dir();
    let (out, _, stderr) = run(warden(dir.path()).args([
        "plugin",
        "call",
        "http-probe",
        "--input",
        r#"{"url":"http://169.254.169.254/latest/meta-data/"}"#,
    ]));
    assert!(!out.status.success());
    assert!(stderr.contains("denied"), "{stderr}");
    assert!(stderr.contains("169.254.169.254"), "{stderr}");
}

#[test]
fn plugin_call_rejects_input_that_violates_the_schema() {
    let dir = plugin_dir();
    let (out, _, stderr) = run(warden(dir.path()).args([
        "plugin",
        "call",
        "http-probe",
        "--input",
        r#"{"url":"http://127.0.0.1/","expect_status":"200"}"#,
    ]));
    assert!(!out.status.success());
    assert!(
        stderr.contains("does not match the tool's schema"),
        "{stderr}"
    );
    assert!(stderr.contains("/expect_status"), "{stderr}");
}

#[test]
fn plugin_call_names_unknown_plugins_and_lists_the_known_ones() {
    let dir = plugin_dir();
    let (out, _, stderr) =
        run(warden(dir.path()).args(["plugin", "call", "nope", "--input", "{}"]));
    assert!(!out.status.success());
    assert!(stderr.contains("no plugin named `nope`"), "{stderr}");
    assert!(stderr.contains("http-probe"), "{stderr}");
}

#[test]
fn plugin_inspect_prints_schemas_and_imports() {
    let dir = plugin_dir();
    let (out, stdout, stderr) =
        run(warden(dir.path()).args(["plugin", "inspect", "log-templates", "--json"]));
    assert!(out.status.success(), "{stderr}");
    let v: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["manifest"]["effect"], "read-only");
    assert!(v["manifest"]["input_schema"]["properties"]["lines"].is_object());
    let imports: Vec<&str> = v["imports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i.as_str().unwrap())
        .collect();
    assert!(
        imports.iter().all(|i| !i.starts_with("wasi:sockets")),
        "{imports:?}"
    );
}

#[test]
fn plugin_new_scaffolds_a_crate_that_passes_its_own_test() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = plugin_dir();
    let (out, _, stderr) = run(warden(dir.path())
        .env("WARDEN_PDK", repo().join("crates/warden-pdk"))
        .args(["plugin", "new", "disk-check", "--dir"])
        .arg(tmp.path()));
    assert!(out.status.success(), "{stderr}");
    let crate_dir = tmp.path().join("disk-check");
    let lib = fs_err::read_to_string(crate_dir.join("src/lib.rs")).unwrap();
    assert!(lib.contains("const NAME: &'static str = \"disk-check\""));
    // The scaffold's own tests pass (native build; shared target dir keeps reruns quick).
    let status = std::process::Command::new(env!("CARGO"))
        .args(["test", "--quiet", "--manifest-path"])
        .arg(crate_dir.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", repo().join("target/scaffold-test"))
        .status()
        .unwrap();
    assert!(status.success());
    // A second scaffold with the same name is refused.
    let (out, _, stderr) = run(warden(dir.path())
        .env("WARDEN_PDK", repo().join("crates/warden-pdk"))
        .args(["plugin", "new", "disk-check", "--dir"])
        .arg(tmp.path()));
    assert!(!out.status.success());
    assert!(stderr.contains("already exists"), "{stderr}");
}
