use std::time::Duration;

use crate::analysis;
use crate::error::PolicyError;
use crate::limits::{self, Limits};

/// One ad-hoc Rego query over given modules, data and input, outside any
/// bundle: for conformance suites and tools, not for decisions.
///
/// It goes through the same guards as a bundle (recursive functions are
/// rejected, a time budget applies, builtins are size-checked against the
/// default limits).
///
/// ```
/// use warden_policy::RegoQuery;
///
/// let query = RegoQuery {
///     modules: vec!["package t\n\np contains x if {\n    some x in input.xs\n    x > 1\n}\n".into()],
///     input: Some(serde_json::json!({"xs": [1, 2, 3]})),
///     query: "data.t.p = x".into(),
///     ..RegoQuery::default()
/// };
/// assert_eq!(query.run()?, vec![serde_json::json!({"x": [2, 3]})]);
/// # Ok::<(), warden_policy::PolicyError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct RegoQuery {
    /// Module sources; named `module<N>.rego` in errors.
    pub modules: Vec<String>,
    /// The data document (an object), if any.
    pub data: Option<serde_json::Value>,
    /// The input document, if any.
    pub input: Option<serde_json::Value>,
    /// A query whose value becomes the input (overrides `input`).
    pub input_term: Option<String>,
    /// The query.
    pub query: String,
    /// Whether builtin errors fail the query (OPA's `strict-builtin-errors`)
    /// instead of making the expression undefined. Default false, as in OPA.
    pub strict_builtin_errors: bool,
    /// Whether modules use Rego v0 syntax. Default false.
    pub rego_v0: bool,
    /// Wall-clock budget. Default 1 s.
    pub timeout: Duration,
}

impl Default for RegoQuery {
    fn default() -> Self {
        RegoQuery {
            modules: Vec::new(),
            data: None,
            input: None,
            input_term: None,
            query: String::new(),
            strict_builtin_errors: false,
            rego_v0: false,
            timeout: Duration::from_secs(1),
        }
    }
}

impl RegoQuery {
    /// Run the query. Each result is its bindings object when the query
    /// binds variables, else the value of its last expression; sets come
    /// out as sorted arrays.
    pub fn run(&self) -> Result<Vec<serde_json::Value>, PolicyError> {
        let fail = |e: &dyn std::fmt::Display| PolicyError::Query {
            query: self.query.clone(),
            message: format!("{e:#}").trim().to_string(),
        };
        let mut engine = regorus::Engine::new();
        engine.set_rego_v0(self.rego_v0);
        engine.set_execution_timer_config(regorus::utils::limits::ExecutionTimerConfig {
            limit: self.timeout,
            check_interval: std::num::NonZeroU32::MIN.saturating_add(63),
        });
        limits::guard_engine(&mut engine, self.strict_builtin_errors).map_err(|e| fail(&e))?;
        let limits = Limits::new(
            crate::DEFAULT_MAX_BUILTIN_ELEMENTS,
            crate::DEFAULT_MAX_BUILTIN_BYTES,
            self.timeout,
        );
        if let Some(data) = self.data.as_ref().filter(|d| !d.is_null()) {
            engine
                .add_data(regorus::Value::from(data.clone()))
                .map_err(|e| fail(&e))?;
        }
        let input = self.input.clone().map(regorus::Value::from);
        if let Some(input) = &input {
            engine.set_input(input.clone());
        }
        if let Some(term) = &self.input_term {
            let (results, exceeded) = limits::scoped(limits, limits::Stopwatch::start(), || {
                engine.eval_query(term.clone(), false)
            });
            if let Some(exceeded) = exceeded {
                return Err(fail(&exceeded));
            }
            let results = results.map_err(|e| fail(&e))?;
            let value = results
                .result
                .last()
                .and_then(|r| r.expressions.last())
                .map(|e| e.value.clone())
                .ok_or_else(|| fail(&"the input term has no value"))?;
            engine.set_input(value);
        }
        for (n, module) in self.modules.iter().enumerate() {
            engine
                .add_policy(format!("module{n}.rego"), module.clone())
                .map_err(|e| fail(&e))?;
        }
        let modules = analysis::analyze(&mut engine).map_err(|e| fail(&e))?;
        analysis::check_recursion(&modules)?;
        engine.set_strict_builtin_errors(self.strict_builtin_errors);
        let (results, exceeded) = limits::scoped(limits, limits::Stopwatch::start(), || {
            engine.eval_query(self.query.clone(), false)
        });
        if let Some(exceeded) = exceeded {
            return Err(fail(&exceeded));
        }
        let results = results.map_err(|e| fail(&e))?;
        results
            .result
            .iter()
            .map(|r| {
                let bound = r.bindings.as_object().is_ok_and(|b| !b.is_empty());
                let value = if bound {
                    r.bindings.clone()
                } else {
                    r.expressions
                        .last()
                        .map_or(regorus::Value::Undefined, |e| e.value.clone())
                };
                serde_json::to_value(&value).map_err(|e| fail(&e))
            })
            .collect()
    }
}
