/**
 * What every command shares about its output: exit codes, colour (only on a TTY, never with
 * `NO_COLOR`), JSON, durations and tables.
 */
import { formatDuration } from '../duration.js';

/** 0 ok; 1 invalid input, usage error, or a control plane unreachable or refusing; 2 an SLO breached or a plan over its risk limit. */
export const EXIT = { ok: 0, input: 1, breach: 2 } as const;

/** A failure the CLI reports as one message and an exit code, without a stack trace. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = EXIT.input,
    /** A list of `file:line:col: ...` lines, printed as they are (no `havoc:` prefix) for editors and CI to read. */
    readonly listing = false,
  ) {
    super(message);
  }
}

/** Colour is on for a TTY, unless `NO_COLOR` is set (to anything but ''); `FORCE_COLOR` turns it on elsewhere. */
export function colourEnabled(stream: NodeJS.WriteStream = process.stdout): boolean {
  const env = process.env;
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  if (env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== '' && env.FORCE_COLOR !== '0') return true;
  return stream.isTTY === true;
}

const CODES = { red: 31, green: 32, yellow: 33, cyan: 36, dim: 2, bold: 1 } as const;
export type Colour = keyof typeof CODES;

/** `text` in `colour` when colour is enabled on stdout, else unchanged. */
export function paint(colour: Colour, text: string): string {
  return colourEnabled() ? `\u001b[${CODES[colour]}m${text}\u001b[0m` : text;
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

export function line(text = ''): void {
  process.stdout.write(`${text}\n`);
}

/** A duration for people: `850ms`, `1.5s`, `2m30s`; `-` for none. */
export function showMs(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '-';
  if (ms < 1000) return `${Math.round(ms)}ms`;
  // Tenths of a second are enough for people: 1.2s, 2m30.5s.
  return formatDuration(Math.round(ms / 100) * 100);
}

/** Columns padded to their widest cell (colour codes are not counted). */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  // oxlint-disable-next-line no-control-regex
  const visible = (cell: string): number => cell.replace(/\u001b\[\d+m/g, '').length;
  const widths = header.map((title, column) => Math.max(visible(title), ...rows.map((row) => visible(row[column] ?? ''))));
  const render = (row: readonly string[]): string =>
    row
      .map((cell, column) => cell + ' '.repeat(Math.max(0, (widths[column] ?? 0) - visible(cell))))
      .join('  ')
      .trimEnd();
  return [render(header.map((title) => paint('bold', title))), ...rows.map(render)].join('\n');
}

export function percent(ratio: number): string {
  return Number.isFinite(ratio) ? `${(ratio * 100).toFixed(1)}%` : '-';
}

/** An issue as compilers print them: `file:line:col: path: message` (parts that are unknown left out). */
export function formatIssue(issue: { path: string; message: string; line?: number; column?: number }, file?: string): string {
  const place = [file, issue.line, issue.line === undefined ? undefined : issue.column]
    .filter((part) => part !== undefined && part !== '')
    .join(':');
  const subject = issue.path ? `${issue.path}: ${issue.message}` : issue.message;
  return place === '' ? subject : `${place}: ${subject}`;
}
