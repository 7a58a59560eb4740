//! The wording of findings: values quoted as written, durations in hours, protocol names, and
//! the "did you mean" hint for a misspelt key or value.

use super::fields::{camel_case, Level};
use crate::policy::value::{js_number, quote, Value};
use crate::policy::Protocol;

/// Names of SQL databases, which all go by `sql`.
const SQL_DATABASES: [&str; 7] = ["postgres", "postgresql", "pg", "mysql", "mariadb", "sqlite", "mssql"];
/// Examples of durations, for messages.
pub(super) const DURATION_EXAMPLE: &str = r#"a duration such as "1500ms", "3s" or "1m""#;

/// The text of `value` in a message: quoted text (without the `string` prefix), else [`Value::describe`].
pub(super) fn shown(value: &Value) -> String {
  match value {
    Value::Text(s) | Value::Duration(s, _) => quote(s),
    Value::Utf16(_) => value.describe().trim_start_matches("string ").to_string(),
    _ => value.describe(),
  }
}

/// Milliseconds as hours, as JavaScript prints the number.
pub(super) fn hours(ms: f64) -> String {
  js_number(ms / 3_600_000.0)
}

/// The protocol a name spells: its own name, or `mongodb` for `mongo`.
pub(super) fn protocol_spelling(name: &str) -> Option<Protocol> {
  Protocol::parse(name).or((name == "mongodb").then_some(Protocol::Mongo))
}

/// Every accepted spelling of a protocol.
fn protocol_spellings() -> Vec<String> {
  Protocol::ALL.iter().map(|p| p.as_str().to_string()).chain(["mongodb".to_string()]).collect()
}

/// The protocol names, comma-separated, for messages.
pub(super) fn protocol_list() -> String {
  Protocol::ALL.map(Protocol::as_str).join(", ")
}

/// `unknown protocol "postgres"; ...` with a hint: SQL databases all go by `sql`, else the closest name.
pub(super) fn unknown_value_message(what: &str, value: &str) -> String {
  let base = format!("unknown {what} {}", quote(value));
  if SQL_DATABASES.iter().any(|db| db.eq_ignore_ascii_case(value)) {
    return format!("{base}; use `sql` for every SQL database");
  }
  let hint = closest(value, &protocol_spellings()).map(|s| format!("; did you mean `{s}`?")).unwrap_or_default();
  format!("{base}; expected one of {}{hint}", protocol_list())
}

/// `unknown key `polices`; did you mean `policies`?`: a hint in the spelling style used, or
/// the level the key belongs to when it is a field of the other one.
pub(super) fn unknown_key_message(key: &str, own: &Level, other: &Level) -> String {
  let base = if key.is_empty() { r#"unknown key "" (the key is empty)"#.to_string() } else { format!("unknown key `{key}`") };
  if other.resolve(key).is_some() {
    return format!("{base}: it is a {} field, not a {} one", other.name, own.name);
  }
  let camel = key.chars().any(|c| c.is_uppercase()) && !key.contains('_');
  let candidates: Vec<String> = own.fields.iter().map(|f| if camel { camel_case(f) } else { f.to_string() }).collect();
  match closest(key, &candidates) {
    Some(suggestion) => format!("{base}; did you mean `{suggestion}`?"),
    None => base,
  }
}

/// Optimal-string-alignment distance (Damerau-Levenshtein with adjacent transpositions).
fn edit_distance(a: &[char], b: &[char]) -> usize {
  let mut before: Vec<usize> = Vec::new();
  let mut previous: Vec<usize> = (0..=b.len()).collect();
  for i in 1..=a.len() {
    let mut current = vec![i];
    for j in 1..=b.len() {
      let cost = usize::from(a[i - 1] != b[j - 1]);
      let mut best = (previous[j] + 1).min(current[j - 1] + 1).min(previous[j - 1] + cost);
      if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
        best = best.min(before[j - 2] + 1);
      }
      current.push(best);
    }
    before = std::mem::replace(&mut previous, current);
  }
  previous[b.len()]
}

/// The candidate closest to `input`, ignoring case, `_`, `-` and spaces, if close enough to be a typo.
pub(super) fn closest(input: &str, candidates: &[String]) -> Option<String> {
  let normalize = |s: &str| -> Vec<char> { s.to_lowercase().chars().filter(|c| !matches!(c, '-' | '_') && !c.is_whitespace()).collect() };
  let target = normalize(input);
  let limit = if target.len() <= 4 { 1 } else { 2 };
  let mut best = None;
  let mut best_distance = limit + 1;
  for candidate in candidates {
    let distance = edit_distance(&target, &normalize(candidate));
    if distance < best_distance {
      best = Some(candidate.clone());
      best_distance = distance;
    }
  }
  best
}

#[cfg(test)]
mod tests {
  use crate::policy::read::test_support::{findings_of, ordered, policy_findings};
  use serde_json::json;

  #[test]
  fn unknown_keys_get_a_suggestion_in_the_spelling_used() {
    assert_eq!(
      findings_of(&ordered(vec![
        ("version", json!(1)),
        ("polices", json!([])),
        ("enableDefaultIgnore", json!(true)),
        ("warmup", json!(1)),
        ("", json!(1)),
        ("latency_chance", json!(1))
      ])),
      [
        "key:polices: unknown key `polices`; did you mean `policies`?",
        "key:enableDefaultIgnore: unknown key `enableDefaultIgnore`; did you mean `enableDefaultIgnored`?",
        "key:warmup: unknown key `warmup`",
        r#"key:[""]: unknown key "" (the key is empty)"#,
        "key:latency_chance: unknown key `latency_chance`: it is a policy field, not a top-level one",
      ]
    );
    assert_eq!(
      policy_findings(json!({"errCode": 1, "Latency-Chance": 1, "seed": 1})),
      [
        "key:policies[0].Latency-Chance: unknown key `Latency-Chance`; did you mean `latencyChance`?",
        "key:policies[0].errCode: unknown key `errCode`; did you mean `errorCode`?",
        "key:policies[0].seed: unknown key `seed`: it is a top-level field, not a policy one",
      ]
    );
  }
}
