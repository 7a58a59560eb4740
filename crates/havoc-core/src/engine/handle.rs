//! One thread's [`Handle`] on a [`PolicySet`].

use std::sync::Arc;

use arc_swap::{ArcSwap, Cache};

use super::decide::{Decision, Headers};
use super::set::PolicySet;
use super::snapshot::Snapshot;
use crate::policy::Protocol;

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

impl PolicySet {
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

impl Handle {
  /// The set this handle views.
  pub fn set(&self) -> &Arc<PolicySet> {
    &self.set
  }

  /// The snapshot decisions are made against (refreshed when the set changed).
  pub fn snapshot(&mut self) -> &Arc<Snapshot> {
    self.cache.load()
  }

  /// Restarts this handle's random number generator from `seed` (reproducible decisions).
  pub fn reseed(&mut self, seed: u64) {
    self.rng.seed(seed);
  }

  /// Decides the faults for one request against the current snapshot. A decision's
  /// `policy` indexes [`Handle::decided_on`], which this call sets.
  pub fn decide(&mut self, protocol: Protocol, target: &str, headers: &mut dyn Headers) -> Option<Decision> {
    if self.set.leases.due() {
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
  use std::sync::atomic::{AtomicBool, Ordering};

  use super::*;
  use crate::engine::test_support::{config, http, unique_set};
  use crate::policy::Policy;
  use crate::NoHeaders;

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
}
