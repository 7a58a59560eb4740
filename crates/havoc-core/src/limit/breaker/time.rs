//! A failure rate over the last `window` of time, in `buckets` slices.
//!
//! Each bucket is stamped with the absolute index of its slice (`now / slice`), so a bucket
//! from an earlier lap is recognised as stale and recycled: an idle gap ages the window
//! even though no call came to rotate it (cockatiel counts failures from before the gap,
//! resile's window never ages under steady traffic).

use super::rule::{Call, Counts, RateThresholds, Trip, TripRule};

#[derive(Clone, Copy, Debug, Default)]
struct Bucket {
  /// Absolute slice index + 1; 0 for a bucket never written.
  stamp: u64,
  counts: Counts,
}

/// The time-window rule.
#[derive(Debug)]
pub struct TimeWindow {
  thresholds: RateThresholds,
  slice_ns: u64,
  buckets: Vec<Bucket>,
}

impl TimeWindow {
  /// A window of `window_ns` in `buckets` slices (`window_ns ≥ buckets ≥ 1`, checked by the options).
  pub fn new(window_ns: u64, buckets: u32, thresholds: RateThresholds) -> Self {
    TimeWindow { thresholds, slice_ns: (window_ns / buckets as u64).max(1), buckets: vec![Bucket::default(); buckets as usize] }
  }

  /// Calls in the window that ends at `now_ns`.
  pub fn counts(&self, now_ns: u64) -> Counts {
    let current = now_ns / self.slice_ns + 1;
    let laps = self.buckets.len() as u64;
    let mut total = Counts::default();
    for bucket in self.buckets.iter().filter(|b| b.stamp != 0 && b.stamp <= current && current - b.stamp < laps) {
      total.calls += bucket.counts.calls;
      total.failures += bucket.counts.failures;
      total.slow += bucket.counts.slow;
    }
    total
  }
}

impl TripRule for TimeWindow {
  fn record(&mut self, now_ns: u64, call: Call) -> Option<Trip> {
    let stamp = now_ns / self.slice_ns + 1;
    let index = (stamp % self.buckets.len() as u64) as usize;
    let bucket = &mut self.buckets[index];
    if bucket.stamp != stamp {
      *bucket = Bucket { stamp, counts: Counts::default() };
    }
    bucket.counts.calls += 1;
    bucket.counts.failures += call.failure as u32;
    bucket.counts.slow += call.slow as u32;
    self.thresholds.judge(self.counts(now_ns))
  }

  fn reset(&mut self) {
    self.buckets.fill(Bucket::default());
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  const FAIL: Call = Call { failure: true, slow: false };
  const OK: Call = Call { failure: false, slow: false };
  const S: u64 = 1_000_000_000;

  fn window(min_calls: u32) -> TimeWindow {
    TimeWindow::new(30 * S, 10, RateThresholds { rate: 0.5, min_calls, slow_rate: None })
  }

  #[test]
  fn an_idle_gap_ages_the_window() {
    let mut rule = window(5);
    for i in 0..4 {
      assert_eq!(rule.record(i * S, FAIL), None);
    }
    // 60 s of silence: the four failures are out of the window, one failure is not enough.
    assert_eq!(rule.record(63 * S, FAIL), None);
    assert_eq!(rule.counts(63 * S), Counts { calls: 1, failures: 1, slow: 0 });
  }

  #[test]
  fn steady_traffic_ages_the_window_too() {
    let mut rule = window(5);
    for i in 0..10 {
      assert_eq!(rule.record(i * S, FAIL), if i >= 4 { Some(Trip::Failures) } else { None });
    }
    rule.reset();
    // One success per second for 40 s after one early burst of failures: the burst ages out.
    for _ in 0..4 {
      rule.record(0, FAIL);
    }
    for i in 1..=40 {
      rule.record(i * S, OK);
    }
    assert_eq!(rule.counts(40 * S).failures, 0);
    assert!(rule.counts(40 * S).calls <= 30);
  }

  #[test]
  fn the_window_slides_by_whole_buckets() {
    let mut rule = window(1);
    rule.record(0, OK);
    rule.record(29 * S, OK);
    assert_eq!(rule.counts(29 * S).calls, 2);
    assert_eq!(rule.counts(30 * S).calls, 1, "the first slice left the window");
    assert_eq!(rule.counts(56 * S).calls, 1);
    assert_eq!(rule.counts(57 * S).calls, 0, "nor the slice [27 s, 30 s)");
  }
}
