import test from 'ava';
import { fingerprintSql, normalizeSql } from 'havoc';
import path from 'node:path';
import { fingerprintSqlJs, normalizeSqlJs } from '../benchmark/sql-reference.js';

// Every expectation below is worked out from the rules, not captured from a run:
// comments and whitespace runs become one space, text outside quotes is ASCII-uppercased,
// quoted text is kept byte for byte, `;`/spaces and whole-statement parentheses are
// trimmed; fingerprints also turn literals into `?` and collapse IN lists and VALUES rows.

const normalizeCases: [title: string, sql: string, expected: string][] = [
  ['empty input', '', ''],
  ['blank input', '   \n\t  ', ''],
  ['only separators', ' ;; ; ', ''],
  ['surrounding whitespace and semicolons', ' select 1 ;; ', 'SELECT 1'],
  ['whitespace runs collapse', 'select a, b\nfrom   t\twhere x = 1', 'SELECT A, B FROM T WHERE X = 1'],
  ['CRLF and vertical tab', 'select\r\n1\u000b+\f2', 'SELECT 1 + 2'],
  ['unicode whitespace', 'select\u00a0a\u3000from\u2003t\u2028where\u0085b', 'SELECT A FROM T WHERE B'],
  ['COUNT(*) stays intact', 'select count(*)', 'SELECT COUNT(*)'],
  ['COUNT(*) in a query', 'SELECT COUNT(*) FROM users', 'SELECT COUNT(*) FROM USERS'],
  ['wrapping parentheses', '(select 1)', 'SELECT 1'],
  ['double wrapping parentheses', '((select 1))', 'SELECT 1'],
  ['wrapping parentheses with spaces and ;', ' ( ( select 1 ) ) ; ', 'SELECT 1'],
  ['wrapped COUNT(*)', '(select count(*) from t)', 'SELECT COUNT(*) FROM T'],
  ['UNION of parenthesized selects is kept', '(select 1) union (select 2)', '(SELECT 1) UNION (SELECT 2)'],
  ['wrapped UNION loses only the outer pair', '((select 1) union (select 2))', '(SELECT 1) UNION (SELECT 2)'],
  ['unbalanced parentheses are kept', '((select 1)', '((SELECT 1)'],
  ['a quoted ) does not close', "(select ')')", "SELECT ')'"],
  ['line comment', 'select 1 -- the answer', 'SELECT 1'],
  ['mixed comments', 'select -- c1\n1 /* c2 */ + /* c3 */ 2', 'SELECT 1 + 2'],
  ['comment between tokens becomes a space', 'select/*x*/1', 'SELECT 1'],
  ['nested block comment', 'select 1 /* a /* b */ c */ + 2', 'SELECT 1 + 2'],
  ['unterminated block comment', 'select 1 /* never closed', 'SELECT 1'],
  ['# is not a comment', 'select a # b from t', 'SELECT A # B FROM T'],
  ['-- inside a string', "select '-- not a comment' from t", "SELECT '-- not a comment' FROM T"],
  ['/* inside a string', "select '/* nor this */' x", "SELECT '/* nor this */' X"],
  ['comment markers inside identifiers', 'select "a--b", `c/*d*/` from t', 'SELECT "a--b", `c/*d*/` FROM T'],
  ['doubled single quote', "select 'It''s'", "SELECT 'It''s'"],
  ['backslash-escaped quote', "select 'It\\'s -- still a string' x", "SELECT 'It\\'s -- still a string' X"],
  ['string case and spacing kept', "select 'Mixed  Case' from t", "SELECT 'Mixed  Case' FROM T"],
  ['quoted identifiers kept', 'select "Mixed Col", `back``tick` from "T"', 'SELECT "Mixed Col", `back``tick` FROM "T"'],
  ['doubled double quote', 'select "a""b" from t', 'SELECT "a""b" FROM T'],
  ['E string keeps its body', "select e'\\n', E'x'", "SELECT E'\\n', E'x'"],
  ['$$ string', 'select $$ keep  this -- $$ from t', 'SELECT $$ keep  this -- $$ FROM T'],
  ['$tag$ string containing $$', 'select $fn$ a $$ b $fn$', 'SELECT $fn$ a $$ b $fn$'],
  ['nested different dollar tags', 'select $outer$ x $inner$ y $inner$ z $outer$ , 1', 'SELECT $outer$ x $inner$ y $inner$ z $outer$ , 1'],
  ['$1 params are not dollar quotes', 'select * from t where id = $1 and name = $2', 'SELECT * FROM T WHERE ID = $1 AND NAME = $2'],
  ['unicode outside quotes is left alone', "select 'héllo' from ünïcode", "SELECT 'héllo' FROM üNïCODE"],
  ['non-ASCII identifiers', 'select naïve, 名前 from テーブル', 'SELECT NAïVE, 名前 FROM テーブル'],
  ['unterminated string runs to the end', "select 'unterminated ;  ", "SELECT 'unterminated ;  "],
  ['semicolons between statements are kept', 'select 1;select 2;', 'SELECT 1;SELECT 2'],
];

const fingerprintCases: [title: string, sql: string, expected: string][] = [
  ['empty input', '', ''],
  ['integer', 'select * from users where id = 42', 'SELECT * FROM USERS WHERE ID = ?'],
  ['string and number', "select * from t where name = 'bob' and age > 30", 'SELECT * FROM T WHERE NAME = ? AND AGE > ?'],
  ['number forms', 'select 1.5, .5, 1e10, 2.5E-3, 0x1F', 'SELECT ?, ?, ?, ?, ?'],
  ['unary minus stays', 'select -1', 'SELECT -?'],
  ['prefixed strings', "select E'a\\'b', N'x', X'1F', B'0101'", 'SELECT ?, ?, ?, ?'],
  ['TRUE, FALSE and NULL are kept', 'select true, false, null', 'SELECT TRUE, FALSE, NULL'],
  ['numbers inside identifiers', 'select t1.col_2 from t1 where c3 = 3', 'SELECT T1.COL_2 FROM T1 WHERE C3 = ?'],
  ['leading-digit identifier', 'select 1st from t', 'SELECT 1ST FROM T'],
  ['$1 params are kept', 'select * from t where a = $1 and b = 7', 'SELECT * FROM T WHERE A = $1 AND B = ?'],
  ['dollar-quoted strings', 'select $$x$$, $tag$ y $tag$', 'SELECT ?, ?'],
  ['quoted identifiers are not literals', 'select "col1", `col2` from "T1"', 'SELECT "col1", `col2` FROM "T1"'],
  ['comment after a string with --', "select 'a -- b' -- c", 'SELECT ?'],
  ['wrapped statement', '(select 1)', 'SELECT ?'],
  ['COUNT(*)', 'select count(*) from t where x = 1', 'SELECT COUNT(*) FROM T WHERE X = ?'],
  ['unicode', "select 'héllo', 'x' from ünïcode", 'SELECT ?, ? FROM üNïCODE'],
  ['function arguments are not an IN list', 'select f(1, 2)', 'SELECT F(?, ?)'],
  ['LIMIT and OFFSET', "select * from t where d = '2024-01-01' limit 10 offset 20", 'SELECT * FROM T WHERE D = ? LIMIT ? OFFSET ?'],
  ['IN list', 'select * from t where id in (1, 2, 3)', 'SELECT * FROM T WHERE ID IN (?)'],
  ['IN list without spaces', "where id IN('a','b','c')", 'WHERE ID IN (?)'],
  ['NOT IN with odd spacing', 'where id not in ( 1 ,2 , 3 )', 'WHERE ID NOT IN (?)'],
  ['IN list of placeholders', 'where id in (?, ?, ?)', 'WHERE ID IN (?)'],
  ['IN subquery', 'where id in (select id from u where x = 1)', 'WHERE ID IN (SELECT ID FROM U WHERE X = ?)'],
  ['IN list of $n params is kept', 'where id in ($1, $2)', 'WHERE ID IN ($1, $2)'],
  ['multi-row VALUES', "insert into t (a, b) values (1, 'x'), (2, 'y'), (3, 'z')", 'INSERT INTO T (A, B) VALUES (?, ?)'],
  ['VALUES rows with calls', 'insert into t values (1, now()), (2, now())', 'INSERT INTO T VALUES (?, NOW())'],
  [
    'VALUES then ON CONFLICT',
    'insert into t values (1), (2) on conflict (id) do update set n = 3',
    'INSERT INTO T VALUES (?) ON CONFLICT (ID) DO UPDATE SET N = ?',
  ],
];

for (const [title, sql, expected] of normalizeCases) {
  test(`normalizeSql: ${title}`, (t) => {
    t.is(normalizeSql(sql), expected);
  });
}

for (const [title, sql, expected] of fingerprintCases) {
  test(`fingerprintSql: ${title}`, (t) => {
    t.is(fingerprintSql(sql), expected);
  });
}

const MB = 1 << 20;

test('a 2 MB IN list completes and collapses', (t) => {
  const sql = `select * from t where id in (${'12345, '.repeat((2 * MB) / 7)}1)`;
  t.true(sql.length > 2 * MB - 16);
  const normalized = normalizeSql(sql);
  // All ASCII with single spaces: only the case changes.
  t.is(normalized.length, sql.length);
  t.true(normalized.startsWith('SELECT * FROM T WHERE ID IN (12345, 12345, '));
  t.is(fingerprintSql(sql), 'SELECT * FROM T WHERE ID IN (?)');
});

test('a 2 MB string literal is kept whole, or becomes one ?', (t) => {
  const body = 'x -- /* '.repeat((2 * MB) / 8);
  const sql = `select '${body}'`;
  t.is(normalizeSql(sql), `SELECT '${body}'`);
  t.is(fingerprintSql(sql), 'SELECT ?');
});

test('1 MB of nested parentheses peel in one go', (t) => {
  const sql = `${'('.repeat(MB / 2)}select 1${')'.repeat(MB / 2)}`;
  t.is(normalizeSql(sql), 'SELECT 1');
  const open = '('.repeat(MB);
  t.is(normalizeSql(open), open);
});

test('pathological 1 MB shapes finish', (t) => {
  t.is(normalizeSql("'".repeat(MB)), "'".repeat(MB));
  t.is(fingerprintSql("'".repeat(MB)), '?');
  t.is(normalizeSql('/*'.repeat(MB / 2)), '');
  t.is(fingerprintSql('$$'.repeat(MB / 2)), '?'.repeat(MB / 4));
  t.is(normalizeSql(' '.repeat(MB)), '');
});

test('a 2 MB multi-row insert keeps one row', (t) => {
  const sql = `insert into t (a, b) values ${Array.from({ length: (2 * MB) / 16 }, (_, i) => `(${i}, 'v${i}')`).join(', ')}`;
  t.true(sql.length > 2 * MB);
  t.is(fingerprintSql(sql), 'INSERT INTO T (A, B) VALUES (?, ?)');
});

const corpus = [
  ...normalizeCases.map(([, sql]) => sql),
  ...fingerprintCases.map(([, sql]) => sql),
  "select 1.x, 2.n'a', 1$$x$$, 0x1g, t.5, 1.5.3",
  'insert into t values (1, null), (2, 3), (4, 5)',
  'insert into t values(1,2),(3, 4) , ( 5,6 )',
  'insert into t values (1 in (1, 2)), (2 in (3))',
  '(insert into t values (1), (2));',
  '(; (select 1) ;)',
  'select "unterminated ident',
  'select $a$ x $A$ y',
  "select '😀' -- 😀\n, x😀y",
  '\ufeffselect 1',
  `/* app=checkout */ SELECT o.id, o.total, c.email, COUNT(i.id) AS items
     FROM orders o JOIN customers c ON c.id = o.customer_id
     LEFT JOIN order_items i ON i.order_id = o.id -- line items
     WHERE o.status IN ('paid', 'shipped', 'delivered') AND o.created_at > '2024-01-01'
       AND c.region = $1 AND o.total >= 10.50
     GROUP BY o.id, o.total, c.email ORDER BY o.created_at DESC LIMIT 50`,
];

test('normalizing is idempotent', (t) => {
  for (const sql of corpus) {
    const once = normalizeSql(sql);
    t.is(normalizeSql(once), once, sql);
    t.is(fingerprintSql(once), fingerprintSql(sql), sql);
  }
});

test('the JS reference port agrees with the native functions on the corpus', (t) => {
  for (const sql of corpus) {
    t.is(normalizeSqlJs(sql), normalizeSql(sql), sql);
    t.is(fingerprintSqlJs(sql), fingerprintSql(sql), sql);
  }
});

test('the JS reference port agrees with the native functions on random input', (t) => {
  const alphabet = [
    "'",
    "''",
    '"',
    '`',
    '$',
    '$$',
    '$a$',
    '$1',
    '-',
    '--',
    '/',
    '*',
    '/*',
    '*/',
    '(',
    ')',
    ' ',
    '\n',
    '\u00a0',
    '\u3000',
    '\ufeff',
    ';',
    ',',
    '\\',
    '?',
    'e',
    'n',
    'x',
    'in',
    'values',
    '0x1f',
    '1',
    '.',
    '5e3',
    'é',
    '😀',
    '#',
    'a1',
    '_',
  ];
  // xorshift32: deterministic, so a failure always reproduces.
  let state = 0x2545f491;
  const next = () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return state >>> 0;
  };
  for (let n = 0; n < 5000; n++) {
    let sql = '';
    for (let len = next() % 30; len > 0; len--) sql += alphabet[next() % alphabet.length];
    t.is(normalizeSqlJs(sql), normalizeSql(sql), JSON.stringify(sql));
    t.is(fingerprintSqlJs(sql), fingerprintSql(sql), JSON.stringify(sql));
  }
});

test('the JS reference port handles the large shapes the same way', (t) => {
  const inList = `select * from t where id in (${'7, '.repeat(50_000)}7)`;
  t.is(fingerprintSqlJs(inList), fingerprintSql(inList));
  t.is(normalizeSqlJs(inList), normalizeSql(inList));
  const nested = `${'('.repeat(50_000)}select 1${')'.repeat(50_000)}`;
  t.is(normalizeSqlJs(nested), 'SELECT 1');
});

// The per-thread cache behind normalizeSql / fingerprintSql, checked against the addon itself.
const root = path.resolve(__dirname, '..', '..');
const addon = require(path.join(root, 'index.js')) as { normalizeSql(sql: string): string; fingerprintSql(sql: string): string };
const cache = require(path.join(root, 'dist', 'sql.js')) as {
  SQL_CACHE_ENTRIES: number;
  SQL_CACHE_MAX_LENGTH: number;
  sqlCacheSizes(): { normalize: number; fingerprint: number };
};

test('cached answers are the addon answers, before and after eviction, and the cache stays bounded', (t) => {
  const statements = Array.from({ length: cache.SQL_CACHE_ENTRIES * 3 }, (_, i) => `select * from t${i % 7} where id = ${i} -- ${i}`);
  // Three passes: the first fills and evicts, the later ones mix hits and misses.
  for (let pass = 0; pass < 3; pass++) {
    for (const [i, sql] of statements.entries()) {
      const probe = pass === 2 ? statements[i % 10]! : sql;
      t.is(normalizeSql(probe), addon.normalizeSql(probe));
      t.is(fingerprintSql(probe), addon.fingerprintSql(probe));
    }
    const sizes = cache.sqlCacheSizes();
    t.true(sizes.normalize <= 2 * cache.SQL_CACHE_ENTRIES, `normalize cache holds ${sizes.normalize}`);
    t.true(sizes.fingerprint <= 2 * cache.SQL_CACHE_ENTRIES, `fingerprint cache holds ${sizes.fingerprint}`);
  }
  t.true(cache.sqlCacheSizes().normalize > cache.SQL_CACHE_ENTRIES);
});

test('statements over the cache length bound are answered but not cached', (t) => {
  // Every test in this file is synchronous, so the sizes move only through the calls below.
  const before = cache.sqlCacheSizes();
  const long = `select '${'x'.repeat(cache.SQL_CACHE_MAX_LENGTH)}' from t where a = 1`;
  t.is(normalizeSql(long), addon.normalizeSql(long));
  t.is(fingerprintSql(`${long} and b = 2`), 'SELECT ? FROM T WHERE A = ? AND B = ?');
  t.deepEqual(cache.sqlCacheSizes(), before);
  t.is(normalizeSql(`  select ${cache.SQL_CACHE_ENTRIES * 10} ; `), `SELECT ${cache.SQL_CACHE_ENTRIES * 10}`);
  // One more entry, or a turnover: the young generation, full, became the old one.
  t.true([before.normalize + 1, cache.SQL_CACHE_ENTRIES + 1].includes(cache.sqlCacheSizes().normalize));
});
