#![allow(
    clippy::disallowed_methods,
    reason = "build script: fs errors are reported with their path"
)]
//! Build every test guest (tests/test-plugins/src/bin/*.rs) and every shipped
//! plugin (plugins/*) for wasm32-wasip2, and generate a path constant for
//! each plus `foreach_guest!`, which the sandbox tests use to prove every
//! guest has a test (a guest without one fails the build).

use std::env;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let root = manifest_dir
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let target_dir = root.join("target").join("wasm-artifacts");
    for watched in [
        "tests/test-plugins/src",
        "tests/test-plugins/Cargo.toml",
        "plugins/Cargo.toml",
        "crates/warden-pdk",
        "crates/warden-types/src",
        "crates/warden-logmine/src",
        "crates/warden-anomaly/src",
        "wit",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    // Each plugin crate, but not plugins/target (rebuilt on every run).
    for entry in std::fs::read_dir(root.join("plugins"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let path = entry.path();
        if path.join("Cargo.toml").is_file() {
            println!(
                "cargo:rerun-if-changed={}",
                path.join("Cargo.toml").display()
            );
            println!("cargo:rerun-if-changed={}", path.join("src").display());
        }
    }

    // The shipped plugins build into their workspace's own target dir, where
    // `warden plugin build` finds them fresh.
    let plugins_target = root.join("plugins").join("target");
    build(&root.join("tests/test-plugins/Cargo.toml"), &target_dir);
    build(&root.join("plugins/Cargo.toml"), &plugins_target);

    let out_wasm = target_dir.join("wasm32-wasip2").join("release");
    let plugins_wasm = plugins_target.join("wasm32-wasip2").join("release");
    let mut code = String::new();
    let mut guests = Vec::new();
    let bins = root.join("tests/test-plugins/src/bin");
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&bins)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    entries.sort();
    for path in entries {
        let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        let wasm = out_wasm.join(format!("{stem}.wasm"));
        let _ = writeln!(
            code,
            "/// Test guest `{stem}`.\npub const {}: &str = {:?};",
            stem.to_uppercase(),
            wasm.display().to_string()
        );
        guests.push(stem.to_string());
    }
    let mut plugins = Vec::new();
    let mut members: Vec<String> = std::fs::read_dir(root.join("plugins"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().join("Cargo.toml").is_file())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    members.sort();
    for member in members {
        let file = member.replace('-', "_");
        let wasm = plugins_wasm.join(format!("{file}.wasm"));
        let _ = writeln!(
            code,
            "/// Shipped plugin `{member}`.\npub const PLUGIN_{}: &str = {:?};",
            file.to_uppercase(),
            wasm.display().to_string()
        );
        plugins.push(wasm);
    }
    let _ = writeln!(
        code,
        "/// All shipped plugins.\npub const PLUGINS: &[&str] = &[{}];",
        plugins
            .iter()
            .map(|p| format!("{:?}", p.display().to_string()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(
        code,
        "/// Calls `$mac!(name)` for every test guest.\n#[macro_export]\nmacro_rules! foreach_guest {{\n    ($mac:ident) => {{\n{}    }};\n}}",
        guests
            .iter()
            .map(|g| format!("        $mac!({g});\n"))
            .collect::<String>()
    );
    let out = PathBuf::from(env::var_os("OUT_DIR").unwrap_or_default()).join("artifacts.rs");
    if let Err(e) = std::fs::write(&out, code) {
        println!("cargo:warning=writing {}: {e}", out.display());
        std::process::exit(1);
    }
}

fn build(manifest: &Path, target_dir: &Path) {
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--manifest-path",
        ])
        .arg(manifest)
        .arg("--target-dir")
        .arg(target_dir)
        // The outer build's flags and wrappers (clippy, coverage) are for
        // the host crates, not for the guests.
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .env_remove("RUSTC_WRAPPER")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET")
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => {
            println!(
                "cargo:warning=building {} for wasm32-wasip2 failed ({s}); is the target installed? `rustup target add wasm32-wasip2`",
                manifest.display()
            );
            std::process::exit(1);
        }
        Err(e) => {
            println!(
                "cargo:warning=running cargo for {}: {e}",
                manifest.display()
            );
            std::process::exit(1);
        }
    }
}
