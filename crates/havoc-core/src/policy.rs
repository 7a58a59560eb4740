//! The policy model: what a validated configuration says, and each policy's identity.
//!
//! This module is the one rule book of configurations, whichever way they arrive:
//! - [`value`]: a document as its author wrote it (the TypeScript layer parses YAML or JSON
//!   and sends it in a JSON wire form);
//! - [`read`]: every field, spelling, limit and enumeration; reads a document into a
//!   [`Config`] or returns every [`Finding`], by path, with the keys as written.
//!
//! [`Config::from_json`] and [`Config::check`] apply the same rules to the JSON and typed forms.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::hash::Fnv1a64;

pub mod read;
pub mod value;

pub use read::{read, shape, Finding, Part, Path, Shape, Step};
pub use value::{Reading, Value};

/// Most policies a configuration may hold.
pub const MAX_POLICIES: usize = 1024;
/// Longest latency a policy may inject, in milliseconds (1 h).
pub const MAX_LATENCY_MS: f64 = 3_600_000.0;
/// Longest warmup, in milliseconds (24 h).
pub const MAX_WARMUP_MS: f64 = 86_400_000.0;
/// Largest RAM chunk, in MB.
pub const MAX_RAM_CHUNK_MB: f64 = 4096.0;
/// Largest `throttle_threshold`.
pub const MAX_THROTTLE: f64 = 10_000_000.0;
/// Most CPU-burning threads one policy may ask for (the machine's core count is checked
/// when the set is compiled, see [`crate::sabotage::check`]).
pub const MAX_CPU_CORES: u32 = 1024;
/// Largest `ram_max_mb` the model accepts (1 TiB); the process ceiling is far lower.
pub const MAX_RAM_MB: f64 = 1_048_576.0;
/// Longest `duration` of a resource policy, in milliseconds (24 h).
pub const MAX_SABOTAGE_MS: f64 = 86_400_000.0;
/// Longest policy name, in characters (Unicode scalar values).
pub const MAX_NAME_CHARS: usize = 128;
/// Longest `ram_interval`, in milliseconds (1 h).
pub const MAX_RAM_INTERVAL_MS: f64 = 3_600_000.0;
/// The `ram_interval` of a policy that gives none (or 0), in milliseconds: pastaay's second.
pub const DEFAULT_RAM_INTERVAL_MS: f64 = 1000.0;
/// Lowest HTTP status code a policy may send (0 also: the default, 500).
pub const MIN_HTTP_STATUS: f64 = 100.0;
/// Highest HTTP status code a policy may send.
pub const MAX_HTTP_STATUS: f64 = 599.0;
/// Highest gRPC status code (16, UNAUTHENTICATED).
pub const MAX_GRPC_STATUS: f64 = 16.0;
/// Highest error code of the other protocols (an unsigned 16-bit number).
pub const MAX_ERROR_CODE: f64 = 65_535.0;

/// What a policy acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
  Http,
  Grpc,
  Sql,
  Redis,
  Rabbitmq,
  Kafka,
  Mongo,
  Resource,
}

impl Protocol {
  pub const ALL: [Protocol; 8] =
    [Protocol::Http, Protocol::Grpc, Protocol::Sql, Protocol::Redis, Protocol::Rabbitmq, Protocol::Kafka, Protocol::Mongo, Protocol::Resource];
  pub const COUNT: usize = Self::ALL.len();

  pub fn as_str(self) -> &'static str {
    match self {
      Protocol::Http => "http",
      Protocol::Grpc => "grpc",
      Protocol::Sql => "sql",
      Protocol::Redis => "redis",
      Protocol::Rabbitmq => "rabbitmq",
      Protocol::Kafka => "kafka",
      Protocol::Mongo => "mongo",
      Protocol::Resource => "resource",
    }
  }

  /// The position of this protocol in [`Protocol::ALL`]: a stable small integer.
  pub fn index(self) -> usize {
    self as usize
  }

  pub fn from_index(index: usize) -> Option<Protocol> {
    Self::ALL.get(index).copied()
  }

  pub fn parse(name: &str) -> Option<Protocol> {
    Self::ALL.into_iter().find(|p| p.as_str() == name)
  }

  /// Whether a dropped connection is something havoc can act out on this protocol.
  pub fn can_drop(self) -> bool {
    self != Protocol::Resource
  }

  /// Prefixes protected when `enable_default_ignored` is on (pastaay's built-in list; for
  /// MongoDB also its handshake, health and authentication commands).
  pub fn default_ignored(self) -> &'static [&'static str] {
    match self {
      Protocol::Sql => &["CREATE", "ALTER", "DROP", "TRUNCATE"],
      // pastaay's four schema commands, plus the handshake, health checks and authentication.
      Protocol::Mongo => {
        &["create", "createIndexes", "drop", "collMod", "hello", "isMaster", "ping", "saslStart", "saslContinue", "authenticate", "logout"]
      }
      Protocol::Redis => &["PING", "INFO", "CONFIG"],
      Protocol::Grpc => &["grpc.health.v1.Health"],
      Protocol::Kafka => &["__consumer_offsets", "_schemas", "__transaction_state"],
      Protocol::Rabbitmq => &["amq.", "reply_"],
      Protocol::Http | Protocol::Resource => &[],
    }
  }
}

impl fmt::Display for Protocol {
  fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    f.write_str(self.as_str())
  }
}

/// How often a streaming call re-rolls its faults.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub enum StreamRollMode {
  #[default]
  #[serde(rename = "")]
  Unset,
  #[serde(rename = "per-call")]
  PerCall,
  #[serde(rename = "per-frame")]
  PerFrame,
  #[serde(rename = "stream")]
  Stream,
}

impl StreamRollMode {
  pub fn as_str(self) -> &'static str {
    match self {
      StreamRollMode::Unset => "",
      StreamRollMode::PerCall => "per-call",
      StreamRollMode::PerFrame => "per-frame",
      StreamRollMode::Stream => "stream",
    }
  }
}

/// One policy, as the TypeScript layer hands it over (camelCase keys, durations in ms).
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Policy {
  pub name: String,
  #[serde(rename = "type")]
  pub protocol: Option<Protocol>,
  pub target: String,
  pub latency_chance: f64,
  pub latency_duration: f64,
  pub error_chance: f64,
  pub error_code: u32,
  pub error_body: String,
  pub match_headers: BTreeMap<String, String>,
  pub drop_connection: bool,
  pub stream_roll_mode: StreamRollMode,
  pub throttle_threshold: f64,
  pub ram_chunk_mb: f64,
  pub ram_interval: f64,
  // The sabotage fields are left out of the JSON form at their default (0), like the
  // TypeScript layer leaves them out of a validated policy.
  /// Resource: threads burning CPU; 0 means every core.
  #[serde(skip_serializing_if = "is_zero_u32")]
  pub cpu_cores: u32,
  /// Resource: duty cycle of each burning thread, 1–100; 0 means the default (100, or the
  /// `throttle_threshold` mapping).
  #[serde(skip_serializing_if = "is_zero_u32")]
  pub cpu_percent: u32,
  /// Resource: this policy's RAM cap in MB; 0 means "up to the process ceiling".
  #[serde(skip_serializing_if = "is_zero_f64")]
  pub ram_max_mb: f64,
  /// Resource: how long the sabotage lasts, in milliseconds; 0 means until removed.
  #[serde(skip_serializing_if = "is_zero_f64")]
  pub duration: f64,
}

fn is_zero_u32(value: &u32) -> bool {
  *value == 0
}

fn is_zero_f64(value: &f64) -> bool {
  *value == 0.0
}

impl Policy {
  pub fn protocol(&self) -> Protocol {
    self.protocol.unwrap_or(Protocol::Http)
  }

  /// Whether the target means "everything" for this protocol.
  pub fn targets_all(&self) -> bool {
    let target = self.target.trim();
    target.is_empty()
      || target.eq_ignore_ascii_case("all")
      || target == "*"
      || (self.protocol() == Protocol::Sql && target.eq_ignore_ascii_case("database"))
  }

  /// The error code actually sent: 0 maps to the protocol's default.
  pub fn effective_error_code(&self) -> u32 {
    match (self.error_code, self.protocol()) {
      (0, Protocol::Http) => 500,
      (0, Protocol::Grpc) => 14,
      (code, _) => code,
    }
  }

  /// The chance that this policy drops a connection: `error_chance` when set, else always.
  pub fn drop_chance(&self) -> f64 {
    if !self.drop_connection {
      0.0
    } else if self.error_chance > 0.0 {
      self.error_chance
    } else {
      1.0
    }
  }

  /// Whether the policy injects anything at all.
  pub fn is_active(&self) -> bool {
    match self.protocol() {
      Protocol::Resource => self.burns_cpu() || self.leaks_ram(),
      _ => self.drop_connection || (self.latency_chance > 0.0 && self.latency_duration > 0.0) || self.error_chance > 0.0,
    }
  }

  /// Whether a resource policy burns CPU: it says something about CPU, or it is a pastaay
  /// policy whose `latency_duration` is the length of a burn.
  pub fn burns_cpu(&self) -> bool {
    self.cpu_cores > 0 || self.cpu_percent > 0 || self.throttle_threshold > 0.0 || self.latency_duration > 0.0
  }

  /// Whether a resource policy holds memory.
  pub fn leaks_ram(&self) -> bool {
    self.ram_chunk_mb > 0.0 || self.ram_max_mb > 0.0
  }

  /// The duty cycle of each burning thread, 1–100: `cpu_percent` when set, else pastaay's
  /// `throttle_threshold` read as an intensity (1,000 per percent point, 100,000 and more
  /// meaning 100%), else 100.
  pub fn effective_cpu_percent(&self) -> u32 {
    if self.cpu_percent > 0 {
      self.cpu_percent.min(100)
    } else if self.throttle_threshold > 0.0 {
      (self.throttle_threshold / 1000.0).round().clamp(1.0, 100.0) as u32
    } else {
      100
    }
  }

  /// How long the CPU burn lasts in ms (0: until removed): `duration`, else pastaay's
  /// `latency_duration`.
  pub fn cpu_duration_ms(&self) -> f64 {
    if self.duration > 0.0 {
      self.duration
    } else {
      self.latency_duration
    }
  }

  /// The most memory this policy holds, in MB: `ram_max_mb`, else `None` (it grows until the
  /// process ceiling).
  pub fn ram_cap_mb(&self) -> Option<f64> {
    (self.ram_max_mb > 0.0).then_some(self.ram_max_mb)
  }

  /// The stable 64-bit identity of this policy: FNV-1a over every field, length-prefixed,
  /// header keys sorted, numbers canonical. Equal policies hash alike on every machine.
  pub fn identity(&self) -> u64 {
    let mut h = Fnv1a64::new();
    h.write_field(self.name.as_bytes());
    h.write_field(self.protocol().as_str().as_bytes());
    h.write_field(self.target.as_bytes());
    h.write_number(self.latency_chance);
    h.write_number(self.latency_duration);
    h.write_number(self.error_chance);
    h.write_number(f64::from(self.error_code));
    h.write_field(self.error_body.as_bytes());
    h.write(&(self.match_headers.len() as u64).to_le_bytes());
    for (key, value) in &self.match_headers {
      h.write_field(key.as_bytes());
      h.write_field(value.as_bytes());
    }
    h.write_byte(u8::from(self.drop_connection));
    h.write_field(self.stream_roll_mode.as_str().as_bytes());
    h.write_number(self.throttle_threshold);
    h.write_number(self.ram_chunk_mb);
    h.write_number(self.ram_interval);
    // Fields added after identities were first published are hashed only when they differ
    // from their defaults, so that existing policies keep their identity.
    if self.cpu_cores != 0 || self.cpu_percent != 0 || self.ram_max_mb != 0.0 || self.duration != 0.0 {
      h.write_field(b"sabotage");
      h.write_number(f64::from(self.cpu_cores));
      h.write_number(f64::from(self.cpu_percent));
      h.write_number(self.ram_max_mb);
      h.write_number(self.duration);
    }
    h.finish()
  }
}

fn default_true() -> bool {
  true
}

/// A whole configuration.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Config {
  pub version: u32,
  #[serde(default, skip_serializing_if = "Option::is_none")]
  pub warmup_duration: Option<f64>,
  #[serde(default = "default_true")]
  pub enable_default_ignored: bool,
  #[serde(default)]
  pub ignored_commands: BTreeMap<Protocol, Vec<String>>,
  #[serde(default, skip_serializing_if = "Option::is_none")]
  pub seed: Option<u64>,
  #[serde(default)]
  pub policies: Vec<Policy>,
}

impl Default for Config {
  fn default() -> Self {
    Config { version: 1, warmup_duration: None, enable_default_ignored: true, ignored_commands: BTreeMap::new(), seed: None, policies: Vec::new() }
  }
}

/// One problem found in a configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Issue {
  /// Where, e.g. `policies[2].latencyDuration`.
  pub path: String,
  pub message: String,
}

impl fmt::Display for Issue {
  fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    write!(f, "{}: {}", self.path, self.message)
  }
}

impl Config {
  /// The JSON form, as [`Config::from_json`] reads it.
  pub fn to_json(&self) -> String {
    serde_json::to_string(self).expect("a configuration always serializes")
  }

  /// Reads the JSON form (as [`Config::to_json`] writes it; snake_case keys are accepted too)
  /// by the rules of [`read()`].
  pub fn from_json(json: &str) -> Result<Config, Vec<Issue>> {
    let json: serde_json::Value =
      serde_json::from_str(json).map_err(|e| vec![Issue { path: String::new(), message: format!("invalid configuration: {e}") }])?;
    read(&Value::from_plain_json(json)).map_err(|findings| findings.into_iter().map(Finding::into_issue).collect())
  }

  /// Every rule this configuration breaks (empty when it is sound): those of [`read()`], and
  /// header names in lowercase, as a read configuration stores them. Target regexes are
  /// checked when the set is compiled, see [`crate::engine::Snapshot::compile`].
  pub fn check(&self) -> Vec<Issue> {
    let mut issues: Vec<Issue> = read(&self.to_value()).err().unwrap_or_default().into_iter().map(Finding::into_issue).collect();
    for (i, p) in self.policies.iter().enumerate() {
      for key in p.match_headers.keys().filter(|k| k.bytes().any(|b| b.is_ascii_uppercase())) {
        issues.push(Issue { path: format!("policies[{i}].matchHeaders"), message: format!("header name {key:?} must be lowercase") });
      }
    }
    issues
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  fn policy(name: &str) -> Policy {
    Policy { name: name.into(), protocol: Some(Protocol::Http), target: "/a".into(), ..Policy::default() }
  }

  #[test]
  fn identity_is_stable_and_covers_fields() {
    let a = policy("a");
    assert_eq!(a.identity(), policy("a").identity());
    let mut b = policy("a");
    b.latency_chance = 0.5;
    assert_ne!(a.identity(), b.identity());
    let mut c = policy("a");
    c.match_headers.insert("x-user".into(), "7".into());
    assert_ne!(a.identity(), c.identity());
  }

  #[test]
  fn identity_separates_fields() {
    let mut a = policy("ab");
    a.target = "c".into();
    let mut b = policy("a");
    b.target = "bc".into();
    assert_ne!(a.identity(), b.identity());
  }

  #[test]
  fn identity_hashes_sabotage_fields_only_when_set() {
    // Pinned by __test__/hash.spec.ts too: adding fields must not move old identities.
    let mut a = policy("a");
    a.protocol = Some(Protocol::Resource);
    let before = a.identity();
    a.cpu_percent = 0;
    assert_eq!(a.identity(), before);
    for change in [
      |p: &mut Policy| p.cpu_cores = 1,
      |p: &mut Policy| p.cpu_percent = 50,
      |p: &mut Policy| p.ram_max_mb = 64.0,
      |p: &mut Policy| p.duration = 1000.0,
    ] {
      let mut b = a.clone();
      change(&mut b);
      assert_ne!(b.identity(), before);
    }
  }

  #[test]
  fn throttle_threshold_maps_to_a_duty_cycle() {
    let mut p = policy("t");
    p.protocol = Some(Protocol::Resource);
    assert!(!p.burns_cpu());
    p.throttle_threshold = 1.0;
    assert!(p.burns_cpu());
    assert_eq!(p.effective_cpu_percent(), 1);
    p.throttle_threshold = 50_000.0;
    assert_eq!(p.effective_cpu_percent(), 50);
    p.throttle_threshold = 10_000_000.0;
    assert_eq!(p.effective_cpu_percent(), 100);
    p.cpu_percent = 30;
    assert_eq!(p.effective_cpu_percent(), 30);
  }

  #[test]
  fn latency_duration_is_the_length_of_a_pastaay_burn() {
    let mut p = policy("b");
    p.protocol = Some(Protocol::Resource);
    p.latency_duration = 2000.0;
    assert!(p.burns_cpu() && p.is_active());
    assert_eq!(p.cpu_duration_ms(), 2000.0);
    p.duration = 500.0;
    assert_eq!(p.cpu_duration_ms(), 500.0);
  }

  #[test]
  fn identity_treats_negative_zero_as_zero() {
    let mut a = policy("a");
    a.latency_chance = -0.0;
    assert_eq!(a.identity(), policy("a").identity());
  }

  #[test]
  fn from_json_reads_camel_case_and_defaults() {
    let c = Config::from_json(r#"{"version":1,"policies":[{"name":"p","type":"sql","target":"users","errorChance":0.5}]}"#).unwrap();
    assert!(c.enable_default_ignored);
    assert_eq!(c.policies[0].protocol(), Protocol::Sql);
    assert_eq!(c.policies[0].error_chance, 0.5);
  }

  #[test]
  fn from_json_rejects_unknown_keys_and_limits() {
    assert!(Config::from_json(r#"{"version":1,"bogus":1}"#).is_err());
    let issues = Config::from_json(
      r#"{"version":2,"policies":[{"name":"p","type":"http","latencyChance":2,"errorCode":700},{"name":"p","type":"grpc","errorCode":17}]}"#,
    )
    .unwrap_err();
    let paths: Vec<&str> = issues.iter().map(|i| i.path.as_str()).collect();
    // A duplicate name is found once its policy is read, after the policy's own fields.
    assert_eq!(paths, ["version", "policies[0].latencyChance", "policies[0].errorCode", "policies[1].errorCode", "policies[1].name"]);
  }

  #[test]
  fn policy_names_are_printable_and_at_most_128_characters() {
    let check = |name: &str| {
      let config = Config { policies: vec![policy(name)], ..Config::default() };
      config.check().into_iter().map(|i| format!("{}: {}", i.path, i.message)).collect::<Vec<_>>()
    };
    for good in ["checkout-errors", "slow users (EU)", "caf\u{e9} \u{1F600}", &"\u{1F600}".repeat(128), &"x".repeat(128)] {
      assert_eq!(check(good), Vec::<String>::new(), "{good:?}");
    }
    let refused = |problem: &str| vec![format!("policies[0].name: must be printable text of at most 128 characters ({problem})")];
    assert_eq!(check("abc\0d"), refused("found control character U+0000 at index 3"));
    assert_eq!(check("tab\there"), refused("found control character U+0009 at index 3"));
    assert_eq!(check("two\nlines"), refused("found control character U+000A at index 3"));
    assert_eq!(check("del\u{7f}"), refused("found control character U+007F at index 3"));
    assert_eq!(check("\u{e9}\u{85}"), refused("found control character U+0085 at index 1"));
    assert_eq!(check("\u{1F600}\u{9f}"), refused("found control character U+009F at index 1"));
    assert_eq!(check("a\u{2028}b"), refused("found line break U+2028 at index 1"));
    assert_eq!(check(&"x".repeat(129)), refused("it has 129 characters"));
    assert_eq!(check(&"\u{e9}".repeat(200)), refused("it has 200 characters"));
  }

  #[test]
  fn drop_chance_follows_pastaay() {
    let mut p = policy("d");
    assert_eq!(p.drop_chance(), 0.0);
    p.drop_connection = true;
    assert_eq!(p.drop_chance(), 1.0);
    p.error_chance = 0.25;
    assert_eq!(p.drop_chance(), 0.25);
  }

  #[test]
  fn default_error_codes() {
    let mut p = policy("e");
    assert_eq!(p.effective_error_code(), 500);
    p.protocol = Some(Protocol::Grpc);
    assert_eq!(p.effective_error_code(), 14);
    p.error_code = 3;
    assert_eq!(p.effective_error_code(), 3);
  }
}
