//! What a trip rule sees and says: one finished call in, "open now, because…" out.
//!
//! The breaker never learns which rule it runs; each rule is its own small file
//! ([`super::consecutive`], [`super::count`], [`super::time`]).

/// One finished call that counts (ignored calls never reach a rule).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Call {
  /// The call failed.
  pub failure: bool,
  /// The call took at least the slow-call threshold (only measured when one is set).
  pub slow: bool,
}

/// Why a rule wants the breaker open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trip {
  /// Too many failures: the consecutive count or the failure rate was reached.
  Failures,
  /// The slow-call rate was reached.
  SlowCalls,
}

/// A trip rule: fed every call that counts while the breaker is closed, emptied by
/// [`reset`](TripRule::reset) whenever the breaker leaves the closed state.
pub trait TripRule: Send {
  /// Records `call`, finished at `now_ns`; `Some` when the breaker should open now.
  fn record(&mut self, now_ns: u64, call: Call) -> Option<Trip>;
  /// Forgets every call recorded so far.
  fn reset(&mut self);
}

/// Calls, failures and slow calls seen by a windowed rule.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
  /// Calls that count.
  pub calls: u32,
  /// Of which failed.
  pub failures: u32,
  /// Of which were slow.
  pub slow: u32,
}

/// Thresholds shared by the windowed rules (count and time).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateThresholds {
  /// Failure rate in (0, 1] at or above which the breaker opens.
  pub rate: f64,
  /// Calls the window must hold before any rate is judged.
  pub min_calls: u32,
  /// Slow-call rate in (0, 1] at or above which the breaker opens, if set.
  pub slow_rate: Option<f64>,
}

impl RateThresholds {
  /// The verdict on a window holding `counts`.
  pub fn judge(&self, counts: Counts) -> Option<Trip> {
    if counts.calls == 0 || counts.calls < self.min_calls {
      return None;
    }
    let calls = counts.calls as f64;
    if counts.failures as f64 / calls >= self.rate {
      return Some(Trip::Failures);
    }
    match self.slow_rate {
      Some(rate) if counts.slow as f64 / calls >= rate => Some(Trip::SlowCalls),
      _ => None,
    }
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn nothing_is_judged_below_the_minimum_and_rates_are_inclusive() {
    let t = RateThresholds { rate: 0.5, min_calls: 4, slow_rate: Some(0.75) };
    assert_eq!(t.judge(Counts { calls: 3, failures: 3, slow: 0 }), None);
    assert_eq!(t.judge(Counts { calls: 4, failures: 2, slow: 0 }), Some(Trip::Failures));
    assert_eq!(t.judge(Counts { calls: 4, failures: 1, slow: 3 }), Some(Trip::SlowCalls));
    assert_eq!(t.judge(Counts { calls: 4, failures: 1, slow: 2 }), None);
    let no_minimum = RateThresholds { rate: 1.0, min_calls: 0, slow_rate: None };
    assert_eq!(no_minimum.judge(Counts::default()), None, "an empty window never trips");
  }
}
