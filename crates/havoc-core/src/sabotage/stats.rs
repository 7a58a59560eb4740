//! What sabotage reports: the live figures of each load, the process-wide totals over every
//! set, and the status of one set.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Mutex;

/// Live figures of one load, updated by its threads.
#[derive(Debug, Default)]
pub(crate) struct LoadStats {
  pub(super) cpu_threads: AtomicU32,
  pub(super) cpu_percent: AtomicU32,
  pub(super) thread_ids: Mutex<Vec<i64>>,
  pub(super) ram_running: AtomicBool,
  pub(super) ram_resident: AtomicU64,
  pub(super) ram_target: AtomicU64,
}

/// Process-wide figures over every set.
#[derive(Debug)]
pub(super) struct Totals {
  pub(super) cpu_threads: AtomicU64,
  pub(super) cpu_percent: AtomicU64,
  pub(super) ram_bytes: AtomicU64,
  pub(super) cpu_starts: AtomicU64,
  pub(super) cpu_stops: AtomicU64,
  pub(super) ram_starts: AtomicU64,
  pub(super) ram_stops: AtomicU64,
}

pub(super) static TOTALS: Totals = Totals {
  cpu_threads: AtomicU64::new(0),
  cpu_percent: AtomicU64::new(0),
  ram_bytes: AtomicU64::new(0),
  cpu_starts: AtomicU64::new(0),
  cpu_stops: AtomicU64::new(0),
  ram_starts: AtomicU64::new(0),
  ram_stops: AtomicU64::new(0),
};

/// Sabotage of the whole process, across every policy set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProcessTotals {
  /// Threads burning CPU now.
  pub cpu_threads: u64,
  /// Sum of their duty cycles: 100 per fully busy core, as `top` counts.
  pub cpu_percent: u64,
  /// Bytes written and held by RAM sabotage now.
  pub ram_bytes: u64,
  /// Bytes reserved under the ceiling (resident, or being written).
  pub ram_reserved: u64,
  /// CPU burns started since the process began.
  pub cpu_starts: u64,
  /// CPU burns whose threads have all left.
  pub cpu_stops: u64,
  /// RAM leaks started since the process began.
  pub ram_starts: u64,
  /// RAM leaks that ended.
  pub ram_stops: u64,
}

/// The process-wide figures.
pub fn totals() -> ProcessTotals {
  ProcessTotals {
    cpu_threads: TOTALS.cpu_threads.load(Ordering::SeqCst),
    cpu_percent: TOTALS.cpu_percent.load(Ordering::SeqCst),
    ram_bytes: TOTALS.ram_bytes.load(Ordering::Relaxed),
    ram_reserved: super::ram::reserved(),
    cpu_starts: TOTALS.cpu_starts.load(Ordering::Relaxed),
    cpu_stops: TOTALS.cpu_stops.load(Ordering::Relaxed),
    ram_starts: TOTALS.ram_starts.load(Ordering::Relaxed),
    ram_stops: TOTALS.ram_stops.load(Ordering::Relaxed),
  }
}

/// One load as reported by [`Sabotage::status`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadStatus {
  /// Name of the policy the load acts out.
  pub policy: String,
  /// Identity of that policy.
  pub identity: u64,
  /// Process-wide sequence number of this start: a restart gets a new one.
  pub serial: u64,
  /// Threads burning now (0 once the burn ended).
  pub cpu_threads: u32,
  /// Each thread's duty cycle.
  pub cpu_percent: u32,
  /// Kernel thread ids of the burning threads.
  pub thread_ids: Vec<i64>,
  /// Bytes written and held now.
  pub ram_bytes_resident: u64,
  /// What the load grows to (its cap, within the ceiling); 0 once it stopped.
  pub ram_bytes_target: u64,
}

/// The sabotage of one policy set. The totals include loads told to stop whose threads
/// have not left yet, so that they read 0 only once the CPU and the memory are really free.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Status {
  /// Threads burning now.
  pub cpu_threads: u32,
  /// Sum of the burning threads' duty cycles (100 per busy core).
  pub cpu_percent: u32,
  /// Bytes written and held now.
  pub ram_bytes_resident: u64,
  /// What the loads of the policies in force grow to.
  pub ram_bytes_target: u64,
  /// Loads of the policies in force, finished ones included (a finished load is not
  /// restarted while its policy stays unchanged).
  pub loads: Vec<LoadStatus>,
}
