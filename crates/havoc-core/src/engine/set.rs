//! The named, process-wide [`PolicySet`]: its layers, halt and history, and the one place its
//! effective set is published.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;

use super::flags::{FireFlags, FlagBoard};
use super::layers::{merge_layers, HistoryEntry, Layer, SetState, DEFAULT_LAYER, HISTORY_LIMIT};
use super::lease::{self, LeaseClock};
use super::snapshot::Snapshot;
use crate::policy::{Config, Issue};
use crate::sabotage::{self, Sabotage};

/// Everything writers change, behind one lock so versions follow publication order.
#[derive(Debug, Default)]
struct State {
  layers: BTreeMap<String, Layer>,
  /// Oldest first; the last entry is the set in force (unless halted).
  history: VecDeque<HistoryEntry>,
  halted: bool,
  /// Where [`PolicySet::fire_flags`] callers read which protocols can fire.
  flags: FlagBoard,
}

/// A named policy set shared by every thread of the process.
///
/// Its policies come from named layers; the effective set is their union (layers in name
/// order) and a policy name may be defined in one layer only. Every change of the effective
/// set — layer update, halt, resume, rollback, lease expiry — goes through `PolicySet::publish`.
#[derive(Debug)]
pub struct PolicySet {
  name: String,
  started: Instant,
  pub(super) current: Arc<ArcSwap<Snapshot>>,
  versions: AtomicU64,
  /// When its leases run out; read by every `decide`.
  pub(super) leases: LeaseClock,
  /// Serializes writers.
  state: Mutex<State>,
  /// The CPU and RAM loads of this set's resource policies, reconciled on every publish.
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
      leases: LeaseClock::new(started),
      state: Mutex::new(State::default()),
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

  /// The name it was created with.
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
    let lease = ttl.map(|ttl| lease::lease(layers.get(layer), ttl));
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
    self.leases.next()
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
    let Some((expired, mut layers)) = lease::revert_expired(&state.layers, now) else {
      return 0;
    };
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
    self.leases.update(&state.layers, || {
      let name = self.name.clone();
      // Sets live in the process-wide registry for good, so the watcher can hold one.
      let watcher = move || {
        let set = PolicySet::named(&name);
        set.leases.watch(|| {
          set.expire_leases();
        });
      };
      std::thread::Builder::new().name("havoc-leases".into()).spawn(watcher).is_ok()
    });
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
    state.flags.publish(&snapshot);
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

  /// A cell of "can fire" bits (by [`crate::Protocol::index`]) that every later publish of
  /// this set updates: a clear bit means that `decide` on that protocol returns `None`.
  pub fn fire_flags(&self) -> Arc<FireFlags> {
    let mut state = self.lock();
    let current = self.current.load();
    state.flags.subscribe(&current)
  }

  /// The current snapshot.
  pub fn snapshot(&self) -> Arc<Snapshot> {
    self.current.load_full()
  }
}

fn format_issues(issues: &[Issue]) -> String {
  issues.iter().map(|i| i.to_string()).collect::<Vec<_>>().join("; ")
}

#[cfg(test)]
mod tests {
  use super::*;
  use crate::engine::test_support::{config, erroring, http, names, unique_set};
  use crate::policy::{Policy, Protocol};
  use crate::NoHeaders;

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
}
