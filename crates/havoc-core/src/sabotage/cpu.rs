//! CPU burn: native threads alternating busy work and sleep in 10 ms periods.
//!
//! Each thread controls its duty cycle on its own CPU time (`CLOCK_THREAD_CPUTIME_ID`), not
//! on the wall clock, so that what `top` shows is what was asked for even when the thread
//! is preempted: CPU time a period could not get is owed to the next ones (at most
//! [`MAX_DEBT`], so a thread starved for long does not burst for long afterwards).

use std::hint::black_box;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::stats::{LoadStats, TOTALS};
use super::Cancel;

/// Length of one work-then-sleep period: short enough that a 50% burn looks like 50% to
/// any sampler, long enough that the sleep's timer slack is noise.
const PERIOD: Duration = Duration::from_millis(10);
/// Most CPU time owed from earlier periods: enough to repay a busy neighbour's time slices.
const MAX_DEBT: Duration = Duration::from_millis(100);

/// Starts `threads` burning threads at `percent` (1–100) until `cancel` or `deadline`.
pub(super) fn start(threads: usize, percent: u32, deadline: Option<Instant>, cancel: &Arc<Cancel>, stats: &Arc<LoadStats>) {
  TOTALS.cpu_starts.fetch_add(1, Ordering::Relaxed);
  // Counted before the threads run, so that the last one out always sees the full count.
  stats.cpu_threads.fetch_add(threads as u32, Ordering::SeqCst);
  stats.cpu_percent.store(percent, Ordering::Relaxed);
  TOTALS.cpu_threads.fetch_add(threads as u64, Ordering::SeqCst);
  TOTALS.cpu_percent.fetch_add(u64::from(percent) * threads as u64, Ordering::SeqCst);
  for i in 0..threads {
    let cancel = Arc::clone(cancel);
    let own = Arc::clone(stats);
    let spawned = std::thread::Builder::new().name(format!("havoc-cpu-{i}")).spawn(move || {
      let tid = super::thread_id();
      own.thread_ids.lock().unwrap_or_else(|p| p.into_inner()).push(tid);
      burn(percent, deadline, &cancel);
      own.thread_ids.lock().unwrap_or_else(|p| p.into_inner()).retain(|&t| t != tid);
      finish(percent, &own);
    });
    if spawned.is_err() {
      // No thread, no burn: account for it as if it had finished at once.
      finish(percent, stats);
    }
  }
}

/// Accounts for one thread that stopped burning; the load's last one counts the stop.
fn finish(percent: u32, stats: &LoadStats) {
  TOTALS.cpu_threads.fetch_sub(1, Ordering::SeqCst);
  TOTALS.cpu_percent.fetch_sub(u64::from(percent), Ordering::SeqCst);
  if stats.cpu_threads.fetch_sub(1, Ordering::SeqCst) == 1 {
    TOTALS.cpu_stops.fetch_add(1, Ordering::Relaxed);
  }
}

/// This thread's CPU time in nanoseconds.
fn thread_cpu_ns() -> i64 {
  let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
  // SAFETY: `ts` is a valid out-pointer; this clock exists on every Linux since 2.6.12.
  unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
  ts.tv_sec * 1_000_000_000 + ts.tv_nsec
}

/// A few microseconds of arithmetic the optimizer cannot remove.
#[inline(never)]
fn work(state: &mut u64) {
  for _ in 0..2048 {
    *state = black_box(state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407));
  }
}

fn burn(percent: u32, deadline: Option<Instant>, cancel: &Cancel) {
  let period_ns = PERIOD.as_nanos() as i64;
  let max_debt_ns = MAX_DEBT.as_nanos() as i64;
  let share_ns = period_ns * i64::from(percent) / 100;
  let mut state = 0x9e37_79b9_7f4a_7c15_u64;
  let mut owed_ns = 0_i64;
  let mut period_end = Instant::now();
  loop {
    let now = Instant::now();
    if cancel.is_cancelled() || deadline.is_some_and(|d| now >= d) {
      break;
    }
    // A thread that woke far too late (suspended, starved) starts afresh from now.
    period_end = if now > period_end + PERIOD { now + PERIOD } else { period_end + PERIOD };
    owed_ns += share_ns;
    let begin = thread_cpu_ns();
    while owed_ns > 0 && thread_cpu_ns() - begin < owed_ns && Instant::now() < period_end {
      work(&mut state);
    }
    owed_ns = (owed_ns - (thread_cpu_ns() - begin)).clamp(-period_ns, max_debt_ns);
    if percent < 100 {
      let wake = deadline.map_or(period_end, |d| d.min(period_end));
      cancel.sleep_until(wake);
    }
  }
  black_box(state);
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn threads_register_and_stop_on_cancel() {
    // Unit tests assert no timing: this checks only that work happens and stops on cancel.
    let cancel = Arc::new(Cancel::default());
    let stats = Arc::new(LoadStats::default());
    start(1, 30, None, &cancel, &stats);
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(stats.thread_ids.lock().unwrap().len(), 1);
    cancel.cancel();
    let deadline = Instant::now() + Duration::from_secs(5);
    while stats.cpu_threads.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
      std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(stats.cpu_threads.load(Ordering::SeqCst), 0);
    assert!(stats.thread_ids.lock().unwrap().is_empty());
  }

  #[test]
  fn a_deadline_ends_the_burn() {
    let cancel = Arc::new(Cancel::default());
    let stats = Arc::new(LoadStats::default());
    start(2, 100, Some(Instant::now() + Duration::from_millis(20)), &cancel, &stats);
    let deadline = Instant::now() + Duration::from_secs(5);
    while stats.cpu_threads.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
      std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(stats.cpu_threads.load(Ordering::SeqCst), 0);
  }
}
