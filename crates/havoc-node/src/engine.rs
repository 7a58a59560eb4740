use std::cell::RefCell;
use std::ptr;
use std::sync::Arc;

use havoc_core::{FireFlags, Headers, PolicySet, Protocol};
use napi::bindgen_prelude::*;
use napi::{sys, JsValue};
use napi_derive::napi;

use crate::{parse_config, to_native_issues, NativeIssue};

/// Packing of a decision into one f64 (53 integer bits): `latency_ms · 2¹⁴ + policy · 2³ + flags`.
const FLAG_ERROR: f64 = 1.0;
const FLAG_DROP: f64 = 2.0;
/// The handle's snapshot changed since `table()` was last read: re-read it.
const FLAG_STALE: f64 = 4.0;
const POLICY_UNIT: f64 = 8.0;
const LATENCY_UNIT: f64 = 16384.0;
/// No fault.
pub(crate) const NONE: f64 = -1.0;

thread_local! {
  static TARGET: RefCell<Vec<u8>> = RefCell::new(vec![0; 4096]);
  static HEADER: RefCell<Vec<u8>> = RefCell::new(vec![0; 1024]);
}

/// Reads a JS string into `buf` (grown when needed) without allocating on the common path.
unsafe fn read_utf8(env: sys::napi_env, value: sys::napi_value, buf: &mut Vec<u8>) -> Option<&str> {
  let mut len = 0usize;
  if sys::napi_get_value_string_utf8(env, value, buf.as_mut_ptr().cast(), buf.len(), &mut len) != sys::Status::napi_ok {
    return None;
  }
  // N-API never writes part of a character: a read that stopped within 4 bytes of the end (one
  // for the terminating NUL, up to three of a character that did not fit) may be truncated.
  if len + 4 >= buf.len() {
    // Ask for the exact length and read again.
    if sys::napi_get_value_string_utf8(env, value, ptr::null_mut(), 0, &mut len) != sys::Status::napi_ok {
      return None;
    }
    buf.resize(len + 5, 0);
    if sys::napi_get_value_string_utf8(env, value, buf.as_mut_ptr().cast(), buf.len(), &mut len) != sys::Status::napi_ok {
      return None;
    }
  }
  let bytes = &buf[..len];
  // Most targets are ASCII, which a word-at-a-time check confirms for a fraction of a full UTF-8
  // validation. The rest is validated: N-API does not promise what a runtime writes for a lone
  // surrogate (Node writes U+FFFD; another runtime might not).
  if bytes.is_ascii() {
    // SAFETY: ASCII is valid UTF-8.
    Some(unsafe { std::str::from_utf8_unchecked(bytes) })
  } else {
    std::str::from_utf8(bytes).ok()
  }
}

/// Header lookups on a plain JS object (`IncomingHttpHeaders`, gRPC metadata as a map).
struct JsHeaders {
  env: sys::napi_env,
  object: sys::napi_value,
}

impl JsHeaders {
  unsafe fn value_is(&self, value: sys::napi_value, expected: &str) -> bool {
    let mut kind = sys::ValueType::napi_undefined;
    if sys::napi_typeof(self.env, value, &mut kind) != sys::Status::napi_ok {
      return false;
    }
    match kind {
      sys::ValueType::napi_string => HEADER.with(|buf| read_utf8(self.env, value, &mut buf.borrow_mut()).is_some_and(|v| v == expected)),
      sys::ValueType::napi_object => {
        let mut len = 0u32;
        if sys::napi_get_array_length(self.env, value, &mut len) != sys::Status::napi_ok {
          return false;
        }
        (0..len).any(|i| {
          let mut item = ptr::null_mut();
          sys::napi_get_element(self.env, value, i, &mut item) == sys::Status::napi_ok && self.value_is(item, expected)
        })
      }
      _ => false,
    }
  }
}

impl Headers for JsHeaders {
  fn has(&mut self, name: &str, expected: &str) -> bool {
    // Header names are at most 255 bytes (checked by the core): a stack C string suffices.
    let mut key = [0u8; 256];
    if name.len() >= key.len() {
      return false;
    }
    key[..name.len()].copy_from_slice(name.as_bytes());
    unsafe {
      let mut value = ptr::null_mut();
      sys::napi_get_named_property(self.env, self.object, key.as_ptr().cast(), &mut value) == sys::Status::napi_ok && self.value_is(value, expected)
    }
  }
}

/// This thread's engine handles. A decision names its handle by slot instead of going
/// through a class method, whose unwrapping would cost more than the decision itself.
struct Slot {
  handle: havoc_core::Handle,
  /// The snapshot version whose table JS last read.
  table_version: Option<u64>,
}

thread_local! {
  static SLOTS: RefCell<Vec<Option<Slot>>> = const { RefCell::new(Vec::new()) };
}

fn with_slot<R>(id: u32, f: impl FnOnce(&mut Slot) -> R) -> Option<R> {
  SLOTS.with(|slots| slots.borrow_mut().get_mut(id as usize).and_then(Option::as_mut).map(f))
}

/// One thread's handle on a named, process-wide policy set. Decisions go through the free
/// function [`decide`] with `key = slot · 8 + protocol`.
#[napi]
pub struct NativeEngine {
  slot: u32,
}

#[napi]
impl NativeEngine {
  /// Attaches to the set called `name` (created empty on first use). `seed` makes this
  /// handle's random decisions reproducible.
  #[napi(constructor)]
  pub fn new(name: String, seed: Option<f64>) -> Self {
    let entry = Slot { handle: PolicySet::named(&name).handle(seed.map(|s| s as u64)), table_version: None };
    let slot = SLOTS.with(|slots| {
      let mut slots = slots.borrow_mut();
      match slots.iter().position(Option::is_none) {
        Some(free) => {
          slots[free] = Some(entry);
          free
        }
        None => {
          slots.push(Some(entry));
          slots.len() - 1
        }
      }
    });
    NativeEngine { slot: slot as u32 }
  }

  /// The key prefix for [`decide`]: `slot · 8`.
  #[napi(getter)]
  pub fn key(&self) -> u32 {
    self.slot * 8
  }

  /// Compiles and publishes a configuration (its JSON form) for every thread. Returns the
  /// problems found; when there are any, nothing changed.
  #[napi(catch_unwind)]
  pub fn apply(&self, config_json: String) -> Vec<NativeIssue> {
    let config = match parse_config(&config_json) {
      Ok(config) => config,
      Err(issues) => return issues,
    };
    with_slot(self.slot, |slot| match slot.handle.set().apply(config) {
      Ok(_) => Vec::new(),
      Err(issues) => to_native_issues(issues),
    })
    .unwrap_or_default()
  }

  #[napi]
  pub fn reseed(&self, seed: f64) {
    with_slot(self.slot, |slot| slot.handle.reseed(seed as u64));
  }

  /// The snapshot this handle's last fault was decided on (before any, the current one), as
  /// JSON: `{ version, errorCodes, config }`. Reading it clears the stale flag of [`decide`].
  #[napi(catch_unwind)]
  pub fn table(&self) -> String {
    with_slot(self.slot, |slot| {
      let snapshot = match slot.handle.decided_on() {
        Some(decided_on) => Arc::clone(decided_on),
        None => Arc::clone(slot.handle.snapshot()),
      };
      slot.table_version = Some(snapshot.version);
      snapshot_json(&snapshot)
    })
    .unwrap_or_default()
  }

  /// The set's current snapshot as JSON, without touching this handle's cache.
  #[napi(catch_unwind)]
  pub fn current(&self) -> String {
    with_slot(self.slot, |slot| snapshot_json(&slot.handle.set().snapshot())).unwrap_or_default()
  }

  /// Which protocols of the set can fire, and which first HTTP path segments (the core's
  /// `FireFlags`, updated on every publish from any thread), as an ArrayBuffer over that memory
  /// for JS to read instead of calling in. `null` where the runtime refuses external
  /// buffers (then every call crosses, as before).
  #[napi(ts_return_type = "ArrayBuffer | null")]
  pub fn fire_flags(&self) -> FlagsBuffer {
    FlagsBuffer(with_slot(self.slot, |slot| slot.handle.set().fire_flags()))
  }

  /// Milliseconds of warmup left for the current set (0 when warm).
  #[napi]
  pub fn warmup_remaining_ms(&self) -> f64 {
    with_slot(self.slot, |slot| slot.handle.set().snapshot().warmup_remaining().as_secs_f64() * 1000.0).unwrap_or(0.0)
  }
}

/// A cell of "can fire" bits handed to JS as an external ArrayBuffer, which owns one reference.
pub struct FlagsBuffer(Option<Arc<FireFlags>>);

unsafe extern "C" fn release_flags(_env: sys::napi_env, _data: *mut std::ffi::c_void, hint: *mut std::ffi::c_void) {
  // SAFETY: `hint` is the `Arc::into_raw` of `to_napi_value`, released exactly once here.
  drop(unsafe { Arc::from_raw(hint as *const FireFlags) });
}

impl ToNapiValue for FlagsBuffer {
  unsafe fn to_napi_value(env: sys::napi_env, val: Self) -> Result<sys::napi_value> {
    let mut value = ptr::null_mut();
    if let Some(cell) = val.0 {
      let data = cell.as_ptr().cast();
      let hint = Arc::into_raw(cell) as *mut std::ffi::c_void;
      // SAFETY: `data` is FLAG_WORDS words that live as long as the Arc behind `hint`.
      let size = havoc_core::engine::FLAG_WORDS * 4;
      let status = unsafe { sys::napi_create_external_arraybuffer(env, data, size, Some(release_flags), hint, &mut value) };
      if status == sys::Status::napi_ok {
        return Ok(value);
      }
      // Refused (a sandboxed runtime): nothing took the reference.
      drop(unsafe { Arc::from_raw(hint as *const FireFlags) });
    }
    check_status!(unsafe { sys::napi_get_null(env, &mut value) })?;
    Ok(value)
  }
}

impl Drop for NativeEngine {
  fn drop(&mut self) {
    // Finalizers run on the thread that created the object, so the slot is this thread's.
    // At thread exit the slots may already be gone; then there is nothing to free.
    let _ = SLOTS.try_with(|slots| {
      if let Some(entry) = slots.borrow_mut().get_mut(self.slot as usize) {
        *entry = None;
      }
    });
  }
}

/// Decides one request for handle `key / 8` on protocol `key % 8`: `-1` for no fault, else
/// a packed number (see `src/engine.ts`).
fn decide_packed(env: sys::napi_env, key: u32, target: sys::napi_value, headers: sys::napi_value) -> f64 {
  let Some(protocol) = Protocol::from_index((key % 8) as usize) else { return NONE };
  let mut lookup = JsHeaders { env, object: headers };
  with_slot(key / 8, |slot| {
    let decision = TARGET.with(|buf| {
      let mut buf = buf.borrow_mut();
      let target = unsafe { read_utf8(env, target, &mut buf) }?;
      slot.handle.decide(protocol, target, &mut lookup)
    });
    let Some(d) = decision else { return NONE };
    let mut packed = d.latency_ms.round().min(4_294_967_295.0) * LATENCY_UNIT + d.policy as f64 * POLICY_UNIT;
    if d.error {
      packed += FLAG_ERROR;
    }
    if d.drop {
      packed += FLAG_DROP;
    }
    // The decision names a slot of the snapshot it was made on, which may already have been
    // replaced by another thread; JS re-reads `table()`, which serves that same snapshot.
    if slot.table_version != slot.handle.decided_on().map(|s| s.version) {
      packed += FLAG_STALE;
    }
    packed
  })
  .unwrap_or(NONE)
}

/// `decide(key, target, headers)` as a plain N-API callback. A `#[napi]` function with
/// arguments opens a borrow scope per call (a heap allocation and a reference count), which
/// cost more than the decision itself; this reads its three arguments into a stack array.
/// Registered by [`register_decide`]; its TypeScript signature is in `src/native.ts`.
unsafe extern "C" fn decide_callback(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
  let mut argc = 3usize;
  let mut argv = [ptr::null_mut(); 3];
  let mut key = 0u32;
  let mut result = ptr::null_mut();
  unsafe {
    if sys::napi_get_cb_info(env, info, &mut argc, argv.as_mut_ptr(), ptr::null_mut(), ptr::null_mut()) != sys::Status::napi_ok
      || argc < 3
      || sys::napi_get_value_uint32(env, argv[0], &mut key) != sys::Status::napi_ok
    {
      sys::napi_throw_type_error(env, ptr::null(), c"decide(key: number, target: string, headers: object)".as_ptr());
      return ptr::null_mut();
    }
    match std::panic::catch_unwind(|| decide_packed(env, key, argv[1], argv[2])) {
      Ok(packed) => {
        sys::napi_create_double(env, packed, &mut result);
      }
      Err(panic) => {
        // A Rust panic becomes a JS error, as `#[napi(catch_unwind)]` would make it.
        let message = panic.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| panic.downcast_ref::<String>().cloned());
        let text = std::ffi::CString::new(format!("havoc: panic in decide: {}", message.unwrap_or_default()).replace('\0', " ")).unwrap_or_default();
        sys::napi_throw_error(env, ptr::null(), text.as_ptr());
      }
    }
  }
  result
}

/// Adds the raw `decide` (and the breaker's raw `breakerRecord`) to the module's exports.
#[napi(module_exports)]
pub fn register_decide(exports: Object, env: Env) -> Result<()> {
  let mut function = ptr::null_mut();
  unsafe {
    check_status!(sys::napi_create_function(env.raw(), c"decide".as_ptr(), 6, Some(decide_callback), ptr::null_mut(), &mut function))?;
    check_status!(sys::napi_set_named_property(env.raw(), exports.raw(), c"decide".as_ptr(), function))?;
  }
  crate::breaker::register_breaker_record(&exports, &env)
}

fn snapshot_json(snapshot: &havoc_core::Snapshot) -> String {
  let codes: Vec<u32> = snapshot.policies.iter().map(|p| p.policy.effective_error_code()).collect();
  format!(r#"{{"version":{},"errorCodes":{:?},"config":{}}}"#, snapshot.version, codes, snapshot.config.to_json())
}

/// Checks a configuration (JSON form) completely, target regexes included, without applying it.
#[napi(catch_unwind)]
pub fn check_config(config_json: String) -> Vec<NativeIssue> {
  match parse_config(&config_json) {
    Ok(config) => match havoc_core::Snapshot::compile(config, 0, std::time::Instant::now()) {
      Ok(_) => Vec::new(),
      Err(issues) => to_native_issues(issues),
    },
    Err(issues) => issues,
  }
}
