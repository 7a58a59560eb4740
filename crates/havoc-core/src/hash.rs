//! FNV-1a 64-bit hashing, and the stable identity of a policy built on it.

const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
const PRIME: u64 = 0x0000_0100_0000_01b3;

/// The standard FNV-1a 64-bit hash of `bytes`.
///
/// ```
/// assert_eq!(havoc_core::hash::fnv1a64(b""), 0xcbf29ce484222325);
/// ```
pub fn fnv1a64(bytes: &[u8]) -> u64 {
  let mut hasher = Fnv1a64::new();
  hasher.write(bytes);
  hasher.finish()
}

/// An incremental FNV-1a 64-bit hasher.
#[derive(Clone, Copy, Debug)]
pub struct Fnv1a64(u64);

impl Default for Fnv1a64 {
  fn default() -> Self {
    Self::new()
  }
}

impl Fnv1a64 {
  pub const fn new() -> Self {
    Fnv1a64(OFFSET_BASIS)
  }

  #[inline]
  pub fn write_byte(&mut self, byte: u8) {
    self.0 = (self.0 ^ u64::from(byte)).wrapping_mul(PRIME);
  }

  #[inline]
  pub fn write(&mut self, bytes: &[u8]) {
    for &b in bytes {
      self.write_byte(b);
    }
  }

  /// Writes a length-prefixed field, so that `("ab", "c")` and `("a", "bc")` differ.
  pub fn write_field(&mut self, bytes: &[u8]) {
    self.write(&(bytes.len() as u64).to_le_bytes());
    self.write(bytes);
  }

  /// Writes a number in a canonical form: `-0.0` and `0.0` hash alike.
  pub fn write_number(&mut self, value: f64) {
    let canonical = if value == 0.0 { 0.0f64 } else { value };
    self.write(&canonical.to_bits().to_le_bytes());
  }

  #[inline]
  pub const fn finish(&self) -> u64 {
    self.0
  }
}

/// A `BuildHasher` for maps whose keys are already FNV hashes.
#[derive(Clone, Copy, Default, Debug)]
pub(crate) struct PrehashedBuild;

impl std::hash::BuildHasher for PrehashedBuild {
  type Hasher = Prehashed;
  fn build_hasher(&self) -> Prehashed {
    Prehashed(0)
  }
}

#[derive(Clone, Copy, Default, Debug)]
pub(crate) struct Prehashed(u64);

impl std::hash::Hasher for Prehashed {
  fn finish(&self) -> u64 {
    self.0
  }
  fn write(&mut self, bytes: &[u8]) {
    // Only `write_u64` is expected; fold anything else so the hasher stays total.
    for &b in bytes {
      self.0 = (self.0 ^ u64::from(b)).wrapping_mul(PRIME);
    }
  }
  fn write_u64(&mut self, value: u64) {
    self.0 = value;
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn standard_test_vectors() {
    // Vectors from the FNV reference (http://www.isthe.com/chongo/src/fnv/test_fnv.c).
    assert_eq!(fnv1a64(b""), 0xcbf29ce484222325);
    assert_eq!(fnv1a64(b"a"), 0xaf63dc4c8601ec8c);
    assert_eq!(fnv1a64(b"foobar"), 0x85944171f73967e8);
  }

  #[test]
  fn fields_are_separated() {
    let mut a = Fnv1a64::new();
    a.write_field(b"ab");
    a.write_field(b"c");
    let mut b = Fnv1a64::new();
    b.write_field(b"a");
    b.write_field(b"bc");
    assert_ne!(a.finish(), b.finish());
  }

  #[test]
  fn negative_zero_is_zero() {
    let mut a = Fnv1a64::new();
    a.write_number(-0.0);
    let mut b = Fnv1a64::new();
    b.write_number(0.0);
    assert_eq!(a.finish(), b.finish());
    let mut c = Fnv1a64::new();
    c.write_number(1.0);
    assert_ne!(a.finish(), c.finish());
  }
}
