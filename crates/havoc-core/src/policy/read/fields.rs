//! The schema: every field of the top level and of a policy, every accepted spelling of each
//! (snake_case, camelCase, Go's initialisms), and the [`Shape`] a caller needs to convert a document.

/// Top-level fields, snake_case, in the order they are checked.
const TOP_FIELDS: [&str; 6] = ["version", "warmup_duration", "enable_default_ignored", "ignored_commands", "seed", "policies"];
/// Policy fields, snake_case, in the order they are checked.
const POLICY_FIELDS: [&str; 18] = [
  "name",
  "type",
  "target",
  "latency_chance",
  "latency_duration",
  "error_chance",
  "error_code",
  "error_body",
  "match_headers",
  "drop_connection",
  "stream_roll_mode",
  "throttle_threshold",
  "ram_chunk_mb",
  "ram_interval",
  "cpu_cores",
  "cpu_percent",
  "ram_max_mb",
  "duration",
];
/// Spellings besides snake_case and camelCase: Go's initialism style, in case a pastaay file spells it so.
const POLICY_ALIASES: [(&str, &str); 2] = [("ramChunkMB", "ram_chunk_mb"), ("ramMaxMB", "ram_max_mb")];
/// Fields whose value is a duration (a Go duration string, or milliseconds).
const DURATION_FIELDS: [&str; 4] = ["warmup_duration", "latency_duration", "ram_interval", "duration"];

/// A level of the document: the top-level mapping, or one policy.
pub(super) struct Level {
  pub(super) name: &'static str,
  pub(super) fields: &'static [&'static str],
  pub(super) aliases: &'static [(&'static str, &'static str)],
}

/// The top-level mapping.
pub(super) const TOP: Level = Level { name: "top-level", fields: &TOP_FIELDS, aliases: &[] };
/// One policy.
pub(super) const POLICY: Level = Level { name: "policy", fields: &POLICY_FIELDS, aliases: &POLICY_ALIASES };

/// The camelCase spelling of a snake_case field name.
pub(super) fn camel_case(snake: &str) -> String {
  let mut out = String::with_capacity(snake.len());
  let mut upper = false;
  for c in snake.chars() {
    if c == '_' {
      upper = true;
    } else {
      out.push(if upper { c.to_ascii_uppercase() } else { c });
      upper = false;
    }
  }
  out
}
impl Level {
  /// The field a key names, in any accepted spelling.
  pub(super) fn resolve(&self, key: &str) -> Option<&'static str> {
    let own = self.fields.iter().copied().find(|f| *f == key || camel_case(f) == key);
    own.or_else(|| self.aliases.iter().find(|(alias, _)| *alias == key).map(|(_, field)| *field))
  }

  /// Every accepted spelling of a field.
  pub(super) fn spellings(&self, field: &str) -> Vec<String> {
    let mut out = vec![field.to_string()];
    let camel = camel_case(field);
    if camel != field {
      out.push(camel);
    }
    out.extend(self.aliases.iter().filter(|(_, f)| *f == field).map(|(alias, _)| alias.to_string()));
    out
  }

  /// Every spelling of every duration field of this level.
  pub(super) fn durations(&self) -> Vec<String> {
    self.fields.iter().filter(|f| DURATION_FIELDS.contains(f)).flat_map(|f| self.spellings(f)).collect()
  }
}

/// What a caller must know of the document's shape to convert it: which keys hold durations
/// (so that it can read duration strings), at the top level and in each policy, and which
/// top-level keys hold the list of policies. Every spelling is listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shape {
  /// Top-level keys whose value is a duration.
  pub top_durations: Vec<String>,
  /// Top-level keys whose value is the list of policies.
  pub policies: Vec<String>,
  /// Policy keys whose value is a duration.
  pub policy_durations: Vec<String>,
}

/// The shape of a configuration document, see [`Shape`].
pub fn shape() -> Shape {
  Shape { top_durations: TOP.durations(), policies: TOP.spellings("policies"), policy_durations: POLICY.durations() }
}

#[cfg(test)]
mod tests {
  use super::*;
  use crate::policy::read::test_support::{findings_of, one_policy, ordered};
  use crate::policy::read::typed::{map, number};
  use crate::policy::Value;
  use serde_json::json;

  #[test]
  fn a_field_in_two_spellings_is_refused_at_the_second() {
    let fields =
      ordered(vec![("name", json!("p")), ("type", json!("http")), ("ram_chunk_mb", json!(1)), ("ramChunkMb", json!(2)), ("ramChunkMB", json!(3))]);
    assert_eq!(
      findings_of(&map(vec![("version", number(1.0)), ("policies", Value::List(vec![fields]))])),
      [
        "key:policies[0].ramChunkMb: `ram_chunk_mb` and `ramChunkMb` are the same field; give it once",
        "key:policies[0].ramChunkMB: `ram_chunk_mb` and `ramChunkMB` are the same field; give it once",
      ]
    );
    assert_eq!(one_policy(json!({"ramMaxMB": 8})).ram_max_mb, 8.0, "Go's initialism spelling");
  }

  #[test]
  fn the_shape_lists_every_spelling_of_durations_and_policies() {
    let s = shape();
    assert_eq!(s.top_durations, ["warmup_duration", "warmupDuration"]);
    assert_eq!(s.policies, ["policies"]);
    assert_eq!(s.policy_durations, ["latency_duration", "latencyDuration", "ram_interval", "ramInterval", "duration"]);
  }
}
