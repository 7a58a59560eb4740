//! Layers, their leases and the history of effective sets, and how layers merge into one
//! configuration.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::policy::{Config, Issue, MAX_POLICIES};

/// The layer of the application's own configuration, which a set's `apply` writes (its file, or
/// what it passes to `Engine.update`).
pub const DEFAULT_LAYER: &str = "file";
/// How many effective sets a rollback can go back through.
pub const HISTORY_LIMIT: usize = 20;

/// A time limit on a layer: when it runs out, the layer reverts to what it held before the
/// leased update (a dead-man's switch that needs no client to stay alive).
#[derive(Clone, Debug)]
pub struct Lease {
  /// How long the lease runs; a renewal without a new TTL extends it by this much.
  pub ttl: Duration,
  /// When the layer reverts.
  pub expires_at: Instant,
  /// What the layer reverts to; `None` removes the layer.
  pub revert_to: Option<Arc<Config>>,
}

/// One source of policies (file, control API, Redis channel, ...).
#[derive(Clone, Debug)]
pub struct Layer {
  /// What the layer holds.
  pub config: Arc<Config>,
  /// Its time limit, if it was applied with one.
  pub lease: Option<Lease>,
}

/// One published effective set, as a rollback restores it.
#[derive(Clone, Debug)]
pub struct HistoryEntry {
  /// The snapshot version it published.
  pub version: u64,
  /// What published it, e.g. `apply layer "api"`.
  pub cause: String,
  /// The layers as they were published.
  pub layers: BTreeMap<String, Layer>,
  /// How many policies the effective set held (before any halt).
  pub policies: usize,
}

/// A read-only view of a set's layers, leases, halt flag and history.
#[derive(Clone, Debug)]
pub struct SetState {
  /// Version of the snapshot in force.
  pub version: u64,
  /// Whether the set is halted.
  pub halted: bool,
  /// The layers, by name.
  pub layers: BTreeMap<String, Layer>,
  /// Published effective sets, oldest first.
  pub history: Vec<HistoryEntry>,
}

/// The effective configuration of `layers`: the union of their policies (layers in name
/// order), the union of their ignored prefixes, the longest warmup, default protection on if
/// any layer wants it, the first seed. A name in two layers is an issue reported against
/// the `changed` layer's policy (or the later layer's).
pub fn merge_layers(layers: &BTreeMap<String, Layer>, changed: Option<&str>) -> Result<Config, Vec<Issue>> {
  let mut merged = Config { enable_default_ignored: layers.is_empty(), ..Config::default() };
  let mut owners: HashMap<&str, &str> = HashMap::new();
  let mut issues = Vec::new();
  for (layer_name, layer) in layers {
    let config = &layer.config;
    merged.enable_default_ignored |= config.enable_default_ignored;
    merged.warmup_duration = match (merged.warmup_duration, config.warmup_duration) {
      (Some(a), Some(b)) => Some(a.max(b)),
      (a, b) => a.or(b),
    };
    merged.seed = merged.seed.or(config.seed);
    for (protocol, prefixes) in &config.ignored_commands {
      let into = merged.ignored_commands.entry(*protocol).or_default();
      for prefix in prefixes {
        if !into.contains(prefix) {
          into.push(prefix.clone());
        }
      }
    }
    for policy in &config.policies {
      if let Some(other) = owners.insert(&policy.name, layer_name) {
        let (here, there) = if changed == Some(other) { (other, layer_name.as_str()) } else { (layer_name.as_str(), other) };
        let index = layers[here].config.policies.iter().position(|p| p.name == policy.name).unwrap_or(0);
        issues.push(Issue {
          path: format!("policies[{index}].name"),
          message: format!(
            "policy {:?} of layer {here:?} is already defined in layer {there:?}; a policy name may be defined in one layer only",
            policy.name
          ),
        });
      }
    }
    merged.policies.extend(config.policies.iter().cloned());
  }
  if merged.policies.len() > MAX_POLICIES {
    issues.push(Issue {
      path: "policies".into(),
      message: format!("the layers together hold {} policies; at most {} are allowed", merged.policies.len(), MAX_POLICIES),
    });
  }
  if issues.is_empty() {
    Ok(merged)
  } else {
    Err(issues)
  }
}

#[cfg(test)]
mod tests {
  use crate::engine::test_support::{config, http, names, unique_set};
  use crate::policy::Protocol;

  #[test]
  fn layers_are_united_and_a_name_in_two_layers_is_refused() {
    let set = unique_set("layers");
    set.apply(config(vec![http("from-file", "/f")])).unwrap();
    set.apply_layer("api", config(vec![http("from-api", "/a")]), None).unwrap();
    assert_eq!(names(&set), ["from-api", "from-file"]);
    let issues = set.apply_layer("api", config(vec![http("x", "/x"), http("from-file", "/g")]), None).unwrap_err();
    assert_eq!(issues.len(), 1);
    assert_eq!(issues[0].path, "policies[1].name");
    assert!(issues[0].message.contains(r#"layer "api" is already defined in layer "file""#), "{}", issues[0].message);
    // Refused: nothing changed.
    assert_eq!(names(&set), ["from-api", "from-file"]);
    let issues = set.apply(config(vec![http("from-api", "/f")])).unwrap_err();
    assert!(issues[0].message.contains(r#"layer "file" is already defined in layer "api""#), "{}", issues[0].message);
    assert!(set.remove_layer("api"));
    assert!(!set.remove_layer("api"));
    assert_eq!(names(&set), ["from-file"]);
  }

  #[test]
  fn merged_settings_take_the_safer_side() {
    let set = unique_set("merge");
    let mut file = config(vec![]);
    file.enable_default_ignored = false;
    file.warmup_duration = Some(10.0);
    file.ignored_commands.insert(Protocol::Http, vec!["/healthz".into()]);
    let mut api = config(vec![]);
    api.warmup_duration = Some(20.0);
    api.ignored_commands.insert(Protocol::Http, vec!["/healthz".into(), "/ready".into()]);
    set.apply(file).unwrap();
    set.apply_layer("api", api, None).unwrap();
    let merged = &set.snapshot().config;
    assert!(merged.enable_default_ignored);
    assert_eq!(merged.warmup_duration, Some(20.0));
    assert_eq!(merged.ignored_commands[&Protocol::Http], ["/healthz", "/ready"]);
  }
}
