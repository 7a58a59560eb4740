//! Named, process-global policy sets and the per-request decision.
//!
//! A [`PolicySet`] holds an immutable [`Snapshot`] behind an `ArcSwap`: updates swap the
//! whole compiled set at once, readers never lock. Every thread that asks for a set by name
//! gets the same one, so worker threads share policies without passing messages.
//! A [`Handle`] is one thread's view: a cached pointer to the current snapshot and its own
//! random number generator.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use arc_swap::{ArcSwap, Cache};

use crate::matcher::{starts_with_ignore_case, Matches, TargetIndex};
use crate::policy::{Config, Issue, Policy, Protocol};
use crate::sabotage::{self, Sabotage};
use crate::sql;

/// What the engine decided for one request.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Decision {
  /// Index (in the snapshot) of the policy that ended the request, or else of the first
  /// policy whose latency fired.
  pub policy: usize,
  /// Total latency to serve before anything else, in milliseconds (latencies add up).
  pub latency_ms: f64,
  /// Respond with the policy's error.
  pub error: bool,
  /// Destroy the connection. Wins over an error.
  pub drop: bool,
}

/// Header values of the request being decided, looked up only when a policy needs them.
pub trait Headers {
  /// Whether header `name` (lowercase) has the value `expected`; a multi-valued header
  /// matches when any of its values does.
  fn has(&mut self, name: &str, expected: &str) -> bool;
}

/// A request without headers.
pub struct NoHeaders;

impl Headers for NoHeaders {
  fn has(&mut self, _: &str, _: &str) -> bool {
    false
  }
}

impl<S: AsRef<str>> Headers for Vec<(S, S)> {
  fn has(&mut self, name: &str, expected: &str) -> bool {
    self.iter().any(|(k, v)| k.as_ref().eq_ignore_ascii_case(name) && v.as_ref() == expected)
  }
}

/// A policy prepared for decisions.
#[derive(Debug)]
pub struct CompiledPolicy {
  pub policy: Policy,
  pub identity: u64,
  latency_chance: f64,
  latency_ms: f64,
  error_chance: f64,
  drop_chance: f64,
}

impl CompiledPolicy {
  fn new(policy: Policy) -> Self {
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
  pub config: Config,
  pub policies: Vec<CompiledPolicy>,
  indexes: Vec<TargetIndex>,
  ignored: Vec<Vec<String>>,
  warm_at: Option<Instant>,
  warm: AtomicBool,
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
    })
  }

  fn empty(started: Instant) -> Snapshot {
    Snapshot::compile(Config::default(), 0, started).expect("the empty configuration is valid")
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
  /// prefixes, case-insensitive; a gRPC method's leading `/` is not part of the prefix).
  pub fn is_ignored(&self, protocol: Protocol, target: &str) -> bool {
    let prefixes = &self.ignored[protocol.index()];
    if prefixes.is_empty() {
      return false;
    }
    let bare = if protocol == Protocol::Grpc { target.trim_start_matches('/') } else { target };
    prefixes.iter().any(|p| starts_with_ignore_case(target, p) || starts_with_ignore_case(bare, p))
  }

  /// Decides the faults for one request. Allocates nothing (SQL is normalized into a
  /// reused per-thread buffer).
  pub fn decide(&self, protocol: Protocol, target: &str, headers: &mut dyn Headers, rng: &mut fastrand::Rng) -> Option<Decision> {
    let index = &self.indexes[protocol.index()];
    if index.is_empty() || protocol == Protocol::Resource || !self.is_warm() {
      return None;
    }
    if protocol == Protocol::Sql {
      NORMALIZED.with(|buf| {
        let mut buf = buf.borrow_mut();
        sql::normalize_into(target, &mut buf);
        self.decide_normalized(protocol, index, &buf, headers, rng)
      })
    } else {
      self.decide_normalized(protocol, index, target, headers, rng)
    }
  }

  fn decide_normalized(
    &self,
    protocol: Protocol,
    index: &TargetIndex,
    target: &str,
    headers: &mut dyn Headers,
    rng: &mut fastrand::Rng,
  ) -> Option<Decision> {
    if self.is_ignored(protocol, target) {
      return None;
    }
    let mut matches = Matches::new();
    index.find(target, &mut matches);
    let mut decision: Option<Decision> = None;
    for i in matches.iter() {
      let compiled = &self.policies[i];
      let required = &compiled.policy.match_headers;
      if !required.is_empty() && !required.iter().all(|(name, value)| headers.has(name, value)) {
        continue;
      }
      if roll(rng, compiled.latency_chance) {
        let d = decision.get_or_insert(Decision { policy: i, latency_ms: 0.0, error: false, drop: false });
        d.latency_ms += compiled.latency_ms;
      }
      let drop = roll(rng, compiled.drop_chance);
      let error = !drop && roll(rng, compiled.error_chance);
      if drop || error {
        // The first error or drop ends the request: later policies are not consulted.
        let latency_ms = decision.map_or(0.0, |d| d.latency_ms);
        return Some(Decision { policy: i, latency_ms, error, drop });
      }
    }
    decision
  }
}

thread_local! {
  static NORMALIZED: RefCell<String> = RefCell::new(String::with_capacity(1024));
}

#[inline]
fn roll(rng: &mut fastrand::Rng, chance: f64) -> bool {
  chance >= 1.0 || (chance > 0.0 && rng.f64() < chance)
}

/// A named policy set shared by every thread of the process.
#[derive(Debug)]
pub struct PolicySet {
  name: String,
  started: Instant,
  current: Arc<ArcSwap<Snapshot>>,
  versions: AtomicU64,
  /// Serializes writers so versions increase in the order sets are published.
  write: Mutex<()>,
  /// The CPU and RAM loads of this set's resource policies.
  sabotage: Sabotage,
}

impl PolicySet {
  fn new(name: &str) -> PolicySet {
    let started = Instant::now();
    PolicySet {
      name: name.to_string(),
      started,
      current: Arc::new(ArcSwap::from_pointee(Snapshot::empty(started))),
      versions: AtomicU64::new(0),
      write: Mutex::new(()),
      sabotage: Sabotage::default(),
    }
  }

  /// The process-wide set called `name`, created empty on first use.
  pub fn named(name: &str) -> Arc<PolicySet> {
    static REGISTRY: OnceLock<Mutex<HashMap<String, Arc<PolicySet>>>> = OnceLock::new();
    let registry = REGISTRY.get_or_init(Default::default);
    let mut sets = registry.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    Arc::clone(sets.entry(name.to_string()).or_insert_with(|| Arc::new(PolicySet::new(name))))
  }

  pub fn name(&self) -> &str {
    &self.name
  }

  /// Compiles and publishes `config`. On error nothing changes.
  pub fn apply(&self, config: Config) -> Result<Arc<Snapshot>, Vec<Issue>> {
    let _writer = self.write.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let version = self.versions.load(Ordering::Relaxed) + 1;
    let snapshot = Arc::new(Snapshot::compile(config, version, self.started)?);
    self.versions.store(version, Ordering::Relaxed);
    self.current.store(Arc::clone(&snapshot));
    self.sabotage.publish(&snapshot);
    Ok(snapshot)
  }

  /// Stops every CPU and RAM load of this set at once (engine close, halt, lease expiry);
  /// the next [`PolicySet::apply`] starts the resource policies it holds afresh.
  pub fn stop_sabotage(&self) {
    self.sabotage.stop_all();
  }

  /// This set's running sabotage.
  pub fn sabotage(&self) -> sabotage::Status {
    self.sabotage.status()
  }

  /// The current snapshot.
  pub fn snapshot(&self) -> Arc<Snapshot> {
    self.current.load_full()
  }

  /// A per-thread view of this set.
  pub fn handle(self: &Arc<Self>, seed: Option<u64>) -> Handle {
    Handle {
      set: Arc::clone(self),
      cache: Cache::new(Arc::clone(&self.current)),
      rng: seed.map_or_else(fastrand::Rng::new, fastrand::Rng::with_seed),
    }
  }
}

/// One thread's view of a [`PolicySet`]: a cached snapshot pointer and a private RNG, so
/// that deciding costs one atomic load and no contention with other threads.
pub struct Handle {
  set: Arc<PolicySet>,
  cache: Cache<Arc<ArcSwap<Snapshot>>, Arc<Snapshot>>,
  rng: fastrand::Rng,
}

impl Handle {
  pub fn set(&self) -> &Arc<PolicySet> {
    &self.set
  }

  /// The snapshot decisions are made against (refreshed when the set changed).
  pub fn snapshot(&mut self) -> &Arc<Snapshot> {
    self.cache.load()
  }

  pub fn reseed(&mut self, seed: u64) {
    self.rng.seed(seed);
  }

  /// Decides the faults for one request against the current snapshot.
  pub fn decide(&mut self, protocol: Protocol, target: &str, headers: &mut dyn Headers) -> Option<Decision> {
    let snapshot = self.cache.load();
    snapshot.decide(protocol, target, headers, &mut self.rng)
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  fn config(policies: Vec<Policy>) -> Config {
    Config { policies, ..Config::default() }
  }

  fn http(name: &str, target: &str) -> Policy {
    Policy { name: name.into(), protocol: Some(Protocol::Http), target: target.into(), ..Policy::default() }
  }

  fn unique_set(test: &str) -> Arc<PolicySet> {
    PolicySet::named(&format!("engine-test-{test}"))
  }

  #[test]
  fn sets_are_shared_by_name() {
    let a = PolicySet::named("engine-test-shared");
    let b = PolicySet::named("engine-test-shared");
    assert!(Arc::ptr_eq(&a, &b));
    let mut p = http("slow", "/x");
    p.latency_chance = 1.0;
    p.latency_duration = 5.0;
    a.apply(config(vec![p])).unwrap();
    let mut handle = b.handle(Some(1));
    let d = handle.decide(Protocol::Http, "/x", &mut NoHeaders).unwrap();
    assert_eq!(d.latency_ms, 5.0);
  }

  #[test]
  fn latencies_add_up_and_first_error_ends() {
    let set = unique_set("add");
    let mut a = http("a", "all");
    a.latency_chance = 1.0;
    a.latency_duration = 100.0;
    let mut b = http("b", "/x/*");
    b.latency_chance = 1.0;
    b.latency_duration = 50.0;
    b.error_chance = 1.0;
    b.error_code = 503;
    let mut c = http("c", "/x/y");
    c.latency_chance = 1.0;
    c.latency_duration = 1000.0;
    set.apply(config(vec![a, b, c])).unwrap();
    let mut handle = set.handle(Some(7));
    let d = handle.decide(Protocol::Http, "/x/y", &mut NoHeaders).unwrap();
    assert_eq!(d, Decision { policy: 1, latency_ms: 150.0, error: true, drop: false });
    let d = handle.decide(Protocol::Http, "/z", &mut NoHeaders).unwrap();
    assert_eq!(d, Decision { policy: 0, latency_ms: 100.0, error: false, drop: false });
  }

  #[test]
  fn drop_uses_error_chance_and_wins() {
    let set = unique_set("drop");
    let mut p = http("d", "all");
    p.drop_connection = true;
    p.error_chance = 1.0;
    set.apply(config(vec![p])).unwrap();
    let d = set.handle(None).decide(Protocol::Http, "/", &mut NoHeaders).unwrap();
    assert!(d.drop && !d.error);
  }

  #[test]
  fn chances_are_rolled_independently_and_reproducibly() {
    let set = unique_set("rolls");
    let mut p = http("p", "all");
    p.latency_chance = 0.3;
    p.latency_duration = 10.0;
    p.error_chance = 0.5;
    set.apply(config(vec![p])).unwrap();
    let run = |seed| {
      let mut h = set.handle(Some(seed));
      (0..10_000).map(|_| h.decide(Protocol::Http, "/", &mut NoHeaders)).collect::<Vec<_>>()
    };
    let a = run(42);
    assert_eq!(a, run(42));
    assert_ne!(a, run(43));
    let latency = a.iter().flatten().filter(|d| d.latency_ms > 0.0).count();
    let errors = a.iter().flatten().filter(|d| d.error).count();
    let both = a.iter().flatten().filter(|d| d.error && d.latency_ms > 0.0).count();
    assert!((2_700..3_300).contains(&latency), "{latency}");
    assert!((4_700..5_300).contains(&errors), "{errors}");
    // Independent rolls: P(both) ≈ 0.15.
    assert!((1_300..1_700).contains(&both), "{both}");
  }

  #[test]
  fn match_headers_and_ignored_prefixes() {
    let set = unique_set("headers");
    let mut p = http("canary", "all");
    p.error_chance = 1.0;
    p.match_headers.insert("x-canary".into(), "yes".into());
    let mut c = Config { policies: vec![p], ..Config::default() };
    c.ignored_commands.insert(Protocol::Http, vec!["/healthz".into()]);
    set.apply(c).unwrap();
    let mut h = set.handle(None);
    assert!(h.decide(Protocol::Http, "/a", &mut NoHeaders).is_none());
    let mut yes = vec![("X-Canary", "yes")];
    assert!(h.decide(Protocol::Http, "/a", &mut yes).unwrap().error);
    assert!(h.decide(Protocol::Http, "/healthz/live", &mut yes).is_none());
    let mut no = vec![("x-canary", "no")];
    assert!(h.decide(Protocol::Http, "/a", &mut no).is_none());
  }

  #[test]
  fn default_protection_covers_sql_and_grpc() {
    let set = unique_set("protect");
    let mut sql = Policy { name: "s".into(), protocol: Some(Protocol::Sql), target: "all".into(), error_chance: 1.0, ..Policy::default() };
    let mut grpc = sql.clone();
    grpc.name = "g".into();
    grpc.protocol = Some(Protocol::Grpc);
    set.apply(config(vec![sql.clone(), grpc.clone()])).unwrap();
    let mut h = set.handle(None);
    assert!(h.decide(Protocol::Sql, "  create table t (id int)", &mut NoHeaders).is_none());
    assert!(h.decide(Protocol::Sql, "select 1", &mut NoHeaders).is_some());
    assert!(h.decide(Protocol::Grpc, "/grpc.health.v1.Health/Check", &mut NoHeaders).is_none());
    assert!(h.decide(Protocol::Grpc, "/shop.Cart/Add", &mut NoHeaders).is_some());
    sql.name = "s2".into();
    grpc.name = "g2".into();
    let off = Config { enable_default_ignored: false, policies: vec![sql, grpc], ..Config::default() };
    set.apply(off).unwrap();
    assert!(h.decide(Protocol::Sql, "CREATE TABLE t (id int)", &mut NoHeaders).is_some());
  }

  #[test]
  fn warmup_suppresses_faults() {
    let set = unique_set("warmup");
    let mut p = http("p", "all");
    p.error_chance = 1.0;
    set.apply(Config { warmup_duration: Some(3_600_000.0), policies: vec![p.clone()], ..Config::default() }).unwrap();
    let mut h = set.handle(None);
    assert!(h.decide(Protocol::Http, "/", &mut NoHeaders).is_none());
    assert!(h.snapshot().warmup_remaining() > Duration::from_secs(3000));
    set.apply(config(vec![p])).unwrap();
    assert!(h.decide(Protocol::Http, "/", &mut NoHeaders).is_some());
  }

  #[test]
  fn a_bad_update_keeps_the_last_good_set() {
    let set = unique_set("bad");
    let mut p = http("p", "all");
    p.error_chance = 1.0;
    set.apply(config(vec![p])).unwrap();
    let bad = Policy { name: "q".into(), protocol: Some(Protocol::Sql), target: "(".into(), ..Policy::default() };
    let issues = set.apply(config(vec![bad])).unwrap_err();
    assert_eq!(issues[0].path, "policies[0].target");
    assert_eq!(set.snapshot().version, 1);
    assert!(set.handle(None).decide(Protocol::Http, "/", &mut NoHeaders).unwrap().error);
  }

  #[test]
  fn handles_see_updates_from_other_threads() {
    let set = unique_set("threads");
    let mut h = set.handle(Some(1));
    assert!(h.decide(Protocol::Http, "/", &mut NoHeaders).is_none());
    let writer = Arc::clone(&set);
    std::thread::spawn(move || {
      let mut p = http("p", "all");
      p.error_chance = 1.0;
      writer.apply(config(vec![p])).unwrap();
    })
    .join()
    .unwrap();
    assert!(h.decide(Protocol::Http, "/", &mut NoHeaders).unwrap().error);
  }
}
