//! Run OPA's own Rego conformance cases through warden-policy's query
//! wrapper ([`warden_policy::RegoQuery`]) and report pass/total per folder.
//!
//! ```text
//! cargo run -p warden-policy --example opa_conformance [-- DIR]
//! ```
//!
//! `DIR` defaults to `<workspace>/../shared/data/opa-conformance` (YAML files
//! from open-policy-agent/opa `v1/test/cases/testdata`). Each failure is
//! printed with a one-line classification: `engine gap` when the engine
//! lacks a builtin or behaves differently from OPA, `harness` when the case
//! uses a feature this runner does not model.
#![allow(
    clippy::print_stdout,
    reason = "an example that reports to the terminal"
)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;
use warden_policy::RegoQuery;

#[derive(Debug, Deserialize)]
struct Suite {
    cases: Vec<Case>,
}

#[derive(Debug, Deserialize)]
struct Case {
    note: String,
    query: String,
    #[serde(default)]
    modules: Vec<String>,
    #[serde(default)]
    data: Option<serde_json::Value>,
    #[serde(default)]
    input: Option<serde_json::Value>,
    #[serde(default)]
    input_term: Option<String>,
    #[serde(default)]
    want_result: Option<serde_json::Value>,
    #[serde(default)]
    want_error: Option<String>,
    #[serde(default)]
    want_error_code: Option<String>,
    #[serde(default)]
    strict_error: Option<bool>,
    #[serde(default)]
    sort_bindings: Option<bool>,
    #[serde(default)]
    skip: Option<bool>,
}

fn main() -> anyhow::Result<()> {
    let dir = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/opa-conformance")
        });
    if !dir.is_dir() {
        println!(
            "skipping OPA conformance: {} not found (pass the folder as the first argument)",
            dir.display()
        );
        return Ok(());
    }
    let mut files = Vec::new();
    collect(&dir, &mut files)?;
    files.sort();

    let mut per_folder: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut failures = Vec::new();
    for file in &files {
        let rel = file.strip_prefix(&dir)?;
        let folder = rel
            .parent()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        let text = fs_err::read_to_string(file)?;
        let suite: Suite =
            serde_yaml_ng::from_str(&text).with_context(|| format!("{}", file.display()))?;
        for case in suite.cases {
            if case.skip == Some(true) {
                continue;
            }
            let entry = per_folder.entry(folder.clone()).or_default();
            entry.1 += 1;
            match run(&case, folder.starts_with("v0")) {
                Ok(()) => entry.0 += 1,
                Err(why) => failures.push(format!("{folder}: {}: {why}", case.note)),
            }
        }
    }

    println!("{:40} {:>5} {:>5}", "folder", "pass", "total");
    let (mut pass, mut total) = (0, 0);
    for (folder, (p, t)) in &per_folder {
        println!("{folder:40} {p:>5} {t:>5}");
        pass += p;
        total += t;
    }
    println!("{:40} {pass:>5} {total:>5}", "TOTAL");
    if !failures.is_empty() {
        println!("\nfailures:");
        for failure in &failures {
            println!("  {failure}");
        }
    }
    Ok(())
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    for entry in fs_err::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "yaml") {
            out.push(path);
        }
    }
    Ok(())
}

/// `Ok` when the engine agrees with OPA, else a classified reason.
fn run(case: &Case, rego_v0: bool) -> Result<(), String> {
    let query = RegoQuery {
        modules: case.modules.clone(),
        data: case.data.clone(),
        input: case.input.clone(),
        input_term: case.input_term.clone(),
        query: case.query.clone(),
        strict_builtin_errors: case.strict_error == Some(true),
        rego_v0,
        ..RegoQuery::default()
    };
    let wants_error = case.want_error.is_some() || case.want_error_code.is_some();
    match (query.run(), &case.want_result) {
        (Err(_), _) if wants_error => Ok(()),
        (Err(e), _) => Err(classify_error(&e.to_string())),
        (Ok(got), _) if wants_error => Err(format!(
            "engine gap: no error raised (OPA: {}), got {}",
            case.want_error_code.as_deref().unwrap_or("error"),
            serde_json::Value::Array(got)
        )),
        (Ok(got), Some(want)) => {
            let got = normalise(
                serde_json::Value::Array(got),
                case.sort_bindings == Some(true),
            );
            let want = normalise(want.clone(), case.sort_bindings == Some(true));
            if got == want {
                Ok(())
            } else {
                Err(format!(
                    "engine gap: result differs: got {got}, OPA wants {want}"
                ))
            }
        }
        (Ok(got), None) if got.is_empty() => Ok(()),
        (Ok(got), None) => Err(format!(
            "harness: the case states no expectation, got {}",
            serde_json::Value::Array(got)
        )),
    }
}

fn classify_error(message: &str) -> String {
    let line = message.split_whitespace().collect::<Vec<_>>().join(" ");
    if let Some(at) = line.find("could not find function") {
        format!("engine gap: missing builtin ({})", &line[at..])
    } else if line.contains("not supported") || line.contains("unsupported") {
        format!("engine gap: unsupported construct ({line})")
    } else {
        format!("engine gap: error where OPA returns a result ({line})")
    }
}

/// Sort arrays inside bindings when the case says order does not matter.
fn normalise(value: serde_json::Value, sort_bindings: bool) -> serde_json::Value {
    if !sort_bindings {
        return value;
    }
    match value {
        serde_json::Value::Array(results) => serde_json::Value::Array(
            results
                .into_iter()
                .map(|r| match r {
                    serde_json::Value::Object(map) => serde_json::Value::Object(
                        map.into_iter()
                            .map(|(k, v)| match v {
                                serde_json::Value::Array(mut items) => {
                                    items.sort_by_key(|i| i.to_string());
                                    (k, serde_json::Value::Array(items))
                                }
                                other => (k, other),
                            })
                            .collect(),
                    ),
                    other => other,
                })
                .collect(),
        ),
        other => other,
    }
}
