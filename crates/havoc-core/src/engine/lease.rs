//! Leases: when a set's leased layers run out, what they revert to, and the native thread
//! that reverts them with no traffic, no JS timer and even a blocked event loop.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use super::layers::{Layer, Lease};

/// `next_expiry` when no layer has a lease.
const NO_LEASE: u64 = u64::MAX;

/// Longest lease a layer may hold, in milliseconds (24 h): the one limit every way of asking
/// for a lease (the API, the control plane, the CLI, the fleet) checks against.
pub const MAX_LEASE_MS: f64 = 86_400_000.0;

/// A lease TTL given in milliseconds, checked: more than 0 and at most [`MAX_LEASE_MS`].
pub fn lease_ttl(ms: f64) -> Result<Duration, String> {
  if ms.is_finite() && ms > 0.0 && ms <= MAX_LEASE_MS {
    Ok(Duration::from_secs_f64(ms / 1000.0))
  } else {
    Err(format!("a lease TTL must be more than 0 and at most 24h (got {ms} ms)"))
  }
}

/// When the earliest lease of one set runs out, and the watcher thread that acts on it.
#[derive(Debug)]
pub(super) struct LeaseClock {
  started: Instant,
  /// Nanoseconds after `started` when the earliest lease runs out, [`NO_LEASE`] if none:
  /// one relaxed load tells `decide` that there is nothing to check.
  next_expiry: AtomicU64,
  /// Wakes the watcher when `next_expiry` changes; the flag says it was started.
  watch: (Mutex<bool>, Condvar),
}

impl LeaseClock {
  /// A clock with no lease, counting from `started`.
  pub(super) fn new(started: Instant) -> LeaseClock {
    LeaseClock { started, next_expiry: AtomicU64::new(NO_LEASE), watch: (Mutex::new(false), Condvar::new()) }
  }

  /// Time until the earliest lease runs out, `None` when no layer has one.
  pub(super) fn next(&self) -> Option<Duration> {
    let at = self.next_expiry.load(Ordering::Relaxed);
    (at != NO_LEASE).then(|| Duration::from_nanos(at).saturating_sub(self.started.elapsed()))
  }

  /// Whether a lease has run out and not been reverted yet (cheap when there is no lease).
  #[inline]
  pub(super) fn due(&self) -> bool {
    let at = self.next_expiry.load(Ordering::Relaxed);
    at != NO_LEASE && self.started.elapsed().as_nanos() >= u128::from(at)
  }

  /// Records the earliest lease of `layers` and wakes the watcher. The first time there is a
  /// lease, `start_watcher` is called to start it (it says whether a thread could be had;
  /// without one, `decide` still expires leases lazily).
  pub(super) fn update(&self, layers: &BTreeMap<String, Layer>, start_watcher: impl FnOnce() -> bool) {
    let next = layers
      .values()
      .filter_map(|layer| layer.lease.as_ref())
      .map(|lease| lease.expires_at.saturating_duration_since(self.started).as_nanos().min(u128::from(NO_LEASE - 1)) as u64)
      .min()
      .unwrap_or(NO_LEASE);
    // Stored and signalled under the watcher's mutex, so the watcher cannot miss a change
    // between reading `next_expiry` and going to sleep.
    let mut started = self.watch.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    self.next_expiry.store(next, Ordering::Relaxed);
    if next != NO_LEASE && !*started {
      *started = start_watcher();
    }
    self.watch.1.notify_all();
  }

  /// The watcher's loop, on its own thread: calls `expire` whenever the earliest lease is due
  /// (`expire` updates this clock, which wakes the loop). Never returns.
  pub(super) fn watch(&self, expire: impl Fn()) {
    let (lock, wake) = &self.watch;
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
      expire();
      guard = lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    }
  }
}

/// A lease of `ttl` from now on a layer that held `previous`. A leased update over a leased
/// update still reverts to the state before either.
pub(super) fn lease(previous: Option<&Layer>, ttl: Duration) -> Lease {
  let revert_to = match previous {
    Some(Layer { lease: Some(lease), .. }) => lease.revert_to.clone(),
    Some(previous) => Some(std::sync::Arc::clone(&previous.config)),
    None => None,
  };
  Lease { ttl, expires_at: Instant::now() + ttl, revert_to }
}

/// The layers whose lease has run out by `now`, and `layers` with each of them reverted (or
/// removed, when it did not exist before its lease). `None` when no lease has run out.
pub(super) fn revert_expired(layers: &BTreeMap<String, Layer>, now: Instant) -> Option<(Vec<String>, BTreeMap<String, Layer>)> {
  let expired: Vec<String> =
    layers.iter().filter(|(_, layer)| layer.lease.as_ref().is_some_and(|lease| lease.expires_at <= now)).map(|(name, _)| name.clone()).collect();
  if expired.is_empty() {
    return None;
  }
  let mut reverted = layers.clone();
  for name in &expired {
    let lease = reverted.remove(name).and_then(|layer| layer.lease).expect("expired layers have a lease");
    if let Some(config) = lease.revert_to {
      reverted.insert(name.clone(), Layer { config, lease: None });
    }
  }
  Some((expired, reverted))
}

#[cfg(test)]
mod tests {
  use std::time::{Duration, Instant};

  use super::{lease_ttl, MAX_LEASE_MS};

  use crate::engine::test_support::{config, erroring, http, names, unique_set};
  use crate::policy::Protocol;
  use crate::NoHeaders;

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

  #[test]
  fn lease_ttls_run_from_above_zero_to_a_day() {
    assert_eq!(lease_ttl(1.5), Ok(Duration::from_micros(1500)));
    assert_eq!(lease_ttl(MAX_LEASE_MS), Ok(Duration::from_secs(86_400)));
    for bad in [0.0, -1.0, MAX_LEASE_MS + 1.0, f64::NAN, f64::INFINITY] {
      assert!(lease_ttl(bad).unwrap_err().starts_with("a lease TTL must be more than 0 and at most 24h"), "{bad}");
    }
  }
}
