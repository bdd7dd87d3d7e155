//! `warden bundle …`: one archive with everything an edge box runs
//! (plugins precompiled for its target, the policy bundle, the runbooks),
//! packed on a build machine and installed on the device.
//!
//! The archive is a gzipped tar: `manifest.json` first, then `plugins/*.wasm`,
//! `precompiled/*.cwasm`, `policies/**` and `runbooks/**`. The manifest
//! names the target triple, the sandbox profile and the engine the plugins
//! were precompiled for, and the SHA-256 and size of every other file.
//! Installing checks all of it before anything is written. The archive is
//! checksummed, not signed: carry it over a channel you trust.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::Subcommand;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use warden::sandbox::{EngineId, Sandbox, SandboxConfig};

use crate::output;

/// The manifest format this build writes and reads.
const FORMAT: &str = "warden-bundle/1";
/// Largest archive `install` reads, unpacked (plugins, policy, runbooks).
const MAX_UNPACKED: u64 = 512 << 20;
/// Where `warden plugin build --target` leaves precompiled plugins, under
/// the plugin directory.
pub const PRECOMPILED_DIR: &str = ".precompiled";
/// The engine description beside them.
pub const ENGINE_FILE: &str = "engine.json";

#[derive(Debug, Subcommand)]
pub enum BundleCmd {
    /// Pack the plugins precompiled for a target (`warden plugin build
    /// --target`), a policy bundle and runbooks into one archive.
    ///
    /// Example: warden bundle pack --target aarch64-unknown-linux-gnu --out edge.tar.gz
    Pack {
        /// Target triple the plugins were precompiled for.
        #[arg(long)]
        target: String,
        /// Policy bundle directory.
        #[arg(long, default_value = "policies")]
        policy: PathBuf,
        /// Runbook directory.
        #[arg(long, default_value = "examples/runbooks")]
        runbooks: PathBuf,
        /// Archive to write [default: warden-bundle-<target>.tar.gz].
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Verify an archive from `warden bundle pack` and install it: plugins
    /// (bound to this host's key), policy and runbooks under --dir.
    ///
    /// Refuses an archive for another target or engine, or with a file
    /// whose checksum does not match, before writing anything.
    Install {
        /// The archive.
        archive: PathBuf,
        /// Where to install: `plugins/`, `policies/`, `runbooks/` and
        /// `bundle.json` go here.
        #[arg(long, default_value = ".warden")]
        dir: PathBuf,
    },
}

/// What `engine.json` and the manifest say about the engine.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct EngineInfo {
    /// Target triple.
    pub target: String,
    /// Sandbox profile the engine settings come from (`default`, `edge`).
    pub profile: String,
    /// `EngineId::hash`: target, wasmtime release, engine settings.
    pub engine: String,
    /// wasmtime release.
    pub wasmtime: String,
}

impl EngineInfo {
    pub fn new(id: &EngineId, profile: &str) -> Self {
        EngineInfo {
            target: id.target().to_string(),
            profile: profile.to_string(),
            engine: id.hash(),
            wasmtime: EngineId::wasmtime_version().to_string(),
        }
    }
}

/// `manifest.json`.
#[derive(Debug, Serialize, Deserialize)]
struct Manifest {
    format: String,
    /// The warden release that packed it.
    warden: String,
    #[serde(flatten)]
    engine: EngineInfo,
    /// Every other file in the archive: path -> checksum and size.
    files: BTreeMap<String, FileSum>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
struct FileSum {
    sha256: String,
    bytes: u64,
}

impl FileSum {
    fn of(data: &[u8]) -> Self {
        FileSum {
            sha256: hex::encode(Sha256::digest(data)),
            bytes: data.len() as u64,
        }
    }
}

pub fn run(cmd: BundleCmd, plugin_dir: &Path, json: bool) -> anyhow::Result<ExitCode> {
    match cmd {
        BundleCmd::Pack {
            target,
            policy,
            runbooks,
            out,
        } => {
            let out =
                out.unwrap_or_else(|| PathBuf::from(format!("warden-bundle-{target}.tar.gz")));
            pack(plugin_dir, &target, &policy, &runbooks, &out, json)
        }
        BundleCmd::Install { archive, dir } => install(&archive, &dir, json),
    }
}

fn pack(
    plugin_dir: &Path,
    target: &str,
    policy: &Path,
    runbooks: &Path,
    out: &Path,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let pre_dir = plugin_dir.join(PRECOMPILED_DIR).join(target);
    let hint = format!("hint: run `warden plugin build --target {target}` first");
    let engine_text = fs_err::read_to_string(pre_dir.join(ENGINE_FILE))
        .with_context(|| format!("no plugins precompiled for {target}\n{hint}"))?;
    let engine: EngineInfo = serde_json::from_str(&engine_text)
        .with_context(|| format!("reading {}", pre_dir.join(ENGINE_FILE).display()))?;

    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for wasm in warden::sandbox::plugin_files(plugin_dir)? {
        let stem = wasm
            .file_stem()
            .and_then(|s| s.to_str())
            .with_context(|| format!("{}: not a UTF-8 file name", wasm.display()))?;
        let cwasm = pre_dir.join(format!("{stem}.cwasm"));
        if !cwasm.is_file() {
            bail!(
                "{} has no code precompiled for {target} (no {})\n{hint}",
                wasm.display(),
                cwasm.display()
            );
        }
        files.insert(format!("plugins/{stem}.wasm"), fs_err::read(&wasm)?);
        files.insert(format!("precompiled/{stem}.cwasm"), fs_err::read(&cwasm)?);
    }
    if files.is_empty() {
        bail!("no plugins in {}\n{hint}", plugin_dir.display());
    }
    add_tree(&mut files, "policies", policy)?;
    add_tree(&mut files, "runbooks", runbooks)?;

    let manifest = Manifest {
        format: FORMAT.to_string(),
        warden: env!("CARGO_PKG_VERSION").to_string(),
        engine,
        files: files
            .iter()
            .map(|(p, d)| (p.clone(), FileSum::of(d)))
            .collect(),
    };
    let manifest_bytes = serde_json::to_vec_pretty(&manifest)?;

    let tmp = out.with_extension("tmp");
    let file = fs_err::File::create(&tmp)?;
    let gz = flate2::write::GzEncoder::new(file, flate2::Compression::best());
    let mut tar = tar::Builder::new(gz);
    append(&mut tar, "manifest.json", &manifest_bytes)?;
    for (path, data) in &files {
        append(&mut tar, path, data)?;
    }
    let gz = tar.into_inner()?;
    let mut file = gz.finish()?;
    file.flush()?;
    file.sync_all()?;
    drop(file);
    fs_err::rename(&tmp, out)?;

    let size = fs_err::metadata(out)?.len();
    if json {
        output::json(&serde_json::json!({
            "archive": out,
            "bytes": size,
            "target": manifest.engine.target,
            "profile": manifest.engine.profile,
            "engine": manifest.engine.engine,
            "files": manifest.files.len(),
        }))?;
    } else {
        println!(
            "{}: {} files, {} KiB, for {} (profile {}, engine {})",
            out.display(),
            manifest.files.len(),
            size / 1024,
            manifest.engine.target,
            manifest.engine.profile,
            &manifest.engine.engine[..16]
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Every regular file under `dir` as `prefix/<relative path>`, in order.
fn add_tree(files: &mut BTreeMap<String, Vec<u8>>, prefix: &str, dir: &Path) -> anyhow::Result<()> {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs_err::read_dir(&d)? {
            let path = entry?.path();
            let meta = fs_err::metadata(&path)?;
            if meta.is_dir() {
                stack.push(path);
            } else if meta.is_file() {
                let rel = path.strip_prefix(dir)?;
                let rel = rel
                    .to_str()
                    .with_context(|| format!("{}: not a UTF-8 path", path.display()))?;
                files.insert(format!("{prefix}/{rel}"), fs_err::read(&path)?);
            }
        }
    }
    Ok(())
}

/// One regular file, owned by root, mode 0644, time 0: the same inputs
/// give the same archive.
fn append<W: Write>(tar: &mut tar::Builder<W>, path: &str, data: &[u8]) -> anyhow::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(data.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    tar.append_data(&mut header, path, data)
        .with_context(|| format!("adding {path} to the archive"))
}

/// The archive's files by path; only regular files with plain relative
/// paths, each once, `MAX_UNPACKED` bytes in all.
fn read_archive(archive: &Path) -> anyhow::Result<BTreeMap<String, Vec<u8>>> {
    let file = fs_err::File::open(archive)?;
    let gz = flate2::read::GzDecoder::new(file).take(MAX_UNPACKED + 1);
    let mut tar = tar::Archive::new(gz);
    let mut files = BTreeMap::new();
    let mut total = 0u64;
    for entry in tar
        .entries()
        .with_context(|| format!("{}: not a bundle archive", archive.display()))?
    {
        let mut entry = entry.with_context(|| format!("{}: corrupt archive", archive.display()))?;
        let path = entry.path()?.into_owned();
        let name = plain_path(&path).with_context(|| {
            format!(
                "{}: refusing the entry {} (absolute, `..` or not UTF-8)",
                archive.display(),
                path.display()
            )
        })?;
        if !entry.header().entry_type().is_file() {
            bail!(
                "{}: refusing the entry {name}: not a regular file",
                archive.display()
            );
        }
        total = total.saturating_add(entry.size());
        if total > MAX_UNPACKED {
            bail!(
                "{}: more than {} MiB unpacked",
                archive.display(),
                MAX_UNPACKED >> 20
            );
        }
        let mut data = Vec::new();
        entry.read_to_end(&mut data)?;
        if files.insert(name.clone(), data).is_some() {
            bail!("{}: {name} appears twice", archive.display());
        }
    }
    Ok(files)
}

/// `path` as `a/b/c` when it is relative and has only normal components.
fn plain_path(path: &Path) -> Option<String> {
    let mut parts = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => parts.push(p.to_str()?),
            Component::CurDir => {}
            _ => return None,
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

/// Check the archive against its manifest and this host; the manifest and
/// the files on success.
fn verify(
    archive: &Path,
    mut files: BTreeMap<String, Vec<u8>>,
) -> anyhow::Result<(Manifest, SandboxConfig, BTreeMap<String, Vec<u8>>)> {
    let shown = archive.display();
    let manifest_bytes = files
        .remove("manifest.json")
        .with_context(|| format!("{shown}: no manifest.json: not a warden bundle"))?;
    let manifest: Manifest = serde_json::from_slice(&manifest_bytes)
        .with_context(|| format!("{shown}: unreadable manifest.json"))?;
    if manifest.format != FORMAT {
        bail!(
            "{shown}: bundle format `{}`, this warden reads `{FORMAT}`",
            manifest.format
        );
    }
    for (path, sum) in &manifest.files {
        let Some(data) = files.get(path) else {
            bail!("{shown}: {path} is in the manifest but not in the archive");
        };
        let found = FileSum::of(data);
        if &found != sum {
            bail!(
                "{shown}: checksum mismatch for {path}: manifest says sha256 {} ({} bytes), archive has {} ({} bytes)",
                sum.sha256,
                sum.bytes,
                found.sha256,
                found.bytes
            );
        }
    }
    if let Some(extra) = files.keys().find(|p| !manifest.files.contains_key(*p)) {
        bail!("{shown}: {extra} is in the archive but not in the manifest");
    }
    let bundle = &manifest.engine;
    let Some(config) = SandboxConfig::profile(&bundle.profile) else {
        bail!(
            "{shown}: unknown sandbox profile `{}` (this warden knows `default` and `edge`)",
            bundle.profile
        );
    };
    let here = EngineInfo::new(&EngineId::host(&config), &bundle.profile);
    if bundle.target != here.target {
        bail!(
            "{shown}: the plugins are precompiled for {}, this host is {}\nhint: on the build machine: warden plugin build --target {} --profile {} && warden bundle pack --target {}",
            bundle.target,
            here.target,
            here.target,
            bundle.profile,
            here.target
        );
    }
    if bundle.engine != here.engine {
        bail!(
            "{shown}: the plugins are precompiled for engine {} (wasmtime {}, profile {}), this warden's engine is {} (wasmtime {})\nhint: pack the bundle with the same warden release as this one",
            &bundle.engine[..16],
            bundle.wasmtime,
            bundle.profile,
            &here.engine[..16],
            here.wasmtime
        );
    }
    Ok((manifest, config, files))
}

type Rows = (Vec<Vec<String>>, Vec<serde_json::Value>);

/// Write the archive's files under `staging` and install each plugin's
/// precompiled code into `staging/plugins/.cache`.
fn stage_and_bind(
    archive: &Path,
    dir: &Path,
    staging: &Path,
    files: &BTreeMap<String, Vec<u8>>,
    config: &mut SandboxConfig,
) -> anyhow::Result<Rows> {
    for (path, data) in files {
        if path.starts_with("precompiled/") {
            continue;
        }
        let dest = staging.join(path);
        if let Some(parent) = dest.parent() {
            fs_err::create_dir_all(parent)?;
        }
        fs_err::write(&dest, data)?;
    }
    config.cache_dir(staging.join("plugins").join(".cache"));
    config.cache_key(crate::agent_args::host_key()?.cache_key());
    let sandbox = Sandbox::new(config)?;
    let mut rows = vec![vec![
        "NAME".to_string(),
        "VERSION".into(),
        "CODE".into(),
        "FILE".into(),
    ]];
    let mut installed = Vec::new();
    for (path, wasm) in files.iter().filter(|(p, _)| p.starts_with("plugins/")) {
        let stem = path
            .strip_prefix("plugins/")
            .and_then(|p| p.strip_suffix(".wasm"))
            .unwrap_or_default();
        let Some(code) = files.get(&format!("precompiled/{stem}.cwasm")) else {
            bail!(
                "{}: {path} has no precompiled/{stem}.cwasm",
                archive.display()
            );
        };
        let dest = dir.join(path);
        let origin = dest.display().to_string();
        // SAFETY (of the call): the code came in an archive whose every
        // file matched its manifest's SHA-256 and whose engine and target
        // match this host; whoever runs `bundle install` vouches for the
        // archive itself, as for a binary they install.
        #[allow(
            unsafe_code,
            reason = "installing native code from a checksummed bundle the operator chose to install"
        )]
        let plugin = unsafe { sandbox.install_precompiled(wasm, code, &origin) }?;
        rows.push(vec![
            plugin.manifest().name.clone(),
            plugin.manifest().version.clone(),
            format!("{} KiB", code.len() / 1024),
            origin,
        ]);
        installed.push(serde_json::json!({
            "name": plugin.manifest().name,
            "version": plugin.manifest().version,
            "path": dest,
        }));
    }
    Ok((rows, installed))
}

fn install(archive: &Path, dir: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let files = read_archive(archive)?;
    let (manifest, mut config, files) = verify(archive, files)?;

    // Stage everything, install the code into the staged plugin directory
    // (bound to this host's key; each plugin loads from it once), and only
    // then swap the directories in.
    fs_err::create_dir_all(dir)?;
    let staging = dir.join(format!(".bundle-staging-{}", std::process::id()));
    if staging.exists() {
        fs_err::remove_dir_all(&staging)?;
    }
    let staged = stage_and_bind(archive, dir, &staging, &files, &mut config);
    let (rows, installed) = match staged {
        Ok(done) => done,
        Err(e) => {
            let _ = fs_err::remove_dir_all(&staging);
            return Err(e);
        }
    };
    for sub in ["plugins", "policies", "runbooks"] {
        let new = staging.join(sub);
        let old = dir.join(sub);
        if old.exists() {
            fs_err::remove_dir_all(&old)?;
        }
        if new.exists() {
            fs_err::rename(&new, &old)?;
        }
    }
    fs_err::remove_dir_all(&staging)?;
    fs_err::write(
        dir.join("bundle.json"),
        serde_json::to_vec_pretty(&manifest)?,
    )?;
    if json {
        output::json(&serde_json::json!({
            "dir": dir,
            "target": manifest.engine.target,
            "profile": manifest.engine.profile,
            "engine": manifest.engine.engine,
            "plugins": installed,
        }))?;
    } else {
        output::table(&rows)?;
        eprintln!(
            "installed {} plugin(s), policies and runbooks into {} for {} (profile {})",
            installed.len(),
            dir.display(),
            manifest.engine.target,
            manifest.engine.profile
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_paths_that_climb_or_are_absolute_are_refused() {
        assert_eq!(
            plain_path(Path::new("plugins/a.wasm")).as_deref(),
            Some("plugins/a.wasm")
        );
        assert_eq!(
            plain_path(Path::new("./policies/x.rego")).as_deref(),
            Some("policies/x.rego")
        );
        assert_eq!(plain_path(Path::new("../etc/passwd")), None);
        assert_eq!(plain_path(Path::new("/etc/passwd")), None);
        assert_eq!(plain_path(Path::new("plugins/../../x")), None);
    }
}
