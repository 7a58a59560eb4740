//! Bulkheads: a bounded number of calls in flight, optionally reserving the last places
//! for more important work.
//!
//! The check and the acquire are one compare-and-swap on the in-flight count, so two
//! threads can never both take the last place (resile checks, then acquires).

use std::sync::atomic::{AtomicU32, Ordering};

/// How important a call is; each priority may fill the bulkhead up to its own threshold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Priority {
  Low = 0,
  Standard = 1,
  Critical = 2,
}

impl Priority {
  pub fn from_index(index: u32) -> Option<Priority> {
    match index {
      0 => Some(Priority::Low),
      1 => Some(Priority::Standard),
      2 => Some(Priority::Critical),
      _ => None,
    }
  }
}

/// Why a call was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejection {
  /// Every place is taken.
  Full,
  /// Places remain, but they are kept for higher priorities.
  Shed,
}

/// A bulkhead of `capacity` places; priority `p` may take a place only while fewer than
/// `ceil(threshold[p] · capacity)` are taken (utilisation below its threshold).
#[derive(Debug)]
pub struct Bulkhead {
  capacity: u32,
  /// Places each priority may fill, indexed by `Priority as usize`.
  ceilings: [u32; 3],
  inflight: AtomicU32,
}

impl Bulkhead {
  /// A plain bulkhead: every priority may fill it.
  pub fn new(capacity: u32) -> Result<Self, String> {
    Self::with_thresholds(capacity, [1.0, 1.0, 1.0])
  }

  /// `thresholds`: utilisation ceilings for low, standard and critical, each in (0, 1] and
  /// not decreasing with priority.
  pub fn with_thresholds(capacity: u32, thresholds: [f64; 3]) -> Result<Self, String> {
    if capacity == 0 {
      return Err("capacity must be an integer >= 1".into());
    }
    let names = ["low", "standard", "critical"];
    for (name, t) in names.iter().zip(thresholds) {
      if !(t.is_finite() && t > 0.0 && t <= 1.0) {
        return Err(format!("thresholds.{name} must be a number in (0, 1] (got {t})"));
      }
    }
    if thresholds[0] > thresholds[1] || thresholds[1] > thresholds[2] {
      return Err(format!(
        "thresholds must not decrease with priority (low {} <= standard {} <= critical {})",
        thresholds[0], thresholds[1], thresholds[2]
      ));
    }
    // Rounded to 1e-9 first so that 0.8 × 10 is 8 places, not 9 through float noise.
    let ceiling = |t: f64| (((t * capacity as f64) * 1e9).round() / 1e9).ceil().max(1.0) as u32;
    Ok(Bulkhead { capacity, ceilings: thresholds.map(ceiling), inflight: AtomicU32::new(0) })
  }

  pub fn capacity(&self) -> u32 {
    self.capacity
  }

  /// How many places `priority` may fill.
  pub fn ceiling(&self, priority: Priority) -> u32 {
    self.ceilings[priority as usize]
  }

  pub fn inflight(&self) -> u32 {
    self.inflight.load(Ordering::Acquire)
  }

  /// Takes a place for a call of `priority`, or says why not. One CAS: check and acquire
  /// cannot be split by another thread.
  pub fn try_acquire(&self, priority: Priority) -> Result<(), Rejection> {
    let ceiling = self.ceilings[priority as usize];
    let mut current = self.inflight.load(Ordering::Acquire);
    loop {
      if current >= self.capacity {
        return Err(Rejection::Full);
      }
      if current >= ceiling {
        return Err(Rejection::Shed);
      }
      match self.inflight.compare_exchange_weak(current, current + 1, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => return Ok(()),
        Err(actual) => current = actual,
      }
    }
  }

  /// Gives a place back. A release without an acquire is ignored rather than wrapping the count.
  pub fn release(&self) {
    let _ = self.inflight.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
  }
}

#[cfg(test)]
mod tests {
  use super::*;
  use std::sync::Arc;

  #[test]
  fn plain_bulkhead_admits_capacity_then_refuses_until_a_release() {
    let b = Bulkhead::new(2).unwrap();
    assert_eq!(b.try_acquire(Priority::Standard), Ok(()));
    assert_eq!(b.try_acquire(Priority::Low), Ok(()));
    assert_eq!(b.try_acquire(Priority::Critical), Err(Rejection::Full));
    b.release();
    assert_eq!(b.inflight(), 1);
    assert_eq!(b.try_acquire(Priority::Critical), Ok(()));
    b.release();
    b.release();
    b.release();
    assert_eq!(b.inflight(), 0, "an extra release does not wrap around");
  }

  #[test]
  fn priorities_are_shed_lowest_first() {
    let b = Bulkhead::with_thresholds(10, [0.5, 0.8, 1.0]).unwrap();
    assert_eq!([b.ceiling(Priority::Low), b.ceiling(Priority::Standard), b.ceiling(Priority::Critical)], [5, 8, 10]);
    for _ in 0..5 {
      assert_eq!(b.try_acquire(Priority::Low), Ok(()));
    }
    assert_eq!(b.try_acquire(Priority::Low), Err(Rejection::Shed));
    for _ in 0..3 {
      assert_eq!(b.try_acquire(Priority::Standard), Ok(()));
    }
    assert_eq!(b.try_acquire(Priority::Standard), Err(Rejection::Shed));
    assert_eq!(b.try_acquire(Priority::Low), Err(Rejection::Shed));
    assert_eq!(b.try_acquire(Priority::Critical), Ok(()));
    assert_eq!(b.try_acquire(Priority::Critical), Ok(()));
    assert_eq!(b.try_acquire(Priority::Critical), Err(Rejection::Full));
  }

  #[test]
  fn check_and_acquire_are_atomic_under_contention() {
    let b = Arc::new(Bulkhead::new(7).unwrap());
    let admitted: usize = std::thread::scope(|s| {
      let handles: Vec<_> = (0..4)
        .map(|_| {
          let b = b.clone();
          s.spawn(move || (0..10_000).filter(|_| b.try_acquire(Priority::Standard).is_ok()).count())
        })
        .collect();
      handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(admitted, 7);
    assert_eq!(b.inflight(), 7);
  }

  #[test]
  fn bad_options_are_refused_precisely() {
    assert!(Bulkhead::new(0).unwrap_err().contains("capacity"));
    assert!(Bulkhead::with_thresholds(4, [0.0, 0.5, 1.0]).unwrap_err().contains("thresholds.low"));
    assert!(Bulkhead::with_thresholds(4, [0.5, 1.5, 1.0]).unwrap_err().contains("thresholds.standard"));
    assert!(Bulkhead::with_thresholds(4, [0.9, 0.5, 1.0]).unwrap_err().contains("must not decrease"));
  }
}
