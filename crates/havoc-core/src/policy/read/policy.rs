//! One policy: its type, name, target, chances, error code, headers, roll mode and resource
//! limits, each checked against its range or enumeration.

use std::collections::{BTreeMap, HashMap};

use super::fields::{POLICY, TOP};
use super::messages::{closest, protocol_list, protocol_spelling, shown, unknown_value_message};
use super::path::Path;
use super::reader::{as_text, integer_in, lone_surrogate, present, Field, Reader};
use crate::policy::value::{js_number, quote, CodePoint, Value};
use crate::policy::{
  Policy, Protocol, StreamRollMode, DEFAULT_RAM_INTERVAL_MS, MAX_CPU_CORES, MAX_ERROR_CODE, MAX_GRPC_STATUS, MAX_HTTP_STATUS, MAX_LATENCY_MS,
  MAX_NAME_CHARS, MAX_RAM_CHUNK_MB, MAX_RAM_INTERVAL_MS, MAX_RAM_MB, MAX_SABOTAGE_MS, MAX_THROTTLE, MIN_HTTP_STATUS,
};

/// Why a policy name is not printable text of at most [`MAX_NAME_CHARS`] characters, if it is
/// not. Names become Prometheus label values and console text, so control characters (C0,
/// DEL, C1), line and paragraph separators and lone surrogates are refused. Indexes and
/// lengths count code points.
fn name_problem(points: &[CodePoint]) -> Option<String> {
  for (index, point) in points.iter().enumerate() {
    match *point {
      CodePoint::Char(c) if c.is_control() => return Some(format!("found control character U+{:04X} at index {index}", u32::from(c))),
      CodePoint::Char(c @ ('\u{2028}' | '\u{2029}')) => return Some(format!("found line break U+{:04X} at index {index}", u32::from(c))),
      CodePoint::Lone(unit) => return Some(format!("found lone surrogate U+{unit:04X} at index {index}")),
      CodePoint::Char(_) => {}
    }
  }
  (points.len() > MAX_NAME_CHARS).then(|| format!("it has {} characters", points.len()))
}

/// An HTTP header name (RFC 9110 token) of at most 255 bytes.
fn is_header_name(name: &str) -> bool {
  !name.is_empty() && name.len() <= 255 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+.^_`|~-".contains(&b))
}

impl Reader {
  /// One policy, and the path of its name.
  pub(super) fn policy(&mut self, input: &Value, path: &Path) -> Option<(Policy, Path)> {
    let Value::Map(pairs) = input else {
      self.report(path.clone(), format!("must be a mapping with at least `name` and `type` (got {})", input.describe()));
      return None;
    };
    let fields = self.fields(pairs, path, &POLICY, &TOP);
    let field = |name: &str| fields.get(name);
    let number = |name: &str, reader: &mut Reader, check: &dyn Fn(&Value) -> Option<f64>, expected: &dyn Fn() -> String| -> f64 {
      let Some(f) = present(field(name)) else { return 0.0 };
      check(f.value).unwrap_or_else(|| {
        reader.report(f.path.clone(), format!("must be {} (got {})", expected(), f.value.describe()));
        0.0
      })
    };
    let chance = |value: &Value| match value {
      Value::Number(x, _) if (0.0..=1.0).contains(x) => Some(*x), // NaN is in no range
      _ => None,
    };
    let integer = |name: &str, reader: &mut Reader, max: f64| -> f64 {
      number(name, reader, &|v| integer_in(v, 0.0, max), &|| format!("an integer in [0, {}]", js_number(max)))
    };

    let protocol = self.protocol(field("type"), path);
    let name = self.name(field("name"), path);
    let target = self.text(field("target"));
    let duration = |name: &str, reader: &mut Reader, max: f64| present(field(name)).map_or(0.0, |f| reader.duration(f, max));
    let policy = Policy {
      name,
      protocol,
      target: if target.is_empty() { "all".into() } else { target },
      latency_chance: number("latency_chance", self, &chance, &|| "a number in [0, 1]".into()),
      latency_duration: duration("latency_duration", self, MAX_LATENCY_MS),
      error_chance: number("error_chance", self, &chance, &|| "a number in [0, 1]".into()),
      error_code: {
        let (min, max, expected) = match protocol {
          Some(Protocol::Http) => (
            MIN_HTTP_STATUS,
            MAX_HTTP_STATUS,
            format!("0 or an HTTP status code in [{}, {}]", js_number(MIN_HTTP_STATUS), js_number(MAX_HTTP_STATUS)),
          ),
          Some(Protocol::Grpc) => (0.0, MAX_GRPC_STATUS, format!("a gRPC status code in [0, {}]", js_number(MAX_GRPC_STATUS))),
          _ => (0.0, MAX_ERROR_CODE, format!("an integer in [0, {}]", js_number(MAX_ERROR_CODE))),
        };
        let valid = |v: &Value| integer_in(v, 0.0, 0.0).or_else(|| integer_in(v, min, max));
        number("error_code", self, &valid, &|| expected.clone()) as u32
      },
      error_body: self.text(field("error_body")),
      match_headers: present(field("match_headers")).map(|f| self.headers(f)).unwrap_or_default(),
      drop_connection: present(field("drop_connection")).is_some_and(|f| self.boolean(f)),
      stream_roll_mode: present(field("stream_roll_mode")).map_or(StreamRollMode::Unset, |f| self.stream_roll_mode(f)),
      throttle_threshold: integer("throttle_threshold", self, MAX_THROTTLE),
      ram_chunk_mb: integer("ram_chunk_mb", self, MAX_RAM_CHUNK_MB),
      // pastaay's rule: an interval of 0 (or none) means one second.
      ram_interval: match duration("ram_interval", self, MAX_RAM_INTERVAL_MS) {
        0.0 => DEFAULT_RAM_INTERVAL_MS,
        ms => ms,
      },
      cpu_cores: integer("cpu_cores", self, f64::from(MAX_CPU_CORES)) as u32,
      cpu_percent: number("cpu_percent", self, &|v| integer_in(v, 0.0, 100.0), &|| {
        "an integer percentage in [1, 100], or 0 for the default of 100".into()
      }) as u32,
      ram_max_mb: integer("ram_max_mb", self, MAX_RAM_MB),
      duration: duration("duration", self, MAX_SABOTAGE_MS),
    };
    let name_path = field("name").map_or_else(|| path.key("name"), |f| f.path.clone());
    Some((policy, name_path))
  }

  /// `type`: required, one of the protocols.
  fn protocol(&mut self, field: Option<&Field>, path: &Path) -> Option<Protocol> {
    let Some(f) = present(field) else {
      self.report(field.map_or_else(|| path.key("type"), |f| f.path.clone()), format!("is required: one of {}", protocol_list()));
      return None;
    };
    match f.value {
      Value::Text(s) => protocol_spelling(s).or_else(|| {
        self.report(f.path.clone(), unknown_value_message("type", s));
        None
      }),
      Value::Utf16(_) => {
        self.report(f.path.clone(), format!("unknown type {}; expected one of {}", shown(f.value), protocol_list()));
        None
      }
      other => {
        self.report(f.path.clone(), format!("must be one of {} (got {})", protocol_list(), other.describe()));
        None
      }
    }
  }

  /// `name`: required, printable, non-blank.
  fn name(&mut self, field: Option<&Field>, path: &Path) -> String {
    let Some(f) = present(field) else {
      self.report(field.map_or_else(|| path.key("name"), |f| f.path.clone()), "is required: every policy needs a unique name".into());
      return String::new();
    };
    let blank = |points: &[CodePoint]| points.iter().all(|p| matches!(p, CodePoint::Char(c) if c.is_whitespace() || *c == '\u{feff}'));
    match f.value.code_points() {
      Some(points) if !blank(&points) => match name_problem(&points) {
        None => as_text(f.value).unwrap_or_default().to_string(),
        Some(problem) => {
          self.report(f.path.clone(), format!("must be printable text of at most {MAX_NAME_CHARS} characters ({problem})"));
          String::new()
        }
      },
      _ => {
        self.report(f.path.clone(), format!("must be a non-empty string (got {})", f.value.describe()));
        String::new()
      }
    }
  }

  /// Optional text: absent is empty; it must be valid Unicode.
  fn text(&mut self, field: Option<&Field>) -> String {
    let Some(f) = present(field) else { return String::new() };
    match f.value {
      Value::Text(s) | Value::Duration(s, _) => s.clone(),
      Value::Utf16(_) => {
        self.report(f.path.clone(), format!("must be valid Unicode text ({})", lone_surrogate(f.value).unwrap_or_default()));
        String::new()
      }
      other => {
        self.report(f.path.clone(), format!("must be a string (got {})", other.describe()));
        String::new()
      }
    }
  }

  /// `stream_roll_mode`: one of the modes, with a hint for a misspelt one.
  fn stream_roll_mode(&mut self, field: &Field) -> StreamRollMode {
    const MODES: [StreamRollMode; 4] = [StreamRollMode::Unset, StreamRollMode::PerCall, StreamRollMode::PerFrame, StreamRollMode::Stream];
    if let Some(mode) = as_text(field.value).and_then(|s| MODES.into_iter().find(|m| m.as_str() == s)) {
      return mode;
    }
    let allowed: Vec<String> = MODES.iter().map(|m| quote(m.as_str())).collect();
    let named: Vec<String> = MODES.iter().map(|m| m.as_str().to_string()).filter(|m| !m.is_empty()).collect();
    let hint = as_text(field.value).and_then(|s| closest(s, &named)).map(|s| format!("; did you mean `{s}`?")).unwrap_or_default();
    self.report(field.path.clone(), format!("must be one of {} (got {}){hint}", allowed.join(", "), field.value.describe()));
    StreamRollMode::Unset
  }

  /// Header names are case-insensitive, so they are stored lowercase; values must be text.
  fn headers(&mut self, field: &Field) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let Value::Map(pairs) = field.value else {
      self.report(field.path.clone(), format!("must be a mapping of header name to value (got {})", field.value.describe()));
      return out;
    };
    let mut seen: HashMap<String, &str> = HashMap::new();
    for (name, value) in pairs {
      let path = field.path.key(name);
      let lower = name.to_ascii_lowercase();
      if !is_header_name(name) {
        let why = if name.len() > 255 { format!(" (it is {} bytes long; at most 255 are allowed)", name.len()) } else { String::new() };
        self.report_key(path, format!("{} is not a valid HTTP header name{why}", quote(name)));
      } else if let Some(first) = seen.get(&lower) {
        self.report_key(path, format!("header `{name}` is given twice (names are case-insensitive; first as `{first}`)"));
      } else {
        seen.insert(lower.clone(), name);
        match value {
          Value::Text(s) | Value::Duration(s, _) => {
            out.insert(lower, s.clone());
          }
          Value::Utf16(_) => self.report(path, format!("must be valid Unicode text ({})", lone_surrogate(value).unwrap_or_default())),
          Value::Number(..) | Value::Bool(..) => {
            let source = value.source_text().unwrap_or_default();
            let hint = format!("; header values are compared as text, so quote it: \"{source}\"");
            self.report(path, format!("must be a string (got {}){hint}", value.describe()));
          }
          other => self.report(path, format!("must be a string (got {})", other.describe())),
        }
      }
    }
    out
  }
}

#[cfg(test)]
mod tests {
  use std::collections::BTreeMap;

  use super::*;
  use crate::policy::read::read;
  use crate::policy::read::test_support::{findings_of, one_policy, plain, policy, policy_findings};
  use crate::policy::read::{Path, Step};
  use serde_json::json;

  #[test]
  fn types_are_protocols_with_a_hint() {
    let type_of = |value: serde_json::Value| policy_findings(json!({ "type": value }));
    assert_eq!(
      type_of(json!("htp")),
      [r#"policies[0].type: unknown type "htp"; expected one of http, grpc, sql, redis, rabbitmq, kafka, mongo, resource; did you mean `http`?"#]
    );
    assert_eq!(type_of(json!("MySQL")), [r#"policies[0].type: unknown type "MySQL"; use `sql` for every SQL database"#]);
    assert_eq!(type_of(json!(1)), ["policies[0].type: must be one of http, grpc, sql, redis, rabbitmq, kafka, mongo, resource (got 1)"]);
    assert_eq!(type_of(json!(null)), ["policies[0].type: is required: one of http, grpc, sql, redis, rabbitmq, kafka, mongo, resource"]);
    assert_eq!(one_policy(json!({"type": "mongodb"})).protocol, Some(Protocol::Mongo));
  }

  #[test]
  fn names_are_printable_unique_and_at_most_128_characters() {
    let name = |value: Value| {
      let Value::Map(mut top) = policy(json!({})) else { unreachable!() };
      let Value::List(policies) = &mut top[1].1 else { unreachable!() };
      let Value::Map(fields) = &mut policies[0] else { unreachable!() };
      fields[0].1 = value;
      findings_of(&Value::Map(top))
    };
    let refused = |problem: &str| vec![format!("policies[0].name: must be printable text of at most 128 characters ({problem})")];
    for good in ["checkout-errors", "slow users (EU)", "caf\u{e9} \u{1F600}", &"\u{1F600}".repeat(128)] {
      assert_eq!(name(Value::Text(good.into())), Vec::<String>::new(), "{good:?}");
    }
    assert_eq!(name(Value::Text("abc\0d".into())), refused("found control character U+0000 at index 3"));
    assert_eq!(name(Value::Text("\u{e9}\u{85}".into())), refused("found control character U+0085 at index 1"));
    assert_eq!(name(Value::Text("a\u{2028}b".into())), refused("found line break U+2028 at index 1"));
    assert_eq!(name(Value::Utf16(vec![0xd83d, 0xde00, 0x61, 0xdc00])), refused("found lone surrogate U+DC00 at index 2"));
    assert_eq!(name(Value::Text("x".repeat(129))), refused("it has 129 characters"));
    assert_eq!(
      name(Value::Text(" \u{feff}".into())),
      [r#"policies[0].name: must be a non-empty string (got string " \ufeff")"#.replace("\\ufeff", "\u{feff}")]
    );
    assert_eq!(name(Value::Bool(false, None)), ["policies[0].name: must be a non-empty string (got boolean false)"]);

    let doc = json!({"version": 1, "policies": [{"name": "x", "type": "http"}, {"name": "y", "type": "sql"}, {"name": "x", "type": "redis"}]});
    let found = read(&plain(doc)).unwrap_err();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].path.to_string(), "policies[2].name");
    assert_eq!(found[0].message, r#"duplicate policy name "x" (first defined at policies[0])"#);
    assert_eq!(found[0].first, Some(Path(vec![Step::Key("policies".into()), Step::Index(0)])));
  }

  #[test]
  fn chances_codes_and_integers_are_checked_per_field() {
    assert_eq!(
      policy_findings(json!({"latency_chance": 1.5, "error_chance": "0.5", "error_code": 600})),
      [
        "policies[0].latency_chance: must be a number in [0, 1] (got 1.5)",
        r#"policies[0].error_chance: must be a number in [0, 1] (got string "0.5")"#,
        "policies[0].error_code: must be 0 or an HTTP status code in [100, 599] (got 600)",
      ]
    );
    assert_eq!(
      policy_findings(json!({"type": "grpc", "error_code": 17})),
      ["policies[0].error_code: must be a gRPC status code in [0, 16] (got 17)"]
    );
    assert_eq!(policy_findings(json!({"type": "kafka", "error_code": 1.5})), ["policies[0].error_code: must be an integer in [0, 65535] (got 1.5)"]);
    assert_eq!(one_policy(json!({"type": "redis", "error_code": 65535})).error_code, 65535);
    assert_eq!(
      policy_findings(
        json!({"throttle_threshold": 10_000_001, "ram_chunk_mb": 4097, "cpu_cores": 1025, "cpu_percent": 101, "ram_max_mb": 1_048_577})
      ),
      [
        "policies[0].throttle_threshold: must be an integer in [0, 10000000] (got 10000001)",
        "policies[0].ram_chunk_mb: must be an integer in [0, 4096] (got 4097)",
        "policies[0].cpu_cores: must be an integer in [0, 1024] (got 1025)",
        "policies[0].cpu_percent: must be an integer percentage in [1, 100], or 0 for the default of 100 (got 101)",
        "policies[0].ram_max_mb: must be an integer in [0, 1048576] (got 1048577)",
      ]
    );
  }

  #[test]
  fn text_fields_booleans_and_roll_modes() {
    assert_eq!(
      policy_findings(json!({"target": 404, "error_body": [], "drop_connection": "yes", "stream_roll_mode": "per_call"})),
      [
        "policies[0].target: must be a string (got 404)",
        "policies[0].error_body: must be a string (got a list)",
        r#"policies[0].drop_connection: must be true or false (got string "yes")"#,
        r#"policies[0].stream_roll_mode: must be one of "", "per-call", "per-frame", "stream" (got string "per_call"); did you mean `per-call`?"#,
      ]
    );
    let p = one_policy(json!({"target": "", "stream_roll_mode": "per-frame", "ram_interval": 0}));
    assert_eq!((p.target.as_str(), p.stream_roll_mode, p.ram_interval), ("all", StreamRollMode::PerFrame, DEFAULT_RAM_INTERVAL_MS));
  }

  #[test]
  fn header_names_are_tokens_case_insensitive_and_values_text() {
    let headers = Value::Map(vec![
      ("X-Retry".into(), Value::Number(42.0, Some("042".into()))),
      ("X-Flag".into(), Value::Bool(true, None)),
      ("bad name".into(), Value::Text("a".into())),
      ("X-A".into(), Value::Text("1".into())),
      ("x-a".into(), Value::Text("2".into())),
      ("x".repeat(256), Value::Text("3".into())),
    ]);
    let Value::Map(mut top) = policy(json!({})) else { unreachable!() };
    let Value::List(policies) = &mut top[1].1 else { unreachable!() };
    let Value::Map(fields) = &mut policies[0] else { unreachable!() };
    fields.push(("match_headers".into(), headers));
    let found = findings_of(&Value::Map(top));
    assert_eq!(
      found[..5],
      [
        r#"policies[0].match_headers.X-Retry: must be a string (got 42); header values are compared as text, so quote it: "042""#,
        r#"policies[0].match_headers.X-Flag: must be a string (got boolean true); header values are compared as text, so quote it: "true""#,
        r#"key:policies[0].match_headers["bad name"]: "bad name" is not a valid HTTP header name"#,
        "key:policies[0].match_headers.x-a: header `x-a` is given twice (names are case-insensitive; first as `X-A`)",
        &format!(
          r#"key:policies[0].match_headers.{}: "{}..." is not a valid HTTP header name (it is 256 bytes long; at most 255 are allowed)"#,
          "x".repeat(256),
          "x".repeat(57)
        ),
      ]
    );
    assert_eq!(one_policy(json!({"matchHeaders": {"X-User": "7"}})).match_headers, BTreeMap::from([("x-user".to_string(), "7".to_string())]));
  }
}
