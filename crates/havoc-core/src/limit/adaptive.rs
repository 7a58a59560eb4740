//! An adaptive concurrency limiter of the TCP-Vegas family.
//!
//! The limit is the number of calls allowed in flight. Every RTT window the limiter compares
//! the window's minimum RTT with the no-load RTT and estimates how many calls are queued
//! downstream: `queue = limit · (1 − rtt_noload / rtt)`. With `l = log10(limit)` (at least 1):
//! a small queue (below `3l`) grows the limit by `l`, no queue (below `l`) for three windows
//! in a row by `6l`, a queue above `6l` shrinks it by the excess (at most by half). What
//! resile gets wrong, and how this differs:
//! - decisions are per RTT window, not per sample, so there is at most one decrease per window
//!   (resile multiplies by 0.8 on every slow sample: 100 → 1 in 16 samples);
//! - a window is judged only on calls started within it, and closes once at least the no-load
//!   RTT has passed and [`WINDOW_SAMPLES`] of them have finished: so it lasts a real RTT and
//!   sees the effect of the previous decision (as TCP Vegas measures the packets sent after a
//!   cwnd change), and calls admitted under an older limit can neither shrink nor grow it
//!   again;
//! - the big step (`6l`) needs several clear windows in a row: one lucky fast sample (service
//!   jitter) must not add `6l` calls to a downstream already at capacity, which is what kept
//!   the queue, and the tail latency, oscillating;
//! - the limit grows only while calls actually use it (peak in-flight ≥ half the limit);
//! - drops (timeouts, errors the caller flags) shrink the limit by `backoff`; plain errors
//!   and ignored calls give no RTT sample, so a fast failure cannot poison the baseline;
//! - the no-load RTT is re-probed (the limit is halved for a moment so the queue drains and
//!   the new minimum is measured, as BBR does) every `probe_interval`, and at once after
//!   several consecutive decreases, so a permanent latency change is re-learned in seconds.
//!
//! Admission (`try_acquire`) is one CAS on the in-flight count against the published limit;
//! the estimator behind it takes a short mutex on release only.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::clock::{Clock, MonotonicClock};

/// Tuning of an [`AdaptiveLimiter`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdaptiveOptions {
  pub initial_limit: u32,
  pub min_limit: u32,
  pub max_limit: u32,
  /// How often the no-load RTT is measured again.
  pub probe_interval_ns: u64,
  /// The limit is multiplied by this after a window with drops.
  pub backoff: f64,
  /// Shortest RTT window, so that microsecond RTTs do not make every sample a window.
  pub min_window_ns: u64,
}

impl Default for AdaptiveOptions {
  fn default() -> Self {
    AdaptiveOptions { initial_limit: 20, min_limit: 1, max_limit: 1000, probe_interval_ns: 30_000_000_000, backoff: 0.9, min_window_ns: 1_000_000 }
  }
}

impl AdaptiveOptions {
  pub fn validate(&self) -> Result<(), String> {
    if self.min_limit == 0 {
      return Err("minLimit must be an integer >= 1".into());
    }
    if self.max_limit < self.min_limit {
      return Err(format!("maxLimit ({}) must be >= minLimit ({})", self.max_limit, self.min_limit));
    }
    if self.max_limit > MAX_LIMIT {
      return Err(format!("maxLimit must be <= {MAX_LIMIT} (got {})", self.max_limit));
    }
    if self.initial_limit < self.min_limit || self.initial_limit > self.max_limit {
      return Err(format!("initialLimit ({}) must lie in [minLimit, maxLimit] = [{}, {}]", self.initial_limit, self.min_limit, self.max_limit));
    }
    if self.probe_interval_ns == 0 {
      return Err("probeInterval must be a positive duration".into());
    }
    if !(self.backoff > 0.0 && self.backoff < 1.0) {
      return Err(format!("backoff must be a number in (0, 1) (got {})", self.backoff));
    }
    Ok(())
  }
}

/// How a call admitted by [`AdaptiveLimiter::try_acquire`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
  /// It succeeded: its RTT is a sample.
  Success,
  /// It timed out or was refused downstream: a sign of overload.
  Dropped,
  /// No sample (a plain error, a cancelled call): only the place is given back.
  Ignore,
}

impl Outcome {
  pub fn from_index(index: u32) -> Option<Outcome> {
    match index {
      0 => Some(Outcome::Success),
      1 => Some(Outcome::Dropped),
      2 => Some(Outcome::Ignore),
      _ => None,
    }
  }
}

/// Highest allowed `max_limit` (the binding packs a limit into 21 bits of a double).
pub const MAX_LIMIT: u32 = 1_000_000;

/// Consecutive decreasing windows (that also halved the limit) after which the baseline is
/// probed at once: latency that stays high while the limit keeps falling is more likely a new
/// baseline than a queue.
const DECREASES_BEFORE_PROBE: u32 = 5;
/// Samples of a probe before its minimum is trusted.
const PROBE_SAMPLES: u32 = 3;
/// Calls started within a window that must finish before the window is judged (fewer when
/// the limit itself is smaller); a window with a drop is judged at once.
pub const WINDOW_SAMPLES: u32 = 3;
/// Consecutive windows without a queue (and with the limit in use) before the limit grows by
/// the big step `6l` instead of `l`.
const CLEAR_WINDOWS_BEFORE_BIG_STEP: u32 = 3;

#[derive(Debug)]
struct Probe {
  /// Only calls started after this (when the old queue has drained) measure the baseline.
  measure_from: u64,
  saved_limit: f64,
  min_rtt: u64,
  samples: u32,
}

#[derive(Debug)]
struct Estimator {
  limit: f64,
  /// 0 until the first sample.
  rtt_noload: u64,
  window_start: u64,
  window_min: u64,
  window_samples: u32,
  window_drops: u32,
  /// Windows in a row that saw no queue while the limit was in use.
  clear_windows: u32,
  consecutive_decreases: u32,
  /// The limit when the current run of decreases began.
  limit_before_decreases: f64,
  next_probe_at: u64,
  probe: Option<Probe>,
}

/// A process-wide adaptive concurrency limiter.
pub struct AdaptiveLimiter {
  options: AdaptiveOptions,
  clock: Arc<dyn Clock>,
  inflight: AtomicU32,
  /// The limit admission checks against: the estimator's limit, rounded down.
  limit: AtomicU32,
  /// Highest in-flight count seen in the current window.
  peak_inflight: AtomicU32,
  shed: AtomicU64,
  estimator: Mutex<Estimator>,
}

impl std::fmt::Debug for AdaptiveLimiter {
  fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    f.debug_struct("AdaptiveLimiter").field("limit", &self.limit).field("inflight", &self.inflight).finish()
  }
}

impl AdaptiveLimiter {
  pub fn new(options: AdaptiveOptions) -> Result<Self, String> {
    Self::with_clock(options, Arc::new(MonotonicClock))
  }

  pub fn with_clock(options: AdaptiveOptions, clock: Arc<dyn Clock>) -> Result<Self, String> {
    options.validate()?;
    let now = clock.now_ns();
    Ok(AdaptiveLimiter {
      options,
      inflight: AtomicU32::new(0),
      limit: AtomicU32::new(options.initial_limit),
      peak_inflight: AtomicU32::new(0),
      shed: AtomicU64::new(0),
      estimator: Mutex::new(Estimator {
        limit: options.initial_limit as f64,
        rtt_noload: 0,
        window_start: now,
        window_min: u64::MAX,
        window_samples: 0,
        window_drops: 0,
        clear_windows: 0,
        consecutive_decreases: 0,
        limit_before_decreases: options.initial_limit as f64,
        next_probe_at: now + options.probe_interval_ns,
        probe: None,
      }),
      clock,
    })
  }

  pub fn options(&self) -> &AdaptiveOptions {
    &self.options
  }

  pub fn limit(&self) -> u32 {
    self.limit.load(Ordering::Acquire)
  }

  pub fn inflight(&self) -> u32 {
    self.inflight.load(Ordering::Acquire)
  }

  /// Calls refused since creation.
  pub fn shed_count(&self) -> u64 {
    self.shed.load(Ordering::Relaxed)
  }

  /// The no-load RTT the limiter currently believes in, in nanoseconds (0: no sample yet).
  pub fn rtt_noload_ns(&self) -> u64 {
    self.lock().rtt_noload
  }

  pub fn now_ns(&self) -> u64 {
    self.clock.now_ns()
  }

  fn lock(&self) -> std::sync::MutexGuard<'_, Estimator> {
    self.estimator.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
  }

  /// Admits a call if fewer than `limit` are in flight; returns its start time (pass it
  /// back to [`release`](Self::release)), or `None` when the call is shed.
  pub fn try_acquire(&self) -> Option<u64> {
    let mut current = self.inflight.load(Ordering::Acquire);
    loop {
      if current >= self.limit.load(Ordering::Acquire) {
        self.shed.fetch_add(1, Ordering::Relaxed);
        return None;
      }
      match self.inflight.compare_exchange_weak(current, current + 1, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => break,
        Err(actual) => current = actual,
      }
    }
    self.peak_inflight.fetch_max(current + 1, Ordering::Relaxed);
    Some(self.clock.now_ns())
  }

  /// Ends a call admitted at `start_ns`.
  pub fn release(&self, start_ns: u64, outcome: Outcome) {
    let _ = self.inflight.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
    if outcome == Outcome::Ignore {
      return;
    }
    let now = self.clock.now_ns();
    let rtt = now.saturating_sub(start_ns).max(1);
    let mut est = self.lock();
    if let Some(probe) = est.probe.as_mut() {
      if outcome == Outcome::Success && start_ns >= probe.measure_from {
        probe.min_rtt = probe.min_rtt.min(rtt);
        probe.samples += 1;
        if probe.samples >= PROBE_SAMPLES {
          let probe = est.probe.take().expect("probe is running");
          est.rtt_noload = probe.min_rtt;
          est.limit = probe.saved_limit;
          est.consecutive_decreases = 0;
          est.next_probe_at = now + self.options.probe_interval_ns;
          self.start_window(&mut est, now);
          self.publish(&est);
        }
      }
      return;
    }
    // Only calls started within the window speak for the limit it runs under.
    let in_window = start_ns >= est.window_start;
    match outcome {
      Outcome::Success => {
        if in_window {
          est.window_min = est.window_min.min(rtt);
          est.window_samples += 1;
        }
        if est.rtt_noload == 0 || rtt < est.rtt_noload {
          // A faster call than the baseline proves the baseline too high.
          est.rtt_noload = rtt;
        }
      }
      Outcome::Dropped if in_window => est.window_drops += 1,
      Outcome::Dropped => {}
      Outcome::Ignore => unreachable!(),
    }
    let window = est.rtt_noload.max(self.options.min_window_ns);
    let enough = est.window_drops > 0 || est.window_samples >= WINDOW_SAMPLES.min(self.limit().max(1));
    if enough && now.saturating_sub(est.window_start) >= window {
      self.end_window(&mut est, now);
    }
  }

  fn start_window(&self, est: &mut Estimator, now: u64) {
    est.window_start = now;
    est.window_min = u64::MAX;
    est.window_samples = 0;
    est.window_drops = 0;
    self.peak_inflight.store(self.inflight(), Ordering::Relaxed);
  }

  fn end_window(&self, est: &mut Estimator, now: u64) {
    let min = self.options.min_limit as f64;
    let max = self.options.max_limit as f64;
    let limit = est.limit;
    let log = limit.max(1.0).log10().max(1.0);
    let used = self.peak_inflight.load(Ordering::Relaxed) as f64 * 2.0 >= limit;
    let mut decreased = false;
    let mut clear = false;
    if est.window_drops > 0 {
      est.limit = (limit * self.options.backoff).max(min);
      decreased = true;
    } else if est.window_samples > 0 && est.rtt_noload > 0 {
      let queue = limit * (1.0 - est.rtt_noload as f64 / est.window_min as f64);
      let (alpha, beta) = (3.0 * log, 6.0 * log);
      if queue > beta {
        est.limit = (limit - (queue - beta).min(limit / 2.0).max(log)).max(min);
        decreased = true;
      } else if used && queue < log {
        clear = true;
        let step = if est.clear_windows + 1 >= CLEAR_WINDOWS_BEFORE_BIG_STEP { beta } else { log };
        est.limit = (limit + step).min(max);
      } else if used && queue < alpha {
        est.limit = (limit + log).min(max);
      }
    }
    est.clear_windows = if clear { est.clear_windows + 1 } else { 0 };
    if !decreased {
      est.consecutive_decreases = 0;
    } else {
      if est.consecutive_decreases == 0 {
        est.limit_before_decreases = limit;
      }
      est.consecutive_decreases += 1;
    }
    // Latency still high after the limit fell by half over several windows: not a queue of ours.
    let collapsed = est.consecutive_decreases >= DECREASES_BEFORE_PROBE && est.limit <= est.limit_before_decreases / 2.0;
    let recent_rtt = est.window_min;
    self.start_window(est, now);
    if now >= est.next_probe_at || collapsed {
      self.start_probe(est, now, recent_rtt);
    }
    self.publish(est);
  }

  /// Halves the limit so the downstream queue drains, then measures the no-load RTT afresh
  /// on calls started once the calls already in flight have had one RTT to finish.
  /// `recent_rtt`: the minimum RTT of the window just ended (`u64::MAX` when it had none).
  fn start_probe(&self, est: &mut Estimator, now: u64, recent_rtt: u64) {
    let recent_rtt = if recent_rtt == u64::MAX { est.rtt_noload } else { recent_rtt };
    est.clear_windows = 0;
    est.probe = Some(Probe { measure_from: now + recent_rtt.max(est.rtt_noload), saved_limit: est.limit, min_rtt: u64::MAX, samples: 0 });
    est.limit = (est.limit / 2.0).max(self.options.min_limit as f64);
  }

  fn publish(&self, est: &Estimator) {
    let limit = (est.limit.floor() as u32).clamp(self.options.min_limit, self.options.max_limit);
    self.limit.store(limit, Ordering::Release);
  }
}

#[cfg(test)]
mod tests {
  use super::*;
  use crate::limit::clock::FakeClock;

  const MS: u64 = 1_000_000;

  fn limiter(options: AdaptiveOptions) -> (AdaptiveLimiter, Arc<FakeClock>) {
    let clock = Arc::new(FakeClock::new(0));
    (AdaptiveLimiter::with_clock(options, clock.clone()).unwrap(), clock)
  }

  /// Runs `rounds` windows in which `concurrency` calls start together and all finish after
  /// `rtt` (a downstream that serves `capacity` at once and queues the rest).
  fn drive(l: &AdaptiveLimiter, clock: &FakeClock, rounds: usize, base_rtt: u64, capacity: u32) {
    for _ in 0..rounds {
      let mut starts = Vec::new();
      while let Some(start) = l.try_acquire() {
        starts.push(start);
      }
      let n = starts.len() as u64;
      let waves = n.div_ceil(capacity as u64).max(1);
      clock.advance_ns(base_rtt * waves);
      for start in starts {
        l.release(start, Outcome::Success);
      }
    }
  }

  #[test]
  fn admits_up_to_the_limit_and_counts_the_shed() {
    let (l, _) = limiter(AdaptiveOptions { initial_limit: 3, ..Default::default() });
    let tokens: Vec<_> = (0..3).map(|_| l.try_acquire().unwrap()).collect();
    assert_eq!(l.inflight(), 3);
    assert!(l.try_acquire().is_none());
    assert_eq!(l.shed_count(), 1);
    l.release(tokens[0], Outcome::Ignore);
    assert!(l.try_acquire().is_some());
  }

  #[test]
  fn grows_to_the_downstream_capacity_and_stops_there() {
    let (l, clock) = limiter(AdaptiveOptions::default());
    drive(&l, &clock, 150, 10 * MS, 100);
    // This downstream doubles every RTT as soon as the limit passes 100, so the limit cycles
    // around the capacity: it must reach it, not overshoot much, and never fall below half.
    let mut limits = Vec::new();
    for _ in 0..50 {
      drive(&l, &clock, 1, 10 * MS, 100);
      limits.push(l.limit());
    }
    let (low, high) = (*limits.iter().min().unwrap(), *limits.iter().max().unwrap());
    assert!((100..=130).contains(&high), "limit peaks at {high}: should reach just above the capacity 100");
    assert!(low >= 50, "limit fell to {low}");
    assert_eq!(l.rtt_noload_ns(), 10 * MS);
  }

  #[test]
  fn does_not_grow_when_the_limit_is_not_used() {
    let (l, clock) = limiter(AdaptiveOptions::default());
    for _ in 0..100 {
      let start = l.try_acquire().unwrap();
      clock.advance_ms(10);
      l.release(start, Outcome::Success);
    }
    assert_eq!(l.limit(), 20);
  }

  #[test]
  fn a_queue_shrinks_the_limit_at_most_once_per_window() {
    let (l, clock) = limiter(AdaptiveOptions { initial_limit: 100, ..Default::default() });
    // Learn the 10 ms baseline (a window needs WINDOW_SAMPLES calls).
    let starts: Vec<_> = (0..WINDOW_SAMPLES).map(|_| l.try_acquire().unwrap()).collect();
    clock.advance_ms(10);
    for start in starts {
      l.release(start, Outcome::Success);
    }
    assert_eq!(l.limit(), 100, "an unused limit does not grow");
    clock.advance_ms(10);
    // Twenty slow samples in one window: one decrease only (resile: 100 → 1).
    let starts: Vec<_> = (0..20).map(|_| l.try_acquire().unwrap()).collect();
    clock.advance_ms(30);
    for start in starts {
      l.release(start, Outcome::Success);
    }
    let limit = l.limit();
    assert!((50..100).contains(&limit), "one decrease, at most by half: {limit}");
  }

  #[test]
  fn calls_started_under_an_older_limit_do_not_decide_again() {
    let (l, clock) = limiter(AdaptiveOptions { initial_limit: 100, ..Default::default() });
    let starts: Vec<_> = (0..WINDOW_SAMPLES).map(|_| l.try_acquire().unwrap()).collect();
    clock.advance_ms(10);
    for start in starts {
      l.release(start, Outcome::Success);
    }
    // Sixty calls queue downstream: the first three to finish close the window (one decrease)...
    let starts: Vec<_> = (0..60).map(|_| l.try_acquire().unwrap()).collect();
    clock.advance_ms(30);
    for &start in &starts[..3] {
      l.release(start, Outcome::Success);
    }
    let after_first = l.limit();
    assert!(after_first < 100, "the queue shrinks the limit: {after_first}");
    // ...the rest finish well after one more window length, slowly and with drops: they were
    // admitted under the old limit and say nothing about the new one.
    for (i, &start) in starts[3..].iter().enumerate() {
      clock.advance_ms(1);
      l.release(start, if i % 2 == 0 { Outcome::Success } else { Outcome::Dropped });
    }
    assert_eq!(l.limit(), after_first);
  }

  #[test]
  fn a_window_waits_for_enough_samples() {
    let (l, clock) = limiter(AdaptiveOptions { initial_limit: 10, ..Default::default() });
    // Ten calls at once, fully used; two finish, long after one no-load RTT: no decision yet.
    let starts: Vec<_> = (0..10).map(|_| l.try_acquire().unwrap()).collect();
    clock.advance_ms(10);
    for &start in &starts[..WINDOW_SAMPLES as usize - 1] {
      l.release(start, Outcome::Success);
      clock.advance_ms(10);
    }
    assert_eq!(l.limit(), 10);
    l.release(starts[WINDOW_SAMPLES as usize - 1], Outcome::Success);
    assert_eq!(l.limit(), 11, "no queue, limit in use: grows by l = 1");
  }

  #[test]
  fn the_big_step_needs_three_clear_windows_in_a_row() {
    let (l, clock) = limiter(AdaptiveOptions::default());
    let mut limits = Vec::new();
    for _ in 0..4 {
      drive(&l, &clock, 1, 10 * MS, 1000);
      limits.push(l.limit());
    }
    // l = log10(limit): +l, +l, then +6l while the downstream stays clear.
    assert_eq!(limits, vec![21, 22, 30, 39]);
  }

  #[test]
  fn a_probe_waits_one_recent_rtt_for_the_queue_to_drain() {
    let (l, clock) = limiter(AdaptiveOptions { probe_interval_ns: 100 * MS, ..Default::default() });
    drive(&l, &clock, 2, 10 * MS, 1000);
    assert_eq!(l.rtt_noload_ns(), 10 * MS);
    // A queue: calls now take 12 ms; the periodic probe starts at the end of a window.
    while l.lock().probe.is_none() {
      drive(&l, &clock, 1, 12 * MS, 1000);
    }
    let est = l.lock();
    let probe = est.probe.as_ref().unwrap();
    assert_eq!(probe.measure_from, clock.now_ns() + 12 * MS, "measures only calls started once the 12 ms queue drained");
  }

  #[test]
  fn drops_shrink_the_limit_and_plain_errors_leave_the_baseline_alone() {
    let (l, clock) = limiter(AdaptiveOptions { initial_limit: 50, ..Default::default() });
    let start = l.try_acquire().unwrap();
    clock.advance_ms(10);
    l.release(start, Outcome::Success);
    // A fast failure reported as a plain error: no sample.
    let start = l.try_acquire().unwrap();
    clock.advance_ns(100_000);
    l.release(start, Outcome::Ignore);
    assert_eq!(l.rtt_noload_ns(), 10 * MS);
    clock.advance_ms(10);
    let start = l.try_acquire().unwrap();
    clock.advance_ms(10);
    l.release(start, Outcome::Dropped);
    assert_eq!(l.limit(), 45);
  }

  #[test]
  fn never_leaves_the_bounds() {
    let (l, clock) = limiter(AdaptiveOptions { initial_limit: 5, min_limit: 2, max_limit: 8, ..Default::default() });
    drive(&l, &clock, 100, 10 * MS, 1000);
    assert_eq!(l.limit(), 8);
    for _ in 0..100 {
      let start = l.try_acquire().unwrap();
      clock.advance_ms(20);
      l.release(start, Outcome::Dropped);
    }
    assert_eq!(l.limit(), 2);
  }

  #[test]
  fn relearns_a_permanent_latency_step_within_seconds() {
    let (l, clock) = limiter(AdaptiveOptions::default());
    drive(&l, &clock, 200, 10 * MS, 100);
    assert_eq!(l.rtt_noload_ns(), 10 * MS);
    // The downstream's base latency becomes 50 ms for good.
    let step = clock.now_ns();
    let mut relearned_at = None;
    let mut highest = 0;
    while clock.now_ns() - step < 60_000 * MS {
      drive(&l, &clock, 1, 50 * MS, 100);
      if relearned_at.is_none() && l.rtt_noload_ns() >= 50 * MS && l.limit() >= 90 {
        relearned_at = Some(clock.now_ns() - step);
      }
      highest = highest.max(l.limit());
    }
    let took = relearned_at.expect("re-learned the new baseline and regrew the limit");
    assert!(took < 10_000 * MS, "took {} ms", took / MS);
    assert!(highest <= 130, "overshot to {highest}");
  }

  #[test]
  fn periodic_probe_raises_a_baseline_that_is_no_longer_reachable() {
    let (l, clock) = limiter(AdaptiveOptions { probe_interval_ns: 1000 * MS, ..Default::default() });
    drive(&l, &clock, 50, 10 * MS, 100);
    assert_eq!(l.rtt_noload_ns(), 10 * MS);
    // 12 ms: too small a rise to shrink the limit much, so only the periodic probe sees it.
    drive(&l, &clock, 150, 12 * MS, 100);
    assert_eq!(l.rtt_noload_ns(), 12 * MS);
  }

  #[test]
  fn bad_options_are_refused() {
    let bad = |o: AdaptiveOptions| o.validate().unwrap_err();
    assert!(bad(AdaptiveOptions { min_limit: 0, ..Default::default() }).contains("minLimit"));
    assert!(bad(AdaptiveOptions { max_limit: 0, min_limit: 1, ..Default::default() }).contains("maxLimit"));
    assert!(bad(AdaptiveOptions { initial_limit: 2000, ..Default::default() }).contains("initialLimit"));
    assert!(bad(AdaptiveOptions { backoff: 1.0, ..Default::default() }).contains("backoff"));
  }
}
