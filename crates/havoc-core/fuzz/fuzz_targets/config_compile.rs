//! Configuration JSON → `Config` → `Snapshot`, the way the Node binding takes it
//! (`parse_config` in `crates/havoc-node/src/lib.rs` is `Config::from_json`).
//!
//! - never panics, whatever the bytes;
//! - `from_json` returns either a configuration `check` finds sound or at least one issue;
//!   whatever serde alone reads from objects, `check` refuses too; anything it reads compiles
//!   without panicking;
//! - a sound configuration serializes and reads back as a sound one with the same policies;
//! - a sound configuration compiles unless the machine refuses it (`sabotage::check`) or a
//!   SQL target is not a valid regex; a compile error names only such problems, on policies
//!   that exist, and a compiled snapshot indexes every policy under its own protocol.
//!
//! Compiling SQL targets (regexes) costs ~50 times the rest of a run, and the regex crate's
//! own coverage would draw the corpus to ever more of them: they are compiled in 1 of
//! `SQL_ONE_IN` inputs (by a hash of the bytes, so reproducibly). In the others, SQL targets
//! are replaced by `all` before compiling; parsing, checking and everything else still run.

#![no_main]

use std::time::Instant;

use havoc_core::engine::{NoHeaders, Snapshot};
use havoc_core::hash::fnv1a64;
use havoc_core::policy::{Config, Policy, Protocol};
use havoc_core::sabotage;
use libfuzzer_sys::fuzz_target;
use regex::RegexBuilder;

const SQL_ONE_IN: u64 = 32;

fuzz_target!(|data: &[u8]| {
  // The high bits: FNV-1a's low bits depend on the inputs' low bits only.
  let regexes = (fnv1a64(data) >> 32).is_multiple_of(SQL_ONE_IN);
  let json = String::from_utf8_lossy(data);
  let config = match Config::from_json(&json) {
    Ok(config) => config,
    Err(issues) => {
      assert!(!issues.is_empty(), "an error without issues");
      // Whatever serde parses is still checked and compiled without panicking, and `check`
      // refuses it too — unless serde read a struct written as an array (`[1]`, a policy as
      // `["name", ...]`), a form only serde takes.
      if let Ok(config) = serde_json::from_str::<Config>(&json) {
        if structs_are_objects(&json) {
          assert!(!config.check().is_empty(), "from_json refused a configuration check accepts");
        }
        compile(config, regexes);
      }
      return;
    }
  };
  assert!(config.check().is_empty(), "from_json accepted a configuration check refuses");

  let again = Config::from_json(&config.to_json()).expect("a sound configuration reads back");
  assert_eq!(again.policies.len(), config.policies.len());
  for (a, b) in again.policies.iter().zip(&config.policies) {
    assert_eq!((&a.name, a.protocol, &a.target), (&b.name, b.protocol, &b.target));
    assert_eq!(a.match_headers, b.match_headers);
  }

  compile(config, regexes);
});

/// Whether the configuration and each of its policies are JSON objects.
fn structs_are_objects(json: &str) -> bool {
  let Ok(serde_json::Value::Object(top)) = serde_json::from_str::<serde_json::Value>(json) else { return false };
  match top.get("policies") {
    Some(serde_json::Value::Array(policies)) => policies.iter().all(serde_json::Value::is_object),
    _ => true,
  }
}

fn compile(mut config: Config, regexes: bool) {
  if !regexes {
    for policy in config.policies.iter_mut().filter(|p| is_regex_target(p)) {
      policy.target = "all".into();
    }
  }
  let sound = config.check().is_empty();
  let machine = sabotage::check(&config);
  let policies = config.policies.clone();
  match Snapshot::compile(config, 1, Instant::now()) {
    Ok(snapshot) => {
      assert!(sound, "compiled a configuration check refuses");
      assert!(machine.is_empty(), "compiled a configuration this machine refuses: {machine:?}");
      assert_eq!(snapshot.policies.len(), policies.len());
      for protocol in Protocol::ALL {
        assert_eq!(snapshot.count(protocol), policies.iter().filter(|p| p.protocol() == protocol).count());
      }
      for (compiled, policy) in snapshot.policies.iter().zip(&policies) {
        assert_eq!(&compiled.policy, policy);
        assert_eq!(compiled.identity, policy.identity());
      }
      let mut rng = fastrand::Rng::with_seed(7);
      for protocol in Protocol::ALL {
        for target in ["", "/", "select 1", "GET", "/a/b?c"] {
          if let Some(d) = snapshot.decide(protocol, target, &mut NoHeaders, &mut rng) {
            assert!(d.policy < policies.len());
            assert_eq!(policies[d.policy].protocol(), protocol);
          }
        }
      }
    }
    Err(issues) => {
      assert!(!issues.is_empty(), "a compile error without issues");
      if !sound {
        return;
      }
      for issue in &issues {
        let expected = machine.contains(issue) || target_index(&issue.path).is_some_and(|i| policies.get(i).is_some_and(is_regex_target));
        assert!(expected, "unexpected compile issue {issue} for a sound configuration");
      }
      // Only the whole set's screening `RegexSet` can fail when each regex compiles alone.
      // (Compiling them again is slow, hence only here.)
      let bad_regex = policies.iter().any(|p| is_regex_target(p) && !sql_regex_compiles(&p.target));
      if machine.is_empty() && !bad_regex {
        assert!(issues.iter().all(|i| !i.message.starts_with("invalid regex")), "{issues:?}");
      }
    }
  }
}

fn target_index(path: &str) -> Option<usize> {
  path.strip_prefix("policies[")?.strip_suffix("].target")?.parse().ok()
}

/// A SQL policy whose target is a regex (not one meaning "everything").
fn is_regex_target(policy: &Policy) -> bool {
  policy.protocol() == Protocol::Sql && !policy.targets_all()
}

/// What `matcher::sql_regex` builds (trimmed target, bare words as whole words, inline
/// case-insensitivity, 1 MiB size limit).
fn sql_regex_compiles(target: &str) -> bool {
  let target = target.trim();
  let is_word = target.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
  let pattern = if is_word { format!(r"(?i)\b{target}\b") } else { format!("(?i){target}") };
  RegexBuilder::new(&pattern).size_limit(1 << 20).build().is_ok()
}
