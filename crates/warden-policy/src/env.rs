//! The environments a bundle knows: canonical names, aliases, the default
//! and the protected ones, read from `data.warden.config.environments`.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::error::PolicyError;

/// Where the environments live in a bundle's data.
pub(crate) const ENVIRONMENTS_PATH: &str = "data.warden.config.environments";

/// The environment a bundle without environments data defaults to: the
/// strictest one of the default bundle.
const FALLBACK_DEFAULT: &str = "prod";

/// The environments a bundle knows, read from
/// `data.warden.config.environments`.
///
/// The host turns whatever a person or a webhook wrote (`--env Prod`,
/// `production`, `"prod "`) into the canonical name with
/// [`Environments::canonical`] before it builds a
/// [`PolicyContext`](crate::PolicyContext); the default bundle denies every
/// decision for a name it does not know, so a spelling that slipped through
/// is refused rather than treated as a lax environment.
///
/// A bundle without environments data accepts any non-empty name (trimmed
/// and lowercased), defaults to `prod` and protects nothing.
///
/// ```
/// use warden_policy::PolicyEngine;
///
/// let policies = concat!(env!("CARGO_MANIFEST_DIR"), "/../../policies");
/// let envs = PolicyEngine::load(policies)?.environments();
/// assert_eq!(envs.canonical(" Production ")?, "prod");
/// assert!(envs.is_protected("prod"));
/// assert!(envs.canonical("qa").unwrap_err().to_string().contains("dev, prod, staging"));
/// # Ok::<(), warden_policy::PolicyError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Environments {
    /// Canonical names in the bundle's order; empty when the bundle lists none.
    known: Vec<String>,
    /// Other spellings (lowercase) and the canonical names they stand for.
    aliases: BTreeMap<String, String>,
    /// The environment a task gets when it names none.
    default: String,
    /// Environments where changes need approval or break-glass.
    protected: Vec<String>,
}

impl Default for Environments {
    /// What a bundle without environments data knows: any name, `prod` by
    /// default, nothing protected.
    fn default() -> Self {
        Environments {
            known: Vec::new(),
            aliases: BTreeMap::new(),
            default: FALLBACK_DEFAULT.to_string(),
            protected: Vec::new(),
        }
    }
}

impl Environments {
    /// The canonical name for `name`: surrounding whitespace trimmed,
    /// ASCII-lowercased, then an alias mapped to the name it stands for.
    ///
    /// A name the bundle does not know after that, or an empty one, is
    /// [`PolicyError::UnknownEnvironment`], whose message lists the known
    /// names.
    pub fn canonical(&self, name: &str) -> Result<String, PolicyError> {
        let lowered = name.trim().to_ascii_lowercase();
        let unknown = || PolicyError::UnknownEnvironment {
            name: name.to_string(),
            known: self.sorted_known(),
        };
        if lowered.is_empty() {
            return Err(unknown());
        }
        let canonical = self.aliases.get(&lowered).cloned().unwrap_or(lowered);
        if self.is_declared() && !self.known.contains(&canonical) {
            return Err(unknown());
        }
        Ok(canonical)
    }

    /// The environment a task acts on when it names none (`prod` in the
    /// default bundle, and for a bundle without environments data).
    pub fn default_env(&self) -> &str {
        &self.default
    }

    /// The canonical names, in the bundle's order; empty when the bundle
    /// lists none (then any name is accepted).
    pub fn known(&self) -> &[String] {
        &self.known
    }

    /// Whether the canonical name `env` is protected (changes there need
    /// approval, destructive ones a break-glass ticket). Give it the result
    /// of [`Environments::canonical`]; other spellings are not protected.
    pub fn is_protected(&self, env: &str) -> bool {
        self.protected.iter().any(|p| p == env)
    }

    /// Whether the bundle lists its environments; when it does not, any
    /// non-empty name is accepted.
    pub fn is_declared(&self) -> bool {
        !self.known.is_empty()
    }

    fn sorted_known(&self) -> Vec<String> {
        let mut known = self.known.clone();
        known.sort();
        known
    }

    /// Read and check the environments in a bundle's merged data.
    ///
    /// `Err` says what is wrong, starting with the offending path under
    /// `data.warden.config.environments`.
    pub(crate) fn from_data(data: &serde_json::Value) -> Result<Self, String> {
        let Some(value) = data
            .get("warden")
            .and_then(|w| w.get("config"))
            .and_then(|c| c.get("environments"))
        else {
            return Ok(Environments::default());
        };
        let serde_json::Value::Object(object) = value else {
            return Err(format!(
                "{ENVIRONMENTS_PATH} must be an object, got {value}"
            ));
        };
        for key in object.keys() {
            if !matches!(key.as_str(), "known" | "aliases" | "default" | "protected") {
                return Err(format!(
                    "{ENVIRONMENTS_PATH}.{key} is not a setting; expected known, aliases, default and protected"
                ));
            }
        }

        let known = names(object.get("known"), "known")?;
        if known.is_empty() {
            return Err(format!(
                "{ENVIRONMENTS_PATH}.known must list at least one environment"
            ));
        }
        for (i, name) in known.iter().enumerate() {
            if known[..i].contains(name) {
                return Err(format!("{ENVIRONMENTS_PATH}.known lists `{name}` twice"));
            }
        }
        let listed = known.join(", ");
        let check_known = |name: &str, at: &str| {
            if known.iter().any(|k| k == name) {
                Ok(())
            } else {
                Err(format!(
                    "{ENVIRONMENTS_PATH}.{at} names `{name}`, which is not in known ({listed})"
                ))
            }
        };

        let default = match object.get("default") {
            Some(serde_json::Value::String(name)) => name.clone(),
            Some(other) => {
                return Err(format!(
                    "{ENVIRONMENTS_PATH}.default must be a string, got {other}"
                ));
            }
            None => {
                return Err(format!(
                    "{ENVIRONMENTS_PATH}.default is missing; name the environment a task gets when it names none"
                ));
            }
        };
        check_known(&default, "default")?;

        let Some(protected) = object.get("protected") else {
            return Err(format!(
                "{ENVIRONMENTS_PATH}.protected is missing; list the environments that need approval (it may be empty)"
            ));
        };
        let protected = names(Some(protected), "protected")?;
        for name in &protected {
            check_known(name, "protected")?;
        }

        let mut aliases = BTreeMap::new();
        match object.get("aliases") {
            None => {}
            Some(serde_json::Value::Object(map)) => {
                for (alias, target) in map {
                    let at = format!("aliases.{alias}");
                    if !is_canonical_spelling(alias) {
                        return Err(format!(
                            "{ENVIRONMENTS_PATH}.{at}: an alias must be lowercase, without surrounding spaces, and not empty"
                        ));
                    }
                    if known.contains(alias) {
                        return Err(format!(
                            "{ENVIRONMENTS_PATH}.{at}: `{alias}` is already a known environment and cannot be an alias"
                        ));
                    }
                    let serde_json::Value::String(target) = target else {
                        return Err(format!(
                            "{ENVIRONMENTS_PATH}.{at} must be a string, got {target}"
                        ));
                    };
                    check_known(target, &at)?;
                    aliases.insert(alias.clone(), target.clone());
                }
            }
            Some(other) => {
                return Err(format!(
                    "{ENVIRONMENTS_PATH}.aliases must be an object, got {other}"
                ));
            }
        }

        Ok(Environments {
            known,
            aliases,
            default,
            protected,
        })
    }
}

/// A list of canonical names at `data.warden.config.environments.<at>`.
fn names(value: Option<&serde_json::Value>, at: &str) -> Result<Vec<String>, String> {
    let Some(value) = value else {
        return Err(format!("{ENVIRONMENTS_PATH}.{at} is missing"));
    };
    let serde_json::Value::Array(items) = value else {
        return Err(format!(
            "{ENVIRONMENTS_PATH}.{at} must be a list of names, got {value}"
        ));
    };
    items
        .iter()
        .map(|item| match item {
            serde_json::Value::String(name) if is_canonical_spelling(name) => Ok(name.clone()),
            serde_json::Value::String(name) => Err(format!(
                "{ENVIRONMENTS_PATH}.{at}: `{name}` must be lowercase, without surrounding spaces, and not empty, since hosts compare canonical names"
            )),
            other => Err(format!(
                "{ENVIRONMENTS_PATH}.{at} must be a list of names, got {other} in it"
            )),
        })
        .collect()
}

/// What [`Environments::canonical`] can produce: trimmed, ASCII-lowercase,
/// not empty.
fn is_canonical_spelling(name: &str) -> bool {
    !name.is_empty() && name.trim() == name && name.to_ascii_lowercase() == name
}

/// The message of [`PolicyError::UnknownEnvironment`].
pub(crate) fn unknown_message(name: &str, known: &[String]) -> String {
    let listed = if known.is_empty() {
        String::new()
    } else {
        format!(" (known: {})", known.join(", "))
    };
    if name.trim().is_empty() {
        format!("no environment given{listed}")
    } else {
        format!("environment `{name}` is not known to the policy bundle{listed}")
    }
}

/// A load error for malformed environments data.
pub(crate) fn load_error(dir: &std::path::Path, message: String) -> PolicyError {
    PolicyError::Config {
        dir: dir.to_path_buf(),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envs(json: serde_json::Value) -> Result<Environments, String> {
        Environments::from_data(&serde_json::json!({"warden": {"config": {"environments": json}}}))
    }

    #[test]
    fn aliases_are_matched_after_trimming_and_lowercasing() {
        let e = envs(serde_json::json!({
            "known": ["dev", "prod"], "aliases": {"production": "prod"},
            "default": "prod", "protected": ["prod"],
        }))
        .unwrap();
        assert_eq!(e.canonical("\tPRODUCTION ").unwrap(), "prod");
        assert_eq!(e.canonical("Dev").unwrap(), "dev");
    }

    #[test]
    fn a_known_name_cannot_also_be_an_alias() {
        let err = envs(serde_json::json!({
            "known": ["dev", "prod"], "aliases": {"dev": "prod"},
            "default": "prod", "protected": [],
        }))
        .unwrap_err();
        assert!(err.contains("aliases.dev"), "{err}");
    }

    #[test]
    fn known_names_must_be_spelled_canonically() {
        let err = envs(serde_json::json!({
            "known": ["dev", "Prod"], "default": "dev", "protected": [],
        }))
        .unwrap_err();
        assert!(err.contains("`Prod` must be lowercase"), "{err}");
    }

    #[test]
    fn an_empty_name_is_unknown_even_without_environments_data() {
        let e = Environments::default();
        let err = e.canonical("  ").unwrap_err();
        assert_eq!(err.to_string(), "no environment given");
        assert_eq!(e.canonical(" QA ").unwrap(), "qa");
    }
}
