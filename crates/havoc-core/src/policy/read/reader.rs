//! The reader: it walks a document, resolves the keys of each mapping, and collects findings.
//! The checks every level shares (booleans, durations against a limit) are here; the top level
//! is read in [`super::document`], each policy in [`super::policy`].

use std::collections::HashMap;

use super::fields::Level;
use super::messages::{hours, shown, unknown_key_message, DURATION_EXAMPLE};
use super::path::{Finding, Part, Path, Step};
use crate::policy::value::{CodePoint, Reading, Value};

/// A field as found: its path (the spelling the author chose) and its value.
pub(super) struct Field<'a> {
  pub(super) path: Path,
  pub(super) value: &'a Value,
}

/// Absent, or null (an empty YAML value): the field takes its default, as in pastaay.
pub(super) fn present<'a, 'b>(field: Option<&'b Field<'a>>) -> Option<&'b Field<'a>> {
  field.filter(|f| !matches!(f.value, Value::Null))
}

/// Text (a duration string outside a duration field is text too).
pub(super) fn as_text(value: &Value) -> Option<&str> {
  match value {
    Value::Text(s) | Value::Duration(s, _) => Some(s),
    _ => None,
  }
}

/// A number that is an integer in `[min, max]`.
pub(super) fn integer_in(value: &Value, min: f64, max: f64) -> Option<f64> {
  match value {
    Value::Number(x, _) if x.fract() == 0.0 && (min..=max).contains(x) => Some(*x),
    _ => None,
  }
}

/// Why a text is not valid Unicode, if it is not: its first lone surrogate.
pub(super) fn lone_surrogate(value: &Value) -> Option<String> {
  let points = value.code_points()?;
  points.iter().enumerate().find_map(|(i, p)| match p {
    CodePoint::Lone(unit) => Some(format!("found lone surrogate U+{unit:04X} at index {i}")),
    CodePoint::Char(_) => None,
  })
}

#[derive(Default)]
/// Reads a document, collecting every finding on the way.
pub(super) struct Reader {
  /// What was found wrong, in the order it was checked.
  pub(super) findings: Vec<Finding>,
}
impl Reader {
  /// A finding about the value at `path`.
  pub(super) fn report(&mut self, path: Path, message: String) {
    self.findings.push(Finding { path, part: Part::Value, message, first: None });
  }

  /// A finding about the key at `path`.
  pub(super) fn report_key(&mut self, path: Path, message: String) {
    self.findings.push(Finding { path, part: Part::Key, message, first: None });
  }

  /// Resolves the keys of a mapping: unknown keys and a field given in two spellings are reported.
  pub(super) fn fields<'a>(&mut self, pairs: &'a [(String, Value)], path: &Path, own: &Level, other: &Level) -> HashMap<&'static str, Field<'a>> {
    let mut fields: HashMap<&'static str, Field<'a>> = HashMap::new();
    for (key, value) in pairs {
      let Some(name) = own.resolve(key) else {
        self.report_key(path.key(key), unknown_key_message(key, own, other));
        continue;
      };
      if let Some(previous) = fields.get(name) {
        let first = match previous.path.0.last() {
          Some(Step::Key(k)) => k.clone(),
          _ => name.to_string(),
        };
        self.report_key(path.key(key), format!("`{first}` and `{key}` are the same field; give it once"));
        continue;
      }
      fields.insert(name, Field { path: path.key(key), value });
    }
    fields
  }

  /// `true` or `false`; anything else is a finding (and `false`).
  pub(super) fn boolean(&mut self, field: &Field) -> bool {
    match field.value {
      Value::Bool(b, _) => *b,
      other => {
        self.report(field.path.clone(), format!("must be true or false (got {})", other.describe()));
        false
      }
    }
  }

  /// A duration in `[0, max_ms]`: a number of milliseconds, or a string the caller read.
  pub(super) fn duration(&mut self, field: &Field, max_ms: f64) -> f64 {
    let out_of_range = |value: &Value| format!("must be a duration between 0 and {}h (got {})", hours(max_ms), shown(value));
    let malformed = |value: &Value| {
      let unitless = as_text(value).map(str::trim).filter(|t| {
        let t = t.strip_prefix(['-', '+']).unwrap_or(t);
        !t.is_empty() && t.chars().all(|c| c.is_ascii_digit() || c == '.')
      });
      let hint = unitless.map(|t| format!(r#"; a number in quotes needs a unit, e.g. "{}ms""#, t.trim())).unwrap_or_default();
      format!("must be {DURATION_EXAMPLE} (got {}){hint}", shown(value))
    };
    let problem = match field.value {
      Value::Number(x, _) if x.is_nan() => malformed(field.value),
      Value::Number(x, _) | Value::Duration(_, Reading::Ms(x)) if (0.0..=max_ms).contains(x) => return *x,
      Value::Number(..) | Value::Duration(_, Reading::Ms(_) | Reading::Overflow) => out_of_range(field.value),
      other => malformed(other),
    };
    self.report(field.path.clone(), problem);
    0.0
  }
}

#[cfg(test)]
mod tests {
  use crate::policy::read::read;
  use crate::policy::read::test_support::{findings_of, policy_findings};
  use crate::policy::value::{Reading, Value};
  use serde_json::json;

  #[test]
  fn durations_are_checked_against_their_limit() {
    let warmup = |value: Value| findings_of(&Value::Map(vec![("version".into(), Value::Number(1.0, None)), ("warmup_duration".into(), value)]));
    let duration = |text: &str, reading| Value::Duration(text.into(), reading);
    assert_eq!(warmup(duration("25h", Reading::Ms(90_000_000.0))), [r#"warmup_duration: must be a duration between 0 and 24h (got "25h")"#]);
    assert_eq!(warmup(duration("-1s", Reading::Ms(-1000.0))), [r#"warmup_duration: must be a duration between 0 and 24h (got "-1s")"#]);
    assert_eq!(warmup(duration("9999999999h", Reading::Overflow)), [r#"warmup_duration: must be a duration between 0 and 24h (got "9999999999h")"#]);
    assert_eq!(warmup(Value::Number(86_400_001.0, None)), ["warmup_duration: must be a duration between 0 and 24h (got 86400001)"]);
    assert_eq!(warmup(Value::Number(f64::INFINITY, None)), ["warmup_duration: must be a duration between 0 and 24h (got Infinity)"]);
    assert_eq!(warmup(Value::Number(f64::NAN, None)), [r#"warmup_duration: must be a duration such as "1500ms", "3s" or "1m" (got NaN)"#]);
    assert_eq!(warmup(duration("fast", Reading::Malformed)), [r#"warmup_duration: must be a duration such as "1500ms", "3s" or "1m" (got "fast")"#]);
    assert_eq!(
      warmup(duration(" 1.5 ", Reading::Malformed)),
      [r#"warmup_duration: must be a duration such as "1500ms", "3s" or "1m" (got " 1.5 "); a number in quotes needs a unit, e.g. "1.5ms""#]
    );
    assert_eq!(warmup(Value::Bool(true, None)), [r#"warmup_duration: must be a duration such as "1500ms", "3s" or "1m" (got boolean true)"#]);
    assert_eq!(
      policy_findings(json!({"latency_duration": 3_600_001, "ram_interval": 3_600_001, "duration": 86_400_001})),
      [
        "policies[0].latency_duration: must be a duration between 0 and 1h (got 3600001)",
        "policies[0].ram_interval: must be a duration between 0 and 1h (got 3600001)",
        "policies[0].duration: must be a duration between 0 and 24h (got 86400001)",
      ]
    );
    let config =
      read(&Value::Map(vec![("version".into(), Value::Number(1.0, None)), ("warmupDuration".into(), duration("2s", Reading::Ms(2000.0)))]));
    assert_eq!(config.unwrap().warmup_duration, Some(2000.0));
  }
}
