//! Options of a [`CircuitBreaker`](super::CircuitBreaker), checked once at creation.

use super::consecutive::Consecutive;
use super::count::CountWindow;
use super::rule::{RateThresholds, TripRule};
use super::time::TimeWindow;

/// Which rule opens the breaker.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum TripOptions {
  /// `failures` failures in a row.
  Consecutive {
    /// Failures in a row that open the breaker (≥ 1).
    failures: u32,
  },
  /// A failure rate over the last `size` calls, once `min_calls` are in the window.
  Count {
    /// Failure rate in (0, 1].
    rate: f64,
    /// Calls in the window (≥ `min_calls`).
    size: u32,
    /// Calls the window must hold before the rate is judged.
    min_calls: u32,
  },
  /// A failure rate over the last `window_ns` (in `buckets` slices), once `min_calls` are in it.
  Time {
    /// Failure rate in (0, 1].
    rate: f64,
    /// Length of the window (at least 1 ms per bucket).
    window_ns: u64,
    /// Slices the window is kept in; it slides by one slice.
    buckets: u32,
    /// Calls the window must hold before the rate is judged.
    min_calls: u32,
  },
}

/// Calls that take at least `threshold_ns` are slow; a slow-call rate of at least `rate`
/// (judged like the failure rate) opens the breaker. Windowed rules only.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SlowCallOptions {
  /// A call that takes at least this long is slow.
  pub threshold_ns: u64,
  /// Slow-call rate in (0, 1] that opens the breaker.
  pub rate: f64,
}

/// Everything a breaker is made of. Equal options name the same shared breaker.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BreakerOptions {
  /// The rule that opens the breaker.
  pub trip: TripOptions,
  /// The optional slow-call rule (windowed rules only).
  pub slow_calls: Option<SlowCallOptions>,
  /// First open period.
  pub open_ns: u64,
  /// The open period doubles after each failed half-open round, up to this.
  pub max_open_ns: u64,
  /// Each open period is scaled by a random factor in [1 − jitter, 1 + jitter]; in [0, 1).
  pub jitter: f64,
  /// Calls admitted at once while half-open; all must succeed for the breaker to close.
  pub probes: u32,
}

const MS: u64 = 1_000_000;

impl Default for BreakerOptions {
  /// Time window of 30 s in 10 buckets, rate 0.5, 20 calls minimum; open 10 s doubling to
  /// 5 min, ±20 %; 3 probes.
  fn default() -> Self {
    BreakerOptions {
      trip: TripOptions::Time { rate: 0.5, window_ns: 30_000 * MS, buckets: 10, min_calls: 20 },
      slow_calls: None,
      open_ns: 10_000 * MS,
      max_open_ns: 300_000 * MS,
      jitter: 0.2,
      probes: 3,
    }
  }
}

fn check_rate(what: &str, rate: f64) -> Result<(), String> {
  if rate.is_finite() && rate > 0.0 && rate <= 1.0 {
    Ok(())
  } else {
    Err(format!("{what} must be a number in (0, 1] (got {rate})"))
  }
}

impl BreakerOptions {
  /// Every option in range, or the first one that is not, by its JavaScript name.
  pub fn validate(&self) -> Result<(), String> {
    match self.trip {
      TripOptions::Consecutive { failures } => {
        if failures == 0 {
          return Err("consecutive must be an integer >= 1".into());
        }
        if self.slow_calls.is_some() {
          return Err("slowCalls needs a rate rule (window 'count' or 'time'), not consecutive".into());
        }
      }
      TripOptions::Count { rate, size, min_calls } => {
        check_rate("rate", rate)?;
        if size == 0 {
          return Err("size must be an integer >= 1".into());
        }
        if min_calls > size {
          return Err(format!("minCalls ({min_calls}) must be <= size ({size}): such a window could never trip"));
        }
      }
      TripOptions::Time { rate, window_ns, buckets, .. } => {
        check_rate("rate", rate)?;
        if buckets == 0 {
          return Err("buckets must be an integer >= 1".into());
        }
        if window_ns < buckets as u64 * MS {
          return Err(format!("windowMs must be at least 1 ms per bucket ({buckets} buckets)"));
        }
      }
    }
    if let Some(slow) = self.slow_calls {
      check_rate("slowCalls.rate", slow.rate)?;
      if slow.threshold_ns == 0 {
        return Err("slowCalls.thresholdMs must be > 0".into());
      }
    }
    if self.open_ns == 0 {
      return Err("openMs must be > 0".into());
    }
    if self.max_open_ns < self.open_ns {
      return Err(format!("maxOpenMs ({} ms) must be >= openMs ({} ms)", self.max_open_ns / MS, self.open_ns / MS));
    }
    if !(self.jitter.is_finite() && (0.0..1.0).contains(&self.jitter)) {
      return Err(format!("jitter must be a number in [0, 1) (got {})", self.jitter));
    }
    if self.probes == 0 {
      return Err("probes must be an integer >= 1".into());
    }
    Ok(())
  }

  /// A fresh rule for these options.
  pub(super) fn rule(&self) -> Box<dyn TripRule> {
    let slow_rate = self.slow_calls.map(|s| s.rate);
    match self.trip {
      TripOptions::Consecutive { failures } => Box::new(Consecutive::new(failures)),
      TripOptions::Count { rate, size, min_calls } => Box::new(CountWindow::new(size, RateThresholds { rate, min_calls, slow_rate })),
      TripOptions::Time { rate, window_ns, buckets, min_calls } => {
        Box::new(TimeWindow::new(window_ns, buckets, RateThresholds { rate, min_calls, slow_rate }))
      }
    }
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn bad_options_are_refused_by_name() {
    let bad = |o: BreakerOptions| o.validate().unwrap_err();
    let d = BreakerOptions::default();
    assert!(d.validate().is_ok());
    assert!(
      bad(BreakerOptions { trip: TripOptions::Count { rate: 0.5, size: 10, min_calls: 20 }, ..d }).contains("minCalls (20) must be <= size (10)")
    );
    assert!(bad(BreakerOptions { trip: TripOptions::Consecutive { failures: 0 }, ..d }).contains("consecutive"));
    assert!(bad(BreakerOptions { trip: TripOptions::Count { rate: 0.0, size: 10, min_calls: 1 }, ..d }).contains("rate"));
    let slow = Some(SlowCallOptions { threshold_ns: MS, rate: 0.5 });
    assert!(bad(BreakerOptions { trip: TripOptions::Consecutive { failures: 3 }, slow_calls: slow, ..d }).contains("slowCalls"));
    assert!(bad(BreakerOptions { max_open_ns: 1, ..d }).contains("maxOpenMs"));
    assert!(bad(BreakerOptions { jitter: 1.0, ..d }).contains("jitter"));
    assert!(bad(BreakerOptions { probes: 0, ..d }).contains("probes"));
    assert!(bad(BreakerOptions { trip: TripOptions::Time { rate: 0.5, window_ns: 5 * MS, buckets: 10, min_calls: 1 }, ..d }).contains("windowMs"));
  }
}
