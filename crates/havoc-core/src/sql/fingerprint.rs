//! The rewrites only fingerprints make: an `IN` list of placeholders becomes `IN (?)`, and a
//! `VALUES` tuple identical to the one before it is dropped as soon as it closes.

use super::lexer::is_word_byte;

/// Tracks a `VALUES` list so a tuple identical to the one before it can be
/// dropped as soon as it closes. Positions are byte offsets into the output;
/// `base` is the parenthesis depth outside the tuples.
#[derive(Clone, Copy)]
pub(super) enum Rows {
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
  pub(super) fn open(self, at: usize, depth: isize, after_values: bool) -> Rows {
    if after_values {
      return Rows::First { start: at, base: depth };
    }
    match self {
      Rows::Between { start, end, base, comma: true } if base == depth => Rows::Next { start, end, next: at, base },
      Rows::Between { .. } => Rows::Idle,
      inside => inside,
    }
  }

  pub(super) fn comma(self, depth: isize) -> Rows {
    match self {
      Rows::Between { start, end, base, comma: false } if base == depth => Rows::Between { start, end, base, comma: true },
      Rows::Between { .. } => Rows::Idle,
      inside => inside,
    }
  }

  pub(super) fn close(self, out: &mut String, depth: isize) -> Rows {
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
pub(super) fn collapse_in_list(out: &mut String) -> bool {
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
pub(super) fn ends_with_word(text: &str, word: &str) -> bool {
  text.strip_suffix(word).is_some_and(|before| !before.bytes().next_back().is_some_and(is_word_byte))
}

#[cfg(test)]
mod tests {
  // The functions under test, by short names: the assertions read as tables.
  use crate::sql::{fingerprint as f, normalize as n};

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
}
