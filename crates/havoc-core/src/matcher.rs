//! Target matching, built once per policy set and read without allocating.
//!
//! Paths (http, grpc) are matched case-insensitively in a single pass: the input is hashed
//! byte by byte, and at every `/` the hash so far is looked up among the `prefix/*` and
//! `prefix*` targets, at the end among the exact targets (pastaay's rule: a prefix matches
//! on a segment boundary; `/api/*` does not match `/api`, `/api*` does, neither matches
//! `/apix`). Names (redis commands, queues, topics) use the same exact table plus a short
//! list of plain prefixes. A MongoDB command arrives as `command db.collection` and a target
//! names either part (see [`mongo_part`]). SQL targets are regexes over the normalized
//! statement, screened first by one `RegexSet`.

use std::collections::HashMap;

use regex::{Regex, RegexBuilder, RegexSet, RegexSetBuilder};

use crate::hash::{Fnv1a64, PrehashedBuild};
use crate::policy::{Policy, Protocol, MAX_POLICIES};

/// A set of policy indexes, in configuration order, with no allocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Matches([u64; MAX_POLICIES / 64]);

impl Matches {
  pub const fn new() -> Self {
    Matches([0; MAX_POLICIES / 64])
  }

  #[inline]
  pub fn insert(&mut self, index: usize) {
    self.0[index / 64] |= 1 << (index % 64);
  }

  pub fn is_empty(&self) -> bool {
    self.0.iter().all(|&w| w == 0)
  }

  /// Indexes in ascending (configuration) order.
  pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
    self.0.iter().enumerate().flat_map(|(w, &word)| {
      let mut bits = word;
      std::iter::from_fn(move || {
        if bits == 0 {
          return None;
        }
        let bit = bits.trailing_zeros() as usize;
        bits &= bits - 1;
        Some(w * 64 + bit)
      })
    })
  }
}

impl Default for Matches {
  fn default() -> Self {
    Self::new()
  }
}

/// How a protocol's targets are read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
  /// `/a/b`; `/a/*` (what is under `/a/`) and `/a*` (`/a` and what is under it), on a segment
  /// boundary; a query string is not part of the path.
  Path { strip_query: bool },
  /// A command, queue or topic name; `prefix*` is a plain prefix.
  Name,
  /// A MongoDB command, `command db.collection`: a target with a `.` names the namespace,
  /// any other target the command; `prefix*` is a plain prefix of that part.
  Mongo,
  /// A regex over the normalized statement.
  Sql,
}

impl Shape {
  fn of(protocol: Protocol) -> Shape {
    match protocol {
      Protocol::Http => Shape::Path { strip_query: true },
      Protocol::Grpc => Shape::Path { strip_query: false },
      Protocol::Sql => Shape::Sql,
      Protocol::Mongo => Shape::Mongo,
      _ => Shape::Name,
    }
  }
}

/// An error in a target, such as a regex that does not compile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetError {
  pub policy: usize,
  pub message: String,
}

/// The compiled targets of one protocol.
#[derive(Debug)]
pub struct TargetIndex {
  shape: Shape,
  all: Vec<u16>,
  /// FNV of the lowercase key → (policy, key); the key confirms a hash hit.
  exact: HashMap<u64, Vec<(u16, Box<str>)>, PrehashedBuild>,
  prefixes: HashMap<u64, Vec<(u16, Box<str>)>, PrehashedBuild>,
  name_prefixes: Vec<(Box<str>, u16)>,
  sql_screen: Option<RegexSet>,
  sql: Vec<(Regex, u16)>,
  len: usize,
}

impl TargetIndex {
  /// Compiles the targets of `policies` (given with their indexes in the whole set).
  pub fn build<'a>(protocol: Protocol, policies: impl IntoIterator<Item = (usize, &'a Policy)>) -> Result<TargetIndex, Vec<TargetError>> {
    let shape = Shape::of(protocol);
    let mut index = TargetIndex {
      shape,
      all: Vec::new(),
      exact: HashMap::default(),
      prefixes: HashMap::default(),
      name_prefixes: Vec::new(),
      sql_screen: None,
      sql: Vec::new(),
      len: 0,
    };
    let mut errors = Vec::new();
    for (i, policy) in policies {
      index.len += 1;
      let id = i as u16;
      if policy.targets_all() {
        index.all.push(id);
        continue;
      }
      let target = policy.target.trim();
      match shape {
        Shape::Sql => match sql_regex(target) {
          Ok(re) => index.sql.push((re, id)),
          Err(message) => errors.push(TargetError { policy: i, message }),
        },
        Shape::Path { .. } => match target.strip_suffix('*') {
          Some(prefix) => {
            // pastaay's rule, a prefix on a segment boundary: `/api/*` matches `/api/` and
            // `/api/x` but not `/api`; `/api*` matches `/api` and `/api/x` but not `/apix`.
            // Either way the key is looked up where the path has a `/` after it; without
            // the slash, the key alone also matches.
            let (key, or_equal) = match prefix.strip_suffix('/') {
              Some(key) => (key, false),
              None => (prefix, true),
            };
            let key = key.to_ascii_lowercase();
            if key.is_empty() {
              index.all.push(id);
            } else {
              if or_equal {
                index.insert_exact(key.clone(), id);
              }
              index.insert_prefix(key, id);
            }
          }
          None => index.insert_exact(target.to_ascii_lowercase(), id),
        },
        Shape::Name | Shape::Mongo => match target.strip_suffix('*') {
          Some(prefix) => index.name_prefixes.push((prefix.to_ascii_lowercase().into(), id)),
          None => index.insert_exact(target.to_ascii_lowercase(), id),
        },
      }
    }
    if !index.sql.is_empty() {
      let screen = RegexSetBuilder::new(index.sql.iter().map(|(re, _)| re.as_str()))
        .size_limit(1 << 24)
        .build()
        .map_err(|e| vec![TargetError { policy: usize::from(index.sql[0].1), message: e.to_string() }])?;
      index.sql_screen = Some(screen);
    }
    if errors.is_empty() {
      Ok(index)
    } else {
      Err(errors)
    }
  }

  fn insert_exact(&mut self, key: String, id: u16) {
    self.exact.entry(fnv1a64_lower(key.as_bytes())).or_default().push((id, key.into()));
  }

  fn insert_prefix(&mut self, key: String, id: u16) {
    self.prefixes.entry(fnv1a64_lower(key.as_bytes())).or_default().push((id, key.into()));
  }

  /// How many policies of this protocol there are.
  pub fn len(&self) -> usize {
    self.len
  }

  pub fn is_empty(&self) -> bool {
    self.len == 0
  }

  /// Adds every policy whose target matches `input` to `out`. For SQL, `input` must be
  /// the normalized statement.
  pub fn find(&self, input: &str, out: &mut Matches) {
    for &id in &self.all {
      out.insert(usize::from(id));
    }
    match self.shape {
      Shape::Path { strip_query } => {
        let path = path_of(input, strip_query);
        self.find_path(path, out);
        // An outgoing request's absolute URL: targets may name the whole URL or only its path.
        if let Some(path) = strip_query.then(|| path_of_url(path)).flatten() {
          self.find_path(path, out);
        }
      }
      Shape::Name => self.find_name(input, out),
      Shape::Mongo => self.find_mongo(input, out),
      Shape::Sql => self.find_sql(input, out),
    }
  }

  fn find_path(&self, path: &str, out: &mut Matches) {
    if self.exact.is_empty() && self.prefixes.is_empty() {
      return;
    }
    let bytes = path.as_bytes();
    let mut hasher = Fnv1a64::new();
    for (pos, &b) in bytes.iter().enumerate() {
      if b == b'/' && pos > 0 && !self.prefixes.is_empty() {
        collect(&self.prefixes, hasher.finish(), &bytes[..pos], out);
      }
      hasher.write_byte(b.to_ascii_lowercase());
    }
    // A prefix matches only where a `/` follows it (`/api*` matching `/api` itself is an
    // exact entry).
    collect(&self.exact, hasher.finish(), bytes, out);
  }

  fn find_name(&self, name: &str, out: &mut Matches) {
    if !self.exact.is_empty() {
      collect(&self.exact, fnv1a64_lower(name.as_bytes()), name.as_bytes(), out);
    }
    for (prefix, id) in &self.name_prefixes {
      if starts_with_ignore_case(name, prefix) {
        out.insert(usize::from(*id));
      }
    }
  }

  fn find_mongo(&self, input: &str, out: &mut Matches) {
    let (command, namespace) = split_mongo(input);
    if !self.exact.is_empty() {
      // One table serves both parts: a key with a `.` names a namespace, any other a command
      // (see [`mongo_part`]), whatever the input's parts look like.
      collect_where(&self.exact, fnv1a64_lower(command.as_bytes()), command.as_bytes(), out, |key| !key.contains('.'));
      if !namespace.is_empty() {
        collect_where(&self.exact, fnv1a64_lower(namespace.as_bytes()), namespace.as_bytes(), out, |key| key.contains('.'));
      }
    }
    for (prefix, id) in &self.name_prefixes {
      if starts_with_ignore_case(mongo_part(input, prefix), prefix) {
        out.insert(usize::from(*id));
      }
    }
  }

  fn find_sql(&self, statement: &str, out: &mut Matches) {
    let Some(screen) = &self.sql_screen else { return };
    if !screen.is_match(statement) {
      return;
    }
    for (re, id) in &self.sql {
      if re.is_match(statement) {
        out.insert(usize::from(*id));
      }
    }
  }
}

fn collect(table: &HashMap<u64, Vec<(u16, Box<str>)>, PrehashedBuild>, hash: u64, input: &[u8], out: &mut Matches) {
  collect_where(table, hash, input, out, |_| true);
}

/// [`collect`], keeping only the keys `keep` accepts.
fn collect_where(
  table: &HashMap<u64, Vec<(u16, Box<str>)>, PrehashedBuild>,
  hash: u64,
  input: &[u8],
  out: &mut Matches,
  keep: impl Fn(&str) -> bool,
) {
  if let Some(entries) = table.get(&hash) {
    for (id, key) in entries {
      // A hash hit is confirmed against the key: FNV collisions must not match.
      if key.as_bytes().eq_ignore_ascii_case(input) && keep(key) {
        out.insert(usize::from(*id));
      }
    }
  }
}

/// The path part of a request target: up to `?` or `#` for HTTP.
fn path_of(input: &str, strip_query: bool) -> &str {
  if strip_query {
    match input.find(['?', '#']) {
      Some(end) => &input[..end],
      None => input,
    }
  } else {
    input
  }
}

/// The path of an absolute `http(s)://host/path` URL (`/` when it has none).
fn path_of_url(url: &str) -> Option<&str> {
  let rest = ["https://", "http://"]
    .iter()
    .find_map(|scheme| url.get(..scheme.len()).filter(|s| s.eq_ignore_ascii_case(scheme)).map(|_| &url[scheme.len()..]))?;
  Some(rest.find('/').map_or("/", |slash| &rest[slash..]))
}

fn fnv1a64_lower(bytes: &[u8]) -> u64 {
  let mut hasher = Fnv1a64::new();
  for &b in bytes {
    hasher.write_byte(b.to_ascii_lowercase());
  }
  hasher.finish()
}

/// A MongoDB command as the interceptor passes it, `command db.collection`, split in two (an
/// empty namespace when there is none).
fn split_mongo(input: &str) -> (&str, &str) {
  input.split_once(' ').unwrap_or((input, ""))
}

/// The part of a MongoDB command (`command db.collection`) that `key`, a target or an ignored
/// prefix, is compared with: the namespace when `key` has a `.` (so `orders.*` names a
/// database's collections), otherwise the command name (so `drop` does not protect a
/// database called `dropbox`).
pub fn mongo_part<'a>(input: &'a str, key: &str) -> &'a str {
  let (command, namespace) = split_mongo(input);
  if key.contains('.') {
    namespace
  } else {
    command
  }
}

/// ASCII case-insensitive `starts_with`.
pub fn starts_with_ignore_case(haystack: &str, prefix: &str) -> bool {
  haystack.len() >= prefix.len() && haystack.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

/// A SQL target as a case-insensitive regex; a bare identifier matches as a whole word.
fn sql_regex(target: &str) -> Result<Regex, String> {
  let is_word = target.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
  // The flag is inline so that the screening `RegexSet`, built from `as_str()`, keeps it.
  let pattern = if is_word { format!(r"(?i)\b{target}\b") } else { format!("(?i){target}") };
  RegexBuilder::new(&pattern)
    .size_limit(1 << 20)
    .build()
    .map_err(|e| format!("invalid regex: {}", e.to_string().lines().last().unwrap_or("syntax error").trim()))
}

#[cfg(test)]
mod tests {
  use super::*;

  fn policy(protocol: Protocol, target: &str) -> Policy {
    Policy { name: target.into(), protocol: Some(protocol), target: target.into(), ..Policy::default() }
  }

  fn matches(protocol: Protocol, targets: &[&str], input: &str) -> Vec<usize> {
    let policies: Vec<Policy> = targets.iter().map(|t| policy(protocol, t)).collect();
    let index = TargetIndex::build(protocol, policies.iter().enumerate()).unwrap();
    let mut out = Matches::new();
    index.find(input, &mut out);
    out.iter().collect()
  }

  #[test]
  fn mongo_targets_name_the_command_or_the_namespace() {
    let targets = ["find", "havoc.users", "havoc.*", "find*", "DELETE", "drop*"];
    assert_eq!(matches(Protocol::Mongo, &targets, "find havoc.users"), [0, 1, 2, 3]);
    assert_eq!(matches(Protocol::Mongo, &targets, "findAndModify havoc.orders"), [2, 3]);
    assert_eq!(matches(Protocol::Mongo, &targets, "delete other.users"), [4]);
    assert_eq!(matches(Protocol::Mongo, &targets, "listCollections havoc."), [2]);
    assert_eq!(matches(Protocol::Mongo, &targets, "ping"), Vec::<usize>::new());
    // A key without a `.` reads the command, even when the namespace looks like it.
    assert_eq!(matches(Protocol::Mongo, &["find"], "delete find"), Vec::<usize>::new());
    assert_eq!(matches(Protocol::Mongo, &["a.b"], "a.b c"), Vec::<usize>::new());
    // A target without a `.` never reads the namespace, one with a `.` never the command.
    assert!(matches(Protocol::Mongo, &targets, "insert dropbox.files").is_empty());
    assert!(matches(Protocol::Mongo, &["find.*"], "find havoc.users").is_empty());
    assert_eq!(matches(Protocol::Mongo, &["all"], "insert a.b"), [0]);
  }

  #[test]
  fn http_exact_is_case_insensitive_and_ignores_query() {
    assert_eq!(matches(Protocol::Http, &["/api/Users"], "/API/users?x=1"), [0]);
    assert_eq!(matches(Protocol::Http, &["/api/users"], "/api/users/7"), Vec::<usize>::new());
  }

  #[test]
  fn http_wildcard_stops_at_segment_boundary() {
    let targets = ["/api/users/*"];
    assert_eq!(matches(Protocol::Http, &targets, "/api/users/7"), [0]);
    assert_eq!(matches(Protocol::Http, &targets, "/api/users/7/posts"), [0]);
    assert!(matches(Protocol::Http, &targets, "/api/users").is_empty(), "pastaay: `/x/*` is what is under `/x/`");
    assert_eq!(matches(Protocol::Http, &targets, "/API/Users/"), [0]);
    assert!(matches(Protocol::Http, &targets, "/api/usersettings").is_empty());
    assert!(matches(Protocol::Http, &targets, "/api").is_empty());
    assert_eq!(matches(Protocol::Http, &["/api/users*"], "/api/users/1"), [0]);
    assert!(matches(Protocol::Http, &["/api/users*"], "/api/usersx").is_empty());
  }

  /// pastaay's own cases, exactly.
  #[test]
  fn http_prefixes_follow_pastaay() {
    let under = ["/api/*"];
    assert!(matches(Protocol::Http, &under, "/api").is_empty());
    assert_eq!(matches(Protocol::Http, &under, "/api/"), [0]);
    assert_eq!(matches(Protocol::Http, &under, "/api/x"), [0]);
    let star = ["/api*"];
    assert_eq!(matches(Protocol::Http, &star, "/api"), [0]);
    assert_eq!(matches(Protocol::Http, &star, "/api/x"), [0]);
    assert!(matches(Protocol::Http, &star, "/apix").is_empty());
    // The same on gRPC paths, and with a query string.
    assert!(matches(Protocol::Grpc, &["/shop.Cart/*"], "/shop.Cart").is_empty());
    assert_eq!(matches(Protocol::Http, &star, "/api?x=1"), [0]);
    assert!(matches(Protocol::Http, &under, "/api?x=/").is_empty());
    // Both at once: one match each, in order.
    assert_eq!(matches(Protocol::Http, &["/api*", "/api/*"], "/api/x"), [0, 1]);
    assert_eq!(matches(Protocol::Http, &["/api*", "/api/*"], "/api"), [0]);
  }

  #[test]
  fn http_absolute_urls_match_url_and_path_targets() {
    let targets = ["https://api.example.com/v1/*", "/v1/users", "http://other.test/v1/users", "/v2/*"];
    assert_eq!(matches(Protocol::Http, &targets, "https://API.example.com/v1/users?page=2"), [0, 1]);
    assert_eq!(matches(Protocol::Http, &targets, "http://other.test/v1/users"), [1, 2]);
    assert_eq!(matches(Protocol::Http, &targets, "https://api.example.com"), Vec::<usize>::new());
    assert_eq!(matches(Protocol::Http, &["/"], "https://api.example.com"), [0]);
    assert!(matches(Protocol::Http, &targets, "https://api.example.com.evil/v1/x").is_empty());
  }

  #[test]
  fn all_targets_and_order() {
    let targets = ["/b", "all", "/b/*", "*", ""];
    assert_eq!(matches(Protocol::Http, &targets, "/b"), [0, 1, 3, 4]);
    assert_eq!(matches(Protocol::Http, &targets, "/b/c"), [1, 2, 3, 4]);
    assert_eq!(matches(Protocol::Http, &targets, "/c"), [1, 3, 4]);
  }

  #[test]
  fn grpc_service_wildcard() {
    let targets = ["/shop.Cart/*", "/shop.Cart/Add"];
    assert_eq!(matches(Protocol::Grpc, &targets, "/shop.Cart/Add"), [0, 1]);
    assert_eq!(matches(Protocol::Grpc, &targets, "/shop.Cart/Remove"), [0]);
    assert!(matches(Protocol::Grpc, &targets, "/shop.CartX/Add").is_empty());
  }

  #[test]
  fn names_exact_and_prefix() {
    assert_eq!(matches(Protocol::Redis, &["get", "h*"], "GET"), [0]);
    assert_eq!(matches(Protocol::Redis, &["get", "h*"], "HSET"), [1]);
    assert!(matches(Protocol::Redis, &["get"], "GETEX").is_empty());
  }

  #[test]
  fn sql_bare_word_is_whole_word() {
    assert_eq!(matches(Protocol::Sql, &["users"], "SELECT * FROM USERS WHERE ID = 1"), [0]);
    assert!(matches(Protocol::Sql, &["users"], "SELECT * FROM USERS_ARCHIVE").is_empty());
    assert_eq!(matches(Protocol::Sql, &["^insert into orders"], "INSERT INTO ORDERS VALUES (1)"), [0]);
    assert_eq!(matches(Protocol::Sql, &["database"], "SELECT 1"), [0]);
  }

  #[test]
  fn sql_bad_regex_names_the_policy() {
    let policies = [policy(Protocol::Sql, "ok"), policy(Protocol::Sql, "(unclosed")];
    let errors = TargetIndex::build(Protocol::Sql, policies.iter().enumerate()).unwrap_err();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].policy, 1);
    assert!(errors[0].message.contains("invalid regex"), "{}", errors[0].message);
  }

  #[test]
  fn matches_iterates_in_order_across_words() {
    let mut m = Matches::new();
    for i in [1000, 3, 64, 63, 0] {
      m.insert(i);
    }
    assert_eq!(m.iter().collect::<Vec<_>>(), [0, 3, 63, 64, 1000]);
  }
}
