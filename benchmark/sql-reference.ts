// A plain TypeScript port of the SQL normalizer and fingerprinter in
// crates/havoc-core/src/sql.rs, written the way a JS developer would: a
// character-by-character scanner appending to a string. It is only the
// baseline for sql.bench.ts; __test__/sql.spec.ts checks that it agrees with
// the native functions, so the benchmark compares equal work.

/** Non-ASCII whitespace as Rust's `char::is_whitespace` sees it (unlike `\s`: no U+FEFF, plus U+0085). */
const UNICODE_SPACE = /[\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]/;

const isSpace = (ch: string | undefined) =>
  ch !== undefined &&
  (ch === ' ' || ch === '\n' || ch === '\t' || ch === '\r' || ch === '\v' || ch === '\f' || (ch >= '\u0080' && UNICODE_SPACE.test(ch)));
const isDigit = (ch: string | undefined) => ch !== undefined && ch >= '0' && ch <= '9';
const isLetter = (ch: string) => (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch === '_';
const isHex = (ch: string | undefined) => ch !== undefined && (isDigit(ch) || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F'));
/** Characters that can continue an identifier or a number (any non-ASCII included). */
const isWordByte = (ch: string | undefined) => ch !== undefined && (isLetter(ch) || isDigit(ch) || ch === '$' || ch >= '\u0080');
const isWordChar = (ch: string | undefined) => isWordByte(ch) && !isSpace(ch);
/** ASCII-only uppercase: `'é'.toUpperCase()` would change non-ASCII letters. */
const upper = (text: string) => text.replace(/[a-z]+/g, (m) => m.toUpperCase());

export function normalizeSqlJs(sql: string): string {
  return scan(sql, false);
}

export function fingerprintSqlJs(sql: string): string {
  return scan(sql, true);
}

type Rows =
  | { kind: 'idle' }
  | { kind: 'first'; start: number; base: number }
  | { kind: 'between'; start: number; end: number; base: number; comma: boolean }
  | { kind: 'next'; start: number; end: number; next: number; base: number };

const IDLE: Rows = { kind: 'idle' };

function scan(sql: string, fingerprint: boolean): string {
  let out = '';
  let gap = false;
  let openTail = false;
  // Wrapping parentheses: `(` count in the lead, current depth, lowest depth after the lead.
  let lead = 0;
  let inLead = true;
  let depth = 0;
  let floor = Infinity;
  // The VALUES tuple being compared, as offsets into `out`.
  let rows: Rows = IDLE;

  const beginToken = () => {
    if (gap && out.length > 0) out += ' ';
    gap = false;
  };
  const other = () => {
    inLead = false;
    floor = Math.min(floor, depth);
    if (rows.kind === 'between') rows = IDLE;
  };
  const emitUpper = (text: string) => {
    beginToken();
    out += upper(text);
    other();
  };
  const literal = () => {
    beginToken();
    out += '?';
    other();
  };
  const quoted = (text: string, closed: boolean) => {
    beginToken();
    out += text;
    openTail = !closed;
    other();
  };
  const string = (text: string, closed: boolean) => (fingerprint ? literal() : quoted(text, closed));
  const number = (text: string) => (fingerprint ? literal() : emitUpper(text));
  const word = (i: number) => {
    const end = wordEnd(sql, i);
    emitUpper(sql.slice(i, end));
    return end;
  };

  const open = () => {
    const afterValues = fingerprint && endsWithWord(out, 'VALUES', out.length);
    beginToken();
    const at = out.length;
    const base = depth;
    out += '(';
    if (inLead) lead++;
    else floor = Math.min(floor, depth);
    depth++;
    if (!fingerprint) return;
    if (afterValues) rows = { kind: 'first', start: at, base };
    else if (rows.kind === 'between') {
      rows = rows.comma && rows.base === base ? { kind: 'next', start: rows.start, end: rows.end, next: at, base } : IDLE;
    }
  };

  const close = () => {
    beginToken();
    const collapsed = fingerprint ? collapseInList(out) : null;
    if (collapsed !== null) out = collapsed;
    else out += ')';
    inLead = false;
    depth--;
    if (!fingerprint) return;
    if (rows.kind === 'first' && depth === rows.base) {
      rows = { kind: 'between', start: rows.start, end: out.length, base: rows.base, comma: false };
    } else if (rows.kind === 'next' && depth === rows.base) {
      if (significant(out.slice(rows.start, rows.end)) === significant(out.slice(rows.next))) {
        out = out.slice(0, rows.end);
        rows = { kind: 'between', start: rows.start, end: rows.end, base: rows.base, comma: false };
      } else {
        rows = { kind: 'between', start: rows.next, end: out.length, base: rows.base, comma: false };
      }
    } else if (rows.kind === 'between') {
      rows = IDLE;
    }
  };

  const punct = (ch: string) => {
    if (ch === '(') return open();
    if (ch === ')') return close();
    beginToken();
    out += ch;
    if (ch === ';') {
      rows = IDLE;
    } else if (ch === ',') {
      inLead = false;
      floor = Math.min(floor, depth);
      if (rows.kind === 'between') {
        rows = !rows.comma && rows.base === depth ? { ...rows, comma: true } : IDLE;
      }
    } else {
      other();
    }
  };

  let i = 0;
  while (i < sql.length) {
    const ch = sql[i]!;
    const next = sql[i + 1];
    if (isSpace(ch)) {
      gap = true;
      i++;
    } else if (ch === '-' && next === '-') {
      gap = true;
      i = lineEnd(sql, i + 2);
    } else if (ch === '/' && next === '*') {
      gap = true;
      i = blockCommentEnd(sql, i + 2);
    } else if (ch === "'") {
      const [end, closed] = singleQuoteEnd(sql, i + 1);
      string(sql.slice(i, end), closed);
      i = end;
    } else if (ch === '"' || ch === '`') {
      const [end, closed] = doubledQuoteEnd(sql, i + 1, ch);
      quoted(sql.slice(i, end), closed);
      i = end;
    } else if (ch === '$') {
      const dollar = dollarQuoteEnd(sql, i);
      if (dollar) {
        string(sql.slice(i, dollar[0]), dollar[1]);
        i = dollar[0];
      } else {
        i = word(i);
      }
    } else if (isDigit(ch)) {
      const [end, plain] = numberEnd(sql, i);
      if (plain && sql[end] !== '$' && wordEnd(sql, end) > end) {
        i = word(i); // `1st` is a word
      } else {
        number(sql.slice(i, end));
        i = end;
      }
    } else if (ch === '.' && isDigit(next)) {
      const [end] = numberEnd(sql, i);
      number(sql.slice(i, end));
      i = end;
    } else if (fingerprint && next === "'" && 'EeNnXxBb'.includes(ch)) {
      literal();
      i = singleQuoteEnd(sql, i + 2)[0];
    } else if (isLetter(ch) || ch >= '\u0080') {
      i = word(i);
    } else {
      punct(ch);
      i++;
    }
  }

  // Peel every level of parentheses wrapping the whole statement, then trim.
  let levels = 0;
  if (depth === 0 && !openTail) {
    let closes = 0;
    for (let j = out.length - 1; j >= 0 && (out[j] === ')' || out[j] === ' ' || out[j] === ';'); j--) {
      if (out[j] === ')') closes++;
    }
    levels = Math.min(lead, closes, Math.max(floor, 0));
  }
  let start = 0;
  let end = out.length;
  if (levels > 0) {
    for (let j = 0, seen = 0; j < out.length; j++) {
      if (out[j] === '(' && ++seen === levels) {
        start = j + 1;
        break;
      }
    }
    for (let j = out.length - 1, seen = 0; j >= 0; j--) {
      if (out[j] === ')' && ++seen === levels) {
        end = j;
        break;
      }
    }
  }
  while (start < end && (out[start] === ' ' || out[start] === ';')) start++;
  while (!openTail && end > start && (out[end - 1] === ' ' || out[end - 1] === ';')) end--;
  return out.slice(start, end);
}

/** `IN (?, ?, ?` at the end of `out` (before its `)`) becomes `IN (?)`; null for anything else. */
function collapseInList(out: string): string | null {
  let i = out.length;
  let wantItem = true;
  for (;;) {
    while (i > 0 && out[i - 1] === ' ') i--;
    if (i === 0) return null;
    const ch = out[--i];
    if (ch === '?' && wantItem) wantItem = false;
    else if (ch === ',' && !wantItem) wantItem = true;
    else if (ch === '(' && !wantItem) break;
    else return null;
  }
  const keywordEnd = i > 0 && out[i - 1] === ' ' ? i - 1 : i;
  if (!endsWithWord(out, 'IN', keywordEnd)) return null;
  return `${out.slice(0, keywordEnd)} (?)`;
}

function endsWithWord(text: string, word: string, end: number): boolean {
  const start = end - word.length;
  return start >= 0 && text.startsWith(word, start) && !isWordByte(text[start - 1]);
}

/** A tuple with the spaces that only sit next to punctuation removed, for comparison. */
function significant(tuple: string): string {
  let result = '';
  let quote: string | null = null;
  for (let i = 0; i < tuple.length; i++) {
    const ch = tuple[i]!;
    if (quote !== null) {
      if (ch === quote) quote = null;
      result += ch;
      continue;
    }
    if (ch === '"' || ch === '`') quote = ch;
    if (ch !== ' ' || (i > 0 && isWordByte(tuple[i - 1]) && isWordByte(tuple[i + 1]))) result += ch;
  }
  return result;
}

function wordEnd(sql: string, i: number): number {
  while (i < sql.length && isWordChar(sql[i])) i++;
  return i;
}

function lineEnd(sql: string, i: number): number {
  while (i < sql.length && sql[i] !== '\n' && sql[i] !== '\r') i++;
  return i;
}

function blockCommentEnd(sql: string, i: number): number {
  let depth = 1;
  while (i < sql.length) {
    if (sql[i] === '/' && sql[i + 1] === '*') {
      depth++;
      i += 2;
    } else if (sql[i] === '*' && sql[i + 1] === '/') {
      depth--;
      i += 2;
      if (depth === 0) return i;
    } else {
      i++;
    }
  }
  return sql.length;
}

function singleQuoteEnd(sql: string, i: number): [number, boolean] {
  while (i < sql.length) {
    const ch = sql[i];
    if (ch === '\\') i += 2;
    else if (ch === "'" && sql[i + 1] === "'") i += 2;
    else if (ch === "'") return [i + 1, true];
    else i++;
  }
  return [sql.length, false];
}

function doubledQuoteEnd(sql: string, i: number, quote: string): [number, boolean] {
  while (i < sql.length) {
    if (sql[i] !== quote) i++;
    else if (sql[i + 1] === quote) i += 2;
    else return [i + 1, true];
  }
  return [sql.length, false];
}

function dollarQuoteEnd(sql: string, i: number): [number, boolean] | null {
  let j = i + 1;
  if (isDigit(sql[j])) return null; // `$1` is a parameter
  while (j < sql.length && sql[j] !== '$' && isWordByte(sql[j])) j++;
  if (sql[j] !== '$') return null;
  const delimiter = sql.slice(i, j + 1);
  const close = sql.indexOf(delimiter, j + 1);
  return close === -1 ? [sql.length, false] : [close + delimiter.length, true];
}

/** End of the number at `i`, and whether it is a plain integer (no fraction, no exponent). */
function numberEnd(sql: string, i: number): [number, boolean] {
  const digits = (j: number, hex: boolean) => {
    while (hex ? isHex(sql[j]) : isDigit(sql[j])) j++;
    return j;
  };
  if (sql[i] === '0' && (sql[i + 1] === 'x' || sql[i + 1] === 'X') && isHex(sql[i + 2])) {
    return [digits(i + 2, true), true];
  }
  let j = digits(i, false);
  let plain = true;
  if (sql[j] === '.') {
    j = digits(j + 1, false);
    plain = false;
  }
  if (sql[j] === 'e' || sql[j] === 'E') {
    const k = sql[j + 1] === '+' || sql[j + 1] === '-' ? j + 2 : j + 1;
    if (isDigit(sql[k])) {
      j = digits(k, false);
      plain = false;
    }
  }
  return [j, plain];
}
