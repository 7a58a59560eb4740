//! Rate limiter, adaptive limiter and bulkheads: classes for lifetime and cold calls, free
//! functions keyed by a per-thread slot for the hot calls (a class method costs ~180 ns more).
//! The instances themselves are `Arc`s into the core, so a shared one is the same object in
//! every thread.

use std::cell::RefCell;
use std::sync::Arc;
use std::thread::LocalKey;

use havoc_core::limit::{
  shared_adaptive, shared_bucket, shared_bulkhead, AdaptiveLimiter, AdaptiveOptions, BucketOptions, Bulkhead, Clock, FakeClock, Outcome, Priority,
  Refusal, Rejection, TokenBucket,
};
use napi::bindgen_prelude::*;
use napi_derive::napi;

pub(crate) type Slots<T> = RefCell<Vec<Option<Arc<T>>>>;

thread_local! {
  static BUCKETS: Slots<TokenBucket> = const { RefCell::new(Vec::new()) };
  static ADAPTIVE: Slots<AdaptiveLimiter> = const { RefCell::new(Vec::new()) };
  static BULKHEADS: Slots<Bulkhead> = const { RefCell::new(Vec::new()) };
}

pub(crate) fn insert<T: 'static>(slots: &'static LocalKey<Slots<T>>, value: Arc<T>) -> u32 {
  slots.with(|slots| {
    let mut slots = slots.borrow_mut();
    match slots.iter().position(Option::is_none) {
      Some(free) => {
        slots[free] = Some(value);
        free as u32
      }
      None => {
        slots.push(Some(value));
        (slots.len() - 1) as u32
      }
    }
  })
}

pub(crate) fn with<T: 'static, R>(slots: &'static LocalKey<Slots<T>>, slot: u32, f: impl FnOnce(&T) -> R) -> Option<R> {
  slots.with(|slots| slots.borrow().get(slot as usize).and_then(Option::as_ref).map(|v| f(v)))
}

pub(crate) fn get<T: 'static>(slots: &'static LocalKey<Slots<T>>, slot: u32) -> Arc<T> {
  slots.with(|slots| slots.borrow()[slot as usize].clone().expect("live slot"))
}

pub(crate) fn remove<T: 'static>(slots: &'static LocalKey<Slots<T>>, slot: u32) {
  // Finalizers run on the creating thread; at thread exit the slots may already be gone.
  let _ = slots.try_with(|slots| {
    if let Some(entry) = slots.borrow_mut().get_mut(slot as usize) {
      *entry = None;
    }
  });
}

pub(crate) fn invalid(message: String) -> Error {
  Error::new(Status::InvalidArg, message)
}

pub(crate) fn ms_to_ns(ms: f64, what: &str) -> Result<u64> {
  if !(ms.is_finite() && ms > 0.0) {
    return Err(invalid(format!("{what} must be a positive number of milliseconds (got {ms})")));
  }
  Ok((ms * 1e6).round().max(1.0) as u64)
}

fn bucket_options(rate: f64, per_ms: f64, burst: f64) -> Result<BucketOptions> {
  if !(burst.is_finite() && burst >= 1.0 && burst.fract() == 0.0) {
    return Err(invalid(format!("burst must be an integer >= 1 (got {burst})")));
  }
  let options = BucketOptions { rate, per_ns: ms_to_ns(per_ms, "per")?, burst: burst as u64 };
  options.validate().map_err(invalid)?;
  Ok(options)
}

/// Moves a limiter's manual clock forward to `ms`; an error for a limiter on the real clock.
pub(crate) fn set_manual_clock(clock: Option<&FakeClock>, ms: f64) -> Result<()> {
  let clock = clock.ok_or_else(|| invalid("this limiter runs on the real clock".into()))?;
  clock.set_ns((ms * 1e6).round() as u64);
  Ok(())
}

/// `try` result meaning "the cost exceeds the burst: never".
const NEVER: f64 = -1.0;

fn refusal_ms(refusal: Refusal) -> f64 {
  match refusal {
    Refusal::RetryAfterNs(ns) => ns as f64 / 1e6,
    Refusal::Never => NEVER,
  }
}

/// A token bucket. The hot call is [`rate_limiter_try`].
#[napi]
pub struct NativeRateLimiter {
  slot: u32,
  /// Set when the bucket runs on a clock moved by hand (tests).
  manual_clock: Option<Arc<FakeClock>>,
}

#[napi]
impl NativeRateLimiter {
  #[napi(constructor)]
  pub fn new(rate: f64, per_ms: f64, burst: f64) -> Result<Self> {
    let bucket = TokenBucket::new(bucket_options(rate, per_ms, burst)?).map_err(invalid)?;
    Ok(NativeRateLimiter { slot: insert(&BUCKETS, Arc::new(bucket)), manual_clock: None })
  }

  /// A bucket whose clock stands at 0 until [`set_clock_ms`](Self::set_clock_ms) moves it.
  #[napi(factory)]
  pub fn with_manual_clock(rate: f64, per_ms: f64, burst: f64) -> Result<Self> {
    let clock = Arc::new(FakeClock::new(0));
    let bucket = TokenBucket::with_clock(bucket_options(rate, per_ms, burst)?, clock.clone() as Arc<dyn Clock>).map_err(invalid)?;
    Ok(NativeRateLimiter { slot: insert(&BUCKETS, Arc::new(bucket)), manual_clock: Some(clock) })
  }

  /// Moves a manual clock forward to `ms` (never back).
  #[napi]
  pub fn set_clock_ms(&self, ms: f64) -> Result<()> {
    set_manual_clock(self.manual_clock.as_deref(), ms)
  }

  /// The process-wide bucket `name`: created by the first caller, the same one afterwards.
  #[napi(factory)]
  pub fn shared(name: String, rate: f64, per_ms: f64, burst: f64) -> Result<Self> {
    let bucket = shared_bucket(&name, bucket_options(rate, per_ms, burst)?).map_err(invalid)?;
    Ok(NativeRateLimiter { slot: insert(&BUCKETS, bucket), manual_clock: None })
  }

  #[napi(getter)]
  pub fn slot(&self) -> u32 {
    self.slot
  }

  /// Milliseconds until `cost` tokens are there (0: now; -1: never, the cost exceeds the burst).
  #[napi]
  pub fn retry_after_ms(&self, cost: u32) -> f64 {
    match get(&BUCKETS, self.slot).retry_after(cost as u64) {
      Ok(ns) => ns as f64 / 1e6,
      Err(refusal) => refusal_ms(refusal),
    }
  }

  #[napi(getter)]
  pub fn available(&self) -> f64 {
    get(&BUCKETS, self.slot).available() as f64
  }
}

impl Drop for NativeRateLimiter {
  fn drop(&mut self) {
    remove(&BUCKETS, self.slot);
  }
}

/// Takes `cost` tokens from the bucket in `slot`: `0` when admitted, otherwise the
/// milliseconds to wait before they are there, or `-1` when the cost exceeds the burst.
#[napi(catch_unwind)]
pub fn rate_limiter_try(slot: u32, cost: u32) -> f64 {
  with(&BUCKETS, slot, |bucket| match bucket.try_acquire(cost as u64) {
    Ok(()) => 0.0,
    Err(refusal) => refusal_ms(refusal),
  })
  .expect("rate limiter slot is live")
}

/// Options of [`NativeAdaptiveLimiter`]; absent fields take the core's defaults.
#[napi(object)]
pub struct NativeAdaptiveOptions {
  pub initial_limit: Option<u32>,
  pub min_limit: Option<u32>,
  pub max_limit: Option<u32>,
  pub probe_interval_ms: Option<f64>,
  pub backoff: Option<f64>,
  pub min_window_ms: Option<f64>,
}

fn adaptive_options(o: NativeAdaptiveOptions) -> Result<AdaptiveOptions> {
  let defaults = AdaptiveOptions::default();
  let options = AdaptiveOptions {
    initial_limit: o.initial_limit.unwrap_or(defaults.initial_limit),
    min_limit: o.min_limit.unwrap_or(defaults.min_limit),
    max_limit: o.max_limit.unwrap_or(defaults.max_limit),
    probe_interval_ns: o.probe_interval_ms.map(|ms| ms_to_ns(ms, "probeInterval")).transpose()?.unwrap_or(defaults.probe_interval_ns),
    backoff: o.backoff.unwrap_or(defaults.backoff),
    min_window_ns: o.min_window_ms.map(|ms| ms_to_ns(ms, "minWindow")).transpose()?.unwrap_or(defaults.min_window_ns),
  };
  options.validate().map_err(invalid)?;
  Ok(options)
}

/// An adaptive concurrency limiter. Hot calls: [`adaptive_try_acquire`], [`adaptive_release`].
#[napi]
pub struct NativeAdaptiveLimiter {
  slot: u32,
  /// Set when the limiter runs on a clock moved by hand (simulations).
  manual_clock: Option<Arc<FakeClock>>,
}

#[napi]
impl NativeAdaptiveLimiter {
  #[napi(constructor)]
  pub fn new(options: NativeAdaptiveOptions) -> Result<Self> {
    let limiter = AdaptiveLimiter::new(adaptive_options(options)?).map_err(invalid)?;
    Ok(NativeAdaptiveLimiter { slot: insert(&ADAPTIVE, Arc::new(limiter)), manual_clock: None })
  }

  #[napi(factory)]
  pub fn shared(name: String, options: NativeAdaptiveOptions) -> Result<Self> {
    let limiter = shared_adaptive(&name, adaptive_options(options)?).map_err(invalid)?;
    Ok(NativeAdaptiveLimiter { slot: insert(&ADAPTIVE, limiter), manual_clock: None })
  }

  /// A limiter whose clock stands at 0 until [`set_clock_ms`](Self::set_clock_ms) moves it:
  /// simulations drive the real algorithm in simulated time.
  #[napi(factory)]
  pub fn with_manual_clock(options: NativeAdaptiveOptions) -> Result<Self> {
    let clock = Arc::new(FakeClock::new(0));
    let limiter = AdaptiveLimiter::with_clock(adaptive_options(options)?, clock.clone() as Arc<dyn Clock>).map_err(invalid)?;
    Ok(NativeAdaptiveLimiter { slot: insert(&ADAPTIVE, Arc::new(limiter)), manual_clock: Some(clock) })
  }

  /// Moves a manual clock forward to `ms` (never back).
  #[napi]
  pub fn set_clock_ms(&self, ms: f64) -> Result<()> {
    set_manual_clock(self.manual_clock.as_deref(), ms)
  }

  #[napi(getter)]
  pub fn slot(&self) -> u32 {
    self.slot
  }

  #[napi(getter)]
  pub fn limit(&self) -> u32 {
    get(&ADAPTIVE, self.slot).limit()
  }

  #[napi(getter)]
  pub fn inflight(&self) -> u32 {
    get(&ADAPTIVE, self.slot).inflight()
  }

  /// The no-load RTT the limiter believes in, in milliseconds (0 before the first sample).
  #[napi(getter)]
  pub fn rtt_noload_ms(&self) -> f64 {
    get(&ADAPTIVE, self.slot).rtt_noload_ns() as f64 / 1e6
  }
}

impl Drop for NativeAdaptiveLimiter {
  fn drop(&mut self) {
    remove(&ADAPTIVE, self.slot);
  }
}

/// Admits a call through the limiter in `slot`: its start time (an opaque number to pass to
/// [`adaptive_release`]), or `-1` when the call is shed.
#[napi(catch_unwind)]
pub fn adaptive_try_acquire(slot: u32) -> f64 {
  with(&ADAPTIVE, slot, |limiter| limiter.try_acquire().map_or(-1.0, |start| start as f64)).expect("adaptive limiter slot is live")
}

/// Ends a call: `outcome` 0 success, 1 dropped, 2 ignore.
#[napi(catch_unwind)]
pub fn adaptive_release(slot: u32, start: f64, outcome: u32) -> Result<()> {
  let outcome = Outcome::from_index(outcome).ok_or_else(|| invalid(format!("unknown outcome {outcome}")))?;
  with(&ADAPTIVE, slot, |limiter| limiter.release(start as u64, outcome)).expect("adaptive limiter slot is live");
  Ok(())
}

/// A bulkhead; `thresholds` (low, standard, critical) make it a priority bulkhead.
#[napi]
pub struct NativeBulkhead {
  slot: u32,
}

#[napi]
impl NativeBulkhead {
  #[napi(constructor)]
  pub fn new(capacity: u32, thresholds: Option<Vec<f64>>) -> Result<Self> {
    let bulkhead = match thresholds {
      None => Bulkhead::new(capacity),
      Some(t) if t.len() == 3 => Bulkhead::with_thresholds(capacity, [t[0], t[1], t[2]]),
      Some(t) => return Err(invalid(format!("expected 3 thresholds (low, standard, critical), got {}", t.len()))),
    }
    .map_err(invalid)?;
    Ok(NativeBulkhead { slot: insert(&BULKHEADS, Arc::new(bulkhead)) })
  }

  /// The process-wide bulkhead `name` (`thresholds` as for the constructor; none: a plain
  /// bulkhead). First creation wins; other options are an error.
  #[napi(factory)]
  pub fn shared(name: String, capacity: u32, thresholds: Option<Vec<f64>>) -> Result<Self> {
    let thresholds = match thresholds {
      None => [1.0; 3],
      Some(t) if t.len() == 3 => [t[0], t[1], t[2]],
      Some(t) => return Err(invalid(format!("expected 3 thresholds (low, standard, critical), got {}", t.len()))),
    };
    let bulkhead = shared_bulkhead(&name, capacity, thresholds).map_err(invalid)?;
    Ok(NativeBulkhead { slot: insert(&BULKHEADS, bulkhead) })
  }

  #[napi(getter)]
  pub fn slot(&self) -> u32 {
    self.slot
  }

  #[napi(getter)]
  pub fn inflight(&self) -> u32 {
    get(&BULKHEADS, self.slot).inflight()
  }
}

impl Drop for NativeBulkhead {
  fn drop(&mut self) {
    remove(&BULKHEADS, self.slot);
  }
}

/// Takes a place for a call of `priority` (0 low, 1 standard, 2 critical): 0 admitted,
/// 1 full, 2 shed (places left, kept for higher priorities).
#[napi(catch_unwind)]
pub fn bulkhead_try_acquire(slot: u32, priority: u32) -> u32 {
  let priority = Priority::from_index(priority).unwrap_or(Priority::Standard);
  with(&BULKHEADS, slot, |b| match b.try_acquire(priority) {
    Ok(()) => 0,
    Err(Rejection::Full) => 1,
    Err(Rejection::Shed) => 2,
  })
  .expect("bulkhead slot is live")
}

#[napi(catch_unwind)]
pub fn bulkhead_release(slot: u32) {
  with(&BULKHEADS, slot, Bulkhead::release);
}
