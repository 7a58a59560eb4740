//! A filter on the first segment of HTTP paths, which JS reads with the [`crate::FireFlags`] to
//! skip the call into the core for requests no policy can match.
//!
//! An HTTP path target matches a request path only where the target's key (the target without
//! its trailing `*` and `/`) equals the path, or is a prefix of it that a `/` follows (see
//! [`crate::matcher`]). Either way the two share their first segment — everything before the
//! second `/` — compared ASCII case-insensitively, and so its first two characters. A request
//! whose first two characters map to a bit no active policy set cannot match any of them.
//! Targets that are not plain paths (`all`, `/*`, absolute URLs, names without a leading `/`)
//! set [`SegmentFilter::any`] instead.
//!
//! Two characters rather than a hash of the whole segment: JS computes this for every request,
//! and two character reads cost a few instructions where a loop over the segment costs hundreds.

use crate::policy::{Policy, Protocol};

/// Bits in the filter: 256, in eight 32-bit words.
pub const SEGMENT_BITS: u32 = 256;

/// The filter bit of `path`: from its first two characters after the leading `/`, ASCII
/// lowercased, each read as 0 where the segment has ended (at `/`, `?`, `#`, a NUL or the end).
/// `None` when the path does not start with `/` or one of those characters is not ASCII.
///
/// `segmentBit` in `src/engine.ts` computes the same over UTF-16 code units; for ASCII they
/// are the bytes.
pub fn segment_bit(path: &str) -> Option<u32> {
  let bytes = path.as_bytes();
  if bytes.first() != Some(&b'/') {
    return None;
  }
  let at = |i: usize| match bytes.get(i) {
    None | Some(0 | b'/' | b'?' | b'#') => Some(0),
    Some(&b) if b.is_ascii() => Some(u32::from(b.to_ascii_lowercase())),
    Some(_) => None,
  };
  let first = at(1)?;
  let second = if first == 0 { 0 } else { at(2)? };
  Some((first * 31 + second) % SEGMENT_BITS)
}

/// Which first segments the active HTTP policies of a set can match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SegmentFilter {
  /// Some active policy may match a path whatever its first segment.
  pub any: bool,
  /// The [`segment_bit`] of every active policy's key.
  pub words: [u32; 8],
}

impl SegmentFilter {
  /// The filter of `policies`' active HTTP policies.
  pub fn of<'a>(policies: impl IntoIterator<Item = &'a Policy>) -> SegmentFilter {
    let mut filter = SegmentFilter::default();
    for policy in policies.into_iter().filter(|p| p.protocol() == Protocol::Http && p.is_active()) {
      if policy.targets_all() {
        filter.any = true;
        continue;
      }
      let target = policy.target.trim();
      let key = target.strip_suffix('*').map_or(target, |prefix| prefix.strip_suffix('/').unwrap_or(prefix));
      match segment_bit(key) {
        Some(bit) if key.len() > 1 || !target.ends_with('*') => filter.set(bit),
        // `/*`, `*`, absolute URLs, keys that are not ASCII: no segment to go by.
        _ => filter.any = true,
      }
    }
    filter
  }

  fn set(&mut self, bit: u32) {
    self.words[(bit / 32) as usize] |= 1 << (bit % 32);
  }

  /// Whether a request on `path` may match (always, when its first segment cannot be read).
  pub fn may_match(&self, path: &str) -> bool {
    if self.any {
      return true;
    }
    match segment_bit(path) {
      Some(bit) => self.words[(bit / 32) as usize] & (1 << (bit % 32)) != 0,
      None => true,
    }
  }
}

#[cfg(test)]
mod tests {
  use super::*;
  use crate::engine::Snapshot;
  use crate::policy::Config;
  use crate::NoHeaders;

  fn http(target: &str) -> Policy {
    Policy { name: "p".into(), protocol: Some(Protocol::Http), target: target.into(), error_chance: 1.0, ..Policy::default() }
  }

  #[test]
  fn reads_two_characters_of_the_first_segment_case_insensitively() {
    let h = segment_bit;
    assert_eq!(h("/api"), h("/API/users/7"));
    assert_eq!(h("/api?x=1"), h("/apX#top"));
    assert_eq!(h("/"), h("/?q"));
    assert_eq!(h("/"), Some(0));
    assert_eq!(h("/a"), h("/a/b"));
    assert_eq!(h("/a?b"), h("/a"));
    assert_ne!(h("/api"), h("/bench"));
    assert_eq!(h("api/x"), None);
    assert_eq!(h("/é/x"), None);
    assert_eq!(h("/aé"), None);
    assert_eq!(h("/a/é"), h("/a"), "only the first segment counts");
  }

  #[test]
  fn plain_paths_set_bits_and_everything_else_sets_any() {
    let f = SegmentFilter::of(&[http("/api/users/*"), http("/health")]);
    assert!(!f.any);
    assert!(f.may_match("/API/x") && f.may_match("/health?full=1") && f.may_match("no-slash"));
    assert!(!f.may_match("/bench/hello"));
    for target in ["all", "*", "/*", "https://api.example.com/v1/*", "users", "/ü/x"] {
      assert!(SegmentFilter::of(&[http(target)]).any, "{target}");
    }
    let mut quiet = http("/*");
    quiet.error_chance = 0.0;
    assert_eq!(SegmentFilter::of(&[quiet]), SegmentFilter::default(), "inactive policies do not count");
  }

  #[test]
  fn never_filters_out_a_request_the_matcher_matches() {
    // Targets and paths built from shared pieces, so that many pairs match; whenever the
    // compiled matcher fires, the filter must let the request through.
    let pieces = ["", "/", "api", "API", "users", "7", "x", "*", "?", "#", "//", "é", "http://h"];
    let compose = |seed: &mut u64, parts: usize| -> String {
      (0..parts)
        .map(|_| {
          *seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
          pieces[(*seed >> 33) as usize % pieces.len()]
        })
        .collect()
    };
    let mut seed = 7u64;
    let (mut matched, mut filtered) = (0, 0);
    for _ in 0..20_000 {
      let target = format!("/{}", compose(&mut seed, 3));
      // Half the paths grow from the target itself (its key, another case, more pieces).
      let path = if seed % 2 == 0 {
        format!("{}{}", target.trim_end_matches('*').to_uppercase(), compose(&mut seed, 2))
      } else {
        format!("/{}", compose(&mut seed, 4))
      };
      let Ok(snapshot) = Snapshot::compile(Config { policies: vec![http(&target)], ..Config::default() }, 1, std::time::Instant::now()) else {
        continue;
      };
      let filter = SegmentFilter::of(&snapshot.config.policies);
      let fired = snapshot.decide(Protocol::Http, &path, &mut NoHeaders, &mut fastrand::Rng::with_seed(1)).is_some();
      if fired {
        matched += 1;
        assert!(filter.may_match(&path), "{target:?} matches {path:?} but the filter skips it");
      } else if !filter.may_match(&path) {
        filtered += 1;
      }
    }
    assert!(matched > 500 && filtered > 500, "{matched} matched, {filtered} filtered out");
  }
}
