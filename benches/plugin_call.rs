//! Cost of one tool call, next to its baselines:
//!
//! - `warden/trivial`: `Plugin::invoke` (schema check, fresh pooled instance
//!   from `InstancePre`, call, drop) of the `trivial` test guest;
//! - `raw-wasmtime/trivial`: the same instantiate + call + drop written
//!   directly against the wasmtime API, no warden layer;
//! - `native/trivial`: the same work as a Rust function;
//! - `process-spawn/trivial`: the same work as a native process;
//! - `log-templates/hdfs-2k`: the Loghub HDFS 2k sample mined natively and
//!   inside the sandbox (skipped when `../shared/data` is absent).
//!
//! Run: `cargo bench -p warden-bench --bench plugin_call`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stderr,
    reason = "benchmark setup; skips are reported on stderr"
)]

use std::hint::black_box;
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::json;
use warden_sandbox::{Sandbox, SandboxConfig};
use warden_types::{CallContext, DenyAll};
use wasmtime::component::{Component, Linker, ResourceTable, Val};
use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store,
};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

fn native_trivial(input: &str) -> String {
    let value: serde_json::Value = serde_json::from_str(input).unwrap();
    json!({ "result": value["text"].as_str().unwrap_or_default() }).to_string()
}

struct RawState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
}

impl WasiHttpView for RawState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: Default::default(),
        }
    }
}

impl WasiView for RawState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

fn bench_trivial(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("trivial-call");
    let input = json!({"text": "hello"});
    let input_text = input.to_string();

    // warden
    let cache = tempdir();
    let mut config = SandboxConfig::default();
    config.cache_dir(&cache);
    let sandbox = Sandbox::new(&config).unwrap();
    let plugin = sandbox.load_file(test_plugins_artifacts::TRIVIAL).unwrap();
    let ctx = CallContext::default();
    let gate = Arc::new(DenyAll);
    group.bench_function("warden", |b| {
        b.iter(|| {
            rt.block_on(plugin.invoke(&ctx, black_box(&input), gate.clone()))
                .unwrap()
        })
    });

    // raw wasmtime: the engine `SandboxConfig::default()` builds (the same
    // pool with pages kept resident, the same memory reservation, epochs),
    // the same instantiate + call + drop, without warden's layer.
    // `SandboxConfig::default()`: 8 slots, 1 memory and 8 tables of 100k
    // elements each, 128 MiB of memory.
    let (slots, tables, memory) = (8, 8, 128 << 20);
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(slots)
        .total_core_instances(slots * 32)
        .max_core_instances_per_component(32)
        .total_memories(slots)
        .max_memories_per_component(1)
        .total_tables(slots * tables)
        .max_tables_per_component(tables)
        .max_tables_per_module(tables)
        .table_elements(100_000)
        .total_stacks(slots)
        .max_memory_size(memory)
        .linear_memory_keep_resident(1 << 20)
        .table_keep_resident(64 << 10)
        .pagemap_scan(Enabled::Auto);
    let mut wasm = Config::new();
    wasm.epoch_interruption(true)
        .async_stack_size(2 << 20)
        .memory_reservation(memory as u64)
        .memory_guard_size(2 << 20)
        .memory_reservation_for_growth(0)
        .memory_may_move(false)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    let engine = Engine::new(&wasm).unwrap();
    let component = Component::from_file(&engine, test_plugins_artifacts::TRIVIAL).unwrap();
    let mut linker = Linker::<RawState>::new(&engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).unwrap();
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker).unwrap();
    let pre = linker.instantiate_pre(&component).unwrap();
    let (_, handler) = component
        .get_export(None, "warden:plugin/handler@0.1.0")
        .unwrap();
    let (_, invoke) = component.get_export(Some(&handler), "invoke").unwrap();
    let ctx_val = Val::Record(vec![
        ("task-id".into(), Val::String(String::new())),
        ("step-id".into(), Val::String(String::new())),
        ("dry-run".into(), Val::Bool(false)),
    ]);
    group.bench_function("raw-wasmtime", |b| {
        b.iter(|| {
            rt.block_on(async {
                let mut store = Store::new(
                    &engine,
                    RawState {
                        wasi: WasiCtx::builder().build(),
                        http: WasiHttpCtx::new(),
                        table: ResourceTable::new(),
                    },
                );
                store.set_epoch_deadline(1000);
                let instance = pre.instantiate_async(&mut store).await.unwrap();
                let func = instance.get_func(&mut store, invoke).unwrap();
                let mut results = [Val::Bool(false)];
                func.call_async(
                    &mut store,
                    &[ctx_val.clone(), Val::String(black_box(input_text.clone()))],
                    &mut results,
                )
                .await
                .unwrap();
                results
            })
        })
    });

    group.bench_function("native", |b| {
        b.iter(|| native_trivial(black_box(&input_text)))
    });

    let echo = env!("CARGO_BIN_EXE_echo-tool");
    group.bench_function("process-spawn", |b| {
        b.iter(|| {
            let mut child = Command::new(echo)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input_text.as_bytes())
                .unwrap();
            child.wait_with_output().unwrap()
        })
    });
    group.finish();
}

fn bench_log_templates(c: &mut Criterion) {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/data/loghub/HDFS/HDFS_2k.log"
    );
    let Ok(text) = fs_err::read_to_string(path) else {
        eprintln!("skipping log-templates benchmark: {path} not found (shared data absent)");
        return;
    };
    let lines: Vec<String> = text.lines().map(str::to_string).collect();
    let rt = runtime();
    let mut group = c.benchmark_group("log-templates-hdfs-2k");
    group.throughput(Throughput::Elements(lines.len() as u64));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(10));
    let config = warden_logmine::Config::default();
    group.bench_function("native", |b| {
        b.iter(|| warden_logmine::mine(black_box(&lines), &config))
    });
    let cache = tempdir();
    let mut sandbox_config = SandboxConfig::default();
    sandbox_config.cache_dir(&cache);
    let sandbox = Sandbox::new(&sandbox_config).unwrap();
    let plugin = sandbox
        .load_file(test_plugins_artifacts::PLUGIN_LOG_TEMPLATES)
        .unwrap();
    let input = json!({ "lines": lines });
    let ctx = CallContext::default();
    let gate = Arc::new(DenyAll);
    group.bench_function("sandboxed", |b| {
        b.iter(|| {
            rt.block_on(plugin.invoke(&ctx, black_box(&input), gate.clone()))
                .unwrap()
        })
    });
    group.finish();
}

fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("warden-bench-{}", std::process::id()));
    fs_err::create_dir_all(&dir).unwrap();
    dir
}

criterion_group!(benches, bench_trivial, bench_log_templates);
criterion_main!(benches);
