//! The output of a scan under construction: one space per gap, ASCII uppercase outside
//! quotes, and at the end `;` and spaces trimmed and wrapping parentheses peeled.

use std::mem;

use super::fingerprint::{collapse_in_list, ends_with_word, Rows};
use super::lexer::word_end;

/// The output under construction, plus the little state the rewrites need.
pub(super) struct Writer<'a> {
  out: &'a mut String,
  fingerprint: bool,
  /// Whitespace or a comment came after the last token written.
  pub(super) gap: bool,
  /// The input ended inside a quote copied verbatim, so the end of `out`
  /// is quoted text that trimming must not touch.
  open_tail: bool,
  wrap: Wrap,
  rows: Rows,
}

impl<'a> Writer<'a> {
  pub(super) fn new(out: &'a mut String, fingerprint: bool) -> Self {
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
  pub(super) fn word(&mut self, sql: &str, i: usize) -> usize {
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

  pub(super) fn number(&mut self, text: &str) {
    if self.fingerprint {
      self.literal();
    } else {
      self.upper(text);
    }
  }

  /// A single- or dollar-quoted string: a literal when fingerprinting.
  pub(super) fn string(&mut self, text: &str, closed: bool) {
    if self.fingerprint {
      self.literal();
    } else {
      self.quoted(text, closed);
    }
  }

  pub(super) fn quoted(&mut self, text: &str, closed: bool) {
    self.begin_token();
    self.out.push_str(text);
    self.open_tail = !closed;
    self.other();
  }

  pub(super) fn literal(&mut self) {
    self.begin_token();
    self.out.push('?');
    self.other();
  }

  pub(super) fn punct(&mut self, c: u8) {
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
  pub(super) fn finish(self) {
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

#[cfg(test)]
mod tests {
  // The functions under test, by short names: the assertions read as tables.
  use crate::sql::{fingerprint as f, normalize as n};

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
}
