//! Layers, leases, halt and rollback of a named policy set: cold calls, keyed by set name.

use std::time::{Duration, Instant};

use havoc_core::PolicySet;
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::{parse_config, to_native_issues, NativeIssue};

/// Longest lease a layer may hold, in milliseconds (the core's `MAX_LEASE_MS`).
#[napi]
pub const MAX_LEASE_MS: f64 = havoc_core::engine::MAX_LEASE_MS;

fn ttl(ms: Option<f64>) -> Result<Option<Duration>> {
  ms.map(havoc_core::engine::lease_ttl).transpose().map_err(|message| Error::new(Status::InvalidArg, message))
}

/// Replaces layer `layer` of set `set` with a configuration (JSON form), optionally leased
/// for `ttl_ms`. Returns the problems found; when there are any, nothing changed.
#[napi(catch_unwind)]
pub fn apply_layer(set: String, layer: String, config_json: String, ttl_ms: Option<f64>) -> Result<Vec<NativeIssue>> {
  let ttl = ttl(ttl_ms)?;
  let config = match parse_config(&config_json) {
    Ok(config) => config,
    Err(issues) => return Ok(issues),
  };
  Ok(match PolicySet::named(&set).apply_layer(&layer, config, ttl) {
    Ok(_) => Vec::new(),
    Err(issues) => to_native_issues(issues),
  })
}

/// Removes a layer; returns whether it existed.
#[napi(catch_unwind)]
pub fn remove_layer(set: String, layer: String) -> bool {
  PolicySet::named(&set).remove_layer(&layer)
}

/// Extends a layer's lease by `ttl_ms` (default: its TTL) from now; returns the ms left.
#[napi(catch_unwind)]
pub fn renew_lease(set: String, layer: String, ttl_ms: Option<f64>) -> Result<f64> {
  let deadline = PolicySet::named(&set).renew(&layer, ttl(ttl_ms)?).map_err(|message| Error::new(Status::InvalidArg, message))?;
  Ok(deadline.saturating_duration_since(Instant::now()).as_secs_f64() * 1000.0)
}

#[napi(catch_unwind)]
pub fn halt_set(set: String) {
  PolicySet::named(&set).halt();
}

#[napi(catch_unwind)]
pub fn resume_set(set: String) {
  PolicySet::named(&set).resume();
}

/// Goes back to the previous effective set; throws when there is none.
#[napi(catch_unwind)]
pub fn rollback_set(set: String) -> Result<()> {
  PolicySet::named(&set).rollback().map(|_| ()).map_err(|message| Error::new(Status::GenericFailure, message))
}

/// The set's layers, leases, halt flag and history as JSON.
#[napi(catch_unwind)]
pub fn set_state(set: String) -> String {
  let state = PolicySet::named(&set).state();
  let now = Instant::now();
  let layer_json = |name: &str, layer: &havoc_core::Layer| {
    let lease = match &layer.lease {
      Some(lease) => format!(
        r#"{{"ttlMs":{},"remainingMs":{},"revertsTo":{}}}"#,
        lease.ttl.as_secs_f64() * 1000.0,
        lease.expires_at.saturating_duration_since(now).as_secs_f64() * 1000.0,
        lease.revert_to.as_ref().map_or("null".to_string(), |c| c.to_json()),
      ),
      None => "null".to_string(),
    };
    format!(r#"{{"name":{},"config":{},"lease":{}}}"#, json_string(name), layer.config.to_json(), lease)
  };
  let layers: Vec<String> = state.layers.iter().map(|(name, layer)| layer_json(name, layer)).collect();
  let history: Vec<String> = state
    .history
    .iter()
    .map(|entry| {
      let names: Vec<String> = entry.layers.keys().map(|n| json_string(n)).collect();
      format!(r#"{{"version":{},"cause":{},"policies":{},"layers":[{}]}}"#, entry.version, json_string(&entry.cause), entry.policies, names.join(","))
    })
    .collect();
  format!(r#"{{"version":{},"halted":{},"layers":[{}],"history":[{}]}}"#, state.version, state.halted, layers.join(","), history.join(","))
}

fn json_string(text: &str) -> String {
  let mut out = String::with_capacity(text.len() + 2);
  out.push('"');
  for c in text.chars() {
    match c {
      '"' => out.push_str("\\\""),
      '\\' => out.push_str("\\\\"),
      c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
      c => out.push(c),
    }
  }
  out.push('"');
  out
}
