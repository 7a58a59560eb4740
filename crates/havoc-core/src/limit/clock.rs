//! Monotonic time in nanoseconds, real or driven by hand.
//!
//! Limiters read time through [`Clock`] so that unit tests and simulations advance a
//! [`FakeClock`] instead of sleeping.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

/// A monotonic clock: nanoseconds since an arbitrary, fixed origin.
pub trait Clock: Send + Sync {
  fn now_ns(&self) -> u64;
}

/// The process's monotonic clock (`Instant`), counted from the first time any limiter read it,
/// so every thread shares one origin.
#[derive(Clone, Copy, Debug, Default)]
pub struct MonotonicClock;

impl Clock for MonotonicClock {
  fn now_ns(&self) -> u64 {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    let origin = *ORIGIN.get_or_init(Instant::now);
    // u64 nanoseconds last 584 years.
    origin.elapsed().as_nanos() as u64
  }
}

/// A clock that moves only when told to.
#[derive(Debug, Default)]
pub struct FakeClock {
  now: AtomicU64,
}

impl FakeClock {
  pub fn new(start_ns: u64) -> Self {
    FakeClock { now: AtomicU64::new(start_ns) }
  }

  pub fn advance_ns(&self, ns: u64) {
    self.now.fetch_add(ns, Ordering::SeqCst);
  }

  pub fn advance_ms(&self, ms: u64) {
    self.advance_ns(ms * 1_000_000);
  }

  /// Moves the clock to `ns`; a time in the past is ignored (the clock is monotonic).
  pub fn set_ns(&self, ns: u64) {
    self.now.fetch_max(ns, Ordering::SeqCst);
  }
}

impl Clock for FakeClock {
  fn now_ns(&self) -> u64 {
    self.now.load(Ordering::SeqCst)
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn monotonic_clock_never_goes_back() {
    let clock = MonotonicClock;
    let a = clock.now_ns();
    let b = clock.now_ns();
    assert!(b >= a);
  }

  #[test]
  fn fake_clock_moves_only_forward_and_only_when_told() {
    let clock = FakeClock::new(5);
    assert_eq!(clock.now_ns(), 5);
    clock.advance_ms(2);
    assert_eq!(clock.now_ns(), 2_000_005);
    clock.set_ns(10);
    assert_eq!(clock.now_ns(), 2_000_005);
    clock.set_ns(3_000_000);
    assert_eq!(clock.now_ns(), 3_000_000);
  }
}
