//! The top level of a document: `version`, `warmup_duration`, `seed`, `enable_default_ignored`,
//! `ignored_commands` and the list of `policies` (each read by [`super::policy`]), with
//! duplicate policy names refused.

use std::collections::{BTreeMap, HashMap};

use super::fields::{POLICY, TOP};
use super::messages::{protocol_spelling, unknown_value_message};
use super::path::{Finding, Part, Path};
use super::reader::{integer_in, lone_surrogate, present, Field, Reader};
use crate::policy::value::{js_number, quote, Value, MAX_SAFE_INTEGER};
use crate::policy::{Config, Policy, Protocol, MAX_POLICIES, MAX_WARMUP_MS};

impl Reader {
  /// The whole document: its top-level fields, then each policy.
  pub(super) fn config(&mut self, doc: &Value) -> Config {
    let Value::Map(pairs) = doc else {
      self.report(Path::default(), format!("config must be a mapping with at least `version: 1` (got {})", doc.describe()));
      return Config::default();
    };
    let fields = self.fields(pairs, &Path::default(), &TOP, &POLICY);
    let field = |name: &str| fields.get(name);

    match present(field("version")) {
      None => self.report(field("version").map_or_else(|| Path::default().key("version"), |f| f.path.clone()), "is required and must be 1".into()),
      Some(f) if !matches!(f.value, Value::Number(x, _) if *x == 1.0) => {
        let one = if matches!(f.value, Value::Text(_) | Value::Utf16(_)) { "the number 1" } else { "1" };
        self.report(f.path.clone(), format!("must be {one} (got {})", f.value.describe()));
      }
      Some(_) => {}
    }
    let warmup_duration = present(field("warmup_duration")).map(|f| self.duration(f, MAX_WARMUP_MS));
    let seed = present(field("seed")).and_then(|f| match integer_in(f.value, 0.0, MAX_SAFE_INTEGER) {
      Some(x) => Some(x as u64),
      None => {
        self.report(f.path.clone(), format!("must be an integer in [0, {}] (got {})", js_number(MAX_SAFE_INTEGER), f.value.describe()));
        None
      }
    });
    let enable_default_ignored = present(field("enable_default_ignored")).map_or(true, |f| self.boolean(f));
    let ignored_commands = present(field("ignored_commands")).map(|f| self.ignored_commands(f)).unwrap_or_default();
    let policies = present(field("policies")).map(|f| self.policies(f)).unwrap_or_default();
    Config { version: 1, warmup_duration, enable_default_ignored, ignored_commands, seed, policies }
  }

  /// `ignored_commands`: a mapping of protocol (each given once) to a list of prefixes.
  pub(super) fn ignored_commands(&mut self, field: &Field) -> BTreeMap<Protocol, Vec<String>> {
    let mut out = BTreeMap::new();
    let Value::Map(pairs) = field.value else {
      self.report(field.path.clone(), format!("must be a mapping of protocol to a list of prefixes (got {})", field.value.describe()));
      return out;
    };
    let mut seen: HashMap<Protocol, &str> = HashMap::new();
    for (key, value) in pairs {
      let path = field.path.key(key);
      let Some(protocol) = protocol_spelling(key) else {
        self.report_key(path, unknown_value_message("protocol", key));
        continue;
      };
      if let Some(first) = seen.get(&protocol) {
        self.report_key(path, format!("`{first}` and `{key}` are the same protocol; give it once"));
        continue;
      }
      seen.insert(protocol, key);
      out.insert(protocol, self.prefixes(&Field { path, value }));
    }
    out
  }

  /// A list of non-empty command prefixes (null is an empty list).
  pub(super) fn prefixes(&mut self, field: &Field) -> Vec<String> {
    let items = match field.value {
      Value::Null => return Vec::new(),
      Value::List(items) => items,
      other => {
        self.report(field.path.clone(), format!("must be a list of command prefixes (got {})", other.describe()));
        return Vec::new();
      }
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
      match item {
        Value::Text(s) | Value::Duration(s, _) if !s.is_empty() => out.push(s.clone()),
        Value::Utf16(units) if !units.is_empty() => {
          let problem = lone_surrogate(item).unwrap_or_default();
          self.report(field.path.index(i), format!("must be valid Unicode text ({problem})"));
        }
        other => self.report(field.path.index(i), format!("must be a non-empty string (got {})", other.describe())),
      }
    }
    out
  }

  /// `policies`: at most [`MAX_POLICIES`] policies, their names unique.
  pub(super) fn policies(&mut self, field: &Field) -> Vec<Policy> {
    let Value::List(items) = field.value else {
      self.report(field.path.clone(), format!("must be a list of policies (got {})", field.value.describe()));
      return Vec::new();
    };
    if items.len() > MAX_POLICIES {
      self.report_key(field.path.clone(), format!("has {} policies; at most {MAX_POLICIES} are allowed", items.len()));
    }
    let mut out = Vec::with_capacity(items.len());
    // Names identify policies across sources and reloads, so a duplicate is always a mistake.
    let mut names: HashMap<String, Path> = HashMap::new();
    for (i, item) in items.iter().enumerate() {
      let path = field.path.index(i);
      let Some((policy, name_path)) = self.policy(item, &path) else { continue };
      if !policy.name.is_empty() {
        if let Some(first) = names.get(&policy.name) {
          let message = format!("duplicate policy name {} (first defined at {first})", quote(&policy.name));
          self.findings.push(Finding { path: name_path, part: Part::Value, message, first: Some(first.clone()) });
        } else {
          names.insert(policy.name.clone(), path);
        }
      }
      out.push(policy);
    }
    out
  }
}

#[cfg(test)]
mod tests {
  use std::collections::BTreeMap;

  use crate::policy::read::read;
  use crate::policy::read::test_support::{findings, findings_of, plain};
  use crate::policy::value::Value;
  use crate::policy::{Config, Protocol, MAX_POLICIES};
  use serde_json::json;

  #[test]
  fn the_document_must_be_a_mapping_with_version_1() {
    assert_eq!(findings(json!([1])), ["config must be a mapping with at least `version: 1` (got a list)"].map(|m| format!(": {m}")));
    assert_eq!(findings(json!({})), ["version: is required and must be 1"]);
    assert_eq!(findings(json!({"version": null})), ["version: is required and must be 1"]);
    assert_eq!(findings(json!({"version": 2})), ["version: must be 1 (got 2)"]);
    assert_eq!(findings(json!({"version": "1"})), [r#"version: must be the number 1 (got string "1")"#]);
    let doc = Value::Map(vec![("version".into(), Value::Number(f64::INFINITY, Some("1e400".into())))]);
    assert_eq!(findings_of(&doc), ["version: must be 1 (got 1e400)"]);
    assert_eq!(read(&plain(json!({"version": 1}))).unwrap(), Config::default());
  }

  #[test]
  fn seed_and_enable_default_ignored() {
    assert_eq!(findings(json!({"version": 1, "seed": -1})), ["seed: must be an integer in [0, 9007199254740991] (got -1)"]);
    assert_eq!(findings(json!({"version": 1, "seed": 1.5})), ["seed: must be an integer in [0, 9007199254740991] (got 1.5)"]);
    assert_eq!(read(&plain(json!({"version": 1, "seed": 9_007_199_254_740_991_u64}))).unwrap().seed, Some(9_007_199_254_740_991));
    assert_eq!(
      findings(json!({"version": 1, "enable_default_ignored": "yes"})),
      [r#"enable_default_ignored: must be true or false (got string "yes")"#]
    );
    assert!(!read(&plain(json!({"version": 1, "enableDefaultIgnored": false}))).unwrap().enable_default_ignored);
    assert!(read(&plain(json!({"version": 1, "enableDefaultIgnored": null}))).unwrap().enable_default_ignored);
  }

  #[test]
  fn ignored_commands_name_protocols_and_list_non_empty_prefixes() {
    let doc =
      json!({"version": 1, "ignored_commands": {"postgres": [], "redsi": [], "sql": ["", 5, "SHOW"], "kafka": "x", "mongo": [], "mongodb": []}});
    assert_eq!(
      findings(doc),
      [
        r#"ignored_commands.kafka: must be a list of command prefixes (got string "x")"#,
        "key:ignored_commands.mongodb: `mongo` and `mongodb` are the same protocol; give it once",
        r#"key:ignored_commands.postgres: unknown protocol "postgres"; use `sql` for every SQL database"#,
        r#"key:ignored_commands.redsi: unknown protocol "redsi"; expected one of http, grpc, sql, redis, rabbitmq, kafka, mongo, resource; did you mean `redis`?"#,
        r#"ignored_commands.sql[0]: must be a non-empty string (got string "")"#,
        "ignored_commands.sql[1]: must be a non-empty string (got 5)",
      ]
    );
    let doc = Value::Map(vec![
      ("version".into(), Value::Number(1.0, None)),
      ("ignored_commands".into(), Value::Map(vec![("redis".into(), Value::List(vec![Value::Utf16(vec![0xdc00])]))])),
    ]);
    assert_eq!(findings_of(&doc), ["ignored_commands.redis[0]: must be valid Unicode text (found lone surrogate U+DC00 at index 0)"]);
    let config = read(&plain(json!({"version": 1, "ignoredCommands": {"mongodb": ["ping"], "http": null}}))).unwrap();
    assert_eq!(config.ignored_commands, BTreeMap::from([(Protocol::Mongo, vec!["ping".to_string()]), (Protocol::Http, vec![])]));
  }

  #[test]
  fn policies_are_a_list_of_at_most_1024_mappings() {
    assert_eq!(findings(json!({"version": 1, "policies": {}})), ["policies: must be a list of policies (got a mapping)"]);
    assert_eq!(findings(json!({"version": 1, "policies": [5]})), ["policies[0]: must be a mapping with at least `name` and `type` (got 5)"]);
    let many: Vec<serde_json::Value> = (0..=MAX_POLICIES).map(|i| json!({"name": format!("p{i}"), "type": "http"})).collect();
    assert_eq!(findings(json!({"version": 1, "policies": many})), ["key:policies: has 1025 policies; at most 1024 are allowed"]);
    assert_eq!(
      findings(json!({"version": 1, "policies": [{}]})),
      [
        "policies[0].type: is required: one of http, grpc, sql, redis, rabbitmq, kafka, mongo, resource",
        "policies[0].name: is required: every policy needs a unique name"
      ]
    );
  }
}
