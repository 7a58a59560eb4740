//! havoc-core: the engine behind havoc, with no N-API inside.
//!
//! - [`policy`]: the configuration model, its one rule book (every field, limit and message) and each policy's stable identity;
//! - [`matcher`]: target indexes that match without allocating;
//! - [`engine`]: named, process-global policy sets and the per-request decision;
//! - [`sabotage`]: CPU burn and RAM leak on native threads, reconciled by policy identity
//!   from the policies it is handed (it knows nothing of sets or snapshots);
//! - [`sql`]: SQL normalization and fingerprinting;
//! - [`guard`]: the blast-radius risk score;
//! - [`hash`]: FNV-1a 64;
//! - [`limit`]: rate limiter, adaptive concurrency limiter, bulkheads and circuit breaker.

pub mod engine;
pub mod guard;
pub mod hash;
pub mod limit;
pub mod matcher;
pub mod policy;
pub mod sabotage;
pub mod segments;
pub mod sql;

pub use engine::{
  Decision, FireFlags, Handle, Headers, HistoryEntry, Layer, Lease, NoHeaders, PolicySet, SetState, Snapshot, DEFAULT_LAYER, HISTORY_LIMIT,
};
pub use policy::{Config, Issue, Policy, Protocol};
