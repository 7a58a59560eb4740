//! A lock-free token bucket, written as GCRA (generic cell rate algorithm).
//!
//! The whole state is one `AtomicU64`: the theoretical arrival time (TAT) of the next call,
//! in ticks of 1/64 ns since the bucket was created. A call of cost `c` is admitted when
//! `max(TAT, now) + c·T − now ≤ burst·T` (T: the emission interval of one token), and
//! publishes the new TAT with one compare-and-swap. No mutex, no floating point on the
//! hot path, and no refill loop: the bucket is "full" whenever TAT lies in the past.
//!
//! Ticks are counted modulo 2^64, as 2^64 ticks last only about 9.1 years. TAT never runs
//! more than `burst·T` ahead of the clock, so it is read relative to now: a distance
//! `TAT − now` (mod 2^64) within `burst·T` is what is used, anything else means TAT lies in
//! the past. That is exact for a bucket that admits a call at least once every
//! 2^64 − burst·T ticks (over 4.5 years, about 9 for usual options); one idle for longer may
//! read as partly used — it then refuses for at most the burst's span, and never admits more.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::clock::{Clock, MonotonicClock};

/// Sub-nanosecond resolution of the emission interval, so that 3 tokens/s is not rounded
/// to a multiple of a nanosecond 3 billion times a second.
const TICKS_PER_NS: u64 = 64;

/// What a token bucket admits.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BucketOptions {
  /// Tokens per `per_ns`; may be fractional (0.5 per second admits one call every 2 s).
  pub rate: f64,
  /// The period of `rate`, in nanoseconds.
  pub per_ns: u64,
  /// Tokens available at once (the bucket's size), independent of `rate`.
  pub burst: u64,
}

impl BucketOptions {
  /// Checks the options; the message names the offending field.
  pub fn validate(&self) -> Result<(), String> {
    if !(self.rate.is_finite() && self.rate > 0.0) {
      return Err(format!("rate must be a finite number > 0 (got {})", self.rate));
    }
    if self.per_ns == 0 {
      return Err("per must be a positive duration".into());
    }
    if self.burst == 0 {
      return Err("burst must be an integer >= 1".into());
    }
    let interval = self.per_ns as f64 * TICKS_PER_NS as f64 / self.rate;
    if interval < 1.0 {
      return Err(format!("rate {} per {} ns is too high (more than 64 tokens per nanosecond)", self.rate, self.per_ns));
    }
    if interval * self.burst as f64 >= (1u64 << 62) as f64 {
      return Err(format!("burst {} at this rate spans more than 2^56 ns (about 2 years)", self.burst));
    }
    Ok(())
  }
}

/// Why a call was not admitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
  /// Admitted if retried after this many nanoseconds (unless someone else takes the tokens).
  RetryAfterNs(u64),
  /// The cost is larger than the burst: this call can never be admitted.
  Never,
}

/// A token bucket shared by every thread that holds it.
pub struct TokenBucket {
  options: BucketOptions,
  /// Emission interval of one token, in ticks (rounded up, so the bucket never admits more than the rate).
  interval: u64,
  /// `burst · interval`: how far TAT may run ahead of now.
  tolerance: u64,
  origin_ns: u64,
  tat: AtomicU64,
  clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for TokenBucket {
  fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    f.debug_struct("TokenBucket").field("options", &self.options).field("tat", &self.tat).finish()
  }
}

impl TokenBucket {
  /// A full bucket on the process's monotonic clock.
  pub fn new(options: BucketOptions) -> Result<Self, String> {
    Self::with_clock(options, Arc::new(MonotonicClock))
  }

  /// A full bucket on `clock`.
  pub fn with_clock(options: BucketOptions, clock: Arc<dyn Clock>) -> Result<Self, String> {
    options.validate()?;
    let interval = (options.per_ns as f64 * TICKS_PER_NS as f64 / options.rate).ceil() as u64;
    Ok(TokenBucket { options, interval, tolerance: interval * options.burst, origin_ns: clock.now_ns(), tat: AtomicU64::new(0), clock })
  }

  pub fn options(&self) -> &BucketOptions {
    &self.options
  }

  /// Ticks since the bucket was created, modulo 2^64.
  fn now_ticks(&self) -> u64 {
    self.clock.now_ns().wrapping_sub(self.origin_ns).wrapping_mul(TICKS_PER_NS)
  }

  /// How far `tat` lies ahead of `now`, in ticks (at most `tolerance`); 0 when it lies in
  /// the past. `now` must be read after `tat` was loaded, so that it is no older than the
  /// clock reading that published `tat` and the distance never exceeds `tolerance` (see
  /// the module comment).
  fn used(&self, tat: u64, now: u64) -> u64 {
    let ahead = tat.wrapping_sub(now);
    if ahead <= self.tolerance {
      ahead
    } else {
      0
    }
  }

  /// Takes `cost` tokens if they are there. Never blocks; lock-free (one CAS, retried only
  /// when another thread changed the bucket in between).
  pub fn try_acquire(&self, cost: u64) -> Result<(), Refusal> {
    if cost > self.options.burst {
      return Err(Refusal::Never);
    }
    let increment = cost * self.interval;
    let mut tat = self.tat.load(Ordering::Acquire);
    loop {
      let now = self.now_ticks();
      // `max(TAT, now) + cost·T − now`: at most twice the tolerance, below 2^64.
      let ahead = self.used(tat, now) + increment;
      if ahead > self.tolerance {
        return Err(Refusal::RetryAfterNs(ticks_to_ns_ceil(ahead - self.tolerance)));
      }
      match self.tat.compare_exchange_weak(tat, now.wrapping_add(ahead), Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => return Ok(()),
        // Read the clock again: the new TAT may come from a later reading than `now`.
        Err(current) => tat = current,
      }
    }
  }

  /// How long until `cost` tokens are available (0: now), without taking them.
  pub fn retry_after(&self, cost: u64) -> Result<u64, Refusal> {
    if cost > self.options.burst {
      return Err(Refusal::Never);
    }
    let tat = self.tat.load(Ordering::Acquire);
    let ahead = self.used(tat, self.now_ticks()) + cost * self.interval;
    Ok(ticks_to_ns_ceil(ahead.saturating_sub(self.tolerance)))
  }

  /// Tokens available now (rounded down).
  pub fn available(&self) -> u64 {
    let tat = self.tat.load(Ordering::Acquire);
    (self.tolerance - self.used(tat, self.now_ticks())) / self.interval
  }
}

fn ticks_to_ns_ceil(ticks: u64) -> u64 {
  ticks.div_ceil(TICKS_PER_NS)
}

#[cfg(test)]
mod tests {
  use super::*;
  use crate::limit::clock::FakeClock;

  const SECOND: u64 = 1_000_000_000;

  fn bucket(rate: f64, burst: u64) -> (TokenBucket, Arc<FakeClock>) {
    let clock = Arc::new(FakeClock::new(1_000));
    let bucket = TokenBucket::with_clock(BucketOptions { rate, per_ns: SECOND, burst }, clock.clone()).unwrap();
    (bucket, clock)
  }

  fn drain(bucket: &TokenBucket) -> u64 {
    let mut n = 0;
    while bucket.try_acquire(1).is_ok() {
      n += 1;
    }
    n
  }

  #[test]
  fn starts_full_with_burst_tokens_then_refills_at_the_rate() {
    let (b, clock) = bucket(10.0, 5);
    assert_eq!(b.available(), 5);
    assert_eq!(drain(&b), 5);
    clock.advance_ms(99);
    assert!(b.try_acquire(1).is_err());
    clock.advance_ms(1);
    assert!(b.try_acquire(1).is_ok());
    clock.advance_ns(10 * SECOND);
    assert_eq!(drain(&b), 5, "never holds more than the burst");
  }

  #[test]
  fn fractional_rate_admits_one_call_every_two_seconds() {
    let (b, clock) = bucket(0.5, 1);
    assert!(b.try_acquire(1).is_ok());
    assert_eq!(b.try_acquire(1), Err(Refusal::RetryAfterNs(2 * SECOND)));
    clock.advance_ns(2 * SECOND - 1);
    assert!(b.try_acquire(1).is_err());
    clock.advance_ns(1);
    assert!(b.try_acquire(1).is_ok());
  }

  #[test]
  fn burst_is_independent_of_rate() {
    let (b, _) = bucket(1.0, 100);
    assert_eq!(drain(&b), 100);
    let (b, _) = bucket(1000.0, 1);
    assert_eq!(drain(&b), 1);
  }

  #[test]
  fn cost_takes_several_tokens_and_a_cost_above_burst_is_never_admitted() {
    let (b, clock) = bucket(10.0, 10);
    assert!(b.try_acquire(7).is_ok());
    assert_eq!(b.try_acquire(4), Err(Refusal::RetryAfterNs(100_000_000)));
    assert!(b.try_acquire(3).is_ok());
    assert_eq!(b.try_acquire(11), Err(Refusal::Never));
    assert_eq!(b.retry_after(11), Err(Refusal::Never));
    clock.advance_ns(SECOND);
    assert!(b.try_acquire(10).is_ok());
    assert!(b.try_acquire(0).is_ok(), "a zero cost always passes");
  }

  #[test]
  fn retry_after_is_exact_and_does_not_consume() {
    let (b, clock) = bucket(3.0, 1);
    assert_eq!(b.retry_after(1), Ok(0));
    assert!(b.try_acquire(1).is_ok());
    let wait = b.retry_after(1).unwrap();
    assert_eq!(wait, 333_333_334, "one third of a second, rounded up");
    assert_eq!(b.retry_after(1).unwrap(), wait);
    clock.advance_ns(wait - 1);
    assert!(b.try_acquire(1).is_err());
    clock.advance_ns(1);
    assert!(b.try_acquire(1).is_ok());
  }

  #[test]
  fn never_admits_more_than_burst_plus_rate_times_elapsed() {
    // 3 per second for 1000 simulated seconds, polled every 7 ms.
    let (b, clock) = bucket(3.0, 4);
    let mut admitted = 0;
    for _ in 0..(1000 * SECOND / 7_000_000) {
      admitted += drain(&b);
      clock.advance_ns(7_000_000);
    }
    let elapsed = 1000.0 - 0.007;
    assert!(admitted as f64 <= 4.0 + 3.0 * elapsed, "{admitted}");
    assert!(admitted as f64 >= 3.0 * elapsed - 1.0, "{admitted}: the rate is not under-served either");
  }

  #[test]
  fn exact_under_contention_from_many_threads() {
    let clock = Arc::new(FakeClock::new(0));
    let b = Arc::new(TokenBucket::with_clock(BucketOptions { rate: 1000.0, per_ns: SECOND, burst: 50 }, clock.clone()).unwrap());
    let admitted: u64 = std::thread::scope(|s| {
      let handles: Vec<_> = (0..4)
        .map(|_| {
          let b = b.clone();
          s.spawn(move || (0..20_000).filter(|_| b.try_acquire(1).is_ok()).count() as u64)
        })
        .collect();
      handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(admitted, 50, "the clock stood still: exactly the burst");
  }

  #[test]
  fn keeps_its_rate_when_the_tick_count_wraps() {
    // Found by the `token_bucket` fuzz target: 2^64 ticks of 1/64 ns are 2^58 ns (about
    // 9.1 years), and near there `max(TAT, now) + cost·T` overflowed (a panic with overflow
    // checks; without them a wrapped TAT, then a saturated clock, and every call admitted).
    const WRAP_NS: u64 = 1 << 58;
    let (b, clock) = bucket(10.0, 5);
    // The bucket's origin is the fake clock's start, 1 µs.
    let at = |lap: u64, ns: u64| 1_000 + lap * WRAP_NS + ns;
    for lap in 0..3 {
      // Used about every 4.5 years, and stopped 50 ms short of the wrap.
      clock.set_ns(at(lap, SECOND));
      assert_eq!(drain(&b), 5, "lap {lap}: full after idling");
      clock.set_ns(at(lap, WRAP_NS / 2));
      assert_eq!(drain(&b), 5, "lap {lap}: full half way");
      clock.set_ns(at(lap + 1, 0) - 50_000_000);
      assert_eq!(drain(&b), 5, "lap {lap}: full before the wrap");
      assert_eq!(b.retry_after(1), Ok(100_000_000));
      assert_eq!(b.available(), 0);
      // Across the wrap: one token per 100 ms, exactly as before it.
      clock.advance_ns(99_999_999);
      assert_eq!(b.try_acquire(1), Err(Refusal::RetryAfterNs(1)), "lap {lap}");
      clock.advance_ns(1);
      assert_eq!(b.try_acquire(1), Ok(()), "lap {lap}");
      assert_eq!(b.try_acquire(1), Err(Refusal::RetryAfterNs(100_000_000)), "lap {lap}");
      clock.advance_ns(250_000_000);
      assert_eq!(b.available(), 2, "lap {lap}");
      assert_eq!(drain(&b), 2, "lap {lap}");
    }
  }

  #[test]
  fn a_bucket_idle_for_years_never_admits_more_than_its_burst() {
    // Idle past the wrap with no call at all: the bucket may read as partly used (it refuses
    // for at most the burst's span), never as holding more than the burst.
    let (b, clock) = bucket(10.0, 5);
    assert_eq!(drain(&b), 5);
    for idle in [(1 << 58) - 300_000_000, 1 << 58, (1 << 58) + 123, u64::MAX / 4] {
      clock.advance_ns(idle);
      let n = drain(&b);
      assert!(n <= 5, "{n} after {idle} ns");
      clock.advance_ns(500_000_000);
      assert_eq!(drain(&b), 5, "full again after the burst's span");
    }
  }

  /// A clock that, once armed, lets another caller drain the bucket an hour later while it is
  /// being read, then returns the earlier time: a thread preempted between reading the clock
  /// and publishing its new TAT.
  struct RacingClock {
    now: AtomicU64,
    armed: std::sync::atomic::AtomicBool,
    bucket: std::sync::OnceLock<std::sync::Weak<TokenBucket>>,
  }

  impl Clock for RacingClock {
    fn now_ns(&self) -> u64 {
      let now = self.now.load(Ordering::SeqCst);
      if self.armed.swap(false, Ordering::SeqCst) {
        self.now.store(now + 3600 * SECOND, Ordering::SeqCst);
        let other = self.bucket.get().and_then(std::sync::Weak::upgrade).expect("set");
        assert_eq!(drain(&other), 5);
      }
      now
    }
  }

  #[test]
  fn a_stale_clock_reading_never_admits_more() {
    // TAT is read relative to now, which is sound only when now is read after TAT is loaded
    // (then it is no older than the reading that published TAT): with the clock read first,
    // this call would take TAT, an hour and a burst ahead of its stale now, for one in the
    // past, and admit a sixth token.
    let clock = Arc::new(RacingClock { now: AtomicU64::new(SECOND), armed: Default::default(), bucket: Default::default() });
    let b = Arc::new(TokenBucket::with_clock(BucketOptions { rate: 10.0, per_ns: SECOND, burst: 5 }, clock.clone()).unwrap());
    clock.bucket.set(Arc::downgrade(&b)).unwrap();
    clock.armed.store(true, Ordering::SeqCst);
    assert_eq!(b.try_acquire(1), Err(Refusal::RetryAfterNs(100_000_000)), "the other caller took the burst");
    clock.armed.store(true, Ordering::SeqCst);
    assert_eq!(b.available(), 0);
    assert_eq!(b.retry_after(1), Ok(100_000_000));
  }

  #[test]
  fn bad_options_are_refused_with_the_field_named() {
    let opts = |rate: f64, per_ns: u64, burst: u64| BucketOptions { rate, per_ns, burst }.validate().unwrap_err();
    assert!(opts(0.0, SECOND, 1).contains("rate"));
    assert!(opts(f64::NAN, SECOND, 1).contains("rate"));
    assert!(opts(1.0, 0, 1).contains("per"));
    assert!(opts(1.0, SECOND, 0).contains("burst"));
    assert!(opts(1e12, 1, 1).contains("too high"));
  }
}
