//! Decisions on regorus's compiled engine (the RVM).
//!
//! regorus's tree-walking interpreter costs some 10 us per rule here; the
//! default bundle touches dozens of rules per decision. The RVM compiles
//! the entry points to bytecode once per bundle and runs a decision an
//! order of magnitude faster. The interpreter stays for what the RVM does
//! not cover: the `with` keyword (Rego tests), explanations, ad-hoc
//! queries, and any bundle the RVM compiler rejects (that bundle then
//! decides on the interpreter, with a warning at load).

use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use regorus::languages::rego::compiler::Compiler;
use regorus::rvm::{Program, RegoVM};
use regorus::utils::limits::ExecutionTimerConfig;

use crate::decision::Entry;

/// Idle machines kept for reuse; more concurrent decisions build fresh ones.
const POOL: usize = 8;

/// The bundle's entry points compiled to one RVM program.
pub(crate) struct CompiledEntries {
    program: Arc<Program>,
    data: regorus::Value,
    timer: ExecutionTimerConfig,
    max_instructions: usize,
    idle: Mutex<Vec<RegoVM>>,
}

impl std::fmt::Debug for CompiledEntries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledEntries")
            .field("instructions", &self.program.instructions.len())
            .field("max_instructions", &self.max_instructions)
            .finish_non_exhaustive()
    }
}

impl CompiledEntries {
    /// Compile `entries` of a prepared engine. `Err` carries the compiler's
    /// reason, for the load-time warning.
    pub(crate) fn compile(
        engine: &regorus::Engine,
        entries: &[Entry],
        data: regorus::Value,
        timeout: Duration,
        max_instructions: usize,
    ) -> Result<Self, String> {
        let Some(first) = entries.first() else {
            return Err("the bundle defines no entry point".into());
        };
        let mut engine = engine.clone();
        let compiled = engine
            .compile_with_entrypoint(&first.rule().into())
            .map_err(|e| format!("{e:#}"))?;
        let rules: Vec<&str> = entries.iter().map(|e| e.rule()).collect();
        let program =
            Compiler::compile_from_policy(&compiled, &rules).map_err(|e| format!("{e:#}"))?;
        let mut program = Arc::unwrap_or_clone(program);
        crate::limits::guard_program(&mut program)?;
        let program = Arc::new(program);
        Ok(CompiledEntries {
            program,
            data,
            timer: ExecutionTimerConfig {
                limit: crate::limits::wall_backstop(timeout),
                check_interval: NonZeroU32::MIN.saturating_add(63),
            },
            max_instructions,
            idle: Mutex::new(Vec::new()),
        })
    }

    fn machine(&self) -> Result<RegoVM, String> {
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .pop();
        if let Some(vm) = idle {
            return Ok(vm);
        }
        let mut vm = RegoVM::new();
        vm.load_program(Arc::clone(&self.program));
        vm.set_data(self.data.clone()).map_err(|e| e.to_string())?;
        vm.set_max_instructions(self.max_instructions);
        vm.set_execution_timer_config(Some(self.timer));
        vm.set_strict_builtin_errors(true);
        Ok(vm)
    }

    /// Evaluate one entry point; `Err` is the engine's message.
    pub(crate) fn run(
        &self,
        entry: Entry,
        input: regorus::Value,
    ) -> Result<regorus::Value, String> {
        let mut vm = self.machine()?;
        vm.set_input(input);
        let result = vm.execute_entry_point_by_name(entry.rule());
        // A machine that failed may hold half-built state; let it go.
        if result.is_ok() {
            let mut idle = self
                .idle
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if idle.len() < POOL {
                idle.push(vm);
            }
        }
        result.map_err(|e| e.to_string())
    }
}
