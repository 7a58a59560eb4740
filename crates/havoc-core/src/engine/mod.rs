//! Named, process-global policy sets and the per-request decision.
//!
//! A [`PolicySet`] holds an immutable [`Snapshot`] behind an `ArcSwap`: updates swap the
//! whole compiled set at once, readers never lock. Every thread that asks for a set by name
//! gets the same one, so worker threads share policies without passing messages.
//! A [`Handle`] is one thread's view: a cached pointer to the current snapshot and its own
//! random number generator.
//!
//! A set's policies come from named layers (file, control API, Redis channel); it keeps a
//! history of its effective sets for rollback, can be halted, and reverts leased layers by
//! itself when their time runs out.
//!
//! One concept per submodule, each depending only on those listed before it:
//! - `snapshot`: a configuration compiled into target indexes, protection prefixes and warmup;
//! - `decide`: the decision for one request against a snapshot ([`Decision`], [`Headers`]);
//! - `layers`: layers, leases, history entries and how layers merge into one configuration;
//! - `lease`: when a set's leases run out, and the native thread that reverts them;
//! - `set`: the named [`PolicySet`], the one place its effective set is published;
//! - `handle`: one thread's [`Handle`] on a set.

mod decide;
mod flags;
mod handle;
mod layers;
mod lease;
mod set;
mod snapshot;

pub use decide::{Decision, Headers, NoHeaders};
pub use flags::{FireFlags, FLAG_WORDS, PROTOCOL_WORD, SEGMENT_WORDS};
pub use handle::Handle;
pub use layers::{merge_layers, HistoryEntry, Layer, Lease, SetState, DEFAULT_LAYER, HISTORY_LIMIT};
pub use lease::{lease_ttl, MAX_LEASE_MS};
pub use set::PolicySet;
pub use snapshot::{CompiledPolicy, Snapshot};

/// Builders shared by the tests of the submodules.
#[cfg(test)]
mod test_support {
  use std::sync::Arc;

  use super::PolicySet;
  use crate::policy::{Config, Policy, Protocol};

  pub(super) fn config(policies: Vec<Policy>) -> Config {
    Config { policies, ..Config::default() }
  }

  pub(super) fn http(name: &str, target: &str) -> Policy {
    Policy { name: name.into(), protocol: Some(Protocol::Http), target: target.into(), ..Policy::default() }
  }

  pub(super) fn unique_set(test: &str) -> Arc<PolicySet> {
    PolicySet::named(&format!("engine-test-{test}"))
  }

  pub(super) fn erroring(name: &str) -> Policy {
    let mut p = http(name, "all");
    p.error_chance = 1.0;
    p
  }

  pub(super) fn names(set: &PolicySet) -> Vec<String> {
    set.snapshot().config.policies.iter().map(|p| p.name.clone()).collect()
  }
}
