//! A configuration compiled for decisions: target indexes, protected prefixes and warmup.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::matcher::{starts_with_ignore_case, TargetIndex};
use crate::policy::{Config, Issue, Policy, Protocol};
use crate::sabotage;
use crate::segments::SegmentFilter;

/// A policy prepared for decisions.
#[derive(Debug)]
pub struct CompiledPolicy {
  /// The policy as configured.
  pub policy: Policy,
  /// Its stable identity, [`Policy::identity`].
  pub identity: u64,
  /// Chance that its latency fires (0 when it has none).
  pub(super) latency_chance: f64,
  pub(super) latency_ms: f64,
  /// Chance of an error (0 on a drop policy, whose `error_chance` is the drop's).
  pub(super) error_chance: f64,
  pub(super) drop_chance: f64,
}

impl CompiledPolicy {
  pub(super) fn new(policy: Policy) -> Self {
    let has_latency = policy.latency_duration > 0.0;
    CompiledPolicy {
      identity: policy.identity(),
      latency_chance: if has_latency { policy.latency_chance } else { 0.0 },
      latency_ms: policy.latency_duration,
      // On a drop policy, `error_chance` is the drop's chance, not a separate error.
      error_chance: if policy.drop_connection { 0.0 } else { policy.error_chance },
      drop_chance: policy.drop_chance(),
      policy,
    }
  }
}

/// An immutable, compiled policy set.
#[derive(Debug)]
pub struct Snapshot {
  /// Increases with every update of the set, starting at 1 (0 is the empty initial set).
  pub version: u64,
  /// The effective configuration it was compiled from.
  pub config: Config,
  /// Its policies, in configuration order: what the `policy` of a decision made on it indexes.
  pub policies: Vec<CompiledPolicy>,
  /// One target index per protocol, by [`Protocol::index`].
  pub(super) indexes: Vec<TargetIndex>,
  /// Protected prefixes per protocol (defaults and configured).
  ignored: Vec<Vec<String>>,
  /// When the set is warm, `None` when it has no warmup.
  pub(super) warm_at: Option<Instant>,
  warm: AtomicBool,
  /// Published by a halt: the layers are kept but no policy is in force.
  pub halted: bool,
  /// Bit [`Protocol::index`] set when a policy of that protocol can fault a request.
  can_fire: u32,
  /// The first path segments its active HTTP policies can match.
  segments: SegmentFilter,
}

impl Snapshot {
  /// Compiles `config`; `started` is when the set was created (warmup counts from it).
  pub fn compile(config: Config, version: u64, started: Instant) -> Result<Snapshot, Vec<Issue>> {
    let mut issues = config.check();
    issues.extend(sabotage::check(&config));
    let mut indexes = Vec::with_capacity(Protocol::COUNT);
    for protocol in Protocol::ALL {
      let members = config.policies.iter().enumerate().filter(|(_, p)| p.protocol() == protocol);
      match TargetIndex::build(protocol, members) {
        Ok(index) => indexes.push(index),
        Err(errors) => {
          issues.extend(errors.into_iter().map(|e| Issue { path: format!("policies[{}].target", e.policy), message: e.message }));
        }
      }
    }
    if !issues.is_empty() {
      return Err(issues);
    }
    let ignored = Protocol::ALL
      .iter()
      .map(|&protocol| {
        let defaults = if config.enable_default_ignored { protocol.default_ignored() } else { &[] };
        let custom = config.ignored_commands.get(&protocol).map(Vec::as_slice).unwrap_or_default();
        defaults.iter().map(|s| s.to_string()).chain(custom.iter().cloned()).filter(|s| !s.is_empty()).collect()
      })
      .collect();
    let can_fire = config.policies.iter().filter(|p| p.is_active()).fold(0, |bits, p| bits | 1 << p.protocol().index());
    let segments = SegmentFilter::of(&config.policies);
    let warmup = config.warmup_duration.unwrap_or(0.0);
    let warm_at = (warmup > 0.0).then(|| started + Duration::from_secs_f64(warmup / 1000.0));
    Ok(Snapshot {
      version,
      policies: config.policies.iter().cloned().map(CompiledPolicy::new).collect(),
      config,
      indexes,
      ignored,
      warm_at,
      warm: AtomicBool::new(warm_at.is_none()),
      halted: false,
      can_fire,
      segments,
    })
  }

  /// The empty set every policy set starts with (version 0).
  pub(super) fn empty(started: Instant) -> Snapshot {
    Snapshot::compile(Config::default(), 0, started).expect("the empty configuration is valid")
  }

  /// One bit per protocol ([`Protocol::index`]): set when a policy of that protocol can fault a
  /// request, that is, when it is active. Clear bits are exact — `decide` returns `None` for
  /// that protocol whatever the target — so callers may skip it. Set bits are not a promise:
  /// the target may match nothing, the set may still be warming up.
  pub fn can_fire(&self) -> u32 {
    self.can_fire
  }

  /// The first path segments its active HTTP policies can match: a request whose first segment
  /// the filter rules out matches none of them.
  pub fn segments(&self) -> &SegmentFilter {
    &self.segments
  }

  /// How many policies of `protocol` the set has.
  pub fn count(&self, protocol: Protocol) -> usize {
    self.indexes[protocol.index()].len()
  }

  /// Whether the warmup period (counted from the set's creation) is over.
  pub fn is_warm(&self) -> bool {
    if self.warm.load(Ordering::Relaxed) {
      return true;
    }
    match self.warm_at {
      Some(at) if Instant::now() < at => false,
      _ => {
        self.warm.store(true, Ordering::Relaxed);
        true
      }
    }
  }

  /// Remaining warmup, zero once warm.
  pub fn warmup_remaining(&self) -> Duration {
    self.warm_at.map(|at| at.saturating_duration_since(Instant::now())).unwrap_or_default()
  }

  /// Whether `target` is protected from faults on `protocol` (default or configured
  /// prefixes, case-insensitive; a gRPC method's leading `/` is not part of the prefix; a
  /// MongoDB prefix reads the command name, or the namespace when it has a `.`).
  pub fn is_ignored(&self, protocol: Protocol, target: &str) -> bool {
    let prefixes = &self.ignored[protocol.index()];
    if prefixes.is_empty() {
      return false;
    }
    if protocol == Protocol::Mongo {
      return prefixes.iter().any(|p| starts_with_ignore_case(crate::matcher::mongo_part(target, p), p));
    }
    let bare = if protocol == Protocol::Grpc { target.trim_start_matches('/') } else { target };
    prefixes.iter().any(|p| starts_with_ignore_case(target, p) || starts_with_ignore_case(bare, p))
  }
}
