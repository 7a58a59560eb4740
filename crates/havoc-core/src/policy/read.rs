//! The rule book: reads a raw document ([`Value`]) into a [`Config`], or finds every way it is
//! wrong. Every field, spelling, limit, range and enumeration of a configuration is here; the
//! TypeScript layer only parses text, converts what JSON cannot carry, and places findings.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use super::value::{js_number, quote, CodePoint, Reading, Value, MAX_SAFE_INTEGER};
use super::*;

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
  fn key(&self, key: &str) -> Path {
    let mut steps = self.0.clone();
    steps.push(Step::Key(key.to_string()));
    Path(steps)
  }

  fn index(&self, index: usize) -> Path {
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

// --- the schema ---------------------------------------------------------------------------------

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
/// Names of SQL databases, which all go by `sql`.
const SQL_DATABASES: [&str; 7] = ["postgres", "postgresql", "pg", "mysql", "mariadb", "sqlite", "mssql"];
/// Examples of durations, for messages.
const DURATION_EXAMPLE: &str = r#"a duration such as "1500ms", "3s" or "1m""#;

/// A level of the document: the top-level mapping, or one policy.
struct Level {
  name: &'static str,
  fields: &'static [&'static str],
  aliases: &'static [(&'static str, &'static str)],
}

const TOP: Level = Level { name: "top-level", fields: &TOP_FIELDS, aliases: &[] };
const POLICY: Level = Level { name: "policy", fields: &POLICY_FIELDS, aliases: &POLICY_ALIASES };

fn camel_case(snake: &str) -> String {
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
  fn resolve(&self, key: &str) -> Option<&'static str> {
    let own = self.fields.iter().copied().find(|f| *f == key || camel_case(f) == key);
    own.or_else(|| self.aliases.iter().find(|(alias, _)| *alias == key).map(|(_, field)| *field))
  }

  /// Every accepted spelling of a field.
  fn spellings(&self, field: &str) -> Vec<String> {
    let mut out = vec![field.to_string()];
    let camel = camel_case(field);
    if camel != field {
      out.push(camel);
    }
    out.extend(self.aliases.iter().filter(|(_, f)| *f == field).map(|(alias, _)| alias.to_string()));
    out
  }

  fn durations(&self) -> Vec<String> {
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

// --- reading --------------------------------------------------------------------------------------

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

/// A field as found: its path (the spelling the author chose) and its value.
struct Field<'a> {
  path: Path,
  value: &'a Value,
}

/// Absent, or null (an empty YAML value): the field takes its default, as in pastaay.
fn present<'a, 'b>(field: Option<&'b Field<'a>>) -> Option<&'b Field<'a>> {
  field.filter(|f| !matches!(f.value, Value::Null))
}

/// Text (a duration string outside a duration field is text too).
fn as_text(value: &Value) -> Option<&str> {
  match value {
    Value::Text(s) | Value::Duration(s, _) => Some(s),
    _ => None,
  }
}

/// A number that is an integer in `[min, max]`.
fn integer_in(value: &Value, min: f64, max: f64) -> Option<f64> {
  match value {
    Value::Number(x, _) if x.fract() == 0.0 && (min..=max).contains(x) => Some(*x),
    _ => None,
  }
}

/// Why a text is not valid Unicode, if it is not: its first lone surrogate.
fn lone_surrogate(value: &Value) -> Option<String> {
  let points = value.code_points()?;
  points.iter().enumerate().find_map(|(i, p)| match p {
    CodePoint::Lone(unit) => Some(format!("found lone surrogate U+{unit:04X} at index {i}")),
    CodePoint::Char(_) => None,
  })
}

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

/// The text of `value` in a message: quoted text (without the `string` prefix), else [`Value::describe`].
fn shown(value: &Value) -> String {
  match value {
    Value::Text(s) | Value::Duration(s, _) => quote(s),
    Value::Utf16(_) => value.describe().trim_start_matches("string ").to_string(),
    _ => value.describe(),
  }
}

fn hours(ms: f64) -> String {
  js_number(ms / 3_600_000.0)
}

fn protocol_spelling(name: &str) -> Option<Protocol> {
  Protocol::parse(name).or((name == "mongodb").then_some(Protocol::Mongo))
}

fn protocol_spellings() -> Vec<String> {
  Protocol::ALL.iter().map(|p| p.as_str().to_string()).chain(["mongodb".to_string()]).collect()
}

fn protocol_list() -> String {
  Protocol::ALL.map(Protocol::as_str).join(", ")
}

/// `unknown protocol "postgres"; ...` with a hint: SQL databases all go by `sql`, else the closest name.
fn unknown_value_message(what: &str, value: &str) -> String {
  let base = format!("unknown {what} {}", quote(value));
  if SQL_DATABASES.iter().any(|db| db.eq_ignore_ascii_case(value)) {
    return format!("{base}; use `sql` for every SQL database");
  }
  let hint = closest(value, &protocol_spellings()).map(|s| format!("; did you mean `{s}`?")).unwrap_or_default();
  format!("{base}; expected one of {}{hint}", protocol_list())
}

fn unknown_key_message(key: &str, own: &Level, other: &Level) -> String {
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
fn closest(input: &str, candidates: &[String]) -> Option<String> {
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

#[derive(Default)]
struct Reader {
  findings: Vec<Finding>,
}

impl Reader {
  fn report(&mut self, path: Path, message: String) {
    self.findings.push(Finding { path, part: Part::Value, message, first: None });
  }

  fn report_key(&mut self, path: Path, message: String) {
    self.findings.push(Finding { path, part: Part::Key, message, first: None });
  }

  /// Resolves the keys of a mapping: unknown keys and a field given in two spellings are reported.
  fn fields<'a>(&mut self, pairs: &'a [(String, Value)], path: &Path, own: &Level, other: &Level) -> HashMap<&'static str, Field<'a>> {
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

  fn config(&mut self, doc: &Value) -> Config {
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

  fn boolean(&mut self, field: &Field) -> bool {
    match field.value {
      Value::Bool(b, _) => *b,
      other => {
        self.report(field.path.clone(), format!("must be true or false (got {})", other.describe()));
        false
      }
    }
  }

  /// A duration in `[0, max_ms]`: a number of milliseconds, or a string the caller read.
  fn duration(&mut self, field: &Field, max_ms: f64) -> f64 {
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

  fn ignored_commands(&mut self, field: &Field) -> BTreeMap<Protocol, Vec<String>> {
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

  fn prefixes(&mut self, field: &Field) -> Vec<String> {
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

  fn policies(&mut self, field: &Field) -> Vec<Policy> {
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

  /// One policy, and the path of its name.
  fn policy(&mut self, input: &Value, path: &Path) -> Option<(Policy, Path)> {
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

// --- the typed form, read by the same rules -------------------------------------------------------

fn number(x: f64) -> Value {
  Value::Number(x, None)
}

fn text(s: &str) -> Value {
  Value::Text(s.to_string())
}

fn map(pairs: Vec<(&str, Value)>) -> Value {
  Value::Map(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

impl Policy {
  /// This policy as a raw document (camelCase keys), for [`read`] to check.
  fn to_value(&self) -> Value {
    // Destructured, so that a new field cannot be forgotten here.
    let Policy {
      name,
      protocol,
      target,
      latency_chance,
      latency_duration,
      error_chance,
      error_code,
      error_body,
      match_headers,
      drop_connection,
      stream_roll_mode,
      throttle_threshold,
      ram_chunk_mb,
      ram_interval,
      cpu_cores,
      cpu_percent,
      ram_max_mb,
      duration,
    } = self;
    map(vec![
      ("name", text(name)),
      ("type", protocol.map_or(Value::Null, |p| text(p.as_str()))),
      ("target", text(target)),
      ("latencyChance", number(*latency_chance)),
      ("latencyDuration", number(*latency_duration)),
      ("errorChance", number(*error_chance)),
      ("errorCode", number(f64::from(*error_code))),
      ("errorBody", text(error_body)),
      ("matchHeaders", Value::Map(match_headers.iter().map(|(k, v)| (k.clone(), text(v))).collect())),
      ("dropConnection", Value::Bool(*drop_connection, None)),
      ("streamRollMode", text(stream_roll_mode.as_str())),
      ("throttleThreshold", number(*throttle_threshold)),
      ("ramChunkMb", number(*ram_chunk_mb)),
      ("ramInterval", number(*ram_interval)),
      ("cpuCores", number(f64::from(*cpu_cores))),
      ("cpuPercent", number(f64::from(*cpu_percent))),
      ("ramMaxMb", number(*ram_max_mb)),
      ("duration", number(*duration)),
    ])
  }
}

impl Config {
  /// This configuration as a raw document (camelCase keys), for [`read`] to check.
  pub(crate) fn to_value(&self) -> Value {
    let Config { version, warmup_duration, enable_default_ignored, ignored_commands, seed, policies } = self;
    let mut pairs = vec![("version", number(f64::from(*version)))];
    if let Some(ms) = warmup_duration {
      pairs.push(("warmupDuration", number(*ms)));
    }
    pairs.push(("enableDefaultIgnored", Value::Bool(*enable_default_ignored, None)));
    let ignored = ignored_commands.iter().map(|(p, prefixes)| (p.as_str().to_string(), Value::List(prefixes.iter().map(|s| text(s)).collect())));
    pairs.push(("ignoredCommands", Value::Map(ignored.collect())));
    if let Some(seed) = seed {
      pairs.push(("seed", number(*seed as f64)));
    }
    pairs.push(("policies", Value::List(policies.iter().map(Policy::to_value).collect())));
    map(pairs)
  }
}

#[cfg(test)]
mod tests {
  use super::*;
  use serde_json::json;

  /// `path: message` of every finding on a plain JSON document (`key:` marks findings about a key).
  fn findings(doc: serde_json::Value) -> Vec<String> {
    findings_of(&plain(doc))
  }

  fn findings_of(doc: &Value) -> Vec<String> {
    let show = |f: Finding| format!("{}{}: {}", if f.part == Part::Key { "key:" } else { "" }, f.path, f.message);
    read(doc).err().unwrap_or_default().into_iter().map(show).collect()
  }

  /// A plain JSON document; its mappings' keys in sorted order, as `json!` keeps them.
  fn plain(doc: serde_json::Value) -> Value {
    Value::from_plain_json(doc)
  }

  /// A mapping with its keys in the order given.
  fn ordered(pairs: Vec<(&str, serde_json::Value)>) -> Value {
    map(pairs.into_iter().map(|(k, v)| (k, Value::from_plain_json(v))).collect())
  }

  /// One policy (name `p`, type `http` unless given) with these fields.
  fn policy(fields: serde_json::Value) -> Value {
    let mut pairs = vec![("name".to_string(), Value::Text("p".into())), ("type".to_string(), Value::Text("http".into()))];
    let Value::Map(extra) = Value::from_plain_json(fields) else { panic!("fields are a mapping") };
    for (key, value) in extra {
      pairs.retain(|(k, _)| *k != key);
      pairs.push((key, value));
    }
    Value::Map(vec![("version".into(), Value::Number(1.0, None)), ("policies".into(), Value::List(vec![Value::Map(pairs)]))])
  }

  fn policy_findings(fields: serde_json::Value) -> Vec<String> {
    findings_of(&policy(fields))
  }

  fn one_policy(fields: serde_json::Value) -> Policy {
    read(&policy(fields)).expect("a sound policy").policies.remove(0)
  }

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

  #[test]
  fn the_shape_lists_every_spelling_of_durations_and_policies() {
    let s = shape();
    assert_eq!(s.top_durations, ["warmup_duration", "warmupDuration"]);
    assert_eq!(s.policies, ["policies"]);
    assert_eq!(s.policy_durations, ["latency_duration", "latencyDuration", "ram_interval", "ramInterval", "duration"]);
  }

  #[test]
  fn paths_display_keys_bare_or_quoted() {
    let path = Path(vec![Step::Key("policies".into()), Step::Index(2), Step::Key("match_headers".into()), Step::Key("bad name".into())]);
    assert_eq!(path.to_string(), r#"policies[2].match_headers["bad name"]"#);
    assert_eq!(Path(vec![Step::Key("1".into())]).to_string(), r#"["1"]"#);
    assert_eq!(Path(vec![Step::Key("X-A".into())]).to_string(), "X-A");
  }

  #[test]
  fn the_typed_form_is_checked_by_the_same_rules() {
    let mut config = read(&policy(json!({"latency_chance": 0.5}))).unwrap();
    assert_eq!(config.check(), Vec::<Issue>::new());
    config.policies[0].latency_chance = f64::NAN;
    config.policies[0].match_headers.insert("X-A".into(), "b".into());
    let issues: Vec<String> = config.check().into_iter().map(|i| i.to_string()).collect();
    assert_eq!(
      issues,
      ["policies[0].latencyChance: must be a number in [0, 1] (got NaN)", r#"policies[0].matchHeaders: header name "X-A" must be lowercase"#]
    );
    // What reads back is what was written.
    let sound = read(&policy(json!({"latency_duration": 1500, "cpu_percent": 50, "match_headers": {"x-a": "b"}}))).unwrap();
    assert_eq!(Config::from_json(&sound.to_json()).unwrap(), sound);
  }
}
