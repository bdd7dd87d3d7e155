//! `log-templates`: Drain-style template mining over log lines, with the
//! algorithm from `warden-logmine` (the same code the host runs natively).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use warden_logmine::{Config, Template, TemplateId};
use warden_pdk::{Context, Tool, ToolError, export_tool};

/// The tool.
pub struct LogTemplates;

/// Log lines to mine.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// Raw log lines; a leading timestamp/level header is stripped.
    #[schemars(length(max = 1000000))]
    pub lines: Vec<String>,
    /// Mining settings; every field is optional.
    #[serde(default)]
    pub config: Option<Config>,
}

/// Templates and the template of each line.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Output {
    /// Lines mined.
    pub lines: usize,
    /// Templates ordered by id (order of first appearance).
    pub templates: Vec<Template>,
    /// The template id of each input line, in input order.
    pub assignments: Vec<TemplateId>,
    /// Ids of the rare templates, most common first: new or unusual messages.
    pub rare: Vec<TemplateId>,
}

impl Tool for LogTemplates {
    type Input = Input;
    type Output = Output;
    const NAME: &'static str = "log-templates";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "Group log lines into message templates (numbers, IPs, hex ids and paths masked); returns templates with counts and parameter slots, each line's template, and the rare templates.";

    fn invoke(_ctx: &Context, input: Input) -> Result<Output, ToolError> {
        let config = input.config.unwrap_or_default();
        let mining = warden_logmine::mine(&input.lines, &config);
        let rare = mining.rare().iter().map(|t| t.id).collect();
        Ok(Output {
            lines: input.lines.len(),
            templates: mining.templates,
            assignments: mining.assignments,
            rare,
        })
    }
}

export_tool!(LogTemplates);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_with_different_numbers_share_a_template() {
        let input = Input {
            lines: vec![
                "connection from 10.0.0.1 closed after 12 ms".into(),
                "connection from 10.0.0.2 closed after 7 ms".into(),
                "disk /dev/sda1 is 93% full".into(),
            ],
            config: None,
        };
        let out = LogTemplates::invoke(&Context::default(), input).unwrap();
        assert_eq!(out.lines, 3);
        assert_eq!(out.assignments[0], out.assignments[1]);
        assert_ne!(out.assignments[0], out.assignments[2]);
        assert_eq!(out.templates.len(), 2);
    }

    #[test]
    fn empty_input_gives_empty_output() {
        let out = LogTemplates::invoke(
            &Context::default(),
            Input {
                lines: vec![],
                config: None,
            },
        )
        .unwrap();
        assert!(out.templates.is_empty() && out.assignments.is_empty());
    }
}
