/**
 * Loading and validating havoc configurations (pastaay-compatible YAML or JSON).
 *
 * Text is parsed with a position index on the side, then one validator walks the plain value
 * and asks the index where each problem is: YAML/JSON input gets line and column, a plain
 * object passed to `validateConfig` does not. Every problem is collected before throwing.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { extname } from 'node:path';
import { Composer, Lexer, LineCounter, Parser, isMap, isScalar, isSeq, visit } from 'yaml';
import type { CST, Document, ParsedNode, YAMLError } from 'yaml';

import { parseDuration } from './duration.js';
import native = require('./native.js');
import { ConfigError } from './errors.js';
import type { ConfigIssue } from './errors.js';
import { PROTOCOLS } from './types.js';
import type { Config, Policy, Protocol, StreamRollMode } from './types.js';

/** pastaay's limit on a config, for text and files alike. */
export const MAX_CONFIG_BYTES = 5 * 1024 * 1024;
export const MAX_POLICIES = 1024;
/** Longest policy name, in characters (code points): names are label values and console text. */
export const MAX_NAME_CHARS = 128;

const HOUR_MS = 3_600_000;
const MAX_WARMUP_MS = 24 * HOUR_MS;
const MAX_LATENCY_MS = HOUR_MS;
const MAX_RAM_INTERVAL_MS = HOUR_MS;
const DEFAULT_RAM_INTERVAL_MS = 1000;
const MAX_RAM_CHUNK_MB = 4096;
const MAX_THROTTLE = 10_000_000;
const MAX_CPU_CORES = 1024;
const MAX_RAM_MB = 1_048_576;
const MAX_SABOTAGE_MS = 24 * HOUR_MS;
const STREAM_ROLL_MODES: readonly StreamRollMode[] = ['', 'per-call', 'per-frame', 'stream'];
/** A config needs four levels; the yaml parser can be driven into minutes of work or an OOM far below this. */
const MAX_NESTING = 64;
/** Past this many syntax errors the rest are noise, and composing them costs time and memory. */
const MAX_SYNTAX_ERRORS = 20;
const DURATION_EXAMPLE = 'a duration such as "1500ms", "3s" or "1m"';
const EMPTY_MESSAGE = 'config is empty; it needs at least `version: 1`';

export interface ParseConfigOptions {
  /** Default `'yaml'`. JSON is also valid YAML, but `'json'` parses it strictly, as JSON. */
  format?: 'yaml' | 'json';
  /** File path or label, used in error messages. */
  source?: string;
}

/** Parses and validates configuration text. Throws a `ConfigError` listing every problem. */
export function parseConfig(text: string, opts: ParseConfigOptions = {}): Config {
  const { source } = opts;
  // A byte order mark (text read with fs.readFileSync keeps it) is not part of the text:
  // positions on the first line are counted without it, as loadConfig's decoder does.
  const body = typeof text === 'string' ? text.replace(/^\uFEFF/, '') : text;
  const parsed = opts.format === 'json' ? readJson(body) : readYaml(body);
  if (parsed.fatal) throw new ConfigError(sortIssues(parsed.issues), source);
  const ctx: Context = { issues: [...parsed.issues], locate: parsed.locate };
  const config = validate(parsed.value, ctx);
  if (ctx.issues.length > 0) throw new ConfigError(sortIssues(ctx.issues), source);
  return config;
}

/** Reads, parses and validates a config file; `.json` files are parsed as JSON, anything else as YAML. */
export function loadConfig(path: string): Config {
  const text = readConfigFile(path);
  const format = extname(path).toLowerCase() === '.json' ? 'json' : 'yaml';
  return parseConfig(text, { format, source: path });
}

/**
 * Validates a plain object: a raw config with snake_case or camelCase keys, or a `Config`
 * that was already validated (the result is then deep-equal to the input).
 */
export function validateConfig(input: unknown, source?: string): Config {
  const ctx: Context = { issues: [], locate: () => undefined };
  const config = validate(input, ctx);
  if (ctx.issues.length > 0) throw new ConfigError(ctx.issues, source);
  return config;
}

// ---------------------------------------------------------------------------------------------
// Positions

interface Position {
  line: number;
  column: number;
}

/** Where a value sits in the source text: its key (if in a mapping), its value, and the value's raw text. */
interface Located {
  key?: Position;
  value?: Position;
  /** Source text of a scalar, to quote it back exactly (`042` rather than `42`). */
  text?: string;
}

/** Looks a formatted path up in the source; plain objects have no positions. */
type Locate = (path: string) => Located | undefined;

type Segment = string | number;
type Path = readonly Segment[];

const IDENTIFIER = /^[A-Za-z_$][\w$-]*$/;

function formatPath(path: Path): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else if (IDENTIFIER.test(segment)) out += out ? `.${segment}` : segment;
    else out += `[${JSON.stringify(segment)}]`;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Reading text

interface Parsed {
  value: unknown;
  locate: Locate;
  issues: ConfigIssue[];
  /** When true, `value` is unusable and `issues` say why. */
  fatal: boolean;
}

function failed(issues: ConfigIssue[]): Parsed {
  return { value: undefined, locate: () => undefined, issues, fatal: true };
}

/** Size and type checks shared by both formats; returns a refusal or undefined. */
function checkText(text: unknown): ConfigIssue | undefined {
  if (typeof text !== 'string') return { path: '', message: `config text must be a string (got ${describe(text)})` };
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > MAX_CONFIG_BYTES)
    return { path: '', message: `config is too large: ${formatSize(bytes)}; the limit is 5 MiB (${MAX_CONFIG_BYTES} bytes)` };
  return undefined;
}

function readYaml(input: string): Parsed {
  const refused = checkText(input);
  if (refused) return failed([refused]);
  const text = lfLineBreaks(input);
  const composed = composeYaml(text);
  if ('issues' in composed) return failed(composed.issues);
  const { doc, lines } = composed;
  const at = (offset: number): Position => toPosition(lines, offset);

  const problems = [...doc.errors, ...doc.warnings].map((e) => ({ path: '', ...at(e.pos[0]), message: yamlMessage(e) }));
  if (composed.truncated || problems.length > MAX_SYNTAX_ERRORS) {
    const rest = { path: '', message: `stopped after ${MAX_SYNTAX_ERRORS} YAML syntax errors` };
    return failed([...sortIssues(problems).slice(0, MAX_SYNTAX_ERRORS), rest]);
  }
  if (problems.length > 0) return failed(problems);
  const alias = firstAlias(doc);
  if (alias !== undefined) {
    const message = 'YAML aliases (*name) are not accepted: they allow "billion laughs" expansion; repeat the values instead';
    return failed([{ path: '', ...at(alias), message }]);
  }
  if (doc.contents === null) return failed([{ path: '', line: 1, column: 1, message: EMPTY_MESSAGE }]);

  const index = indexPositions(doc.contents, text, lines);
  let value: unknown;
  try {
    // maxAliasCount: 0 refuses aliases a second time, should one slip past the check above.
    value = doc.toJS({ maxAliasCount: 0 });
  } catch (error) {
    return failed([{ path: '', ...at(0), message: `cannot read the YAML: ${errorMessage(error)}` }]);
  }
  return { value, locate: (path) => index.located.get(path), issues: index.issues, fatal: false };
}

/**
 * YAML 1.2 breaks lines at CR LF, LF and a lone CR (old Mac files); the yaml package knows
 * only the first two. One character for one, so that offsets stay those of the input.
 */
function lfLineBreaks(text: string): string {
  return text.includes('\r') ? text.replace(/\r(?!\n)/g, '\n') : text;
}

/** The yaml package's message, reworded where it names the package's options rather than the problem. */
function yamlMessage(error: YAMLError): string {
  if (error.code === 'NON_STRING_KEY') return 'a key must be plain text, not a list or a mapping';
  return error.message;
}

/** A document, or the reason there is none. `truncated`: composing stopped at too many syntax errors. */
type Composed = { doc: Document.Parsed; lines: LineCounter; truncated: boolean } | { issues: ConfigIssue[] };

/**
 * Drives yaml's lexer, parser and composer by hand (as `parseAllDocuments` does internally) so
 * that hostile input is refused early: deep nesting (`[[[[...` or `- - - -...`, which can take
 * the yaml package minutes or exhaust the heap), a second document, or a flood of syntax errors.
 */
function composeYaml(text: string): Composed {
  const lines = new LineCounter();
  const parser = new Parser(lines.addNewLine);
  const composer = new Composer({ prettyErrors: false, uniqueKeys: false, stringKeys: true, version: '1.2' });
  const docs: Document.Parsed[] = [];
  const refuse = (offset: number, message: string): Composed => ({ issues: [{ path: '', ...toPosition(lines, offset), message }] });
  const nesting = new NestingGuard();
  let documents = 0;
  let syntaxErrors = 0;
  lines.addNewLine(0); // Parser.parse() does this itself; driving it by hand, we must

  const accept = (tokens: Iterable<CST.Token>): Composed | undefined => {
    for (const token of tokens) {
      if (token.type === 'document' && ++documents > 1) {
        return refuse(token.offset, 'config contains more than one YAML document (a `---` separator); put everything in one');
      }
      if (token.type === 'error' && ++syntaxErrors > MAX_SYNTAX_ERRORS) return undefined;
      docs.push(...composer.next(token));
    }
    return undefined;
  };
  for (const lexeme of new Lexer().lex(text)) {
    if (nesting.tooDeep(lexeme))
      return refuse(parser.offset, `nesting is deeper than ${MAX_NESTING} levels; a havoc config needs only a few`);
    const refused = accept(parser.next(lexeme));
    if (refused) return refused;
    if (syntaxErrors > MAX_SYNTAX_ERRORS) break;
  }
  const refused = accept(parser.end());
  if (refused) return refused;
  docs.push(...composer.end(true, text.length));
  const [doc] = docs;
  return doc ? { doc, lines, truncated: syntaxErrors > MAX_SYNTAX_ERRORS } : refuse(0, EMPTY_MESSAGE);
}

/**
 * Tracks nesting from lexemes: flow brackets, and block indicators (`-`, `?`, `:`) chained on
 * one line, which is how compact nesting (`- - - x`) is written. Counts only real indicators:
 * a lexeme following the scalar marker is scalar text.
 */
class NestingGuard {
  private flowDepth = 0;
  private lineIndicators = 0;
  private scalarNext = false;

  tooDeep(lexeme: string): boolean {
    if (this.scalarNext) {
      this.scalarNext = false;
      return false;
    }
    switch (lexeme) {
      case '\x1f': // yaml's SCALAR marker: the next lexeme is a scalar's source
        this.scalarNext = true;
        break;
      case '[':
      case '{':
        this.flowDepth += 1;
        break;
      case ']':
      case '}':
        this.flowDepth = Math.max(0, this.flowDepth - 1);
        break;
      case '\n':
      case '\r\n':
        this.lineIndicators = 0;
        break;
      case '-':
      case '?':
      case ':':
        if (this.flowDepth === 0) this.lineIndicators += 1;
        break;
    }
    return this.flowDepth > MAX_NESTING || this.lineIndicators > MAX_NESTING;
  }
}

function toPosition(lines: LineCounter, offset: number): Position {
  const { line, col } = lines.linePos(offset);
  return { line, column: col };
}

/** Offset of the first alias node in the document, if any. */
function firstAlias(doc: Document.Parsed): number | undefined {
  let offset: number | undefined;
  visit(doc, {
    Alias(_key, node) {
      offset = node.range?.[0] ?? 0;
      return visit.BREAK;
    },
  });
  return offset;
}

/** The deepest level a valid config reaches is 4; deeper nodes need no positions. */
const MAX_INDEXED_DEPTH = 8;

interface PositionIndex {
  located: Map<string, Located>;
  /** Duplicate keys, found here because the index sees every pair, before `toJS` keeps the last. */
  issues: ConfigIssue[];
}

function indexPositions(root: ParsedNode, text: string, lines: LineCounter): PositionIndex {
  const located = new Map<string, Located>();
  const issues: ConfigIssue[] = [];
  const at = (node: ParsedNode | null | undefined): Position | undefined => (node?.range ? toPosition(lines, node.range[0]) : undefined);
  const raw = (node: ParsedNode | null | undefined): string | undefined =>
    node && isScalar(node) && node.range ? text.slice(node.range[0], node.range[1]) : undefined;

  const walk = (node: ParsedNode | null, path: Path, depth: number): void => {
    if (!node || depth > MAX_INDEXED_DEPTH) return;
    if (isMap<ParsedNode, ParsedNode | null>(node)) {
      const seen = new Map<string, Position | undefined>();
      for (const pair of node.items) {
        const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
        const childPath = [...path, key];
        const keyAt = at(pair.key);
        if (seen.has(key)) {
          const first = seen.get(key);
          const where = first ? ` (first at line ${first.line})` : '';
          issues.push({ path: formatPath(childPath), ...keyAt, message: `duplicate key \`${key}\`${where}` });
        } else {
          seen.set(key, keyAt);
        }
        located.set(formatPath(childPath), compact({ key: keyAt, value: at(pair.value), text: raw(pair.value) }));
        walk(pair.value, childPath, depth + 1);
      }
    } else if (isSeq<ParsedNode>(node)) {
      node.items.forEach((item, i) => {
        located.set(formatPath([...path, i]), compact({ value: at(item), text: raw(item) }));
        walk(item, [...path, i], depth + 1);
      });
    }
  };
  located.set('', compact({ value: at(root) }));
  walk(root, [], 0);
  return { located, issues };
}

/** Drops undefined properties, so that positions stay absent rather than `undefined`. */
function compact<T extends object>(value: T): T {
  for (const key of Object.keys(value) as (keyof T)[]) if (value[key] === undefined) delete value[key];
  return value;
}

function readJson(text: string): Parsed {
  const refused = checkText(text);
  if (refused) return failed([refused]);
  if (/^[ \t\n\r]*$/.test(text)) return failed([{ path: '', line: 1, column: 1, message: EMPTY_MESSAGE }]);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    const found = findJsonError(text);
    const offset = found?.offset ?? text.length;
    const message = `invalid JSON: ${found?.message ?? (error instanceof Error ? error.message : String(error))}`;
    return failed([{ path: '', ...positionAt(text, offset), message }]);
  }
  // JSON is YAML, so yaml's parse of the same text gives positions and catches duplicate keys,
  // which JSON.parse silently resolves to the last. Best effort: no positions if yaml disagrees.
  const yamlText = lfLineBreaks(text);
  const composed = composeYaml(yamlText);
  // Nesting deeper than any config has is refused, as in YAML: a havoc config needs four levels.
  if ('issues' in composed) return failed(composed.issues);
  if (composed.doc.errors.length > 0 || composed.doc.contents === null) {
    return { value, locate: () => undefined, issues: [], fatal: false };
  }
  const index = indexPositions(composed.doc.contents, yamlText, composed.lines);
  return { value, locate: (path) => index.located.get(path), issues: index.issues, fatal: false };
}

/** Line breaks are CR LF, LF or a lone CR, as in YAML. */
function positionAt(text: string, offset: number): Position {
  let line = 1;
  let lineStart = 0;
  const breaks = /\r\n?|\n/g;
  for (let found = breaks.exec(text); found !== null && found.index < offset; found = breaks.exec(text)) {
    line += 1;
    lineStart = found.index + found[0].length;
  }
  return { line, column: offset - lineStart + 1 };
}

const JSON_WHITESPACE = /[ \t\n\r]*/y;
const JSON_NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
const JSON_LITERAL = /true|false|null/y;

/**
 * Where JSON.parse failed, and why. V8's messages differ between Node versions and some carry
 * no position at all, so this small scanner (iterative: any depth) finds the first error itself.
 */
function findJsonError(text: string): { offset: number; message: string } | undefined {
  type Expect = 'value' | 'first-value' | 'key' | 'first-key' | 'colon' | 'next' | 'end';
  const stack: string[] = [];
  let expect: Expect = 'value';
  let i = 0;
  const match = (pattern: RegExp): boolean => {
    pattern.lastIndex = i;
    if (!pattern.test(text)) return false;
    i = pattern.lastIndex;
    return true;
  };
  const afterValue = (): Expect => (stack.length > 0 ? 'next' : 'end');

  for (;;) {
    match(JSON_WHITESPACE);
    const char = text[i];
    if (char === undefined) return expect === 'end' ? undefined : { offset: i, message: 'unexpected end of input' };
    const start = i;
    switch (expect) {
      case 'value':
      case 'first-value':
        if (char === ']' && expect === 'first-value') {
          stack.pop();
          i += 1;
          expect = afterValue();
        } else if (char === '{' || char === '[') {
          stack.push(char);
          i += 1;
          expect = char === '{' ? 'first-key' : 'first-value';
        } else if (char === '"') {
          const bad = scanJsonString(text, i);
          if (typeof bad !== 'number') return bad;
          i = bad;
          expect = afterValue();
        } else if (match(JSON_NUMBER) || match(JSON_LITERAL)) {
          expect = afterValue();
        } else {
          return { offset: start, message: `unexpected ${JSON.stringify(char)} where a value was expected` };
        }
        break;
      case 'key':
      case 'first-key':
        if (char === '}' && expect === 'first-key') {
          stack.pop();
          i += 1;
          expect = afterValue();
        } else if (char === '"') {
          const bad = scanJsonString(text, i);
          if (typeof bad !== 'number') return bad;
          i = bad;
          expect = 'colon';
        } else {
          return { offset: start, message: `expected a property name in double quotes, found ${JSON.stringify(char)}` };
        }
        break;
      case 'colon':
        if (char !== ':') return { offset: start, message: `expected ":" after a property name, found ${JSON.stringify(char)}` };
        i += 1;
        expect = 'value';
        break;
      case 'next': {
        const open = stack[stack.length - 1];
        const close = open === '{' ? '}' : ']';
        if (char === ',') {
          i += 1;
          expect = open === '{' ? 'key' : 'value';
        } else if (char === close) {
          stack.pop();
          i += 1;
          expect = afterValue();
        } else {
          return { offset: start, message: `expected "," or "${close}", found ${JSON.stringify(char)}` };
        }
        break;
      }
      case 'end':
        return { offset: start, message: `unexpected ${JSON.stringify(char)} after the end of the JSON value` };
    }
  }
}

/** Returns the offset after the closing quote, or the error. */
function scanJsonString(text: string, start: number): number | { offset: number; message: string } {
  for (let i = start + 1; i < text.length; i += 1) {
    const code = text.charCodeAt(i);
    if (code === 0x22) return i + 1;
    if (code < 0x20) return { offset: i, message: 'unescaped control character (such as a newline) in a string' };
    if (code === 0x5c) {
      const escape = text[i + 1] ?? '';
      if (escape === 'u' && /^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) i += 5;
      else if ('"\\/bfnrt'.includes(escape) && escape !== '') i += 1;
      else return { offset: i, message: `invalid escape "\\${escape}" in a string` };
    }
  }
  return { offset: start, message: 'unterminated string' };
}

/** Reads at most the limit plus one byte, from one open file: no race between stat and read. */
function readConfigFile(path: string): string {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (error) {
    throw new ConfigError([{ path: '', message: `cannot open config file: ${errorMessage(error)}` }], path, { cause: error });
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw new ConfigError([{ path: '', message: 'config path is not a regular file' }], path);
    if (stat.size > MAX_CONFIG_BYTES) {
      throw new ConfigError(
        [{ path: '', message: `config file is too large: ${formatSize(stat.size)}; the limit is 5 MiB (${MAX_CONFIG_BYTES} bytes)` }],
        path,
      );
    }
    // One byte more than the limit: a file that grew after fstat is caught, not truncated.
    const buffer = Buffer.allocUnsafe(MAX_CONFIG_BYTES + 1);
    let length = 0;
    while (length < buffer.length) {
      const n = readSync(fd, buffer, length, buffer.length - length, null);
      if (n === 0) break;
      length += n;
    }
    if (length > MAX_CONFIG_BYTES) {
      throw new ConfigError(
        [{ path: '', message: `config file is too large: it grew past the 5 MiB limit (${MAX_CONFIG_BYTES} bytes) while being read` }],
        path,
      );
    }
    return decodeUtf8(buffer.subarray(0, length), path);
  } finally {
    closeSync(fd);
  }
}

const BYTE_ORDER_MARKS: readonly [bytes: readonly number[], encoding: string][] = [
  [[0xff, 0xfe, 0x00, 0x00], 'UTF-32 LE'],
  [[0x00, 0x00, 0xfe, 0xff], 'UTF-32 BE'],
  [[0xff, 0xfe], 'UTF-16 LE'],
  [[0xfe, 0xff], 'UTF-16 BE'],
];

/** UTF-8, with or without a byte order mark; anything else is refused with where and why. */
function decodeUtf8(bytes: Uint8Array, path: string): string {
  const refuse = (message: string, at?: number, cause?: unknown): never => {
    const position = at === undefined ? {} : bytePosition(bytes, at);
    throw new ConfigError([{ path: '', ...position, message }], path, cause === undefined ? undefined : { cause });
  };
  const mark = BYTE_ORDER_MARKS.find(([bom]) => bom.length <= bytes.length && bom.every((b, i) => bytes[i] === b));
  if (mark) {
    refuse(`config file is ${mark[1]} text (it starts with the byte order mark ${hexBytes(mark[0])}); save it as UTF-8`);
  }
  const nul = bytes.indexOf(0);
  if (nul !== -1) {
    // Text editors never write NUL; UTF-16 without a byte order mark has one in every other byte.
    refuse('config file contains a NUL byte: it is binary, or UTF-16 text without a byte order mark; save it as UTF-8', nul);
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch (error) {
    const bad = firstInvalidUtf8(bytes);
    return refuse(
      `config file is not valid UTF-8 text (invalid byte ${hexBytes(bytes.subarray(bad, bad + 1))}); save it as UTF-8`,
      bad,
      error,
    );
  }
}

/** Offset of the first byte that does not start a well-formed UTF-8 sequence. */
function firstInvalidUtf8(bytes: Uint8Array): number {
  let i = 0;
  while (i < bytes.length) {
    const [length, low, high] = utf8Lead(bytes[i] ?? 0);
    if (length === 0 || i + length > bytes.length) return i;
    for (let k = 1; k < length; k += 1) {
      const next = bytes[i + k] ?? 0;
      // The second byte's range excludes overlong forms and surrogates; later ones are 80–BF.
      if (next < (k === 1 ? low : 0x80) || next > (k === 1 ? high : 0xbf)) return i;
    }
    i += length;
  }
  return bytes.length;
}

/** Length of the sequence a lead byte starts, and the range of its second byte (RFC 3629); length 0: not a lead byte. */
function utf8Lead(b: number): [length: number, low: number, high: number] {
  if (b < 0x80) return [1, 0, 0];
  if (b >= 0xc2 && b <= 0xdf) return [2, 0x80, 0xbf];
  if (b === 0xe0) return [3, 0xa0, 0xbf];
  if (b === 0xed) return [3, 0x80, 0x9f];
  if (b >= 0xe1 && b <= 0xef) return [3, 0x80, 0xbf];
  if (b === 0xf0) return [4, 0x90, 0xbf];
  if (b >= 0xf1 && b <= 0xf3) return [4, 0x80, 0xbf];
  if (b === 0xf4) return [4, 0x80, 0x8f];
  return [0, 0, 0];
}

function hexBytes(bytes: ArrayLike<number>): string {
  return Array.from(bytes, (b) => b.toString(16).toUpperCase().padStart(2, '0')).join(' ');
}

/** Line and column (UTF-16 units, as everywhere) of a byte offset into valid-UTF-8-so-far bytes. */
function bytePosition(bytes: Uint8Array, offset: number): Position {
  const before = new TextDecoder('utf-8').decode(bytes.subarray(0, offset));
  return positionAt(before, before.length);
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function formatSize(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB (${bytes} bytes)`;
}

/** Document order; issues without a position last. The sort is stable, so ties keep validation order. */
function sortIssues(issues: ConfigIssue[]): ConfigIssue[] {
  const line = (issue: ConfigIssue): number => issue.line ?? Number.MAX_SAFE_INTEGER;
  return [...issues].sort((a, b) => line(a) - line(b) || (a.column ?? 0) - (b.column ?? 0));
}

// ---------------------------------------------------------------------------------------------
// Validation

interface Context {
  readonly issues: ConfigIssue[];
  readonly locate: Locate;
}

/** Which end of a `key: value` a problem points at. */
type Part = 'key' | 'value';

/** Records a problem at `path`; positions fall back to the nearest enclosing node that has one. */
function report(ctx: Context, path: Path, message: string, part: Part = 'value'): void {
  const issue: ConfigIssue = { path: formatPath(path), message };
  for (let p = path; ; p = p.slice(0, -1)) {
    const found = ctx.locate(formatPath(p));
    const position = found && (p === path && part === 'key' ? (found.key ?? found.value) : (found.value ?? found.key));
    if (position) {
      issue.line = position.line;
      issue.column = position.column;
      break;
    }
    if (p.length === 0) break;
  }
  ctx.issues.push(issue);
}

/** A field as found in the input: the spelling the user chose (for paths) and its value. */
interface Field {
  path: Path;
  value: unknown;
}

interface Schema {
  readonly level: string;
  /** snake_case names, in output order. */
  readonly fields: readonly string[];
  /** Every accepted spelling → its snake_case name. */
  readonly spellings: ReadonlyMap<string, string>;
}

function camelCase(snake: string): string {
  return snake.replace(/_([a-z])/g, (_m, letter: string) => letter.toUpperCase());
}

function schema(level: string, fields: readonly string[], extra: Record<string, string> = {}): Schema {
  const spellings = new Map<string, string>();
  for (const name of fields) {
    spellings.set(name, name);
    spellings.set(camelCase(name), name);
  }
  for (const [spelling, name] of Object.entries(extra)) spellings.set(spelling, name);
  return { level, fields, spellings };
}

const TOP_SCHEMA = schema('top-level', ['version', 'warmup_duration', 'enable_default_ignored', 'ignored_commands', 'seed', 'policies']);
const POLICY_SCHEMA = schema(
  'policy',
  [
    'name',
    'type',
    'target',
    'latency_chance',
    'latency_duration',
    'error_chance',
    'error_code',
    'error_body',
    'match_headers',
    'drop_connection',
    'stream_roll_mode',
    'throttle_threshold',
    'ram_chunk_mb',
    'ram_interval',
    'cpu_cores',
    'cpu_percent',
    'ram_max_mb',
    'duration',
  ],
  // Go's usual initialism style, in case a pastaay file spells it so.
  { ramChunkMB: 'ram_chunk_mb', ramMaxMB: 'ram_max_mb' },
);

function isRecord(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/**
 * Resolves the keys of a mapping against a schema: unknown keys and a field given in two
 * spellings are reported; `undefined` values count as absent (plain objects), null is kept.
 */
function readFields(input: Record<string, unknown>, path: Path, own: Schema, other: Schema, ctx: Context): Map<string, Field> {
  const fields = new Map<string, Field>();
  for (const key of Object.keys(input)) {
    const value = input[key];
    if (value === undefined) continue;
    const name = own.spellings.get(key);
    if (name === undefined) {
      report(ctx, [...path, key], unknownKeyMessage(key, own, other), 'key');
      continue;
    }
    const previous = fields.get(name);
    if (previous) {
      const first = previous.path[previous.path.length - 1];
      report(ctx, [...path, key], `\`${String(first)}\` and \`${key}\` are the same field; give it once`, 'key');
      continue;
    }
    fields.set(name, { path: [...path, key], value });
  }
  return fields;
}

function unknownKeyMessage(key: string, own: Schema, other: Schema): string {
  const base = key === '' ? 'unknown key "" (the key is empty)' : `unknown key \`${key}\``;
  if (other.spellings.has(key)) return `${base}: it is a ${other.level} field, not a ${own.level} one`;
  const camel = /[A-Z]/.test(key) && !key.includes('_');
  const candidates = own.fields.map((name) => (camel ? camelCase(name) : name));
  const suggestion = closest(key, candidates);
  return suggestion ? `${base}; did you mean \`${suggestion}\`?` : base;
}

/** Optimal-string-alignment distance (Damerau-Levenshtein with adjacent transpositions). */
function editDistance(a: string, b: string): number {
  let before: number[] = [];
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i += 1) {
    const current = [i];
    for (let j = 1; j <= b.length; j += 1) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, (previous[j - 1] ?? 0) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, (before[j - 2] ?? 0) + 1);
      current.push(best);
    }
    before = previous;
    previous = current;
  }
  return previous[b.length] ?? 0;
}

/** The candidate closest to `input`, ignoring case, `_` and `-`, if close enough to be a typo. */
function closest(input: string, candidates: readonly string[]): string | undefined {
  const normalize = (s: string): string => s.toLowerCase().replace(/[-_\s]/g, '');
  const target = normalize(input);
  const limit = target.length <= 4 ? 1 : 2;
  let best: string | undefined;
  let bestDistance = limit + 1;
  for (const candidate of candidates) {
    const distance = editDistance(target, normalize(candidate));
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

/** `string "0.5"`, `boolean true`, `2`, `a list`: for "(got ...)" in messages. */
function describe(value: unknown): string {
  if (typeof value === 'string') return `string ${quote(value)}`;
  if (typeof value === 'number') return String(value);
  if (typeof value === 'boolean') return `boolean ${value}`;
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (isRecord(value)) return 'a mapping';
  if (typeof value === 'object') return `an object of type ${value.constructor?.name ?? 'unknown'}`;
  return typeof value;
}

const NUMBER_LITERAL = /^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$/;

/**
 * `describe` of a field's value, except that a number literal the value does not hold exactly
 * (`1e400` read as Infinity, `9007199254740993` as ...992) is quoted as the user wrote it.
 */
function got(field: Field, ctx: Context): string {
  const { value } = field;
  if (typeof value === 'number' && (!Number.isFinite(value) || (Number.isInteger(value) && !Number.isSafeInteger(value)))) {
    const text = ctx.locate(formatPath(field.path))?.text?.trim();
    if (text !== undefined && NUMBER_LITERAL.test(text)) return text;
  }
  return describe(value);
}

function quote(text: string): string {
  return JSON.stringify(text.length > 60 ? `${text.slice(0, 57)}...` : text);
}

// --- top level -------------------------------------------------------------------------------

function validate(input: unknown, ctx: Context): Config {
  if (!isRecord(input)) {
    report(ctx, [], `config must be a mapping with at least \`version: 1\` (got ${describe(input)})`);
    return { version: 1, enableDefaultIgnored: true, ignoredCommands: {}, policies: [] };
  }
  const fields = readFields(input, [], TOP_SCHEMA, POLICY_SCHEMA, ctx);
  const field = (name: string): Field | undefined => fields.get(name);

  checkVersion(field('version'), ctx);
  const warmup = field('warmup_duration');
  const warmupDuration = present(warmup) ? duration(warmup, MAX_WARMUP_MS, ctx) : undefined;
  const seed = checkSeed(field('seed'), ctx);
  const config: Config = {
    version: 1,
    ...(warmupDuration === undefined ? {} : { warmupDuration }),
    enableDefaultIgnored: present(field('enable_default_ignored')) ? boolean(field('enable_default_ignored'), ctx) : true,
    ignoredCommands: ignoredCommands(field('ignored_commands'), ctx),
    ...(seed === undefined ? {} : { seed }),
    policies: policies(field('policies'), ctx),
  };
  if (ctx.issues.length === 0) compileCheck(config, ctx);
  return config;
}

/**
 * What only the engine can tell, such as a SQL target that is not a valid regex for the Rust
 * `regex` crate: the core compiles the set without applying it. Its paths use the
 * canonical field names, which for `target` is also what the user wrote.
 */
function compileCheck(config: Config, ctx: Context): void {
  for (const issue of native.checkConfig(JSON.stringify(config))) {
    const path: Segment[] = [];
    for (const [, name, index] of issue.path.matchAll(/([^.[\]]+)|\[(\d+)\]/g)) {
      path.push(index === undefined ? name! : Number(index));
    }
    report(ctx, path, issue.message);
  }
}

/** Absent, or null (an empty YAML value): the field takes its default, as in pastaay. */
function present(field: Field | undefined): field is Field & { value: NonNullable<unknown> } {
  return field !== undefined && field.value !== null;
}

function checkVersion(field: Field | undefined, ctx: Context): void {
  if (!present(field)) {
    report(ctx, field?.path ?? ['version'], 'is required and must be 1');
  } else if (field.value !== 1) {
    const hint = typeof field.value === 'string' ? 'the number 1' : '1';
    report(ctx, field.path, `must be ${hint} (got ${got(field, ctx)})`);
  }
}

function checkSeed(field: Field | undefined, ctx: Context): number | undefined {
  if (!present(field)) return undefined;
  const { value } = field;
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return value;
  report(ctx, field.path, `must be an integer in [0, ${Number.MAX_SAFE_INTEGER}] (got ${got(field, ctx)})`);
  return undefined;
}

const SQL_DATABASES = /^(postgres(ql)?|pg|mysql|mariadb|sqlite|mssql)$/i;

const PROTOCOL_SPELLINGS: ReadonlyMap<string, Protocol> = new Map<string, Protocol>([
  ...PROTOCOLS.map((p): [string, Protocol] => [p, p]),
  ['mongodb', 'mongo'],
]);

function ignoredCommands(field: Field | undefined, ctx: Context): Partial<Record<Protocol, string[]>> {
  const out: Partial<Record<Protocol, string[]>> = {};
  if (!present(field)) return out;
  if (!isRecord(field.value)) {
    report(ctx, field.path, `must be a mapping of protocol to a list of prefixes (got ${got(field, ctx)})`);
    return out;
  }
  const seen = new Map<Protocol, string>();
  for (const [key, value] of Object.entries(field.value)) {
    if (value === undefined) continue;
    const path = [...field.path, key];
    const protocol = PROTOCOL_SPELLINGS.get(key);
    if (protocol === undefined) {
      report(ctx, path, unknownValueMessage('protocol', key, [...PROTOCOL_SPELLINGS.keys()]), 'key');
      continue;
    }
    const first = seen.get(protocol);
    if (first !== undefined) {
      report(ctx, path, `\`${first}\` and \`${key}\` are the same protocol; give it once`, 'key');
      continue;
    }
    seen.set(protocol, key);
    out[protocol] = prefixes({ path, value }, ctx);
  }
  return out;
}

function prefixes(field: Field, ctx: Context): string[] {
  if (field.value === null) return [];
  if (!Array.isArray(field.value)) {
    report(ctx, field.path, `must be a list of command prefixes (got ${got(field, ctx)})`);
    return [];
  }
  const out: string[] = [];
  field.value.forEach((item: unknown, i) => {
    if (typeof item !== 'string' || item === '') {
      report(ctx, [...field.path, i], `must be a non-empty string (got ${describe(item)})`);
    } else if (wellFormed(item, [...field.path, i], ctx)) {
      out.push(item);
    }
  });
  return out;
}

/** `unknown protocol "postgres"; ...` with a hint: SQL databases all go by `sql`, else the closest name. */
function unknownValueMessage(what: string, value: string, candidates: readonly string[]): string {
  const base = `unknown ${what} ${quote(value)}`;
  if (SQL_DATABASES.test(value)) return `${base}; use \`sql\` for every SQL database`;
  const suggestion = closest(value, candidates);
  const hint = suggestion ? `; did you mean \`${suggestion}\`?` : '';
  return `${base}; expected one of ${PROTOCOLS.join(', ')}${hint}`;
}

function policies(field: Field | undefined, ctx: Context): Policy[] {
  if (!present(field)) return [];
  const { value, path } = field;
  if (!Array.isArray(value)) {
    report(ctx, path, `must be a list of policies (got ${got(field, ctx)})`);
    return [];
  }
  if (value.length > MAX_POLICIES) {
    report(ctx, path, `has ${value.length} policies; at most ${MAX_POLICIES} are allowed`, 'key');
  }
  const out: Policy[] = [];
  const names = new Map<string, Path>();
  value.forEach((item: unknown, i) => {
    const policy = validatePolicy(item, [...path, i], ctx);
    if (!policy) return;
    checkUniqueName(policy.name, [...path, i], names, ctx);
    out.push(policy);
  });
  return out;
}

/** Names identify policies across sources and reloads, so a duplicate is always a mistake. */
function checkUniqueName(name: string, path: Path, names: Map<string, Path>, ctx: Context): void {
  if (name === '') return;
  const first = names.get(name);
  if (!first) {
    names.set(name, path);
    return;
  }
  // `name` is spelled the same in both styles, so the path of the first one is known.
  const line = ctx.locate(formatPath([...first, 'name']))?.value?.line;
  const where = `${formatPath(first)}${line === undefined ? '' : `, line ${line}`}`;
  report(ctx, [...path, 'name'], `duplicate policy name ${quote(name)} (first defined at ${where})`);
}

// --- policies --------------------------------------------------------------------------------

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

function validatePolicy(input: unknown, path: Path, ctx: Context): Policy | undefined {
  if (!isRecord(input)) {
    report(ctx, path, `must be a mapping with at least \`name\` and \`type\` (got ${describe(input)})`);
    return undefined;
  }
  const fields = readFields(input, path, POLICY_SCHEMA, TOP_SCHEMA, ctx);
  const field = (name: string): Field | undefined => fields.get(name);
  const type = policyType(field('type'), path, ctx);
  return {
    name: policyName(field('name'), path, ctx),
    type: type ?? 'http',
    target: optionalString(field('target'), ctx) || 'all',
    latencyChance: chance(field('latency_chance'), ctx),
    latencyDuration: present(field('latency_duration')) ? duration(field('latency_duration'), MAX_LATENCY_MS, ctx) : 0,
    errorChance: chance(field('error_chance'), ctx),
    errorCode: errorCode(field('error_code'), type, ctx),
    errorBody: optionalString(field('error_body'), ctx),
    matchHeaders: matchHeaders(field('match_headers'), ctx),
    dropConnection: present(field('drop_connection')) ? boolean(field('drop_connection'), ctx) : false,
    streamRollMode: streamRollMode(field('stream_roll_mode'), ctx),
    throttleThreshold: integer(field('throttle_threshold'), 0, MAX_THROTTLE, ctx),
    ramChunkMb: integer(field('ram_chunk_mb'), 0, MAX_RAM_CHUNK_MB, ctx),
    ramInterval: ramInterval(field('ram_interval'), ctx),
    ...sabotageFields({
      cpuCores: integer(field('cpu_cores'), 0, MAX_CPU_CORES, ctx),
      cpuPercent: cpuPercent(field('cpu_percent'), ctx),
      ramMaxMb: integer(field('ram_max_mb'), 0, MAX_RAM_MB, ctx),
      duration: present(field('duration')) ? duration(field('duration'), MAX_SABOTAGE_MS, ctx) : 0,
    }),
  };
}

type SabotageFields = Required<Pick<Policy, 'cpuCores' | 'cpuPercent' | 'ramMaxMb' | 'duration'>>;

/** Fields added after the first release are left out at their default (0), so that policies not using them validate as before. */
function sabotageFields(fields: SabotageFields): Partial<SabotageFields> {
  const out: Partial<SabotageFields> = {};
  for (const key of Object.keys(fields) as (keyof SabotageFields)[]) if (fields[key] !== 0) out[key] = fields[key];
  return out;
}

/** A duty cycle in percent; 0 (as a validated config spells "unset") means the default. */
function cpuPercent(field: Field | undefined, ctx: Context): number {
  if (!present(field)) return 0;
  const { value } = field;
  if (typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= 100) return value;
  report(ctx, field.path, `must be an integer percentage in [1, 100], or 0 for the default of 100 (got ${got(field, ctx)})`);
  return 0;
}

function policyName(field: Field | undefined, path: Path, ctx: Context): string {
  if (!present(field)) {
    report(ctx, field?.path ?? [...path, 'name'], 'is required: every policy needs a unique name');
    return '';
  }
  if (typeof field.value !== 'string' || field.value.trim() === '') {
    report(ctx, field.path, `must be a non-empty string (got ${got(field, ctx)})`);
    return '';
  }
  const problem = nameProblem(field.value);
  if (problem === undefined) return field.value;
  report(ctx, field.path, `must be printable text of at most ${MAX_NAME_CHARS} characters (${problem})`);
  return '';
}

/**
 * Why a policy name is not printable text of at most {@link MAX_NAME_CHARS} characters, or
 * undefined. Names become Prometheus label values and console text, so control characters
 * (C0, DEL, C1), line and paragraph separators and lone surrogates are refused; the same rule
 * is in the Rust core's `Config::check`. Characters and indexes count code points.
 */
function nameProblem(name: string): string | undefined {
  let index = 0;
  for (const char of name) {
    const code = char.codePointAt(0) ?? 0;
    if (code <= 0x1f || (code >= 0x7f && code <= 0x9f)) return `found control character ${codePoint(code)} at index ${index}`;
    if (code === 0x2028 || code === 0x2029) return `found line break ${codePoint(code)} at index ${index}`;
    if (code >= 0xd800 && code <= 0xdfff) return `found lone surrogate ${codePoint(code)} at index ${index}`;
    index += 1;
  }
  return index > MAX_NAME_CHARS ? `it has ${index} characters` : undefined;
}

function codePoint(code: number): string {
  return `U+${code.toString(16).toUpperCase().padStart(4, '0')}`;
}

/** Index (in code points) of the first lone surrogate of `text`, which no UTF-8 text can hold. */
function loneSurrogate(text: string): { index: number; code: number } | undefined {
  let index = 0;
  for (const char of text) {
    const code = char.codePointAt(0) ?? 0;
    if (code >= 0xd800 && code <= 0xdfff) return { index, code };
    index += 1;
  }
  return undefined;
}

/** A string the core can hold: well-formed UTF-16 (no lone surrogate); otherwise reported. */
function wellFormed(text: string, path: Path, ctx: Context): boolean {
  const lone = loneSurrogate(text);
  if (lone === undefined) return true;
  report(ctx, path, `must be valid Unicode text (found lone surrogate ${codePoint(lone.code)} at index ${lone.index})`);
  return false;
}

function policyType(field: Field | undefined, path: Path, ctx: Context): Protocol | undefined {
  const allowed = PROTOCOLS.join(', ');
  if (!present(field)) {
    report(ctx, field?.path ?? [...path, 'type'], `is required: one of ${allowed}`);
    return undefined;
  }
  const { value } = field;
  const protocol = typeof value === 'string' ? PROTOCOL_SPELLINGS.get(value) : undefined;
  if (protocol) return protocol;
  if (typeof value !== 'string') {
    report(ctx, field.path, `must be one of ${allowed} (got ${got(field, ctx)})`);
  } else {
    report(ctx, field.path, unknownValueMessage('type', value, [...PROTOCOL_SPELLINGS.keys()]));
  }
  return undefined;
}

function optionalString(field: Field | undefined, ctx: Context): string {
  if (!present(field)) return '';
  if (typeof field.value === 'string') return wellFormed(field.value, field.path, ctx) ? field.value : '';
  report(ctx, field.path, `must be a string (got ${got(field, ctx)})`);
  return '';
}

function boolean(field: Field | undefined, ctx: Context): boolean {
  if (!present(field)) return false;
  if (typeof field.value === 'boolean') return field.value;
  report(ctx, field.path, `must be true or false (got ${got(field, ctx)})`);
  return false;
}

function chance(field: Field | undefined, ctx: Context): number {
  if (!present(field)) return 0;
  const { value } = field;
  if (typeof value === 'number' && value >= 0 && value <= 1) return value; // NaN fails both comparisons
  report(ctx, field.path, `must be a number in [0, 1] (got ${got(field, ctx)})`);
  return 0;
}

function integer(field: Field | undefined, min: number, max: number, ctx: Context): number {
  if (!present(field)) return 0;
  const { value } = field;
  if (typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max) return value;
  report(ctx, field.path, `must be an integer in [${min}, ${max}] (got ${got(field, ctx)})`);
  return 0;
}

/** Codes per protocol; 0 stays 0 and means "the protocol's default" (HTTP 500, gRPC 14). */
function errorCode(field: Field | undefined, type: Protocol | undefined, ctx: Context): number {
  if (!present(field)) return 0;
  const { value } = field;
  const [valid, expected] =
    type === 'http'
      ? [(c: number) => c === 0 || (c >= 100 && c <= 599), '0 or an HTTP status code in [100, 599]']
      : type === 'grpc'
        ? [(c: number) => c >= 0 && c <= 16, 'a gRPC status code in [0, 16]']
        : [(c: number) => c >= 0 && c <= 65535, 'an integer in [0, 65535]'];
  if (typeof value === 'number' && Number.isInteger(value) && valid(value)) return value;
  report(ctx, field.path, `must be ${expected} (got ${got(field, ctx)})`);
  return 0;
}

/** A Go-style duration string or a number of milliseconds, in [0, max]. */
function duration(field: Field | undefined, maxMs: number, ctx: Context): number {
  if (!present(field)) return 0;
  const { value, path } = field;
  const shown = typeof value === 'string' ? quote(value) : got(field, ctx);
  if (typeof value !== 'string' && typeof value !== 'number') {
    report(ctx, path, `must be ${DURATION_EXAMPLE} (got ${shown})`);
    return 0;
  }
  let ms: number;
  try {
    ms = parseDuration(value);
  } catch (error) {
    // Infinity, or a well-formed string past Go's ~292 years: out of range, not malformed.
    if ((typeof value === 'number' && !Number.isNaN(value)) || /too large/.test(errorMessage(error))) {
      report(ctx, path, `must be a duration between 0 and ${formatHours(maxMs)} (got ${shown})`);
      return 0;
    }
    const unitless = typeof value === 'string' && /^\s*[-+]?[\d.]+\s*$/.test(value);
    const hint = unitless ? `; a number in quotes needs a unit, e.g. "${value.trim()}ms"` : '';
    report(ctx, path, `must be ${DURATION_EXAMPLE} (got ${shown})${hint}`);
    return 0;
  }
  if (ms >= 0 && ms <= maxMs) return ms;
  report(ctx, path, `must be a duration between 0 and ${formatHours(maxMs)} (got ${shown})`);
  return 0;
}

function formatHours(ms: number): string {
  return `${ms / HOUR_MS}h`;
}

/** pastaay's rule: an interval of 0 (or none) means one second. */
function ramInterval(field: Field | undefined, ctx: Context): number {
  const ms = present(field) ? duration(field, MAX_RAM_INTERVAL_MS, ctx) : 0;
  return ms === 0 ? DEFAULT_RAM_INTERVAL_MS : ms;
}

function streamRollMode(field: Field | undefined, ctx: Context): StreamRollMode {
  if (!present(field)) return '';
  const { value } = field;
  const mode = STREAM_ROLL_MODES.find((m) => m === value);
  if (mode !== undefined) return mode;
  const allowed = STREAM_ROLL_MODES.map((m) => JSON.stringify(m));
  const suggestion =
    typeof value === 'string'
      ? closest(
          value,
          STREAM_ROLL_MODES.filter((m) => m !== ''),
        )
      : undefined;
  const hint = suggestion ? `; did you mean \`${suggestion}\`?` : '';
  report(ctx, field.path, `must be one of ${allowed.join(', ')} (got ${got(field, ctx)})${hint}`);
  return '';
}

/** Header names are case-insensitive, so they are stored lowercase; values must be strings. */
function matchHeaders(field: Field | undefined, ctx: Context): Record<string, string> {
  const out: Record<string, string> = {};
  if (!present(field)) return out;
  if (!isRecord(field.value)) {
    report(ctx, field.path, `must be a mapping of header name to value (got ${got(field, ctx)})`);
    return out;
  }
  const seen = new Map<string, string>();
  for (const [name, value] of Object.entries(field.value)) {
    if (value === undefined) continue;
    const path = [...field.path, name];
    const lower = name.toLowerCase();
    const first = seen.get(lower);
    if (!HEADER_NAME.test(name)) {
      report(ctx, path, `${quote(name)} is not a valid HTTP header name`, 'key');
    } else if (first !== undefined) {
      report(ctx, path, `header \`${name}\` is given twice (names are case-insensitive; first as \`${first}\`)`, 'key');
    } else if (typeof value !== 'string') {
      seen.set(lower, name);
      report(ctx, path, headerValueMessage(value, ctx.locate(formatPath(path))?.text));
    } else {
      seen.set(lower, name);
      // defineProperty: a header literally named __proto__ must not touch the prototype.
      if (wellFormed(value, path, ctx)) Object.defineProperty(out, lower, { value, enumerable: true, writable: true, configurable: true });
    }
  }
  return out;
}

function headerValueMessage(value: unknown, sourceText: string | undefined): string {
  const base = `must be a string (got ${describe(value)})`;
  if (typeof value !== 'number' && typeof value !== 'boolean') return base;
  return `${base}; header values are compared as text, so quote it: "${sourceText ?? String(value)}"`;
}
