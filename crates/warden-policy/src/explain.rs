//! Which rules produced each reason.
//!
//! regorus has no per-rule provenance for partial sets, so we ask a second
//! question: every `name contains x if ...` rule of the bundle is copied
//! under a unique name into its own module (same package, same imports, so
//! the same meaning), the copies are evaluated one by one on the same input,
//! and a reason is attributed to every copy whose set holds it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use crate::analysis::{RuleKind, comment_above};
use crate::bundle::{Bundle, rule_ref};
use crate::decision::DecisionRecord;

/// A decision with the rules behind each reason.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Explanation {
    /// The decision, as [`crate::PolicyEngine::decide_json`] made it.
    pub record: DecisionRecord,
    /// One entry per reason, in the decision's order.
    pub reasons: Vec<ReasonSource>,
}

/// One reason and where it came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReasonSource {
    /// The reason.
    pub reason: String,
    /// Rules whose set holds it; empty when no partial-set rule produced it
    /// (a `policy error`, or a reason written directly in the entry).
    pub rules: Vec<RuleSource>,
}

/// A rule that produced a reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleSource {
    /// The set the rule adds to (`data.warden.rules.call.deny`).
    pub rule: String,
    /// File that defines it.
    pub file: PathBuf,
    /// Line of the rule head.
    pub line: u32,
    /// The comment right above the rule, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

pub(crate) fn explain(
    bundle: &Bundle,
    record: DecisionRecord,
    input: &serde_json::Value,
) -> Explanation {
    let sources = attribute(bundle, input).unwrap_or_default();
    let reasons = record
        .decision
        .reasons
        .iter()
        .map(|reason| ReasonSource {
            reason: reason.clone(),
            rules: sources.get(reason).cloned().unwrap_or_default(),
        })
        .collect();
    Explanation { record, reasons }
}

/// Map each string any partial-set rule produces to the rules producing it.
fn attribute(
    bundle: &Bundle,
    input: &serde_json::Value,
) -> Result<BTreeMap<String, Vec<RuleSource>>, String> {
    let mut engine = regorus::Engine::new();
    engine.set_execution_timer_config(regorus::utils::limits::ExecutionTimerConfig {
        limit: bundle.timeout * 20,
        check_interval: std::num::NonZeroU32::MIN,
    });
    // Not strict, as this engine is not: a builtin error makes the
    // expression undefined instead of losing the whole rule.
    crate::limits::guard_engine(&mut engine, false)?;
    let mut copies = Vec::new();
    for module in &bundle.modules {
        let mut source = module.source.clone();
        for rule in module
            .rules
            .iter()
            .filter(|r| r.kind == RuleKind::PartialSet)
        {
            let (Some(head), Some(rest)) = (
                module.source.get(rule.span.0..rule.head_span.0),
                module.source.get(rule.head_span.1..rule.span.1),
            ) else {
                continue;
            };
            let name = format!("__warden_explain_{}", copies.len());
            source.push_str(&format!("\n{head}{name}{rest}\n"));
            let mut path = module.package.clone();
            path.push(name);
            copies.push((
                path,
                RuleSource {
                    rule: rule_ref(&rule.path),
                    file: PathBuf::from(&module.file),
                    line: rule.line,
                    title: comment_above(&module.source, rule.line),
                },
            ));
        }
        engine
            .add_policy(module.file.clone(), source)
            .map_err(|e| e.to_string())?;
    }
    engine
        .add_data(regorus::Value::from(bundle.data.clone()))
        .map_err(|e| e.to_string())?;
    engine.set_input(regorus::Value::from(input.clone()));
    let mut found: BTreeMap<String, Vec<RuleSource>> = BTreeMap::new();
    let limits = crate::limits::Limits {
        timeout: bundle.timeout * 20,
        ..bundle.limits
    };
    for (path, source) in copies {
        let (value, exceeded) =
            crate::limits::scoped(limits, crate::limits::Stopwatch::start(), || {
                engine.eval_rule(rule_ref(&path))
            });
        let (Ok(value), None) = (value, exceeded) else {
            continue;
        };
        let Ok(json) = serde_json::to_value(&value) else {
            continue;
        };
        for item in json.as_array().into_iter().flatten() {
            if let Some(text) = item.as_str() {
                found
                    .entry(text.to_string())
                    .or_default()
                    .push(source.clone());
            }
        }
    }
    Ok(found)
}
