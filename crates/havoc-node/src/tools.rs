use havoc_core::{guard, hash, sql, Config};
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::engine::NONE;
use crate::parse_config;

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
    policies: report.policies.into_iter().map(|p| NativePolicyRisk { name: p.name, scope: p.scope, severity: p.severity, risk: p.risk }).collect(),
  })
}

/// FNV-1a 64 of a string's UTF-8 bytes or of raw bytes.
#[napi(js_name = "fnv1a64", catch_unwind)]
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
  let policy: havoc_core::Policy = serde_json_policy(&policy_json).map_err(|message| Error::new(Status::InvalidArg, message))?;
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

/// A native call with no arguments and no result: the cheapest crossing, for the benchmarks.
#[napi]
pub fn noop_empty() {}

/// A native call that does nothing with the arguments `decide` takes: the benchmark's floor.
#[napi]
pub fn noop(_protocol: u32, _target: Unknown, _headers: Unknown) -> f64 {
  NONE
}
