//! Small arbitrary policy sets (targets, types, chances 0 or 1, `matchHeaders`, ignored
//! prefixes) compiled into a `Snapshot`, then arbitrary requests decided against it.
//!
//! - never panics;
//! - a decision's `policy` is in range and of the protocol asked;
//! - with chances of 0 or 1 the decision is deterministic, and must equal the one a naive
//!   reference model of the documented rules gives (`matcher.rs`: case-insensitive paths,
//!   `prefix*` on a segment boundary as pastaay has it — `/api/*` matches `/api/` and
//!   `/api/x` but not `/api`, `/api*` matches `/api` and `/api/x` but not `/apix`, `/*` every
//!   path — query strings ignored for HTTP, absolute URLs matched by URL and by path; names
//!   exact or `prefix*`; SQL targets as case-insensitive regexes over the normalized
//!   statement; `engine/`: ignored prefixes, header matching, latencies adding up, the first
//!   error or drop ending the request).

#![no_main]

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Instant;

use arbitrary::{Arbitrary, Unstructured};
use havoc_core::engine::{Decision, Snapshot};
use havoc_core::hash::fnv1a64;
use havoc_core::policy::{Config, Policy, Protocol};
use havoc_core::sql;
use libfuzzer_sys::fuzz_target;
use regex::{Regex, RegexBuilder};

const MAX_POLICIES: usize = 12;
const MAX_REQUESTS: usize = 16;
/// SQL targets are regexes, and compiling them costs ~50 times a whole run without them (the
/// regex crate is instrumented too, and its coverage would draw the corpus to them): an input
/// keeps at most 2 SQL policies, and only 1 in `SQL_ONE_IN` inputs (by a hash of its bytes, so
/// reproducibly) keeps any; the others become `mongo` policies.
const MAX_SQL_POLICIES: usize = 2;
const SQL_ONE_IN: u64 = 32;

/// Strings that steer the matcher, picked more often than random ones would hit them.
const POOL: &[&str] = &[
  "",
  "all",
  "ALL",
  "*",
  "/*",
  "database",
  "/",
  "/api",
  "/api/",
  "/api*",
  "/api/*",
  "/apix",
  "/api/users",
  "/api/users/*",
  "/api/users*",
  "/API/Users/7",
  "https://api.example.com/v1/*",
  "http://other.test/v1/users",
  "/shop.Cart/*",
  "/shop.Cart/Add",
  "grpc.health.v1.Health",
  "/grpc.health.v1.Health/Check",
  "GET",
  "get",
  "h*",
  "HSET",
  "PING",
  "amq.",
  "amq.gen-1",
  "users",
  "^insert into orders",
  "select * from users where id = 1",
  "CREATE TABLE t (id int)",
  "x-canary",
  "yes",
  "X-Canary",
  "?",
  "#",
  "//",
  " /a ",
  "é",
  "\u{A0}",
];

#[derive(Arbitrary, Debug)]
enum Text {
  Pool(u8),
  Raw(String),
  Join(u8, u8),
}

impl Text {
  fn get(&self) -> String {
    let pool = |i: &u8| POOL[usize::from(*i) % POOL.len()];
    match self {
      Text::Pool(i) => pool(i).to_string(),
      Text::Raw(s) => s.clone(),
      Text::Join(a, b) => format!("{}{}", pool(a), pool(b)),
    }
  }
}

#[derive(Arbitrary, Debug)]
struct PolicyInput {
  protocol: u8,
  target: Text,
  latency: bool,
  latency_ms: u16,
  error: bool,
  drop: bool,
  headers: Vec<(Text, Text)>,
}

/// How a request target is made: freely, or from a policy's target.
#[derive(Arbitrary, Debug)]
enum TargetInput {
  Free(Text),
  FromPolicy(u8, Edit),
}

#[derive(Arbitrary, Debug)]
enum Edit {
  Same,
  Upper,
  StripStar,
  Append(Text),
  Query(Text),
  Url(Text),
  Truncate(u8),
  Statement,
}

#[derive(Arbitrary, Debug)]
enum HeaderInput {
  Free(Text, Text),
  /// A required header of a policy, maybe with its name uppercased or its value changed.
  FromPolicy {
    policy: u8,
    which: u8,
    upper: bool,
    other_value: bool,
  },
}

#[derive(Arbitrary, Debug)]
struct RequestInput {
  protocol: Option<u8>,
  target: TargetInput,
  headers: Vec<HeaderInput>,
}

#[derive(Arbitrary, Debug)]
struct Input {
  enable_default_ignored: bool,
  ignored: Vec<(u8, Text)>,
  policies: Vec<PolicyInput>,
  requests: Vec<RequestInput>,
  seed: u64,
}

fn protocol(b: u8) -> Protocol {
  Protocol::from_index(usize::from(b) % Protocol::COUNT).expect("in range")
}

/// A header name `Config::check` accepts: lowercase, 1–255 bytes, no NUL.
/// A header name the configuration accepts: lowercase RFC 9110 token characters, 1 to 255 bytes.
fn header_name(raw: String) -> String {
  let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
  let mut name: String = raw.to_ascii_lowercase().chars().filter(|&c| token(c)).collect();
  while name.len() > 255 {
    name.pop();
  }
  if name.is_empty() {
    name.push('x');
  }
  name
}

fn build_config(input: &Input, sql_allowed: bool) -> Config {
  let mut config = Config { enable_default_ignored: input.enable_default_ignored, ..Config::default() };
  for (p, prefix) in input.ignored.iter().take(8) {
    // The configuration refuses empty prefixes.
    let prefix = prefix.get();
    if !prefix.is_empty() {
      config.ignored_commands.entry(protocol(*p)).or_default().push(prefix);
    }
  }
  let mut sql_policies = 0;
  for (i, p) in input.policies.iter().take(MAX_POLICIES).enumerate() {
    let mut protocol = protocol(p.protocol);
    if protocol == Protocol::Sql {
      sql_policies += 1;
      if !sql_allowed || sql_policies > MAX_SQL_POLICIES {
        protocol = Protocol::Mongo;
      }
    }
    let mut policy = Policy {
      name: format!("p{i}"),
      protocol: Some(protocol),
      target: p.target.get(),
      latency_chance: if p.latency { 1.0 } else { 0.0 },
      latency_duration: f64::from(p.latency_ms),
      error_chance: if p.error { 1.0 } else { 0.0 },
      drop_connection: p.drop,
      ..Policy::default()
    };
    for (k, v) in p.headers.iter().take(3) {
      policy.match_headers.insert(header_name(k.get()), v.get());
    }
    config.policies.push(policy);
  }
  config
}

fn request_target(target: &TargetInput, config: &Config) -> String {
  let (index, edit) = match target {
    TargetInput::Free(text) => return text.get(),
    TargetInput::FromPolicy(index, edit) => (index, edit),
  };
  let Some(policy) = config.policies.get(usize::from(*index) % config.policies.len().max(1)) else {
    return String::new();
  };
  let t = policy.target.clone();
  match edit {
    Edit::Same => t,
    Edit::Upper => t.to_ascii_uppercase(),
    Edit::StripStar => t.trim().trim_end_matches('*').to_string(),
    Edit::Append(s) => format!("{}{}", t.trim().trim_end_matches('*'), s.get()),
    Edit::Query(s) => format!("{}?{}", t.trim(), s.get()),
    Edit::Url(host) => format!("https://{}{}", host.get(), t.trim().trim_end_matches('*')),
    Edit::Truncate(n) => {
      let mut t = t;
      let mut len = usize::from(*n) % (t.len() + 1);
      while !t.is_char_boundary(len) {
        len -= 1;
      }
      t.truncate(len);
      t
    }
    Edit::Statement => format!("select * from {} where id = 1", t.trim()),
  }
}

fn request_headers(headers: &[HeaderInput], config: &Config) -> Vec<(String, String)> {
  let mut out = Vec::new();
  for h in headers.iter().take(6) {
    match h {
      HeaderInput::Free(k, v) => out.push((k.get(), v.get())),
      HeaderInput::FromPolicy { policy, which, upper, other_value } => {
        let Some(p) = config.policies.get(usize::from(*policy) % config.policies.len().max(1)) else { continue };
        let Some((k, v)) = p.match_headers.iter().nth(usize::from(*which) % p.match_headers.len().max(1)) else { continue };
        let k = if *upper { k.to_ascii_uppercase() } else { k.clone() };
        let v = if *other_value { format!("{v}!") } else { v.clone() };
        out.push((k, v));
      }
    }
  }
  out
}

/// `Snapshot::compile`, with SQL targets that are not valid regexes escaped so that the set
/// still compiles. Every compile issue of these configurations must be such a target.
fn compile(config: &mut Config) -> Option<Snapshot> {
  for _ in 0..2 {
    match Snapshot::compile(config.clone(), 1, Instant::now()) {
      Ok(snapshot) => return Some(snapshot),
      Err(issues) => {
        for issue in issues {
          let i = issue
            .path
            .strip_prefix("policies[")
            .and_then(|rest| rest.strip_suffix("].target"))
            .and_then(|i| i.parse::<usize>().ok())
            .unwrap_or_else(|| panic!("unexpected issue {issue}"));
          let policy = &mut config.policies[i];
          assert_eq!(policy.protocol(), Protocol::Sql, "unexpected issue {issue}");
          policy.target = regex::escape(policy.target.trim());
        }
      }
    }
  }
  // Escaped patterns that are still too large for the size limits.
  None
}

// ---- the reference model ----

fn eq_ic(a: &str, b: &str) -> bool {
  a.as_bytes().eq_ignore_ascii_case(b.as_bytes())
}

fn starts_ic(haystack: &str, prefix: &str) -> bool {
  haystack.len() >= prefix.len() && haystack.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

/// pastaay's rule: `prefix*` matches a path that starts with `prefix` on a segment boundary,
/// that is when `prefix` ends with `/` or the path ends right after it or goes on with `/`.
fn path_matches(target: &str, path: &str) -> bool {
  match target.strip_suffix('*') {
    Some("" | "/") => true,
    Some(prefix) => starts_ic(path, prefix) && (prefix.ends_with('/') || path.len() == prefix.len() || path.as_bytes()[prefix.len()] == b'/'),
    None => eq_ic(target, path),
  }
}

fn url_path(url: &str) -> Option<&str> {
  let rest = ["https://", "http://"].iter().find_map(|scheme| starts_ic(url, scheme).then(|| &url[scheme.len()..]))?;
  Some(rest.find('/').map_or("/", |slash| &rest[slash..]))
}

fn sql_matches(target: &str, statement: &str) -> bool {
  thread_local! {
    /// Compiled reference regexes, kept across runs.
    static CACHE: RefCell<HashMap<String, Regex>> = RefCell::new(HashMap::new());
  }
  CACHE.with(|cache| {
    let mut cache = cache.borrow_mut();
    if cache.len() > 4096 {
      cache.clear();
    }
    let re = cache.entry(target.to_string()).or_insert_with(|| {
      let is_word = target.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
      let pattern = if is_word { format!(r"(?i)\b{target}\b") } else { format!("(?i){target}") };
      RegexBuilder::new(&pattern).size_limit(1 << 20).build().expect("compiled by the snapshot")
    });
    re.is_match(statement)
  })
}

/// Whether `policy` targets `input` (for SQL: the normalized statement).
fn targets(policy: &Policy, input: &str) -> bool {
  if policy.targets_all() {
    return true;
  }
  let target = policy.target.trim();
  match policy.protocol() {
    Protocol::Http => {
      let path = &input[..input.find(['?', '#']).unwrap_or(input.len())];
      path_matches(target, path) || url_path(path).is_some_and(|p| path_matches(target, p))
    }
    Protocol::Grpc => path_matches(target, input),
    Protocol::Sql => sql_matches(target, input),
    Protocol::Mongo => {
      let part = mongo_part(input, target);
      match target.strip_suffix('*') {
        Some(prefix) => starts_ic(part, prefix),
        None => eq_ic(target, part),
      }
    }
    _ => match target.strip_suffix('*') {
      Some(prefix) => starts_ic(input, prefix),
      None => eq_ic(target, input),
    },
  }
}

/// A MongoDB command arrives as `command db.collection`: a key with a `.` reads the namespace,
/// any other key the command.
fn mongo_part<'a>(input: &'a str, key: &str) -> &'a str {
  let (command, namespace) = input.split_once(' ').unwrap_or((input, ""));
  if key.contains('.') {
    namespace
  } else {
    command
  }
}

fn ignored(config: &Config, protocol: Protocol, target: &str) -> bool {
  let defaults = if config.enable_default_ignored { protocol.default_ignored() } else { &[] };
  let custom = config.ignored_commands.get(&protocol).map(Vec::as_slice).unwrap_or_default();
  let bare = if protocol == Protocol::Grpc { target.trim_start_matches('/') } else { target };
  defaults.iter().copied().chain(custom.iter().map(String::as_str)).filter(|p| !p.is_empty()).any(|p| {
    if protocol == Protocol::Mongo {
      starts_ic(mongo_part(target, p), p)
    } else {
      starts_ic(target, p) || starts_ic(bare, p)
    }
  })
}

fn expected(config: &Config, protocol: Protocol, target: &str, headers: &[(String, String)]) -> Option<Decision> {
  if protocol == Protocol::Resource {
    return None;
  }
  let normalized;
  let target = if protocol == Protocol::Sql {
    normalized = sql::normalize(target);
    normalized.as_str()
  } else {
    target
  };
  if ignored(config, protocol, target) {
    return None;
  }
  let mut decision: Option<Decision> = None;
  for (i, p) in config.policies.iter().enumerate() {
    if p.protocol() != protocol || !targets(p, target) {
      continue;
    }
    let has = |name: &String, value: &String| headers.iter().any(|(k, v)| eq_ic(k, name) && v == value);
    if !p.match_headers.iter().all(|(name, value)| has(name, value)) {
      continue;
    }
    if p.latency_chance >= 1.0 && p.latency_duration > 0.0 {
      decision.get_or_insert(Decision { policy: i, latency_ms: 0.0, error: false, drop: false }).latency_ms += p.latency_duration;
    }
    let drop = p.drop_connection;
    let error = !drop && p.error_chance >= 1.0;
    if drop || error {
      return Some(Decision { policy: i, latency_ms: decision.map_or(0.0, |d| d.latency_ms), error, drop });
    }
  }
  decision
}

fuzz_target!(|data: &[u8]| {
  let Ok(input) = Input::arbitrary_take_rest(Unstructured::new(data)) else { return };
  // The high bits: FNV-1a's low bits depend on the inputs' low bits only.
  let sql_allowed = (fnv1a64(data) >> 32).is_multiple_of(SQL_ONE_IN);
  // `compile` checks the configuration (the rule book is not cheap: once per input) and panics
  // on any issue but a SQL target's regex: the harness must build sound configurations.
  let mut config = build_config(&input, sql_allowed);
  let Some(snapshot) = compile(&mut config) else { return };
  let config = &config;
  let mut rng = fastrand::Rng::with_seed(input.seed);
  for request in input.requests.iter().take(MAX_REQUESTS) {
    let protocol = match request.protocol {
      Some(p) => protocol(p),
      // Most often the protocol of some policy, so that the index is not empty.
      None => config.policies.first().map_or(Protocol::Http, Policy::protocol),
    };
    let target = request_target(&request.target, config);
    let mut headers = request_headers(&request.headers, config);
    let want = expected(config, protocol, &target, &headers);
    let got = snapshot.decide(protocol, &target, &mut headers, &mut rng);
    if let Some(d) = got {
      assert!(d.policy < snapshot.policies.len(), "policy index {} out of range", d.policy);
      assert_eq!(snapshot.policies[d.policy].policy.protocol(), protocol, "a policy of another protocol decided");
    }
    assert_eq!(got, want, "decision for {protocol} {target:?} with headers {headers:?} under {:#?}", config.policies);
  }
});
