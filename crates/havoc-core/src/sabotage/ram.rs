//! RAM leak: chunks mapped outside any allocator, every page written, unmapped on stop.
//!
//! `mmap`/`munmap` directly rather than the global allocator: glibc's malloc may keep a
//! freed block for reuse, and the point of stopping is that RSS drops back at once.

use std::fs;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use super::stats::{LoadStats, TOTALS};
use super::Cancel;

pub const MB: u64 = 1024 * 1024;
/// The process-wide ceiling when neither the cgroup nor the machine is smaller.
pub const DEFAULT_CEILING_MB: u64 = 4096;
/// Share of the cgroup limit or of physical memory sabotage may take.
const CEILING_SHARE: f64 = 0.8;
/// Pages are written in slices this large, checking for cancellation in between.
const TOUCH_SLICE: usize = 16 * MB as usize;

/// Bytes reserved by every RAM leak of the process, never above [`ceiling`].
static RESERVED: AtomicU64 = AtomicU64::new(0);

/// The most memory RAM sabotage may hold in this process, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ceiling {
  pub bytes: u64,
  /// `"the default"`, `"80% of the cgroup memory limit"` or `"80% of physical memory"`.
  pub reason: &'static str,
}

/// The process ceiling, computed once: 4096 MB, lowered to 80% of the cgroup memory limit
/// (v2 `memory.max` or v1 `memory.limit_in_bytes`, the smallest along the cgroup's path)
/// or of physical memory when those are smaller.
pub fn ceiling() -> &'static Ceiling {
  static CEILING: OnceLock<Ceiling> = OnceLock::new();
  CEILING.get_or_init(|| choose_ceiling(cgroup_limit(), physical_memory()))
}

fn choose_ceiling(cgroup: Option<u64>, physical: Option<u64>) -> Ceiling {
  let mut best = Ceiling { bytes: DEFAULT_CEILING_MB * MB, reason: "the default" };
  for (limit, reason) in [(cgroup, "80% of the cgroup memory limit"), (physical, "80% of physical memory")] {
    if let Some(limit) = limit {
      let share = (limit as f64 * CEILING_SHARE) as u64;
      if share < best.bytes {
        best = Ceiling { bytes: share, reason };
      }
    }
  }
  best
}

fn physical_memory() -> Option<u64> {
  // SAFETY: sysconf has no preconditions.
  let (pages, size) = unsafe { (libc::sysconf(libc::_SC_PHYS_PAGES), libc::sysconf(libc::_SC_PAGESIZE)) };
  (pages > 0 && size > 0).then(|| pages as u64 * size as u64)
}

/// The smallest memory limit of this process's cgroups (v1 and v2, each ancestor too).
fn cgroup_limit() -> Option<u64> {
  let membership = fs::read_to_string("/proc/self/cgroup").ok()?;
  let mut files = Vec::new();
  for line in membership.lines() {
    let mut parts = line.splitn(3, ':');
    let (Some(_), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next()) else { continue };
    let (roots, file): (&[&str], &str) = if controllers.is_empty() {
      (&["/sys/fs/cgroup", "/sys/fs/cgroup/unified"], "memory.max")
    } else if controllers.split(',').any(|c| c == "memory") {
      (&["/sys/fs/cgroup/memory"], "memory.limit_in_bytes")
    } else {
      continue;
    };
    for root in roots {
      // In a container the cgroup's own directory is often mounted as the root: try the
      // full path, each ancestor and the root itself.
      let mut dir = path.trim_end_matches('/');
      loop {
        files.push(format!("{root}{dir}/{file}"));
        match dir.rfind('/') {
          Some(cut) => dir = &dir[..cut],
          None => break,
        }
      }
    }
  }
  files.iter().filter_map(|f| fs::read_to_string(f).ok()).filter_map(|text| parse_limit(&text)).min()
}

/// A cgroup memory limit file's content: `max` (v2) or a huge number (v1) mean none.
fn parse_limit(text: &str) -> Option<u64> {
  let value: u64 = text.trim().parse().ok()?;
  (value < 1 << 60).then_some(value)
}

/// Reserves up to `want` bytes under the ceiling; returns how many were granted.
fn reserve(want: u64) -> u64 {
  let limit = ceiling().bytes;
  let mut current = RESERVED.load(Ordering::Relaxed);
  loop {
    let granted = want.min(limit.saturating_sub(current));
    if granted == 0 {
      return 0;
    }
    match RESERVED.compare_exchange_weak(current, current + granted, Ordering::AcqRel, Ordering::Relaxed) {
      Ok(_) => return granted,
      Err(actual) => current = actual,
    }
  }
}

/// One anonymous private mapping, reserved under the ceiling, unmapped on drop.
struct Chunk {
  ptr: *mut u8,
  len: usize,
  /// Bytes written so far (resident), counted in the stats.
  touched: usize,
}

// SAFETY: the mapping is owned by exactly one Chunk and only its owner touches it.
unsafe impl Send for Chunk {}

impl Chunk {
  /// Maps `len` bytes already reserved; releases the reservation on failure.
  fn map(len: usize) -> Option<Chunk> {
    // SAFETY: an anonymous private mapping with no address hint has no preconditions.
    let ptr = unsafe { libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0) };
    if ptr == libc::MAP_FAILED {
      RESERVED.fetch_sub(len as u64, Ordering::AcqRel);
      return None;
    }
    Some(Chunk { ptr: ptr.cast(), len, touched: 0 })
  }

  /// Writes every page so the kernel backs it with real memory. Stops early on cancel.
  fn touch(&mut self, page: usize, cancel: &Cancel, stats: &LoadStats) {
    while self.touched < self.len && !cancel.is_cancelled() {
      let end = (self.touched + TOUCH_SLICE).min(self.len);
      let mut offset = self.touched;
      while offset < end {
        // SAFETY: offset < len, inside the mapping; volatile so the write is not elided.
        // A non-zero value: the page cannot be mistaken for (or merged as) a zero page.
        unsafe { self.ptr.add(offset).write_volatile(0xA5) };
        offset += page;
      }
      let added = (end - self.touched) as u64;
      self.touched = end;
      stats.ram_resident.fetch_add(added, Ordering::Relaxed);
      TOTALS.ram_bytes.fetch_add(added, Ordering::Relaxed);
    }
  }

  fn release(self, stats: &LoadStats) {
    stats.ram_resident.fetch_sub(self.touched as u64, Ordering::Relaxed);
    TOTALS.ram_bytes.fetch_sub(self.touched as u64, Ordering::Relaxed);
    // Drop unmaps.
  }
}

impl Drop for Chunk {
  fn drop(&mut self) {
    // SAFETY: ptr/len are exactly what mmap returned, unmapped only here.
    unsafe { libc::munmap(self.ptr.cast(), self.len) };
    RESERVED.fetch_sub(self.len as u64, Ordering::AcqRel);
  }
}

fn page_size() -> usize {
  // SAFETY: sysconf has no preconditions.
  let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
  if size > 0 {
    size as usize
  } else {
    4096
  }
}

/// What one RAM load does.
#[derive(Clone, Copy, Debug)]
pub(super) struct Leak {
  /// Bytes added per interval; 0 means the whole cap at once.
  pub chunk: u64,
  pub interval: Duration,
  /// This load's cap, `None` for "up to the ceiling".
  pub cap: Option<u64>,
  pub deadline: Option<Instant>,
}

/// Starts a thread that adds a chunk every interval up to the cap, and frees it all on stop.
pub(super) fn start(leak: Leak, cancel: &Arc<Cancel>, stats: &Arc<LoadStats>) {
  let target = leak.cap.unwrap_or(u64::MAX).min(ceiling().bytes);
  stats.ram_target.store(target, Ordering::Relaxed);
  stats.ram_running.store(true, Ordering::SeqCst);
  TOTALS.ram_starts.fetch_add(1, Ordering::Relaxed);
  let cancel = Arc::clone(cancel);
  let stats = Arc::clone(stats);
  let thread_stats = Arc::clone(&stats);
  let spawned = std::thread::Builder::new().name("havoc-ram".into()).spawn(move || {
    leak_until_stopped(leak, target, &cancel, &thread_stats);
    finish(&thread_stats);
  });
  if spawned.is_err() {
    finish(&stats);
  }
}

fn finish(stats: &LoadStats) {
  stats.ram_target.store(0, Ordering::Relaxed);
  stats.ram_running.store(false, Ordering::SeqCst);
  TOTALS.ram_stops.fetch_add(1, Ordering::Relaxed);
}

fn leak_until_stopped(leak: Leak, target: u64, cancel: &Cancel, stats: &LoadStats) {
  let page = page_size();
  let step = if leak.chunk == 0 { target } else { leak.chunk };
  let mut chunks: Vec<Chunk> = Vec::new();
  let mut held = 0_u64;
  loop {
    if cancel.is_cancelled() || leak.deadline.is_some_and(|d| Instant::now() >= d) {
      break;
    }
    if held < target {
      let granted = reserve(step.min(target - held));
      if granted > 0 {
        if let Some(mut chunk) = Chunk::map(granted as usize) {
          chunk.touch(page, cancel, stats);
          held += granted;
          chunks.push(chunk);
        }
      }
    }
    let next = Instant::now() + leak.interval;
    cancel.sleep_until(leak.deadline.map_or(next, |d| d.min(next)));
  }
  for chunk in chunks {
    chunk.release(stats);
  }
}

/// Bytes reserved by RAM sabotage in the whole process.
pub fn reserved() -> u64 {
  RESERVED.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
  use super::*;
  use crate::sabotage::test_support::eventually;

  #[test]
  fn ceiling_takes_the_smallest_limit() {
    let gb = 1024 * MB;
    assert_eq!(choose_ceiling(None, None), Ceiling { bytes: 4096 * MB, reason: "the default" });
    assert_eq!(choose_ceiling(Some(64 * gb), Some(64 * gb)).bytes, 4096 * MB);
    assert_eq!(choose_ceiling(Some(2 * gb), Some(64 * gb)), Ceiling { bytes: 2 * gb * 8 / 10, reason: "80% of the cgroup memory limit" });
    assert_eq!(choose_ceiling(None, Some(gb)).reason, "80% of physical memory");
    assert!(ceiling().bytes <= 4096 * MB && ceiling().bytes > 0);
  }

  #[test]
  fn cgroup_limit_files_parse() {
    assert_eq!(parse_limit("max\n"), None);
    assert_eq!(parse_limit("9223372036854771712\n"), None);
    assert_eq!(parse_limit("536870912\n"), Some(512 * MB));
  }

  #[test]
  fn leaks_up_to_the_cap_and_frees_on_cancel() {
    let _serial = crate::sabotage::TEST_RAM.lock().unwrap_or_else(|p| p.into_inner());
    let cancel = Arc::new(Cancel::default());
    let stats = Arc::new(LoadStats::default());
    let leak = Leak { chunk: 2 * MB, interval: Duration::from_millis(1), cap: Some(5 * MB), deadline: None };
    start(leak, &cancel, &stats);
    assert!(eventually(|| stats.ram_resident.load(Ordering::Relaxed) == 5 * MB));
    assert_eq!(stats.ram_target.load(Ordering::Relaxed), 5 * MB);
    cancel.cancel();
    assert!(eventually(|| !stats.ram_running.load(Ordering::SeqCst)));
    assert_eq!(stats.ram_resident.load(Ordering::Relaxed), 0);
  }

  #[test]
  fn reservations_never_pass_the_ceiling() {
    let _serial = crate::sabotage::TEST_RAM.lock().unwrap_or_else(|p| p.into_inner());
    let limit = ceiling().bytes;
    let granted = reserve(u64::MAX);
    assert!(granted <= limit);
    assert_eq!(reserve(limit), 0, "everything is reserved");
    RESERVED.fetch_sub(granted, Ordering::AcqRel);
  }
}
