//! The wasmtime engine a sandbox runs on, shaped so its address-space
//! footprint follows the configuration instead of wasmtime's defaults
//! (4 GiB plus guards per memory, 1000 pooled slots of each kind: about
//! 516 GiB reserved before the first call).

use wasmtime::component::Component;
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::config::InstanceAllocation;
use crate::{SandboxConfig, SandboxError};

/// Guard region after (and before) each linear memory. Small, since the
/// reservation is already below 4 GiB and the code checks bounds; it lets
/// checks of nearby offsets share one test.
const MEMORY_GUARD: u64 = 2 << 20;

/// Stack for a call's host and guest frames (wasmtime's default).
const ASYNC_STACK: usize = 2 << 20;

/// Linear memory (and table) bytes a pooled slot keeps resident between
/// calls. By default wasmtime gives a freed slot's pages back with `madvise`
/// and the next call page-faults them in again: most of a short call's
/// cost. Kept pages are reset to the module's initial image with `memset`
/// instead (with `PAGEMAP_SCAN` on Linux 6.7+, only the pages the call
/// dirtied), so the next call sees exactly what a fresh slot would.
const MEMORY_KEEP_RESIDENT: usize = 1 << 20;
const TABLE_KEEP_RESIDENT: usize = 64 << 10;

/// Core module instances a component may contain (a Rust plugin has about
/// five: its code, wasi-libc glue and the canonical ABI shims).
const CORE_INSTANCES_PER_COMPONENT: u32 = 32;

/// Build the engine for `config`.
///
/// # Errors
/// [`SandboxError::AddressSpace`] when the pool cannot be reserved (it
/// names the settings that size it), [`SandboxError::Config`] otherwise.
pub(crate) fn build(config: &SandboxConfig) -> Result<Engine, SandboxError> {
    let wasm = wasm_config(config);
    Engine::new(&wasm).map_err(|e| {
        let message = format!("{e:#}");
        pool_error(config, &message).unwrap_or(SandboxError::Config { message })
    })
}

/// The wasmtime configuration of `config`: every setting that shapes
/// compiled code is set here, so a [`Precompiler`](crate::Precompiler) for
/// another target produces code this engine accepts. Keep
/// [`engine_settings`] in step with it.
pub(crate) fn wasm_config(config: &SandboxConfig) -> Config {
    let memory = memory_reservation(config);
    let mut wasm = Config::new();
    wasm.wasm_component_model(true)
        .epoch_interruption(true)
        .consume_fuel(config.fuel.is_some())
        .async_stack_size(ASYNC_STACK)
        .memory_reservation(memory)
        .memory_guard_size(MEMORY_GUARD)
        .memory_reservation_for_growth(0)
        .memory_may_move(false);
    if config.allocation == InstanceAllocation::Pooling {
        let n = config.max_instances;
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(n)
            .total_core_instances(n.saturating_mul(CORE_INSTANCES_PER_COMPONENT))
            .max_core_instances_per_component(CORE_INSTANCES_PER_COMPONENT)
            .total_memories(n.saturating_mul(config.max_memories_per_instance))
            .max_memories_per_component(config.max_memories_per_instance)
            .total_tables(n.saturating_mul(config.max_tables_per_instance))
            .max_tables_per_component(config.max_tables_per_instance)
            .max_tables_per_module(config.max_tables_per_instance)
            .table_elements(config.max_table_elements as usize)
            .total_stacks(n)
            .max_memory_size(config.memory_limit)
            .linear_memory_keep_resident(MEMORY_KEEP_RESIDENT.min(config.memory_limit))
            .table_keep_resident(TABLE_KEEP_RESIDENT)
            .pagemap_scan(Enabled::Auto);
        wasm.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    wasm
}

/// [`wasm_config`] with on-demand allocation: the same compiled code, no
/// pool reserved, for an engine that compiles but runs no instances.
#[cfg(feature = "compile")]
pub(crate) fn wasm_config_without_pool(config: &SandboxConfig) -> Config {
    let mut on_demand = config.clone();
    on_demand.instance_allocation(InstanceAllocation::OnDemand);
    wasm_config(&on_demand)
}

/// The settings of [`wasm_config`] that shape compiled code, one per line,
/// as the [`EngineId`](crate::EngineId) hashes them. (How instances are
/// allocated does not change the code, so pooling and on-demand engines
/// share precompiled plugins.)
pub(crate) fn engine_settings(config: &SandboxConfig) -> String {
    format!(
        "component_model=true\nepoch_interruption=true\nconsume_fuel={}\n\
         memory_reservation={}\nmemory_guard_size={MEMORY_GUARD}\n\
         memory_reservation_for_growth=0\nmemory_may_move=false\n",
        config.fuel.is_some(),
        memory_reservation(config),
    )
}

/// What each memory reserves: the cap, rounded up to whole wasm pages.
fn memory_reservation(config: &SandboxConfig) -> u64 {
    let page = 64 << 10;
    (config.memory_limit as u64).div_ceil(page).max(1) * page
}

/// Bytes the pool of `config` reserves, per pool, as wasmtime lays it out
/// (slots back to back, a guard before the first).
fn pool_bytes(config: &SandboxConfig) -> [(&'static str, u64); 3] {
    let n = u64::from(config.max_instances);
    let memories = n * u64::from(config.max_memories_per_instance);
    let tables = n * u64::from(config.max_tables_per_instance);
    let page = 4096u64;
    let table = (u64::from(config.max_table_elements) * 8).div_ceil(page) * page;
    [
        (
            "memory",
            memories.saturating_mul(memory_reservation(config) + MEMORY_GUARD) + MEMORY_GUARD,
        ),
        ("table", tables.saturating_mul(table)),
        ("stack", n.saturating_mul(ASYNC_STACK as u64 + page)),
    ]
}

/// Name the settings behind a pool that could not be reserved.
fn pool_error(config: &SandboxConfig, message: &str) -> Option<SandboxError> {
    let [memory, table, stack] = pool_bytes(config);
    let instances = ("max_instances", u64::from(config.max_instances));
    let (pool, settings) = if message.contains("memory pool") {
        (
            memory,
            vec![
                instances,
                ("memory_limit", config.memory_limit as u64),
                (
                    "max_memories_per_instance",
                    u64::from(config.max_memories_per_instance),
                ),
            ],
        )
    } else if message.contains("table pool") {
        (
            table,
            vec![
                instances,
                (
                    "max_tables_per_instance",
                    u64::from(config.max_tables_per_instance),
                ),
                ("max_table_elements", u64::from(config.max_table_elements)),
            ],
        )
    } else if message.contains("stack pool") {
        (stack, vec![instances])
    } else {
        return None;
    };
    Some(SandboxError::AddressSpace {
        what: format!("the {} pool", pool.0),
        bytes: pool.1,
        settings,
        message: message.to_string(),
    })
}

/// An instantiation that failed to map its memory (on-demand allocation
/// under an address-space limit), as an error naming the setting.
pub(crate) fn instantiation_error(
    config: &SandboxConfig,
    error: &wasmtime::Error,
) -> Option<SandboxError> {
    // wasmtime reports a failed mmap as text with the OS error in its chain.
    let message = format!("{error:#}");
    let mmap_failed = message.contains("mmap failed") && message.contains("os error 12");
    (config.allocation == InstanceAllocation::OnDemand && mmap_failed).then(|| {
        SandboxError::AddressSpace {
            what: "a plugin instance's memory".to_string(),
            bytes: memory_reservation(config) + 2 * MEMORY_GUARD,
            settings: vec![("memory_limit", config.memory_limit as u64)],
            message,
        }
    })
}

/// Why `wasm` failed to compile on a pooling engine, when the reason is its
/// shape: the pooling allocator refuses, at compile time and in its own
/// words, a component that needs more memories, tables or table elements
/// than a slot holds. Compiled again without the pool (only on this
/// failure path), the component gets the same [`check_shape`] verdict an
/// on-demand engine gives: [`SandboxError::InstanceShape`] naming the
/// setting. `None` when the pool is not the reason, so a file that is
/// simply invalid is compiled once, not twice.
#[cfg(feature = "compile")]
pub(crate) fn pooled_compile_error(
    config: &SandboxConfig,
    error: &wasmtime::Error,
    wasm: &[u8],
    origin: &str,
) -> Option<SandboxError> {
    // wasmtime's words for it: "... exceeds the configured maximum of N in
    // the pooling allocator". Should they change, the plugin is still
    // refused, with wasmtime's message (and the footprint test fails).
    let pool_said_no = format!("{error:#}").contains("pooling allocator");
    if config.allocation != InstanceAllocation::Pooling || !pool_said_no {
        return None;
    }
    let engine = Engine::new(&wasm_config_without_pool(config)).ok()?;
    let component = Component::new(&engine, wasm).ok()?;
    check_shape(&component, config, origin).err()
}

/// Refuse at load a plugin that needs more memories or tables than an
/// instance may have, rather than failing on every call.
pub(crate) fn check_shape(
    component: &Component,
    config: &SandboxConfig,
    origin: &str,
) -> Result<(), SandboxError> {
    // `None` means the component instantiates an imported module, which
    // the linker never provides: linking refuses it with its own error.
    let Some(needs) = component.resources_required() else {
        return Ok(());
    };
    let checks = [
        (
            "memories",
            u64::from(needs.num_memories),
            "max_memories_per_instance",
            u64::from(config.max_memories_per_instance),
        ),
        (
            "tables",
            u64::from(needs.num_tables),
            "max_tables_per_instance",
            u64::from(config.max_tables_per_instance),
        ),
        (
            "table elements",
            needs.max_initial_table_size.unwrap_or(0),
            "max_table_elements",
            u64::from(config.max_table_elements),
        ),
    ];
    for (what, needed, setting, limit) in checks {
        if needed > limit {
            return Err(SandboxError::InstanceShape {
                origin: origin.to_string(),
                what,
                needed,
                setting,
                limit,
            });
        }
    }
    Ok(())
}
