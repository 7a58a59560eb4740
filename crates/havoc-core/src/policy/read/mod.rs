//! The rule book: reads a raw document ([`Value`]) into a [`Config`], or finds every way it is
//! wrong. Every field, spelling, limit, range and enumeration of a configuration is here; the
//! TypeScript layer only parses text, converts what JSON cannot carry, and places findings.
//!
//! Split by concept, each lower module unaware of the ones that use it:
//! - `path`: where a [`Finding`] is ([`Path`], [`Step`], [`Part`]);
//! - `fields`: the schema, every field and its spellings, and the [`Shape`] of a document;
//! - `messages`: the wording of findings (quoting, "did you mean" hints);
//! - `reader`: the walk over a document and the checks every level shares;
//! - `document` and `policy`: the top level, and one policy, field by field;
//! - `typed`: a [`Config`] as a raw document, so that [`Config::check`] uses these same rules.

mod document;
mod fields;
mod messages;
mod path;
mod policy;
mod reader;
mod typed;

pub use fields::{shape, Shape};
pub use path::{Finding, Part, Path, Step};

use self::reader::Reader;
use super::value::Value;
use super::Config;

/// Reads a raw document into a configuration, checking every rule; on failure, every finding
/// in the order they were checked (top-level fields, then each policy in turn).
pub fn read(doc: &Value) -> Result<Config, Vec<Finding>> {
  let mut reader = Reader::default();
  let config = reader.config(doc);
  if reader.findings.is_empty() {
    Ok(config)
  } else {
    Err(reader.findings)
  }
}

/// Documents and their findings, for the tests of this module's children.
#[cfg(test)]
mod test_support {
  use super::path::Part;
  use super::typed::map;
  use super::{read, Finding};
  use crate::policy::value::Value;
  use crate::policy::Policy;

  /// `path: message` of every finding on a plain JSON document (`key:` marks findings about a key).
  pub(super) fn findings(doc: serde_json::Value) -> Vec<String> {
    findings_of(&plain(doc))
  }

  /// `path: message` of every finding on `doc`.
  pub(super) fn findings_of(doc: &Value) -> Vec<String> {
    let show = |f: Finding| format!("{}{}: {}", if f.part == Part::Key { "key:" } else { "" }, f.path, f.message);
    read(doc).err().unwrap_or_default().into_iter().map(show).collect()
  }

  /// A plain JSON document; its mappings' keys in sorted order, as `json!` keeps them.
  pub(super) fn plain(doc: serde_json::Value) -> Value {
    Value::from_plain_json(doc)
  }

  /// A mapping with its keys in the order given.
  pub(super) fn ordered(pairs: Vec<(&str, serde_json::Value)>) -> Value {
    map(pairs.into_iter().map(|(k, v)| (k, Value::from_plain_json(v))).collect())
  }

  /// One policy (name `p`, type `http` unless given) with these fields.
  pub(super) fn policy(fields: serde_json::Value) -> Value {
    let mut pairs = vec![("name".to_string(), Value::Text("p".into())), ("type".to_string(), Value::Text("http".into()))];
    let Value::Map(extra) = Value::from_plain_json(fields) else { panic!("fields are a mapping") };
    for (key, value) in extra {
      pairs.retain(|(k, _)| *k != key);
      pairs.push((key, value));
    }
    Value::Map(vec![("version".into(), Value::Number(1.0, None)), ("policies".into(), Value::List(vec![Value::Map(pairs)]))])
  }

  /// The findings on a document of one policy with these fields.
  pub(super) fn policy_findings(fields: serde_json::Value) -> Vec<String> {
    findings_of(&policy(fields))
  }

  /// The policy read from a document of one policy with these fields.
  pub(super) fn one_policy(fields: serde_json::Value) -> Policy {
    read(&policy(fields)).expect("a sound policy").policies.remove(0)
  }
}
