//! A configuration document as its author wrote it, before any rule is applied.
//!
//! YAML and JSON are parsed by the TypeScript layer, which sends the document in a JSON
//! wire form (see [`Value::from_wire`]). The wire keeps what plain JSON would lose and the
//! messages need: numbers JSON cannot hold (`1e400`, `.nan`), a scalar's text when it is not the
//! canonical one (`042`), text that is not valid Unicode (a lone surrogate), values that are not
//! data at all (a `Buffer`), and how a duration string read.

use serde_json::Value as Json;

/// One node of a raw configuration document.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
  /// `null`, or an empty YAML value.
  Null,
  /// A boolean, and its source text when that is not `true`/`false` (YAML's `True`).
  Bool(bool, Option<String>),
  /// A number (any double, NaN and infinities included), and its source text when that is not
  /// the number's canonical form (`042`, `1e400`, `9007199254740993`).
  Number(f64, Option<String>),
  /// Text.
  Text(String),
  /// Text that is not valid Unicode, as UTF-16 code units (it holds a lone surrogate).
  Utf16(Vec<u16>),
  /// A string given where a duration is expected, as written and as the caller read it.
  Duration(String, Reading),
  /// A list.
  List(Vec<Value>),
  /// A mapping, its pairs in document order (keys are not deduplicated here).
  Map(Vec<(String, Value)>),
  /// Something that is not data: the description to show (`an object of type Buffer`).
  Opaque(String),
}

/// What a duration string means, as the caller's duration parser read it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Reading {
  /// A well-formed duration of this many milliseconds.
  Ms(f64),
  /// A well-formed duration past Go's limit (about 292 years).
  Overflow,
  /// Not a duration.
  Malformed,
}

/// `JSON.stringify`-style quoting, shortened past 60 characters: for messages.
pub(crate) fn quote(text: &str) -> String {
  quote_points(text.chars().map(CodePoint::Char))
}

/// [`quote`] of code points, lone surrogates written as JSON writes them (`"\udc00"`).
fn quote_points(points: impl Iterator<Item = CodePoint>) -> String {
  let points: Vec<CodePoint> = points.collect();
  let shortened = points.len() > 60;
  let mut out = String::from('"');
  for point in points.iter().take(if shortened { 57 } else { points.len() }) {
    match *point {
      CodePoint::Char('"') => out.push_str("\\\""),
      CodePoint::Char('\\') => out.push_str("\\\\"),
      CodePoint::Char('\n') => out.push_str("\\n"),
      CodePoint::Char('\r') => out.push_str("\\r"),
      CodePoint::Char('\t') => out.push_str("\\t"),
      CodePoint::Char('\u{8}') => out.push_str("\\b"),
      CodePoint::Char('\u{c}') => out.push_str("\\f"),
      CodePoint::Char(c) if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
      CodePoint::Char(c) => out.push(c),
      CodePoint::Lone(unit) => out.push_str(&format!("\\u{unit:04x}")),
    }
  }
  if shortened {
    out.push_str("...");
  }
  out.push('"');
  out
}

/// A number as JavaScript's `String(x)` writes it: `2`, `0.5`, `1e+21`, `NaN`, `-Infinity`.
pub fn js_number(x: f64) -> String {
  if x.is_nan() {
    return "NaN".into();
  }
  if x.is_infinite() {
    return if x > 0.0 { "Infinity" } else { "-Infinity" }.into();
  }
  if x == 0.0 {
    return "0".into();
  }
  // `{:e}` gives the shortest digits that read back as `x`; ECMAScript then places the point.
  let scientific = format!("{:e}", x.abs());
  let (mantissa, exponent) = scientific.split_once('e').expect("`{:e}` always has an exponent");
  let digits = mantissa.replace('.', "");
  let k = digits.len() as i32;
  let n = exponent.parse::<i32>().expect("`{:e}` writes an integer exponent") + 1;
  let body = if k <= n && n <= 21 {
    format!("{digits}{}", "0".repeat((n - k) as usize))
  } else if 0 < n && n <= 21 {
    format!("{}.{}", &digits[..n as usize], &digits[n as usize..])
  } else if -6 < n && n <= 0 {
    format!("0.{}{digits}", "0".repeat((-n) as usize))
  } else {
    let e = n - 1;
    let sign = if e >= 0 { '+' } else { '-' };
    let m = if k == 1 { digits } else { format!("{}.{}", &digits[..1], &digits[1..]) };
    format!("{m}e{sign}{}", e.abs())
  };
  if x < 0.0 {
    format!("-{body}")
  } else {
    body
  }
}

/// Whether `text` is a plain decimal number literal (`-1.5e3`, `.5`), which a message can show as written.
fn is_number_literal(text: &str) -> bool {
  let t = text.strip_prefix(['-', '+']).unwrap_or(text);
  let (mantissa, exponent) = match t.find(['e', 'E']) {
    Some(i) => (&t[..i], Some(&t[i + 1..])),
    None => (t, None),
  };
  let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
  let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
  let mantissa_ok = digits(whole) && digits(fraction) && !(whole.is_empty() && fraction.is_empty());
  let exponent_ok = exponent.map_or(true, |e| {
    let e = e.strip_prefix(['-', '+']).unwrap_or(e);
    !e.is_empty() && digits(e)
  });
  mantissa_ok && exponent_ok
}

/// Code points of a text, lone surrogates included.
pub(crate) enum CodePoint {
  Char(char),
  Lone(u16),
}

impl Value {
  /// Reads the wire form: JSON, where `null`, booleans, numbers, strings and arrays are
  /// themselves, and every object is one of
  /// - `{"map": [[key, value], ...]}`: a mapping, pairs in document order;
  /// - `{"number": n | "NaN" | "Infinity" | "-Infinity", "text"?: source}`;
  /// - `{"bool": b, "text": source}`;
  /// - `{"utf16": [unit, ...]}`: text holding a lone surrogate;
  /// - `{"duration": source, "ms": n}` (read), `{"duration": source, "overflow": true}` (past
  ///   Go's limit) or `{"duration": source}` (not a duration);
  /// - `{"object": "Buffer"}`: an object that is not data; `{"type": "bigint"}`: another JS type.
  pub fn from_wire(json: &str) -> Result<Value, String> {
    let json: Json = serde_json::from_str(json).map_err(|e| format!("invalid wire form: {e}"))?;
    Value::from_json(json)
  }

  /// A plain JSON value as a document (objects as mappings), or a wire-form node.
  fn from_json(json: Json) -> Result<Value, String> {
    Ok(match json {
      Json::Null => Value::Null,
      Json::Bool(b) => Value::Bool(b, None),
      Json::Number(n) => Value::Number(n.as_f64().unwrap_or(f64::NAN), None),
      Json::String(s) => Value::Text(s),
      Json::Array(items) => Value::List(items.into_iter().map(Value::from_json).collect::<Result<_, _>>()?),
      Json::Object(mut o) => {
        let text = match o.remove("text") {
          Some(Json::String(s)) => Some(s),
          _ => None,
        };
        if let Some(pairs) = o.remove("map") {
          let Json::Array(pairs) = pairs else { return Err("`map` must be a list of pairs".into()) };
          let pair = |p: Json| match p {
            Json::Array(mut kv) if kv.len() == 2 => {
              let value = Value::from_json(kv.pop().expect("two items"))?;
              match kv.pop() {
                Some(Json::String(key)) => Ok((key, value)),
                _ => Err("a key must be a string".to_string()),
              }
            }
            _ => Err("a pair must be [key, value]".into()),
          };
          Value::Map(pairs.into_iter().map(pair).collect::<Result<_, _>>()?)
        } else if let Some(n) = o.remove("number") {
          let value = match n {
            Json::Number(n) => n.as_f64().unwrap_or(f64::NAN),
            Json::String(s) => s.parse::<f64>().map_err(|_| format!("`number` {s:?} is not a number"))?,
            _ => return Err("`number` must be a number or its name".into()),
          };
          Value::Number(value, text)
        } else if let Some(Json::Bool(b)) = o.remove("bool") {
          Value::Bool(b, text)
        } else if let Some(Json::Array(units)) = o.remove("utf16") {
          Value::Utf16(units.iter().map(|u| u.as_u64().and_then(|u| u16::try_from(u).ok()).ok_or("bad UTF-16 unit")).collect::<Result<_, _>>()?)
        } else if let Some(Json::String(source)) = o.remove("duration") {
          let reading = match (o.remove("ms").and_then(|ms| ms.as_f64()), o.remove("overflow")) {
            (Some(ms), _) => Reading::Ms(ms),
            (None, Some(Json::Bool(true))) => Reading::Overflow,
            _ => Reading::Malformed,
          };
          Value::Duration(source, reading)
        } else if let Some(Json::String(name)) = o.remove("object") {
          Value::Opaque(format!("an object of type {name}"))
        } else if let Some(Json::String(name)) = o.remove("type") {
          Value::Opaque(name)
        } else {
          return Err("unknown wire node".into());
        }
      }
    })
  }

  /// A plain JSON value as a document: objects are mappings (keys in sorted order).
  pub fn from_plain_json(json: Json) -> Value {
    match json {
      Json::Object(o) => Value::Map(o.into_iter().map(|(k, v)| (k, Value::from_plain_json(v))).collect()),
      Json::Array(items) => Value::List(items.into_iter().map(Value::from_plain_json).collect()),
      Json::Null => Value::Null,
      Json::Bool(b) => Value::Bool(b, None),
      Json::Number(n) => Value::Number(n.as_f64().unwrap_or(f64::NAN), None),
      Json::String(s) => Value::Text(s),
    }
  }

  /// `string "0.5"`, `boolean true`, `2`, `a list`: for "(got ...)" in messages. A number
  /// the value does not hold exactly (`1e400` read as infinity, `9007199254740993` as ...992)
  /// is shown as written.
  pub fn describe(&self) -> String {
    match self {
      Value::Null => "null".into(),
      Value::Bool(b, _) => format!("boolean {b}"),
      Value::Number(x, text) => {
        let inexact = !x.is_finite() || (x.fract() == 0.0 && x.abs() > MAX_SAFE_INTEGER);
        match text.as_deref().map(str::trim) {
          Some(text) if inexact && is_number_literal(text) => text.to_string(),
          _ => js_number(*x),
        }
      }
      Value::Text(s) | Value::Duration(s, _) => format!("string {}", quote(s)),
      Value::Utf16(_) => format!("string {}", quote_points(self.code_points().unwrap_or_default().into_iter())),
      Value::List(_) => "a list".into(),
      Value::Map(_) => "a mapping".into(),
      Value::Opaque(description) => description.clone(),
    }
  }

  /// The scalar's source text, or its canonical form: what a user would quote.
  pub(crate) fn source_text(&self) -> Option<String> {
    match self {
      Value::Bool(b, text) => Some(text.clone().unwrap_or_else(|| b.to_string())),
      Value::Number(x, text) => Some(text.clone().unwrap_or_else(|| js_number(*x))),
      _ => None,
    }
  }

  /// The code points of a text value (`Text` or `Utf16`), or `None` for any other value.
  pub(crate) fn code_points(&self) -> Option<Vec<CodePoint>> {
    match self {
      Value::Text(s) => Some(s.chars().map(CodePoint::Char).collect()),
      Value::Utf16(units) => {
        Some(char::decode_utf16(units.iter().copied()).map(|r| r.map_or_else(|e| CodePoint::Lone(e.unpaired_surrogate()), CodePoint::Char)).collect())
      }
      _ => None,
    }
  }
}

/// JavaScript's `Number.MAX_SAFE_INTEGER`, the largest integer every double below it holds exactly.
pub const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn numbers_are_written_as_javascript_writes_them() {
    let cases = [
      (2.0, "2"),
      (0.5, "0.5"),
      (-0.1, "-0.1"),
      (-0.0, "0"),
      (1500.25, "1500.25"),
      (1e21, "1e+21"),
      (1e20, "100000000000000000000"),
      (1.5e-7, "1.5e-7"),
      (0.000001, "0.000001"),
      (9007199254740992.0, "9007199254740992"),
      (f64::NAN, "NaN"),
      (f64::NEG_INFINITY, "-Infinity"),
    ];
    for (x, text) in cases {
      assert_eq!(js_number(x), text, "{x}");
    }
  }

  #[test]
  fn describe_names_the_kind_and_shows_inexact_numbers_as_written() {
    let number = |x: f64, text: Option<&str>| Value::Number(x, text.map(str::to_string)).describe();
    assert_eq!(number(f64::INFINITY, Some("1e400")), "1e400");
    assert_eq!(number(9007199254740992.0, Some("9007199254740993")), "9007199254740993");
    assert_eq!(number(f64::INFINITY, Some(".inf")), "Infinity", "not a decimal literal");
    assert_eq!(number(42.0, Some("042")), "42", "exact: the value");
    assert_eq!(Value::Text("0.5".into()).describe(), r#"string "0.5""#);
    assert_eq!(Value::Text("a\r\n\"\u{1b}".into()).describe(), r#"string "a\r\n\"\u001b""#);
    assert_eq!(Value::Text("x".repeat(61)).describe(), format!("string \"{}...\"", "x".repeat(57)));
    assert_eq!(Value::Utf16(vec![0x61, 0xdc00]).describe(), r#"string "a\udc00""#);
    assert_eq!(Value::Bool(true, None).describe(), "boolean true");
    assert_eq!(Value::List(vec![]).describe(), "a list");
    assert_eq!(Value::Map(vec![]).describe(), "a mapping");
    assert_eq!(Value::Null.describe(), "null");
  }

  #[test]
  fn the_wire_form_keeps_what_json_loses() {
    let wire = r#"[{"map": [["b", 1], ["a", null]]}, {"number": "NaN"}, {"number": "-0"}, {"number": 42, "text": "042"},
      {"bool": true, "text": "True"}, {"utf16": [55296]}, {"duration": "2s", "ms": 2000}, {"duration": "9999999999h", "overflow": true},
      {"duration": "fast"}, {"object": "Buffer"}, {"type": "bigint"}]"#;
    let Value::List(items) = Value::from_wire(wire).unwrap() else { panic!("a list") };
    assert_eq!(items[0], Value::Map(vec![("b".into(), Value::Number(1.0, None)), ("a".into(), Value::Null)]), "pairs keep their order");
    assert!(matches!(items[1], Value::Number(x, None) if x.is_nan()));
    assert!(matches!(items[2], Value::Number(x, None) if x == 0.0 && x.is_sign_negative()));
    assert_eq!(items[3], Value::Number(42.0, Some("042".into())));
    assert_eq!(items[4].source_text().as_deref(), Some("True"));
    assert_eq!(items[5], Value::Utf16(vec![0xd800]));
    assert_eq!(items[6], Value::Duration("2s".into(), Reading::Ms(2000.0)));
    assert_eq!(items[7], Value::Duration("9999999999h".into(), Reading::Overflow));
    assert_eq!(items[8], Value::Duration("fast".into(), Reading::Malformed));
    assert_eq!(items[9].describe(), "an object of type Buffer");
    assert_eq!(items[10].describe(), "bigint");
    assert!(Value::from_wire(r#"{"what": 1}"#).is_err());
    assert!(Value::from_wire(r#"{"map": [["a"]]}"#).is_err());
  }
}
