//! [`FireFlags`]: which protocols of a [`PolicySet`] can fire, and which first HTTP path
//! segments, in memory a caller reads without calling in. (The JS side reads the words with
//! plain loads, protocol word first, and relies on no order between them: each answer comes
//! from one word, as below. A publish made before its read is seen; a racing one may not be.)
//!
//! Every publish stores the new snapshot's bits into every live cell of its set, under the
//! writers' lock and after the snapshot itself, the protocol word last. So the last store is
//! always the current snapshot's; a reader that loads the protocol word first and sees a bit
//! set decides against a snapshot at least as new, and reads segment words at least as new as
//! that word. A clear bit read before a publish is a request decided before that publish.
//!
//! Each answer comes from one word: "any path" is not a separate bit but all segment bits set,
//! so a reader that meets a segment word of a newer version than its protocol word still gets
//! that version's whole answer (a separate bit read from the older version, beside segment
//! words of a newer one that relies on it, would skip a request both versions fault).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Weak};

use super::snapshot::Snapshot;

/// Words in a cell: the protocol word, then the eight words of segment bits.
pub const FLAG_WORDS: usize = 9;
/// Word 0: bit [`crate::Protocol::index`] set when a policy of that protocol can fire.
pub const PROTOCOL_WORD: usize = 0;
/// Words 1..9: the [`crate::segments::SegmentFilter`] bits, all set when an active HTTP policy
/// may match any path ([`crate::segments::SegmentFilter::any`]).
pub const SEGMENT_WORDS: usize = 1;

/// One cell of "can fire" bits. Each caller (a JS engine handle, say) gets its own, so that
/// memory handed to a runtime is never shared between two owners.
#[derive(Debug, Default)]
#[repr(C)]
pub struct FireFlags([AtomicU32; FLAG_WORDS]);

impl FireFlags {
  /// The protocol bits as last published.
  pub fn load(&self) -> u32 {
    self.0[PROTOCOL_WORD].load(Ordering::Acquire)
  }

  /// Whether a policy of protocol `index` can fire.
  pub fn can_fire(&self, index: usize) -> bool {
    self.load() & (1 << index) != 0
  }

  /// Whether an HTTP request on `path` may fire, read as JS reads it: the protocol word first.
  pub fn http_may_fire(&self, path: &str) -> bool {
    if !self.can_fire(crate::Protocol::Http.index()) {
      return false;
    }
    let mut filter = crate::segments::SegmentFilter { any: false, words: [0; 8] };
    for (i, word) in filter.words.iter_mut().enumerate() {
      *word = self.0[SEGMENT_WORDS + i].load(Ordering::Acquire);
    }
    filter.may_match(path)
  }

  /// The address of the words, for a runtime that reads them in place (`FLAG_WORDS` aligned
  /// 32-bit words, valid while this cell lives).
  pub fn as_ptr(&self) -> *mut u32 {
    self.0.as_ptr().cast_mut().cast()
  }

  fn store(&self, snapshot: &Snapshot) {
    let segments = snapshot.segments();
    for (i, &word) in segments.words.iter().enumerate() {
      self.0[SEGMENT_WORDS + i].store(if segments.any { u32::MAX } else { word }, Ordering::Release);
    }
    self.0[PROTOCOL_WORD].store(snapshot.can_fire(), Ordering::Release);
  }
}

/// The live cells of one set. Only touched under the set's writer lock.
#[derive(Debug, Default)]
pub(super) struct FlagBoard {
  cells: Vec<Weak<FireFlags>>,
}

impl FlagBoard {
  /// A new cell holding `snapshot`'s bits, kept up to date from now on.
  pub(super) fn subscribe(&mut self, snapshot: &Snapshot) -> Arc<FireFlags> {
    let cell = Arc::new(FireFlags::default());
    cell.store(snapshot);
    self.cells.push(Arc::downgrade(&cell));
    cell
  }

  /// Stores `snapshot`'s bits into every live cell and forgets the dropped ones.
  pub(super) fn publish(&mut self, snapshot: &Snapshot) {
    self.cells.retain(|cell| match cell.upgrade() {
      Some(cell) => {
        cell.store(snapshot);
        true
      }
      None => false,
    });
  }
}

#[cfg(test)]
mod tests {
  use std::sync::atomic::{AtomicU64, AtomicU8};
  use std::time::Duration;

  use super::*;
  use crate::engine::test_support::{config, erroring, unique_set};
  use crate::policy::{Config, Protocol};
  use crate::NoHeaders;

  fn on_path(target: &str) -> crate::policy::Policy {
    let mut p = erroring(target);
    p.target = target.into();
    p
  }

  const INACTIVE: u8 = 0;
  const ACTIVE: u8 = 1;
  /// A lease is running out on its own: either may hold.
  const UNKNOWN: u8 = 2;

  #[test]
  fn bits_follow_active_policies_per_protocol() {
    let set = unique_set("flags-bits");
    let flags = set.fire_flags();
    assert_eq!(flags.load(), 0);
    let mut quiet = erroring("quiet");
    quiet.error_chance = 0.0;
    set.apply(config(vec![quiet.clone()])).unwrap();
    assert_eq!(flags.load(), 0, "a policy whose chances are all 0 cannot fire");
    set.apply(config(vec![quiet, erroring("loud")])).unwrap();
    assert_eq!(flags.load(), 1 << Protocol::Http.index());
    assert!(flags.http_may_fire("/anything"), "an `all` target may match any path");
    set.apply(config(vec![on_path("/api/*")])).unwrap();
    assert!(flags.http_may_fire("/API/users") && !flags.http_may_fire("/health"));
    set.apply(config(vec![erroring("loud")])).unwrap();
    assert!(flags.can_fire(Protocol::Http.index()) && !flags.can_fire(Protocol::Sql.index()));
    let late = set.fire_flags();
    assert_eq!(late.load(), flags.load(), "a new cell starts from the current set");
    set.halt();
    assert_eq!((flags.load(), late.load()), (0, 0));
    set.resume();
    assert_eq!(flags.load(), 1 << Protocol::Http.index());
    drop(late);
    set.apply(Config::default()).unwrap();
    assert_eq!(flags.load(), 0);
  }

  #[test]
  fn no_decision_is_made_against_a_stale_clear_bit() {
    // A writer cycles the set through apply, halt, resume, warmup, a lease that runs out by
    // itself, and removal, announcing around each change, seqlock-style, whether http can
    // fire. The reader skips `decide` on a clear bit, as JS does, and whenever no change
    // overlapped its read, what it got must be what the writer announced.
    let set = unique_set("flags-race");
    let flags = set.fire_flags();
    let seq = Arc::new(AtomicU64::new(0));
    let state = Arc::new(AtomicU8::new(INACTIVE));
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
      let (set, seq, state, done) = (Arc::clone(&set), Arc::clone(&seq), Arc::clone(&state), Arc::clone(&done));
      std::thread::spawn(move || {
        let change = |next: u8, f: &dyn Fn()| {
          seq.fetch_add(1, Ordering::SeqCst);
          f();
          state.store(next, Ordering::SeqCst);
          seq.fetch_add(1, Ordering::SeqCst);
          // Let the reader see each state for a while.
          std::thread::sleep(Duration::from_micros(100));
        };
        for round in 0..300 {
          change(ACTIVE, &|| drop(set.apply(config(vec![erroring("p")])).unwrap()));
          change(INACTIVE, &|| drop(set.halt()));
          change(ACTIVE, &|| drop(set.resume()));
          change(INACTIVE, &|| {
            // Warmup counts from the set's creation: an hour is never over here.
            set.apply(Config { warmup_duration: Some(3_600_000.0), ..config(vec![erroring("p")]) }).unwrap();
          });
          change(INACTIVE, &|| drop(set.apply(Config::default()).unwrap()));
          // Path targets: the segment filter must let `/x` through exactly when it can match.
          change(ACTIVE, &|| drop(set.apply(config(vec![on_path("/X/*"), on_path("/y")])).unwrap()));
          change(INACTIVE, &|| drop(set.apply(config(vec![on_path("/y"), on_path("/xy/*")])).unwrap()));
          if round % 10 == 0 {
            change(UNKNOWN, &|| drop(set.apply_layer("leased", config(vec![erroring("l")]), Some(Duration::from_millis(2))).unwrap()));
            while set.state().layers.contains_key("leased") {
              std::thread::yield_now();
            }
            change(INACTIVE, &|| {});
          }
        }
        done.store(true, Ordering::SeqCst);
      })
    };
    let mut handle = set.handle(Some(5));
    let (mut checked, mut fired, mut active) = (0u64, 0u64, 0u64);
    while !done.load(Ordering::SeqCst) {
      let before = seq.load(Ordering::SeqCst);
      if before % 2 == 1 {
        continue;
      }
      let announced = state.load(Ordering::SeqCst);
      let hit = flags.http_may_fire("/x/1") && handle.decide(Protocol::Http, "/x/1", &mut NoHeaders).is_some();
      if seq.load(Ordering::SeqCst) != before || announced == UNKNOWN {
        continue;
      }
      assert_eq!(hit, announced == ACTIVE, "announced {announced}, decided {hit}, at change {before}");
      checked += 1;
      fired += u64::from(hit);
      active += u64::from(announced == ACTIVE);
    }
    writer.join().unwrap();
    assert!(checked > 0 && fired > 0 && fired < checked, "{fired} of {checked} checked decisions fired ({active} announced active)");
  }
}
