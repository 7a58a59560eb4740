//! N-API binding for havoc-core: conversions only.
//!
//! The hot call, `decide` (keyed by a `NativeEngine` slot), reads its string arguments into per-thread
//! buffers and returns one packed number, so a decision crosses N-API once and allocates
//! nothing. See `src/engine.ts` for the unpacking.

// napi-derive compiles exported free functions out of test builds, leaving their helpers unused there.
#![cfg_attr(test, allow(dead_code))]

mod breaker;
mod config;
mod engine;
mod layers;
mod limit;
mod retry;
mod sabotage;
mod tools;

use havoc_core::{Config, Issue};
use napi_derive::napi;

/// A configuration problem, as the TypeScript layer turns it into a `ConfigIssue`.
#[napi(object)]
pub struct NativeIssue {
  pub path: String,
  pub message: String,
}

pub(crate) fn to_native_issues(issues: Vec<Issue>) -> Vec<NativeIssue> {
  issues.into_iter().map(|i| NativeIssue { path: i.path, message: i.message }).collect()
}

pub(crate) fn parse_config(json: &str) -> std::result::Result<Config, Vec<NativeIssue>> {
  Config::from_json(json).map_err(to_native_issues)
}
