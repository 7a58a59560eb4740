//! A retry budget: retries in the last `window` stay at most `ratio × requests +
//! min_per_sec × window seconds`, so retries cannot multiply the load of an outage.
//!
//! Lock-free: the window is `BUCKETS` slices, each one `AtomicU64` for requests and one for
//! retries, packing the slice's absolute index (32 bits) with its count (32 bits). A slice from
//! an earlier lap is recognised by its index and counts for nothing, so an idle gap empties the
//! window without anyone rotating it. A retry is taken by one compare-and-swap on the current
//! slice after checking the window's total, so two threads cannot both take the last retry of
//! a slice.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::clock::{Clock, MonotonicClock};

/// Slices per window.
const BUCKETS: usize = 10;

/// How a [`RetryBudget`] is sized.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BudgetOptions {
  /// Retries allowed per request in the window, in [0, 1000].
  pub ratio: f64,
  /// Retries allowed per second of window whatever the traffic (so a quiet service can still retry).
  pub min_per_sec: f64,
  /// The window, in nanoseconds (at least one per slice).
  pub window_ns: u64,
}

impl Default for BudgetOptions {
  fn default() -> Self {
    BudgetOptions { ratio: 0.2, min_per_sec: 10.0, window_ns: 10_000_000_000 }
  }
}

impl BudgetOptions {
  /// Checks every field, naming the first bad one.
  pub fn validate(&self) -> Result<(), String> {
    if !(self.ratio.is_finite() && (0.0..=1000.0).contains(&self.ratio)) {
      return Err(format!("ratio must be a number in [0, 1000] (got {})", self.ratio));
    }
    if !(self.min_per_sec.is_finite() && self.min_per_sec >= 0.0) {
      return Err(format!("minPerSec must be a finite number >= 0 (got {})", self.min_per_sec));
    }
    if self.window_ns < BUCKETS as u64 * 1_000_000 {
      return Err(format!("windowMs must be at least {BUCKETS} ms (got {} ms)", self.window_ns as f64 / 1e6));
    }
    Ok(())
  }
}

/// The window's figures at one instant.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BudgetCounts {
  /// First attempts recorded in the window.
  pub requests: u64,
  /// Retries taken in the window.
  pub retries: u64,
}

/// A windowed retry budget shared by every thread that holds it.
pub struct RetryBudget {
  options: BudgetOptions,
  slice_ns: u64,
  requests: [AtomicU64; BUCKETS],
  retries: [AtomicU64; BUCKETS],
  /// Retries refused since creation (for metrics).
  exhausted: AtomicU64,
  clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for RetryBudget {
  fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    f.debug_struct("RetryBudget").field("options", &self.options).finish_non_exhaustive()
  }
}

fn pack(stamp: u32, count: u32) -> u64 {
  (stamp as u64) << 32 | count as u64
}

fn unpack(word: u64) -> (u32, u32) {
  ((word >> 32) as u32, word as u32)
}

impl RetryBudget {
  /// A budget on the monotonic clock.
  pub fn new(options: BudgetOptions) -> Result<Self, String> {
    Self::with_clock(options, Arc::new(MonotonicClock))
  }

  /// A budget reading time from `clock` (a [`FakeClock`](super::FakeClock) in tests).
  pub fn with_clock(options: BudgetOptions, clock: Arc<dyn Clock>) -> Result<Self, String> {
    options.validate()?;
    Ok(RetryBudget {
      options,
      slice_ns: options.window_ns / BUCKETS as u64,
      requests: Default::default(),
      retries: Default::default(),
      exhausted: AtomicU64::new(0),
      clock,
    })
  }

  pub fn options(&self) -> BudgetOptions {
    self.options
  }

  /// The absolute slice index of `now_ns`, + 1 so that 0 marks a slice never written. Wraps
  /// after 2³² slices (13 years of 100 ms slices); a wrapped stamp only ages a slice early.
  fn stamp(&self, now_ns: u64) -> u32 {
    (now_ns / self.slice_ns + 1) as u32
  }

  fn live(&self, word: u64, current: u32) -> u32 {
    let (stamp, count) = unpack(word);
    if stamp != 0 && current.wrapping_sub(stamp) < BUCKETS as u32 {
      count
    } else {
      0
    }
  }

  fn total(&self, slices: &[AtomicU64; BUCKETS], current: u32) -> u64 {
    slices.iter().map(|s| self.live(s.load(Ordering::Acquire), current) as u64).sum()
  }

  /// Adds one to the current slice of `slices`, if `allow(window total)` says so.
  fn add(&self, slices: &[AtomicU64; BUCKETS], current: u32, allow: impl Fn(u64) -> bool) -> bool {
    let slot = &slices[current as usize % BUCKETS];
    let mut word = slot.load(Ordering::Acquire);
    loop {
      let (stamp, count) = unpack(word);
      let here = if stamp == current { count } else { 0 };
      let others: u64 = slices.iter().filter(|s| !std::ptr::eq(*s, slot)).map(|s| self.live(s.load(Ordering::Acquire), current) as u64).sum();
      if !allow(others + here as u64) {
        return false;
      }
      match slot.compare_exchange_weak(word, pack(current, here.saturating_add(1)), Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => return true,
        Err(actual) => word = actual,
      }
    }
  }

  /// Records a first attempt: it earns the window `ratio` retries.
  pub fn record_request(&self) {
    let current = self.stamp(self.clock.now_ns());
    self.add(&self.requests, current, |_| true);
  }

  /// Takes one retry from the budget; `false` (and one more exhaustion counted) when it is spent.
  pub fn try_spend(&self) -> bool {
    let current = self.stamp(self.clock.now_ns());
    let requests = self.total(&self.requests, current) as f64;
    let allowed = (self.options.ratio * requests + self.options.min_per_sec * self.options.window_ns as f64 / 1e9).floor();
    let taken = self.add(&self.retries, current, |retries| (retries as f64) < allowed);
    if !taken {
      self.exhausted.fetch_add(1, Ordering::Relaxed);
    }
    taken
  }

  /// Requests and retries in the window that ends now.
  pub fn counts(&self) -> BudgetCounts {
    let current = self.stamp(self.clock.now_ns());
    BudgetCounts { requests: self.total(&self.requests, current), retries: self.total(&self.retries, current) }
  }

  /// Retries refused since the budget was created.
  pub fn exhausted(&self) -> u64 {
    self.exhausted.load(Ordering::Relaxed)
  }
}

#[cfg(test)]
mod tests {
  use super::*;
  use crate::limit::FakeClock;

  const S: u64 = 1_000_000_000;

  fn budget(ratio: f64, min_per_sec: f64) -> (RetryBudget, Arc<FakeClock>) {
    let clock = Arc::new(FakeClock::new(0));
    let options = BudgetOptions { ratio, min_per_sec, window_ns: 10 * S };
    (RetryBudget::with_clock(options, clock.clone()).unwrap(), clock)
  }

  #[test]
  fn retries_stay_within_ratio_times_requests_plus_the_floor() {
    let (b, _) = budget(0.2, 1.0);
    for _ in 0..100 {
      b.record_request();
    }
    // 0.2 × 100 + 1 × 10 s = 30.
    let taken = (0..100).filter(|_| b.try_spend()).count();
    assert_eq!(taken, 30);
    assert_eq!(b.exhausted(), 70);
    assert_eq!(b.counts(), BudgetCounts { requests: 100, retries: 30 });
  }

  #[test]
  fn the_window_ages_by_absolute_time_even_when_idle() {
    let (b, clock) = budget(0.0, 1.0);
    assert_eq!((0..20).filter(|_| b.try_spend()).count(), 10);
    clock.advance_ns(5 * S);
    assert!(!b.try_spend(), "still inside the window");
    clock.advance_ns(60 * S);
    assert_eq!(b.counts().retries, 0, "an idle minute empties the window");
    assert_eq!((0..20).filter(|_| b.try_spend()).count(), 10);
  }

  #[test]
  fn the_window_slides_by_slices() {
    let (b, clock) = budget(1.0, 0.0);
    b.record_request();
    clock.set_ns(9 * S + S / 2);
    b.record_request();
    assert_eq!(b.counts().requests, 2);
    clock.set_ns(10 * S);
    assert_eq!(b.counts().requests, 1, "the first slice left the window");
  }

  #[test]
  fn bad_options_are_refused_by_name() {
    let bad = |o: BudgetOptions| RetryBudget::new(o).unwrap_err();
    assert!(bad(BudgetOptions { ratio: -0.1, ..Default::default() }).contains("ratio"));
    assert!(bad(BudgetOptions { ratio: f64::NAN, ..Default::default() }).contains("ratio"));
    assert!(bad(BudgetOptions { min_per_sec: f64::INFINITY, ..Default::default() }).contains("minPerSec"));
    assert!(bad(BudgetOptions { window_ns: 1_000_000, ..Default::default() }).contains("windowMs"));
  }

  #[test]
  fn threads_racing_for_the_last_retries_never_overspend() {
    let (b, _) = budget(0.0, 5.0);
    let b = Arc::new(b);
    let taken: usize = (0..8)
      .map(|_| {
        let b = Arc::clone(&b);
        std::thread::spawn(move || (0..1000).filter(|_| b.try_spend()).count())
      })
      .map(|t| t.join().unwrap())
      .sum();
    assert_eq!(taken, 50);
    assert_eq!(b.counts().retries, 50);
  }
}
