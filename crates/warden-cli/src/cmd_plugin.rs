//! `warden plugin …`: build, list, inspect, call and scaffold plugins.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Subcommand;
use warden::sandbox::{Plugin, Sandbox, SandboxConfig, SandboxError};
use warden::{Agent, Task, ToolCall};

use crate::output;

#[derive(Debug, Subcommand)]
pub enum PluginCmd {
    /// Compile the plugins workspace for wasm32-wasip2, copy the components
    /// into the plugin directory and precompile them.
    ///
    /// Adds the wasm32-wasip2 target with rustup when it is missing.
    Build {
        /// The plugins' Cargo workspace.
        #[arg(long, default_value = "plugins")]
        source: PathBuf,
        /// Build with the debug profile (faster to build, slower to run).
        #[arg(long)]
        debug: bool,
        /// Also precompile the plugins for this target triple (e.g.
        /// `aarch64-unknown-linux-gnu`) into <plugin-dir>/.precompiled/<target>,
        /// for `warden bundle pack`.
        #[arg(long)]
        target: Option<String>,
        /// Sandbox profile whose engine settings the target's code is
        /// compiled for: `default` or `edge` (the device must use the same).
        #[arg(long, default_value = "edge", requires = "target")]
        profile: String,
    },
    /// List the plugins in the plugin directory.
    List,
    /// Show a plugin's manifest, input and output schemas, and imports.
    Inspect {
        /// Plugin name (from the plugin directory) or path to a `.wasm` file.
        plugin: String,
    },
    /// Run one call of a plugin and print its output.
    ///
    /// The call takes the same path as a step the agent plans: the policy
    /// decides it (in the bundle's default environment unless --env says
    /// otherwise), a human approves where the policy asks, every capability
    /// the plugin uses is decided again, and all of it is journaled.
    ///
    /// Example: warden plugin call http-probe --env dev --input '{"url":"http://127.0.0.1:8080/health"}'
    Call {
        /// Plugin name (from the plugin directory) or path to a `.wasm` file.
        plugin: String,
        /// Input JSON text.
        #[arg(long, conflicts_with = "input_file")]
        input: Option<String>,
        /// File holding the input JSON (`-` for stdin).
        #[arg(long)]
        input_file: Option<PathBuf>,
        /// Ask a mutating tool to report what it would change, and change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Call deadline in seconds.
        #[arg(long, default_value_t = 10.0)]
        timeout: f64,
        /// Task id recorded with the call [default: generated].
        #[arg(long)]
        task: Option<String>,
        #[command(flatten)]
        agent: crate::agent_args::AgentArgs,
    },
    /// Scaffold a new plugin crate that builds and passes its own test.
    New {
        /// Plugin name: lowercase letters, digits and `-`.
        name: String,
        /// Where to create it; a Cargo workspace there gains the new member.
        #[arg(long, default_value = "plugins")]
        dir: PathBuf,
    },
}

pub fn run(cmd: PluginCmd, plugin_dir: &Path, json: bool) -> anyhow::Result<ExitCode> {
    match cmd {
        PluginCmd::Build {
            source,
            debug,
            target,
            profile,
        } => {
            let target = target.map(|t| (t, profile));
            build(&source, plugin_dir, debug, target.as_ref(), json)
        }
        PluginCmd::List => list(plugin_dir, json),
        PluginCmd::Inspect { plugin } => inspect(plugin_dir, &plugin, json),
        PluginCmd::Call {
            plugin,
            input,
            input_file,
            dry_run,
            timeout,
            task,
            agent,
        } => {
            let input = read_input(input, input_file)?;
            let call_args = CallArgs {
                dry_run,
                timeout,
                task,
                agent,
            };
            call(plugin_dir, &plugin, &input, &call_args, json)
        }
        PluginCmd::New { name, dir } => crate::cmd_plugin_new::scaffold(&name, &dir, json),
    }
}

fn cache_dir(plugin_dir: &Path) -> PathBuf {
    plugin_dir.join(".cache")
}

fn sandbox_config(plugin_dir: &Path, timeout: Option<f64>) -> anyhow::Result<SandboxConfig> {
    let mut config = SandboxConfig::default();
    config.cache_dir(cache_dir(plugin_dir));
    config.cache_key(crate::agent_args::host_key()?.cache_key());
    if let Some(ca) = std::env::var_os("WARDEN_EXTRA_CA_FILE").filter(|v| !v.is_empty()) {
        config.extra_ca_file(ca);
    }
    if let Some(t) = timeout {
        if !(t.is_finite() && t > 0.0) {
            bail!("--timeout must be a positive number of seconds, got {t}");
        }
        let Ok(limit) = Duration::try_from_secs_f64(t) else {
            bail!("--timeout {t} is too large; give seconds, e.g. 30");
        };
        config.timeout(limit);
    }
    Ok(config)
}

fn sandbox(plugin_dir: &Path, timeout: Option<f64>) -> anyhow::Result<Sandbox> {
    Ok(Sandbox::new(&sandbox_config(plugin_dir, timeout)?)?)
}

fn wasm_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    match warden::sandbox::plugin_files(dir) {
        Err(SandboxError::Io { error, .. }) if error.kind() == std::io::ErrorKind::NotFound => {
            bail!(
                "plugin directory {} does not exist\nhint: run `warden plugin build` first, or pass --plugin-dir",
                dir.display()
            )
        }
        other => Ok(other?),
    }
}

/// Every plugin in the directory; two with the same name are an error
/// naming both files.
fn load_all(sandbox: &Sandbox, plugin_dir: &Path) -> anyhow::Result<Vec<Plugin>> {
    let mut plugins: Vec<Plugin> = Vec::new();
    for file in wasm_files(plugin_dir)? {
        let plugin = sandbox.load_file(&file)?;
        if let Some(first) = plugins
            .iter()
            .find(|p| p.manifest().name == plugin.manifest().name)
        {
            bail!(
                "two plugins are named `{}`: {} and {}\nhint: remove one of them from {}",
                plugin.manifest().name,
                first
                    .path()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
                file.display(),
                plugin_dir.display()
            );
        }
        plugins.push(plugin);
    }
    Ok(plugins)
}

/// Load `name` from the plugin directory, or from a path.
fn load(sandbox: &Sandbox, plugin_dir: &Path, name: &str) -> anyhow::Result<Plugin> {
    let as_path = Path::new(name);
    if name.ends_with(".wasm") || as_path.is_file() {
        return Ok(sandbox.load_file(as_path)?);
    }
    let plugins = load_all(sandbox, plugin_dir)?;
    let names: Vec<String> = plugins.iter().map(|p| p.manifest().name.clone()).collect();
    plugins
        .into_iter()
        .find(|p| p.manifest().name == name)
        .ok_or_else(|| {
            anyhow::anyhow!(
                "no plugin named `{name}` in {} (found: {})\nhint: `warden plugin list` shows what is there",
                plugin_dir.display(),
                if names.is_empty() {
                    "none".into()
                } else {
                    names.join(", ")
                }
            )
        })
}

fn read_input(input: Option<String>, file: Option<PathBuf>) -> anyhow::Result<serde_json::Value> {
    let text = match (input, file) {
        (Some(text), _) => text,
        (None, Some(path)) if path.as_os_str() == "-" => {
            std::io::read_to_string(std::io::stdin()).context("reading input from stdin")?
        }
        (None, Some(path)) => fs_err::read_to_string(&path)?,
        (None, None) => "{}".to_string(),
    };
    serde_json::from_str(&text).context("input is not valid JSON")
}

fn rustup_has_wasm_target() -> bool {
    Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| l.trim() == "wasm32-wasip2")
        })
        .unwrap_or(false)
}

fn build(
    source: &Path,
    plugin_dir: &Path,
    debug: bool,
    target: Option<&(String, String)>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    if !cfg!(feature = "compile") {
        bail!(
            "this warden was built without the plugin compiler (feature `compile`)\nhint: build and precompile plugins on a build machine: warden plugin build --target <this host's triple>, then warden bundle pack / warden bundle install"
        );
    }
    let precompiler = target
        .map(|(t, profile)| TargetBuild::new(plugin_dir, t, profile))
        .transpose()?;
    let manifest = source.join("Cargo.toml");
    if !manifest.is_file() {
        bail!(
            "{} not found\nhint: run from the warden checkout or pass --source",
            manifest.display()
        );
    }
    if !rustup_has_wasm_target() {
        eprintln!("adding the wasm32-wasip2 target with rustup");
        let status = Command::new("rustup")
            .args(["target", "add", "wasm32-wasip2"])
            .status();
        if !status.map(|s| s.success()).unwrap_or(false) {
            bail!(
                "`rustup target add wasm32-wasip2` failed\nhint: install rustup, or add the target by hand"
            );
        }
    }
    let started = Instant::now();
    eprintln!(
        "building {} for wasm32-wasip2 ({})",
        source.display(),
        if debug { "debug" } else { "release" }
    );
    let mut cargo = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cargo
        .args(["build", "--target", "wasm32-wasip2", "--manifest-path"])
        .arg(&manifest);
    if !debug {
        cargo.arg("--release");
    }
    let status = cargo.status().context("running cargo")?;
    if !status.success() {
        bail!("cargo build of {} failed ({status})", source.display());
    }
    let meta = cargo_metadata(&manifest)?;
    let target_dir = meta["target_directory"]
        .as_str()
        .map(PathBuf::from)
        .context("cargo metadata has no target_directory")?;
    let out = target_dir
        .join("wasm32-wasip2")
        .join(if debug { "debug" } else { "release" });
    fs_err::create_dir_all(plugin_dir)?;
    let sandbox = sandbox(plugin_dir, None)?;
    let mut rows = vec![vec![
        "NAME".to_string(),
        "VERSION".into(),
        "SIZE".into(),
        "FILE".into(),
    ]];
    let mut built = Vec::new();
    for member in workspace_cdylibs(&meta) {
        let file = out.join(format!("{}.wasm", member.replace('-', "_")));
        let dest = plugin_dir.join(file.file_name().unwrap_or_default());
        fs_err::copy(&file, &dest)?;
        let plugin = sandbox.load_file(&dest)?;
        if let Some(pre) = &precompiler {
            pre.precompile(&dest)?;
        }
        let size = fs_err::metadata(&dest)?.len();
        rows.push(vec![
            plugin.manifest().name.clone(),
            plugin.manifest().version.clone(),
            format!("{} KiB", size / 1024),
            dest.display().to_string(),
        ]);
        built.push(serde_json::json!({
            "name": plugin.manifest().name,
            "version": plugin.manifest().version,
            "bytes": size,
            "path": dest,
        }));
    }
    eprintln!(
        "built and precompiled {} plugin(s) in {:.1?}",
        built.len(),
        started.elapsed()
    );
    if let Some(pre) = &precompiler {
        pre.finish()?;
    }
    if json {
        output::json(&built)?;
    } else {
        output::table(&rows)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Precompiling the built plugins for another target (`--target`).
struct TargetBuild {
    dir: PathBuf,
    info: crate::cmd_bundle::EngineInfo,
    #[cfg(feature = "compile")]
    precompiler: warden::sandbox::Precompiler,
}

impl TargetBuild {
    fn new(plugin_dir: &Path, target: &str, profile: &str) -> anyhow::Result<Self> {
        let Some(config) = SandboxConfig::profile(profile) else {
            bail!("unknown --profile `{profile}`: use `default` or `edge`");
        };
        let dir = plugin_dir
            .join(crate::cmd_bundle::PRECOMPILED_DIR)
            .join(target);
        if dir.exists() {
            fs_err::remove_dir_all(&dir)?;
        }
        fs_err::create_dir_all(&dir)?;
        #[cfg(feature = "compile")]
        {
            let precompiler = warden::sandbox::Precompiler::new(&config, target)?;
            let info = crate::cmd_bundle::EngineInfo::new(precompiler.engine_id(), profile);
            Ok(TargetBuild {
                dir,
                info,
                precompiler,
            })
        }
        #[cfg(not(feature = "compile"))]
        {
            let id = warden::sandbox::EngineId::for_target(&config, target);
            Ok(TargetBuild {
                dir,
                info: crate::cmd_bundle::EngineInfo::new(&id, profile),
            })
        }
    }

    fn precompile(&self, wasm_path: &Path) -> anyhow::Result<()> {
        #[cfg(feature = "compile")]
        {
            let wasm = fs_err::read(wasm_path)?;
            let code = self
                .precompiler
                .precompile(&wasm, &wasm_path.display().to_string())?;
            let stem = wasm_path.file_stem().unwrap_or_default();
            let out = self.dir.join(stem).with_extension("cwasm");
            fs_err::write(&out, code)?;
            Ok(())
        }
        #[cfg(not(feature = "compile"))]
        {
            bail!(
                "cannot precompile {}: built without the plugin compiler",
                wasm_path.display()
            )
        }
    }

    fn finish(&self) -> anyhow::Result<()> {
        fs_err::write(
            self.dir.join(crate::cmd_bundle::ENGINE_FILE),
            serde_json::to_vec_pretty(&self.info)?,
        )?;
        eprintln!(
            "precompiled for {} (profile {}, engine {}) into {}\nhint: warden bundle pack --target {}",
            self.info.target,
            self.info.profile,
            &self.info.engine[..16],
            self.dir.display(),
            self.info.target
        );
        Ok(())
    }
}

/// `cargo metadata` of the plugins workspace, read once per build.
fn cargo_metadata(manifest: &Path) -> anyhow::Result<serde_json::Value> {
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--manifest-path",
        ])
        .arg(manifest)
        .output()
        .context("running cargo metadata")?;
    serde_json::from_slice(&out.stdout).context("parsing cargo metadata")
}

/// Names of the workspace's packages that build a `cdylib` (the plugins).
fn workspace_cdylibs(meta: &serde_json::Value) -> Vec<String> {
    let mut names = Vec::new();
    for package in meta["packages"].as_array().into_iter().flatten() {
        let is_cdylib = package["targets"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|t| {
                t["crate_types"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|c| c == "cdylib")
            });
        if is_cdylib && let Some(name) = package["name"].as_str() {
            names.push(name.to_string());
        }
    }
    names.sort();
    names
}

fn list(plugin_dir: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let sandbox = sandbox(plugin_dir, None)?;
    let mut manifests = Vec::new();
    let mut rows = vec![vec![
        "NAME".to_string(),
        "VERSION".into(),
        "EFFECT".into(),
        "DRY-RUN".into(),
        "CAPABILITIES".into(),
        "DESCRIPTION".into(),
    ]];
    let mut failures = 0;
    let mut seen: std::collections::BTreeMap<String, PathBuf> = Default::default();
    for file in wasm_files(plugin_dir)? {
        match sandbox.load_file(&file) {
            Ok(plugin) => {
                let m = plugin.manifest();
                if let Some(first) = seen.insert(m.name.clone(), file.clone()) {
                    bail!(
                        "two plugins are named `{}`: {} and {}\nhint: remove one of them from {}",
                        m.name,
                        first.display(),
                        file.display(),
                        plugin_dir.display()
                    );
                }
                rows.push(vec![
                    m.name.clone(),
                    m.version.clone(),
                    m.effect.to_string(),
                    if m.supports_dry_run { "yes" } else { "no" }.into(),
                    capabilities_text(m),
                    m.description.clone(),
                ]);
                manifests.push(serde_json::json!({"path": file, "manifest": m}));
            }
            Err(e) => {
                failures += 1;
                eprintln!("warning: skipping {}: {e}", file.display());
            }
        }
    }
    if json {
        output::json(&manifests)?;
    } else if rows.len() == 1 {
        eprintln!(
            "no plugins in {}\nhint: run `warden plugin build`",
            plugin_dir.display()
        );
    } else {
        output::table(&rows)?;
    }
    Ok(if failures > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn capabilities_text(m: &warden::types::ToolManifest) -> String {
    let parts: Vec<String> = m
        .capabilities
        .iter()
        .map(|c| match c {
            warden::types::Capability::Http { hosts } => format!("http({})", hosts.join(",")),
            warden::types::Capability::Kv => "kv".into(),
        })
        .collect();
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join(" ")
    }
}

fn inspect(plugin_dir: &Path, name: &str, json: bool) -> anyhow::Result<ExitCode> {
    let sandbox = sandbox(plugin_dir, None)?;
    let plugin = load(&sandbox, plugin_dir, name)?;
    let m = plugin.manifest();
    if json {
        output::json(&serde_json::json!({
            "path": plugin.path(),
            "manifest": m,
            "imports": plugin.imports(),
        }))?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut text = String::new();
    text.push_str(&format!("name:         {}\n", m.name));
    text.push_str(&format!("version:      {}\n", m.version));
    text.push_str(&format!("description:  {}\n", m.description));
    text.push_str(&format!("effect:       {}\n", m.effect));
    text.push_str(&format!(
        "dry-run:      {}\n",
        if m.supports_dry_run {
            "supported"
        } else {
            "not supported"
        }
    ));
    text.push_str(&format!("capabilities: {}\n", capabilities_text(m)));
    if let Some(p) = plugin.path() {
        text.push_str(&format!("file:         {}\n", p.display()));
    }
    text.push_str("imports:\n");
    for i in plugin.imports() {
        text.push_str(&format!("  {i}\n"));
    }
    text.push_str(&format!(
        "input schema:\n{}\n",
        serde_json::to_string_pretty(&m.input_schema)?
    ));
    text.push_str(&format!(
        "output schema:\n{}\n",
        serde_json::to_string_pretty(&m.output_schema)?
    ));
    print!("{}", output::safe_lines(&text));
    Ok(ExitCode::SUCCESS)
}

struct CallArgs {
    dry_run: bool,
    timeout: f64,
    task: Option<String>,
    agent: crate::agent_args::AgentArgs,
}

fn call(
    plugin_dir: &Path,
    name: &str,
    input: &serde_json::Value,
    args: &CallArgs,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let sandbox = sandbox(plugin_dir, Some(args.timeout))?;
    let plugin = load(&sandbox, plugin_dir, name)?;
    let tool = plugin.manifest().name.clone();
    let a = &args.agent;
    let builder = Agent::builder()
        .name("warden-cli")
        .plugin(plugin)
        .policy(&a.policy)
        .journal(&a.journal)
        .host_key(a.host_key()?)
        .dry_run(args.dry_run);
    let interactive = std::io::IsTerminal::is_terminal(&std::io::stdin());
    let agent = a.approver(builder, interactive).build()?;
    let id = args
        .task
        .clone()
        .unwrap_or_else(|| crate::cmd_run::task_id("call"));
    let mut task = Task::goal(&id, format!("call {tool}"))
        .by(a.principal())
        .in_env(a.env());
    task.break_glass = a.break_glass.clone();
    let mut call = ToolCall::new(&tool, input.clone());
    call.timeout_secs = Some(args.timeout);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let outcome = runtime.block_on(agent.call(task, call))?;
    let Some(obs) = outcome.observations.first() else {
        // Refused before the call (an environment the bundle does not know).
        if json {
            output::json(&outcome)?;
        }
        bail!("{}", warden::terminal_safe(&outcome.reason));
    };
    if json {
        output::json(obs)?;
    } else if let Some(out) = &obs.output {
        output::json(out)?;
    }
    for r in &obs.reasons {
        if obs.status == warden::StepStatus::Succeeded {
            eprintln!("{}", warden::terminal_safe(r));
        }
    }
    let env = &outcome.env;
    match obs.status {
        warden::StepStatus::Succeeded => {
            if !json {
                eprintln!(
                    "{tool} finished in {:.1} ms (journal: {}, task {id})",
                    obs.duration_us as f64 / 1000.0,
                    a.journal.display()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        warden::StepStatus::Denied => bail!(
            "policy denied `{tool}` in `{env}`:\n  - {}",
            warden::terminal_safe(&obs.reasons.join("\n  - "))
        ),
        warden::StepStatus::Rejected => bail!(
            "`{tool}` needs approval in `{env}` and was not approved: {}\nhint: rerun with --approve to approve it as `{}` (the approval policy decides whether that is allowed), or with --dry-run",
            warden::terminal_safe(&obs.reasons.join("; ")),
            warden::os_user()
        ),
        _ => bail!(
            "`{tool}` {}: {}",
            obs.status.as_str(),
            warden::terminal_safe(&obs.reasons.join("; "))
        ),
    }
}
