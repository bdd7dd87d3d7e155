//! Input schemas, compiled to validators with their local `$ref`s inlined.
//!
//! Plugins built with schemars describe their input with `$defs` and
//! `{"$ref": "#/$defs/Name"}`. jsonschema 0.33 (used until warden moved to
//! regorus's 0.60) treated a `$ref` it had met before as possibly recursive
//! and kept a deep copy of the target for each one: the nine shipped
//! plugins' validators held about 40 MB of copies, most of an edge agent's
//! heap. 0.60 compiles each reference target once; the inlining stays
//! because it is cheap and validates the same documents. A schema whose references all point into
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

/// Keywords whose meaning differs between draft 7 and 2020-12 (or that
/// only one of them knows): a schema using any of them keeps its own draft.
const NOT_DRAFT7: [&str; 15] = [
    "$ref",
    "$schema",
    "$defs",
    "definitions",
    "dependencies",
    "additionalItems",
    "prefixItems",
    "dependentRequired",
    "dependentSchemas",
    "unevaluatedItems",
    "unevaluatedProperties",
    "minContains",
    "maxContains",
    "contentMediaType",
    "contentEncoding",
];

/// The validator for `manifest`'s input schema.
pub(crate) fn compile(
    manifest: &ToolManifest,
    origin: &str,
) -> Result<jsonschema::Validator, SandboxError> {
    validator_for(&manifest.input_schema).map_err(|e| SandboxError::InvalidManifest {
        origin: origin.to_string(),
        message: format!("input schema is not a valid JSON Schema: {e}"),
    })
}

/// `jsonschema::validator_for`, without its two memory traps: local
/// `$ref`s are inlined ([`inline_refs`]), and a 2020-12 schema that then
/// uses only keywords draft 7 reads the same way is compiled as draft 7,
/// with formats as annotations, as 2020-12 has them. The documents it
/// accepts are the same; what changes is that jsonschema checks the schema
/// against the draft-7 meta-schema instead of the 2020-12 one. jsonschema
/// 0.33 kept one validator per meta-schema for the life of the process and
/// compiled more of it for every new shape of schema it checked: for the
/// nine shipped plugins' schemas the 2020-12 one grew by about 70 MB, the
/// draft-7 one by about 40 MB, still 31.7 MB of an edge agent's 36.9 MB
/// heap peak (heaptrack). jsonschema 0.60 compiles its meta-schema
/// validators once, whatever they check (docs/edge.md has the figures).
///
/// ```
/// use serde_json::json;
///
/// let schema = json!({
///     "$schema": "https://json-schema.org/draft/2020-12/schema",
///     "type": "object",
///     "properties": {"mode": {"$ref": "#/$defs/Mode"}},
///     "$defs": {"Mode": {"enum": ["a", "b"]}}
/// });
/// let validator = warden_sandbox::validator_for(&schema).unwrap();
/// assert!(validator.is_valid(&json!({"mode": "a"})));
/// assert!(!validator.is_valid(&json!({"mode": "c"})));
/// ```
///
/// # Errors
/// The schema is not a valid JSON Schema (jsonschema's message).
pub fn validator_for(schema: &Value) -> Result<jsonschema::Validator, String> {
    let inlined = inline_refs(schema);
    let doc = inlined.as_ref().unwrap_or(schema);
    let declared = doc.get("$schema").and_then(Value::as_str);
    let latest = matches!(
        declared,
        None | Some("https://json-schema.org/draft/2020-12/schema")
    );
    if latest && let Value::Object(map) = doc {
        let mut body = map.clone();
        body.remove("$schema");
        let body = Value::Object(body);
        if reads_as_draft7(&body) {
            return jsonschema::options()
                .with_draft(jsonschema::Draft::Draft7)
                .should_validate_formats(false)
                .build(&body)
                .map_err(|e| e.to_string());
        }
    }
    jsonschema::validator_for(doc).map_err(|e| e.to_string())
}

/// Whether every schema in `value` uses only keywords that draft 7 and
/// 2020-12 read the same way (and `items` only as one schema).
fn reads_as_draft7(value: &Value) -> bool {
    match value {
        Value::Array(items) => items.iter().all(reads_as_draft7),
        Value::Object(map) => map.iter().all(|(key, sub)| {
            if NOT_DRAFT7.contains(&key.as_str()) || SCOPE_KEYWORDS.contains(&key.as_str()) {
                return false;
            }
            match key.as_str() {
                k if DATA_KEYWORDS.contains(&k) => true,
                "items" => !sub.is_array() && reads_as_draft7(sub),
                "properties" | "patternProperties" => sub
                    .as_object()
                    .is_some_and(|m| m.values().all(reads_as_draft7)),
                _ => reads_as_draft7(sub),
            }
        }),
        _ => true,
    }
}

/// `schema` with every local `$ref` (`#/$defs/<name>`,
/// `#/definitions/<name>`) replaced by its target, or `None` when that would
/// not validate exactly the same documents (a cycle, a reference elsewhere,
/// `$id`, anchors, dynamic references) or would grow too large.
///
/// jsonschema 0.33 kept a deep copy of a reference's target for every
/// `$ref` it had met before; compiling the inlined copy instead kept a
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
        if name.contains(['/', '~', '%']) || self.stack.contains(&name) {
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
    fn draft7_reading_validates_like_2020_12() {
        let schema = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "required": ["url"],
            "properties": {
                "url": {"type": "string", "pattern": "^https?://", "format": "uri"},
                "port": {"type": "integer", "format": "uint16", "minimum": 0, "maximum": 65535},
                "tags": {"type": "array", "items": {"$ref": "#/$defs/Tag"}}
            },
            "additionalProperties": false,
            "$defs": {"Tag": {"type": "string", "minLength": 1}}
        });
        let ours = super::validator_for(&schema).unwrap();
        let theirs = jsonschema::validator_for(&schema).unwrap();
        for doc in [
            json!({"url": "http://x"}),
            json!({"url": "https://x", "port": 8080, "tags": ["a"]}),
            // Not a URI, but 2020-12 formats are annotations: accepted.
            json!({"url": "http://with space"}),
            json!({"url": "ftp://x"}),
            json!({"url": "http://x", "port": 70000}),
            json!({"url": "http://x", "port": 1.5}),
            json!({"url": "http://x", "tags": [""]}),
            json!({"url": "http://x", "other": 1}),
            json!({"port": 1}),
        ] {
            assert_eq!(
                ours.is_valid(&doc),
                theirs.is_valid(&doc),
                "they disagree on {doc}"
            );
        }
        // Keywords draft 7 reads differently keep the declared draft.
        for differs in [
            json!({"prefixItems": [{"type": "string"}]}),
            json!({"items": [{"type": "string"}]}),
            json!({"dependentRequired": {"a": ["b"]}}),
        ] {
            assert!(!super::reads_as_draft7(&differs), "{differs}");
        }
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
