//! Plugins precompiled for an engine, installed into the cache and loaded
//! without compiling: what a runtime-only build on an edge box does.

use test_plugins_artifacts as guests;
use warden_sandbox::{Sandbox, SandboxConfig, SandboxError};

use crate::support::*;

const KEY: [u8; 32] = [0x3c; 32];

fn sandbox_in(dir: &std::path::Path, config: &SandboxConfig) -> Sandbox {
    let mut config = config.clone();
    config.cache_dir(dir).cache_key(KEY);
    Sandbox::new(&config).unwrap()
}

#[cfg(feature = "compile")]
mod compile {
    use serde_json::json;
    use warden_sandbox::Precompiler;

    use super::*;

    /// A target of another architecture than this host's.
    #[cfg(feature = "cross")]
    const FOREIGN: &str = if cfg!(target_arch = "aarch64") {
        "x86_64-unknown-linux-gnu"
    } else {
        "aarch64-unknown-linux-gnu"
    };

    fn precompile(config: &SandboxConfig, target: &str, path: &str) -> (Vec<u8>, Vec<u8>) {
        let wasm = fs_err::read(path).unwrap();
        let code = Precompiler::new(config, target)
            .unwrap()
            .precompile(&wasm, path)
            .unwrap();
        (wasm, code)
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn installed_precompiled_code_loads_from_the_cache_and_runs() {
        let dir = tempfile::tempdir().unwrap();
        let config = SandboxConfig::edge();
        let sandbox = sandbox_in(dir.path(), &config);
        let target = sandbox.engine_id().target().to_string();
        let (wasm, code) = precompile(&config, &target, guests::TRIVIAL);
        #[allow(unsafe_code, reason = "the code was precompiled just above")]
        let installed =
            unsafe { sandbox.install_precompiled(&wasm, &code, "trivial.wasm") }.unwrap();
        assert!(installed.was_cached());
        assert_eq!(installed.manifest().name, "trivial");

        // A new process (same key) loads the installed entry, never compiling.
        let again = sandbox_in(dir.path(), &config)
            .load_file(guests::TRIVIAL)
            .unwrap();
        assert!(again.was_cached());
        let out = again
            .invoke(&ctx(), &json!({"text": "precompiled"}), deny_all())
            .await
            .unwrap();
        assert_eq!(out.output["result"], "precompiled");
    }

    #[cfg(feature = "cross")]
    #[test]
    fn code_for_another_architecture_is_refused_at_install() {
        let dir = tempfile::tempdir().unwrap();
        let config = SandboxConfig::default();
        let (wasm, code) = precompile(&config, FOREIGN, guests::TRIVIAL);
        let sandbox = sandbox_in(dir.path(), &config);
        #[allow(unsafe_code, reason = "wasmtime refuses the code before mapping it")]
        let err = unsafe { sandbox.install_precompiled(&wasm, &code, "trivial.wasm") }.unwrap_err();
        assert!(matches!(err, SandboxError::Precompiled { .. }), "{err}");
        let arch = FOREIGN.split('-').next().unwrap();
        assert!(err.to_string().contains(arch), "{err}");
        assert_eq!(
            fs_err::read_dir(dir.path()).map(|d| d.count()).unwrap_or(0),
            0
        );
    }

    #[test]
    fn code_for_other_engine_settings_is_refused_at_install() {
        let dir = tempfile::tempdir().unwrap();
        let sandbox = sandbox_in(dir.path(), &SandboxConfig::default());
        let target = sandbox.engine_id().target().to_string();
        // The edge profile's smaller memory cap shapes the compiled code.
        let (wasm, code) = precompile(&SandboxConfig::edge(), &target, guests::TRIVIAL);
        #[allow(unsafe_code, reason = "wasmtime refuses the code before mapping it")]
        let err = unsafe { sandbox.install_precompiled(&wasm, &code, "trivial.wasm") }.unwrap_err();
        assert!(matches!(err, SandboxError::Precompiled { .. }), "{err}");
        assert!(err.to_string().contains("memory reservation"), "{err}");
    }

    #[cfg(feature = "cross")]
    #[test]
    fn a_precompiler_names_the_engine_a_device_with_the_same_settings_has() {
        let config = SandboxConfig::edge();
        let pre = Precompiler::new(&config, FOREIGN).unwrap();
        let id = warden_sandbox::EngineId::for_target(&config, FOREIGN);
        assert_eq!(pre.engine_id(), &id);
        assert_eq!(pre.engine_id().target(), FOREIGN);
        assert!(Precompiler::new(&config, "not-a-target").is_err());
    }
}

#[cfg(not(feature = "compile"))]
#[test]
fn a_runtime_only_build_names_the_command_that_precompiles_a_plugin() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = sandbox_in(dir.path(), &SandboxConfig::edge());
    let err = sandbox.load_file(guests::TRIVIAL).unwrap_err();
    assert!(matches!(err, SandboxError::NotPrecompiled { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains("this build cannot compile plugins"), "{text}");
    let hint = format!(
        "warden plugin build --target {}",
        sandbox.engine_id().target()
    );
    assert!(text.contains(&hint), "{text}");
}
