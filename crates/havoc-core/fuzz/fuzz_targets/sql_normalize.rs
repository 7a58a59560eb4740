//! SQL normalization and fingerprinting on arbitrary text.
//!
//! - never panics (slicing stays on `char` boundaries, no overflow);
//! - `normalize` and `fingerprint` are idempotent, and fingerprinting a normalized statement
//!   gives the statement's fingerprint (the properties `sql.rs` documents and unit-tests);
//! - the `_into` forms agree with the allocating ones on a dirty, reused buffer;
//! - output length is bounded by the input's (deterministic work bound): a normalized
//!   statement is never longer than its input, a fingerprint at most 6/5 of it (the one
//!   byte `IN(?)` → `IN (?)` adds, per at least 5 input bytes);
//! - time is linear: inputs of 4 KiB or more are timed as they are, and an input holding the
//!   separator U+0001 is amplified to at least 8 KiB and timed too: split on the separator,
//!   every second part is repeated (`a␁b␁c` → `a b…b c`, `␁(␁x␁)` → `(…( x )…)`).
//!   normalize + fingerprint must run in under 2 µs per byte: very generous (even
//!   instrumented they run at ~0.1 µs per byte), yet a quadratic scan of 8 KiB blows through
//!   it. Amplifying only on request keeps the fuzzer fast; seeds and dictionary hold U+0001.
//!   Only one in `AMPLIFY_ONE_IN` such inputs (by a hash of its bytes, so reproducibly) is
//!   amplified: an amplified run costs as much as ~50 plain ones, and a quadratic scan shows
//!   on any of them.
//!   Time is the thread's CPU time, not wall time: on a loaded machine a niced fuzzer waits
//!   for a core for tens of milliseconds (that once failed a wall-clock bound on an input
//!   that scales at a steady ~20 ns per byte up to 4 MiB).

#![no_main]

use std::time::Duration;

use havoc_core::hash::fnv1a64;
use havoc_core::sql::{fingerprint, fingerprint_into, normalize, normalize_into};
use libfuzzer_sys::fuzz_target;

/// One in this many inputs holding the separator is amplified.
const AMPLIFY_ONE_IN: u64 = 8;
/// Amplified inputs are at least this long.
const AMPLIFY_TO: usize = 8 * 1024;
/// Inputs at least this long are timed as they are.
const TIMED_FROM: usize = 4 * 1024;
/// The linear-time bound, per input byte, for normalize + fingerprint together.
const NS_PER_BYTE: u64 = 2_000;
/// Slack for the clock's granularity and a cold cache.
const SLACK: Duration = Duration::from_millis(5);

fuzz_target!(|data: &[u8]| {
  let sql = String::from_utf8_lossy(data);
  check(&sql);
  if sql.len() >= TIMED_FROM {
    linear(&sql);
  }
  if fnv1a64(data) % AMPLIFY_ONE_IN == 0 {
    let big = amplify(&sql);
    if !big.is_empty() {
      linear(&big);
    }
  }
});

fn check(sql: &str) {
  let n = normalize(sql);
  assert!(n.len() <= sql.len(), "normalize grew {} → {} bytes", sql.len(), n.len());
  assert_eq!(normalize(&n), n, "normalize not idempotent for {sql:?}");

  let f = fingerprint(sql);
  assert!(f.len() <= fingerprint_bound(sql.len()), "fingerprint grew {} → {} bytes", sql.len(), f.len());
  assert_eq!(fingerprint(&f), f, "fingerprint not idempotent for {sql:?}");
  assert_eq!(fingerprint(&n), f, "fingerprint differs after normalize for {sql:?}");

  let mut buf = String::from("stale (contents; 'of a previous call");
  normalize_into(sql, &mut buf);
  assert_eq!(buf, n, "normalize_into differs from normalize");
  fingerprint_into(sql, &mut buf);
  assert_eq!(buf, f, "fingerprint_into differs from fingerprint");
}

fn fingerprint_bound(len: usize) -> usize {
  len + len / 5 + 1
}

/// `sql` split on U+0001 with every second part repeated, at least `AMPLIFY_TO` bytes long;
/// empty when `sql` holds no separator (or only empty parts to repeat).
fn amplify(sql: &str) -> String {
  let parts: Vec<&str> = sql.splitn(8, '\u{1}').collect();
  let repeated: usize = parts.iter().skip(1).step_by(2).map(|p| p.len()).sum();
  if repeated == 0 {
    return String::new();
  }
  let times = AMPLIFY_TO / repeated + 1;
  let mut big = String::with_capacity(sql.len() + AMPLIFY_TO * 2);
  for (i, part) in parts.iter().enumerate() {
    if i % 2 == 1 {
      big.push_str(&part.repeat(times));
    } else {
      big.push_str(part);
    }
  }
  big
}

fn linear(sql: &str) {
  let limit = Duration::from_nanos(NS_PER_BYTE * sql.len() as u64) + SLACK;
  let mut best = Duration::MAX;
  // A second try rules out a one-off (a page fault storm, a migration to a busy core).
  for _ in 0..2 {
    let start = thread_cpu_time();
    let n = normalize(sql);
    let f = fingerprint(sql);
    best = best.min(thread_cpu_time().saturating_sub(start));
    assert!(n.len() <= sql.len(), "normalize grew {} → {} bytes", sql.len(), n.len());
    assert!(f.len() <= fingerprint_bound(sql.len()), "fingerprint grew {} → {} bytes", sql.len(), f.len());
    if best <= limit {
      return;
    }
  }
  panic!("superlinear: {} bytes took {best:?} (limit {limit:?})", sql.len());
}

/// CPU time this thread has used: unlike wall time, it does not grow while the thread waits
/// for a core.
fn thread_cpu_time() -> Duration {
  let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
  // SAFETY: `ts` is a valid, writable timespec; this clock exists on every Linux.
  let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
  assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
  Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}
