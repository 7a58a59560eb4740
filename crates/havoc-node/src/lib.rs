//! N-API binding for havoc-core: conversions only.
//!
//! The hot call, [`NativeEngine::decide`], reads its string arguments into per-thread
//! buffers and returns one packed number, so a decision crosses N-API once and allocates
//! nothing. See `src/engine.ts` for the unpacking.

use std::cell::RefCell;
use std::ptr;

use havoc_core::{guard, hash, sql, Config, Headers, Issue, PolicySet, Protocol};
use napi::bindgen_prelude::*;
use napi::{sys, JsValue};
use napi_derive::napi;

/// A configuration problem, as the TypeScript layer turns it into a `ConfigIssue`.
#[napi(object)]
pub struct NativeIssue {
  pub path: String,
  pub message: String,
}

fn to_native_issues(issues: Vec<Issue>) -> Vec<NativeIssue> {
  issues.into_iter().map(|i| NativeIssue { path: i.path, message: i.message }).collect()
}

fn parse_config(json: &str) -> std::result::Result<Config, Vec<NativeIssue>> {
  Config::from_json(json).map_err(to_native_issues)
}

/// Packing of a decision into one f64 (53 integer bits): `latency_ms · 2¹⁴ + policy · 2³ + flags`.
const FLAG_ERROR: f64 = 1.0;
const FLAG_DROP: f64 = 2.0;
/// The handle's snapshot changed since `table()` was last read: re-read it.
const FLAG_STALE: f64 = 4.0;
const POLICY_UNIT: f64 = 8.0;
const LATENCY_UNIT: f64 = 16384.0;
/// No fault.
const NONE: f64 = -1.0;

thread_local! {
  static TARGET: RefCell<Vec<u8>> = RefCell::new(vec![0; 4096]);
  static HEADER: RefCell<Vec<u8>> = RefCell::new(vec![0; 1024]);
}

/// Reads a JS string into `buf` (grown when needed) without allocating on the common path.
unsafe fn read_utf8<'b>(env: sys::napi_env, value: sys::napi_value, buf: &'b mut Vec<u8>) -> Option<&'b str> {
  let mut len = 0usize;
  if sys::napi_get_value_string_utf8(env, value, buf.as_mut_ptr().cast(), buf.len(), &mut len) != sys::Status::napi_ok {
    return None;
  }
  if len + 1 >= buf.len() {
    // Possibly truncated: ask for the exact length and read again.
    if sys::napi_get_value_string_utf8(env, value, ptr::null_mut(), 0, &mut len) != sys::Status::napi_ok {
      return None;
    }
    buf.resize(len + 1, 0);
    if sys::napi_get_value_string_utf8(env, value, buf.as_mut_ptr().cast(), buf.len(), &mut len) != sys::Status::napi_ok {
      return None;
    }
  }
  std::str::from_utf8(&buf[..len]).ok()
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
      sys::ValueType::napi_string => {
        HEADER.with(|buf| read_utf8(self.env, value, &mut buf.borrow_mut()).is_some_and(|v| v == expected))
      }
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
      sys::napi_get_named_property(self.env, self.object, key.as_ptr().cast(), &mut value) == sys::Status::napi_ok
        && self.value_is(value, expected)
    }
  }
}

/// One thread's handle on a named, process-wide policy set.
#[napi]
pub struct NativeEngine {
  handle: havoc_core::Handle,
  table_version: Option<u64>,
}

#[napi]
impl NativeEngine {
  /// Attaches to the set called `name` (created empty on first use). `seed` makes this
  /// handle's random decisions reproducible.
  #[napi(constructor)]
  pub fn new(name: String, seed: Option<f64>) -> Self {
    NativeEngine { handle: PolicySet::named(&name).handle(seed.map(|s| s as u64)), table_version: None }
  }

  /// Compiles and publishes a configuration (its JSON form) for every thread. Returns the
  /// problems found; when there are any, nothing changed.
  #[napi(catch_unwind)]
  pub fn apply(&self, config_json: String) -> Vec<NativeIssue> {
    match parse_config(&config_json) {
      Ok(config) => match self.handle.set().apply(config) {
        Ok(_) => Vec::new(),
        Err(issues) => to_native_issues(issues),
      },
      Err(issues) => issues,
    }
  }

  #[napi]
  pub fn reseed(&mut self, seed: f64) {
    self.handle.reseed(seed as u64);
  }

  /// Decides one request: `-1` for no fault, else a packed number (see `src/engine.ts`).
  #[napi(catch_unwind)]
  pub fn decide(&mut self, protocol: u32, target: Unknown, headers: Unknown) -> f64 {
    let Some(protocol) = Protocol::from_index(protocol as usize) else { return NONE };
    let target = target.value();
    let headers = headers.value();
    let mut lookup = JsHeaders { env: headers.env, object: headers.value };
    let decision = TARGET.with(|buf| {
      let mut buf = buf.borrow_mut();
      let target = unsafe { read_utf8(target.env, target.value, &mut buf) }?;
      self.handle.decide(protocol, target, &mut lookup)
    });
    let Some(d) = decision else { return NONE };
    let mut packed = d.latency_ms.round().min(4_294_967_295.0) * LATENCY_UNIT + d.policy as f64 * POLICY_UNIT;
    if d.error {
      packed += FLAG_ERROR;
    }
    if d.drop {
      packed += FLAG_DROP;
    }
    if self.table_version != Some(self.handle.snapshot().version) {
      packed += FLAG_STALE;
    }
    packed
  }

  /// The snapshot this handle decides against, as JSON: `{ version, config }`, each policy
  /// with its effective error code. Reading it clears the stale flag of `decide`.
  #[napi(catch_unwind)]
  pub fn table(&mut self) -> String {
    let snapshot = self.handle.snapshot();
    self.table_version = Some(snapshot.version);
    snapshot_json(snapshot)
  }

  /// The set's current snapshot as JSON, without touching this handle's cache.
  #[napi(catch_unwind)]
  pub fn current(&self) -> String {
    snapshot_json(&self.handle.set().snapshot())
  }

  /// Milliseconds of warmup left for the current set (0 when warm).
  #[napi]
  pub fn warmup_remaining_ms(&self) -> f64 {
    self.handle.set().snapshot().warmup_remaining().as_secs_f64() * 1000.0
  }
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

#[napi(object)]
pub struct NativePolicyRisk {
  pub name: String,
  pub scope: f64,
  pub severity: f64,
  pub risk: f64,
}

#[napi(object)]
pub struct NativeReport {
  pub score: u32,
  pub status: String,
  pub total_risk: f64,
  pub issues: Vec<String>,
  pub policies: Vec<NativePolicyRisk>,
}

/// The blast-radius guard's report on a configuration (JSON form).
#[napi(catch_unwind)]
pub fn analyze(config_json: String) -> Result<NativeReport> {
  let config = parse_config(&config_json).map_err(|issues| {
    let text: Vec<String> = issues.iter().map(|i| format!("{}: {}", i.path, i.message)).collect();
    Error::new(Status::InvalidArg, text.join("; "))
  })?;
  let report = guard::analyze(&config);
  Ok(NativeReport {
    score: report.score,
    status: report.status.as_str().to_string(),
    total_risk: report.total_risk,
    issues: report.issues,
    policies: report
      .policies
      .into_iter()
      .map(|p| NativePolicyRisk { name: p.name, scope: p.scope, severity: p.severity, risk: p.risk })
      .collect(),
  })
}

/// FNV-1a 64 of a string's UTF-8 bytes or of raw bytes.
#[napi(catch_unwind)]
pub fn fnv1a64(input: Either<String, Uint8Array>) -> BigInt {
  let value = match &input {
    Either::A(text) => hash::fnv1a64(text.as_bytes()),
    Either::B(bytes) => hash::fnv1a64(bytes),
  };
  BigInt::from(value)
}

/// The stable identity of one policy (JSON form of a validated policy).
#[napi(catch_unwind)]
pub fn policy_hash(policy_json: String) -> Result<BigInt> {
  let policy: havoc_core::Policy =
    serde_json_policy(&policy_json).map_err(|message| Error::new(Status::InvalidArg, message))?;
  Ok(BigInt::from(policy.identity()))
}

fn serde_json_policy(json: &str) -> std::result::Result<havoc_core::Policy, String> {
  let wrapped = format!(r#"{{"version":1,"policies":[{json}]}}"#);
  let mut config = Config::from_json(&wrapped).map_err(|issues| {
    issues.iter().map(|i| format!("{}: {}", i.path.trim_start_matches("policies[0]."), i.message)).collect::<Vec<_>>().join("; ")
  })?;
  Ok(config.policies.remove(0))
}

/// Normalizes a SQL statement: comments stripped, whitespace collapsed, keywords uppercased.
#[napi(catch_unwind)]
pub fn normalize_sql(sql: String) -> String {
  sql::normalize(&sql)
}

/// Like `normalizeSql`, with every literal replaced by `?`.
#[napi(catch_unwind)]
pub fn fingerprint_sql(sql: String) -> String {
  sql::fingerprint(&sql)
}

/// A native call that does nothing with the arguments `decide` takes: the benchmark's floor.
#[napi]
pub fn noop(_protocol: u32, _target: Unknown, _headers: Unknown) -> f64 {
  NONE
}
