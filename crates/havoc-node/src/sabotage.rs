//! Resource sabotage: status, totals and stop, by policy-set name (cold calls).

use havoc_core::{sabotage, PolicySet};
use napi_derive::napi;

#[napi(object)]
pub struct NativeLoad {
  pub policy: String,
  /// The policy's identity, as 16 hex digits.
  pub identity: String,
  pub serial: f64,
  pub cpu_threads: u32,
  pub cpu_percent: u32,
  pub thread_ids: Vec<f64>,
  pub ram_bytes_resident: f64,
  pub ram_bytes_target: f64,
}

#[napi(object)]
pub struct NativeSabotage {
  pub cpu_threads: u32,
  pub cpu_percent: u32,
  pub ram_bytes_resident: f64,
  pub ram_bytes_target: f64,
  pub ram_bytes_ceiling: f64,
  pub ram_ceiling_reason: String,
  pub loads: Vec<NativeLoad>,
}

#[napi(object)]
pub struct NativeSabotageTotals {
  pub cpu_threads: f64,
  pub cpu_percent: f64,
  pub ram_bytes: f64,
  pub cpu_starts: f64,
  pub cpu_stops: f64,
  pub ram_starts: f64,
  pub ram_stops: f64,
}

/// The sabotage of the set called `name`.
#[napi(catch_unwind)]
pub fn sabotage_status(name: String) -> NativeSabotage {
  let status = PolicySet::named(&name).sabotage();
  let ceiling = sabotage::ceiling();
  NativeSabotage {
    cpu_threads: status.cpu_threads,
    cpu_percent: status.cpu_percent,
    ram_bytes_resident: status.ram_bytes_resident as f64,
    ram_bytes_target: status.ram_bytes_target as f64,
    ram_bytes_ceiling: ceiling.bytes as f64,
    ram_ceiling_reason: ceiling.reason.to_string(),
    loads: status
      .loads
      .into_iter()
      .map(|l| NativeLoad {
        policy: l.policy,
        identity: format!("{:016x}", l.identity),
        serial: l.serial as f64,
        cpu_threads: l.cpu_threads,
        cpu_percent: l.cpu_percent,
        thread_ids: l.thread_ids.into_iter().map(|t| t as f64).collect(),
        ram_bytes_resident: l.ram_bytes_resident as f64,
        ram_bytes_target: l.ram_bytes_target as f64,
      })
      .collect(),
  }
}

/// Sabotage of the whole process: live figures and cumulative starts and stops.
#[napi(catch_unwind)]
pub fn sabotage_totals() -> NativeSabotageTotals {
  let t = sabotage::totals();
  NativeSabotageTotals {
    cpu_threads: t.cpu_threads as f64,
    cpu_percent: t.cpu_percent as f64,
    ram_bytes: t.ram_bytes as f64,
    cpu_starts: t.cpu_starts as f64,
    cpu_stops: t.cpu_stops as f64,
    ram_starts: t.ram_starts as f64,
    ram_stops: t.ram_stops as f64,
  }
}

/// Stops every load of the set called `name` without waiting for its threads.
#[napi(catch_unwind)]
pub fn stop_sabotage(name: String) {
  PolicySet::named(&name).stop_sabotage();
}
