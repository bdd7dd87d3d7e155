//! `warden plugin new NAME`: scaffold a plugin crate.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};

use crate::output;

const LIB_TEMPLATE: &str = r#"//! `{{name}}`: describe what this tool does for an operator.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use warden_pdk::{Context, Tool, ToolError, export_tool};

/// The tool.
pub struct {{type}};

/// What the tool needs.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// Who to greet.
    pub name: String,
}

/// What the tool returns.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Output {
    /// The greeting.
    pub greeting: String,
}

impl Tool for {{type}} {
    type Input = Input;
    type Output = Output;
    const NAME: &'static str = "{{name}}";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "Greets someone (replace with what your tool does).";

    fn invoke(_ctx: &Context, input: Input) -> Result<Output, ToolError> {
        if input.name.trim().is_empty() {
            return Err(ToolError::InvalidInput("name is empty".into()));
        }
        Ok(Output {
            greeting: format!("hello, {}", input.name.trim()),
        })
    }
}

export_tool!({{type}});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greets_by_name() {
        let out = {{type}}::invoke(&Context::default(), Input { name: " ops ".into() }).unwrap();
        assert_eq!(out.greeting, "hello, ops");
    }

    #[test]
    fn rejects_an_empty_name() {
        let err = {{type}}::invoke(&Context::default(), Input { name: " ".into() }).unwrap_err();
        assert!(matches!(err, ToolError::InvalidInput(_)));
    }
}
"#;

pub fn scaffold(name: &str, dir: &Path, json: bool) -> anyhow::Result<ExitCode> {
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        || name.starts_with('-')
        || name.starts_with(|c: char| c.is_ascii_digit())
    {
        bail!(
            "plugin name `{name}` must start with a letter and use lowercase letters, digits and `-`"
        );
    }
    let crate_dir = dir.join(name);
    if crate_dir.exists() {
        bail!("{} already exists", crate_dir.display());
    }
    let pdk = find_pdk(dir)?;
    let workspace = dir.join("Cargo.toml");
    let in_workspace =
        workspace.is_file() && fs_err::read_to_string(&workspace)?.contains("[workspace]");
    let type_name: String = name
        .split('-')
        .map(|part| {
            let mut c = part.chars();
            match c.next() {
                Some(f) => f.to_ascii_uppercase().to_string() + c.as_str(),
                None => String::new(),
            }
        })
        .collect();
    let pdk_rel = relative(&pdk, &crate_dir);
    let cargo_toml = format!(
        r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"
publish = false

[lib]
crate-type = ["cdylib", "rlib"]

[dependencies]
warden-pdk = {{ path = "{pdk}" }}
serde = {{ version = "1", features = ["derive"] }}
schemars = "1.0"
{workspace}"#,
        pdk = pdk_rel.display(),
        workspace = if in_workspace { "" } else { "\n[workspace]\n" },
    );
    fs_err::create_dir_all(crate_dir.join("src"))?;
    fs_err::write(crate_dir.join("Cargo.toml"), cargo_toml)?;
    fs_err::write(
        crate_dir.join("src/lib.rs"),
        LIB_TEMPLATE
            .replace("{{name}}", name)
            .replace("{{type}}", &type_name),
    )?;
    if in_workspace {
        add_member(&workspace, name)?;
    }
    if json {
        output::json(
            &serde_json::json!({"name": name, "path": crate_dir, "workspace_member": in_workspace}),
        )?;
    } else {
        println!("created {}", crate_dir.display());
    }
    eprintln!(
        "hint: `cargo test --manifest-path {0}/Cargo.toml` runs its test; `warden plugin build{1}` builds it",
        crate_dir.display(),
        if in_workspace {
            format!(" --source {}", dir.display())
        } else {
            String::new()
        }
    );
    Ok(ExitCode::SUCCESS)
}

/// The PDK crate: beside the plugins workspace in a warden checkout, or
/// named by WARDEN_PDK.
fn find_pdk(dir: &Path) -> anyhow::Result<PathBuf> {
    if let Some(p) = std::env::var_os("WARDEN_PDK") {
        return Ok(PathBuf::from(p));
    }
    let start = std::path::absolute(dir).context("resolving the target directory")?;
    for ancestor in start.ancestors() {
        let candidate = ancestor.join("crates/warden-pdk");
        if candidate.join("Cargo.toml").is_file() {
            return Ok(candidate);
        }
    }
    bail!(
        "cannot find crates/warden-pdk above {}\nhint: set WARDEN_PDK to the warden-pdk crate directory",
        dir.display()
    )
}

fn relative(target: &Path, from: &Path) -> PathBuf {
    let from = std::path::absolute(from).unwrap_or_else(|_| from.to_path_buf());
    let target = std::path::absolute(target).unwrap_or_else(|_| target.to_path_buf());
    let common = from
        .components()
        .zip(target.components())
        .take_while(|(a, b)| a == b)
        .count();
    let mut rel = PathBuf::new();
    for _ in from.components().skip(common) {
        rel.push("..");
    }
    for c in target.components().skip(common) {
        rel.push(c);
    }
    rel
}

fn add_member(workspace: &Path, name: &str) -> anyhow::Result<()> {
    let text = fs_err::read_to_string(workspace)?;
    let mut doc: toml_edit::DocumentMut = text
        .parse()
        .with_context(|| format!("parsing {}", workspace.display()))?;
    let members = doc["workspace"]["members"]
        .or_insert(toml_edit::Item::Value(toml_edit::Value::Array(
            toml_edit::Array::new(),
        )))
        .as_array_mut()
        .with_context(|| format!("{}: workspace.members is not an array", workspace.display()))?;
    if !members.iter().any(|m| m.as_str() == Some(name)) {
        members.push(name);
    }
    fs_err::write(workspace, doc.to_string())?;
    Ok(())
}
