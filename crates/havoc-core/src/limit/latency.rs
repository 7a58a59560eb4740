//! The last `capacity` latencies of a call, for a hedge's delay (a percentile of them).
//!
//! A ring of `AtomicU64` (f64 bits) written at `fetch_add` positions: recording is one
//! atomic add and one store, from any thread; a percentile copies the ring and sorts the copy.

use std::sync::atomic::{AtomicU64, Ordering};

/// Samples kept by default (the "last 1,000 latencies").
pub const DEFAULT_CAPACITY: usize = 1000;

/// A shared ring of the most recent latencies, in milliseconds.
#[derive(Debug)]
pub struct LatencyReservoir {
  samples: Box<[AtomicU64]>,
  /// Samples recorded since creation; the next goes to `written % capacity`.
  written: AtomicU64,
}

impl LatencyReservoir {
  /// A reservoir of the last `capacity` samples (`capacity ≥ 1`).
  pub fn new(capacity: usize) -> Result<Self, String> {
    if capacity == 0 {
      return Err("a latency reservoir needs a capacity >= 1".into());
    }
    Ok(LatencyReservoir { samples: (0..capacity).map(|_| AtomicU64::new(0)).collect(), written: AtomicU64::new(0) })
  }

  /// Records one latency; a negative or non-finite one is ignored.
  pub fn record(&self, ms: f64) {
    if !(ms.is_finite() && ms >= 0.0) {
      return;
    }
    let at = self.written.fetch_add(1, Ordering::AcqRel) as usize % self.samples.len();
    self.samples[at].store(ms.to_bits(), Ordering::Release);
  }

  /// Samples held (at most the capacity).
  pub fn len(&self) -> usize {
    (self.written.load(Ordering::Acquire) as usize).min(self.samples.len())
  }

  pub fn is_empty(&self) -> bool {
    self.len() == 0
  }

  /// The `p` quantile (nearest rank, `p` in [0, 1]) of the samples held; `None` when empty.
  pub fn percentile(&self, p: f64) -> Option<f64> {
    let n = self.len();
    if n == 0 {
      return None;
    }
    let mut held: Vec<f64> = self.samples[..n].iter().map(|s| f64::from_bits(s.load(Ordering::Acquire))).collect();
    held.sort_by(f64::total_cmp);
    let rank = ((p.clamp(0.0, 1.0) * n as f64).ceil() as usize).clamp(1, n);
    Some(held[rank - 1])
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn percentile_is_the_nearest_rank_of_the_samples_held() {
    let r = LatencyReservoir::new(1000).unwrap();
    assert_eq!(r.percentile(0.95), None);
    for ms in 1..=100 {
      r.record(ms as f64);
    }
    assert_eq!(r.len(), 100);
    assert_eq!(r.percentile(0.95), Some(95.0));
    assert_eq!(r.percentile(0.0), Some(1.0));
    assert_eq!(r.percentile(1.0), Some(100.0));
  }

  #[test]
  fn only_the_last_capacity_samples_count() {
    let r = LatencyReservoir::new(10).unwrap();
    for _ in 0..10 {
      r.record(1000.0);
    }
    for _ in 0..10 {
      r.record(2.0);
    }
    assert_eq!(r.len(), 10);
    assert_eq!(r.percentile(1.0), Some(2.0));
  }

  #[test]
  fn bad_samples_and_capacity_are_refused() {
    let r = LatencyReservoir::new(4).unwrap();
    r.record(f64::NAN);
    r.record(-1.0);
    r.record(f64::INFINITY);
    assert!(r.is_empty());
    assert!(LatencyReservoir::new(0).unwrap_err().contains("capacity"));
  }
}
