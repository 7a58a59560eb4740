import test from 'ava';
import type { ExecutionContext } from 'ava';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { extname, join, resolve } from 'node:path';
import { ConfigError, loadConfig, parseConfig, type Config, type ConfigIssue } from 'havoc';

/**
 * The bad-input corpus: every `NNN-name.ext` in the folder is a config that must be refused,
 * and `NNN-name.expected.json` beside it lists, in document order, every issue it must give:
 * the path exactly, line and column when given (absent: the issue must have none, it is about
 * the file rather than a place in it), and a fragment the message must contain.
 */
const CORPUS = resolve('__test__/fixtures/bad-configs');
const EXPECTED = '.expected.json';
const MIN_CASES = 150;

interface Expected {
  path: string;
  line?: number;
  column?: number;
  message: string;
}

interface Case {
  name: string;
  file: string;
  expected: Expected[];
}

function readCorpus(): { cases: Case[]; orphans: string[] } {
  const files = readdirSync(CORPUS)
    .filter((f) => f !== 'README.md')
    .sort();
  const inputs = new Set(files.filter((f) => !f.endsWith(EXPECTED)));
  const cases = files
    .filter((f) => f.endsWith(EXPECTED))
    .map((f): Case => {
      const stem = f.slice(0, -EXPECTED.length);
      const input = [...inputs].find((g) => g.slice(0, g.length - extname(g).length) === stem) ?? `${stem}.missing`;
      inputs.delete(input);
      const expected = JSON.parse(readFileSync(join(CORPUS, f), 'utf8')) as Expected[];
      return { name: stem, file: join(CORPUS, input), expected };
    });
  return { cases, orphans: [...inputs] };
}

const corpus = readCorpus();

function refused(t: ExecutionContext, fn: () => unknown): ConfigError {
  const error = t.throws(fn, { instanceOf: ConfigError });
  if (!error) throw new Error('expected a ConfigError');
  return error;
}

/**
 * `actual` in the shape of `expected`, so that one deepEqual shows every difference: positions
 * only where expected (or where present but not expected), the message replaced by the
 * expected fragment when it contains it.
 */
function matching(actual: readonly ConfigIssue[], expected: readonly Expected[]): Expected[] {
  return actual.map((issue, i) => {
    const want = expected[i];
    const message = want !== undefined && issue.message.includes(want.message) ? want.message : issue.message;
    return {
      path: issue.path,
      ...(issue.line === undefined ? {} : { line: issue.line }),
      ...(issue.column === undefined ? {} : { column: issue.column }),
      message,
    };
  });
}

/** The text a caller of `parseConfig` would have: the file read as UTF-8, when it is clean UTF-8 text. */
function asText(file: string): string | undefined {
  const bytes = readFileSync(file);
  if (bytes.includes(0)) return undefined;
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    return undefined;
  }
}

test('the corpus has at least 150 cases, each input with its expectations', (t) => {
  t.true(corpus.cases.length >= MIN_CASES, `${corpus.cases.length} cases`);
  t.deepEqual(corpus.orphans, [], 'inputs without an .expected.json');
  t.deepEqual(
    corpus.cases.filter((c) => c.file.endsWith('.missing')).map((c) => c.name),
    [],
    'expectations without an input',
  );
  const numbers = corpus.cases.map((c) => Number(c.name.slice(0, 3)));
  t.deepEqual(
    numbers,
    numbers.map((_, i) => i + 1),
    'numbered 001, 002, ... without gaps',
  );
  for (const c of corpus.cases) t.true(c.expected.length > 0, `${c.name} expects at least one issue`);
});

for (const c of corpus.cases) {
  test(`bad config ${c.name}`, (t) => {
    const error = refused(t, () => loadConfig(c.file));
    t.is(error.source, c.file);
    t.deepEqual(matching(error.issues, c.expected), c.expected);

    // The same text given to parseConfig (a byte order mark kept, as fs.readFileSync keeps it)
    // is refused alike: same issues, same positions.
    const text = asText(c.file);
    if (text === undefined) return;
    const format = extname(c.file) === '.json' ? 'json' : 'yaml';
    const again = refused(t, () => parseConfig(text, { format }));
    t.deepEqual(again.issues, error.issues, 'parseConfig of the file text');
  });
}

// --- what a file cannot hold in the corpus -------------------------------------------------------

function tempDir(t: ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'havoc-bad-configs-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const LIMIT = 5 * 1024 * 1024;
const SMALL = 'version: 1\npolicies:\n  - name: p\n    type: http\n    latency_chance: 0.5\n';

/** `SMALL` followed by a comment line that brings it to exactly `bytes` bytes. */
function padded(bytes: number): string {
  const text = `${SMALL}#`;
  return `${text}${'x'.repeat(bytes - Buffer.byteLength(text) - 1)}\n`;
}

test('a real file one byte over 5 MiB is refused, and one of exactly 5 MiB loads', (t) => {
  const dir = tempDir(t);
  const over = join(dir, 'over.yaml');
  writeFileSync(over, padded(LIMIT + 1));
  const error = refused(t, () => loadConfig(over));
  t.deepEqual(error.issues, [
    { path: '', message: `config file is too large: 5.0 MiB (${LIMIT + 1} bytes); the limit is 5 MiB (${LIMIT} bytes)` },
  ]);
  t.deepEqual(refused(t, () => parseConfig(padded(LIMIT + 1))).issues, [
    { path: '', message: `config is too large: 5.0 MiB (${LIMIT + 1} bytes); the limit is 5 MiB (${LIMIT} bytes)` },
  ]);

  const exact = join(dir, 'exact.yaml');
  writeFileSync(exact, padded(LIMIT));
  t.is(readFileSync(exact).length, LIMIT);
  t.is(loadConfig(exact).policies[0]?.latencyChance, 0.5);
});

test('a 5 MiB+ JSON file of one long string is refused by its size, before parsing', (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'big.json');
  writeFileSync(file, JSON.stringify({ version: 1, policies: [{ name: 'p', type: 'http', error_body: 'x'.repeat(LIMIT) }] }));
  const [issue, ...rest] = refused(t, () => loadConfig(file)).issues;
  t.deepEqual(rest, []);
  t.like(issue, { path: '' });
  t.regex(issue?.message ?? '', /^config file is too large: 5\.0 MiB \(\d+ bytes\); the limit is 5 MiB/);
});

// --- decisions the corpus relies on ----------------------------------------------------------------

test('a UTF-8 byte order mark is accepted and not counted in columns', (t) => {
  // Windows editors write one; it is not content. Files and text alike: loadConfig's decoder drops
  // it, parseConfig drops it too, so the first line's columns are those a reader sees.
  const dir = tempDir(t);
  const plain = parseConfig(SMALL);
  for (const ext of ['yaml', 'json']) {
    const text = ext === 'json' ? JSON.stringify({ version: 1, policies: [{ name: 'p', type: 'http', latency_chance: 0.5 }] }) : SMALL;
    const file = join(dir, `bom.${ext}`);
    writeFileSync(file, `\uFEFF${text}`);
    t.deepEqual(loadConfig(file), plain, ext);
    t.deepEqual(parseConfig(`\uFEFF${text}`, { format: ext === 'json' ? 'json' : 'yaml' }), plain, ext);
  }
  t.like(refused(t, () => parseConfig('\uFEFFversion: 2\n')).issues[0], { line: 1, column: 10 });
});

test('CRLF and lone CR line breaks give the same config as LF', (t) => {
  const expected: Config = parseConfig(SMALL);
  t.deepEqual(parseConfig(SMALL.replace(/\n/g, '\r\n')), expected);
  t.deepEqual(parseConfig(SMALL.replace(/\n/g, '\r')), expected);
  const json = '{\r\n  "version": 1,\r\n  "policies": [{"name": "p", "type": "http", "latency_chance": 0.5}]\r\n}\r\n';
  t.deepEqual(parseConfig(json, { format: 'json' }), expected);
});
