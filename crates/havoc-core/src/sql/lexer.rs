//! Where each SQL token ends: comments, quotes, dollar quotes, numbers and words. Each
//! function takes the input and an offset and returns an offset; none allocates or rescans.

/// Bytes that can continue an identifier or number: ASCII alphanumerics,
/// `_`, `$` and anything non-ASCII.
pub(super) fn is_word_byte(c: u8) -> bool {
  c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80
}

/// End of the identifier-like run at `i`: word bytes, but not the
/// multi-byte whitespace characters.
pub(super) fn word_end(b: &[u8], mut i: usize) -> usize {
  while b.get(i).is_some_and(|&c| is_word_byte(c) && (c < 0x80 || unicode_space_len(b, i) == 0)) {
    i += 1;
  }
  i
}

/// Length of the non-ASCII Unicode whitespace character encoded at `i`, or 0.
///
/// Matching the UTF-8 bytes avoids decoding; a continuation byte never
/// matches, so this is safe to ask at any offset.
pub(super) fn unicode_space_len(b: &[u8], i: usize) -> usize {
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
pub(super) fn line_end(b: &[u8], i: usize) -> usize {
  b.get(i..).and_then(|rest| rest.iter().position(|&c| c == b'\n' || c == b'\r')).map_or(b.len(), |p| i + p)
}

/// End of a block comment whose body starts at `i`. Comments nest, as in
/// PostgreSQL; an unterminated one runs to the end of input.
pub(super) fn block_comment_end(b: &[u8], mut i: usize) -> usize {
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
pub(super) fn single_quote_end(b: &[u8], mut i: usize) -> (usize, bool) {
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
pub(super) fn doubled_quote_end(b: &[u8], mut i: usize, quote: u8) -> (usize, bool) {
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
pub(super) fn dollar_quote_end(sql: &str, i: usize) -> Option<(usize, bool)> {
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
pub(super) fn number_end(b: &[u8], i: usize) -> (usize, bool) {
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
  use super::unicode_space_len;

  // The functions under test, by short names: the assertions read as tables.
  use crate::sql::{fingerprint as f, normalize as n};

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
  fn numbers_inside_identifiers_stay() {
    assert_eq!(f("select t1.col_2, c3 from t1 join t22 on t1.x = t22.x"), "SELECT T1.COL_2, C3 FROM T1 JOIN T22 ON T1.X = T22.X");
    assert_eq!(f("select 1st_col, 0x1g, 2e from t"), "SELECT 1ST_COL, 0X1G, 2E FROM T");
    assert_eq!(f("select t.5, 1.5.3"), "SELECT T?, ??");
    assert_eq!(n("select 1e10, 0x1f"), "SELECT 1E10, 0X1F");
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
}
