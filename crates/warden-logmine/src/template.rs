//! The output types a plugin returns as JSON.

use serde::{Deserialize, Serialize};

use crate::miner::{Tok, WILD};

/// Identifies a template within one [`Miner`](crate::Miner) or one
/// [`Mining`]; ids count up from 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(transparent)]
pub struct TemplateId(pub u32);

impl TemplateId {
    pub(crate) fn from_index(index: usize) -> Self {
        Self(u32::try_from(index).unwrap_or(u32::MAX))
    }

    /// The id as an index into [`Mining::templates`].
    #[must_use]
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// One message template: constant tokens with `<*>` for each parameter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct Template {
    /// The template's id.
    pub id: TemplateId,
    /// Tokens joined by single spaces, `<*>` for parameters.
    pub text: String,
    /// How many lines the template covers.
    pub count: u64,
    /// Token positions (0-based, in `text` split on spaces) that are
    /// parameters; its length is the parameter count.
    pub params: Vec<usize>,
    /// Whether `count <= max(1, rare_fraction * lines)`.
    pub rare: bool,
}

/// The result of [`mine`](crate::mine).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct Mining {
    /// Templates ordered by id, which is the order of their first line.
    pub templates: Vec<Template>,
    /// The final template of each input line, in input order.
    pub assignments: Vec<TemplateId>,
}

impl Mining {
    /// The template with `id`, if any.
    #[must_use]
    pub fn template(&self, id: TemplateId) -> Option<&Template> {
        self.templates.get(id.index())
    }

    /// Templates flagged rare, most common first.
    #[must_use]
    pub fn rare(&self) -> Vec<&Template> {
        let mut rare: Vec<&Template> = self.templates.iter().filter(|t| t.rare).collect();
        rare.sort_by(|a, b| b.count.cmp(&a.count).then(a.id.cmp(&b.id)));
        rare
    }
}

pub(crate) fn params_of(tokens: &[Tok]) -> Vec<usize> {
    tokens
        .iter()
        .enumerate()
        .filter(|&(_, &t)| t == WILD)
        .map(|(i, _)| i)
        .collect()
}
