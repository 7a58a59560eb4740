//! Resilience primitives shared by every thread of the process: a token bucket
//! ([`bucket`]), an adaptive concurrency limiter ([`adaptive`]) and bulkheads
//! ([`bulkhead`]), all reading time through [`clock`].
//!
//! Named instances live in process-global registries: the first creation of a name wins,
//! later ones get the same instance when their options match and an error when they do not.

pub mod adaptive;
pub mod bucket;
pub mod bulkhead;
pub mod clock;

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex, OnceLock};

pub use adaptive::{AdaptiveLimiter, AdaptiveOptions, Outcome};
pub use bucket::{BucketOptions, Refusal, TokenBucket};
pub use bulkhead::{Bulkhead, Priority, Rejection};
pub use clock::{Clock, FakeClock, MonotonicClock};

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
  fn adaptive_limiters_are_shared_by_name() {
    let a = shared_adaptive("registry-adaptive", AdaptiveOptions::default()).unwrap();
    let b = shared_adaptive("registry-adaptive", AdaptiveOptions::default()).unwrap();
    assert!(Arc::ptr_eq(&a, &b));
    assert!(shared_adaptive("registry-adaptive", AdaptiveOptions { max_limit: 5, ..Default::default() }).is_err());
  }
}
