//! The blast-radius guard: how much of the service a configuration can hurt.
//!
//! pastaay's model, kept for compatibility of scores: each active policy has a scope
//! (0.4 for a narrow target, 1.0 for a catch-all, +0.2 for each earlier policy on the same
//! `type:target`) and a severity (the worst of its faults); its risk is
//! `min(scope × severity, 0.95)` and the survival odds multiply `1 − risk` over all of them.
//! The score is `⌊(1 − survival) × 100⌋`. On top, findings pastaay misses: faults that
//! cannot act, policies that can never fire, targets that overlap.

use std::collections::HashMap;
use std::fmt;

use crate::policy::{Config, Policy, Protocol};
use crate::sabotage;

/// The verdict band of a score.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
  Safe,
  Elevated,
  High,
  Critical,
}

impl Status {
  pub fn of(score: u32) -> Status {
    match score {
      75.. => Status::Critical,
      50.. => Status::High,
      25.. => Status::Elevated,
      _ => Status::Safe,
    }
  }

  pub fn as_str(self) -> &'static str {
    match self {
      Status::Safe => "SAFE",
      Status::Elevated => "ELEVATED",
      Status::High => "HIGH",
      Status::Critical => "CRITICAL",
    }
  }
}

impl fmt::Display for Status {
  fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    f.write_str(self.as_str())
  }
}

/// The risk one policy contributes.
#[derive(Clone, Debug, PartialEq)]
pub struct PolicyRisk {
  pub name: String,
  pub scope: f64,
  pub severity: f64,
  pub risk: f64,
}

/// The guard's verdict on a configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
  /// 0–100.
  pub score: u32,
  pub status: Status,
  /// `1 − survival`, in [0, 1].
  pub total_risk: f64,
  /// Per active policy, in configuration order.
  pub policies: Vec<PolicyRisk>,
  /// Human-readable findings, most important first.
  pub issues: Vec<String>,
}

const MAX_RISK: f64 = 0.95;
/// Survival odds when the built-in protections are turned off.
const UNPROTECTED: f64 = 0.85;

/// Scores `config`.
pub fn analyze(config: &Config) -> Report {
  let mut survival = if config.enable_default_ignored { 1.0 } else { UNPROTECTED };
  let mut issues = Vec::new();
  if !config.enable_default_ignored {
    issues.push("enable_default_ignored is off: built-in commands (schema changes, health checks, PING) can be faulted".to_string());
  }
  let mut repeats: HashMap<(Protocol, String), u32> = HashMap::new();
  let mut policies = Vec::new();
  for policy in config.policies.iter().filter(|p| p.is_active()) {
    let key = (policy.protocol(), policy.target.trim().to_ascii_lowercase());
    let earlier = repeats.entry(key).or_insert(0);
    let base = if policy.targets_all() { 1.0 } else { 0.4 };
    let scope = (base + 0.2 * f64::from(*earlier)).min(1.0);
    *earlier += 1;
    let severity = severity(policy);
    let risk = (scope * severity).min(MAX_RISK);
    survival *= 1.0 - risk;
    if risk > 0.0 {
      issues.push(format!(
        "policy {:?} ({}:{}): risk {:.2} = scope {:.1} × severity {:.2}",
        policy.name,
        policy.protocol(),
        display_target(policy),
        risk,
        scope,
        severity
      ));
    }
    policies.push(PolicyRisk { name: policy.name.clone(), scope, severity, risk });
  }
  for policy in &config.policies {
    issues.extend(inert_findings(config, policy));
  }
  issues.extend(overlaps(config));
  let total_risk = 1.0 - survival;
  // The epsilon keeps a product such as 1 − 0.7 = 0.29999… from flooring to 29.
  let score = ((total_risk * 100.0) + 1e-9).floor().clamp(0.0, 100.0) as u32;
  Report { score, status: Status::of(score), total_risk, policies, issues }
}

fn display_target(policy: &Policy) -> &str {
  if policy.target.trim().is_empty() {
    "all"
  } else {
    policy.target.trim()
  }
}

/// The worst fault a policy can inject, in [0, 1].
fn severity(policy: &Policy) -> f64 {
  if policy.protocol() == Protocol::Resource {
    // pastaay's bands, read on what the policy finally holds: its cap when it has one.
    let ram = match policy.ram_cap_mb().unwrap_or(policy.ram_chunk_mb) {
      mb if mb >= 1024.0 => 0.9,
      mb if mb >= 256.0 => 0.5,
      mb if mb > 0.0 => 0.2,
      _ => 0.0,
    };
    return f64::max(ram, cpu_severity(policy));
  }
  let drop: f64 = if policy.drop_connection { 1.0 } else { 0.0 };
  let latency_weight = match policy.latency_duration {
    ms if ms >= 5_000.0 => 1.0,
    ms if ms >= 1_000.0 => 0.6,
    _ => 0.3,
  };
  let latency = if policy.latency_duration > 0.0 { policy.latency_chance * latency_weight } else { 0.0 };
  drop.max(policy.error_chance).max(latency)
}

/// A CPU burn weighs 0.4, up to 0.8 for every core at 100% (pastaay: `throttle_threshold`
/// 100,000 and more, which maps to a 100% duty cycle). A burn of `cpu_cores` counts for its
/// share of this machine's cores.
fn cpu_severity(policy: &Policy) -> f64 {
  if !policy.burns_cpu() {
    return 0.0;
  }
  let duty = f64::from(policy.effective_cpu_percent()) / 100.0;
  let coverage = if policy.cpu_cores == 0 { 1.0 } else { (f64::from(policy.cpu_cores) / sabotage::available_cores() as f64).min(1.0) };
  f64::max(0.4, 0.8 * duty * coverage)
}

/// What resource policies will do to the process, and sabotage fields set where they do
/// nothing.
fn resource_findings(config: &Config, policy: &Policy) -> Vec<String> {
  let name = &policy.name;
  let mut findings = Vec::new();
  let sabotage_fields = [
    ("cpu_cores", policy.cpu_cores > 0),
    ("cpu_percent", policy.cpu_percent > 0),
    ("ram_max_mb", policy.ram_max_mb > 0.0),
    ("duration", policy.duration > 0.0),
    ("throttle_threshold", policy.throttle_threshold > 0.0),
    ("ram_chunk_mb", policy.ram_chunk_mb > 0.0),
  ];
  let protocol = policy.protocol();
  if protocol != Protocol::Resource {
    let set: Vec<&str> = sabotage_fields.iter().filter(|(_, on)| *on).map(|(field, _)| *field).collect();
    if !set.is_empty() {
      findings.push(format!("policy {name:?}: {} only act on resource policies, not {protocol}", set.join(", ")));
    }
    return findings;
  }
  if !policy.is_active() {
    findings.push(format!(
      "policy {name:?} can never fire: a resource policy needs cpu_cores, cpu_percent, throttle_threshold, latency_duration, ram_chunk_mb or ram_max_mb"
    ));
    return findings;
  }
  let lasting = |ms: f64| if ms > 0.0 { format!("for {ms} ms") } else { "until removed".to_string() };
  if policy.burns_cpu() {
    let threads = if policy.cpu_cores > 0 { policy.cpu_cores.to_string() } else { format!("all {}", sabotage::available_cores()) };
    findings.push(format!("policy {name:?} burns {threads} core(s) at {}% {}", policy.effective_cpu_percent(), lasting(policy.cpu_duration_ms())));
  }
  if policy.leaks_ram() && policy.ram_cap_mb().is_none() {
    let ceiling_mb = sabotage::ceiling().bytes / sabotage::MB;
    findings.push(format!(
      "policy {name:?} holds {} MB more every {} ms without ram_max_mb: it grows {} until the process ceiling of {ceiling_mb} MB",
      policy.ram_chunk_mb,
      if policy.ram_interval > 0.0 { policy.ram_interval } else { 1000.0 },
      lasting(policy.duration)
    ));
  }
  let burning: f64 = config
    .policies
    .iter()
    .filter(|p| p.protocol() == Protocol::Resource && p.burns_cpu())
    .map(|p| {
      let threads = if p.cpu_cores > 0 { p.cpu_cores as usize } else { sabotage::available_cores() };
      threads as f64 * f64::from(p.effective_cpu_percent()) / 100.0
    })
    .sum();
  let first_burner = config.policies.iter().find(|p| p.protocol() == Protocol::Resource && p.burns_cpu());
  if burning >= sabotage::available_cores() as f64 && first_burner.is_some_and(|p| std::ptr::eq(p, policy)) {
    findings.push(format!(
      "resource policies burn {:.0}% of CPU on a process with {} core(s): the service itself gets none to spare",
      burning * 100.0,
      sabotage::available_cores()
    ));
  }
  findings
}

/// Why a policy cannot do (all of) what it says.
fn inert_findings(config: &Config, policy: &Policy) -> Vec<String> {
  let mut findings = Vec::new();
  let name = &policy.name;
  let protocol = policy.protocol();
  if policy.drop_connection && !protocol.can_drop() {
    findings.push(format!("policy {name:?}: drop_connection has no effect on {protocol} policies"));
  }
  findings.extend(resource_findings(config, policy));
  if protocol == Protocol::Resource {
    return findings;
  }
  if policy.latency_chance > 0.0 && policy.latency_duration == 0.0 {
    findings.push(format!("policy {name:?}: latency_chance is set but latency_duration is 0, so no latency is injected"));
  }
  if !policy.is_active() {
    findings.push(format!("policy {name:?} can never fire: every chance is 0 and drop_connection is off"));
    return findings;
  }
  if !policy.match_headers.is_empty() && !matches!(protocol, Protocol::Http | Protocol::Grpc | Protocol::Rabbitmq | Protocol::Kafka) {
    findings.push(format!("policy {name:?} can never fire: {protocol} requests carry no headers for match_headers"));
  }
  if !policy.targets_all() && protocol != Protocol::Sql {
    let target = policy.target.trim().trim_end_matches('*');
    let bare = target.trim_start_matches('/');
    let defaults = if config.enable_default_ignored { protocol.default_ignored() } else { &[] };
    let custom = config.ignored_commands.get(&protocol).map(Vec::as_slice).unwrap_or_default();
    let protected = defaults.iter().copied().chain(custom.iter().map(String::as_str)).find(|prefix| {
      // A MongoDB target and prefix are compared only when they name the same part (both
      // namespaces, with a `.`, or both commands).
      let same_part = protocol != Protocol::Mongo || target.contains('.') == prefix.contains('.');
      !prefix.is_empty()
        && same_part
        && (crate::matcher::starts_with_ignore_case(target, prefix) || crate::matcher::starts_with_ignore_case(bare, prefix))
    });
    if let Some(prefix) = protected {
      findings.push(format!("policy {name:?} can never fire: its target {target:?} is protected by the ignored prefix {prefix:?}"));
    }
  }
  findings
}

/// Pairs of active policies of one protocol whose targets can match the same request.
fn overlaps(config: &Config) -> Vec<String> {
  let active: Vec<&Policy> = config.policies.iter().filter(|p| p.is_active() && p.protocol() != Protocol::Resource).collect();
  let mut findings = Vec::new();
  for (i, a) in active.iter().enumerate() {
    for b in &active[i + 1..] {
      if a.protocol() != b.protocol() {
        continue;
      }
      if let Some(how) = overlap(a, b) {
        findings.push(format!("policies {:?} and {:?} overlap ({how}): a request matching both gets both faults, latencies added", a.name, b.name));
      }
    }
  }
  findings
}

fn overlap(a: &Policy, b: &Policy) -> Option<&'static str> {
  if a.targets_all() || b.targets_all() {
    return Some("a catch-all target");
  }
  if a.protocol() == Protocol::Sql {
    return None;
  }
  let (ta, tb) = (a.target.trim().to_ascii_lowercase(), b.target.trim().to_ascii_lowercase());
  let segmented = matches!(a.protocol(), Protocol::Http | Protocol::Grpc);
  let covers = |wild: &str, other: &str| -> bool {
    let Some(prefix) = wild.strip_suffix('*') else { return false };
    let other = other.trim_end_matches('*');
    if segmented {
      let prefix = prefix.trim_end_matches('/');
      other == prefix || other.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('/'))
    } else {
      other.starts_with(prefix)
    }
  };
  if ta == tb {
    Some("the same target")
  } else if covers(&ta, &tb) || covers(&tb, &ta) {
    Some("one wildcard target covers the other")
  } else {
    None
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  fn p(name: &str, protocol: Protocol, target: &str) -> Policy {
    Policy { name: name.into(), protocol: Some(protocol), target: target.into(), ..Policy::default() }
  }

  fn config(policies: Vec<Policy>) -> Config {
    Config { policies, ..Config::default() }
  }

  #[test]
  fn empty_config_is_safe() {
    let r = analyze(&Config::default());
    assert_eq!((r.score, r.status), (0, Status::Safe));
  }

  #[test]
  fn unprotected_costs_fifteen_points() {
    let r = analyze(&Config { enable_default_ignored: false, ..Config::default() });
    assert_eq!(r.score, 15);
    assert!(r.issues[0].contains("enable_default_ignored"));
  }

  #[test]
  fn scope_of_narrow_and_catch_all_targets() {
    let mut narrow = p("n", Protocol::Http, "/a");
    narrow.error_chance = 1.0;
    assert_eq!(analyze(&config(vec![narrow])).score, 40);
    for target in ["all", "*", ""] {
      let mut wide = p("w", Protocol::Http, target);
      wide.error_chance = 0.5;
      assert_eq!(analyze(&config(vec![wide])).score, 50, "{target}");
    }
    let mut db = p("d", Protocol::Sql, "database");
    db.error_chance = 0.5;
    assert_eq!(analyze(&config(vec![db])).score, 50);
  }

  #[test]
  fn repeats_widen_the_scope() {
    let mut a = p("a", Protocol::Redis, "GET");
    a.error_chance = 0.5;
    let mut b = a.clone();
    b.name = "b".into();
    let r = analyze(&config(vec![a, b]));
    assert_eq!(r.policies[0].scope, 0.4);
    assert!((r.policies[1].scope - 0.6).abs() < 1e-12);
    // survival = (1 − 0.2) × (1 − 0.3) = 0.56
    assert_eq!(r.score, 44);
  }

  #[test]
  fn latency_severity_steps() {
    for (ms, expected) in [(500.0, 30), (1_000.0, 60), (5_000.0, 95)] {
      let mut l = p("l", Protocol::Http, "all");
      l.latency_chance = 1.0;
      l.latency_duration = ms;
      assert_eq!(analyze(&config(vec![l])).score, expected, "{ms}");
    }
  }

  #[test]
  fn drop_is_the_worst_and_risk_is_capped() {
    let mut d = p("d", Protocol::Http, "all");
    d.drop_connection = true;
    let r = analyze(&config(vec![d]));
    assert_eq!(r.policies[0].risk, 0.95);
    assert_eq!((r.score, r.status), (95, Status::Critical));
  }

  #[test]
  fn resource_severity() {
    for (ram, throttle, expected) in [(2048.0, 0.0, 90), (300.0, 0.0, 50), (1.0, 0.0, 20), (0.0, 200_000.0, 80), (0.0, 5.0, 40)] {
      let mut r = p("r", Protocol::Resource, "");
      r.ram_chunk_mb = ram;
      r.throttle_threshold = throttle;
      assert_eq!(analyze(&config(vec![r])).score, expected, "{ram} {throttle}");
    }
  }

  #[test]
  fn resource_severity_of_the_new_fields() {
    let cores = sabotage::available_cores() as u32;
    let score = |f: fn(&mut Policy)| {
      let mut r = p("r", Protocol::Resource, "");
      f(&mut r);
      analyze(&config(vec![r])).score
    };
    // Every core at 100%, as pastaay's latency_duration burn does: 0.8.
    assert_eq!(score(|r| r.latency_duration = 1000.0), 80);
    assert_eq!(score(|r| r.cpu_percent = 100), 80);
    // A small duty cycle still weighs 0.4.
    assert_eq!(score(|r| r.cpu_percent = 10), 40);
    // The cap, not the chunk, is what the policy holds.
    assert_eq!(
      score(|r| {
        r.ram_chunk_mb = 16.0;
        r.ram_max_mb = 2048.0
      }),
      90
    );
    if cores >= 2 {
      let mut one = p("one", Protocol::Resource, "");
      one.cpu_cores = 1;
      one.cpu_percent = 100;
      let r = analyze(&config(vec![one]));
      assert!((r.policies[0].severity - f64::max(0.4, 0.8 / f64::from(cores))).abs() < 1e-12);
    }
  }

  #[test]
  fn resource_findings() {
    let mut burn = p("burn", Protocol::Resource, "");
    burn.cpu_percent = 100;
    let mut leak = p("leak", Protocol::Resource, "");
    leak.ram_chunk_mb = 8.0;
    let idle = p("idle", Protocol::Resource, "");
    let mut stray = p("stray", Protocol::Http, "all");
    stray.error_chance = 0.1;
    stray.cpu_cores = 1;
    let text = analyze(&config(vec![burn, leak, idle, stray])).issues.join("\n");
    assert!(text.contains("\"burn\" burns all"), "{text}");
    assert!(text.contains("at 100% until removed"), "{text}");
    assert!(text.contains("the service itself gets none to spare"), "{text}");
    assert!(text.contains("\"leak\" holds 8 MB more every 1000 ms without ram_max_mb"), "{text}");
    assert!(text.contains("until the process ceiling"), "{text}");
    assert!(text.contains("\"idle\" can never fire: a resource policy needs"), "{text}");
    assert!(text.contains("\"stray\": cpu_cores only act on resource policies, not http"), "{text}");
  }

  #[test]
  fn status_bands() {
    assert_eq!(Status::of(24), Status::Safe);
    assert_eq!(Status::of(25), Status::Elevated);
    assert_eq!(Status::of(50), Status::High);
    assert_eq!(Status::of(75), Status::Critical);
  }

  #[test]
  fn findings_pastaay_misses() {
    let mut dead = p("dead", Protocol::Http, "/x");
    dead.latency_chance = 0.5;
    let mut health = p("health", Protocol::Grpc, "/grpc.health.v1.Health/*");
    health.error_chance = 1.0;
    let mut hdr = p("hdr", Protocol::Redis, "GET");
    hdr.error_chance = 1.0;
    hdr.match_headers.insert("x".into(), "y".into());
    let mut res = p("res", Protocol::Resource, "");
    res.drop_connection = true;
    res.ram_chunk_mb = 10.0;
    let mut wide = p("wide", Protocol::Http, "/api/*");
    wide.error_chance = 0.1;
    let mut narrow = p("narrow", Protocol::Http, "/api/users/*");
    narrow.error_chance = 0.1;
    let r = analyze(&config(vec![dead, health, hdr, res, wide, narrow]));
    let text = r.issues.join("\n");
    assert!(text.contains("\"dead\": latency_chance is set but latency_duration is 0"), "{text}");
    assert!(text.contains("\"dead\" can never fire"), "{text}");
    assert!(text.contains("\"health\" can never fire: its target"), "{text}");
    assert!(text.contains("\"hdr\" can never fire: redis requests carry no headers"), "{text}");
    assert!(text.contains("\"res\": drop_connection has no effect on resource"), "{text}");
    assert!(text.contains("\"wide\" and \"narrow\" overlap"), "{text}");
    assert!(!text.contains("\"hdr\" and"), "{text}");
  }

  #[test]
  fn mongo_protection_compares_like_parts() {
    let mut schema = p("schema", Protocol::Mongo, "dropIndexes");
    schema.error_chance = 1.0;
    let mut dropbox = p("dropbox", Protocol::Mongo, "dropbox.files");
    dropbox.error_chance = 1.0;
    let text = analyze(&config(vec![schema, dropbox])).issues.join("\n");
    assert!(text.contains("\"schema\" can never fire: its target \"dropIndexes\" is protected by the ignored prefix \"drop\""), "{text}");
    assert!(!text.contains("\"dropbox\" can never fire"), "{text}");
  }
}
