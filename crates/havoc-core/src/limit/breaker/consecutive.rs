//! Opens after `n` failures in a row; any success starts the count again.

use super::rule::{Call, Trip, TripRule};

/// The consecutive-failures rule.
#[derive(Debug)]
pub struct Consecutive {
  threshold: u32,
  failures: u32,
}

impl Consecutive {
  /// Opens on the `threshold`-th failure in a row (`threshold` ≥ 1, checked by the options).
  pub fn new(threshold: u32) -> Self {
    Consecutive { threshold, failures: 0 }
  }
}

impl TripRule for Consecutive {
  fn record(&mut self, _now_ns: u64, call: Call) -> Option<Trip> {
    if !call.failure {
      self.failures = 0;
      return None;
    }
    self.failures += 1;
    (self.failures >= self.threshold).then_some(Trip::Failures)
  }

  fn reset(&mut self) {
    self.failures = 0;
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  const FAIL: Call = Call { failure: true, slow: false };
  const OK: Call = Call { failure: false, slow: false };

  #[test]
  fn a_success_between_failures_starts_the_count_again() {
    let mut rule = Consecutive::new(5);
    for _ in 0..4 {
      assert_eq!(rule.record(0, FAIL), None);
    }
    assert_eq!(rule.record(0, OK), None);
    for _ in 0..4 {
      assert_eq!(rule.record(0, FAIL), None);
    }
    assert_eq!(rule.record(0, FAIL), Some(Trip::Failures));
    rule.reset();
    assert_eq!(rule.record(0, FAIL), None);
  }
}
