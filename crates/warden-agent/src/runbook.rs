//! Runbooks: declarative plans matched on alerts, and the offline planner
//! built on them.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use warden_types::ToolManifest;

use crate::error::AgentError;
use crate::planner::{PlanContext, Planner, Proposal};
use crate::task::{Step, Task};
use crate::template::has_template;

/// One runbook file.
///
/// ```yaml
/// name: checkout-down
/// description: The checkout health check fails.
/// match:
///   labels: {alertname: CheckoutDown}
///   severity: [critical]
///   keywords: [checkout]
/// steps:
///   - id: probe
///     tool: http-probe
///     why: confirm the failure
///     args: {url: "{{ alert.annotations.health_url }}"}
/// summary: "health: {{ steps.probe.output.status }}"
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Runbook {
    /// Unique name.
    pub name: String,
    /// What it is for.
    #[serde(default)]
    pub description: String,
    /// When it applies. A runbook without criteria is only used by name.
    #[serde(default, rename = "match")]
    pub matches: Match,
    /// Steps, with templated arguments.
    pub steps: Vec<Step>,
    /// Summary template rendered when the task ends.
    #[serde(default)]
    pub summary: Option<String>,
    /// The file it came from.
    #[serde(skip)]
    pub file: PathBuf,
}

/// Match criteria; every one given must hold.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Match {
    /// Alert labels that must be equal.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Normalised severities (`critical`, `warning`, `info`), any of.
    #[serde(default)]
    pub severity: Vec<String>,
    /// Services, any of.
    #[serde(default)]
    pub service: Vec<String>,
    /// Task sources (`alertmanager`, `azure-monitor`, `cli`), any of.
    #[serde(default)]
    pub source: Vec<String>,
    /// Words of which at least one appears in the goal or alert text.
    #[serde(default)]
    pub keywords: Vec<String>,
}

impl Match {
    fn is_empty(&self) -> bool {
        self.labels.is_empty()
            && self.severity.is_empty()
            && self.service.is_empty()
            && self.source.is_empty()
            && self.keywords.is_empty()
    }

    /// How many criteria hold, or `None` when one fails.
    fn score(&self, task: &Task) -> Option<usize> {
        if self.is_empty() {
            return None;
        }
        let alert = task.alert.as_ref();
        let mut score = 0;
        for (k, v) in &self.labels {
            (alert?.labels.get(k)? == v).then_some(())?;
            score += 1;
        }
        if !self.severity.is_empty() {
            let sev = &alert?.severity;
            self.severity
                .iter()
                .any(|s| s.eq_ignore_ascii_case(sev))
                .then_some(())?;
            score += 1;
        }
        if !self.service.is_empty() {
            let svc = alert?.service.as_deref()?;
            self.service.iter().any(|s| s == svc).then_some(())?;
            score += 1;
        }
        if !self.source.is_empty() {
            self.source.contains(&task.source).then_some(())?;
            score += 1;
        }
        if !self.keywords.is_empty() {
            let text = task.text().to_lowercase();
            let hits = self
                .keywords
                .iter()
                .filter(|k| text.contains(&k.to_lowercase()))
                .count();
            (hits > 0).then_some(())?;
            score += hits;
        }
        Some(score)
    }
}

/// A validated set of runbooks.
#[derive(Debug, Clone, Default)]
pub struct Runbooks {
    books: Vec<Runbook>,
}

impl Runbooks {
    /// Load every `*.yaml`/`*.yml` in `dir` and check each step against the
    /// tools: the tool exists, step ids are unique, dependencies and
    /// conditions name earlier steps, templates parse, and the literal
    /// arguments satisfy the tool's input schema (templated values are
    /// checked when rendered). All problems are reported at once, each as
    /// `file:line: …`.
    pub fn load_dir(dir: impl AsRef<Path>, tools: &[ToolManifest]) -> Result<Self, AgentError> {
        let dir = dir.as_ref();
        let mut files: Vec<PathBuf> = fs_err::read_dir(dir)
            .map_err(|e| AgentError::Runbook {
                errors: vec![format!("{}: {e}", dir.display())],
            })?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
            .collect();
        files.sort();
        let mut books = Vec::new();
        let mut errors = Vec::new();
        for file in files {
            let text = crate::Limits::default()
                .read_file(&file, crate::Input::Runbook)
                .and_then(|b| {
                    String::from_utf8(b).map_err(|_| AgentError::Input {
                        what: "runbook",
                        origin: file.display().to_string(),
                        reason: "not UTF-8 text".into(),
                    })
                });
            match text {
                Ok(text) => match parse(&file, &text, tools) {
                    Ok(book) => books.push(book),
                    Err(mut e) => errors.append(&mut e),
                },
                Err(e) => errors.push(e.to_string()),
            }
        }
        let mut names = HashSet::new();
        for b in &books {
            if !names.insert(b.name.clone()) {
                errors.push(format!(
                    "{}:1: runbook name `{}` is used twice",
                    b.file.display(),
                    b.name
                ));
            }
        }
        if errors.is_empty() {
            Ok(Runbooks { books })
        } else {
            Err(AgentError::Runbook { errors })
        }
    }

    /// Parse one runbook from text (`origin` names it in errors).
    pub fn parse(origin: &str, text: &str, tools: &[ToolManifest]) -> Result<Runbook, AgentError> {
        parse(Path::new(origin), text, tools).map_err(|errors| AgentError::Runbook { errors })
    }

    /// The runbooks, in file order.
    pub fn iter(&self) -> impl Iterator<Item = &Runbook> {
        self.books.iter()
    }

    /// The runbook named `name`.
    pub fn get(&self, name: &str) -> Option<&Runbook> {
        self.books.iter().find(|b| b.name == name)
    }

    /// The best match for `task`: the most criteria holding, first file on a tie.
    pub fn best_match(&self, task: &Task) -> Option<&Runbook> {
        let mut best: Option<(usize, &Runbook)> = None;
        for b in &self.books {
            if let Some(score) = b.matches.score(task)
                && best.is_none_or(|(s, _)| score > s)
            {
                best = Some((score, b));
            }
        }
        best.map(|(_, b)| b)
    }
}

fn line_of(text: &str, needle_key: &str, value: &str, nth: usize) -> usize {
    let mut seen = 0;
    for (i, line) in text.lines().enumerate() {
        let t = line.trim_start().trim_start_matches("- ").trim();
        if let Some(rest) = t.strip_prefix(needle_key) {
            let v = rest
                .trim_start_matches(':')
                .trim()
                .trim_matches(['"', '\'']);
            if v == value {
                if seen == nth {
                    return i + 1;
                }
                seen += 1;
            }
        }
    }
    1
}

fn parse(file: &Path, text: &str, tools: &[ToolManifest]) -> Result<Runbook, Vec<String>> {
    let shown = file.display();
    let mut book: Runbook = serde_yaml_ng::from_str(text).map_err(|e| {
        let line = e.location().map_or(1, |l| l.line());
        vec![format!("{shown}:{line}: {e}")]
    })?;
    book.file = file.to_path_buf();
    let mut errors = Vec::new();
    let mut seen: HashSet<&str> = HashSet::new();
    let mut id_counts: BTreeMap<&str, usize> = BTreeMap::new();
    for step in &book.steps {
        let nth = id_counts.entry(step.id.as_str()).or_insert(0);
        let line = line_of(text, "id", &step.id, *nth);
        *nth += 1;
        let at = |msg: String| format!("{shown}:{line}: step `{}`: {msg}", step.id);
        if !seen.insert(step.id.as_str()) {
            errors.push(at("the step id is used twice".into()));
        }
        for dep in &step.depends_on {
            if !seen.contains(dep.as_str()) || dep == &step.id {
                errors.push(at(format!(
                    "depends on `{dep}`, which is not an earlier step"
                )));
            }
        }
        if let Some(cond) = &step.when
            && !step.depends_on.contains(&cond.step)
        {
            errors.push(at(format!(
                "`when` tests step `{}`, which must also be in depends_on",
                cond.step
            )));
        }
        check_templates(&step.args, &mut |e| errors.push(at(e)));
        let Some(tool) = tools.iter().find(|t| t.name == step.tool) else {
            let mut names: Vec<&str> = tools.iter().map(|t| t.name.as_str()).collect();
            names.sort_unstable();
            errors.push(at(format!(
                "unknown tool `{}` (loaded: {})",
                step.tool,
                names.join(", ")
            )));
            continue;
        };
        for e in schema_errors(&tool.input_schema, &step.args) {
            errors.push(at(format!("arguments for `{}`: {e}", tool.name)));
        }
    }
    if book.steps.is_empty() {
        errors.push(format!("{shown}:1: runbook `{}` has no steps", book.name));
    }
    if let Some(s) = &book.summary {
        check_templates(&serde_json::Value::String(s.clone()), &mut |e| {
            errors.push(format!("{shown}: summary: {e}"))
        });
    }
    if errors.is_empty() {
        Ok(book)
    } else {
        Err(errors)
    }
}

fn check_templates(value: &serde_json::Value, report: &mut dyn FnMut(String)) {
    match value {
        serde_json::Value::String(s) if has_template(value) => {
            let env = minijinja::Environment::new();
            if let Err(e) = env.template_from_str(s) {
                report(format!("template `{s}` does not parse: {e}"));
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| check_templates(v, report)),
        serde_json::Value::Object(map) => map.values().for_each(|v| check_templates(v, report)),
        _ => {}
    }
}

/// Schema violations of `args`, ignoring values that are still templates.
pub(crate) fn schema_errors(schema: &serde_json::Value, args: &serde_json::Value) -> Vec<String> {
    // The same checks as `jsonschema::validator_for`, a fraction of the memory.
    let validator = match warden_sandbox::validator_for(schema) {
        Ok(v) => v,
        Err(e) => return vec![format!("the tool's input schema is invalid: {e}")],
    };
    validator
        .iter_errors(args)
        .filter_map(|e| {
            let path = e.instance_path().to_string();
            let templated = (0..=path.len())
                .rev()
                .filter(|&i| i == path.len() || path.as_bytes().get(i) == Some(&b'/'))
                .any(|i| {
                    args.pointer(&path[..i])
                        .is_some_and(|v| has_template(v) && v.is_string())
                });
            (!templated).then(|| {
                if path.is_empty() {
                    e.to_string()
                } else {
                    format!("{path}: {e}")
                }
            })
        })
        .collect()
}

/// The offline default planner: the best-matching runbook's steps.
#[derive(Debug, Clone)]
pub struct RunbookPlanner {
    runbooks: Runbooks,
    forced: Option<String>,
}

impl RunbookPlanner {
    /// Plan from `runbooks`, choosing by match criteria.
    pub fn new(runbooks: Runbooks) -> Self {
        RunbookPlanner {
            runbooks,
            forced: None,
        }
    }

    /// Always use the runbook named `name`.
    pub fn only(mut self, name: impl Into<String>) -> Self {
        self.forced = Some(name.into());
        self
    }
}

#[async_trait]
impl Planner for RunbookPlanner {
    fn name(&self) -> String {
        "runbook".into()
    }

    async fn plan(&self, ctx: &PlanContext<'_>) -> Result<Proposal, AgentError> {
        let book = match &self.forced {
            Some(name) => self.runbooks.get(name).ok_or_else(|| AgentError::Runbook {
                errors: vec![format!("no runbook named `{name}`")],
            })?,
            None => match self.runbooks.best_match(ctx.task) {
                Some(b) => b,
                None => {
                    return Ok(Proposal::no_match(format!(
                        "none of {} runbooks matches",
                        self.runbooks.books.len()
                    )));
                }
            },
        };
        let mut p = Proposal::steps(format!("runbook:{}", book.name), book.steps.clone());
        p.note = Some(format!(
            "runbook `{}` ({}) matched",
            book.name,
            book.file.display()
        ));
        p.summary = book.summary.clone();
        Ok(p)
    }
}
