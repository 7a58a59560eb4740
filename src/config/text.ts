/**
 * Reading configuration text, YAML or JSON: syntax, size, and a position index on the side.
 *
 * The value comes out plain (as `toJS` gives it); the index says where each path is, so that
 * findings about the value can be given a line and a column.
 */
import { Composer, Lexer, LineCounter, Parser, isMap, isScalar, isSeq, visit } from 'yaml';
import type { CST, Document, ParsedNode, YAMLError } from 'yaml';

import type { ConfigIssue } from '../errors.js';
import { findJsonError } from './json-syntax.js';
import { errorMessage, formatPath, formatSize, positionAt, sortIssues } from './position.js';
import type { Locate, Located, Path, Position } from './position.js';

/** pastaay's limit on a config, for text and files alike. */
export const MAX_CONFIG_BYTES = 5 * 1024 * 1024;
/** A config needs four levels; the yaml parser can be driven into minutes of work or an OOM far below this. */
const MAX_NESTING = 64;
/** Past this many syntax errors the rest are noise, and composing them costs time and memory. */
const MAX_SYNTAX_ERRORS = 20;
const EMPTY_MESSAGE = 'config is empty; it needs at least `version: 1`';

export interface Parsed {
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
  if (typeof text !== 'string') return { path: '', message: `config text must be a string (got ${text === null ? 'null' : typeof text})` };
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > MAX_CONFIG_BYTES)
    return { path: '', message: `config is too large: ${formatSize(bytes)}; the limit is 5 MiB (${MAX_CONFIG_BYTES} bytes)` };
  return undefined;
}

export function readYaml(input: string): Parsed {
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

export function readJson(text: string): Parsed {
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
