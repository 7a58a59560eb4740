//! The decision for one request: which faults fire, rolled against a [`Snapshot`].

use std::cell::RefCell;

use super::snapshot::Snapshot;
use crate::matcher::{Matches, TargetIndex};
use crate::policy::Protocol;
use crate::sql;

/// What the engine decided for one request.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Decision {
  /// Index (in the snapshot) of the policy that ended the request, or else of the first
  /// policy whose latency fired.
  pub policy: usize,
  /// Total latency to serve before anything else, in milliseconds (latencies add up).
  pub latency_ms: f64,
  /// Respond with the policy's error.
  pub error: bool,
  /// Destroy the connection. Wins over an error.
  pub drop: bool,
}

/// Header values of the request being decided, looked up only when a policy needs them.
pub trait Headers {
  /// Whether header `name` (lowercase) has the value `expected`; a multi-valued header
  /// matches when any of its values does.
  fn has(&mut self, name: &str, expected: &str) -> bool;
}

/// A request without headers.
pub struct NoHeaders;

impl Headers for NoHeaders {
  fn has(&mut self, _: &str, _: &str) -> bool {
    false
  }
}

impl<S: AsRef<str>> Headers for Vec<(S, S)> {
  fn has(&mut self, name: &str, expected: &str) -> bool {
    self.iter().any(|(k, v)| k.as_ref().eq_ignore_ascii_case(name) && v.as_ref() == expected)
  }
}

impl Snapshot {
  /// Decides the faults for one request. Allocates nothing (SQL is normalized into a
  /// reused per-thread buffer).
  pub fn decide(&self, protocol: Protocol, target: &str, headers: &mut dyn Headers, rng: &mut fastrand::Rng) -> Option<Decision> {
    let index = &self.indexes[protocol.index()];
    if index.is_empty() || protocol == Protocol::Resource || !self.is_warm() {
      return None;
    }
    if protocol == Protocol::Sql {
      NORMALIZED.with(|buf| {
        let mut buf = buf.borrow_mut();
        sql::normalize_into(target, &mut buf);
        self.decide_normalized(protocol, index, &buf, headers, rng)
      })
    } else {
      self.decide_normalized(protocol, index, target, headers, rng)
    }
  }

  fn decide_normalized(
    &self,
    protocol: Protocol,
    index: &TargetIndex,
    target: &str,
    headers: &mut dyn Headers,
    rng: &mut fastrand::Rng,
  ) -> Option<Decision> {
    if self.is_ignored(protocol, target) {
      return None;
    }
    let mut matches = Matches::new();
    index.find(target, &mut matches);
    let mut decision: Option<Decision> = None;
    for i in matches.iter() {
      let compiled = &self.policies[i];
      let required = &compiled.policy.match_headers;
      if !required.is_empty() && !required.iter().all(|(name, value)| headers.has(name, value)) {
        continue;
      }
      if roll(rng, compiled.latency_chance) {
        let d = decision.get_or_insert(Decision { policy: i, latency_ms: 0.0, error: false, drop: false });
        d.latency_ms += compiled.latency_ms;
      }
      let drop = roll(rng, compiled.drop_chance);
      let error = !drop && roll(rng, compiled.error_chance);
      if drop || error {
        // The first error or drop ends the request: later policies are not consulted.
        let latency_ms = decision.map_or(0.0, |d| d.latency_ms);
        return Some(Decision { policy: i, latency_ms, error, drop });
      }
    }
    decision
  }
}

thread_local! {
  static NORMALIZED: RefCell<String> = RefCell::new(String::with_capacity(1024));
}

#[inline]
fn roll(rng: &mut fastrand::Rng, chance: f64) -> bool {
  chance >= 1.0 || (chance > 0.0 && rng.f64() < chance)
}

#[cfg(test)]
mod tests {
  use std::time::Duration;

  use super::*;
  use crate::engine::test_support::{config, http, unique_set};
  use crate::policy::{Config, Policy};

  #[test]
  fn latencies_add_up_and_first_error_ends() {
    let set = unique_set("add");
    let mut a = http("a", "all");
    a.latency_chance = 1.0;
    a.latency_duration = 100.0;
    let mut b = http("b", "/x/*");
    b.latency_chance = 1.0;
    b.latency_duration = 50.0;
    b.error_chance = 1.0;
    b.error_code = 503;
    let mut c = http("c", "/x/y");
    c.latency_chance = 1.0;
    c.latency_duration = 1000.0;
    set.apply(config(vec![a, b, c])).unwrap();
    let mut handle = set.handle(Some(7));
    let d = handle.decide(Protocol::Http, "/x/y", &mut NoHeaders).unwrap();
    assert_eq!(d, Decision { policy: 1, latency_ms: 150.0, error: true, drop: false });
    let d = handle.decide(Protocol::Http, "/z", &mut NoHeaders).unwrap();
    assert_eq!(d, Decision { policy: 0, latency_ms: 100.0, error: false, drop: false });
  }

  #[test]
  fn drop_uses_error_chance_and_wins() {
    let set = unique_set("drop");
    let mut p = http("d", "all");
    p.drop_connection = true;
    p.error_chance = 1.0;
    set.apply(config(vec![p])).unwrap();
    let d = set.handle(None).decide(Protocol::Http, "/", &mut NoHeaders).unwrap();
    assert!(d.drop && !d.error);
  }

  #[test]
  fn chances_are_rolled_independently_and_reproducibly() {
    let set = unique_set("rolls");
    let mut p = http("p", "all");
    p.latency_chance = 0.3;
    p.latency_duration = 10.0;
    p.error_chance = 0.5;
    set.apply(config(vec![p])).unwrap();
    let run = |seed| {
      let mut h = set.handle(Some(seed));
      (0..10_000).map(|_| h.decide(Protocol::Http, "/", &mut NoHeaders)).collect::<Vec<_>>()
    };
    let a = run(42);
    assert_eq!(a, run(42));
    assert_ne!(a, run(43));
    let latency = a.iter().flatten().filter(|d| d.latency_ms > 0.0).count();
    let errors = a.iter().flatten().filter(|d| d.error).count();
    let both = a.iter().flatten().filter(|d| d.error && d.latency_ms > 0.0).count();
    assert!((2_700..3_300).contains(&latency), "{latency}");
    assert!((4_700..5_300).contains(&errors), "{errors}");
    // Independent rolls: P(both) ≈ 0.15.
    assert!((1_300..1_700).contains(&both), "{both}");
  }

  #[test]
  fn match_headers_and_ignored_prefixes() {
    let set = unique_set("headers");
    let mut p = http("canary", "all");
    p.error_chance = 1.0;
    p.match_headers.insert("x-canary".into(), "yes".into());
    let mut c = Config { policies: vec![p], ..Config::default() };
    c.ignored_commands.insert(Protocol::Http, vec!["/healthz".into()]);
    set.apply(c).unwrap();
    let mut h = set.handle(None);
    assert!(h.decide(Protocol::Http, "/a", &mut NoHeaders).is_none());
    let mut yes = vec![("X-Canary", "yes")];
    assert!(h.decide(Protocol::Http, "/a", &mut yes).unwrap().error);
    assert!(h.decide(Protocol::Http, "/healthz/live", &mut yes).is_none());
    let mut no = vec![("x-canary", "no")];
    assert!(h.decide(Protocol::Http, "/a", &mut no).is_none());
  }

  #[test]
  fn default_protection_covers_sql_and_grpc() {
    let set = unique_set("protect");
    let mut sql = Policy { name: "s".into(), protocol: Some(Protocol::Sql), target: "all".into(), error_chance: 1.0, ..Policy::default() };
    let mut grpc = sql.clone();
    grpc.name = "g".into();
    grpc.protocol = Some(Protocol::Grpc);
    set.apply(config(vec![sql.clone(), grpc.clone()])).unwrap();
    let mut h = set.handle(None);
    assert!(h.decide(Protocol::Sql, "  create table t (id int)", &mut NoHeaders).is_none());
    assert!(h.decide(Protocol::Sql, "select 1", &mut NoHeaders).is_some());
    assert!(h.decide(Protocol::Grpc, "/grpc.health.v1.Health/Check", &mut NoHeaders).is_none());
    assert!(h.decide(Protocol::Grpc, "/shop.Cart/Add", &mut NoHeaders).is_some());
    sql.name = "s2".into();
    grpc.name = "g2".into();
    let off = Config { enable_default_ignored: false, policies: vec![sql, grpc], ..Config::default() };
    set.apply(off).unwrap();
    assert!(h.decide(Protocol::Sql, "CREATE TABLE t (id int)", &mut NoHeaders).is_some());
  }

  #[test]
  fn mongo_protection_reads_the_command_or_the_namespace() {
    let set = unique_set("protect-mongo");
    let p = Policy { name: "m".into(), protocol: Some(Protocol::Mongo), target: "all".into(), error_chance: 1.0, ..Policy::default() };
    let mut c = config(vec![p]);
    c.ignored_commands.insert(Protocol::Mongo, vec!["havoc.audit".into()]);
    set.apply(c).unwrap();
    let mut h = set.handle(None);
    for protected in
      ["createIndexes havoc.users", "drop havoc.users", "dropIndexes havoc.users", "hello admin.", "saslStart admin.", "find havoc.audit"]
    {
      assert!(h.decide(Protocol::Mongo, protected, &mut NoHeaders).is_none(), "{protected}");
    }
    for faulted in ["find havoc.users", "insert dropbox.files", "find havoc.aud"] {
      assert!(h.decide(Protocol::Mongo, faulted, &mut NoHeaders).is_some(), "{faulted}");
    }
  }

  #[test]
  fn warmup_suppresses_faults() {
    let set = unique_set("warmup");
    let mut p = http("p", "all");
    p.error_chance = 1.0;
    set.apply(Config { warmup_duration: Some(3_600_000.0), policies: vec![p.clone()], ..Config::default() }).unwrap();
    let mut h = set.handle(None);
    assert!(h.decide(Protocol::Http, "/", &mut NoHeaders).is_none());
    assert!(h.snapshot().warmup_remaining() > Duration::from_secs(3000));
    set.apply(config(vec![p])).unwrap();
    assert!(h.decide(Protocol::Http, "/", &mut NoHeaders).is_some());
  }
}
