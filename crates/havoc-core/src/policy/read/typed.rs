//! The typed form, read by the same rules: a [`Config`] turned back into a raw document, so
//! that [`Config::check`] applies the rule book of [`super::read`] to it.

use crate::policy::value::Value;
use crate::policy::{Config, Policy};

/// A number with no source text.
pub(super) fn number(x: f64) -> Value {
  Value::Number(x, None)
}

/// Text.
fn text(s: &str) -> Value {
  Value::Text(s.to_string())
}

/// A mapping with its keys in the order given.
pub(super) fn map(pairs: Vec<(&str, Value)>) -> Value {
  Value::Map(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

impl Policy {
  /// This policy as a raw document (camelCase keys), for [`read`](super::read) to check.
  fn to_value(&self) -> Value {
    // Destructured, so that a new field cannot be forgotten here.
    let Policy {
      name,
      protocol,
      target,
      latency_chance,
      latency_duration,
      error_chance,
      error_code,
      error_body,
      match_headers,
      drop_connection,
      stream_roll_mode,
      throttle_threshold,
      ram_chunk_mb,
      ram_interval,
      cpu_cores,
      cpu_percent,
      ram_max_mb,
      duration,
    } = self;
    map(vec![
      ("name", text(name)),
      ("type", protocol.map_or(Value::Null, |p| text(p.as_str()))),
      ("target", text(target)),
      ("latencyChance", number(*latency_chance)),
      ("latencyDuration", number(*latency_duration)),
      ("errorChance", number(*error_chance)),
      ("errorCode", number(f64::from(*error_code))),
      ("errorBody", text(error_body)),
      ("matchHeaders", Value::Map(match_headers.iter().map(|(k, v)| (k.clone(), text(v))).collect())),
      ("dropConnection", Value::Bool(*drop_connection, None)),
      ("streamRollMode", text(stream_roll_mode.as_str())),
      ("throttleThreshold", number(*throttle_threshold)),
      ("ramChunkMb", number(*ram_chunk_mb)),
      ("ramInterval", number(*ram_interval)),
      ("cpuCores", number(f64::from(*cpu_cores))),
      ("cpuPercent", number(f64::from(*cpu_percent))),
      ("ramMaxMb", number(*ram_max_mb)),
      ("duration", number(*duration)),
    ])
  }
}

impl Config {
  /// This configuration as a raw document (camelCase keys), for [`read`](super::read) to check.
  pub(crate) fn to_value(&self) -> Value {
    let Config { version, warmup_duration, enable_default_ignored, ignored_commands, seed, policies } = self;
    let mut pairs = vec![("version", number(f64::from(*version)))];
    if let Some(ms) = warmup_duration {
      pairs.push(("warmupDuration", number(*ms)));
    }
    pairs.push(("enableDefaultIgnored", Value::Bool(*enable_default_ignored, None)));
    let ignored = ignored_commands.iter().map(|(p, prefixes)| (p.as_str().to_string(), Value::List(prefixes.iter().map(|s| text(s)).collect())));
    pairs.push(("ignoredCommands", Value::Map(ignored.collect())));
    if let Some(seed) = seed {
      pairs.push(("seed", number(*seed as f64)));
    }
    pairs.push(("policies", Value::List(policies.iter().map(Policy::to_value).collect())));
    map(pairs)
  }
}

#[cfg(test)]
mod tests {
  use crate::policy::read::read;
  use crate::policy::read::test_support::policy;
  use crate::policy::{Config, Issue};
  use serde_json::json;

  #[test]
  fn the_typed_form_is_checked_by_the_same_rules() {
    let mut config = read(&policy(json!({"latency_chance": 0.5}))).unwrap();
    assert_eq!(config.check(), Vec::<Issue>::new());
    config.policies[0].latency_chance = f64::NAN;
    config.policies[0].match_headers.insert("X-A".into(), "b".into());
    let issues: Vec<String> = config.check().into_iter().map(|i| i.to_string()).collect();
    assert_eq!(
      issues,
      ["policies[0].latencyChance: must be a number in [0, 1] (got NaN)", r#"policies[0].matchHeaders: header name "X-A" must be lowercase"#]
    );
    // What reads back is what was written.
    let sound = read(&policy(json!({"latency_duration": 1500, "cpu_percent": 50, "match_headers": {"x-a": "b"}}))).unwrap();
    assert_eq!(Config::from_json(&sound.to_json()).unwrap(), sound);
  }
}
