//! Loading a bundle folder into a prepared regorus engine.

use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::analysis::{self, ModuleInfo};
use crate::compiled::CompiledEntries;
use crate::decision::Entry;
use crate::env::{self, Environments};
use crate::error::PolicyError;
use crate::limits::{self, Limits};

/// What a loaded bundle holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BundleSummary {
    /// The bundle folder.
    pub dir: PathBuf,
    /// SHA-256 (hex) over the sorted names and contents of the policy and
    /// data files (test files excluded) plus any data overlay.
    pub hash: String,
    /// Policy files, relative to `dir`.
    pub policy_files: Vec<PathBuf>,
    /// Test files (`*_test.rego`), relative to `dir`.
    pub test_files: Vec<PathBuf>,
    /// Data files, relative to `dir`.
    pub data_files: Vec<PathBuf>,
    /// Packages the policy files declare (`data.warden`).
    pub packages: Vec<String>,
    /// Entry points the policy files do not define; each denies every
    /// decision it is asked for.
    pub missing_entries: Vec<Entry>,
    /// Whether decisions run on regorus's compiled engine; `false` means the
    /// slower interpreter (the bundle uses a construct the compiler lacks,
    /// or the embedder turned it off).
    pub compiled: bool,
}

/// How to load a bundle.
#[derive(Debug, Clone)]
pub(crate) struct LoadOptions {
    pub dir: PathBuf,
    pub timeout: Duration,
    pub overlay: Option<serde_json::Value>,
    pub max_instructions: usize,
    pub max_builtin_elements: usize,
    pub max_builtin_bytes: usize,
    pub use_compiled: bool,
}

impl LoadOptions {
    pub(crate) fn limits(&self) -> Limits {
        Limits::new(
            self.max_builtin_elements,
            self.max_builtin_bytes,
            self.timeout,
        )
    }

    pub(crate) fn new(dir: &Path, timeout: Duration) -> Self {
        LoadOptions {
            dir: dir.to_path_buf(),
            timeout,
            overlay: None,
            max_instructions: crate::DEFAULT_MAX_INSTRUCTIONS,
            max_builtin_elements: crate::DEFAULT_MAX_BUILTIN_ELEMENTS,
            max_builtin_bytes: crate::DEFAULT_MAX_BUILTIN_BYTES,
            use_compiled: true,
        }
    }
}

/// A loaded, prepared bundle. Immutable; the engine swaps whole bundles.
#[derive(Debug)]
pub(crate) struct Bundle {
    pub summary: BundleSummary,
    /// Prepared engine; every evaluation runs on a clone.
    pub engine: regorus::Engine,
    /// The entry points compiled for the RVM, when it can run them.
    pub compiled: Option<CompiledEntries>,
    pub modules: Vec<ModuleInfo>,
    pub data: serde_json::Value,
    /// `data.warden.config.environments`, checked at load.
    pub environments: Environments,
    pub timeout: Duration,
    pub max_instructions: usize,
    /// The time budget and builtin limits of one evaluation.
    pub limits: Limits,
    /// What the folder looked like just before loading (for the watcher).
    pub fingerprint: crate::engine::Fingerprint,
}

/// Files of a bundle folder, sorted, relative to the folder.
#[derive(Debug, Default)]
pub(crate) struct BundleFiles {
    pub policies: Vec<PathBuf>,
    pub tests: Vec<PathBuf>,
    pub data: Vec<PathBuf>,
}

pub(crate) fn list_files(dir: &Path) -> Result<BundleFiles, PolicyError> {
    let mut files = BundleFiles::default();
    let mut pending = vec![PathBuf::new()];
    while let Some(rel) = pending.pop() {
        let abs = dir.join(&rel);
        let entries = fs_err::read_dir(&abs).map_err(|e| PolicyError::io(&abs, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| PolicyError::io(&abs, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let path = rel.join(&name);
            let kind = entry
                .file_type()
                .map_err(|e| PolicyError::io(dir.join(&path), e))?;
            if kind.is_dir() {
                pending.push(path);
            } else if name.ends_with("_test.rego") {
                files.tests.push(path);
            } else if name.ends_with(".rego") {
                files.policies.push(path);
            } else if matches!(name.as_str(), "data.json" | "data.yaml" | "data.yml") {
                files.data.push(path);
            }
        }
    }
    files.policies.sort();
    files.tests.sort();
    files.data.sort();
    Ok(files)
}

/// The largest policy or data file a bundle may hold: 16 MiB.
pub(crate) const MAX_BUNDLE_FILE: u64 = 16 * 1024 * 1024;

/// A bundle file's text: a regular file (symlinks followed) of at most
/// [`MAX_BUNDLE_FILE`] bytes.
fn read_bundle_file(path: &Path) -> Result<String, PolicyError> {
    let meta = fs_err::metadata(path).map_err(|e| PolicyError::io(path, e))?;
    if !meta.is_file() || meta.len() > MAX_BUNDLE_FILE {
        return Err(PolicyError::Data {
            file: path.to_path_buf(),
            message: if meta.is_file() {
                format!(
                    "{} bytes, over the limit of {MAX_BUNDLE_FILE} bytes for one bundle file",
                    meta.len()
                )
            } else {
                "not a regular file".into()
            },
        });
    }
    let mut text = String::new();
    std::io::Read::read_to_string(
        &mut std::io::Read::take(
            fs_err::File::open(path).map_err(|e| PolicyError::io(path, e))?,
            MAX_BUNDLE_FILE + 1,
        ),
        &mut text,
    )
    .map_err(|e| PolicyError::io(path, e))?;
    Ok(text)
}

/// Load `opts.dir`; with `with_tests`, the test files too (for the runner).
pub(crate) fn load(opts: &LoadOptions, with_tests: bool) -> Result<Bundle, PolicyError> {
    let dir = opts.dir.as_path();
    let fingerprint = crate::engine::fingerprint(dir);
    let files = list_files(dir)?;
    let mut hasher = Sha256::new();
    let mut engine = regorus::Engine::new();
    engine.set_rego_v0(false);
    engine.set_strict_builtin_errors(true);
    engine.set_execution_timer_config(regorus::utils::limits::ExecutionTimerConfig {
        limit: limits::wall_backstop(opts.timeout),
        check_interval: CHECK_INTERVAL,
    });
    limits::guard_engine(&mut engine, true).map_err(|message| PolicyError::Bundle {
        dir: dir.to_path_buf(),
        message,
    })?;

    let rego: Vec<&PathBuf> = if with_tests {
        files.policies.iter().chain(files.tests.iter()).collect()
    } else {
        files.policies.iter().collect()
    };
    for rel in &rego {
        let path = dir.join(rel);
        let text = read_bundle_file(&path)?;
        if !rel.to_string_lossy().ends_with("_test.rego") {
            hash_file(&mut hasher, rel, text.as_bytes());
        }
        engine
            .add_policy(path.display().to_string(), text)
            .map_err(|e| PolicyError::from_regorus(dir, &format!("{e:#}")))?;
    }

    let mut data = serde_json::Value::Object(serde_json::Map::new());
    for rel in &files.data {
        let path = dir.join(rel);
        let text = read_bundle_file(&path)?;
        hash_file(&mut hasher, rel, text.as_bytes());
        let value = parse_data(&path, &text)?;
        let mounted = mount(rel, value);
        merge_strict(&mut data, mounted, "").map_err(|message| PolicyError::Data {
            file: path.clone(),
            message,
        })?;
    }
    if let Some(overlay) = &opts.overlay {
        if !overlay.is_object() {
            return Err(PolicyError::Data {
                file: PathBuf::from("<overlay>"),
                message: "the data overlay must be an object".into(),
            });
        }
        hasher.update(b"overlay\0");
        hasher
            .update(serde_json::to_vec(&regorus::Value::from(overlay.clone())).unwrap_or_default());
        merge_override(&mut data, overlay.clone());
    }
    // Settings the host relies on too are checked here, so a malformed one
    // stops the load instead of quietly leaving an environment unprotected.
    let environments =
        Environments::from_data(&data).map_err(|message| env::load_error(dir, message))?;
    check_settings(&data).map_err(|message| env::load_error(dir, message))?;
    vouch_settings(&mut data).map_err(|message| env::load_error(dir, message))?;
    engine
        .add_data(regorus::Value::from(data.clone()))
        .map_err(|e| PolicyError::Bundle {
            dir: dir.to_path_buf(),
            message: format!("{e:#}"),
        })?;

    let modules = analysis::analyze(&mut engine).map_err(|message| PolicyError::Bundle {
        dir: dir.to_path_buf(),
        message,
    })?;
    analysis::check_recursion(&modules)?;

    // The first evaluation analyses and schedules the modules; doing it here
    // moves that cost (and its errors) to load time, and every clone of the
    // engine starts prepared.
    engine
        .eval_query("true".to_string(), false)
        .map_err(|e| PolicyError::from_regorus(dir, &format!("{e:#}")))?;

    let mut packages: Vec<String> = modules
        .iter()
        .filter(|m| !m.file.ends_with("_test.rego"))
        .map(|m| format!("data.{}", m.package.join(".")))
        .collect();
    packages.sort();
    packages.dedup();
    let missing_entries: Vec<Entry> = Entry::ALL
        .into_iter()
        .filter(|entry| {
            let want = ["warden".to_string(), entry.as_str().to_string()];
            !modules
                .iter()
                .flat_map(|m| m.rules.iter())
                .any(|r| r.path == want)
        })
        .collect();
    let present: Vec<Entry> = Entry::ALL
        .into_iter()
        .filter(|e| !missing_entries.contains(e))
        .collect();
    let compiled = if opts.use_compiled {
        match CompiledEntries::compile(
            &engine,
            &present,
            regorus::Value::from(data.clone()),
            opts.timeout,
            opts.max_instructions,
        ) {
            Ok(compiled) => Some(compiled),
            Err(reason) => {
                tracing::warn!(
                    dir = %dir.display(),
                    %reason,
                    "the compiled Rego engine cannot run this bundle; decisions use the slower interpreter"
                );
                None
            }
        }
    } else {
        None
    };

    let summary = BundleSummary {
        dir: dir.to_path_buf(),
        hash: hex::encode(hasher.finalize()),
        policy_files: files.policies,
        test_files: files.tests,
        data_files: files.data,
        packages,
        missing_entries,
        compiled: compiled.is_some(),
    };
    Ok(Bundle {
        summary,
        engine,
        compiled,
        modules,
        data,
        environments,
        timeout: opts.timeout,
        max_instructions: opts.max_instructions,
        limits: opts.limits(),
        fingerprint,
    })
}

/// Type checks of `data.warden.config` settings outside the environments:
/// the ones the bundle's own `settings_errors` would deny everything for,
/// and the ones only the host reads.
fn check_settings(data: &serde_json::Value) -> Result<(), String> {
    use serde_json::Value;
    let config = data.get("warden").and_then(|w| w.get("config"));
    if let Some(config) = config
        && !config.is_object()
    {
        return Err(format!(
            "data.warden.config must be an object, got {config}"
        ));
    }
    let setting = |name: &str| config.and_then(|c| c.get(name));
    match setting("allow_self_approval") {
        None | Some(Value::Bool(_)) => {}
        Some(other) => {
            return Err(format!(
                "data.warden.config.allow_self_approval must be true or false, got {other}"
            ));
        }
    }
    for name in [
        "max_mutations_per_hour",
        "max_mutations_per_hour_per_principal",
        "max_plan_steps",
    ] {
        if let Some(value) = setting(name)
            && !value.as_f64().is_some_and(|n| n >= 0.0)
        {
            return Err(format!(
                "data.warden.config.{name} must be a number of 0 or more, got {value}"
            ));
        }
    }
    for name in ["approval_envs", "break_glass_envs"] {
        if let Some(value) = setting(name)
            && !value
                .as_array()
                .is_some_and(|names| names.iter().all(Value::is_string))
        {
            return Err(format!(
                "data.warden.config.{name} must be a list of environment names, got {value}"
            ));
        }
    }
    if let Some(intake) = config.and_then(|c| c.get("intake")) {
        let Some(sources) = intake.as_object() else {
            return Err(format!(
                "data.warden.config.intake must be an object of sources, got {intake}"
            ));
        };
        for (source, limit) in sources {
            let per_minute = limit.get("per_minute").and_then(serde_json::Value::as_u64);
            if per_minute.is_none_or(|n| n > 1_000_000) {
                return Err(format!(
                    "data.warden.config.intake.{source} must be {{\"per_minute\": <0..1000000>}}, got {limit}"
                ));
            }
        }
    }
    Ok(())
}

/// Record the settings [`check_settings`] passed under
/// `data.warden.host.checked_config`, so the bundle's `settings_errors`
/// (which deny everything) need not run on every decision while the
/// settings are these. A bundle or overlay may not write `data.warden.host`
/// itself: it could vouch for settings nobody checked.
fn vouch_settings(data: &mut serde_json::Value) -> Result<(), String> {
    let Some(warden) = data
        .as_object_mut()
        .map(|d| d.entry("warden").or_insert_with(|| serde_json::json!({})))
    else {
        return Ok(());
    };
    let Some(warden) = warden.as_object_mut() else {
        return Err(format!("data.warden must be an object, got {warden}"));
    };
    if warden.contains_key("host") {
        return Err(
            "data.warden.host is written by warden when it loads the bundle; a data file or overlay may not set it"
                .to_string(),
        );
    }
    let checked = warden
        .get("config")
        .cloned()
        .unwrap_or_else(|| serde_json::json!({}));
    warden.insert(
        "host".to_string(),
        serde_json::json!({ "checked_config": checked }),
    );
    Ok(())
}

/// `data.warden.config.intake.<source>.per_minute`, checked at load.
pub(crate) fn intake_limit(data: &serde_json::Value, source: &str) -> Option<u32> {
    data.get("warden")?
        .get("config")?
        .get("intake")?
        .get(source)?
        .get("per_minute")?
        .as_u64()
        .and_then(|n| u32::try_from(n).ok())
}

/// `data.warden.config.mcp.dry_run_default`: a boolean for every
/// environment, or an object of environment → boolean; true when unset.
pub(crate) fn mcp_dry_run_default(data: &serde_json::Value, env: &str) -> bool {
    let Some(v) = data
        .get("warden")
        .and_then(|w| w.get("config"))
        .and_then(|c| c.get("mcp"))
        .and_then(|m| m.get("dry_run_default"))
    else {
        return true;
    };
    match v {
        serde_json::Value::Bool(b) => *b,
        serde_json::Value::Object(per_env) => per_env
            .get(env)
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(true),
        _ => true,
    }
}

/// Work units between clock reads of regorus's cooperative timer: small
/// enough that a runaway loop is caught within microseconds of its budget,
/// large enough that reading the clock stays off the profile.
const CHECK_INTERVAL: NonZeroU32 = NonZeroU32::MIN.saturating_add(63);

fn hash_file(hasher: &mut Sha256, rel: &Path, bytes: &[u8]) {
    // Forward slashes so the hash is the same on every OS.
    let name = rel.to_string_lossy().replace('\\', "/");
    hasher.update(name.as_bytes());
    hasher.update([0]);
    hasher.update((bytes.len() as u64).to_le_bytes());
    hasher.update(bytes);
}

fn parse_data(path: &Path, text: &str) -> Result<serde_json::Value, PolicyError> {
    let is_json = path.extension().is_some_and(|e| e == "json");
    let value: serde_json::Value = if is_json {
        serde_json::from_str(text).map_err(|e| PolicyError::Data {
            file: path.to_path_buf(),
            message: format!("line {}, column {}: {e}", e.line(), e.column()),
        })?
    } else {
        serde_yaml_ng::from_str(text).map_err(|e| PolicyError::Data {
            file: path.to_path_buf(),
            message: e.to_string(),
        })?
    };
    if value.is_null() {
        return Ok(serde_json::Value::Object(serde_json::Map::new()));
    }
    if !value.is_object() {
        return Err(PolicyError::Data {
            file: path.to_path_buf(),
            message: "a data file must hold an object".into(),
        });
    }
    Ok(value)
}

/// Mount a data file at its folder's path, as OPA bundles do:
/// `a/b/data.json` becomes `data.a.b`.
fn mount(rel: &Path, value: serde_json::Value) -> serde_json::Value {
    let mut value = value;
    let parents: Vec<String> = rel
        .parent()
        .map(|p| {
            p.components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    for key in parents.into_iter().rev() {
        let mut map = serde_json::Map::new();
        map.insert(key, value);
        value = serde_json::Value::Object(map);
    }
    value
}

/// Deep-merge `new` into `base`; two different leaves at one path conflict.
fn merge_strict(
    base: &mut serde_json::Value,
    new: serde_json::Value,
    at: &str,
) -> Result<(), String> {
    match (base, new) {
        (serde_json::Value::Object(base), serde_json::Value::Object(new)) => {
            for (key, value) in new {
                let path = format!("{at}.{key}");
                match base.get_mut(&key) {
                    Some(existing) => merge_strict(existing, value, &path)?,
                    None => {
                        base.insert(key, value);
                    }
                }
            }
            Ok(())
        }
        (base, new) if *base == new => Ok(()),
        _ => Err(format!(
            "data{at} is already set to a different value by another data file"
        )),
    }
}

/// Deep-merge `new` into `base`; `new` wins on conflicts.
pub(crate) fn merge_override(base: &mut serde_json::Value, new: serde_json::Value) {
    match (base, new) {
        (serde_json::Value::Object(base), serde_json::Value::Object(new)) => {
            for (key, value) in new {
                match base.get_mut(&key) {
                    Some(existing) => merge_override(existing, value),
                    None => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (base, new) => *base = new,
    }
}

/// A data path as a Rego reference: `data.a.b` or `data.a["b-c"]`.
pub(crate) fn rule_ref(path: &[String]) -> String {
    let mut text = String::from("data");
    for part in path {
        let simple = part
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if simple {
            text.push('.');
            text.push_str(part);
        } else {
            text.push('[');
            text.push_str(&serde_json::Value::String(part.clone()).to_string());
            text.push(']');
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mcp_dry_runs_default_to_true_unless_the_bundle_says_otherwise() {
        let none = serde_json::json!({});
        assert!(mcp_dry_run_default(&none, "prod"));
        let all = serde_json::json!({"warden": {"config": {"mcp": {"dry_run_default": false}}}});
        assert!(!mcp_dry_run_default(&all, "prod"));
        let per =
            serde_json::json!({"warden": {"config": {"mcp": {"dry_run_default": {"dev": false}}}}});
        assert!(!mcp_dry_run_default(&per, "dev"));
        assert!(
            mcp_dry_run_default(&per, "prod"),
            "an environment not named stays safe"
        );
        let junk = serde_json::json!({"warden": {"config": {"mcp": {"dry_run_default": "no"}}}});
        assert!(
            mcp_dry_run_default(&junk, "dev"),
            "anything but a boolean stays safe"
        );
    }

    #[test]
    fn data_files_mount_at_their_folder_path() {
        let v = mount(Path::new("a/b/data.json"), serde_json::json!({"x": 1}));
        assert_eq!(v, serde_json::json!({"a": {"b": {"x": 1}}}));
    }

    #[test]
    fn conflicting_data_files_are_rejected_but_overlays_override() {
        let mut base = serde_json::json!({"a": {"x": 1}});
        assert!(merge_strict(&mut base, serde_json::json!({"a": {"y": 2}}), "").is_ok());
        let err = merge_strict(&mut base, serde_json::json!({"a": {"x": 3}}), "").unwrap_err();
        assert!(err.contains("data.a.x"), "{err}");
        merge_override(&mut base, serde_json::json!({"a": {"x": 3}}));
        assert_eq!(base, serde_json::json!({"a": {"x": 3, "y": 2}}));
    }

    #[test]
    fn rule_refs_quote_components_that_are_not_identifiers() {
        let path = vec!["a".to_string(), "b-c".to_string()];
        assert_eq!(rule_ref(&path), r#"data.a["b-c"]"#);
    }
}
