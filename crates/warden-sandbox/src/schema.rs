//! Input schemas, compiled to validators with their local `$ref`s inlined.
//!
//! Plugins built with schemars describe their input with `$defs` and
//! `{"$ref": "#/$defs/Name"}`. jsonschema 0.33 treats a `$ref` it has met
//! before as possibly recursive and keeps a deep copy of the target for each
//! one: the nine shipped plugins' validators held about 40 MB of copies,
//! most of an edge agent's heap. A schema whose references all point into
//! its own `$defs` (or `definitions`) and form no cycle is therefore
//! compiled from a copy with every reference replaced by its target, which
//! validates exactly the same documents. Anything else (a cycle, a
//! reference elsewhere, `$id`, anchors, dynamic references, a copy that
//! would grow past [`MAX_NODES`]) is compiled as written.

use serde_json::{Map, Value};
use warden_types::ToolManifest;

use crate::SandboxError;

/// Largest inlined copy, in JSON values, before we keep the original.
const MAX_NODES: usize = 20_000;

/// Keywords whose values are data, not schemas: never rewritten.
const DATA_KEYWORDS: [&str; 4] = ["const", "enum", "default", "examples"];

/// Keywords that would change what a reference means if inlined.
const SCOPE_KEYWORDS: [&str; 6] = [
    "$id",
    "$anchor",
    "$dynamicRef",
    "$dynamicAnchor",
    "$recursiveRef",
    "$recursiveAnchor",
];

/// The validator for `manifest`'s input schema.
pub(crate) fn compile(
    manifest: &ToolManifest,
    origin: &str,
) -> Result<jsonschema::Validator, SandboxError> {
    let inlined = inline_refs(&manifest.input_schema);
    jsonschema::validator_for(inlined.as_ref().unwrap_or(&manifest.input_schema)).map_err(|e| {
        SandboxError::InvalidManifest {
            origin: origin.to_string(),
            message: format!("input schema is not a valid JSON Schema: {e}"),
        }
    })
}

/// `schema` with every local `$ref` (`#/$defs/<name>`,
/// `#/definitions/<name>`) replaced by its target, or `None` when that would
/// not validate exactly the same documents (a cycle, a reference elsewhere,
/// `$id`, anchors, dynamic references) or would grow too large.
///
/// jsonschema 0.33 keeps a deep copy of a reference's target for every
/// `$ref` it has met before; compiling the inlined copy instead keeps a
/// validator for a schemars-generated schema small (a few hundred KiB
/// rather than several MiB).
///
/// ```
/// use serde_json::json;
///
/// let schema = json!({
///     "properties": {"mode": {"$ref": "#/$defs/Mode"}},
///     "$defs": {"Mode": {"enum": ["a", "b"]}}
/// });
/// let inlined = warden_sandbox::inline_refs(&schema).unwrap();
/// assert_eq!(inlined, json!({"properties": {"mode": {"enum": ["a", "b"]}}}));
/// ```
pub fn inline_refs(schema: &Value) -> Option<Value> {
    let root = schema.as_object()?;
    let defs = ["$defs", "definitions"]
        .iter()
        .filter_map(|k| Some((*k, root.get(*k)?.as_object()?)))
        .collect::<Vec<_>>();
    if defs.is_empty() {
        return None;
    }
    let mut inliner = Inliner {
        defs,
        stack: Vec::new(),
        nodes: 0,
    };
    inliner.object(root, true)
}

struct Inliner<'a> {
    defs: Vec<(&'static str, &'a Map<String, Value>)>,
    /// Definitions being inlined: meeting one again is a cycle.
    stack: Vec<&'a str>,
    nodes: usize,
}

impl<'a> Inliner<'a> {
    fn count(&mut self) -> Option<()> {
        self.nodes += 1;
        (self.nodes <= MAX_NODES).then_some(())
    }

    /// The value of keyword `key`: data is copied, schemas are rewritten.
    fn keyword(&mut self, key: &str, value: &'a Value) -> Option<Value> {
        if DATA_KEYWORDS.contains(&key) {
            self.count()?;
            return Some(value.clone());
        }
        if matches!(
            key,
            "properties" | "patternProperties" | "dependentSchemas" | "$defs" | "definitions"
        ) {
            // A map from names to schemas: the names are not keywords.
            let Value::Object(map) = value else {
                return Some(value.clone());
            };
            let mut out = Map::new();
            for (name, sub) in map {
                out.insert(name.clone(), self.schema(sub)?);
            }
            return Some(Value::Object(out));
        }
        self.schema(value)
    }

    /// A schema, or a value holding schemas (arrays of them).
    fn schema(&mut self, value: &'a Value) -> Option<Value> {
        self.count()?;
        match value {
            Value::Array(items) => items
                .iter()
                .map(|v| self.schema(v))
                .collect::<Option<Vec<_>>>()
                .map(Value::Array),
            Value::Object(map) => self.object(map, false),
            other => Some(other.clone()),
        }
    }

    /// A schema object; at the root (`root`), without the definitions it
    /// no longer needs.
    fn object(&mut self, map: &'a Map<String, Value>, root: bool) -> Option<Value> {
        if SCOPE_KEYWORDS.iter().any(|k| map.contains_key(*k)) {
            return None;
        }
        let target = match map.get("$ref") {
            Some(Value::String(reference)) => Some(self.target(reference)?),
            Some(_) => return None,
            None => None,
        };
        let mut out = Map::new();
        for (key, sub) in map {
            let definitions = root && (key == "$defs" || key == "definitions");
            if key != "$ref" && !definitions {
                out.insert(key.clone(), self.keyword(key, sub)?);
            }
        }
        let Some((name, def)) = target else {
            return Some(Value::Object(out));
        };
        self.stack.push(name);
        let inlined = self.schema(def);
        self.stack.pop();
        let inlined = inlined?;
        if out.is_empty() {
            return Some(inlined);
        }
        // `$ref` beside other keywords: both apply.
        let mut all_of = match out.remove("allOf") {
            Some(Value::Array(list)) => list,
            Some(other) => vec![other],
            None => Vec::new(),
        };
        all_of.push(inlined);
        out.insert("allOf".into(), Value::Array(all_of));
        Some(Value::Object(out))
    }

    /// The definition `reference` names, unless that would be a cycle or it
    /// is not a plain local definition.
    fn target(&self, reference: &str) -> Option<(&'a str, &'a Value)> {
        let (section, name) = reference.strip_prefix("#/")?.split_once('/')?;
        if name.contains(['/', '~', '%']) || self.stack.iter().any(|s| *s == name) {
            return None;
        }
        let (_, defs) = self.defs.iter().find(|(k, _)| *k == section)?;
        let (key, def) = defs.get_key_value(name)?;
        Some((key.as_str(), def))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use serde_json::json;

    use super::inline_refs;

    #[test]
    fn local_references_are_replaced_by_their_targets() {
        let schema = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "properties": {
                "mode": {"$ref": "#/$defs/Mode"},
                "$ref": {"description": "a property named $ref", "$ref": "#/$defs/Mode"},
                "list": {"type": "array", "items": {"$ref": "#/$defs/Mode"}},
                "fixed": {"const": {"$ref": "#/$defs/Mode"}}
            },
            "$defs": {"Mode": {"enum": ["a", "b"]}}
        });
        let inlined = inline_refs(&schema).unwrap();
        assert_eq!(
            inlined,
            json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "type": "object",
                "properties": {
                    "mode": {"enum": ["a", "b"]},
                    "$ref": {"description": "a property named $ref", "allOf": [{"enum": ["a", "b"]}]},
                    "list": {"type": "array", "items": {"enum": ["a", "b"]}},
                    "fixed": {"const": {"$ref": "#/$defs/Mode"}}
                }
            })
        );
    }

    #[test]
    fn cycles_and_foreign_references_keep_the_schema_as_written() {
        let cycle = json!({
            "$ref": "#/$defs/Node",
            "$defs": {"Node": {"properties": {"next": {"$ref": "#/$defs/Node"}}}}
        });
        assert_eq!(inline_refs(&cycle), None);
        let foreign = json!({"$ref": "https://example.com/s.json", "$defs": {}});
        assert_eq!(inline_refs(&foreign), None);
        let root = json!({"properties": {"x": {"$ref": "#"}}, "$defs": {}});
        assert_eq!(inline_refs(&root), None);
        let anchored = json!({"$defs": {"A": {"$anchor": "a"}}, "$ref": "#/$defs/A"});
        assert_eq!(inline_refs(&anchored), None);
    }

    #[test]
    fn inlined_schema_accepts_and_refuses_what_the_original_does() {
        let schema = json!({
            "type": "object",
            "required": ["op"],
            "properties": {
                "op": {"$ref": "#/$defs/Op", "description": "what to do"},
                "n": {"allOf": [{"$ref": "#/$defs/Small"}], "type": "integer"}
            },
            "additionalProperties": false,
            "$defs": {
                "Op": {"oneOf": [{"const": "get"}, {"const": "put"}]},
                "Small": {"maximum": 10}
            }
        });
        let original = jsonschema::validator_for(&schema).unwrap();
        let inlined = jsonschema::validator_for(&inline_refs(&schema).unwrap()).unwrap();
        for doc in [
            json!({"op": "get"}),
            json!({"op": "put", "n": 3}),
            json!({"op": "del"}),
            json!({"op": "get", "n": 11}),
            json!({"op": "get", "n": 1.5}),
            json!({"n": 1}),
            json!({"op": "get", "extra": true}),
        ] {
            assert_eq!(
                original.is_valid(&doc),
                inlined.is_valid(&doc),
                "the schemas disagree on {doc}"
            );
        }
    }
}
