//! A `TokenBucket` on a `FakeClock`, with arbitrary options and an arbitrary sequence of
//! (advance, cost) operations.
//!
//! - options are accepted exactly when `BucketOptions::validate` accepts them; never panics;
//! - the bucket admits what the GCRA of `bucket.rs` admits, computed here without overflow
//!   (u128): a call of cost `c` passes when `max(TAT, now) + c·T − now ≤ burst·T`, with `T`
//!   the emission interval rounded up to a tick of 1/64 ns; a refusal's wait is the excess
//!   rounded up to a nanosecond; `retry_after` and `available` agree with `try_acquire`;
//! - invariant: tokens admitted never exceed `burst + elapsed·rate` — in the bucket's exact
//!   integer terms `burst + ⌊elapsed_ticks / T⌋` (no rounding allowance is needed: `T` is
//!   rounded up), and in real numbers `burst + elapsed_ns · rate / per_ns`;
//! - after a refusal, waiting exactly the wait it gave admits the call (and 1 ns less does
//!   not); after being idle for the burst's span, the bucket is full.
//!
//! The clock may run for the whole u64 range of nanoseconds (584 years), so past the ~9
//! years that 2^64 ticks of 1/64 ns last; the bucket is only asked to be exact while it is
//! used (a successful call, even of cost 0) at least once every 2^63 ticks (~4.5 years), so
//! the harness makes such a call before letting the bucket idle longer.

#![no_main]

use std::sync::Arc;

use arbitrary::Arbitrary;
use havoc_core::limit::{BucketOptions, Clock, FakeClock, Refusal, TokenBucket};
use libfuzzer_sys::fuzz_target;

const TICKS_PER_NS: u128 = 64;
const SECOND: u64 = 1_000_000_000;

#[derive(Arbitrary, Debug)]
enum Rate {
  Bits(u64),
  Ratio(u32, u16),
  Whole(u16),
}

#[derive(Arbitrary, Debug)]
enum Per {
  Raw(u64),
  Second,
  Milli,
  Small(u16),
}

#[derive(Arbitrary, Debug)]
enum Burst {
  Raw(u64),
  Small(u8),
}

#[derive(Arbitrary, Debug)]
enum Advance {
  None,
  Ns(u16),
  Us(u16),
  Ms(u32),
  Raw(u64),
  /// Exactly the wait of the refusal in the operation just before, in two steps: 1 ns short,
  /// then the last 1 ns.
  ToRetry,
}

#[derive(Arbitrary, Debug)]
enum Cost {
  Zero,
  One,
  Small(u8),
  Raw(u64),
  Burst,
  AboveBurst,
}

#[derive(Arbitrary, Debug)]
struct Op {
  advance: Advance,
  cost: Cost,
}

#[derive(Arbitrary, Debug)]
struct Input {
  rate: Rate,
  per: Per,
  burst: Burst,
  start_ns: u64,
  ops: Vec<Op>,
}

/// The GCRA, in u128 so that nothing overflows.
struct Model {
  interval: u128,
  tolerance: u128,
  /// Theoretical arrival time, in ticks since the bucket was created.
  tat: u128,
}

impl Model {
  fn ahead(&self, now: u128, cost: u64) -> u128 {
    self.tat.max(now) + u128::from(cost) * self.interval - now
  }

  fn retry_after(&self, now: u128, cost: u64) -> u64 {
    ns_ceil(self.ahead(now, cost).saturating_sub(self.tolerance))
  }

  fn try_acquire(&mut self, now: u128, cost: u64) -> Result<(), Refusal> {
    let ahead = self.ahead(now, cost);
    if ahead > self.tolerance {
      return Err(Refusal::RetryAfterNs(ns_ceil(ahead - self.tolerance)));
    }
    self.tat = now + ahead;
    Ok(())
  }

  fn available(&self, now: u128) -> u64 {
    let used = self.tat.saturating_sub(now).min(self.tolerance);
    u64::try_from((self.tolerance - used) / self.interval).expect("at most the burst")
  }
}

fn ns_ceil(ticks: u128) -> u64 {
  u64::try_from(ticks.div_ceil(TICKS_PER_NS)).expect("waits are below 2^56 ns")
}

fn options(input: &Input) -> BucketOptions {
  let rate = match input.rate {
    Rate::Bits(bits) => f64::from_bits(bits),
    Rate::Ratio(n, d) => f64::from(n) / (f64::from(d) + 1.0),
    Rate::Whole(n) => f64::from(n),
  };
  let per_ns = match input.per {
    Per::Raw(ns) => ns,
    Per::Second => SECOND,
    Per::Milli => SECOND / 1000,
    Per::Small(ns) => u64::from(ns),
  };
  let burst = match input.burst {
    Burst::Raw(b) => b,
    Burst::Small(b) => u64::from(b) + 1,
  };
  BucketOptions { rate, per_ns, burst }
}

fuzz_target!(|input: Input| {
  let options = options(&input);
  let clock = Arc::new(FakeClock::new(input.start_ns));
  let bucket = match TokenBucket::with_clock(options, clock.clone()) {
    Ok(bucket) => {
      assert!(options.validate().is_ok());
      bucket
    }
    Err(message) => {
      assert_eq!(Err(message), options.validate());
      return;
    }
  };
  assert_eq!(bucket.options(), &options);
  let burst = options.burst;
  // The implementation's emission interval, in ticks: validate() keeps it in [1, 2^62).
  let interval = (options.per_ns as f64 * TICKS_PER_NS as f64 / options.rate).ceil() as u64;
  assert!(interval >= 1);
  let mut model = Model { interval: u128::from(interval), tolerance: u128::from(interval) * u128::from(burst), tat: 0 };
  let span_ns = ns_ceil(model.tolerance);
  // Ticks since the bucket was created, exactly.
  let origin = input.start_ns;
  let now = |clock: &FakeClock| u128::from(clock.now_ns() - origin) * TICKS_PER_NS;
  let mut admitted: u128 = 0;
  let mut last_refusal: Option<(u64, u64)> = None;

  for op in input.ops.iter().take(64) {
    // A refusal's wait holds until anything else happens to the bucket.
    let pending = last_refusal.take();
    let cost = match op.cost {
      Cost::Zero => 0,
      Cost::One => 1,
      Cost::Small(c) => u64::from(c),
      Cost::Raw(c) => c,
      Cost::Burst => burst,
      Cost::AboveBurst => burst.saturating_add(1),
    };
    let advance = match op.advance {
      Advance::None => 0,
      Advance::Ns(ns) => u64::from(ns),
      Advance::Us(us) => u64::from(us) * 1_000,
      Advance::Ms(ms) => u64::from(ms) * 1_000_000,
      Advance::Raw(ns) => ns,
      Advance::ToRetry => match pending {
        Some((cost, wait)) if clock.now_ns().checked_add(wait).is_some() => {
          clock.advance_ns(wait - 1);
          assert_eq!(bucket.retry_after(cost), Ok(1), "1 ns short of the wait of a refusal");
          clock.advance_ns(1);
          assert_eq!(bucket.retry_after(cost), Ok(0), "the wait of a refusal is enough");
          0
        }
        _ => 0,
      },
    };
    // The fake clock must not wrap (u64 nanoseconds: 584 years).
    let Some(later) = clock.now_ns().checked_add(advance) else { continue };
    // In steps of at most 2^56 ns (2^62 ticks), keeping the bucket in use at least once
    // every 2^63 ticks (see the module comment).
    while clock.now_ns() < later {
      let step_to = later.min(clock.now_ns().saturating_add(1 << 56));
      let idle = (u128::from(step_to - origin) * TICKS_PER_NS).saturating_sub(model.tat);
      if idle >= 1 << 63 {
        assert_eq!(bucket.try_acquire(0), Ok(()), "a zero cost always passes");
        model.try_acquire(now(&clock), 0).expect("a zero cost always passes");
      }
      clock.set_ns(step_to);
    }
    let t = now(&clock);

    if advance >= span_ns && advance <= 1 << 55 {
      assert_eq!(bucket.available(), burst, "idle for the burst's span ({span_ns} ns), the bucket is full");
    }
    let available = bucket.available();
    assert_eq!(available, model.available(t), "available()");
    assert!(available <= burst);
    let retry = bucket.retry_after(cost);
    let result = bucket.try_acquire(cost);
    if cost > burst {
      assert_eq!(retry, Err(Refusal::Never));
      assert_eq!(result, Err(Refusal::Never));
      continue;
    }
    assert_eq!(retry, Ok(model.retry_after(t, cost)), "retry_after({cost})");
    assert_eq!(result, model.try_acquire(t, cost), "try_acquire({cost}) at tick {t}");
    match result {
      Ok(()) => {
        assert_eq!(retry, Ok(0));
        assert!(cost <= available, "admitted {cost} with {available} available");
        admitted += u128::from(cost);
      }
      Err(Refusal::RetryAfterNs(wait)) => {
        assert_eq!(retry, Ok(wait));
        assert!(wait > 0 && cost > available, "refused {cost} with {available} available");
        last_refusal = Some((cost, wait));
      }
      Err(Refusal::Never) => panic!("refused {cost} <= burst {burst} for ever"),
    }

    // Never more than the burst plus what the rate refilled since the bucket was created.
    assert!(admitted <= u128::from(burst) + t / u128::from(interval), "admitted {admitted} at tick {t}");
    let elapsed_ns = (clock.now_ns() - origin) as f64;
    let refill = elapsed_ns * options.rate / options.per_ns as f64;
    assert!(admitted as f64 <= (burst as f64 + refill) * (1.0 + 1e-12), "admitted {admitted}, rate allows {refill}");
  }
});
