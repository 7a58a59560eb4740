//! Configuration documents: the core reads them by its rules; this file converts.

use havoc_core::policy::{self, Finding, Part, Path, Step, Value};
use napi::bindgen_prelude::*;
use napi_derive::napi;

/// One finding of the core's rules on a document.
#[napi(object)]
pub struct NativeFinding {
  /// Keys (as written) and list indexes.
  pub path: Vec<Either<String, u32>>,
  /// Whether the finding is about the key at `path` rather than its value.
  pub key: bool,
  pub message: String,
  /// For a repeat, where the first one is (the message ends with `(first defined at ...)`).
  pub first: Option<Vec<Either<String, u32>>>,
}

/// A read document: the configuration's JSON form, or what is wrong with it.
#[napi(object)]
pub struct NativeRead {
  pub config: Option<String>,
  pub findings: Vec<NativeFinding>,
}

/// Which keys hold durations and which hold the policies, in every spelling.
#[napi(object)]
pub struct NativeShape {
  pub top_durations: Vec<String>,
  pub policies: Vec<String>,
  pub policy_durations: Vec<String>,
}

fn steps(path: &Path) -> Vec<Either<String, u32>> {
  path
    .0
    .iter()
    .map(|step| match step {
      Step::Key(k) => Either::A(k.clone()),
      Step::Index(i) => Either::B(u32::try_from(*i).unwrap_or(u32::MAX)),
    })
    .collect()
}

fn to_native(finding: Finding) -> NativeFinding {
  NativeFinding { path: steps(&finding.path), key: finding.part == Part::Key, message: finding.message, first: finding.first.as_ref().map(steps) }
}

/// Reads a configuration document (the wire form of `havoc_core::policy::Value::from_wire`).
#[napi(catch_unwind)]
pub fn read_config(wire: String) -> Result<NativeRead> {
  let doc = Value::from_wire(&wire).map_err(|message| Error::new(Status::InvalidArg, message))?;
  Ok(match policy::read(&doc) {
    Ok(config) => NativeRead { config: Some(config.to_json()), findings: Vec::new() },
    Err(findings) => NativeRead { config: None, findings: findings.into_iter().map(to_native).collect() },
  })
}

/// The shape of a configuration document: what the TypeScript layer converts where.
#[napi(catch_unwind)]
pub fn config_shape() -> NativeShape {
  let shape = policy::shape();
  NativeShape { top_durations: shape.top_durations, policies: shape.policies, policy_durations: shape.policy_durations }
}
