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

use std::mem;

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

/// The output under construction, plus the little state the rewrites need.
struct Writer<'a> {
  out: &'a mut String,
  fingerprint: bool,
  /// Whitespace or a comment came after the last token written.
  gap: bool,
  /// The input ended inside a quote copied verbatim, so the end of `out`
  /// is quoted text that trimming must not touch.
  open_tail: bool,
  wrap: Wrap,
  rows: Rows,
}

impl<'a> Writer<'a> {
  fn new(out: &'a mut String, fingerprint: bool) -> Self {
    Writer { out, fingerprint, gap: false, open_tail: false, wrap: Wrap { lead: 0, in_lead: true, depth: 0, floor: isize::MAX }, rows: Rows::Idle }
  }

  /// Starts a token: a pending gap becomes one space; leading gaps are
  /// simply dropped.
  fn begin_token(&mut self) {
    if mem::take(&mut self.gap) && !self.out.is_empty() {
      self.out.push(' ');
    }
  }

  /// Writes the identifier-like run starting at `i`, uppercased; returns
  /// where it ends.
  fn word(&mut self, sql: &str, i: usize) -> usize {
    let end = word_end(sql.as_bytes(), i);
    self.upper(&sql[i..end]);
    end
  }

  fn upper(&mut self, text: &str) {
    self.begin_token();
    let start = self.out.len();
    self.out.push_str(text);
    self.out[start..].make_ascii_uppercase();
    self.other();
  }

  fn number(&mut self, text: &str) {
    if self.fingerprint {
      self.literal();
    } else {
      self.upper(text);
    }
  }

  /// A single- or dollar-quoted string: a literal when fingerprinting.
  fn string(&mut self, text: &str, closed: bool) {
    if self.fingerprint {
      self.literal();
    } else {
      self.quoted(text, closed);
    }
  }

  fn quoted(&mut self, text: &str, closed: bool) {
    self.begin_token();
    self.out.push_str(text);
    self.open_tail = !closed;
    self.other();
  }

  fn literal(&mut self) {
    self.begin_token();
    self.out.push('?');
    self.other();
  }

  fn punct(&mut self, c: u8) {
    match c {
      b'(' => return self.open(),
      b')' => return self.close(),
      _ => {}
    }
    self.begin_token();
    self.out.push(char::from(c));
    match c {
      // Neutral for wrapping parentheses: trimmed like whitespace.
      b';' => self.rows = Rows::Idle,
      b',' => {
        self.wrap.other();
        self.rows = self.rows.comma(self.wrap.depth);
      }
      _ => self.other(),
    }
  }

  /// Bookkeeping for any token that is not a parenthesis, `,` or `;`.
  fn other(&mut self) {
    self.wrap.other();
    if let Rows::Between { .. } = self.rows {
      self.rows = Rows::Idle;
    }
  }

  fn open(&mut self) {
    let after_values = self.fingerprint && ends_with_word(self.out, "VALUES");
    self.begin_token();
    let at = self.out.len();
    let depth = self.wrap.depth;
    self.out.push('(');
    self.wrap.open();
    if self.fingerprint {
      self.rows = self.rows.open(at, depth, after_values);
    }
  }

  fn close(&mut self) {
    self.begin_token();
    if !(self.fingerprint && collapse_in_list(self.out)) {
      self.out.push(')');
    }
    self.wrap.close();
    if self.fingerprint {
      self.rows = self.rows.close(self.out, self.wrap.depth);
    }
  }

  /// Trims `;` and spaces and peels the parentheses wrapping the whole
  /// statement, all levels at once.
  fn finish(self) {
    let out = self.out;
    let bytes = out.as_bytes();
    let levels = if self.wrap.depth != 0 || self.open_tail {
      0
    } else {
      let closes = bytes.iter().rev().take_while(|&&c| matches!(c, b')' | b' ' | b';')).filter(|&&c| c == b')').count();
      let floor = usize::try_from(self.wrap.floor).unwrap_or(0);
      self.wrap.lead.min(closes).min(floor)
    };
    let (mut start, mut end) = (0, bytes.len());
    if levels > 0 {
      let parens = |c: u8| bytes.iter().enumerate().filter(move |&(_, &b)| b == c);
      start = parens(b'(').nth(levels - 1).map_or(0, |(p, _)| p + 1);
      end = parens(b')').nth_back(levels - 1).map_or(end, |(p, _)| p);
    }
    while start < end && matches!(bytes[start], b' ' | b';') {
      start += 1;
    }
    while !self.open_tail && end > start && matches!(bytes[end - 1], b' ' | b';') {
      end -= 1;
    }
    out.truncate(end);
    out.drain(..start);
  }
}

/// Parentheses outside quotes, as seen by the wrapper-peeling step.
///
/// The output splits into a lead (`(`, `;`, spaces), a middle, and a tail
/// (`)`, `;`, spaces). With a balanced total, the i-th leading `(` pairs
/// with the i-th trailing `)` exactly when the depth never drops below i in
/// between, so the number of wrapping levels is the least of the lead's
/// `(` count, the tail's `)` count and the lowest depth in the middle.
struct Wrap {
  /// `(` in the lead.
  lead: usize,
  in_lead: bool,
  depth: isize,
  /// Lowest depth seen at any token after the lead. Depth only falls on
  /// `)` and every `)` before the tail is followed by some token that
  /// records it, so this is the middle's minimum.
  floor: isize,
}

impl Wrap {
  fn open(&mut self) {
    if self.in_lead {
      self.lead += 1;
    } else {
      self.floor = self.floor.min(self.depth);
    }
    self.depth += 1;
  }

  fn close(&mut self) {
    self.in_lead = false;
    self.depth -= 1;
  }

  fn other(&mut self) {
    self.in_lead = false;
    self.floor = self.floor.min(self.depth);
  }
}

/// Tracks a `VALUES` list so a tuple identical to the one before it can be
/// dropped as soon as it closes. Positions are byte offsets into the output;
/// `base` is the parenthesis depth outside the tuples.
#[derive(Clone, Copy)]
enum Rows {
  Idle,
  /// Inside the first tuple, which opened at `start`.
  First {
    start: usize,
    base: isize,
  },
  /// After the kept tuple `start..end`, maybe past the `,` before the next.
  Between {
    start: usize,
    end: usize,
    base: isize,
    comma: bool,
  },
  /// Inside a tuple that opened at `next`, after the kept `start..end`.
  Next {
    start: usize,
    end: usize,
    next: usize,
    base: isize,
  },
}

impl Rows {
  fn open(self, at: usize, depth: isize, after_values: bool) -> Rows {
    if after_values {
      return Rows::First { start: at, base: depth };
    }
    match self {
      Rows::Between { start, end, base, comma: true } if base == depth => Rows::Next { start, end, next: at, base },
      Rows::Between { .. } => Rows::Idle,
      inside => inside,
    }
  }

  fn comma(self, depth: isize) -> Rows {
    match self {
      Rows::Between { start, end, base, comma: false } if base == depth => Rows::Between { start, end, base, comma: true },
      Rows::Between { .. } => Rows::Idle,
      inside => inside,
    }
  }

  fn close(self, out: &mut String, depth: isize) -> Rows {
    match self {
      Rows::First { start, base } if depth == base => Rows::Between { start, end: out.len(), base, comma: false },
      Rows::Next { start, end, next, base } if depth == base => {
        let bytes = out.as_bytes();
        let repeat = match (bytes.get(start..end), bytes.get(next..)) {
          (Some(kept), Some(last)) => same_tuple(kept, last),
          _ => false,
        };
        if repeat {
          out.truncate(end);
          Rows::Between { start, end, base, comma: false }
        } else {
          // Later tuples are compared with this one instead.
          Rows::Between { start: next, end: out.len(), base, comma: false }
        }
      }
      // A `)` between tuples closes something around the list.
      Rows::Between { .. } => Rows::Idle,
      inside => inside,
    }
  }
}

/// Compares two fingerprinted tuples, ignoring spaces that only sit next to
/// punctuation, so `(?,?)` repeats `(?, ?)`.
fn same_tuple(a: &[u8], b: &[u8]) -> bool {
  significant(a).eq(significant(b))
}

fn significant(t: &[u8]) -> impl Iterator<Item = u8> + '_ {
  // Fingerprints keep only identifier quotes; their contents all count.
  let mut quote = None;
  t.iter().enumerate().filter_map(move |(i, &c)| {
    if let Some(q) = quote {
      if c == q {
        quote = None;
      }
      return Some(c);
    }
    if c == b'"' || c == b'`' {
      quote = Some(c);
    }
    let between_words = c == b' ' && i > 0 && is_word_byte(t[i - 1]) && t.get(i + 1).is_some_and(|&n| is_word_byte(n));
    (c != b' ' || between_words).then_some(c)
  })
}

/// Rewrites an output ending in `IN (?, ?, ?` (its `)` not yet written) to
/// end in `IN (?)`. Returns false, leaving `out` alone, for any other tail.
///
/// The backward walk stops at the first byte that is not `?`, `,`, a space
/// or `(`, and the `)` written next stops any later walk, so over a whole
/// scan these walks read each output byte at most once.
fn collapse_in_list(out: &mut String) -> bool {
  let b = out.as_bytes();
  let mut i = b.len();
  let mut want_item = true;
  let open = loop {
    while i > 0 && b[i - 1] == b' ' {
      i -= 1;
    }
    let Some(j) = i.checked_sub(1) else {
      return false;
    };
    i = j;
    match (b[i], want_item) {
      (b'?', true) => want_item = false,
      (b',', false) => want_item = true,
      (b'(', false) => break i,
      _ => return false,
    }
  };
  let keyword_end = if open > 0 && b[open - 1] == b' ' { open - 1 } else { open };
  if !ends_with_word(&out[..keyword_end], "IN") {
    return false;
  }
  out.truncate(keyword_end);
  out.push_str(" (?)");
  true
}

/// Whether `text` ends with the uppercase keyword `word` as a whole word.
fn ends_with_word(text: &str, word: &str) -> bool {
  text.strip_suffix(word).is_some_and(|before| !before.bytes().next_back().is_some_and(is_word_byte))
}

/// Bytes that can continue an identifier or number: ASCII alphanumerics,
/// `_`, `$` and anything non-ASCII.
fn is_word_byte(c: u8) -> bool {
  c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80
}

/// End of the identifier-like run at `i`: word bytes, but not the
/// multi-byte whitespace characters.
fn word_end(b: &[u8], mut i: usize) -> usize {
  while b.get(i).is_some_and(|&c| is_word_byte(c) && (c < 0x80 || unicode_space_len(b, i) == 0)) {
    i += 1;
  }
  i
}

/// Length of the non-ASCII Unicode whitespace character encoded at `i`, or 0.
///
/// Matching the UTF-8 bytes avoids decoding; a continuation byte never
/// matches, so this is safe to ask at any offset.
fn unicode_space_len(b: &[u8], i: usize) -> usize {
  match b.get(i..).unwrap_or_default() {
    // U+0085, U+00A0
    [0xC2, 0x85 | 0xA0, ..] => 2,
    // U+1680
    [0xE1, 0x9A, 0x80, ..] => 3,
    // U+2000..=U+200A, U+2028, U+2029, U+202F
    [0xE2, 0x80, 0x80..=0x8A | 0xA8 | 0xA9 | 0xAF, ..] => 3,
    // U+205F
    [0xE2, 0x81, 0x9F, ..] => 3,
    // U+3000
    [0xE3, 0x80, 0x80, ..] => 3,
    _ => 0,
  }
}

/// End of a `--` comment starting its body at `i`; the newline stays, to
/// be read as whitespace.
fn line_end(b: &[u8], i: usize) -> usize {
  b.get(i..).and_then(|rest| rest.iter().position(|&c| c == b'\n' || c == b'\r')).map_or(b.len(), |p| i + p)
}

/// End of a block comment whose body starts at `i`. Comments nest, as in
/// PostgreSQL; an unterminated one runs to the end of input.
fn block_comment_end(b: &[u8], mut i: usize) -> usize {
  let mut depth = 1usize;
  while let Some(&c) = b.get(i) {
    match (c, b.get(i + 1)) {
      (b'/', Some(b'*')) => {
        depth += 1;
        i += 2;
      }
      (b'*', Some(b'/')) => {
        depth -= 1;
        i += 2;
        if depth == 0 {
          return i;
        }
      }
      _ => i += 1,
    }
  }
  b.len()
}

/// End of a `'...'` string whose body starts at `i`, and whether it closed.
/// Both `''` and a backslash escape the next character.
fn single_quote_end(b: &[u8], mut i: usize) -> (usize, bool) {
  while let Some(&c) = b.get(i) {
    match c {
      b'\\' => i += 2,
      b'\'' if b.get(i + 1) == Some(&b'\'') => i += 2,
      b'\'' => return (i + 1, true),
      _ => i += 1,
    }
  }
  (b.len(), false)
}

/// End of a `"..."` or `` `...` `` identifier whose body starts at `i`, and
/// whether it closed. Only a doubled `quote` escapes.
fn doubled_quote_end(b: &[u8], mut i: usize, quote: u8) -> (usize, bool) {
  while let Some(&c) = b.get(i) {
    if c != quote {
      i += 1;
    } else if b.get(i + 1) == Some(&quote) {
      i += 2;
    } else {
      return (i + 1, true);
    }
  }
  (b.len(), false)
}

/// If a dollar quote (`$$` or `$tag$`) opens at `i`, the end of the whole
/// string and whether it closed. A tag cannot start with a digit, which
/// keeps `$1` a parameter.
fn dollar_quote_end(sql: &str, i: usize) -> Option<(usize, bool)> {
  let b = sql.as_bytes();
  let mut j = i + 1;
  if b.get(j).is_some_and(u8::is_ascii_digit) {
    return None;
  }
  while b.get(j).is_some_and(|&c| c != b'$' && is_word_byte(c)) {
    j += 1;
  }
  if b.get(j) != Some(&b'$') {
    return None;
  }
  let delimiter = &sql[i..=j];
  let body = j + 1;
  // `str::find` is Two-Way: linear even for long, self-similar tags.
  Some(match sql[body..].find(delimiter) {
    Some(p) => (body + p + delimiter.len(), true),
    None => (sql.len(), false),
  })
}

/// End of the number at `i` (a digit, or a `.` before one): decimal with
/// optional fraction and exponent, or `0x` hex. Also says whether it is a
/// plain integer, with neither fraction nor exponent.
fn number_end(b: &[u8], i: usize) -> (usize, bool) {
  let run = |mut j: usize, class: fn(&u8) -> bool| {
    while b.get(j).is_some_and(class) {
      j += 1;
    }
    j
  };
  let hex = b.get(i) == Some(&b'0') && matches!(b.get(i + 1), Some(b'x' | b'X')) && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit);
  if hex {
    return (run(i + 2, u8::is_ascii_hexdigit), true);
  }
  let mut j = run(i, u8::is_ascii_digit);
  let mut plain = true;
  if b.get(j) == Some(&b'.') {
    j = run(j + 1, u8::is_ascii_digit);
    plain = false;
  }
  if matches!(b.get(j), Some(b'e' | b'E')) {
    let k = if matches!(b.get(j + 1), Some(b'+' | b'-')) { j + 2 } else { j + 1 };
    if b.get(k).is_some_and(u8::is_ascii_digit) {
      j = run(k, u8::is_ascii_digit);
      plain = false;
    }
  }
  (j, plain)
}

#[cfg(test)]
mod tests {
  use super::*;

  fn n(sql: &str) -> String {
    normalize(sql)
  }

  fn f(sql: &str) -> String {
    fingerprint(sql)
  }

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
  fn collapses_whitespace() {
    assert_eq!(n("select\n\t a \r\n  from\tt"), "SELECT A FROM T");
    assert_eq!(n("select\u{0B}1\u{0C}"), "SELECT 1");
    // Unicode whitespace: NBSP, ideographic space, line separator.
    assert_eq!(n("select\u{A0}1\u{3000}from\u{2028}t"), "SELECT 1 FROM T");
    assert_eq!(n("a\u{85}b\u{1680}c\u{200A}d\u{202F}e\u{205F}f"), "A B C D E F");
  }

  #[test]
  fn strips_comments() {
    assert_eq!(n("select 1 -- trailing"), "SELECT 1");
    assert_eq!(n("select -- one\n 1"), "SELECT 1");
    assert_eq!(n("select 1 --x\r2"), "SELECT 1 2");
    assert_eq!(n("select /* c */ 1"), "SELECT 1");
    assert_eq!(n("select/*c*/1"), "SELECT 1");
    assert_eq!(n("select /* a */ /* b */ -- c\n 1"), "SELECT 1");
    assert_eq!(n("select 1 /* unterminated"), "SELECT 1");
    assert_eq!(n("select 1 /*/ still comment */ + 2"), "SELECT 1 + 2");
    assert_eq!(n("select 1 - -1"), "SELECT 1 - -1");
    assert_eq!(n("select 1---1"), "SELECT 1");
  }

  #[test]
  fn hash_is_not_a_comment() {
    assert_eq!(n("select a # b"), "SELECT A # B");
    assert_eq!(n("select '{}'::jsonb #> '{a}'"), "SELECT '{}'::JSONB #> '{a}'");
  }

  #[test]
  fn nested_block_comments() {
    assert_eq!(n("select /* a /* b */ c */ 1"), "SELECT 1");
    assert_eq!(n("select /* /* /* deep */ */ */ 1"), "SELECT 1");
    assert_eq!(n("select /* a /* b */ 1"), "SELECT");
  }

  #[test]
  fn comment_markers_inside_quotes() {
    assert_eq!(n("select '-- no' from t"), "SELECT '-- no' FROM T");
    assert_eq!(n("select '/* no */' x"), "SELECT '/* no */' X");
    assert_eq!(n(r#"select "a--b" from t"#), r#"SELECT "a--b" FROM T"#);
    assert_eq!(n("select `a/*b*/c` from t"), "SELECT `a/*b*/c` FROM T");
    assert_eq!(n("select $$ -- not /* a comment $$"), "SELECT $$ -- not /* a comment $$");
    assert_eq!(f("select '-- no', 1 -- yes"), "SELECT ?, ?");
  }

  #[test]
  fn quotes_keep_case_and_spacing() {
    assert_eq!(n("select 'Mixed  Case\n' from t"), "SELECT 'Mixed  Case\n' FROM T");
    assert_eq!(n(r#"select "CamelCol"  from "My Table""#), r#"SELECT "CamelCol" FROM "My Table""#);
    assert_eq!(n("select `weird  name` from t"), "SELECT `weird  name` FROM T");
  }

  #[test]
  fn escaped_and_doubled_quotes() {
    assert_eq!(n("select 'it''s' from t"), "SELECT 'it''s' FROM T");
    assert_eq!(n(r"select 'it\'s' from t"), r"SELECT 'it\'s' FROM T");
    assert_eq!(n(r"select 'a\\' from t"), r"SELECT 'a\\' FROM T");
    assert_eq!(n(r#"select "a""b" from t"#), r#"SELECT "a""b" FROM T"#);
    assert_eq!(n("select `a``b` from t"), "SELECT `a``b` FROM T");
    assert_eq!(n("select '' , ''''"), "SELECT '' , ''''");
    assert_eq!(f(r"select 'it\'s', 'it''s' from t"), "SELECT ?, ? FROM T");
  }

  #[test]
  fn unterminated_quotes_run_to_end() {
    assert_eq!(n("select 'abc  ;  "), "SELECT 'abc  ;  ");
    assert_eq!(n(r#"select "abc -- x"#), r#"SELECT "abc -- x"#);
    assert_eq!(n("select $$abc ;"), "SELECT $$abc ;");
    assert_eq!(n(r"select 'abc\"), r"SELECT 'abc\");
    assert_eq!(f("select 'abc ; "), "SELECT ?");
    assert_eq!(f(r#"select "abc ; "#), r#"SELECT "abc ; "#);
  }

  #[test]
  fn dollar_quotes() {
    assert_eq!(n("select $$ A  b $$"), "SELECT $$ A  b $$");
    assert_eq!(n("select $fn$ it's -- $fn$ x"), "SELECT $fn$ it's -- $fn$ X");
    assert_eq!(n("select $a$ $b$ inner $b$ $a$"), "SELECT $a$ $b$ inner $b$ $a$");
    assert_eq!(n("select $a$ x $A$ y"), "SELECT $a$ x $A$ y");
    assert_eq!(f("select $a$ $b$ inner $b$ $a$, 1"), "SELECT ?, ?");
    assert_eq!(f("create function f() returns int as $body$ select 1 $body$"), "CREATE FUNCTION F() RETURNS INT AS ?");
    assert_eq!(f("select $$$$"), "SELECT ?");
  }

  #[test]
  fn positional_params_are_not_dollar_quotes() {
    assert_eq!(n("select * from t where a = $1 and b = $2"), "SELECT * FROM T WHERE A = $1 AND B = $2");
    assert_eq!(f("select * from t where a = $1 and b = $12"), "SELECT * FROM T WHERE A = $1 AND B = $12");
    assert_eq!(f("select $1, $$x$$, 2"), "SELECT $1, ?, ?");
    assert_eq!(n("select a$b$c from t"), "SELECT A$B$C FROM T");
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
  fn wrapping_parentheses() {
    assert_eq!(n("(select 1)"), "SELECT 1");
    assert_eq!(n("((select 1))"), "SELECT 1");
    assert_eq!(n(" ( ( select 1 ) ) ; "), "SELECT 1");
    assert_eq!(n("(select 1);"), "SELECT 1");
    assert_eq!(n("(; (select 1) ;)"), "SELECT 1");
    assert_eq!(n("(select 1) union (select 2)"), "(SELECT 1) UNION (SELECT 2)");
    assert_eq!(n("((a) (b))"), "(A) (B)");
    assert_eq!(n("((a)) ((b))"), "((A)) ((B))");
    assert_eq!(n("select count(*)"), "SELECT COUNT(*)");
    assert_eq!(n("select count(*) from t"), "SELECT COUNT(*) FROM T");
    assert_eq!(n("(select count(*))"), "SELECT COUNT(*)");
    assert_eq!(n("(select ')')"), "SELECT ')'");
    assert_eq!(n("(select '(')"), "SELECT '('");
    assert_eq!(n("((select 1)"), "((SELECT 1)");
    assert_eq!(n("(select 1))"), "(SELECT 1))");
    assert_eq!(n("(select 'x)"), "(SELECT 'x)");
    assert_eq!(n("()"), "");
    assert_eq!(n("(())"), "");
    assert_eq!(f("(select 1)"), "SELECT ?");
  }

  #[test]
  fn literals_become_placeholders() {
    assert_eq!(f("select * from t where a = 'x' and b = 42"), "SELECT * FROM T WHERE A = ? AND B = ?");
    assert_eq!(f("select 1.5, .5, 1., 1e10, 1.5E-3, 2e+7, 0x1F, 0XaB"), "SELECT ?, ?, ?, ?, ?, ?, ?, ?");
    assert_eq!(f("select -1, - 2"), "SELECT -?, - ?");
    assert_eq!(f("select e'a\\'b', N'x', x'1F', B'0101', E'', n'z'"), "SELECT ?, ?, ?, ?, ?, ?");
    assert_eq!(f("select true, false, null, TRUE"), "SELECT TRUE, FALSE, NULL, TRUE");
    assert_eq!(f("select a+1, b*2"), "SELECT A+?, B*?");
    assert_eq!(f("select 1'a'"), "SELECT ??");
    assert_eq!(f("select 1$$x$$, 1.$$y$$"), "SELECT ??, ??");
    assert_eq!(f("select 1.x, 2.n'a', 1e5x"), "SELECT ?X, ??, ?X");
  }

  #[test]
  fn numbers_inside_identifiers_stay() {
    assert_eq!(f("select t1.col_2, c3 from t1 join t22 on t1.x = t22.x"), "SELECT T1.COL_2, C3 FROM T1 JOIN T22 ON T1.X = T22.X");
    assert_eq!(f("select 1st_col, 0x1g, 2e from t"), "SELECT 1ST_COL, 0X1G, 2E FROM T");
    assert_eq!(f("select t.5, 1.5.3"), "SELECT T?, ??");
    assert_eq!(n("select 1e10, 0x1f"), "SELECT 1E10, 0X1F");
  }

  #[test]
  fn identifiers_are_not_literals() {
    assert_eq!(f(r#"select "col1", `col2` from "T" where x = 'v'"#), r#"SELECT "col1", `col2` FROM "T" WHERE X = ?"#);
    assert_eq!(f(r#"select "it's", 'x'"#), r#"SELECT "it's", ?"#);
  }

  #[test]
  fn in_lists_collapse() {
    assert_eq!(f("select * from t where id in (1, 2, 3)"), "SELECT * FROM T WHERE ID IN (?)");
    assert_eq!(f("select * from t where id IN(1,2,3)"), "SELECT * FROM T WHERE ID IN (?)");
    assert_eq!(f("select * from t where id in ( 'a' , 'b' )"), "SELECT * FROM T WHERE ID IN (?)");
    assert_eq!(f("select * from t where id in (7)"), "SELECT * FROM T WHERE ID IN (?)");
    assert_eq!(f("select * from t where id not in (?, ?)"), "SELECT * FROM T WHERE ID NOT IN (?)");
    assert_eq!(f("a in (1, 2) and b in ('x')"), "A IN (?) AND B IN (?)");
    assert_eq!(f("select * from t where id in (1, b)"), "SELECT * FROM T WHERE ID IN (?, B)");
    assert_eq!(f("select * from t where id in (select 1)"), "SELECT * FROM T WHERE ID IN (SELECT ?)");
    assert_eq!(f("select f(1, 2), min(1, 2)"), "SELECT F(?, ?), MIN(?, ?)");
    assert_eq!(f("select * from t where id in ($1, $2)"), "SELECT * FROM T WHERE ID IN ($1, $2)");
    assert_eq!(f(r#"select "in (1, 2)""#), r#"SELECT "in (1, 2)""#);
    assert_eq!(f("select * from t where id in ()"), "SELECT * FROM T WHERE ID IN ()");
    assert_eq!(n("select * from t where id in (1, 2)"), "SELECT * FROM T WHERE ID IN (1, 2)");
  }

  #[test]
  fn values_rows_collapse() {
    assert_eq!(f("insert into t (a, b) values (1, 'x'), (2, 'y'), (3, 'z')"), "INSERT INTO T (A, B) VALUES (?, ?)");
    assert_eq!(f("insert into t values(1,2),(3, 4) , ( 5,6 )"), "INSERT INTO T VALUES(?,?)");
    assert_eq!(f("insert into t values (1, now()), (2, now()) on conflict do nothing"), "INSERT INTO T VALUES (?, NOW()) ON CONFLICT DO NOTHING");
    assert_eq!(f("insert into t values (1, null), (2, 3), (4, 5)"), "INSERT INTO T VALUES (?, NULL), (?, ?)");
    assert_eq!(f("insert into t values (1), (2); insert into u values (3)"), "INSERT INTO T VALUES (?); INSERT INTO U VALUES (?)");
    assert_eq!(f("insert into t values (1 in (1, 2)), (2 in (3))"), "INSERT INTO T VALUES (? IN (?))");
    assert_eq!(f("(insert into t values (1), (2))"), "INSERT INTO T VALUES (?)");
    assert_eq!(f("insert into t values (a b), (ab)"), "INSERT INTO T VALUES (A B), (AB)");
    assert_eq!(n("insert into t values (1), (1)"), "INSERT INTO T VALUES (1), (1)");
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

  #[test]
  fn unicode_space_matches_std() {
    for c in '\u{80}'..=char::MAX {
      let mut buf = [0; 4];
      let bytes = c.encode_utf8(&mut buf).as_bytes();
      let expected = if c.is_whitespace() { bytes.len() } else { 0 };
      assert_eq!(unicode_space_len(bytes, 0), expected, "{c:?}");
    }
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
