//! Circuit breakers: a class for lifetime and cold calls, free functions keyed by a
//! per-thread slot for the hot ones (`breaker_try_acquire`, `breaker_record`). A shared
//! breaker is one `Arc` into the core's registry, the same object in every thread.

use std::cell::RefCell;
use std::ptr;
use std::sync::Arc;

use havoc_core::limit::breaker::{BreakerOptions, CircuitBreaker, Outcome, Permit, Refusal, SlowCallOptions, Snapshot, State, TripOptions};
use havoc_core::limit::{shared_breaker, shared_breakers, Clock, FakeClock, MonotonicClock};
use napi::bindgen_prelude::*;
use napi::sys;
use napi_derive::napi;

use crate::limit::{get, insert, invalid, ms_to_ns, remove, set_manual_clock, with, Slots};

thread_local! {
  static BREAKERS: Slots<CircuitBreaker> = const { RefCell::new(Vec::new()) };
}

/// Options of [`NativeBreaker`], already shaped by the TypeScript layer: `consecutive` set
/// means the consecutive rule, otherwise `window` is `"count"` or `"time"`; absent fields
/// take the core's defaults.
#[napi(object)]
pub struct NativeBreakerOptions {
  pub consecutive: Option<u32>,
  pub window: Option<String>,
  pub rate: Option<f64>,
  pub size: Option<u32>,
  pub window_ms: Option<f64>,
  pub buckets: Option<u32>,
  pub min_calls: Option<u32>,
  pub slow_call_ms: Option<f64>,
  pub slow_call_rate: Option<f64>,
  pub open_ms: Option<f64>,
  pub max_open_ms: Option<f64>,
  pub jitter: Option<f64>,
  pub probes: Option<u32>,
}

/// A breaker's state, as `toJSON()` reports it and `initialState` restores it.
#[napi(object)]
pub struct NativeBreakerSnapshot {
  /// `closed`, `open`, `half-open` or `isolated`.
  pub state: String,
  pub generation: f64,
  pub open_remaining_ms: f64,
  pub half_open_failures: u32,
}

/// One state change.
#[napi(object)]
pub struct NativeTransition {
  pub generation: f64,
  pub from: String,
  pub to: String,
  pub reason: String,
  pub at_ms: f64,
}

/// Cumulative calls, process-wide.
#[napi(object)]
pub struct NativeBreakerCalls {
  pub success: f64,
  pub failure: f64,
  pub ignored: f64,
  pub rejected: f64,
}

/// How often the breaker went `from` → `to`.
#[napi(object)]
pub struct NativeTransitionCount {
  pub from: String,
  pub to: String,
  pub count: f64,
}

/// A shared breaker as the control plane lists it.
#[napi(object)]
pub struct NativeSharedBreaker {
  pub name: String,
  pub snapshot: NativeBreakerSnapshot,
  pub calls: NativeBreakerCalls,
}

fn breaker_options(o: NativeBreakerOptions) -> Result<BreakerOptions> {
  let d = BreakerOptions::default();
  let TripOptions::Time { rate: d_rate, window_ns: d_window, buckets: d_buckets, min_calls: d_min } = d.trip else {
    unreachable!("default is a time window")
  };
  let trip = match (o.consecutive, o.window.as_deref()) {
    (Some(failures), None) => TripOptions::Consecutive { failures },
    (Some(_), Some(_)) => return Err(invalid("consecutive and window are two different rules: give one".into())),
    (None, Some("count")) => {
      TripOptions::Count { rate: o.rate.unwrap_or(d_rate), size: o.size.unwrap_or(100), min_calls: o.min_calls.unwrap_or(d_min) }
    }
    (None, None | Some("time")) => TripOptions::Time {
      rate: o.rate.unwrap_or(d_rate),
      window_ns: o.window_ms.map(|ms| ms_to_ns(ms, "windowMs")).transpose()?.unwrap_or(d_window),
      buckets: o.buckets.unwrap_or(d_buckets),
      min_calls: o.min_calls.unwrap_or(d_min),
    },
    (None, Some(other)) => return Err(invalid(format!("window must be 'count' or 'time' (got {other:?})"))),
  };
  let slow_calls = match (o.slow_call_ms, o.slow_call_rate) {
    (None, None) => None,
    (Some(ms), rate) => Some(SlowCallOptions { threshold_ns: ms_to_ns(ms, "slowCalls.thresholdMs")?, rate: rate.unwrap_or(1.0) }),
    (None, Some(_)) => return Err(invalid("slowCalls needs thresholdMs".into())),
  };
  let open_ns = o.open_ms.map(|ms| ms_to_ns(ms, "openMs")).transpose()?.unwrap_or(d.open_ns);
  let options = BreakerOptions {
    trip,
    slow_calls,
    open_ns,
    // An open period longer than the default cap raises the cap with it.
    max_open_ns: o.max_open_ms.map(|ms| ms_to_ns(ms, "maxOpenMs")).transpose()?.unwrap_or(d.max_open_ns.max(open_ns)),
    jitter: o.jitter.unwrap_or(d.jitter),
    probes: o.probes.unwrap_or(d.probes),
  };
  options.validate().map_err(invalid)?;
  Ok(options)
}

fn state_from(name: &str) -> Result<State> {
  State::ALL.into_iter().find(|s| s.as_str() == name).ok_or_else(|| invalid(format!("unknown breaker state {name:?}")))
}

fn snapshot_from(s: Option<NativeBreakerSnapshot>) -> Result<Option<Snapshot>> {
  s.map(|s| {
    if !(s.generation.is_finite() && s.generation >= 0.0 && s.open_remaining_ms.is_finite() && s.open_remaining_ms >= 0.0) {
      return Err(invalid("initialState: generation and openRemainingMs must be numbers >= 0".into()));
    }
    Ok(Snapshot {
      state: state_from(&s.state)?,
      generation: s.generation as u64,
      open_remaining_ns: (s.open_remaining_ms * 1e6) as u64,
      half_open_failures: s.half_open_failures,
    })
  })
  .transpose()
}

fn snapshot_to(s: Snapshot) -> NativeBreakerSnapshot {
  NativeBreakerSnapshot {
    state: s.state.as_str().into(),
    generation: s.generation as f64,
    open_remaining_ms: s.open_remaining_ns as f64 / 1e6,
    half_open_failures: s.half_open_failures,
  }
}

fn calls_to(b: &CircuitBreaker) -> NativeBreakerCalls {
  let c = b.calls();
  NativeBreakerCalls { success: c.success as f64, failure: c.failure as f64, ignored: c.ignored as f64, rejected: c.rejected as f64 }
}

/// A circuit breaker. Hot calls: [`breaker_try_acquire`], [`breaker_record`].
#[napi]
pub struct NativeBreaker {
  slot: u32,
  manual_clock: Option<Arc<FakeClock>>,
}

#[napi]
impl NativeBreaker {
  #[napi(constructor)]
  pub fn new(options: NativeBreakerOptions, initial: Option<NativeBreakerSnapshot>) -> Result<Self> {
    let breaker = CircuitBreaker::with_clock(breaker_options(options)?, Arc::new(MonotonicClock), snapshot_from(initial)?).map_err(invalid)?;
    Ok(NativeBreaker { slot: insert(&BREAKERS, Arc::new(breaker)), manual_clock: None })
  }

  /// The process-wide breaker `name`: first creation wins; other options are a
  /// `GenericFailure` error (bad options are `InvalidArg`).
  #[napi(factory)]
  pub fn shared(name: String, options: NativeBreakerOptions, initial: Option<NativeBreakerSnapshot>) -> Result<Self> {
    let breaker = shared_breaker(&name, breaker_options(options)?, snapshot_from(initial)?).map_err(|e| Error::new(Status::GenericFailure, e))?;
    Ok(NativeBreaker { slot: insert(&BREAKERS, breaker), manual_clock: None })
  }

  /// A breaker whose clock stands at 0 until [`set_clock_ms`](Self::set_clock_ms) moves it.
  #[napi(factory)]
  pub fn with_manual_clock(options: NativeBreakerOptions, initial: Option<NativeBreakerSnapshot>) -> Result<Self> {
    let clock = Arc::new(FakeClock::new(0));
    let breaker = CircuitBreaker::with_clock(breaker_options(options)?, clock.clone() as Arc<dyn Clock>, snapshot_from(initial)?).map_err(invalid)?;
    Ok(NativeBreaker { slot: insert(&BREAKERS, Arc::new(breaker)), manual_clock: Some(clock) })
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
  pub fn state(&self) -> String {
    get(&BREAKERS, self.slot).state().as_str().into()
  }

  /// The core's state word (`generation << 2 | state`, 8 bytes) as an ArrayBuffer over that
  /// memory, for JS to admit calls on a closed breaker with `Atomics.load` instead of calling
  /// in. `null` where the runtime refuses external buffers (then every call crosses).
  #[napi(ts_return_type = "ArrayBuffer | null")]
  pub fn state_word(&self) -> StateWordBuffer {
    StateWordBuffer(get(&BREAKERS, self.slot))
  }

  #[napi(getter)]
  pub fn generation(&self) -> f64 {
    get(&BREAKERS, self.slot).generation() as f64
  }

  /// Now on the breaker's clock, in nanoseconds (a permit's start for the slow-call rule).
  #[napi]
  pub fn now_ns(&self) -> f64 {
    get(&BREAKERS, self.slot).now_ns() as f64
  }

  #[napi]
  pub fn snapshot(&self) -> NativeBreakerSnapshot {
    snapshot_to(get(&BREAKERS, self.slot).snapshot())
  }

  /// Transitions that started generations after `generation`, oldest first (the last 256 kept).
  #[napi]
  pub fn transitions_since(&self, generation: f64) -> Vec<NativeTransition> {
    get(&BREAKERS, self.slot)
      .transitions_since(generation.max(0.0) as u64)
      .into_iter()
      .map(|t| NativeTransition {
        generation: t.generation as f64,
        from: t.from.as_str().into(),
        to: t.to.as_str().into(),
        reason: t.reason.as_str().into(),
        at_ms: t.at_ns as f64 / 1e6,
      })
      .collect()
  }

  #[napi]
  pub fn calls(&self) -> NativeBreakerCalls {
    calls_to(&get(&BREAKERS, self.slot))
  }

  /// Every `from` → `to` pair that happened, with its count.
  #[napi]
  pub fn transition_counts(&self) -> Vec<NativeTransitionCount> {
    let counts = get(&BREAKERS, self.slot).transition_counts();
    let mut out = Vec::new();
    for from in State::ALL {
      for to in State::ALL {
        let count = counts[from as usize][to as usize];
        if count > 0 {
          out.push(NativeTransitionCount { from: from.as_str().into(), to: to.as_str().into(), count: count as f64 });
        }
      }
    }
    out
  }

  /// Holds the breaker open; returns the isolations held.
  #[napi]
  pub fn isolate(&self) -> u32 {
    get(&BREAKERS, self.slot).isolate()
  }

  /// Releases one isolation; returns the isolations still held.
  #[napi]
  pub fn release_isolation(&self) -> u32 {
    get(&BREAKERS, self.slot).release_isolation()
  }

  #[napi]
  pub fn reset(&self) {
    get(&BREAKERS, self.slot).reset()
  }
}

impl Drop for NativeBreaker {
  fn drop(&mut self) {
    remove(&BREAKERS, self.slot);
  }
}

/// A breaker's state word handed to JS as an external ArrayBuffer, which owns one reference.
pub struct StateWordBuffer(Arc<CircuitBreaker>);

unsafe extern "C" fn release_breaker(_env: sys::napi_env, _data: *mut std::ffi::c_void, hint: *mut std::ffi::c_void) {
  // SAFETY: `hint` is the `Arc::into_raw` of `to_napi_value`, released exactly once here.
  drop(unsafe { Arc::from_raw(hint as *const CircuitBreaker) });
}

impl ToNapiValue for StateWordBuffer {
  unsafe fn to_napi_value(env: sys::napi_env, val: Self) -> Result<sys::napi_value> {
    let mut value = ptr::null_mut();
    let data = val.0.state_word().as_ptr().cast();
    let hint = Arc::into_raw(val.0) as *mut std::ffi::c_void;
    // SAFETY: `data` is the 8-byte word of the breaker that the Arc behind `hint` keeps alive.
    let status = unsafe { sys::napi_create_external_arraybuffer(env, data, 8, Some(release_breaker), hint, &mut value) };
    if status == sys::Status::napi_ok {
      return Ok(value);
    }
    // Refused (a sandboxed runtime): nothing took the reference.
    drop(unsafe { Arc::from_raw(hint as *const CircuitBreaker) });
    check_status!(unsafe { sys::napi_get_null(env, &mut value) })?;
    Ok(value)
  }
}

/// A permit from the breaker in `slot`: its generation (≥ 0); when refused, a negative number:
/// `-1 - retryAfterMs`, or `-Infinity` for an isolated breaker.
#[napi(catch_unwind)]
pub fn breaker_try_acquire(slot: u32) -> f64 {
  with(&BREAKERS, slot, |b| match b.try_acquire() {
    Ok(permit) => permit.generation as f64,
    Err(Refusal::RetryAfterNs(ns)) => -1.0 - ns as f64 / 1e6,
    Err(Refusal::Isolated) => f64::NEG_INFINITY,
  })
  .expect("breaker slot is live")
}

/// Ends a call: `outcome` 0 success, 1 failure, 2 ignore; `start_ns` from `nowNs()` when the
/// slow-call rule needs it, else negative. Returns the breaker's generation afterwards.
fn breaker_record(slot: u32, generation: f64, start_ns: f64, outcome: Outcome) -> f64 {
  let after = with(&BREAKERS, slot, |b| {
    let start_ns = if start_ns >= 0.0 { start_ns as u64 } else { b.now_ns() };
    b.record(Permit { generation: generation as u64, start_ns }, outcome)
  })
  .expect("breaker slot is live");
  after as f64
}

/// `breakerRecord(slot, generation, startNs, outcome)` ([`breaker_record`]) as a plain N-API
/// callback, like `decide`: a `#[napi]` function with arguments opens a borrow scope per call,
/// which cost more than the record itself. Registered by [`register_breaker_record`]; its
/// TypeScript signature is in `src/native.ts`.
unsafe extern "C" fn breaker_record_callback(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
  let mut argc = 4usize;
  let mut argv = [ptr::null_mut(); 4];
  let (mut slot, mut generation, mut start_ns, mut outcome) = (0u32, 0f64, 0f64, 0u32);
  let mut result = ptr::null_mut();
  unsafe {
    let ok = sys::Status::napi_ok;
    if sys::napi_get_cb_info(env, info, &mut argc, argv.as_mut_ptr(), ptr::null_mut(), ptr::null_mut()) != ok
      || argc < 4
      || sys::napi_get_value_uint32(env, argv[0], &mut slot) != ok
      || sys::napi_get_value_double(env, argv[1], &mut generation) != ok
      || sys::napi_get_value_double(env, argv[2], &mut start_ns) != ok
      || sys::napi_get_value_uint32(env, argv[3], &mut outcome) != ok
    {
      sys::napi_throw_type_error(env, ptr::null(), c"breakerRecord(slot: number, generation: number, startNs: number, outcome: number)".as_ptr());
      return ptr::null_mut();
    }
    let Some(outcome) = Outcome::from_index(outcome) else {
      sys::napi_throw_range_error(env, ptr::null(), c"breakerRecord: outcome must be 0 (success), 1 (failure) or 2 (ignore)".as_ptr());
      return ptr::null_mut();
    };
    match std::panic::catch_unwind(|| breaker_record(slot, generation, start_ns, outcome)) {
      Ok(after) => {
        sys::napi_create_double(env, after, &mut result);
      }
      Err(panic) => {
        // A Rust panic becomes a JS error, as `#[napi(catch_unwind)]` would make it.
        let message = panic.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| panic.downcast_ref::<String>().cloned());
        let text =
          std::ffi::CString::new(format!("havoc: panic in breakerRecord: {}", message.unwrap_or_default()).replace('\0', " ")).unwrap_or_default();
        sys::napi_throw_error(env, ptr::null(), text.as_ptr());
      }
    }
  }
  result
}

/// Adds the raw `breakerRecord` to the module's exports (called from the module's export hook).
pub fn register_breaker_record(exports: &Object, env: &Env) -> Result<()> {
  let mut function = ptr::null_mut();
  unsafe {
    check_status!(sys::napi_create_function(
      env.raw(),
      c"breakerRecord".as_ptr(),
      13,
      Some(breaker_record_callback),
      ptr::null_mut(),
      &mut function
    ))?;
    check_status!(sys::napi_set_named_property(env.raw(), exports.raw(), c"breakerRecord".as_ptr(), function))?;
  }
  Ok(())
}

/// Every shared breaker of the process, by name.
#[napi]
pub fn shared_breaker_list() -> Vec<NativeSharedBreaker> {
  shared_breakers().into_iter().map(|(name, b)| NativeSharedBreaker { name, snapshot: snapshot_to(b.snapshot()), calls: calls_to(&b) }).collect()
}

/// Isolates (`action` "isolate") or resets ("reset") the shared breaker `name`; false when
/// there is none. An isolation made here is held until `release` is asked for.
#[napi]
pub fn shared_breaker_control(name: String, action: String) -> Result<bool> {
  let Some((_, b)) = shared_breakers().into_iter().find(|(n, _)| *n == name) else { return Ok(false) };
  match action.as_str() {
    "isolate" => {
      b.isolate();
    }
    "release" => {
      b.release_isolation();
    }
    "reset" => b.reset(),
    other => return Err(invalid(format!("unknown breaker action {other:?}"))),
  }
  Ok(true)
}
