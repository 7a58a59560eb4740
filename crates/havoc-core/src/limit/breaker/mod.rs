//! A circuit breaker shared by every thread of the process.
//!
//! Closed, it lets every call through and feeds each outcome to its trip rule
//! ([`consecutive`], [`count`] or [`time`], behind [`rule::TripRule`]). When the rule says so
//! it opens: every call is refused at once for an open period that doubles after each failed
//! half-open round (jittered, capped). Then it turns half-open and admits `probes` calls at
//! once; it closes when they all succeed and opens again on the first failure.
//!
//! Every transition bumps a generation counter and every permit carries the generation it
//! was issued in: an outcome from an earlier generation (a call admitted before the trip that
//! ends while half-open) never moves the breaker. Callers' cancellations and other calls that
//! say nothing about the dependency are reported as [`Outcome::Ignore`] and never count.
//!
//! Concurrency: admission while closed reads one atomic word (state and generation) without
//! locking. Everything else — outcomes, the open → half-open step, probe accounting — takes
//! one short mutex: an outcome updates the rule's window and may change the state and the
//! generation together, which a lock-free design could only do by making each window
//! lock-free too. The critical sections are O(1) (O(buckets) for a time window) and never
//! allocate; nothing blocks while holding it.
//!
//! ```
//! use std::sync::Arc;
//! use havoc_core::limit::breaker::{BreakerOptions, CircuitBreaker, Outcome, State, TripOptions};
//! use havoc_core::limit::FakeClock;
//!
//! let clock = Arc::new(FakeClock::new(0));
//! let options = BreakerOptions { trip: TripOptions::Consecutive { failures: 2 }, jitter: 0.0, ..Default::default() };
//! let breaker = CircuitBreaker::with_clock(options, clock.clone(), None).unwrap();
//! let early = breaker.try_acquire().unwrap(); // admitted while closed
//! for _ in 0..2 {
//!   let permit = breaker.try_acquire().unwrap();
//!   breaker.record(permit, Outcome::Failure);
//! }
//! assert_eq!(breaker.state(), State::Open);
//! assert!(breaker.try_acquire().is_err());
//! clock.advance_ms(10_000); // the open period (10 s by default) is over: one probe of three
//! let probe = breaker.try_acquire().unwrap();
//! breaker.record(early, Outcome::Success); // from an earlier generation: changes nothing
//! assert_eq!(breaker.state(), State::HalfOpen);
//! breaker.record(probe, Outcome::Failure); // a failed probe reopens it, for 20 s now
//! assert_eq!(breaker.state(), State::Open);
//! ```

pub mod consecutive;
pub mod count;
mod options;
pub mod rule;
pub mod time;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

pub use options::{BreakerOptions, SlowCallOptions, TripOptions};
use rule::{Call, Trip, TripRule};

use super::clock::{Clock, MonotonicClock};

/// Where a breaker stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
  /// Calls go through and are counted.
  Closed = 0,
  /// Calls are refused until the open period ends.
  Open = 1,
  /// A few probes go through; the others are refused.
  HalfOpen = 2,
  /// Held open by hand ([`CircuitBreaker::isolate`]) until every isolation is released.
  Isolated = 3,
}

impl State {
  /// Every state, indexed by `State as usize`.
  pub const ALL: [State; 4] = [State::Closed, State::Open, State::HalfOpen, State::Isolated];

  /// The state's name as the JavaScript API spells it.
  pub fn as_str(self) -> &'static str {
    match self {
      State::Closed => "closed",
      State::Open => "open",
      State::HalfOpen => "half-open",
      State::Isolated => "isolated",
    }
  }
}

/// Why a transition happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
  /// The trip rule counted too many failures.
  Failures,
  /// The slow-call rate was reached.
  SlowCalls,
  /// The open period ended (open → half-open).
  OpenElapsed,
  /// A probe failed (half-open → open).
  ProbeFailed,
  /// Every probe succeeded (half-open → closed).
  ProbesSucceeded,
  /// [`CircuitBreaker::isolate`].
  Isolated,
  /// The last isolation was released.
  IsolationReleased,
  /// [`CircuitBreaker::reset`].
  Reset,
}

impl Reason {
  /// The reason's name as the JavaScript API spells it.
  pub fn as_str(self) -> &'static str {
    match self {
      Reason::Failures => "failures",
      Reason::SlowCalls => "slow-calls",
      Reason::OpenElapsed => "open-elapsed",
      Reason::ProbeFailed => "probe-failed",
      Reason::ProbesSucceeded => "probes-succeeded",
      Reason::Isolated => "isolated",
      Reason::IsolationReleased => "isolation-released",
      Reason::Reset => "reset",
    }
  }
}

/// One change of state. `generation` is the generation it started (each transition adds one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transition {
  /// The generation this transition started.
  pub generation: u64,
  /// The state left.
  pub from: State,
  /// The state entered.
  pub to: State,
  /// Why.
  pub reason: Reason,
  /// When, on the breaker's clock.
  pub at_ns: u64,
}

/// How a call ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
  /// The dependency answered.
  Success,
  /// The dependency failed.
  Failure,
  /// Says nothing about the dependency (the caller's abort, a client error): never counted;
  /// a half-open probe that ends so gives its place back.
  Ignore,
}

impl Outcome {
  /// 0 success, 1 failure, 2 ignore.
  pub fn from_index(index: u32) -> Option<Outcome> {
    match index {
      0 => Some(Outcome::Success),
      1 => Some(Outcome::Failure),
      2 => Some(Outcome::Ignore),
      _ => None,
    }
  }
}

/// The right to make one call, to be ended with [`CircuitBreaker::record`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Permit {
  /// The generation the permit was issued in.
  pub generation: u64,
  /// When it was issued, on the breaker's clock (read only for the slow-call rule; else 0
  /// while closed).
  pub start_ns: u64,
}

/// Why a call was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
  /// Open (or half-open with every probe place taken): try again in this long.
  RetryAfterNs(u64),
  /// Isolated by hand: no time is known.
  Isolated,
}

/// Cumulative call counts since creation, process-wide.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CallCounts {
  /// Outcomes reported as [`Outcome::Success`] (stale permits included).
  pub success: u64,
  /// Outcomes reported as [`Outcome::Failure`] (stale permits included).
  pub failure: u64,
  /// Outcomes reported as [`Outcome::Ignore`].
  pub ignored: u64,
  /// Calls refused by [`CircuitBreaker::try_acquire`].
  pub rejected: u64,
}

/// What a breaker can be restored to (and what [`CircuitBreaker::snapshot`] reports).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Snapshot {
  /// The state (restored as open for one open period when isolated: isolation belongs to its holders).
  pub state: State,
  /// Transitions so far; a restored breaker continues counting from it.
  pub generation: u64,
  /// Open: how long the open period still runs. 0 otherwise.
  pub open_remaining_ns: u64,
  /// Failed half-open rounds since the breaker last closed (the open period's exponent).
  pub half_open_failures: u32,
}

/// Transitions kept for listeners that catch up late (`transitions_since`).
pub const TRANSITION_LOG: usize = 256;

struct Inner {
  state: State,
  generation: u64,
  rule: Box<dyn TripRule>,
  open_until: u64,
  /// Length of the last open period.
  period_ns: u64,
  half_open_failures: u32,
  probes_out: u32,
  probes_ok: u32,
  isolations: u32,
  rng: fastrand::Rng,
  log: VecDeque<Transition>,
  /// Transitions by `[from][to]`.
  transitions: [[u64; 4]; 4],
}

/// A circuit breaker; see the module documentation.
pub struct CircuitBreaker {
  options: BreakerOptions,
  clock: Arc<dyn Clock>,
  /// `generation << 2 | state`: read without locking by admission while closed.
  word: AtomicU64,
  success: AtomicU64,
  failure: AtomicU64,
  ignored: AtomicU64,
  rejected: AtomicU64,
  /// Probe places taken while half-open, mirrored for readers (the truth is in `inner`).
  probes_out: AtomicU32,
  inner: Mutex<Inner>,
}

impl std::fmt::Debug for CircuitBreaker {
  fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    f.debug_struct("CircuitBreaker").field("state", &self.state()).field("generation", &self.generation()).finish()
  }
}

fn pack(generation: u64, state: State) -> u64 {
  generation << 2 | state as u64
}

impl CircuitBreaker {
  /// A closed breaker on the process's monotonic clock.
  pub fn new(options: BreakerOptions) -> Result<Self, String> {
    Self::with_clock(options, Arc::new(MonotonicClock), None)
  }

  /// A breaker reading time from `clock`, starting from `initial` (closed when `None`). An
  /// initial `Isolated` state starts open for one open period: isolation belongs to its holders.
  pub fn with_clock(options: BreakerOptions, clock: Arc<dyn Clock>, initial: Option<Snapshot>) -> Result<Self, String> {
    options.validate()?;
    let now = clock.now_ns();
    let mut inner = Inner {
      state: State::Closed,
      generation: 0,
      rule: options.rule(),
      open_until: 0,
      period_ns: options.open_ns,
      half_open_failures: 0,
      probes_out: 0,
      probes_ok: 0,
      isolations: 0,
      rng: fastrand::Rng::new(),
      log: VecDeque::with_capacity(TRANSITION_LOG),
      transitions: [[0; 4]; 4],
    };
    if let Some(snapshot) = initial {
      inner.generation = snapshot.generation;
      inner.half_open_failures = snapshot.half_open_failures.min(63);
      match snapshot.state {
        State::Closed => {}
        // A half-open breaker restored elsewhere lost its probes: it probes afresh.
        State::HalfOpen => (inner.state, inner.open_until) = (State::Open, now),
        State::Open => (inner.state, inner.open_until) = (State::Open, now.saturating_add(snapshot.open_remaining_ns)),
        State::Isolated => (inner.state, inner.open_until) = (State::Open, now.saturating_add(options.open_ns)),
      }
    }
    Ok(CircuitBreaker {
      word: AtomicU64::new(pack(inner.generation, inner.state)),
      options,
      clock,
      success: AtomicU64::new(0),
      failure: AtomicU64::new(0),
      ignored: AtomicU64::new(0),
      rejected: AtomicU64::new(0),
      probes_out: AtomicU32::new(0),
      inner: Mutex::new(inner),
    })
  }

  /// The options it was made with.
  pub fn options(&self) -> &BreakerOptions {
    &self.options
  }

  /// Now, on the breaker's clock.
  pub fn now_ns(&self) -> u64 {
    self.clock.now_ns()
  }

  /// The current state (an open breaker whose period has ended reads open until a call
  /// turns it half-open).
  pub fn state(&self) -> State {
    State::ALL[(self.word.load(Ordering::Acquire) & 3) as usize]
  }

  /// The current generation: how many transitions since creation (or since the restored one).
  pub fn generation(&self) -> u64 {
    self.word.load(Ordering::Acquire) >> 2
  }

  /// The word admission reads while closed, `generation << 2 | state as u64`, for a binding
  /// that maps it into another runtime (the N-API binding hands it to JS, which then admits a
  /// call on a closed breaker with one load instead of a call into the addon). Only the
  /// breaker writes it.
  pub fn state_word(&self) -> &AtomicU64 {
    &self.word
  }

  /// Cumulative call counts.
  pub fn calls(&self) -> CallCounts {
    CallCounts {
      success: self.success.load(Ordering::Relaxed),
      failure: self.failure.load(Ordering::Relaxed),
      ignored: self.ignored.load(Ordering::Relaxed),
      rejected: self.rejected.load(Ordering::Relaxed),
    }
  }

  /// Transitions since creation, by `[from as usize][to as usize]`.
  pub fn transition_counts(&self) -> [[u64; 4]; 4] {
    self.lock().transitions
  }

  /// The transitions that started generations after `generation`, oldest first; only the
  /// last [`TRANSITION_LOG`] are kept.
  pub fn transitions_since(&self, generation: u64) -> Vec<Transition> {
    self.lock().log.iter().filter(|t| t.generation > generation).copied().collect()
  }

  /// Where the breaker stands, in a form [`with_clock`](Self::with_clock) can restore.
  pub fn snapshot(&self) -> Snapshot {
    let now = self.clock.now_ns();
    let inner = self.lock();
    Snapshot {
      state: inner.state,
      generation: inner.generation,
      open_remaining_ns: if inner.state == State::Open { inner.open_until.saturating_sub(now) } else { 0 },
      half_open_failures: inner.half_open_failures,
    }
  }

  fn lock(&self) -> MutexGuard<'_, Inner> {
    self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
  }

  /// A permit for one call, or why not. Closed: one atomic load. Open past its period: the
  /// caller becomes the first probe of the half-open round.
  pub fn try_acquire(&self) -> Result<Permit, Refusal> {
    let word = self.word.load(Ordering::Acquire);
    if word & 3 == State::Closed as u64 {
      // The start time matters only to the slow-call rule: no clock read without one.
      let start_ns = if self.options.slow_calls.is_some() { self.clock.now_ns() } else { 0 };
      return Ok(Permit { generation: word >> 2, start_ns });
    }
    let now = self.clock.now_ns();
    let mut inner = self.lock();
    let refusal = match inner.state {
      State::Closed => return Ok(Permit { generation: inner.generation, start_ns: now }),
      State::Isolated => Refusal::Isolated,
      State::Open if now < inner.open_until => Refusal::RetryAfterNs(inner.open_until - now),
      State::Open => {
        self.transition(&mut inner, State::HalfOpen, Reason::OpenElapsed, now);
        return Ok(self.take_probe(&mut inner, now));
      }
      State::HalfOpen if inner.probes_out < self.options.probes => return Ok(self.take_probe(&mut inner, now)),
      State::HalfOpen => Refusal::RetryAfterNs(inner.period_ns),
    };
    self.rejected.fetch_add(1, Ordering::Relaxed);
    Err(refusal)
  }

  fn take_probe(&self, inner: &mut Inner, now: u64) -> Permit {
    inner.probes_out += 1;
    self.probes_out.store(inner.probes_out, Ordering::Relaxed);
    Permit { generation: inner.generation, start_ns: now }
  }

  /// Ends the call `permit` was issued for. Returns the generation after it, so a caller
  /// can tell whether anything changed.
  pub fn record(&self, permit: Permit, outcome: Outcome) -> u64 {
    let counter = match outcome {
      Outcome::Success => &self.success,
      Outcome::Failure => &self.failure,
      Outcome::Ignore => &self.ignored,
    };
    counter.fetch_add(1, Ordering::Relaxed);
    let now = self.clock.now_ns();
    let mut inner = self.lock();
    if permit.generation != inner.generation {
      return inner.generation;
    }
    match (inner.state, outcome) {
      (State::Closed, Outcome::Ignore) => {}
      (State::Closed, _) => {
        let slow = self.options.slow_calls.is_some_and(|s| now.saturating_sub(permit.start_ns) >= s.threshold_ns);
        let call = Call { failure: outcome == Outcome::Failure, slow };
        if let Some(trip) = inner.rule.record(now, call) {
          let reason = if trip == Trip::SlowCalls { Reason::SlowCalls } else { Reason::Failures };
          self.open(&mut inner, reason, now);
        }
      }
      (State::HalfOpen, Outcome::Ignore) => {
        inner.probes_out = inner.probes_out.saturating_sub(1);
        self.probes_out.store(inner.probes_out, Ordering::Relaxed);
      }
      (State::HalfOpen, Outcome::Failure) => {
        inner.half_open_failures = (inner.half_open_failures + 1).min(63);
        self.open(&mut inner, Reason::ProbeFailed, now);
      }
      (State::HalfOpen, Outcome::Success) => {
        inner.probes_ok += 1;
        if inner.probes_ok >= self.options.probes {
          inner.half_open_failures = 0;
          self.transition(&mut inner, State::Closed, Reason::ProbesSucceeded, now);
        }
      }
      // No permit is issued in these states within their generation.
      (State::Open | State::Isolated, _) => {}
    }
    inner.generation
  }

  /// Holds the breaker open until as many [`release_isolation`](Self::release_isolation)
  /// calls; returns how many isolations are held now.
  pub fn isolate(&self) -> u32 {
    let now = self.clock.now_ns();
    let mut inner = self.lock();
    inner.isolations += 1;
    if inner.isolations == 1 {
      self.transition(&mut inner, State::Isolated, Reason::Isolated, now);
    }
    inner.isolations
  }

  /// Releases one isolation; the last one closes the breaker with empty counts. An extra
  /// release is ignored. Returns how many isolations are still held.
  pub fn release_isolation(&self) -> u32 {
    let now = self.clock.now_ns();
    let mut inner = self.lock();
    if inner.isolations == 0 {
      return 0;
    }
    inner.isolations -= 1;
    if inner.isolations == 0 {
      inner.half_open_failures = 0;
      self.transition(&mut inner, State::Closed, Reason::IsolationReleased, now);
    }
    inner.isolations
  }

  /// Closes the breaker with empty counts and the first open period. An isolated breaker
  /// stays isolated: only its holders release it.
  pub fn reset(&self) {
    let now = self.clock.now_ns();
    let mut inner = self.lock();
    if inner.isolations > 0 {
      return;
    }
    inner.half_open_failures = 0;
    if inner.state == State::Closed {
      inner.rule.reset();
    } else {
      self.transition(&mut inner, State::Closed, Reason::Reset, now);
    }
  }

  fn open(&self, inner: &mut Inner, reason: Reason, now: u64) {
    let base = self.options.open_ns.saturating_mul(1 << inner.half_open_failures.min(40)).min(self.options.max_open_ns);
    let factor = 1.0 + self.options.jitter * (2.0 * inner.rng.f64() - 1.0);
    inner.period_ns = ((base as f64 * factor) as u64).max(1);
    inner.open_until = now.saturating_add(inner.period_ns);
    self.transition(inner, State::Open, reason, now);
  }

  fn transition(&self, inner: &mut Inner, to: State, reason: Reason, now: u64) {
    let from = inner.state;
    inner.state = to;
    inner.generation += 1;
    inner.rule.reset();
    inner.probes_out = 0;
    inner.probes_ok = 0;
    self.probes_out.store(0, Ordering::Relaxed);
    inner.transitions[from as usize][to as usize] += 1;
    if inner.log.len() == TRANSITION_LOG {
      inner.log.pop_front();
    }
    inner.log.push_back(Transition { generation: inner.generation, from, to, reason, at_ns: now });
    self.word.store(pack(inner.generation, to), Ordering::Release);
  }
}

#[cfg(test)]
mod tests;
