//! havoc-core: the engine behind havoc, with no N-API inside.
//!
//! - [`policy`]: the configuration model, limits and each policy's stable identity;
//! - [`matcher`]: target indexes that match without allocating;
//! - [`engine`]: named, process-global policy sets and the per-request decision;
//! - [`sql`]: SQL normalization and fingerprinting;
//! - [`guard`]: the blast-radius risk score;
//! - [`hash`]: FNV-1a 64.

pub mod engine;
pub mod guard;
pub mod hash;
pub mod matcher;
pub mod policy;
pub mod sql;

pub use engine::{Decision, Handle, Headers, HistoryEntry, Layer, Lease, NoHeaders, PolicySet, SetState, Snapshot, DEFAULT_LAYER, HISTORY_LIMIT};
pub use policy::{Config, Issue, Policy, Protocol};
