//! `{{ … }}` templates in step arguments, rendered with minijinja.
//!
//! A string that is exactly one `{{ expr }}` becomes the expression's JSON
//! value (a list stays a list, a number a number); any other string with a
//! template renders to a string. Undefined names are errors, never empty
//! strings.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use minijinja::{Environment, Expression, UndefinedBehavior};
use serde_json::Value;

/// How many distinct expressions one run keeps compiled; past this, an
/// expression is compiled for each use (a plan's templates are bounded by
/// its steps, so only a pathological plan gets there).
const MAX_CACHED_EXPRESSIONS: usize = 256;

/// The `{{ expr }}` expressions a run's templates compiled, by their text:
/// a chain of steps that all read `{{ task.id }}` parses it once.
#[derive(Default)]
pub(crate) struct Expressions<'env> {
    compiled: Mutex<HashMap<String, Expression<'env, 'static>>>,
}

impl std::fmt::Debug for Expressions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Expressions")
    }
}

pub(crate) struct Renderer {
    env: Environment<'static>,
    /// For summaries: a missing value renders empty instead of failing.
    lenient: Environment<'static>,
}

impl std::fmt::Debug for Renderer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Renderer")
    }
}

impl Renderer {
    pub(crate) fn new() -> Self {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        // `lines`: split a text attachment into lines for log tools.
        env.add_filter("lines", |s: String| -> Vec<String> {
            s.lines().map(str::to_string).collect()
        });
        let mut lenient = env.clone();
        lenient.set_undefined_behavior(UndefinedBehavior::Chainable);
        Renderer { env, lenient }
    }

    /// Render a text template where missing values (a step that did not
    /// run) are empty rather than errors.
    pub(crate) fn render_text(
        &self,
        template: &str,
        ctx: &minijinja::Value,
    ) -> Result<String, String> {
        self.lenient
            .render_str(template, ctx.clone())
            .map_err(|e| describe(&e))
    }

    /// Render every template in `value` against `ctx`, keeping what it
    /// compiles in `cache`.
    pub(crate) fn render<'env>(
        &'env self,
        value: &Value,
        ctx: &minijinja::Value,
        cache: &Expressions<'env>,
    ) -> Result<Value, String> {
        if !has_template(value) {
            return Ok(value.clone());
        }
        match value {
            Value::String(s) => self.render_str(s, ctx, cache),
            Value::Array(items) => items
                .iter()
                .map(|v| self.render(v, ctx, cache))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array),
            Value::Object(map) => {
                let mut out = serde_json::Map::with_capacity(map.len());
                for (k, v) in map {
                    out.insert(k.clone(), self.render(v, ctx, cache)?);
                }
                Ok(Value::Object(out))
            }
            other => Ok(other.clone()),
        }
    }

    /// Evaluate `expr`, compiled once per `cache`.
    fn eval<'env>(
        &'env self,
        expr: &str,
        ctx: &minijinja::Value,
        cache: &Expressions<'env>,
    ) -> Result<minijinja::Value, minijinja::Error> {
        let mut compiled = cache
            .compiled
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(e) = compiled.get(expr) {
            return e.eval(ctx);
        }
        let e = self.env.compile_expression_owned(expr.to_string())?;
        let value = e.eval(ctx);
        if compiled.len() < MAX_CACHED_EXPRESSIONS {
            compiled.insert(expr.to_string(), e);
        }
        value
    }

    fn render_str<'env>(
        &'env self,
        s: &str,
        ctx: &minijinja::Value,
        cache: &Expressions<'env>,
    ) -> Result<Value, String> {
        if !s.contains("{{") && !s.contains("{%") {
            return Ok(Value::String(s.to_string()));
        }
        if let Some(expr) = single_expression(s) {
            let value = self
                .eval(expr, ctx, cache)
                .map_err(|e| format!("in `{s}`: {}", describe(&e)))?;
            if value.is_undefined() {
                return Err(format!("in `{s}`: `{}` is undefined", expr.trim()));
            }
            return serde_json::to_value(&value).map_err(|e| format!("in `{s}`: {e}"));
        }
        self.env
            .render_str(s, ctx.clone())
            .map(Value::String)
            .map_err(|e| format!("in `{s}`: {}", describe(&e)))
    }
}

/// The expression inside `{{ … }}` when the whole string is one template.
fn single_expression(s: &str) -> Option<&str> {
    let inner = s.trim().strip_prefix("{{")?.strip_suffix("}}")?;
    (!inner.contains("{{") && !inner.contains("}}")).then_some(inner)
}

fn describe(e: &minijinja::Error) -> String {
    match e.detail() {
        Some(detail) => format!("{} ({detail})", e.kind()),
        None => e.to_string(),
    }
}

/// Whether `value` holds a template anywhere.
pub(crate) fn has_template(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains("{{") || s.contains("{%"),
        Value::Array(items) => items.iter().any(has_template),
        Value::Object(map) => map.values().any(has_template),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn mv(v: &Value) -> minijinja::Value {
        minijinja::Value::from_serialize(v)
    }

    #[test]
    fn a_whole_string_template_keeps_the_json_type() {
        let r = Renderer::new();
        let ctx =
            json!({"attachments": {"series": [1.0, 2.0]}, "alert": {"labels": {"port": "8080"}}});
        assert_eq!(
            r.render(
                &json!("{{ attachments.series }}"),
                &mv(&ctx),
                &Expressions::default()
            )
            .unwrap(),
            json!([1.0, 2.0])
        );
        assert_eq!(
            r.render(
                &json!("http://127.0.0.1:{{ alert.labels.port }}/health"),
                &mv(&ctx),
                &Expressions::default()
            )
            .unwrap(),
            json!("http://127.0.0.1:8080/health")
        );
    }

    #[test]
    fn an_undefined_name_is_an_error_naming_the_template() {
        let r = Renderer::new();
        let err = r
            .render(
                &json!({"url": "{{ alert.annotations.health_url }}"}),
                &mv(&json!({"alert": {}})),
                &Expressions::default(),
            )
            .unwrap_err();
        assert!(err.contains("alert.annotations.health_url"), "{err}");
    }

    #[test]
    fn the_lines_filter_splits_text() {
        let r = Renderer::new();
        let ctx = json!({"attachments": {"log": "a\nb\n"}});
        assert_eq!(
            r.render(
                &json!("{{ attachments.log | lines }}"),
                &mv(&ctx),
                &Expressions::default()
            )
            .unwrap(),
            json!(["a", "b"])
        );
    }

    #[test]
    fn a_compiled_expression_reads_each_context_afresh() {
        let r = Renderer::new();
        let cache = Expressions::default();
        let template = json!({"a": "{{ task.id }}", "b": "{{ task.id }}"});
        for id in ["t-1", "t-2"] {
            let ctx = mv(&json!({"task": {"id": id}}));
            assert_eq!(
                r.render(&template, &ctx, &cache).unwrap(),
                json!({"a": id, "b": id})
            );
        }
        assert_eq!(cache.compiled.lock().unwrap().len(), 1);
        // An undefined name is an error on the cached path too.
        let err = r
            .render(&template, &mv(&json!({"task": {}})), &cache)
            .unwrap_err();
        assert!(err.contains("task.id"), "{err}");
    }

    #[test]
    fn past_the_cache_limit_expressions_still_evaluate() {
        let r = Renderer::new();
        let cache = Expressions::default();
        let ctx = mv(&json!({"n": 2}));
        for i in 0..MAX_CACHED_EXPRESSIONS + 10 {
            let template = json!(format!("{{{{ n + {i} }}}}"));
            assert_eq!(r.render(&template, &ctx, &cache).unwrap(), json!(i + 2));
        }
        assert_eq!(cache.compiled.lock().unwrap().len(), MAX_CACHED_EXPRESSIONS);
    }
}
