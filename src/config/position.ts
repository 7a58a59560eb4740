/**
 * Where things are in a configuration's text: line and column of an offset, paths formatted
 * as in messages, and issues put in document order.
 */
import type { ConfigIssue } from '../errors.js';

export interface Position {
  line: number;
  column: number;
}

/** Where a value sits in the source text: its key (if in a mapping), its value, and the value's raw text. */
export interface Located {
  key?: Position;
  value?: Position;
  /** Source text of a scalar, to quote it back exactly (`042` rather than `42`). */
  text?: string;
}

/** Looks a formatted path up in the source; plain objects have no positions. */
export type Locate = (path: string) => Located | undefined;

export type Segment = string | number;
export type Path = readonly Segment[];

const IDENTIFIER = /^[A-Za-z_$][\w$-]*$/;

/** One more step of a formatted path: `policies` + 0 → `policies[0]`, + `a b` → `policies[0]["a b"]`. */
export function formatStep(prefix: string, segment: Segment): string {
  if (typeof segment === 'number') return `${prefix}[${segment}]`;
  if (IDENTIFIER.test(segment)) return prefix ? `${prefix}.${segment}` : segment;
  return `${prefix}[${JSON.stringify(segment)}]`;
}

/** `policies[2].latency_duration`, `match_headers["bad name"]`; `''` for the document itself. */
export function formatPath(path: Path): string {
  return path.reduce<string>(formatStep, '');
}

/** Line and column of an offset; line breaks are CR LF, LF or a lone CR, as in YAML. */
export function positionAt(text: string, offset: number): Position {
  let line = 1;
  let lineStart = 0;
  const breaks = /\r\n?|\n/g;
  for (let found = breaks.exec(text); found !== null && found.index < offset; found = breaks.exec(text)) {
    line += 1;
    lineStart = found.index + found[0].length;
  }
  return { line, column: offset - lineStart + 1 };
}

/** Document order; issues without a position last. The sort is stable, so ties keep validation order. */
export function sortIssues(issues: readonly ConfigIssue[]): ConfigIssue[] {
  const line = (issue: ConfigIssue): number => issue.line ?? Number.MAX_SAFE_INTEGER;
  return [...issues].sort((a, b) => line(a) - line(b) || (a.column ?? 0) - (b.column ?? 0));
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** `5.0 MiB (5242881 bytes)` */
export function formatSize(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB (${bytes} bytes)`;
}
