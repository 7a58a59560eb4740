//! OS resource sabotage: CPU burned and memory held by native threads, driven by `resource`
//! policies.
//!
//! A [`Sabotage`] reconciler is handed the policies in force (each policy set owns one). It
//! compares the running loads with their resource policies, keyed by policy identity and
//! occurrence (two identical policies are two loads): what is new starts, what is gone
//! stops, what is unchanged keeps running untouched. Nothing runs until the moment the
//! policies are warm; a waiter thread starts the loads then.
//! Stopping never blocks the caller: threads are told to stop and leave within one period.
//!
//! This module knows policies, not how they are stored or published: it depends on
//! [`crate::policy`] only.

mod cpu;
mod ram;
mod stats;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub use ram::{ceiling, Ceiling, DEFAULT_CEILING_MB, MB};
pub use stats::{totals, LoadStatus, ProcessTotals, Status};

use self::stats::LoadStats;
use crate::policy::{Config, Issue, Policy, Protocol};

/// A stop signal threads can check cheaply and sleep on.
#[derive(Debug, Default)]
pub(crate) struct Cancel {
  cancelled: AtomicBool,
  lock: Mutex<()>,
  wake: Condvar,
}

impl Cancel {
  fn cancel(&self) {
    self.cancelled.store(true, Ordering::SeqCst);
    let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
    self.wake.notify_all();
  }

  fn is_cancelled(&self) -> bool {
    self.cancelled.load(Ordering::Relaxed)
  }

  /// Sleeps until `at` or until cancelled, whichever comes first.
  fn sleep_until(&self, at: Instant) {
    let mut guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
    while !self.cancelled.load(Ordering::SeqCst) {
      let left = at.saturating_duration_since(Instant::now());
      if left.is_zero() {
        return;
      }
      guard = self.wake.wait_timeout(guard, left).unwrap_or_else(|p| p.into_inner()).0;
    }
  }
}

/// The kernel's id of the calling thread (what `/proc/self/task/<tid>` names).
fn thread_id() -> i64 {
  // SAFETY: gettid has no preconditions and cannot fail.
  unsafe { libc::syscall(libc::SYS_gettid) }
}

/// Cores this process may run on (affinity and cgroup CPU quota included).
pub fn available_cores() -> usize {
  std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// What one policy asks of this machine: threads and duty cycle, and memory.
fn cpu_threads(policy: &Policy) -> usize {
  if policy.cpu_cores > 0 {
    policy.cpu_cores as usize
  } else {
    available_cores()
  }
}

/// The MB a policy counts for against the ceiling: its cap, or one chunk when it has none
/// (it then grows while the ceiling leaves room).
fn ram_claim_mb(policy: &Policy) -> f64 {
  policy.ram_cap_mb().unwrap_or(policy.ram_chunk_mb)
}

/// What this machine refuses: more cores than it has, RAM caps past the process ceiling.
/// Paths use the canonical field names, like [`Config::check`].
pub fn check(config: &Config) -> Vec<Issue> {
  let mut issues = Vec::new();
  let cores = available_cores();
  let ceiling = ceiling();
  let ceiling_mb = ceiling.bytes as f64 / MB as f64;
  let mut total_mb = 0.0;
  for (i, policy) in config.policies.iter().enumerate() {
    if policy.protocol() != Protocol::Resource {
      continue;
    }
    if policy.cpu_cores as usize > cores {
      issues.push(Issue {
        path: format!("policies[{i}].cpuCores"),
        message: format!("asks for {} cores but this process can use {cores}", policy.cpu_cores),
      });
    }
    if !policy.leaks_ram() {
      continue;
    }
    let claim = ram_claim_mb(policy);
    let field = if policy.ram_cap_mb().is_some() { "ramMaxMb" } else { "ramChunkMb" };
    let before = total_mb;
    total_mb += claim;
    if total_mb > ceiling_mb {
      let message = if before == 0.0 {
        format!("{claim} MB is over the process ceiling of {ceiling_mb:.0} MB ({})", ceiling.reason)
      } else {
        format!("brings the RAM of the resource policies to {total_mb} MB, over the process ceiling of {ceiling_mb:.0} MB ({})", ceiling.reason)
      };
      issues.push(Issue { path: format!("policies[{i}].{field}"), message });
    }
  }
  issues
}

/// A running (or finished) load: one resource policy acted out.
#[derive(Debug)]
struct Load {
  policy: String,
  identity: u64,
  /// Process-wide sequence number of this start: a restart gets a new one.
  serial: u64,
  cancel: Arc<Cancel>,
  stats: Arc<LoadStats>,
}

impl Load {
  fn start(policy: &Policy, identity: u64) -> Load {
    static SERIALS: AtomicU64 = AtomicU64::new(1);
    let cancel = Arc::new(Cancel::default());
    let stats = Arc::new(LoadStats::default());
    let now = Instant::now();
    let until = |ms: f64| (ms > 0.0).then(|| now + Duration::from_secs_f64(ms / 1000.0));
    if policy.burns_cpu() {
      cpu::start(cpu_threads(policy), policy.effective_cpu_percent(), until(policy.cpu_duration_ms()), &cancel, &stats);
    }
    if policy.leaks_ram() {
      let leak = ram::Leak {
        chunk: (policy.ram_chunk_mb * MB as f64) as u64,
        interval: Duration::from_secs_f64(if policy.ram_interval > 0.0 { policy.ram_interval } else { 1000.0 } / 1000.0),
        cap: policy.ram_cap_mb().map(|mb| (mb * MB as f64) as u64),
        deadline: until(policy.duration),
      };
      ram::start(leak, &cancel, &stats);
    }
    Load { policy: policy.name.clone(), identity, serial: SERIALS.fetch_add(1, Ordering::Relaxed), cancel, stats }
  }

  fn stop(&self) {
    self.cancel.cancel();
  }

  /// Whether every thread of the load has left (and its memory is unmapped).
  fn is_finished(&self) -> bool {
    self.stats.cpu_threads.load(Ordering::SeqCst) == 0 && !self.stats.ram_running.load(Ordering::SeqCst)
  }

  fn status(&self) -> LoadStatus {
    let cpu_threads = self.stats.cpu_threads.load(Ordering::SeqCst);
    LoadStatus {
      policy: self.policy.clone(),
      identity: self.identity,
      serial: self.serial,
      cpu_threads,
      cpu_percent: if cpu_threads > 0 { self.stats.cpu_percent.load(Ordering::Relaxed) } else { 0 },
      thread_ids: self.stats.thread_ids.lock().unwrap_or_else(|p| p.into_inner()).clone(),
      ram_bytes_resident: self.stats.ram_resident.load(Ordering::Relaxed),
      ram_bytes_target: self.stats.ram_target.load(Ordering::Relaxed),
    }
  }
}

/// Identity of a policy and which occurrence of that identity it is.
type LoadKey = (u64, u32);

#[derive(Debug, Default)]
struct State {
  loads: HashMap<LoadKey, Load>,
  /// Loads told to stop, until their threads have left.
  stopping: Vec<Load>,
  /// Published policies waiting for the end of their warmup.
  pending: Option<Pending>,
  /// Whether a warmup waiter thread is alive.
  waiter: bool,
}

/// Resource policies published before they are warm.
#[derive(Debug)]
struct Pending {
  policies: Vec<Policy>,
  warm_at: Instant,
}

/// The reconciler of one policy set.
#[derive(Debug, Default)]
pub struct Sabotage {
  shared: Arc<(Mutex<State>, Condvar)>,
}

impl Sabotage {
  fn state(&self) -> MutexGuard<'_, State> {
    self.shared.0.lock().unwrap_or_else(|p| p.into_inner())
  }

  /// Brings the running loads in line with the resource policies among `policies` (the
  /// others are ignored). With `warm_at` still ahead, every load stops now and the wanted
  /// ones start at `warm_at` (unless another publication or [`Sabotage::stop_all`] comes first).
  pub fn publish(&self, policies: &[Policy], warm_at: Option<Instant>) {
    let mut state = self.state();
    let Some(warm_at) = warm_at.filter(|&at| Instant::now() < at) else {
      state.pending = None;
      reconcile(&mut state, policies);
      return;
    };
    reconcile(&mut state, &[]);
    let policies = policies.iter().filter(|p| wants_load(p)).cloned().collect();
    state.pending = Some(Pending { policies, warm_at });
    self.shared.1.notify_all();
    if !state.waiter {
      state.waiter = true;
      let shared = Arc::clone(&self.shared);
      let spawned = std::thread::Builder::new().name("havoc-warmup".into()).spawn(move || wait_for_warmup(&shared));
      if spawned.is_err() {
        // Without a waiter the set stays quiet until the next publication.
        state.waiter = false;
      }
    }
  }

  /// Stops every load (and forgets a pending warmup). The next publication starts the
  /// policies it holds afresh.
  pub fn stop_all(&self) {
    let mut state = self.state();
    state.pending = None;
    reconcile(&mut state, &[]);
  }

  /// What this set's loads are doing now, see [`Status`].
  pub fn status(&self) -> Status {
    let mut state = self.state();
    state.stopping.retain(|load| !load.is_finished());
    let mut loads: Vec<LoadStatus> = state.loads.values().map(Load::status).collect();
    loads.sort_by_key(|l| l.serial);
    let stopping: Vec<LoadStatus> = state.stopping.iter().map(Load::status).collect();
    let all = || loads.iter().chain(&stopping);
    Status {
      cpu_threads: all().map(|l| l.cpu_threads).sum(),
      cpu_percent: all().map(|l| l.cpu_threads * l.cpu_percent).sum(),
      ram_bytes_resident: all().map(|l| l.ram_bytes_resident).sum(),
      // What stopping loads held is going, not a target.
      ram_bytes_target: loads.iter().map(|l| l.ram_bytes_target).sum(),
      loads,
    }
  }
}

fn wait_for_warmup(shared: &(Mutex<State>, Condvar)) {
  let (lock, wake) = shared;
  let mut state = lock.lock().unwrap_or_else(|p| p.into_inner());
  loop {
    let Some(warm_at) = state.pending.as_ref().map(|p| p.warm_at) else {
      state.waiter = false;
      return;
    };
    let left = warm_at.saturating_duration_since(Instant::now());
    if left.is_zero() {
      let pending = state.pending.take().expect("checked above");
      reconcile(&mut state, &pending.policies);
    } else {
      // Woken early by a newer publication or a stop; either way, look again.
      state = wake.wait_timeout(state, left.max(Duration::from_millis(1))).unwrap_or_else(|p| p.into_inner()).0;
    }
  }
}

/// Whether `policy` is acted out as a load.
fn wants_load(policy: &Policy) -> bool {
  policy.protocol() == Protocol::Resource && policy.is_active()
}

/// Starts what `policies` have and `state` lacks, stops what they no longer have.
fn reconcile(state: &mut State, policies: &[Policy]) {
  let mut wanted: HashMap<LoadKey, &Policy> = HashMap::new();
  let mut occurrences: HashMap<u64, u32> = HashMap::new();
  for policy in policies.iter().filter(|p| wants_load(p)) {
    let identity = policy.identity();
    let seen = occurrences.entry(identity).or_insert(0);
    wanted.insert((identity, *seen), policy);
    *seen += 1;
  }
  state.stopping.retain(|load| !load.is_finished());
  let gone: Vec<LoadKey> = state.loads.keys().filter(|key| !wanted.contains_key(key)).copied().collect();
  for key in gone {
    if let Some(load) = state.loads.remove(&key) {
      load.stop();
      state.stopping.push(load);
    }
  }
  for (key, policy) in wanted {
    state.loads.entry(key).or_insert_with(|| Load::start(policy, key.0));
  }
}

/// Serializes the unit tests that hold memory, so ceiling arithmetic stays predictable.
#[cfg(test)]
pub(crate) static TEST_RAM: Mutex<()> = Mutex::new(());

#[cfg(test)]
mod tests {
  use super::*;
  use crate::sabotage::test_support::eventually;

  fn resource(name: &str) -> Policy {
    Policy { name: name.into(), protocol: Some(Protocol::Resource), target: "all".into(), ..Policy::default() }
  }

  /// When a set created now with a warmup of `ms` is warm.
  fn warm_in(ms: u64) -> Option<Instant> {
    Some(Instant::now() + Duration::from_millis(ms))
  }

  fn cpu(name: &str, percent: u32) -> Policy {
    Policy { cpu_cores: 1, cpu_percent: percent, ..resource(name) }
  }

  #[test]
  fn unchanged_policies_keep_running_and_changed_ones_restart_alone() {
    let sabotage = Sabotage::default();
    sabotage.publish(&[cpu("a", 5), cpu("b", 5)], None);
    let before = sabotage.status();
    assert_eq!(before.loads.len(), 2);
    let serial = |s: &Status, name: &str| s.loads.iter().find(|l| l.policy == name).map(|l| l.serial);
    sabotage.publish(&[cpu("a", 5), cpu("b", 6)], None);
    let after = sabotage.status();
    assert_eq!(serial(&after, "a"), serial(&before, "a"));
    assert_ne!(serial(&after, "b"), serial(&before, "b"));
    assert_eq!(after.loads.len(), 2);
    sabotage.stop_all();
    assert!(sabotage.status().loads.is_empty());
  }

  #[test]
  fn identical_policies_are_two_loads() {
    // Names are unique within a config, but two sets (or a caller) may hand identical policies.
    let mut state = State::default();
    reconcile(&mut state, &[cpu("x", 5), cpu("x", 5)]);
    assert_eq!(state.loads.len(), 2);
    reconcile(&mut state, &[cpu("x", 5)]);
    assert_eq!(state.loads.len(), 1, "removing one twin leaves the other running");
    reconcile(&mut state, &[]);
    assert!(state.loads.is_empty());
  }

  #[test]
  fn nothing_runs_during_warmup_and_loads_start_when_it_ends() {
    let sabotage = Sabotage::default();
    sabotage.publish(&[cpu("w", 5)], warm_in(150));
    assert!(sabotage.status().loads.is_empty());
    assert!(eventually(|| sabotage.status().cpu_threads == 1));
    sabotage.stop_all();
    assert!(eventually(|| sabotage.status().cpu_threads == 0));
  }

  #[test]
  fn stop_all_cancels_a_pending_warmup() {
    let sabotage = Sabotage::default();
    sabotage.publish(&[cpu("p", 5)], warm_in(50));
    sabotage.stop_all();
    std::thread::sleep(Duration::from_millis(120));
    assert!(sabotage.status().loads.is_empty());
  }

  #[test]
  fn ram_loads_report_resident_and_target_bytes_and_free_on_stop() {
    let _serial = TEST_RAM.lock().unwrap_or_else(|p| p.into_inner());
    let sabotage = Sabotage::default();
    let policy = Policy { ram_max_mb: 8.0, ram_chunk_mb: 4.0, ram_interval: 1.0, ..resource("r") };
    sabotage.publish(&[policy], None);
    assert!(eventually(|| sabotage.status().ram_bytes_resident == 8 * MB));
    assert_eq!(sabotage.status().ram_bytes_target, 8 * MB);
    let process = totals();
    assert!(process.ram_bytes >= 8 * MB && process.ram_starts >= 1);
    sabotage.stop_all();
    assert!(sabotage.status().loads.is_empty());
    assert!(eventually(|| sabotage.status().ram_bytes_resident == 0), "counted until unmapped");
  }

  #[test]
  fn check_refuses_too_many_cores_and_ram_over_the_ceiling() {
    let cores = available_cores() as u32;
    let ceiling_mb = (ceiling().bytes / MB) as f64;
    let config = Config {
      policies: vec![
        Policy { cpu_cores: cores + 1, ..resource("c") },
        Policy { ram_max_mb: ceiling_mb / 2.0 + 1.0, ..resource("r1") },
        Policy { ram_max_mb: ceiling_mb / 2.0 + 1.0, ..resource("r2") },
        Policy { cpu_cores: cores, ram_chunk_mb: 1.0, ..resource("ok") },
      ],
      ..Config::default()
    };
    let issues = check(&config);
    let paths: Vec<&str> = issues.iter().map(|i| i.path.as_str()).collect();
    assert_eq!(paths, ["policies[0].cpuCores", "policies[2].ramMaxMb", "policies[3].ramChunkMb"]);
    assert!(issues[1].message.contains("over the process ceiling"), "{}", issues[1].message);
  }
}

/// Polling for the tests of this module and its children: loads start and stop on their own threads.
#[cfg(test)]
pub(crate) mod test_support {
  use std::time::{Duration, Instant};

  /// Whether `what` becomes true within 10 s (polled every 5 ms).
  pub(crate) fn eventually(what: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !what() {
      if Instant::now() > deadline {
        return false;
      }
      std::thread::sleep(Duration::from_millis(5));
    }
    true
  }
}
