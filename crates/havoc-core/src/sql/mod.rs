//! SQL normalization and fingerprinting.
//!
//! A single forward scan writes the result into a caller-owned buffer:
//! comments and whitespace runs become one space, text outside quotes is
//! uppercased and, for fingerprints, literals become `?`. While it writes,
//! the scan also records what the last step needs to peel parentheses that
//! wrap the whole statement, so nothing is ever rescanned: every function
//! here runs in time linear in its input and allocates only to grow `out`.
//!
//! Slicing invariant: the scanner only cuts `sql` (and `out`) next to an
//! ASCII byte, at the lead byte of a multi-byte whitespace character, or at
//! either end, so every slice falls on a `char` boundary.
//!
//! - `lexer`: where each token ends (comments, quotes, dollar quotes, numbers, words);
//! - `normalize`: the output writer: spacing, case, trimming and peeling wrapping parentheses;
//! - `fingerprint`: the rewrites only fingerprints make (`IN` lists, repeated `VALUES` tuples).
//!
//! Each depends only on those listed after it.

mod fingerprint;
mod lexer;
mod normalize;

use lexer::{block_comment_end, dollar_quote_end, doubled_quote_end, line_end, number_end, single_quote_end, unicode_space_len, word_end};
use normalize::Writer;

/// Writes the normalized form of `sql` into `out`, replacing its contents.
///
/// Comments go, whitespace collapses to single spaces, everything outside
/// quotes is ASCII-uppercased, and surrounding whitespace, `;` and
/// parentheses wrapping the whole statement are trimmed. Quoted text is
/// copied byte for byte.
pub fn normalize_into(sql: &str, out: &mut String) {
  scan(sql, out, false);
}

/// Returns the normalized form of `sql`; see [`normalize_into`].
#[must_use]
pub fn normalize(sql: &str) -> String {
  let mut out = String::new();
  normalize_into(sql, &mut out);
  out
}

/// Writes the fingerprint of `sql` into `out`, replacing its contents.
///
/// Like [`normalize_into`], and also: string, dollar-quoted and numeric
/// literals become `?`, `IN (?, ?, ...)` becomes `IN (?)`, and a `VALUES`
/// tuple followed by identical tuples keeps only the first.
pub fn fingerprint_into(sql: &str, out: &mut String) {
  scan(sql, out, true);
}

/// Returns the fingerprint of `sql`; see [`fingerprint_into`].
#[must_use]
pub fn fingerprint(sql: &str) -> String {
  let mut out = String::new();
  fingerprint_into(sql, &mut out);
  out
}

fn scan(sql: &str, out: &mut String, fingerprint: bool) {
  out.clear();
  // The output is never longer than the input, bar the space a fingerprint
  // adds in `IN(?)` → `IN (?)`, so this is normally the only allocation,
  // and none at all when a reused buffer is already large enough.
  out.reserve(sql.len());
  let mut w = Writer::new(out, fingerprint);
  let b = sql.as_bytes();
  let mut i = 0;
  while let Some(&c) = b.get(i) {
    let next = b.get(i + 1).copied();
    i = match c {
      b' ' | b'\t' | b'\n' | b'\r' | 0x0B | 0x0C => {
        w.gap = true;
        i + 1
      }
      b'-' if next == Some(b'-') => {
        w.gap = true;
        line_end(b, i + 2)
      }
      b'/' if next == Some(b'*') => {
        w.gap = true;
        block_comment_end(b, i + 2)
      }
      b'\'' => {
        let (end, closed) = single_quote_end(b, i + 1);
        w.string(&sql[i..end], closed);
        end
      }
      b'"' | b'`' => {
        let (end, closed) = doubled_quote_end(b, i + 1, c);
        w.quoted(&sql[i..end], closed);
        end
      }
      b'$' => match dollar_quote_end(sql, i) {
        Some((end, closed)) => {
          w.string(&sql[i..end], closed);
          end
        }
        None => w.word(sql, i),
      },
      b'0'..=b'9' => {
        let (end, plain) = number_end(b, i);
        // Word bytes turn a plain integer into a word, like `1st`;
        // a `$` does not, as it may open a dollar quote: `1$$x$$`.
        if plain && b.get(end) != Some(&b'$') && word_end(b, end) > end {
          w.word(sql, i)
        } else {
          w.number(&sql[i..end]);
          end
        }
      }
      b'.' if next.is_some_and(|n| n.is_ascii_digit()) => {
        let (end, _) = number_end(b, i);
        w.number(&sql[i..end]);
        end
      }
      // E'..', N'..', X'..', B'..': the prefix belongs to the literal.
      b'E' | b'e' | b'N' | b'n' | b'X' | b'x' | b'B' | b'b' if fingerprint && next == Some(b'\'') => {
        w.literal();
        single_quote_end(b, i + 2).0
      }
      b'A'..=b'Z' | b'a'..=b'z' | b'_' => w.word(sql, i),
      0x80.. => match unicode_space_len(b, i) {
        0 => w.word(sql, i),
        n => {
          w.gap = true;
          i + n
        }
      },
      _ => {
        w.punct(c);
        i + 1
      }
    };
  }
  w.finish();
}

#[cfg(test)]
mod tests {
  use super::*;
  // The functions under test, by short names: the assertions read as tables.
  use super::{fingerprint as f, normalize as n};

  #[test]
  fn empty_and_blank() {
    assert_eq!(n(""), "");
    assert_eq!(n("   \n\t "), "");
    assert_eq!(n(" ;; ; "), "");
    assert_eq!(n("/* only a comment */"), "");
    assert_eq!(n("-- only a comment"), "");
    assert_eq!(f(""), "");
  }

  #[test]
  fn trims_and_uppercases() {
    assert_eq!(n(" select 1 ;; "), "SELECT 1");
    assert_eq!(n("select a, b from t where x = y"), "SELECT A, B FROM T WHERE X = Y");
    assert_eq!(n(";select 1"), "SELECT 1");
    assert_eq!(n("select 1; select 2;"), "SELECT 1; SELECT 2");
  }

  #[test]
  fn unicode() {
    // ASCII letters are uppercased, the rest are left as they are.
    assert_eq!(n("select 'héllo' from ünïcode"), "SELECT 'héllo' FROM üNïCODE");
    assert_eq!(n("select naïve, 名前 from テーブル"), "SELECT NAïVE, 名前 FROM テーブル");
    assert_eq!(n("select '😀' -- 😀\n, x😀y"), "SELECT '😀' , X😀Y");
    assert_eq!(f("select 'héllo', 1 from ünïcode where é = 2"), "SELECT ?, ? FROM üNïCODE WHERE é = ?");
  }

  #[test]
  fn idempotent() {
    let inputs = [
      "",
      " select 1 ;; ",
      "((select 1))",
      "( ( select 1 ) ) ;",
      "(select 1) union (select 2)",
      "select count(*) from t",
      "select 'it''s' /* c */ from t -- x",
      "select $a$ x $a$, $1 from t",
      "select 'unterminated ;  ",
      "select /* unterminated",
      "E/**/'x'",
      "-/**/-1",
      "'a'/**/'b'",
      "select 'héllo' from ünïcode\u{3000}where x",
      "(; (x) ;)",
      "select $a x $ y",
      "select 1st, .5, t.5",
    ];
    for sql in inputs {
      let once = n(sql);
      assert_eq!(n(&once), once, "normalize not idempotent for {sql:?}");
      let fp = f(sql);
      assert_eq!(f(&fp), fp, "fingerprint not idempotent for {sql:?}");
    }
  }

  #[test]
  fn into_reuses_the_buffer() {
    let mut out = String::from("stale contents");
    normalize_into("select 1", &mut out);
    assert_eq!(out, "SELECT 1");
    let capacity = out.capacity();
    fingerprint_into("select 2", &mut out);
    assert_eq!(out, "SELECT ?");
    assert_eq!(out.capacity(), capacity);
  }

  const MB: usize = 1 << 20;

  #[test]
  fn pathological_inputs_are_linear() {
    let deep = format!("{}x{}", "(".repeat(MB / 2), ")".repeat(MB / 2));
    assert_eq!(n(&deep), "X");
    assert_eq!(f(&deep), "X");
    let open = "(".repeat(MB);
    assert_eq!(n(&open), open);
    let close = ")".repeat(MB);
    assert_eq!(n(&close), close);
    let quotes = "'".repeat(MB);
    assert_eq!(n(&quotes), quotes);
    assert_eq!(f(&quotes), "?");
    let odd_quotes = "'".repeat(MB + 1);
    assert_eq!(n(&odd_quotes), odd_quotes);
    assert_eq!(f(&odd_quotes), "?");
    assert_eq!(n(&"/*".repeat(MB / 2)), "");
    // `*`, then `/*/*/*...`: comments that keep nesting deeper.
    assert_eq!(n(&"*/".repeat(MB / 2)), "*");
    let dollars = "$".repeat(MB);
    assert_eq!(n(&dollars), dollars);
    assert_eq!(f(&dollars), "?".repeat(MB / 4));
    let tag = format!("$t{}$", "a".repeat(MB / 4));
    let self_similar = format!("{tag}{}", "$ta".repeat(MB / 4));
    assert_eq!(n(&self_similar), self_similar);
    let in_list = format!("x in ({}1)", "1, ".repeat(MB / 3));
    assert_eq!(f(&in_list), "X IN (?)");
    let rows = format!("insert into t values (1){}", ", (2)".repeat(MB / 5));
    assert_eq!(f(&rows), "INSERT INTO T VALUES (?)");
    let spaces = " ".repeat(MB);
    assert_eq!(n(&spaces), "");
    let nbsp = "\u{A0}".repeat(MB / 2);
    assert_eq!(n(&nbsp), "");
    let params = "$1".repeat(MB / 2);
    assert_eq!(f(&params), params);
    let unclosed_tags = "$a+".repeat(MB / 3);
    assert_eq!(n(&unclosed_tags), "$A+".repeat(MB / 3));
    let backslashes = format!("'{}", "\\".repeat(MB));
    assert_eq!(n(&backslashes), backslashes);
    let call = format!("f({}?", "?,".repeat(MB / 2)) + &")".repeat(MB / 4);
    assert_eq!(f(&call), call.to_ascii_uppercase());
  }

  /// Deterministic xorshift fuzzing over the characters that steer the
  /// scanner: no panics, no splitting of UTF-8, and stable results.
  #[test]
  fn fuzz_never_panics_and_is_idempotent() {
    const ALPHABET: &[&str] = &[
      "'", "''", "\"", "`", "$", "$$", "$a$", "$1", "-", "--", "/", "*", "/*", "*/", "(", ")", " ", "\n", "\r", "\u{A0}", "\u{3000}", ";", ",", "\\",
      "?", "e", "n", "x", "in", "values", "0x1f", "1", ".", "5e3", "e+", "é", "😀", "\u{2010}", "#", "a1", "_",
    ];
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    let mut next = move || {
      state ^= state << 13;
      state ^= state >> 7;
      state ^= state << 17;
      state
    };
    let mut sql = String::new();
    for _ in 0..20_000 {
      sql.clear();
      let len = next() % 24;
      for _ in 0..len {
        sql.push_str(ALPHABET[(next() % ALPHABET.len() as u64) as usize]);
      }
      let once = n(&sql);
      assert_eq!(n(&once), once, "normalize not idempotent for {sql:?}");
      let fp = f(&sql);
      assert_eq!(f(&fp), fp, "fingerprint not idempotent for {sql:?}");
      assert_eq!(f(&once), fp, "fingerprint differs after normalize for {sql:?}");
    }
  }
}
