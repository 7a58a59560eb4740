//! Where a finding is: a path into a document, with the keys as the author spelled them, and
//! which end of a `key: value` pair the finding is about.

use std::fmt;

use crate::policy::Issue;

/// One step of a path into a document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
  /// A mapping's key, spelled as the author wrote it.
  Key(String),
  /// A list's index.
  Index(usize),
}

/// A path into a document; displays as `policies[2].latency_duration` or `match_headers["bad name"]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Path(pub Vec<Step>);

impl Path {
  /// This path and then `key`.
  pub(super) fn key(&self, key: &str) -> Path {
    let mut steps = self.0.clone();
    steps.push(Step::Key(key.to_string()));
    Path(steps)
  }

  /// This path and then `index`.
  pub(super) fn index(&self, index: usize) -> Path {
    let mut steps = self.0.clone();
    steps.push(Step::Index(index));
    Path(steps)
  }
}

/// A key written bare in a path: an identifier, dashes allowed after the first character.
fn is_identifier(key: &str) -> bool {
  let mut chars = key.chars();
  chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$') && chars.all(|c| c.is_ascii_alphanumeric() || "_$-".contains(c))
}

impl fmt::Display for Path {
  fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    for (i, step) in self.0.iter().enumerate() {
      match step {
        Step::Index(n) => write!(f, "[{n}]")?,
        Step::Key(k) if is_identifier(k) => write!(f, "{}{k}", if i == 0 { "" } else { "." })?,
        Step::Key(k) => write!(f, "[{}]", serde_json::to_string(k).expect("a string always serializes"))?,
      }
    }
    Ok(())
  }
}

/// Which end of a `key: value` pair a finding is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
  /// The key: unknown, repeated, or a field given in two spellings.
  Key,
  /// The value (or, for a missing field, the mapping that lacks it).
  Value,
}

/// One problem found in a raw document.
#[derive(Clone, Debug, PartialEq)]
pub struct Finding {
  /// Where, with the keys as the author spelled them.
  pub path: Path,
  /// Which end of the pair at `path`.
  pub part: Part,
  /// What is wrong, e.g. `must be a number in [0, 1] (got 2)`.
  pub message: String,
  /// For a repeat (a duplicate policy name), where the first one is. The message then ends
  /// with `(first defined at <first>)`, so that a caller that knows the line of `first` can
  /// add it before the closing parenthesis.
  pub first: Option<Path>,
}

impl Finding {
  /// The finding as an [`Issue`] (path formatted, no position).
  pub fn into_issue(self) -> Issue {
    Issue { path: self.path.to_string(), message: self.message }
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn paths_display_keys_bare_or_quoted() {
    let path = Path(vec![Step::Key("policies".into()), Step::Index(2), Step::Key("match_headers".into()), Step::Key("bad name".into())]);
    assert_eq!(path.to_string(), r#"policies[2].match_headers["bad name"]"#);
    assert_eq!(Path(vec![Step::Key("1".into())]).to_string(), r#"["1"]"#);
    assert_eq!(Path(vec![Step::Key("X-A".into())]).to_string(), "X-A");
  }
}
