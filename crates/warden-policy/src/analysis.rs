//! Static facts about a bundle read from regorus's AST: which rules are
//! functions, tests or partial sets, and which functions call which.
//!
//! A recursive *function* overflows regorus's interpreter stack, and
//! recursion between rules overflows its bytecode compiler's; either aborts
//! the process. OPA rejects recursion when it compiles a bundle; we do the
//! same at load time, before regorus sees it, so a broken bundle can never
//! take the agent down. Variables bound in a body (`:=`, `some`, `every`,
//! function parameters) are told apart from rule names; one bound only by
//! `=` unification still counts as a reference to a like-named rule.

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
    /// Data paths this rule references or calls, resolved through the
    /// package and imports; builtins resolve to paths no rule defines.
    pub refs: Vec<Vec<String>>,
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
///
/// Each module's AST is serialized straight to a JSON value (the same
/// document `Engine::get_ast_as_json` prints, one module at a time): the
/// pretty-printed text and parsing it back were most of a bundle's load
/// time (`perf`: 60% of `warden policy check` on the default bundle).
pub(crate) fn analyze(engine: &mut regorus::Engine) -> Result<Vec<ModuleInfo>, String> {
    engine
        .get_modules()
        .iter()
        .map(|module| {
            let source = &module.package.span.source;
            let ast =
                serde_json::to_value(&**module).map_err(|e| format!("cannot read the AST: {e}"))?;
            module_info(source.get_path(), source.get_contents(), &ast)
        })
        .collect()
}

fn module_info(file: &str, source: &str, ast: &Json) -> Result<ModuleInfo, String> {
    let file = file.to_string();
    let source = source.to_string();
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
        if let Some(info) = rule_info(rule, &source, &package, &imports) {
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
    source: &str,
    package: &[String],
    imports: &BTreeMap<String, Vec<String>>,
) -> Option<RuleInfo> {
    let mut refs = Vec::new();
    let (kind, head_ref, span) = if let Some(spec) = rule.get("Spec") {
        let head = &spec["head"];
        let (kind, body) = if let Some(h) = head.get("Func") {
            (RuleKind::Function, h)
        } else if let Some(h) = head.get("Set") {
            (RuleKind::PartialSet, h)
        } else {
            (RuleKind::Other, head.get("Compr")?)
        };
        // Function parameters are in scope everywhere in the rule; other
        // locals only in the body that binds them (the head's value sees
        // all bodies' locals).
        let mut params = BTreeSet::new();
        vars_in(&body["args"], &mut params);
        let bodies: Vec<&Json> = spec["bodies"].as_array().into_iter().flatten().collect();
        let mut all_locals = params.clone();
        for b in &bodies {
            let mut locals = params.clone();
            collect_locals(b, source, &mut locals);
            collect_refs(b, package, imports, &locals, &mut refs);
            all_locals.extend(locals);
        }
        if let Json::Object(fields) = body {
            for (key, value) in fields {
                if key != "refr" && key != "args" {
                    collect_refs(value, package, imports, &all_locals, &mut refs);
                }
            }
        }
        (kind, &body["refr"], &spec["span"])
    } else {
        let default = rule.get("Default")?;
        let is_function = default["args"].as_array().is_some_and(|a| !a.is_empty());
        let kind = if is_function {
            RuleKind::Function
        } else {
            RuleKind::Other
        };
        let mut params = BTreeSet::new();
        vars_in(&default["args"], &mut params);
        collect_refs(&default["value"], package, imports, &params, &mut refs);
        (kind, &default["refr"], &default["span"])
    };
    let local = ref_path(head_ref)?;
    let mut path = package.to_vec();
    path.extend(local);
    Some(RuleInfo {
        path,
        kind,
        line: span["line"].as_u64().unwrap_or(0) as u32,
        column: span["col"].as_u64().unwrap_or(0) as u32,
        span: span_of(span)?,
        head_span: expr_span(head_ref)?,
        refs,
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

/// The static leading part of a reference: `a.b[x].c` gives `a.b`.
fn static_prefix(expr: &Json) -> Option<Vec<String>> {
    if let Some(var) = expr.get("Var") {
        return Some(vec![var["value"].as_str()?.to_string()]);
    }
    if let Some(dot) = expr.get("RefDot") {
        let inner = &dot["refr"];
        let mut path = static_prefix(inner)?;
        if ref_path(inner).is_some() {
            path.push(dot["field"].get(1)?.as_str()?.to_string());
        }
        return Some(path);
    }
    if let Some(brack) = expr.get("RefBrack") {
        let inner = &brack["refr"];
        let mut path = static_prefix(inner)?;
        if ref_path(inner).is_some()
            && let Some(key) = brack["index"]
                .get("String")
                .and_then(|s| s["value"].as_str())
        {
            path.push(key.to_string());
        }
        return Some(path);
    }
    None
}

/// Walk the dynamic parts (bracket indexes) of a reference chain.
fn collect_in_chain(
    expr: &Json,
    package: &[String],
    imports: &BTreeMap<String, Vec<String>>,
    locals: &BTreeSet<String>,
    out: &mut Vec<Vec<String>>,
) {
    if let Some(dot) = expr.get("RefDot") {
        collect_in_chain(&dot["refr"], package, imports, locals, out);
    } else if let Some(brack) = expr.get("RefBrack") {
        collect_refs(&brack["index"], package, imports, locals, out);
        collect_in_chain(&brack["refr"], package, imports, locals, out);
    }
}

/// References in `node`, except those that start with a local variable.
fn collect_refs(
    node: &Json,
    package: &[String],
    imports: &BTreeMap<String, Vec<String>>,
    locals: &BTreeSet<String>,
    out: &mut Vec<Vec<String>>,
) {
    match node {
        Json::Object(map) => {
            if let Some(call) = map.get("Call") {
                if let Some(path) = ref_path(&call["fcn"]) {
                    out.push(resolve(&path, package, imports));
                }
                collect_refs(&call["params"], package, imports, locals, out);
                return;
            }
            if map.contains_key("Var") || map.contains_key("RefDot") || map.contains_key("RefBrack")
            {
                if let Some(path) = static_prefix(node)
                    && !path.first().is_some_and(|head| locals.contains(head))
                {
                    out.push(resolve(&path, package, imports));
                }
                collect_in_chain(node, package, imports, locals, out);
                return;
            }
            for value in map.values() {
                collect_refs(value, package, imports, locals, out);
            }
        }
        Json::Array(items) => {
            for item in items {
                collect_refs(item, package, imports, locals, out);
            }
        }
        _ => {}
    }
}

/// Every variable name in a pattern (`x`, `[a, b]`, `{"k": v}`).
fn vars_in(node: &Json, out: &mut BTreeSet<String>) {
    match node {
        Json::Object(map) => {
            if let Some(name) = map.get("Var").and_then(|v| v["value"].as_str()) {
                out.insert(name.to_string());
                return;
            }
            for value in map.values() {
                vars_in(value, out);
            }
        }
        Json::Array(items) => items.iter().for_each(|item| vars_in(item, out)),
        _ => {}
    }
}

/// Variables a body binds with `:=`, `some` or `every`.
fn collect_locals(node: &Json, source: &str, out: &mut BTreeSet<String>) {
    let text = |span: &Json| span_of(span).and_then(|(s, e)| source.get(s..e).map(str::to_string));
    match node {
        Json::Object(map) => {
            if let Some(assign) = map.get("AssignExpr")
                && assign["op"] == "ColEq"
            {
                vars_in(&assign["lhs"], out);
            }
            if let Some(some_in) = map.get("SomeIn") {
                vars_in(&some_in["key"], out);
                vars_in(&some_in["value"], out);
            }
            if let Some(some_vars) = map.get("SomeVars") {
                out.extend(
                    some_vars["vars"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(text),
                );
            }
            if let Some(every) = map.get("Every") {
                out.extend(text(&every["key"]));
                out.extend(text(&every["value"]));
            }
            for value in map.values() {
                collect_locals(value, source, out);
            }
        }
        Json::Array(items) => items
            .iter()
            .for_each(|item| collect_locals(item, source, out)),
        _ => {}
    }
}

/// Reject a bundle whose rules or functions depend on themselves.
pub(crate) fn check_recursion(modules: &[ModuleInfo]) -> Result<(), PolicyError> {
    let rules: Vec<(&ModuleInfo, &RuleInfo)> = modules
        .iter()
        .flat_map(|m| m.rules.iter().map(move |r| (m, r)))
        .collect();
    let mut by_path: BTreeMap<&[String], Vec<usize>> = BTreeMap::new();
    for (at, (_, rule)) in rules.iter().enumerate() {
        by_path.entry(&rule.path).or_default().push(at);
    }
    // A reference reaches every rule at, above or below its path.
    let mut graph: BTreeMap<&[String], BTreeSet<&[String]>> = BTreeMap::new();
    for (_, rule) in &rules {
        let edges = graph.entry(&rule.path).or_default();
        for target in &rule.refs {
            for path in by_path.keys() {
                if path.starts_with(target) || target.starts_with(path) {
                    edges.insert(path);
                }
            }
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
                Some(next) => match colour.get(next).copied() {
                    Some(1) => {
                        let mut cycle: Vec<String> = stack
                            .iter()
                            .map(|(n, _)| *n)
                            .skip_while(|n| *n != next)
                            .map(|n| format!("data.{}", n.join(".")))
                            .collect();
                        cycle.push(format!("data.{}", next.join(".")));
                        let (module, rule) = rules[by_path[next][0]];
                        let what = if rule.kind == RuleKind::Function {
                            "function"
                        } else {
                            "rule"
                        };
                        return Err(PolicyError::Rego {
                            file: module.file.clone().into(),
                            line: rule.line,
                            column: rule.column,
                            message: format!(
                                "{what} data.{} is recursive ({}); Rego does not allow recursion",
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
