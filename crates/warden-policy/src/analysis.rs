//! Static facts about a bundle read from regorus's AST: which rules are
//! functions, tests or partial sets, and which functions call which.
//!
//! regorus stops recursion between rules at run time, but a recursive
//! *function* overflows the thread's stack and aborts the process. OPA rejects
//! recursion when it compiles a bundle; we do the same at load time, so a
//! broken bundle can never take the agent down.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value as Json;

use crate::error::PolicyError;

/// What kind of rule a definition is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RuleKind {
    /// `f(x) := ...`
    Function,
    /// `p contains x if ...`
    PartialSet,
    /// Everything else (complete rules, partial objects, defaults).
    Other,
}

/// One rule definition.
#[derive(Debug, Clone)]
pub(crate) struct RuleInfo {
    /// Full data path without the leading `data`.
    pub path: Vec<String>,
    pub kind: RuleKind,
    pub line: u32,
    pub column: u32,
    /// Byte range of the whole rule in its module's source.
    pub span: (usize, usize),
    /// Byte range of the head reference (`deny` in `deny contains msg if`).
    pub head_span: (usize, usize),
    /// Functions this rule calls (or substitutes with `with`), resolved to
    /// full data paths; builtins resolve to paths no rule defines.
    pub calls: Vec<Vec<String>>,
}

/// One Rego module.
#[derive(Debug, Clone)]
pub(crate) struct ModuleInfo {
    pub file: String,
    pub source: String,
    pub package: Vec<String>,
    pub rules: Vec<RuleInfo>,
}

/// Read the modules an engine holds.
pub(crate) fn analyze(engine: &regorus::Engine) -> Result<Vec<ModuleInfo>, String> {
    let text = engine.get_ast_as_json().map_err(|e| e.to_string())?;
    let doc: Json = serde_json::from_str(&text).map_err(|e| format!("cannot read the AST: {e}"))?;
    let Json::Array(entries) = doc else {
        return Err("the AST is not a list of modules".into());
    };
    entries.iter().map(module_info).collect()
}

fn module_info(entry: &Json) -> Result<ModuleInfo, String> {
    let file = entry["source"]["file"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let source = entry["source"]["contents"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let ast = &entry["ast"];
    let package =
        ref_path(&ast["package"]["refr"]).ok_or_else(|| format!("{file}: unreadable package"))?;
    let mut imports = BTreeMap::new();
    for import in ast["imports"].as_array().into_iter().flatten() {
        let Some(path) = ref_path(&import["refr"]) else {
            continue;
        };
        if path.first().map(String::as_str) != Some("data") || path.len() < 2 {
            continue;
        }
        let alias = match span_of(&import["as"]) {
            Some((s, e)) => source.get(s..e).map(str::to_string),
            None => path.last().cloned(),
        };
        if let Some(alias) = alias {
            imports.insert(alias, path[1..].to_vec());
        }
    }
    let mut rules = Vec::new();
    for rule in ast["rules"].as_array().into_iter().flatten() {
        if let Some(info) = rule_info(rule, &package, &imports) {
            rules.push(info);
        }
    }
    Ok(ModuleInfo {
        file,
        source,
        package,
        rules,
    })
}

fn rule_info(
    rule: &Json,
    package: &[String],
    imports: &BTreeMap<String, Vec<String>>,
) -> Option<RuleInfo> {
    let (kind, head_ref, span) = if let Some(spec) = rule.get("Spec") {
        let head = &spec["head"];
        let (kind, body) = if let Some(h) = head.get("Func") {
            (RuleKind::Function, h)
        } else if let Some(h) = head.get("Set") {
            (RuleKind::PartialSet, h)
        } else {
            (RuleKind::Other, head.get("Compr")?)
        };
        (kind, &body["refr"], &spec["span"])
    } else {
        let default = rule.get("Default")?;
        let is_function = default["args"].as_array().is_some_and(|a| !a.is_empty());
        let kind = if is_function {
            RuleKind::Function
        } else {
            RuleKind::Other
        };
        (kind, &default["refr"], &default["span"])
    };
    let local = ref_path(head_ref)?;
    let mut path = package.to_vec();
    path.extend(local);
    let mut calls = Vec::new();
    collect_calls(rule, package, imports, &mut calls);
    Some(RuleInfo {
        path,
        kind,
        line: span["line"].as_u64().unwrap_or(0) as u32,
        column: span["col"].as_u64().unwrap_or(0) as u32,
        span: span_of(span)?,
        head_span: expr_span(head_ref)?,
        calls,
    })
}

/// The static path of a reference (`a.b["c"]`), or `None` when it has a
/// dynamic part.
fn ref_path(expr: &Json) -> Option<Vec<String>> {
    if let Some(var) = expr.get("Var") {
        return Some(vec![var["value"].as_str()?.to_string()]);
    }
    if let Some(dot) = expr.get("RefDot") {
        let mut path = ref_path(&dot["refr"])?;
        path.push(dot["field"].get(1)?.as_str()?.to_string());
        return Some(path);
    }
    if let Some(brack) = expr.get("RefBrack") {
        let mut path = ref_path(&brack["refr"])?;
        path.push(brack["index"].get("String")?["value"].as_str()?.to_string());
        return Some(path);
    }
    None
}

fn span_of(span: &Json) -> Option<(usize, usize)> {
    Some((
        usize::try_from(span["start"].as_u64()?).ok()?,
        usize::try_from(span["end"].as_u64()?).ok()?,
    ))
}

fn expr_span(expr: &Json) -> Option<(usize, usize)> {
    let Json::Object(map) = expr else {
        return None;
    };
    let (_, inner) = map.iter().next()?;
    span_of(&inner["span"])
}

fn resolve(
    path: &[String],
    package: &[String],
    imports: &BTreeMap<String, Vec<String>>,
) -> Vec<String> {
    match path.split_first() {
        Some((head, rest)) if head == "data" => rest.to_vec(),
        Some((head, rest)) if imports.contains_key(head) => {
            let mut full = imports[head].clone();
            full.extend_from_slice(rest);
            full
        }
        _ => {
            let mut full = package.to_vec();
            full.extend_from_slice(path);
            full
        }
    }
}

fn collect_calls(
    node: &Json,
    package: &[String],
    imports: &BTreeMap<String, Vec<String>>,
    out: &mut Vec<Vec<String>>,
) {
    match node {
        Json::Object(map) => {
            if let Some(call) = map.get("Call")
                && let Some(path) = ref_path(&call["fcn"])
            {
                out.push(resolve(&path, package, imports));
            }
            // `with f as g` makes calls to f run g.
            if map.contains_key("refr")
                && let Some(target) = map.get("as")
                && let Some(path) = ref_path(target)
            {
                out.push(resolve(&path, package, imports));
            }
            for value in map.values() {
                collect_calls(value, package, imports, out);
            }
        }
        Json::Array(items) => {
            for item in items {
                collect_calls(item, package, imports, out);
            }
        }
        _ => {}
    }
}

/// Reject a bundle whose functions call each other in a cycle.
pub(crate) fn check_recursion(modules: &[ModuleInfo]) -> Result<(), PolicyError> {
    let mut graph: BTreeMap<&[String], BTreeSet<&[String]>> = BTreeMap::new();
    let mut first_def: BTreeMap<&[String], (&ModuleInfo, &RuleInfo)> = BTreeMap::new();
    for module in modules {
        for rule in module.rules.iter().filter(|r| r.kind == RuleKind::Function) {
            first_def.entry(&rule.path).or_insert((module, rule));
            let edges = graph.entry(&rule.path).or_default();
            edges.extend(rule.calls.iter().map(Vec::as_slice));
        }
    }
    // Iterative depth-first search; a grey node reached again closes a cycle.
    let mut colour: BTreeMap<&[String], u8> = BTreeMap::new();
    for &start in graph.keys() {
        if colour.get(start).copied().unwrap_or(0) != 0 {
            continue;
        }
        let mut stack: Vec<(&[String], Vec<&[String]>)> = Vec::new();
        colour.insert(start, 1);
        stack.push((start, graph[start].iter().copied().collect()));
        while let Some((node, pending)) = stack.last_mut() {
            let node = *node;
            match pending.pop() {
                Some(next) if graph.contains_key(next) => match colour.get(next).copied() {
                    Some(1) => {
                        let mut cycle: Vec<String> = stack
                            .iter()
                            .map(|(n, _)| *n)
                            .skip_while(|n| *n != next)
                            .map(|n| format!("data.{}", n.join(".")))
                            .collect();
                        cycle.push(format!("data.{}", next.join(".")));
                        let (module, rule) = first_def[next];
                        return Err(PolicyError::Rego {
                            file: module.file.clone().into(),
                            line: rule.line,
                            column: rule.column,
                            message: format!(
                                "function data.{} is recursive ({}); Rego does not allow recursion",
                                next.join("."),
                                cycle.join(" -> ")
                            ),
                        });
                    }
                    Some(_) => {}
                    None => {
                        colour.insert(next, 1);
                        stack.push((next, graph[next].iter().copied().collect()));
                    }
                },
                Some(_) => {}
                None => {
                    colour.insert(node, 2);
                    stack.pop();
                }
            }
        }
    }
    Ok(())
}

/// The comment block right above `line` (1-based), without `#` marks.
pub(crate) fn comment_above(source: &str, line: u32) -> Option<String> {
    let lines: Vec<&str> = source.lines().collect();
    let mut at = usize::try_from(line).ok()?.checked_sub(1)?;
    let mut block = Vec::new();
    while at > 0 {
        at -= 1;
        let text = lines.get(at)?.trim();
        match text.strip_prefix('#') {
            Some(comment) if !comment.trim_start().starts_with("METADATA") => {
                block.push(comment.trim().to_string());
            }
            _ => break,
        }
    }
    block.reverse();
    let text = block.join(" ").trim().to_string();
    (!text.is_empty()).then_some(text)
}
