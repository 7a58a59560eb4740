use super::*;
use crate::limit::clock::FakeClock;

const MS: u64 = 1_000_000;
const S: u64 = 1_000 * MS;

fn consecutive(failures: u32) -> BreakerOptions {
  BreakerOptions { trip: TripOptions::Consecutive { failures }, ..Default::default() }
}

fn breaker(options: BreakerOptions) -> (CircuitBreaker, Arc<FakeClock>) {
  let clock = Arc::new(FakeClock::new(0));
  (CircuitBreaker::with_clock(options, clock.clone(), None).unwrap(), clock)
}

fn call(b: &CircuitBreaker, outcome: Outcome) -> Result<u64, Refusal> {
  let permit = b.try_acquire()?;
  Ok(b.record(permit, outcome))
}

/// Opens `b` with consecutive failures and waits out the longest possible open period.
fn open_then_wait(b: &CircuitBreaker, clock: &FakeClock) {
  while b.state() == State::Closed {
    call(b, Outcome::Failure).unwrap();
  }
  let max = (b.options().max_open_ns as f64 * 1.2) as u64;
  clock.advance_ns(max + 1);
}

#[test]
fn consecutive_failures_count_from_the_last_success() {
  let (b, _) = breaker(consecutive(5));
  for _ in 0..4 {
    call(&b, Outcome::Failure).unwrap();
  }
  call(&b, Outcome::Success).unwrap();
  for _ in 0..4 {
    call(&b, Outcome::Failure).unwrap();
  }
  assert_eq!(b.state(), State::Closed);
  call(&b, Outcome::Failure).unwrap();
  assert_eq!(b.state(), State::Open);
  assert!(matches!(b.try_acquire(), Err(Refusal::RetryAfterNs(ns)) if (8 * S..=12 * S).contains(&ns)));
  assert_eq!(b.calls(), CallCounts { success: 1, failure: 9, ignored: 0, rejected: 1 });
}

#[test]
fn ignored_calls_never_count() {
  let (b, _) = breaker(consecutive(2));
  for _ in 0..100 {
    call(&b, Outcome::Ignore).unwrap();
  }
  call(&b, Outcome::Failure).unwrap();
  assert_eq!(b.state(), State::Closed);
}

#[test]
fn an_idle_gap_ages_the_time_window() {
  let (b, clock) =
    breaker(BreakerOptions { trip: TripOptions::Time { rate: 0.5, window_ns: 30 * S, buckets: 10, min_calls: 5 }, ..Default::default() });
  for _ in 0..4 {
    call(&b, Outcome::Failure).unwrap();
  }
  clock.advance_ns(60 * S);
  call(&b, Outcome::Failure).unwrap();
  assert_eq!(b.state(), State::Closed);
  for _ in 0..4 {
    call(&b, Outcome::Failure).unwrap();
  }
  assert_eq!(b.state(), State::Open, "five failures inside one window do trip");
}

#[test]
fn a_permit_from_before_the_trip_does_not_close_a_half_open_breaker() {
  let (b, clock) = breaker(BreakerOptions { probes: 1, ..consecutive(1) });
  let early = b.try_acquire().unwrap();
  call(&b, Outcome::Failure).unwrap();
  assert_eq!(b.state(), State::Open);
  clock.advance_ns(13 * S);
  let probe = b.try_acquire().unwrap();
  assert_eq!(b.state(), State::HalfOpen);
  b.record(early, Outcome::Success);
  assert_eq!(b.state(), State::HalfOpen, "the early call speaks for generation 0");
  b.record(early, Outcome::Failure);
  assert_eq!(b.state(), State::HalfOpen, "nor can it reopen");
  b.record(probe, Outcome::Success);
  assert_eq!(b.state(), State::Closed);
}

#[test]
fn half_open_admits_exactly_the_probes_and_closes_when_all_succeed() {
  let (b, clock) = breaker(consecutive(1));
  open_then_wait(&b, &clock);
  let probes: Vec<_> = (0..3).map(|_| b.try_acquire().unwrap()).collect();
  assert_eq!(b.state(), State::HalfOpen);
  assert!(matches!(b.try_acquire(), Err(Refusal::RetryAfterNs(_))));
  // A probe that says nothing gives its place back.
  b.record(probes[0], Outcome::Ignore);
  let replacement = b.try_acquire().unwrap();
  assert!(b.try_acquire().is_err());
  b.record(probes[1], Outcome::Success);
  b.record(probes[2], Outcome::Success);
  assert_eq!(b.state(), State::HalfOpen, "two of three");
  b.record(replacement, Outcome::Success);
  assert_eq!(b.state(), State::Closed);
  let log: Vec<_> = b.transitions_since(0).iter().map(|t| (t.from, t.to, t.reason)).collect();
  assert_eq!(
    log,
    vec![
      (State::Closed, State::Open, Reason::Failures),
      (State::Open, State::HalfOpen, Reason::OpenElapsed),
      (State::HalfOpen, State::Closed, Reason::ProbesSucceeded),
    ]
  );
}

#[test]
fn the_open_period_doubles_after_each_failed_round_up_to_the_cap_with_jitter() {
  let options = BreakerOptions { open_ns: 10 * S, max_open_ns: 60 * S, ..consecutive(1) };
  let (b, clock) = breaker(options);
  call(&b, Outcome::Failure).unwrap();
  let mut periods = Vec::new();
  for _ in 0..6 {
    let Err(Refusal::RetryAfterNs(period)) = b.try_acquire() else { panic!("open") };
    periods.push(period);
    clock.advance_ns(period);
    call(&b, Outcome::Failure).unwrap();
  }
  for (period, base) in periods.iter().zip([10, 20, 40, 60, 60, 60]) {
    let base = base * S;
    assert!(*period >= base * 8 / 10 && *period <= base * 12 / 10, "{period} vs {base}");
  }
  clock.advance_ns(80 * S);
  for _ in 0..3 {
    call(&b, Outcome::Success).unwrap();
  }
  assert_eq!(b.state(), State::Closed);
  call(&b, Outcome::Failure).unwrap();
  let Err(Refusal::RetryAfterNs(period)) = b.try_acquire() else { panic!("open") };
  assert!(period <= 12 * S, "closing resets the period: {period}");
}

#[test]
fn isolation_is_refcounted_and_reset_does_not_lift_it() {
  let (b, _) = breaker(consecutive(3));
  assert_eq!(b.isolate(), 1);
  assert_eq!(b.isolate(), 2);
  assert_eq!(b.try_acquire(), Err(Refusal::Isolated));
  b.reset();
  assert_eq!(b.state(), State::Isolated);
  assert_eq!(b.release_isolation(), 1);
  assert_eq!(b.state(), State::Isolated);
  assert_eq!(b.release_isolation(), 0);
  assert_eq!(b.state(), State::Closed);
  assert_eq!(b.release_isolation(), 0, "an extra release is ignored");
  call(&b, Outcome::Failure).unwrap();
  call(&b, Outcome::Failure).unwrap();
  b.reset();
  call(&b, Outcome::Failure).unwrap();
  assert_eq!(b.state(), State::Closed, "reset emptied the counts");
  let before = b.generation();
  b.reset();
  assert_eq!(b.generation(), before, "resetting a closed breaker is no transition");
}

#[test]
fn a_snapshot_restores_an_open_breaker() {
  let (b, clock) = breaker(consecutive(1));
  call(&b, Outcome::Failure).unwrap();
  clock.advance_ns(2 * S);
  let snapshot = b.snapshot();
  assert_eq!(snapshot.state, State::Open);
  assert_eq!(snapshot.generation, 1);
  let other_clock = Arc::new(FakeClock::new(100 * S));
  let restored = CircuitBreaker::with_clock(*b.options(), other_clock.clone(), Some(snapshot)).unwrap();
  assert_eq!(restored.state(), State::Open);
  assert_eq!(restored.try_acquire(), Err(Refusal::RetryAfterNs(snapshot.open_remaining_ns)));
  other_clock.advance_ns(snapshot.open_remaining_ns);
  assert!(restored.try_acquire().is_ok());
  assert_eq!(restored.state(), State::HalfOpen);
}

#[test]
fn the_state_word_is_what_a_closed_breaker_admits_with() {
  let (b, clock) = breaker(consecutive(1));
  let word = || b.state_word().load(std::sync::atomic::Ordering::Acquire);
  assert_eq!(word(), 0, "closed, generation 0");
  assert_eq!(b.try_acquire().unwrap().generation, word() >> 2);
  call(&b, Outcome::Failure).unwrap();
  assert_eq!(word(), 1 << 2 | State::Open as u64);
  open_then_wait(&b, &clock);
  for _ in 0..3 {
    call(&b, Outcome::Success).unwrap();
  }
  assert_eq!(word() & 3, State::Closed as u64);
  assert_eq!(word() >> 2, b.generation());
  assert_eq!(b.try_acquire().unwrap().generation, word() >> 2);
}

#[test]
fn slow_calls_open_a_rate_breaker() {
  let slow_calls = Some(SlowCallOptions { threshold_ns: 100 * MS, rate: 0.5 });
  let (b, clock) = breaker(BreakerOptions { trip: TripOptions::Count { rate: 0.5, size: 4, min_calls: 4 }, slow_calls, ..Default::default() });
  for _ in 0..3 {
    let permit = b.try_acquire().unwrap();
    clock.advance_ns(150 * MS);
    b.record(permit, Outcome::Success);
    assert_eq!(b.state(), State::Closed);
  }
  call(&b, Outcome::Success).unwrap();
  assert_eq!(b.state(), State::Open);
  assert_eq!(b.transitions_since(0)[0].reason, Reason::SlowCalls);
}

#[test]
fn threads_racing_for_probes_get_exactly_the_probes() {
  for _ in 0..20 {
    let (b, clock) = breaker(consecutive(1));
    open_then_wait(&b, &clock);
    let admitted: usize = std::thread::scope(|s| {
      let handles: Vec<_> = (0..8).map(|_| s.spawn(|| (0..1000).filter(|_| b.try_acquire().is_ok()).count())).collect();
      handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(admitted, 3);
  }
}

/// A property over random operation sequences: probes in flight never exceed `probes`, the
/// generation only grows and equals the transitions made, and the atomic word agrees with
/// the state under the lock.
#[test]
fn random_operation_sequences_keep_the_invariants() {
  for seed in 0..200 {
    let mut rng = fastrand::Rng::with_seed(seed);
    let options = match rng.u8(0..3) {
      0 => consecutive(rng.u32(1..5)),
      1 => BreakerOptions { trip: TripOptions::Count { rate: 0.5, size: 8, min_calls: rng.u32(1..8) }, ..Default::default() },
      _ => BreakerOptions { trip: TripOptions::Time { rate: 0.3, window_ns: 10 * S, buckets: 5, min_calls: 3 }, ..Default::default() },
    };
    let (b, clock) = breaker(options);
    let mut held: Vec<Permit> = Vec::new();
    let mut isolations = 0;
    let mut last_generation = 0;
    for _ in 0..500 {
      match rng.u8(0..10) {
        0..=3 => {
          if let Ok(p) = b.try_acquire() {
            held.push(p);
          }
        }
        4..=7 if !held.is_empty() => {
          let p = held.swap_remove(rng.usize(0..held.len()));
          b.record(p, [Outcome::Success, Outcome::Failure, Outcome::Ignore][rng.usize(0..3)]);
        }
        8 => clock.advance_ns(rng.u64(0..20 * S)),
        _ => match rng.u8(0..4) {
          0 => {
            b.isolate();
            isolations += 1;
          }
          1 if isolations > 0 => {
            b.release_isolation();
            isolations -= 1;
          }
          _ => b.reset(),
        },
      }
      let inner = b.lock();
      assert!(inner.probes_out <= b.options.probes, "seed {seed}");
      assert!(inner.generation >= last_generation);
      last_generation = inner.generation;
      assert_eq!(b.word.load(Ordering::Relaxed), pack(inner.generation, inner.state), "seed {seed}");
      assert_eq!(inner.transitions.iter().flatten().sum::<u64>(), inner.generation, "seed {seed}");
      assert_eq!(inner.state == State::Isolated, isolations > 0, "seed {seed}");
    }
  }
}
