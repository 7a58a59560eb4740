//! Resilience primitives shared by every thread of the process: a token bucket
//! ([`bucket`]), an adaptive concurrency limiter ([`adaptive`]), bulkheads
//! ([`bulkhead`]), a circuit breaker ([`breaker`]), a retry budget ([`budget`]) and a
//! latency reservoir for hedging ([`latency`]), all reading time through [`clock`].
//!
//! Named instances live in process-global registries: the first creation of a name wins,
//! later ones get the same instance when their options match and an error when they do not.

pub mod adaptive;
pub mod breaker;
pub mod bucket;
pub mod budget;
pub mod bulkhead;
pub mod clock;
pub mod latency;

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex, OnceLock};

pub use adaptive::{AdaptiveLimiter, AdaptiveOptions, Outcome};
pub use breaker::{BreakerOptions, CircuitBreaker};
pub use bucket::{BucketOptions, Refusal, TokenBucket};
pub use budget::{BudgetCounts, BudgetOptions, RetryBudget};
pub use bulkhead::{Bulkhead, Priority, Rejection};
pub use clock::{Clock, FakeClock, MonotonicClock};
pub use latency::LatencyReservoir;

type Registry<O, T> = OnceLock<Mutex<HashMap<String, (O, Arc<T>)>>>;

fn shared<O: PartialEq + Debug + Copy, T>(
  registry: &'static Registry<O, T>,
  kind: &str,
  name: &str,
  options: O,
  create: impl FnOnce(O) -> Result<T, String>,
) -> Result<Arc<T>, String> {
  if name.is_empty() {
    return Err(format!("a shared {kind} needs a non-empty name"));
  }
  let mut map = registry.get_or_init(Default::default).lock().unwrap_or_else(|poisoned| poisoned.into_inner());
  if let Some((existing, instance)) = map.get(name) {
    if *existing != options {
      return Err(format!("{kind} \"{name}\" already exists with other options: {existing:?} (asked for {options:?})"));
    }
    return Ok(Arc::clone(instance));
  }
  let instance = Arc::new(create(options)?);
  map.insert(name.to_string(), (options, Arc::clone(&instance)));
  Ok(instance)
}

/// The process-wide token bucket called `name`.
pub fn shared_bucket(name: &str, options: BucketOptions) -> Result<Arc<TokenBucket>, String> {
  static BUCKETS: Registry<BucketOptions, TokenBucket> = OnceLock::new();
  shared(&BUCKETS, "rate limiter", name, options, TokenBucket::new)
}

/// The process-wide adaptive limiter called `name`.
pub fn shared_adaptive(name: &str, options: AdaptiveOptions) -> Result<Arc<AdaptiveLimiter>, String> {
  static LIMITERS: Registry<AdaptiveOptions, AdaptiveLimiter> = OnceLock::new();
  shared(&LIMITERS, "adaptive limiter", name, options, AdaptiveLimiter::new)
}

/// The process-wide bulkhead called `name`: `thresholds` (low, standard, critical) as in
/// [`Bulkhead::with_thresholds`]; a plain bulkhead is `[1.0; 3]`.
pub fn shared_bulkhead(name: &str, capacity: u32, thresholds: [f64; 3]) -> Result<Arc<Bulkhead>, String> {
  static BULKHEADS: Registry<(u32, [f64; 3]), Bulkhead> = OnceLock::new();
  shared(&BULKHEADS, "bulkhead", name, (capacity, thresholds), |(c, t)| Bulkhead::with_thresholds(c, t))
}

/// The process-wide circuit breaker called `name`, on the monotonic clock; `initial` is used
/// only by the creation that wins.
pub fn shared_breaker(name: &str, options: BreakerOptions, initial: Option<breaker::Snapshot>) -> Result<Arc<CircuitBreaker>, String> {
  shared(&BREAKERS, "circuit breaker", name, options, |o| CircuitBreaker::with_clock(o, Arc::new(MonotonicClock), initial))
}

/// Every shared circuit breaker, by name (for the control plane).
pub fn shared_breakers() -> Vec<(String, Arc<CircuitBreaker>)> {
  let Some(map) = BREAKERS.get() else { return Vec::new() };
  let map = map.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
  let mut all: Vec<_> = map.iter().map(|(name, (_, breaker))| (name.clone(), Arc::clone(breaker))).collect();
  all.sort_by(|a, b| a.0.cmp(&b.0));
  all
}

static BREAKERS: Registry<BreakerOptions, CircuitBreaker> = OnceLock::new();

/// The process-wide retry budget called `name`, on the monotonic clock.
pub fn shared_budget(name: &str, options: BudgetOptions) -> Result<Arc<RetryBudget>, String> {
  shared(&BUDGETS, "retry budget", name, options, RetryBudget::new)
}

/// Every shared retry budget, by name (for the control plane).
pub fn shared_budgets() -> Vec<(String, Arc<RetryBudget>)> {
  let Some(map) = BUDGETS.get() else { return Vec::new() };
  let map = map.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
  let mut all: Vec<_> = map.iter().map(|(name, (_, budget))| (name.clone(), Arc::clone(budget))).collect();
  all.sort_by(|a, b| a.0.cmp(&b.0));
  all
}

static BUDGETS: Registry<BudgetOptions, RetryBudget> = OnceLock::new();

/// The process-wide latency reservoir called `name` (the last `capacity` samples).
pub fn shared_latency(name: &str, capacity: usize) -> Result<Arc<LatencyReservoir>, String> {
  static RESERVOIRS: Registry<usize, LatencyReservoir> = OnceLock::new();
  shared(&RESERVOIRS, "latency reservoir", name, capacity, LatencyReservoir::new)
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn first_creation_wins_and_mismatched_options_are_an_error() {
    let options = BucketOptions { rate: 5.0, per_ns: 1_000_000_000, burst: 2 };
    let a = shared_bucket("registry-test", options).unwrap();
    let b = shared_bucket("registry-test", options).unwrap();
    assert!(Arc::ptr_eq(&a, &b));
    assert!(a.try_acquire(2).is_ok());
    assert!(b.try_acquire(1).is_err(), "the same bucket");
    let err = shared_bucket("registry-test", BucketOptions { burst: 3, ..options }).unwrap_err();
    assert!(err.contains("already exists with other options"), "{err}");
    assert!(shared_bucket("", options).unwrap_err().contains("non-empty name"));
    assert!(shared_bucket("registry-bad", BucketOptions { rate: -1.0, ..options }).unwrap_err().contains("rate"));
  }

  #[test]
  fn bulkheads_and_breakers_are_shared_by_name() {
    let a = shared_bulkhead("registry-bulkhead", 2, [1.0; 3]).unwrap();
    let b = shared_bulkhead("registry-bulkhead", 2, [1.0; 3]).unwrap();
    assert!(Arc::ptr_eq(&a, &b));
    assert!(shared_bulkhead("registry-bulkhead", 3, [1.0; 3]).unwrap_err().contains("already exists with other options"));
    let options = BreakerOptions::default();
    let x = shared_breaker("registry-breaker", options, None).unwrap();
    let y = shared_breaker("registry-breaker", options, None).unwrap();
    assert!(Arc::ptr_eq(&x, &y));
    x.isolate();
    assert_eq!(y.state(), breaker::State::Isolated);
    let err = shared_breaker("registry-breaker", BreakerOptions { probes: 1, ..options }, None).unwrap_err();
    assert!(err.contains("circuit breaker \"registry-breaker\" already exists with other options"), "{err}");
    assert!(shared_breakers().iter().any(|(name, b)| name == "registry-breaker" && Arc::ptr_eq(b, &x)));
  }

  #[test]
  fn budgets_and_latency_reservoirs_are_shared_by_name() {
    let options = BudgetOptions::default();
    let a = shared_budget("registry-budget", options).unwrap();
    let b = shared_budget("registry-budget", options).unwrap();
    assert!(Arc::ptr_eq(&a, &b));
    a.record_request();
    assert_eq!(b.counts().requests, 1);
    let err = shared_budget("registry-budget", BudgetOptions { ratio: 0.5, ..options }).unwrap_err();
    assert!(err.contains("retry budget \"registry-budget\" already exists with other options"), "{err}");
    assert!(shared_budgets().iter().any(|(name, x)| name == "registry-budget" && Arc::ptr_eq(x, &a)));
    let x = shared_latency("registry-latency", 1000).unwrap();
    let y = shared_latency("registry-latency", 1000).unwrap();
    assert!(Arc::ptr_eq(&x, &y));
    assert!(shared_latency("registry-latency", 10).is_err());
  }

  #[test]
  fn adaptive_limiters_are_shared_by_name() {
    let a = shared_adaptive("registry-adaptive", AdaptiveOptions::default()).unwrap();
    let b = shared_adaptive("registry-adaptive", AdaptiveOptions::default()).unwrap();
    assert!(Arc::ptr_eq(&a, &b));
    assert!(shared_adaptive("registry-adaptive", AdaptiveOptions { max_limit: 5, ..Default::default() }).is_err());
  }
}
