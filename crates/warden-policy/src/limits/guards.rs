//! Guarded versions of the builtins that can build far more than their
//! arguments hold, installed on both engines.
//!
//! Each guard works out an upper bound of what the call builds (elements,
//! string bytes) from its arguments alone, reserves it from the
//! evaluation's budget, then runs regorus's own builtin; the ranges are
//! built here, checking the deadline as they go. Arguments of the wrong type
//! cost nothing: regorus's builtin rejects them as before.

use std::sync::Arc;
use std::time::Duration;

use regorus::unstable::{BUILTINS, Expr, Ref, Span};
use regorus::{LimitError, Value};

use super::{Cost, charge, check_time, fail_time, left, remaining_time, reserve};

type Builtin = fn(&Span, &[Ref<Expr>], &[Value], bool) -> anyhow::Result<Value>;

/// Elements built between two deadline checks in the range loops.
const CHECK_EVERY: u64 = 1 << 16;

macro_rules! guarded {
    ($($name:literal => $fun:ident),* $(,)?) => {
        $(
            fn $fun(
                span: &Span,
                params: &[Ref<Expr>],
                args: &[Value],
                strict: bool,
            ) -> anyhow::Result<Value> {
                call($name, span, params, args, strict)
            }
        )*
        /// Every guarded builtin, with the function the compiled engine calls.
        const GUARDED: &[(&str, Builtin)] = &[$(($name, $fun)),*];
    };
}

guarded! {
    "numbers.range" => numbers_range,
    "numbers.range_step" => numbers_range_step,
    "net.cidr_expand" => net_cidr_expand,
    "array.concat" => array_concat,
    "concat" => concat,
    "sprintf" => sprintf,
    "replace" => replace,
    "strings.replace_n" => strings_replace_n,
    "regex.replace" => regex_replace,
    "split" => split,
    "indexof_n" => indexof_n,
    "json.marshal" => json_marshal,
    "json.marshal_with_options" => json_marshal_with_options,
    "yaml.marshal" => yaml_marshal,
    "urlquery.encode" => urlquery_encode,
    "urlquery.encode_object" => urlquery_encode_object,
    "hex.encode" => hex_encode,
    "base64.encode" => base64_encode,
    "base64url.encode" => base64url_encode,
    "base64url.encode_no_pad" => base64url_encode_no_pad,
    "walk" => walk,
    "test.sleep" => test_sleep,
}

/// Point the compiled program's guarded builtins at their guards.
pub(crate) fn guard_program(program: &mut regorus::rvm::Program) -> Result<(), String> {
    if !program.builtin_info_table.is_empty() && !program.has_resolved_builtins() {
        program
            .initialize_resolved_builtins()
            .map_err(|e| e.to_string())?;
    }
    for (info, slot) in program
        .builtin_info_table
        .iter()
        .zip(program.resolved_builtins.iter_mut())
    {
        if let Some((_, guard)) = GUARDED.iter().find(|(name, _)| *name == info.name) {
            slot.0 = *guard;
        }
    }
    Ok(())
}

/// Register the guards as extensions of an interpreter engine; the
/// interpreter looks extensions up before its builtins.
pub(crate) fn guard_engine(engine: &mut regorus::Engine, strict: bool) -> Result<(), String> {
    let source = regorus::Source::from_contents("<builtin>".into(), String::new())
        .map_err(|e| e.to_string())?;
    let span = Span {
        source,
        line: 1,
        col: 1,
        start: 0,
        end: 0,
    };
    for &(name, _) in GUARDED {
        let Some(&(_, nargs)) = BUILTINS.get(name) else {
            continue;
        };
        let params: Arc<[Ref<Expr>]> = (0..nargs)
            .map(|_| {
                Ref::new(Expr::Null {
                    span: span.clone(),
                    value: Value::Null,
                    eidx: 0,
                })
            })
            .collect();
        let span = span.clone();
        let extension = move |args: Vec<Value>| match call(name, &span, &params, &args, strict) {
            // The interpreter makes a builtin's error `undefined` unless
            // strict; an extension's error it always raises.
            Err(error) if !strict && error.downcast_ref::<LimitError>().is_none() => {
                Ok(Value::Undefined)
            }
            other => other,
        };
        engine
            .add_extension(name.to_string(), nargs, Box::new(extension))
            .map_err(|e| format!("cannot guard {name}: {e}"))?;
    }
    Ok(())
}

fn original(
    name: &'static str,
    span: &Span,
    params: &[Ref<Expr>],
    args: &[Value],
    strict: bool,
) -> anyhow::Result<Value> {
    match BUILTINS.get(name) {
        Some((builtin, _)) => builtin(span, params, args, strict),
        None => Err(anyhow::anyhow!("unknown builtin {name}")),
    }
}

fn call(
    name: &'static str,
    span: &Span,
    params: &[Ref<Expr>],
    args: &[Value],
    strict: bool,
) -> anyhow::Result<Value> {
    check_time(name)?;
    match name {
        "numbers.range" | "numbers.range_step" => return range(name, span, params, args, strict),
        "test.sleep" => {
            let wanted = args
                .first()
                .and_then(|v| v.as_string().ok())
                .and_then(|s| parse_duration(s));
            if let (Some(wanted), Some(left)) = (wanted, remaining_time())
                && wanted > left
            {
                return Err(fail_time(name));
            }
        }
        _ => {}
    }
    let estimate = estimate(name, args, left());
    reserve(name, estimate)?;
    let value = original(name, span, params, args, strict)?;
    // A string's real length can be far below a loose bound.
    charge(match &value {
        Value::String(s) => Cost {
            elements: 0,
            bytes: len(s),
        },
        _ => estimate,
    });
    Ok(value)
}

/// `numbers.range` and `numbers.range_step`, built here so that the size is
/// known before anything is reserved and the deadline is checked while
/// building.
fn range(
    name: &'static str,
    span: &Span,
    params: &[Ref<Expr>],
    args: &[Value],
    strict: bool,
) -> anyhow::Result<Value> {
    let step = match args.get(2) {
        None => 1,
        Some(step) => match step.as_i64() {
            Ok(step) if step > 0 => step,
            // regorus divides by the step before checking it when not
            // strict: answer `undefined` as it would for a bad step.
            _ if matches!(step, Value::Number(_)) && !strict => return Ok(Value::Undefined),
            _ => return original(name, span, params, args, strict),
        },
    };
    let (Some(from), Some(to)) = (args.first(), args.get(1)) else {
        return original(name, span, params, args, strict);
    };
    let (Ok(first), Ok(last)) = (from.as_i64(), to.as_i64()) else {
        // Not two 64-bit integers: regorus's builtin rejects fractions and
        // non-numbers cheaply; anything else is sized first.
        return match (from.as_i128(), to.as_i128()) {
            (Ok(a), Ok(b)) => {
                reserve(name, range_cost(a, b, step))?;
                original(name, span, params, args, strict)
            }
            _ if is_large_integer(from) || is_large_integer(to) => {
                if strict {
                    Err(anyhow::anyhow!(
                        "{name}: bounds beyond 128-bit integers are not supported"
                    ))
                } else {
                    Ok(Value::Undefined)
                }
            }
            _ => original(name, span, params, args, strict),
        };
    };
    let cost = range_cost(i128::from(first), i128::from(last), step);
    reserve(name, cost)?;
    let step = if last >= first {
        i128::from(step)
    } else {
        -i128::from(step)
    };
    let mut values = Vec::with_capacity(usize::try_from(cost.elements).unwrap_or(0));
    let mut at = i128::from(first);
    for built in 0..cost.elements {
        let Ok(value) = i64::try_from(at) else {
            break;
        };
        values.push(Value::from(value));
        at += step;
        if built % CHECK_EVERY == CHECK_EVERY - 1 {
            check_time(name)?;
        }
    }
    charge(cost);
    Ok(Value::from(values))
}

fn range_cost(first: i128, last: i128, step: i64) -> Cost {
    let span = first.abs_diff(last);
    let step = u128::from(step.unsigned_abs().max(1));
    Cost {
        elements: u64::try_from(span / step + 1).unwrap_or(u64::MAX),
        bytes: 0,
    }
}

/// A whole number too large for 128 bits (a fraction is not).
fn is_large_integer(value: &Value) -> bool {
    matches!(value, Value::Number(_))
        && value.as_i128().is_err()
        && value.as_f64().map_or(true, |f| f.fract() == 0.0)
}

fn len(s: &str) -> u64 {
    u64::try_from(s.len()).unwrap_or(u64::MAX)
}

fn chars(s: &str) -> u64 {
    u64::try_from(s.chars().count()).unwrap_or(u64::MAX)
}

fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

fn string(args: &[Value], at: usize) -> Option<&str> {
    args.get(at).and_then(|v| v.as_string().ok()).map(|s| &**s)
}

fn members(value: Option<&Value>) -> u64 {
    match value {
        Some(Value::Array(a)) => count(a.len()),
        Some(Value::Set(s)) => count(s.len()),
        Some(Value::Object(o)) => count(o.len()),
        _ => 0,
    }
}

/// An upper bound of what `name` builds from `args`; measuring stops once
/// it passes what is `left` of the budget.
fn estimate(name: &str, args: &[Value], left: Cost) -> Cost {
    let cap = left.bytes.saturating_add(1);
    let bytes = |bytes: u64| Cost { elements: 0, bytes };
    match name {
        "array.concat" => Cost {
            elements: members(args.first()).saturating_add(members(args.get(1))),
            bytes: 0,
        },
        "concat" => bytes(concat_size(args)),
        "sprintf" => bytes(sprintf_size(args, cap)),
        "replace" => bytes(replace_size(args)),
        "strings.replace_n" => bytes(replace_n_size(args)),
        "regex.replace" => match (string(args, 0), string(args, 2)) {
            (Some(s), Some(with)) => {
                // Matches do not overlap, so each `$ref` expands to at most
                // the whole input over all matches.
                let refs = count(with.matches('$').count());
                let n = len(s);
                bytes(
                    n.saturating_mul(refs.saturating_add(1))
                        .saturating_add(n.saturating_add(1).saturating_mul(len(with))),
                )
            }
            _ => Cost::default(),
        },
        "split" => match (string(args, 0), string(args, 1)) {
            (Some(s), Some("")) => Cost {
                elements: chars(s),
                bytes: len(s),
            },
            (Some(s), Some(delimiter)) => Cost {
                elements: count(s.matches(delimiter).count()).saturating_add(1),
                bytes: len(s),
            },
            _ => Cost::default(),
        },
        "indexof_n" => match (string(args, 0), string(args, 1)) {
            (Some(s), Some(needle)) => Cost {
                elements: count(
                    s.char_indices()
                        .filter(|(at, _)| s[*at..].starts_with(needle))
                        .count(),
                ),
                bytes: 0,
            },
            _ => Cost::default(),
        },
        "net.cidr_expand" => string(args, 0).map_or(Cost::default(), cidr_cost),
        "json.marshal" => args.first().map_or(Cost::default(), |v| {
            bytes(text_size(v, Layout::COMPACT, cap))
        }),
        "json.marshal_with_options" => args.first().map_or(Cost::default(), |v| {
            bytes(text_size(v, Layout::from_options(args.get(1)), cap))
        }),
        "yaml.marshal" => args
            .first()
            .map_or(Cost::default(), |v| bytes(text_size(v, Layout::YAML, cap))),
        "urlquery.encode_object" => args.first().map_or(Cost::default(), |v| {
            bytes(text_size(v, Layout::COMPACT, cap).saturating_mul(3))
        }),
        "urlquery.encode" => bytes(string(args, 0).map_or(0, |s| len(s).saturating_mul(3))),
        "hex.encode" => bytes(string(args, 0).map_or(0, |s| len(s).saturating_mul(2))),
        "base64.encode" | "base64url.encode" | "base64url.encode_no_pad" => {
            bytes(string(args, 0).map_or(0, |s| len(s).div_ceil(3).saturating_mul(4)))
        }
        "walk" => Cost {
            elements: args
                .first()
                .map_or(0, |v| walk_size(v, left.elements.saturating_add(1))),
            bytes: 0,
        },
        _ => Cost::default(),
    }
}

fn concat_size(args: &[Value]) -> u64 {
    let separator = string(args, 0).map_or(0, len);
    let parts: Box<dyn Iterator<Item = &Value>> = match args.get(1) {
        Some(Value::Array(a)) => Box::new(a.iter()),
        Some(Value::Set(s)) => Box::new(s.iter()),
        _ => return 0,
    };
    let mut total = 0u64;
    let mut n = 0u64;
    for part in parts {
        if let Ok(s) = part.as_string() {
            total = total.saturating_add(len(s));
        }
        n += 1;
    }
    total.saturating_add(separator.saturating_mul(n.saturating_sub(1)))
}

/// Format text, every width and precision, and every argument printed in
/// full (numbers as their longest binary form).
fn sprintf_size(args: &[Value], cap: u64) -> u64 {
    let Some(format) = string(args, 0) else {
        return 0;
    };
    let mut total = len(format);
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            continue;
        }
        let mut width = 0u64;
        while let Some(d) = chars
            .peek()
            .copied()
            .filter(|d| d.is_numeric() || *d == '.')
        {
            chars.next();
            match d.to_digit(10) {
                Some(digit) => width = width.saturating_mul(10).saturating_add(u64::from(digit)),
                // regorus panics on a non-ASCII digit; charge the whole
                // budget so the call never reaches it.
                None if d != '.' => return u64::MAX,
                None => {}
            }
        }
        total = total.saturating_add(width);
    }
    let values: Box<dyn Iterator<Item = &Value>> = match args.get(1) {
        Some(Value::Array(a)) => Box::new(a.iter()),
        _ => return total,
    };
    for value in values {
        if total > cap {
            break;
        }
        total = total.saturating_add(text_size(value, Layout::SPRINTF, cap));
    }
    total
}

/// `replace` builds exactly this many bytes.
fn replace_size(args: &[Value]) -> u64 {
    let (Some(s), Some(old), Some(new)) = (string(args, 0), string(args, 1), string(args, 2))
    else {
        return 0;
    };
    if old.is_empty() {
        return len(s).saturating_add(chars(s).saturating_add(1).saturating_mul(len(new)));
    }
    let hits = count(s.matches(old).count());
    len(s)
        .saturating_sub(hits.saturating_mul(len(old)))
        .saturating_add(hits.saturating_mul(len(new)))
}

/// `strings.replace_n` applies each pattern in turn; bound each step.
fn replace_n_size(args: &[Value]) -> u64 {
    let (Some(Value::Object(patterns)), Some(s)) = (args.first(), string(args, 1)) else {
        return 0;
    };
    let mut n = len(s);
    for (old, new) in patterns.iter() {
        let (Ok(old), Ok(new)) = (old.as_string(), new.as_string()) else {
            continue;
        };
        let (old, new) = (len(old), len(new));
        n = if old == 0 {
            n.saturating_add(n.saturating_add(1).saturating_mul(new))
        } else if new <= old {
            n
        } else {
            n.saturating_add((n / old).saturating_mul(new - old))
        };
    }
    n
}

/// Hosts in a CIDR and the bytes of their text.
fn cidr_cost(cidr: &str) -> Cost {
    let Some((address, prefix)) = cidr.split_once('/') else {
        return Cost::default();
    };
    let (bits, text) = if address.contains(':') {
        (128u32, 40u64)
    } else {
        (32, 16)
    };
    let Ok(prefix) = prefix.parse::<u32>() else {
        return Cost::default();
    };
    if prefix > bits {
        return Cost::default();
    }
    let hosts = 1u128
        .checked_shl(bits - prefix)
        .map_or(u64::MAX, |n| u64::try_from(n).unwrap_or(u64::MAX));
    Cost {
        elements: hosts.saturating_add(2),
        bytes: hosts.saturating_mul(text),
    }
}

/// How a value is printed, for [`text_size`].
#[derive(Debug, Clone, Copy)]
struct Layout {
    /// Bytes of indentation per level; 0 for compact output.
    indent: u64,
    /// Bytes before every line of pretty output.
    prefix: u64,
    /// Extra bytes per node (YAML markers).
    per_node: u64,
    /// Bytes of a 64-bit number.
    number: u64,
}

impl Layout {
    const COMPACT: Layout = Layout {
        indent: 0,
        prefix: 0,
        per_node: 0,
        number: 24,
    };
    const SPRINTF: Layout = Layout {
        number: 70,
        ..Layout::COMPACT
    };
    const YAML: Layout = Layout {
        indent: 2,
        prefix: 0,
        per_node: 4,
        number: 24,
    };

    /// `json.marshal_with_options`: `pretty`, `indent` (default a tab),
    /// `prefix`.
    fn from_options(options: Option<&Value>) -> Layout {
        let Some(Value::Object(options)) = options else {
            return Layout::COMPACT;
        };
        let get = |key: &str| options.get(&Value::from(key));
        let indent = get("indent").and_then(|v| v.as_string().ok().map(|s| len(s)));
        let prefix = get("prefix").and_then(|v| v.as_string().ok().map(|s| len(s)));
        let pretty = matches!(get("pretty"), Some(Value::Bool(true)))
            || indent.is_some()
            || prefix.is_some();
        if !pretty {
            return Layout::COMPACT;
        }
        Layout {
            indent: indent.unwrap_or(1).max(1),
            prefix: prefix.unwrap_or(0),
            ..Layout::COMPACT
        }
    }

    fn pretty(&self) -> bool {
        self.indent > 0 || self.prefix > 0
    }
}

/// Bytes of a JSON string literal, escapes included.
fn escaped(s: &str) -> u64 {
    let extra: u64 = s
        .bytes()
        .map(|b| match b {
            b'"' | b'\\' => 1,
            0..=0x1f | b'<' | b'>' | b'&' => 5,
            _ => 0,
        })
        .sum();
    len(s).saturating_add(extra).saturating_add(2)
}

/// An upper bound of the printed size of `value`, or some number over `cap`
/// as soon as it passes `cap` (values share their parts, so a small value in
/// memory can print to gigabytes).
fn text_size(value: &Value, layout: Layout, cap: u64) -> u64 {
    let mut total = 0u64;
    let mut pending: Vec<(&Value, u64)> = vec![(value, 0)];
    while let Some((value, depth)) = pending.pop() {
        total = total.saturating_add(layout.per_node);
        if layout.pretty() {
            let line = 1 + layout.prefix + layout.indent.saturating_mul(depth);
            // Opening line, plus the closing line of a collection.
            let lines = if matches!(value, Value::Array(_) | Value::Set(_) | Value::Object(_)) {
                2
            } else {
                1
            };
            total = total.saturating_add(line.saturating_mul(lines));
        }
        total = total.saturating_add(match value {
            Value::Null | Value::Undefined => 4,
            Value::Bool(_) => 5,
            Value::Number(_) => number_size(value, layout.number),
            Value::String(s) => escaped(s),
            Value::Array(a) => {
                pending.extend(a.iter().map(|v| (v, depth + 1)));
                2 + count(a.len())
            }
            Value::Set(s) => {
                pending.extend(s.iter().map(|v| (v, depth + 1)));
                2 + count(s.len())
            }
            Value::Object(o) => {
                for (key, value) in o.iter() {
                    pending.push((key, depth + 1));
                    pending.push((value, depth + 1));
                }
                // Separators; a key that is not a string is printed as the
                // string of its JSON text.
                2 + count(o.len()).saturating_mul(3)
                    + o.iter()
                        .filter(|(key, _)| !matches!(key, Value::String(_)))
                        .count() as u64
                        * 2
            }
        });
        if total > cap {
            return total;
        }
    }
    total
}

fn number_size(value: &Value, machine: u64) -> u64 {
    if value.as_i64().is_ok() || value.as_u64().is_ok() || value.as_f64().is_ok() {
        return machine;
    }
    // A big integer: its decimal digits, times four for binary.
    value
        .to_json_str()
        .map_or(machine, |text| len(&text).saturating_mul(4))
        .max(machine)
}

/// Elements `walk` builds: a `[path, value]` pair per node, the path as
/// long as the node is deep; stops once past `cap`.
fn walk_size(value: &Value, cap: u64) -> u64 {
    let mut total = 0u64;
    let mut pending: Vec<(&Value, u64)> = vec![(value, 0)];
    while let Some((value, depth)) = pending.pop() {
        total = total.saturating_add(3 + depth);
        match value {
            Value::Array(a) => pending.extend(a.iter().map(|v| (v, depth + 1))),
            Value::Set(s) => pending.extend(s.iter().map(|v| (v, depth + 1))),
            Value::Object(o) => pending.extend(o.iter().map(|(_, v)| (v, depth + 1))),
            _ => {}
        }
        if total > cap {
            return total;
        }
    }
    total
}

/// A Go duration (`1.5s`, `2h45m`, `300ms`), as `test.sleep` takes it.
fn parse_duration(text: &str) -> Option<Duration> {
    let mut rest = text.trim();
    if rest == "0" {
        return Some(Duration::ZERO);
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..number_end].parse().ok()?;
        rest = &rest[number_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[unit_end..];
        total += number * seconds;
    }
    Duration::try_from_secs_f64(total).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_cost_their_element_count() {
        assert_eq!(range_cost(1, 100_000_000, 1).elements, 100_000_000);
        assert_eq!(range_cost(10, 1, 3).elements, 4);
        assert_eq!(
            range_cost(i128::from(i64::MIN), i128::from(i64::MAX), 1).elements,
            u64::MAX
        );
    }

    #[test]
    fn widths_count_towards_sprintf_output() {
        let args = [
            Value::from("%0100000000d"),
            Value::from(vec![Value::from(1)]),
        ];
        assert!(sprintf_size(&args, u64::MAX) >= 100_000_000);
        let args = [Value::from("%\u{0663}d"), Value::from(vec![Value::from(1)])];
        assert_eq!(sprintf_size(&args, u64::MAX), u64::MAX);
    }

    #[test]
    fn replace_size_is_exact() {
        let args = [Value::from("abab"), Value::from("b"), Value::from("xyz")];
        assert_eq!(replace_size(&args), "axyzaxyz".len() as u64);
        let args = [Value::from("ab"), Value::from(""), Value::from("-")];
        assert_eq!(replace_size(&args), "-a-b-".len() as u64);
    }

    #[test]
    fn cidrs_cost_their_host_count() {
        assert_eq!(cidr_cost("10.0.0.0/8").elements, (1 << 24) + 2);
        assert_eq!(cidr_cost("::/0").elements, u64::MAX);
        assert_eq!(cidr_cost("not a cidr"), Cost::default());
    }

    #[test]
    fn shared_values_are_measured_as_printed_but_stop_at_the_cap() {
        let mut value = Value::from("0123456789");
        for _ in 0..60 {
            value = Value::from(vec![value.clone(), value]);
        }
        let size = text_size(&value, Layout::COMPACT, 1_000);
        assert!(size > 1_000 && size < 2_000, "{size}");
    }

    #[test]
    fn go_durations_parse() {
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("1h2m"), Some(Duration::from_secs(3720)));
        assert_eq!(parse_duration("10"), None);
    }
}
