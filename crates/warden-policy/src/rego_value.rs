//! Any `Serialize` value straight into a [`regorus::Value`].
//!
//! Deciding used to go through a `serde_json::Value` first
//! (`serde_json::to_value`, then regorus's `From<serde_json::Value>`, a
//! deserialising visitor over that tree): two trees built and dropped per
//! decision, every object key allocated twice. A plan's input grows with
//! its steps, and this was most of the host's share of a plan decision.
//!
//! This serializer builds the regorus tree in one pass, with the same
//! result: objects are regorus's sorted objects (a later duplicate key
//! wins, as in `serde_json::Map`), integers and floats become the same
//! numbers, a non-finite float becomes `null` as `serde_json::to_value`
//! makes it, enum variants take serde's external tagging. Struct field and
//! unit variant names are `&'static str`, so each is made a regorus string
//! once per thread and shared after that.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt::Display;

use foldhash::HashMap;
use regorus::Value;
use serde::Serialize;
use serde::ser::{self, Impossible};

/// Why a value could not become a regorus value.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct Error(String);

impl ser::Error for Error {
    fn custom<T: Display>(msg: T) -> Self {
        Error(msg.to_string())
    }
}

/// `value` as a regorus value, equal to
/// `regorus::Value::from(serde_json::to_value(value)?)`.
pub(crate) fn to_rego<T: Serialize + ?Sized>(value: &T) -> Result<Value, Error> {
    value.serialize(Serializer)
}

thread_local! {
    /// Field and variant names, by where their text is (address and
    /// length): a bounded set, the names in the input types.
    static NAMES: RefCell<HashMap<(usize, usize), Value>> = RefCell::new(HashMap::default());
}

/// A static name as a shared regorus string.
fn name(text: &'static str) -> Value {
    NAMES.with(|names| {
        names
            .borrow_mut()
            .entry((text.as_ptr() as usize, text.len()))
            .or_insert_with(|| Value::from(text))
            .clone()
    })
}

/// An object from entries in any order; a later duplicate key wins.
fn object(entries: Vec<(Value, Value)>) -> Value {
    Value::from(entries.into_iter().collect::<BTreeMap<_, _>>())
}

/// `{variant: value}`, serde's external tag.
fn tagged(variant: &'static str, value: Value) -> Value {
    object(vec![(name(variant), value)])
}

/// Integer methods: each widens to the type regorus takes.
macro_rules! numbers {
    ($($method:ident : $ty:ty => $wide:ty),*) => {$(
        fn $method(self, v: $ty) -> Result<Value, Error> {
            Ok(Value::from(<$wide>::from(v)))
        }
    )*};
}

struct Serializer;

impl ser::Serializer for Serializer {
    type Ok = Value;
    type Error = Error;
    type SerializeSeq = Seq;
    type SerializeTuple = Seq;
    type SerializeTupleStruct = Seq;
    type SerializeTupleVariant = Seq;
    type SerializeMap = Map;
    type SerializeStruct = Map;
    type SerializeStructVariant = Map;

    fn serialize_bool(self, v: bool) -> Result<Value, Error> {
        Ok(Value::Bool(v))
    }
    numbers!(
        serialize_i8: i8 => i64,
        serialize_i16: i16 => i64,
        serialize_i32: i32 => i64,
        serialize_i64: i64 => i64,
        serialize_i128: i128 => i128,
        serialize_u8: u8 => u64,
        serialize_u16: u16 => u64,
        serialize_u32: u32 => u64,
        serialize_u64: u64 => u64,
        serialize_u128: u128 => u128
    );
    fn serialize_f32(self, v: f32) -> Result<Value, Error> {
        self.serialize_f64(f64::from(v))
    }
    fn serialize_f64(self, v: f64) -> Result<Value, Error> {
        // serde_json has no value for NaN or infinity and makes them null.
        Ok(if v.is_finite() {
            Value::from(v)
        } else {
            Value::Null
        })
    }
    fn serialize_char(self, v: char) -> Result<Value, Error> {
        Ok(Value::from(v.encode_utf8(&mut [0; 4]) as &str))
    }
    fn serialize_str(self, v: &str) -> Result<Value, Error> {
        Ok(Value::from(v))
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<Value, Error> {
        Ok(Value::from(
            v.iter()
                .map(|&b| Value::from(u64::from(b)))
                .collect::<Vec<_>>(),
        ))
    }
    fn serialize_none(self) -> Result<Value, Error> {
        Ok(Value::Null)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<Value, Error> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<Value, Error> {
        Ok(Value::Null)
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<Value, Error> {
        Ok(Value::Null)
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<Value, Error> {
        Ok(name(variant))
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<Value, Error> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<Value, Error> {
        Ok(tagged(variant, value.serialize(self)?))
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<Seq, Error> {
        Ok(Seq {
            items: Vec::with_capacity(len.unwrap_or(0)),
            variant: None,
        })
    }
    fn serialize_tuple(self, len: usize) -> Result<Seq, Error> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(self, _: &'static str, len: usize) -> Result<Seq, Error> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Seq, Error> {
        Ok(Seq {
            items: Vec::with_capacity(len),
            variant: Some(variant),
        })
    }
    fn serialize_map(self, len: Option<usize>) -> Result<Map, Error> {
        Ok(Map {
            entries: Vec::with_capacity(len.unwrap_or(0)),
            key: None,
            variant: None,
        })
    }
    fn serialize_struct(self, _: &'static str, len: usize) -> Result<Map, Error> {
        self.serialize_map(Some(len))
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Map, Error> {
        Ok(Map {
            entries: Vec::with_capacity(len),
            key: None,
            variant: Some(variant),
        })
    }
}

struct Seq {
    items: Vec<Value>,
    variant: Option<&'static str>,
}

impl Seq {
    fn push<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.items.push(value.serialize(Serializer)?);
        Ok(())
    }
    fn finish(self) -> Value {
        let array = Value::from(self.items);
        match self.variant {
            Some(variant) => tagged(variant, array),
            None => array,
        }
    }
}

/// The four serde sequence traits, all one `push` per element.
macro_rules! seq_traits {
    ($($trait:ident :: $method:ident),*) => {$(
        impl ser::$trait for Seq {
            type Ok = Value;
            type Error = Error;
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
                self.push(value)
            }
            fn end(self) -> Result<Value, Error> {
                Ok(self.finish())
            }
        }
    )*};
}

seq_traits!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field
);

struct Map {
    entries: Vec<(Value, Value)>,
    key: Option<Value>,
    variant: Option<&'static str>,
}

impl Map {
    fn finish(self) -> Value {
        let object = object(self.entries);
        match self.variant {
            Some(variant) => tagged(variant, object),
            None => object,
        }
    }
}

impl ser::SerializeMap for Map {
    type Ok = Value;
    type Error = Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Error> {
        self.key = Some(key.serialize(KeySerializer)?);
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        let key = self
            .key
            .take()
            .ok_or_else(|| Error("a map value came without its key".into()))?;
        self.entries.push((key, value.serialize(Serializer)?));
        Ok(())
    }
    fn end(self) -> Result<Value, Error> {
        Ok(self.finish())
    }
}

/// Struct fields, named by a static name.
macro_rules! struct_traits {
    ($($trait:ident),*) => {$(
        impl ser::$trait for Map {
            type Ok = Value;
            type Error = Error;
            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                key: &'static str,
                value: &T,
            ) -> Result<(), Error> {
                self.entries.push((name(key), value.serialize(Serializer)?));
                Ok(())
            }
            fn end(self) -> Result<Value, Error> {
                Ok(self.finish())
            }
        }
    )*};
}

struct_traits!(SerializeStruct, SerializeStructVariant);

/// Map keys, as JSON has them: strings; integers, booleans and characters
/// become their text, as `serde_json` writes them.
struct KeySerializer;

fn key_error() -> Error {
    Error("a map key must be a string".into())
}

/// Key methods for scalars that JSON writes as their text.
macro_rules! text_keys {
    ($($method:ident : $ty:ty),*) => {$(
        fn $method(self, v: $ty) -> Result<Value, Error> {
            Ok(Value::from(v.to_string()))
        }
    )*};
}

impl ser::Serializer for KeySerializer {
    type Ok = Value;
    type Error = Error;
    type SerializeSeq = Impossible<Value, Error>;
    type SerializeTuple = Impossible<Value, Error>;
    type SerializeTupleStruct = Impossible<Value, Error>;
    type SerializeTupleVariant = Impossible<Value, Error>;
    type SerializeMap = Impossible<Value, Error>;
    type SerializeStruct = Impossible<Value, Error>;
    type SerializeStructVariant = Impossible<Value, Error>;

    fn serialize_str(self, v: &str) -> Result<Value, Error> {
        Ok(Value::from(v))
    }
    text_keys!(
        serialize_char: char,
        serialize_bool: bool,
        serialize_i8: i8,
        serialize_i16: i16,
        serialize_i32: i32,
        serialize_i64: i64,
        serialize_i128: i128,
        serialize_u8: u8,
        serialize_u16: u16,
        serialize_u32: u32,
        serialize_u64: u64,
        serialize_u128: u128
    );
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<Value, Error> {
        Ok(name(variant))
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<Value, Error> {
        value.serialize(self)
    }
    fn serialize_f32(self, _: f32) -> Result<Value, Error> {
        Err(key_error())
    }
    fn serialize_f64(self, _: f64) -> Result<Value, Error> {
        Err(key_error())
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<Value, Error> {
        Err(key_error())
    }
    fn serialize_none(self) -> Result<Value, Error> {
        Err(key_error())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<Value, Error> {
        Err(key_error())
    }
    fn serialize_unit(self) -> Result<Value, Error> {
        Err(key_error())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<Value, Error> {
        Err(key_error())
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<Value, Error> {
        Err(key_error())
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, Error> {
        Err(key_error())
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, Error> {
        Err(key_error())
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, Error> {
        Err(key_error())
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, Error> {
        Err(key_error())
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, Error> {
        Err(key_error())
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeStruct, Error> {
        Err(key_error())
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, Error> {
        Err(key_error())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// What deciding did before: through a `serde_json::Value`.
    fn through_json<T: Serialize>(value: &T) -> Value {
        Value::from(serde_json::to_value(value).unwrap())
    }

    fn same<T: Serialize>(value: &T) {
        let direct = to_rego(value).unwrap();
        assert_eq!(direct, through_json(value));
        // The same canonical JSON, so the same input hash.
        assert_eq!(
            serde_json::to_string(&direct).unwrap(),
            serde_json::to_string(&through_json(value)).unwrap()
        );
    }

    #[test]
    fn json_documents_convert_as_through_serde_json() {
        same(&json!(null));
        same(&json!({}));
        same(&json!([]));
        same(&json!({"b": 1, "a": [true, false, null], "c": {"z": -3, "y": 2.5}}));
        same(&json!({"n": [0, -1, u64::MAX, i64::MIN, 1.0, 1e300, -0.0, 0.1]}));
        same(&json!({"text": "ünï\u{0}code ✓ \"quoted\" \\", "": ""}));
        same(&json!([[[[{"deep": [1, [2, [3]]]}]]]]));
    }

    #[test]
    fn generated_documents_convert_as_through_serde_json() {
        // xorshift64*, so a failure reproduces.
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            state.wrapping_mul(0x2545_F491_4F6C_DD1D)
        };
        fn doc(next: &mut dyn FnMut() -> u64, depth: u32) -> serde_json::Value {
            let kind = if depth == 0 { next() % 5 } else { next() % 7 };
            match kind {
                0 => json!(null),
                1 => json!(next().is_multiple_of(2)),
                2 => json!((next() as i64) >> (next() % 64)),
                3 => json!((next() % 100_000) as f64 / 7.0),
                4 => json!(["a", "b", "é", "key", "Key", "k1", ""][(next() % 7) as usize]),
                5 => serde_json::Value::Array(
                    (0..next() % 4).map(|_| doc(next, depth - 1)).collect(),
                ),
                _ => serde_json::Value::Object(
                    (0..next() % 5)
                        .map(|_| (format!("k{}", next() % 6), doc(next, depth - 1)))
                        .collect(),
                ),
            }
        }
        for _ in 0..2_000 {
            same(&doc(&mut next, 4));
        }
    }

    #[test]
    fn typed_inputs_convert_as_through_serde_json() {
        use crate::input::{PlanStep, PolicyContext, PolicyInput, ToolInfo};
        use warden_types::{CapabilityRequest, CapabilityUse, Effect, HttpRequestInfo};

        let mut ctx = PolicyContext::default();
        ctx.agent.env = "prod".into();
        ctx.task.break_glass = Some("CHG-1".into());
        ctx.principal.roles = vec!["sre".into()];
        let tool = ToolInfo {
            name: "restart".into(),
            version: "1.0.0".into(),
            effect: Effect::Destructive,
            supports_dry_run: true,
            declared_hosts: vec!["*.example.com".into()],
            declares_kv: true,
        };
        let steps = vec![PlanStep {
            id: "s1".into(),
            tool: tool.clone(),
            args: json!({"unit": "nginx", "n": 3}),
            dry_run: true,
        }];
        same(&PolicyInput::plan(&ctx, steps));
        let request = CapabilityRequest {
            plugin: "restart".into(),
            plugin_version: "1.0.0".into(),
            effect: Effect::Destructive,
            task_id: "t-1".into(),
            step_id: "s1".into(),
            dry_run: false,
            capability: CapabilityUse::Http(HttpRequestInfo {
                method: "GET".into(),
                scheme: "https".into(),
                host: "api.example.com".into(),
                port: 443,
                path: "/v1".into(),
                resolved: vec!["10.0.0.1".parse().unwrap()],
            }),
        };
        same(&PolicyInput::capability(&ctx, tool, &request));
        // Enum shapes the input types do not use yet.
        #[derive(Serialize)]
        enum Shapes {
            Unit,
            New(u8),
            Tuple(i8, char),
            Struct { a: Option<u16>, b: (), c: Vec<u8> },
        }
        same(&vec![
            Shapes::Unit,
            Shapes::New(7),
            Shapes::Tuple(-1, 'x'),
            Shapes::Struct {
                a: None,
                b: (),
                c: vec![1, 2],
            },
        ]);
        same(&std::collections::BTreeMap::from([
            (1u32, "one"),
            (2, "two"),
        ]));
        same(&f64::NAN);
    }

    #[test]
    fn a_repeated_key_keeps_its_last_value_as_serde_json_does() {
        struct Twice;
        impl Serialize for Twice {
            fn serialize<S: ser::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                use ser::SerializeMap;
                let mut map = s.serialize_map(None)?;
                map.serialize_entry("a", &1)?;
                map.serialize_entry("b", &2)?;
                map.serialize_entry("a", &3)?;
                map.end()
            }
        }
        same(&Twice);
        assert_eq!(to_rego(&Twice).unwrap()["a"], Value::from(3u64));
    }

    #[test]
    fn a_map_key_that_is_not_text_is_an_error_not_a_guess() {
        let map = std::collections::BTreeMap::from([(vec![1u8], 1)]);
        let error = to_rego(&map).unwrap_err();
        assert!(
            error.to_string().contains("map key must be a string"),
            "{error}"
        );
    }
}
