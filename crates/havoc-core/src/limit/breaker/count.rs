//! A failure rate over the last `size` calls.

use super::rule::{Call, Counts, RateThresholds, Trip, TripRule};

/// The count-window rule: the last `size` calls, oldest dropped first.
#[derive(Debug)]
pub struct CountWindow {
  thresholds: RateThresholds,
  /// One entry per call: bit 0 failure, bit 1 slow.
  ring: Vec<u8>,
  /// Next entry to write.
  head: usize,
  counts: Counts,
}

const FAILURE: u8 = 1;
const SLOW: u8 = 2;

impl CountWindow {
  /// A window of `size` calls (≥ 1 and ≥ `min_calls`, checked by the options).
  pub fn new(size: u32, thresholds: RateThresholds) -> Self {
    CountWindow { thresholds, ring: Vec::with_capacity(size as usize), head: 0, counts: Counts::default() }
  }

  fn size(&self) -> usize {
    self.ring.capacity()
  }
}

impl TripRule for CountWindow {
  fn record(&mut self, _now_ns: u64, call: Call) -> Option<Trip> {
    let entry = (call.failure as u8 * FAILURE) | (call.slow as u8 * SLOW);
    if self.ring.len() < self.size() {
      self.ring.push(entry);
      self.counts.calls += 1;
    } else {
      let old = std::mem::replace(&mut self.ring[self.head], entry);
      self.counts.failures -= (old & FAILURE != 0) as u32;
      self.counts.slow -= (old & SLOW != 0) as u32;
    }
    self.head = (self.head + 1) % self.size();
    self.counts.failures += call.failure as u32;
    self.counts.slow += call.slow as u32;
    self.thresholds.judge(self.counts)
  }

  fn reset(&mut self) {
    self.ring.clear();
    self.head = 0;
    self.counts = Counts::default();
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  const FAIL: Call = Call { failure: true, slow: false };
  const OK: Call = Call { failure: false, slow: false };

  #[test]
  fn judges_only_the_last_size_calls() {
    let mut rule = CountWindow::new(4, RateThresholds { rate: 0.5, min_calls: 4, slow_rate: None });
    assert_eq!(rule.record(0, FAIL), None);
    assert_eq!(rule.record(0, OK), None);
    assert_eq!(rule.record(0, OK), None);
    // 1 failure of 4, then the failure falls out of the window.
    assert_eq!(rule.record(0, OK), None);
    assert_eq!(rule.record(0, FAIL), None);
    assert_eq!(rule.counts, Counts { calls: 4, failures: 1, slow: 0 });
    assert_eq!(rule.record(0, FAIL), Some(Trip::Failures), "2 of the last 4");
  }

  #[test]
  fn a_window_as_small_as_its_minimum_trips() {
    // resile: a window smaller than its minimum can never trip; here size >= min_calls is enforced
    // and a full window is judged.
    let mut rule = CountWindow::new(3, RateThresholds { rate: 1.0, min_calls: 3, slow_rate: None });
    assert_eq!(rule.record(0, FAIL), None);
    assert_eq!(rule.record(0, FAIL), None);
    assert_eq!(rule.record(0, FAIL), Some(Trip::Failures));
  }

  #[test]
  fn counts_stay_exact_over_many_wraps() {
    let mut rule = CountWindow::new(7, RateThresholds { rate: 1.0, min_calls: 100, slow_rate: None });
    let mut rng = fastrand::Rng::with_seed(7);
    let mut history = Vec::new();
    for _ in 0..1000 {
      let call = Call { failure: rng.bool(), slow: rng.bool() };
      history.push(call);
      rule.record(0, call);
      let last: Vec<_> = history.iter().rev().take(7).collect();
      let expect = Counts {
        calls: last.len() as u32,
        failures: last.iter().filter(|c| c.failure).count() as u32,
        slow: last.iter().filter(|c| c.slow).count() as u32,
      };
      assert_eq!(rule.counts, expect);
    }
  }
}
