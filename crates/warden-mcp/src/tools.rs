//! Plugin manifests as MCP tools, and what the server takes out of a
//! call's arguments before the plugin sees them.

use std::sync::Arc;

use rmcp::model::{JsonObject, Tool, ToolAnnotations};
use serde_json::{Value, json};
use warden::types::{Effect, ToolManifest};

/// The argument every mutating tool gains: a dry run unless the caller
/// says `false`.
pub(crate) const DRY_RUN: &str = "dry_run";

/// The argument that brings back an approval granted elsewhere (only when
/// the server has an approval desk).
pub(crate) const APPROVAL_ID: &str = "approval_id";

/// Longest approval id taken.
const APPROVAL_ID_LIMIT: usize = 64;

/// Argument names that would choose the environment or the principal.
/// Those come from the server's configuration, so these are taken out of
/// a call (unless the plugin's own schema declares them) and journaled.
const RESERVED: &[&str] = &["env", "environment", "principal"];

/// Longest value of an ignored argument kept in the journal.
const IGNORED_VALUE_LIMIT: usize = 64;

/// The tool as MCP lists it: the manifest's name, description and schemas,
/// annotations from its effect, and `dry_run` for tools that change things.
pub(crate) fn plugin_tool(m: &ToolManifest, desk: bool, dry_default: bool) -> Tool {
    let mut input = match &m.input_schema {
        Value::Object(o) => o.clone(),
        _ => JsonObject::new(),
    };
    input
        .entry("type")
        .or_insert_with(|| Value::String("object".into()));
    let mutates = m.effect != Effect::ReadOnly;
    if mutates {
        let props = input
            .entry("properties")
            .or_insert_with(|| Value::Object(JsonObject::new()));
        if let Value::Object(props) = props {
            props.insert(
                DRY_RUN.into(),
                if dry_default {
                    json!({
                        "type": "boolean",
                        "default": true,
                        "description": "Only report what the call would change (the default). Pass false to make the change; the policy decides, and may ask a human."
                    })
                } else {
                    json!({
                        "type": "boolean",
                        "default": false,
                        "description": "Pass true to only report what the call would change. The policy decides every change, and may ask a human."
                    })
                },
            );
        }
    }
    if desk {
        let props = input
            .entry("properties")
            .or_insert_with(|| Value::Object(JsonObject::new()));
        if let Value::Object(props) = props {
            props.insert(
                APPROVAL_ID.into(),
                json!({
                    "type": "string",
                    "maxLength": APPROVAL_ID_LIMIT,
                    "description": "Only when an earlier call of this tool with the same arguments answered that it needs approval: the approval id it named, once a person has approved it."
                }),
            );
        }
    }
    let description = format!(
        "{} [{}{}; every call is decided by warden's policy]",
        m.description,
        m.effect,
        if mutates {
            match (m.supports_dry_run, dry_default) {
                (true, true) => "; dry_run defaults to true",
                (false, true) => "; cannot dry-run, so dry_run (default true) skips the call",
                (true, false) => "; dry_run defaults to false here",
                (false, false) => "; cannot dry-run, so dry_run: true skips the call",
            }
        } else {
            ""
        }
    );
    let annotations = ToolAnnotations::with_title(m.name.clone())
        .read_only(m.effect == Effect::ReadOnly)
        .destructive(m.effect == Effect::Destructive)
        .open_world(!m.capabilities.is_empty());
    // The manifest does not say whether a change is idempotent; a read-only
    // call trivially is. Mutating tools leave the hint unset (MCP: false).
    let annotations = if m.effect == Effect::ReadOnly {
        annotations.idempotent(true)
    } else {
        annotations
    };
    let mut tool =
        Tool::new(m.name.clone(), description, Arc::new(input)).with_annotations(annotations);
    if let Value::Object(out) = &m.output_schema
        && out.get("type").and_then(Value::as_str) == Some("object")
    {
        tool = tool.with_raw_output_schema(Arc::new(out.clone()));
    }
    tool
}

/// A call's arguments, split into what the plugin gets and what the
/// server took out.
#[derive(Debug)]
pub(crate) struct Split {
    /// What the plugin's schema check and the plugin see.
    pub args: Value,
    /// The call's dry-run setting (mutating tools only; default true).
    pub dry_run: bool,
    /// Reserved arguments that were not honoured, `name=value`, each value
    /// JSON-encoded and cut short.
    pub ignored: Vec<String>,
    /// The approval the caller brings back, when the server has a desk.
    pub approval_id: Option<String>,
}

/// Take `dry_run` (mutating tools) and the reserved names out of `args`.
/// A `dry_run` that is not a boolean is an error naming it.
pub(crate) fn split(
    m: &ToolManifest,
    mut args: JsonObject,
    desk: bool,
    dry_default: bool,
) -> Result<Split, String> {
    let declared = |key: &str| {
        m.input_schema
            .get("properties")
            .and_then(|p| p.get(key))
            .is_some()
    };
    let mut dry_run = dry_default;
    if m.effect != Effect::ReadOnly {
        match args.remove(DRY_RUN) {
            None => {}
            Some(Value::Bool(b)) => dry_run = b,
            Some(other) => {
                return Err(format!(
                    "`{DRY_RUN}` must be true or false, got {}",
                    clip(&other.to_string())
                ));
            }
        }
    }
    let mut approval_id = None;
    if desk && !declared(APPROVAL_ID) {
        match args.remove(APPROVAL_ID) {
            None => {}
            Some(Value::String(id))
                if !id.is_empty()
                    && id.len() <= APPROVAL_ID_LIMIT
                    && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') =>
            {
                approval_id = Some(id);
            }
            Some(other) => {
                return Err(format!(
                    "`{APPROVAL_ID}` must be the id an earlier answer named (letters and digits), got {}",
                    clip(&other.to_string())
                ));
            }
        }
    }
    let mut ignored = Vec::new();
    let keys: Vec<String> = args.keys().cloned().collect();
    for key in keys {
        let reserved = RESERVED.iter().any(|r| key.eq_ignore_ascii_case(r));
        if reserved
            && !declared(&key)
            && let Some(value) = args.remove(&key)
        {
            ignored.push(format!("{}={}", clip(&key), clip(&value.to_string())));
        }
    }
    Ok(Split {
        args: Value::Object(args),
        dry_run,
        ignored,
        approval_id,
    })
}

/// `text` cut to [`IGNORED_VALUE_LIMIT`] characters.
fn clip(text: &str) -> String {
    if text.chars().count() <= IGNORED_VALUE_LIMIT {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(IGNORED_VALUE_LIMIT).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    fn manifest(effect: Effect) -> ToolManifest {
        ToolManifest {
            name: "t".into(),
            version: "0.1.0".into(),
            description: "a tool".into(),
            input_schema: json!({"type": "object", "additionalProperties": false,
                "properties": {"url": {"type": "string"}, "principal": {"type": "string"}}}),
            output_schema: json!({"type": "object"}),
            effect,
            supports_dry_run: true,
            capabilities: vec![],
        }
    }

    fn obj(v: Value) -> JsonObject {
        match v {
            Value::Object(o) => o,
            _ => JsonObject::new(),
        }
    }

    #[test]
    fn reserved_arguments_are_taken_out_unless_the_plugin_declares_them() {
        let s = split(
            &manifest(Effect::ReadOnly),
            obj(json!({"url": "u", "ENV": "prod", "environment": "x".repeat(200), "principal": "p"})),
            false,
            true,
        )
        .unwrap();
        assert_eq!(s.args, json!({"url": "u", "principal": "p"}));
        assert_eq!(s.ignored.len(), 2, "{:?}", s.ignored);
        assert!(s.ignored.contains(&"ENV=\"prod\"".to_string()));
        assert!(
            s.ignored.iter().all(|i| i.chars().count() < 80),
            "{:?}",
            s.ignored
        );
    }

    #[test]
    fn dry_run_defaults_to_true_and_only_mutating_tools_lose_it() {
        let s = split(
            &manifest(Effect::Mutating),
            obj(json!({"url": "u"})),
            false,
            true,
        )
        .unwrap();
        assert!(s.dry_run);
        let s = split(
            &manifest(Effect::Mutating),
            obj(json!({"dry_run": false})),
            false,
            true,
        )
        .unwrap();
        assert!(!s.dry_run);
        assert_eq!(s.args, json!({}));
        let s = split(
            &manifest(Effect::ReadOnly),
            obj(json!({"dry_run": false})),
            false,
            true,
        )
        .unwrap();
        assert_eq!(
            s.args,
            json!({"dry_run": false}),
            "the schema check sees it"
        );
        let e = split(
            &manifest(Effect::Mutating),
            obj(json!({"dry_run": "no"})),
            false,
            true,
        )
        .unwrap_err();
        assert!(e.contains("must be true or false"), "{e}");
        let s = split(&manifest(Effect::Mutating), obj(json!({})), false, false).unwrap();
        assert!(!s.dry_run, "the bundle turned the default off");
        let t = plugin_tool(&manifest(Effect::Mutating), false, false);
        assert_eq!(
            t.input_schema["properties"]["dry_run"]["default"],
            json!(false)
        );
    }

    #[test]
    fn an_approval_id_is_taken_out_only_with_a_desk_and_must_look_like_one() {
        let m = manifest(Effect::Mutating);
        let s = split(&m, obj(json!({"approval_id": "ab12-cd"})), true, true).unwrap();
        assert_eq!(s.approval_id.as_deref(), Some("ab12-cd"));
        assert_eq!(s.args, json!({}));
        let s = split(&m, obj(json!({"approval_id": "ab12"})), false, true).unwrap();
        assert_eq!(s.approval_id, None);
        assert_eq!(
            s.args,
            json!({"approval_id": "ab12"}),
            "the schema check sees it"
        );
        for bad in [
            json!("a b"),
            json!(""),
            json!("x".repeat(65)),
            json!(7),
            json!("\u{1b}[2J"),
        ] {
            let e = split(&m, obj(json!({"approval_id": bad})), true, true).unwrap_err();
            assert!(e.contains("`approval_id` must be"), "{e}");
        }
        let t = plugin_tool(&m, true, true);
        assert_eq!(
            t.input_schema["properties"]["approval_id"]["type"],
            json!("string")
        );
    }

    #[test]
    fn mutating_tools_advertise_dry_run_and_annotations_follow_the_effect() {
        let t = plugin_tool(&manifest(Effect::Destructive), false, true);
        assert_eq!(
            t.input_schema["properties"]["dry_run"]["default"],
            json!(true)
        );
        let a = t.annotations.unwrap();
        assert_eq!(a.destructive_hint, Some(true));
        assert_eq!(a.read_only_hint, Some(false));
        assert_eq!(a.idempotent_hint, None);
        let t = plugin_tool(&manifest(Effect::ReadOnly), false, true);
        assert!(t.input_schema["properties"].get("dry_run").is_none());
        let a = t.annotations.unwrap();
        assert_eq!(
            (a.read_only_hint, a.idempotent_hint),
            (Some(true), Some(true))
        );
        assert!(t.output_schema.is_some());
    }
}
