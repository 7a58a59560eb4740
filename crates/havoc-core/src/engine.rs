//! Named, process-global policy sets and the per-request decision.
//!
//! A [`PolicySet`] holds an immutable [`Snapshot`] behind an `ArcSwap`: updates swap the
//! whole compiled set at once, readers never lock. Every thread that asks for a set by name
//! gets the same one, so worker threads share policies without passing messages.
//! A [`Handle`] is one thread's view: a cached pointer to the current snapshot and its own
//! random number generator.
//!
//! A set's policies come from named layers (file, control API, Redis channel); it keeps a
//! history of its effective sets for rollback, can be halted, and reverts leased layers by
//! itself when their time runs out.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
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
  /// Published by [`PolicySet::halt`]: the layers are kept but no policy is in force.
  pub halted: bool,
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
      halted: false,
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

/// The layer `PolicySet::apply` writes: the application's own configuration (its file, or
/// what it passes to `Engine.update`).
pub const DEFAULT_LAYER: &str = "file";
/// How many effective sets [`PolicySet::rollback`] can go back through.
pub const HISTORY_LIMIT: usize = 20;
/// `next_expiry` when no layer has a lease.
const NO_LEASE: u64 = u64::MAX;

/// A time limit on a layer: when it runs out, the layer reverts to what it held before the
/// leased update (a dead-man's switch that needs no client to stay alive).
#[derive(Clone, Debug)]
pub struct Lease {
  pub ttl: Duration,
  pub expires_at: Instant,
  /// What the layer reverts to; `None` removes the layer.
  pub revert_to: Option<Arc<Config>>,
}

/// One source of policies (file, control API, Redis channel, ...).
#[derive(Clone, Debug)]
pub struct Layer {
  pub config: Arc<Config>,
  pub lease: Option<Lease>,
}

/// One published effective set, as [`PolicySet::rollback`] restores it.
#[derive(Clone, Debug)]
pub struct HistoryEntry {
  pub version: u64,
  /// What published it, e.g. `apply layer "api"`.
  pub cause: String,
  pub layers: BTreeMap<String, Layer>,
  pub policies: usize,
}

/// Everything writers change, behind one lock so versions follow publication order.
#[derive(Debug, Default)]
struct State {
  layers: BTreeMap<String, Layer>,
  /// Oldest first; the last entry is the set in force (unless halted).
  history: VecDeque<HistoryEntry>,
  halted: bool,
}

/// A read-only view of a set's layers, leases, halt flag and history.
#[derive(Clone, Debug)]
pub struct SetState {
  pub version: u64,
  pub halted: bool,
  pub layers: BTreeMap<String, Layer>,
  pub history: Vec<HistoryEntry>,
}

/// A named policy set shared by every thread of the process.
///
/// Its policies come from named layers; the effective set is their union (layers in name
/// order) and a policy name may be defined in one layer only. Every change of the effective
/// set — layer update, halt, resume, rollback, lease expiry — goes through [`PolicySet::publish`].
#[derive(Debug)]
pub struct PolicySet {
  name: String,
  started: Instant,
  current: Arc<ArcSwap<Snapshot>>,
  versions: AtomicU64,
  /// Nanoseconds after `started` when the earliest lease runs out, [`NO_LEASE`] if none:
  /// one relaxed load tells `decide` that there is nothing to check.
  next_expiry: AtomicU64,
  /// Serializes writers.
  state: Mutex<State>,
  /// The CPU and RAM loads of this set's resource policies, reconciled on every publish.
  sabotage: Sabotage,
  /// Wakes the lease watcher when `next_expiry` changes; the flag says it was started.
  lease_watch: (Mutex<bool>, Condvar),
}

impl PolicySet {
  fn new(name: &str) -> PolicySet {
    let started = Instant::now();
    PolicySet {
      name: name.to_string(),
      started,
      current: Arc::new(ArcSwap::from_pointee(Snapshot::empty(started))),
      versions: AtomicU64::new(0),
      next_expiry: AtomicU64::new(NO_LEASE),
      state: Mutex::new(State::default()),
      sabotage: Sabotage::default(),
      lease_watch: (Mutex::new(false), Condvar::new()),
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

  fn lock(&self) -> std::sync::MutexGuard<'_, State> {
    self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
  }

  /// Replaces the [`DEFAULT_LAYER`] with `config` and publishes. On error nothing changes.
  pub fn apply(&self, config: Config) -> Result<Arc<Snapshot>, Vec<Issue>> {
    self.apply_layer(DEFAULT_LAYER, config, None)
  }

  /// Replaces layer `layer` with `config` (and lifts a halt). With a `ttl` the layer reverts
  /// by itself when the lease runs out unless [`PolicySet::renew`] extends it. A policy name
  /// already defined in another layer refuses the update; on error nothing changes.
  pub fn apply_layer(&self, layer: &str, config: Config, ttl: Option<Duration>) -> Result<Arc<Snapshot>, Vec<Issue>> {
    if layer.is_empty() {
      return Err(vec![Issue { path: String::new(), message: "layer name must not be empty".into() }]);
    }
    let mut state = self.lock();
    self.expire_due(&mut state, Instant::now());
    let mut layers = state.layers.clone();
    let lease = ttl.map(|ttl| {
      let previous = layers.get(layer);
      // A leased update over a leased update still reverts to the state before either.
      let revert_to = match previous {
        Some(Layer { lease: Some(lease), .. }) => lease.revert_to.clone(),
        Some(previous) => Some(Arc::clone(&previous.config)),
        None => None,
      };
      Lease { ttl, expires_at: Instant::now() + ttl, revert_to }
    });
    layers.insert(layer.to_string(), Layer { config: Arc::new(config), lease });
    self.publish(&mut state, layers, false, Some(format!("apply layer {layer:?}")), Some(layer))
  }

  /// Removes layer `layer` (and lifts a halt). Returns whether it existed.
  pub fn remove_layer(&self, layer: &str) -> bool {
    let mut state = self.lock();
    self.expire_due(&mut state, Instant::now());
    let mut layers = state.layers.clone();
    if layers.remove(layer).is_none() {
      return false;
    }
    self.publish(&mut state, layers, false, Some(format!("remove layer {layer:?}")), None).expect("removing a layer cannot conflict");
    true
  }

  /// Extends the lease of `layer` by `ttl` from now (default: its original TTL). Returns the
  /// new deadline.
  pub fn renew(&self, layer: &str, ttl: Option<Duration>) -> Result<Instant, String> {
    let mut state = self.lock();
    self.expire_due(&mut state, Instant::now());
    let lease = state
      .layers
      .get_mut(layer)
      .ok_or_else(|| format!("layer {layer:?} does not exist (its lease may have run out already)"))?
      .lease
      .as_mut()
      .ok_or_else(|| format!("layer {layer:?} has no lease to renew"))?;
    if let Some(ttl) = ttl {
      lease.ttl = ttl;
    }
    lease.expires_at = Instant::now() + lease.ttl;
    let deadline = lease.expires_at;
    // The history keeps the layers as published; its top entry follows the renewal so a
    // rollback to it does not resurrect the old deadline.
    let layers = state.layers.clone();
    if let Some(top) = state.history.back_mut() {
      top.layers = layers;
    }
    self.update_next_expiry(&state);
    Ok(deadline)
  }

  /// Turns every fault of every layer off until the next update, rollback or [`PolicySet::resume`].
  pub fn halt(&self) -> Arc<Snapshot> {
    let mut state = self.lock();
    let layers = state.layers.clone();
    self.publish(&mut state, layers, true, None, None).expect("halting cannot conflict")
  }

  /// Puts the layers back in force after a halt.
  pub fn resume(&self) -> Arc<Snapshot> {
    let mut state = self.lock();
    self.expire_due(&mut state, Instant::now());
    let layers = state.layers.clone();
    self.publish(&mut state, layers, false, None, None).expect("the layers in force compiled before")
  }

  /// Goes back to the previous effective set (its layers and their leases), lifting a halt.
  pub fn rollback(&self) -> Result<Arc<Snapshot>, String> {
    let mut state = self.lock();
    if state.history.len() < 2 {
      return Err("there is no earlier policy set to roll back to".into());
    }
    state.history.pop_back();
    let previous = state.history.back().expect("checked above").layers.clone();
    let snapshot = self.publish(&mut state, previous, false, None, None).map_err(|issues| format_issues(&issues))?;
    // Leases restored with the layers may have run out meanwhile.
    self.expire_due(&mut state, Instant::now());
    Ok(snapshot)
  }

  /// Reverts every layer whose lease has run out. Returns how many did.
  pub fn expire_leases(&self) -> usize {
    let mut state = self.lock();
    self.expire_due(&mut state, Instant::now())
  }

  /// Time until the earliest lease runs out, `None` when no layer has one.
  pub fn next_lease_expiry(&self) -> Option<Duration> {
    let at = self.next_expiry.load(Ordering::Relaxed);
    (at != NO_LEASE).then(|| Duration::from_nanos(at).saturating_sub(self.started.elapsed()))
  }

  /// Whether a lease has run out and not been reverted yet (cheap when there is no lease).
  #[inline]
  fn lease_due(&self) -> bool {
    let at = self.next_expiry.load(Ordering::Relaxed);
    at != NO_LEASE && self.started.elapsed().as_nanos() >= u128::from(at)
  }

  /// Layers, leases, halt flag and history.
  pub fn state(&self) -> SetState {
    let state = self.lock();
    SetState {
      version: self.versions.load(Ordering::Relaxed),
      halted: state.halted,
      layers: state.layers.clone(),
      history: state.history.iter().cloned().collect(),
    }
  }

  fn expire_due(&self, state: &mut State, now: Instant) -> usize {
    let expired: Vec<String> = state
      .layers
      .iter()
      .filter(|(_, layer)| layer.lease.as_ref().is_some_and(|lease| lease.expires_at <= now))
      .map(|(name, _)| name.clone())
      .collect();
    if expired.is_empty() {
      return 0;
    }
    let mut layers = state.layers.clone();
    for name in &expired {
      let lease = layers.remove(name).and_then(|layer| layer.lease).expect("expired layers have a lease");
      if let Some(config) = lease.revert_to {
        layers.insert(name.clone(), Layer { config, lease: None });
      }
    }
    let cause = format!("lease expired on layer(s) {}", expired.join(", "));
    let halted = state.halted;
    if self.publish(state, layers.clone(), halted, Some(cause.clone()), None).is_err() {
      // The reverted content now conflicts with another layer (or no longer compiles):
      // drop those layers entirely — a dead-man's switch must always end the chaos.
      for name in &expired {
        layers.remove(name);
      }
      self.publish(state, layers, halted, Some(cause), None).expect("removing layers cannot conflict");
    }
    expired.len()
  }

  fn update_next_expiry(&self, state: &State) {
    let next = state
      .layers
      .values()
      .filter_map(|layer| layer.lease.as_ref())
      .map(|lease| lease.expires_at.saturating_duration_since(self.started).as_nanos().min(u128::from(NO_LEASE - 1)) as u64)
      .min()
      .unwrap_or(NO_LEASE);
    // Stored and signalled under the watcher's mutex, so the watcher cannot miss a change
    // between reading `next_expiry` and going to sleep.
    let mut started = self.lease_watch.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    self.next_expiry.store(next, Ordering::Relaxed);
    if next != NO_LEASE && !*started {
      *started = true;
      let name = self.name.clone();
      // Sets live in the process-wide registry for good, so the watcher can hold one.
      let spawned = std::thread::Builder::new().name("havoc-leases".into()).spawn(move || PolicySet::named(&name).watch_leases());
      if spawned.is_err() {
        *started = false; // no thread to be had: `decide` still expires leases lazily
      }
    }
    self.lease_watch.1.notify_all();
  }

  /// The lease watcher: a native thread that reverts leased layers when they run out, so the
  /// dead-man's switch holds with no traffic, no JS timer and even a blocked event loop.
  fn watch_leases(&self) {
    let (lock, wake) = &self.lease_watch;
    let mut guard = lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    loop {
      let at = self.next_expiry.load(Ordering::Relaxed);
      if at == NO_LEASE {
        guard = wake.wait(guard).unwrap_or_else(|poisoned| poisoned.into_inner());
        continue;
      }
      let now = self.started.elapsed().as_nanos().min(u128::from(NO_LEASE - 1)) as u64;
      if now < at {
        guard = wake.wait_timeout(guard, Duration::from_nanos(at - now)).unwrap_or_else(|poisoned| poisoned.into_inner()).0;
        continue;
      }
      // Expiring publishes, which signals this mutex: release it first.
      drop(guard);
      self.expire_leases();
      guard = lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    }
  }

  /// The one place an effective set is published: merges `layers`, compiles, swaps the
  /// snapshot in for every thread, and records `cause` in the history (`None`: halt, resume
  /// and rollback, which move within it). `changed` names the layer being updated, for
  /// conflict messages. On error nothing changes.
  fn publish(
    &self,
    state: &mut State,
    layers: BTreeMap<String, Layer>,
    halted: bool,
    cause: Option<String>,
    changed: Option<&str>,
  ) -> Result<Arc<Snapshot>, Vec<Issue>> {
    let mut effective = merge_layers(&layers, changed)?;
    let policies = effective.policies.len();
    if halted {
      effective.policies.clear();
    }
    let version = self.versions.load(Ordering::Relaxed) + 1;
    let mut snapshot = Snapshot::compile(effective, version, self.started)?;
    snapshot.halted = halted;
    let snapshot = Arc::new(snapshot);
    self.versions.store(version, Ordering::Relaxed);
    self.current.store(Arc::clone(&snapshot));
    // A halted or lease-reverted set holds fewer resource policies: reconciling stops them.
    self.sabotage.publish(&snapshot.config.policies, snapshot.warm_at);
    state.layers = layers;
    state.halted = halted;
    if let Some(cause) = cause {
      state.history.push_back(HistoryEntry { version, cause, layers: state.layers.clone(), policies });
      if state.history.len() > HISTORY_LIMIT {
        state.history.pop_front();
      }
    }
    self.update_next_expiry(state);
    Ok(snapshot)
  }

  /// Stops every CPU and RAM load of this set at once (`engine.close()`; halt and lease expiry
  /// stop theirs by publishing a set without them);
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
      decided_on: None,
    }
  }
}

fn format_issues(issues: &[Issue]) -> String {
  issues.iter().map(|i| i.to_string()).collect::<Vec<_>>().join("; ")
}

/// The effective configuration of `layers`: the union of their policies (layers in name
/// order), the union of their ignored prefixes, the longest warmup, default protection on if
/// any layer wants it, the first seed. A name in two layers is an issue reported against
/// the `changed` layer's policy (or the later layer's).
pub fn merge_layers(layers: &BTreeMap<String, Layer>, changed: Option<&str>) -> Result<Config, Vec<Issue>> {
  let mut merged = Config { enable_default_ignored: layers.is_empty(), ..Config::default() };
  let mut owners: HashMap<&str, &str> = HashMap::new();
  let mut issues = Vec::new();
  for (layer_name, layer) in layers {
    let config = &layer.config;
    merged.enable_default_ignored |= config.enable_default_ignored;
    merged.warmup_duration = match (merged.warmup_duration, config.warmup_duration) {
      (Some(a), Some(b)) => Some(a.max(b)),
      (a, b) => a.or(b),
    };
    merged.seed = merged.seed.or(config.seed);
    for (protocol, prefixes) in &config.ignored_commands {
      let into = merged.ignored_commands.entry(*protocol).or_default();
      for prefix in prefixes {
        if !into.contains(prefix) {
          into.push(prefix.clone());
        }
      }
    }
    for policy in &config.policies {
      if let Some(other) = owners.insert(&policy.name, layer_name) {
        let (here, there) = if changed == Some(other) { (other, layer_name.as_str()) } else { (layer_name.as_str(), other) };
        let index = layers[here].config.policies.iter().position(|p| p.name == policy.name).unwrap_or(0);
        issues.push(Issue {
          path: format!("policies[{index}].name"),
          message: format!(
            "policy {:?} of layer {here:?} is already defined in layer {there:?}; a policy name may be defined in one layer only",
            policy.name
          ),
        });
      }
    }
    merged.policies.extend(config.policies.iter().cloned());
  }
  if merged.policies.len() > crate::policy::MAX_POLICIES {
    issues.push(Issue {
      path: "policies".into(),
      message: format!("the layers together hold {} policies; at most {} are allowed", merged.policies.len(), crate::policy::MAX_POLICIES),
    });
  }
  if issues.is_empty() {
    Ok(merged)
  } else {
    Err(issues)
  }
}

/// One thread's view of a [`PolicySet`]: a cached snapshot pointer and a private RNG, so
/// that deciding costs one atomic load and no contention with other threads.
pub struct Handle {
  set: Arc<PolicySet>,
  cache: Cache<Arc<ArcSwap<Snapshot>>, Arc<Snapshot>>,
  rng: fastrand::Rng,
  /// The snapshot the last decision that fired was made on. Another thread may publish
  /// between a decision and the moment its caller reads the policy it names; the index
  /// must be read against this snapshot, never against whatever is current by then.
  decided_on: Option<Arc<Snapshot>>,
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

  /// Decides the faults for one request against the current snapshot. A decision's
  /// `policy` indexes [`Handle::decided_on`], which this call sets.
  pub fn decide(&mut self, protocol: Protocol, target: &str, headers: &mut dyn Headers) -> Option<Decision> {
    if self.set.lease_due() {
      self.set.expire_leases();
    }
    let snapshot = self.cache.load();
    let decision = snapshot.decide(protocol, target, headers, &mut self.rng)?;
    if !self.decided_on.as_ref().is_some_and(|last| Arc::ptr_eq(last, snapshot)) {
      // A reference count, not an allocation; only when the set changed since the last fault.
      self.decided_on = Some(Arc::clone(snapshot));
    }
    Some(decision)
  }

  /// The snapshot the last decision that fired was made on: the one its `policy` index
  /// refers to, whatever has been published since. `None` before the first.
  pub fn decided_on(&self) -> Option<&Arc<Snapshot>> {
    self.decided_on.as_ref()
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
  fn a_decision_is_read_against_the_snapshot_it_was_made_on() {
    // Two sets that hold the same names in opposite slots, published with halts and resumes
    // from another thread while this one decides: every decision's index must name, in the
    // snapshot `decided_on` returns, the policy whose target was requested.
    let set = unique_set("decided-on");
    let forward: Vec<Policy> = (0..20)
      .map(|i| {
        let mut p = http(&format!("p{i}"), &format!("/a/{i}"));
        p.error_chance = 1.0;
        p.error_code = 500 + i;
        p
      })
      .collect();
    let reversed: Vec<Policy> = forward.iter().rev().cloned().collect();
    set.apply(config(forward.clone())).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
      let (set, stop) = (Arc::clone(&set), Arc::clone(&stop));
      std::thread::spawn(move || {
        let mut rounds = 0u32;
        while !stop.load(Ordering::Relaxed) || rounds < 200 {
          set.apply(config(if rounds % 2 == 0 { reversed.clone() } else { forward.clone() })).unwrap();
          set.halt();
          set.resume();
          rounds += 1;
        }
      })
    };
    let mut handle = set.handle(Some(3));
    let mut fired = 0;
    for n in 0..200_000u32 {
      let i = n % 20;
      if let Some(d) = handle.decide(Protocol::Http, &format!("/a/{i}"), &mut NoHeaders) {
        let policy = &handle.decided_on().expect("set by a firing decision").policies[d.policy].policy;
        assert_eq!((policy.name.as_str(), policy.error_code), (format!("p{i}").as_str(), 500 + i));
        fired += 1;
      }
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    assert!(fired > 0, "some decisions were made between halts");
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

  fn erroring(name: &str) -> Policy {
    let mut p = http(name, "all");
    p.error_chance = 1.0;
    p
  }

  fn names(set: &PolicySet) -> Vec<String> {
    set.snapshot().config.policies.iter().map(|p| p.name.clone()).collect()
  }

  #[test]
  fn layers_are_united_and_a_name_in_two_layers_is_refused() {
    let set = unique_set("layers");
    set.apply(config(vec![http("from-file", "/f")])).unwrap();
    set.apply_layer("api", config(vec![http("from-api", "/a")]), None).unwrap();
    assert_eq!(names(&set), ["from-api", "from-file"]);
    let issues = set.apply_layer("api", config(vec![http("x", "/x"), http("from-file", "/g")]), None).unwrap_err();
    assert_eq!(issues.len(), 1);
    assert_eq!(issues[0].path, "policies[1].name");
    assert!(issues[0].message.contains(r#"layer "api" is already defined in layer "file""#), "{}", issues[0].message);
    // Refused: nothing changed.
    assert_eq!(names(&set), ["from-api", "from-file"]);
    let issues = set.apply(config(vec![http("from-api", "/f")])).unwrap_err();
    assert!(issues[0].message.contains(r#"layer "file" is already defined in layer "api""#), "{}", issues[0].message);
    assert!(set.remove_layer("api"));
    assert!(!set.remove_layer("api"));
    assert_eq!(names(&set), ["from-file"]);
  }

  #[test]
  fn merged_settings_take_the_safer_side() {
    let set = unique_set("merge");
    let mut file = config(vec![]);
    file.enable_default_ignored = false;
    file.warmup_duration = Some(10.0);
    file.ignored_commands.insert(Protocol::Http, vec!["/healthz".into()]);
    let mut api = config(vec![]);
    api.warmup_duration = Some(20.0);
    api.ignored_commands.insert(Protocol::Http, vec!["/healthz".into(), "/ready".into()]);
    set.apply(file).unwrap();
    set.apply_layer("api", api, None).unwrap();
    let merged = &set.snapshot().config;
    assert!(merged.enable_default_ignored);
    assert_eq!(merged.warmup_duration, Some(20.0));
    assert_eq!(merged.ignored_commands[&Protocol::Http], ["/healthz", "/ready"]);
  }

  #[test]
  fn halt_turns_everything_off_until_resume_or_update() {
    let set = unique_set("halt");
    set.apply(config(vec![erroring("a")])).unwrap();
    set.apply_layer("api", config(vec![erroring("b")]), None).unwrap();
    let mut h = set.handle(None);
    assert!(h.decide(Protocol::Http, "/", &mut NoHeaders).is_some());
    assert!(set.halt().halted);
    assert!(h.decide(Protocol::Http, "/", &mut NoHeaders).is_none());
    assert_eq!(set.state().layers.len(), 2, "halt keeps the layers");
    set.resume();
    assert!(h.decide(Protocol::Http, "/", &mut NoHeaders).is_some());
    set.halt();
    set.apply_layer("api", config(vec![erroring("c")]), None).unwrap();
    assert!(!set.snapshot().halted);
    assert!(h.decide(Protocol::Http, "/", &mut NoHeaders).is_some());
  }

  #[test]
  fn rollback_restores_the_previous_effective_set() {
    let set = unique_set("rollback");
    assert!(set.rollback().is_err());
    set.apply(config(vec![http("one", "/1")])).unwrap();
    set.apply_layer("api", config(vec![http("two", "/2")]), None).unwrap();
    set.apply(config(vec![http("three", "/3")])).unwrap();
    assert_eq!(names(&set), ["two", "three"]);
    set.rollback().unwrap();
    assert_eq!(names(&set), ["two", "one"]);
    set.rollback().unwrap();
    assert_eq!(names(&set), ["one"]);
    assert!(set.rollback().is_err());
    assert_eq!(set.state().history.len(), 1);
  }

  #[test]
  fn history_keeps_the_last_twenty_sets() {
    let set = unique_set("history");
    for i in 0..30 {
      set.apply(config(vec![http(&format!("p{i}"), "/")])).unwrap();
    }
    let state = set.state();
    assert_eq!(state.history.len(), HISTORY_LIMIT);
    assert_eq!(state.history[0].layers[DEFAULT_LAYER].config.policies[0].name, "p10");
    for _ in 0..HISTORY_LIMIT - 1 {
      set.rollback().unwrap();
    }
    assert_eq!(names(&set), ["p10"]);
    assert!(set.rollback().is_err());
  }

  #[test]
  fn a_lease_reverts_its_layer_lazily_on_decide() {
    let set = unique_set("lease");
    set.apply_layer("api", config(vec![http("calm", "/calm")]), None).unwrap();
    set.apply_layer("api", config(vec![erroring("chaos")]), Some(Duration::from_millis(30))).unwrap();
    // A second leased update still reverts to the state before the first.
    set.apply_layer("api", config(vec![erroring("more-chaos")]), Some(Duration::from_millis(30))).unwrap();
    let mut h = set.handle(None);
    assert!(h.decide(Protocol::Http, "/", &mut NoHeaders).is_some());
    assert!(set.next_lease_expiry().is_some());
    std::thread::sleep(Duration::from_millis(40));
    assert!(h.decide(Protocol::Http, "/", &mut NoHeaders).is_none());
    assert_eq!(names(&set), ["calm"]);
    assert!(set.next_lease_expiry().is_none());
    assert!(set.state().history.last().unwrap().cause.contains("lease expired"));
  }

  #[test]
  fn renewal_extends_a_lease_and_the_watcher_expires_it_without_traffic() {
    let set = unique_set("renew");
    assert!(set.renew("api", None).unwrap_err().contains("does not exist"));
    set.apply_layer("api", config(vec![erroring("chaos")]), Some(Duration::from_secs(3600))).unwrap();
    // Renewal sets a new deadline from now, with a new TTL when given (shorter here).
    set.renew("api", Some(Duration::from_millis(150))).unwrap();
    assert_eq!(set.expire_leases(), 0, "renewed, not yet due");
    assert!(set.next_lease_expiry().unwrap() <= Duration::from_millis(150));
    // Nobody decides and nobody calls `expire_leases`: the watcher thread reverts the layer.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !names(&set).is_empty() && Instant::now() < deadline {
      std::thread::sleep(Duration::from_millis(10));
    }
    assert!(names(&set).is_empty(), "the lease watcher reverted the layer");
    assert!(set.state().layers.is_empty(), "a layer that did not exist before the lease is removed");
    set.apply_layer("api", config(vec![]), None).unwrap();
    assert!(set.renew("api", None).unwrap_err().contains("no lease"));
  }

  #[test]
  fn a_reverted_layer_that_now_conflicts_is_removed() {
    let set = unique_set("revert-conflict");
    set.apply_layer("api", config(vec![http("shared", "/")]), None).unwrap();
    set.apply_layer("api", config(vec![erroring("chaos")]), Some(Duration::from_millis(20))).unwrap();
    set.apply(config(vec![http("shared", "/")])).unwrap();
    // The lease watcher expires it (an explicit call would do the same, whichever comes first).
    let deadline = Instant::now() + Duration::from_secs(10);
    while set.state().layers.contains_key("api") && Instant::now() < deadline {
      std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(names(&set), ["shared"]);
    assert!(!set.state().layers.contains_key("api"));
  }
}
