// Deadline propagation: read and write gRPC's `grpc-timeout` and a plain milliseconds header,
// and give up early when too little time is left for the work to be worth starting.
import { DeadlineExceededError, HavocError } from './errors.js';

/** The milliseconds header written and read besides `grpc-timeout`. */
export const TIMEOUT_MS_HEADER = 'x-timeout-ms';
/** Below this many milliseconds left, a deadline is treated as already passed. */
export const DEFAULT_EARLY_ABORT_MS = 5;

const MAX_VALUE = 99_999_999; // gRPC: at most 8 digits
const UNITS: readonly [string, number][] = [
  ['n', 1e-6],
  ['u', 1e-3],
  ['m', 1],
  ['S', 1e3],
  ['M', 60e3],
  ['H', 3600e3],
];
const UNIT_MS: Readonly<Record<string, number>> = Object.fromEntries(UNITS);

/**
 * `grpc-timeout` for `ms` milliseconds, in the finest unit whose value fits 8 digits, rounded
 * up (1.9 s is `1900000u`, not resile's `1S`).
 */
export function formatGrpcTimeout(ms: number): string {
  if (typeof ms !== 'number' || Number.isNaN(ms) || ms < 0)
    throw new RangeError(`timeout must be a number of milliseconds >= 0 (got ${String(ms)})`);
  for (const [unit, unitMs] of UNITS) {
    // Rounded to the nanosecond first so that float noise does not add a unit.
    const value = Math.ceil(Math.round((ms / unitMs) * 1e6) / 1e6);
    if (value <= MAX_VALUE) return `${value}${unit}`;
  }
  throw new RangeError(`timeout ${ms} ms is longer than gRPC can express (99999999 hours)`);
}

/** Milliseconds of a `grpc-timeout` value (`100m`, `1900000u`, `2S`). Throws on a malformed value. */
export function parseGrpcTimeout(header: string): number {
  const match = /^(\d{1,8})([HMSmun])$/.exec(typeof header === 'string' ? header.trim() : '');
  if (!match)
    throw new HavocError(`malformed grpc-timeout ${JSON.stringify(header)}: expected 1 to 8 digits and a unit (H, M, S, m, u, n)`);
  return Number(match[1]) * (UNIT_MS[match[2]!] ?? NaN);
}

type Headers = Record<string, string | string[] | undefined>;

export interface DeadlineOptions {
  /** Abort this long before the deadline, and at once when less is left. Default 5 ms. */
  earlyAbortMs?: number;
}

/** When each signal made here expires, on `performance.now()`'s clock. */
const deadlines = new WeakMap<AbortSignal, number>();

/**
 * An `AbortSignal` that aborts with `DeadlineExceededError` `earlyAbortMs` before `ms`
 * from now (at once when less is left). `injectDeadline` can forward it.
 */
export function deadlineSignal(ms: number, options: DeadlineOptions = {}): AbortSignal {
  if (typeof ms !== 'number' || Number.isNaN(ms)) throw new RangeError(`deadline must be a number of milliseconds (got ${String(ms)})`);
  const early = options.earlyAbortMs ?? DEFAULT_EARLY_ABORT_MS;
  const controller = new AbortController();
  deadlines.set(controller.signal, performance.now() + ms);
  const abort = () => controller.abort(new DeadlineExceededError(`deadline of ${ms} ms exceeded (aborting ${early} ms early)`));
  if (ms - early <= 0) abort();
  else setTimeout(abort, ms - early).unref();
  return controller.signal;
}

/**
 * The deadline a caller sent (`grpc-timeout`, else `x-timeout-ms`) as an `AbortSignal`;
 * one that never aborts when neither header is there. A malformed header throws.
 */
export function deadlineFromHeaders(headers: Headers, options: DeadlineOptions = {}): AbortSignal {
  const grpc = first(headers['grpc-timeout']);
  if (grpc !== undefined) return deadlineSignal(parseGrpcTimeout(grpc), options);
  const plain = first(headers[TIMEOUT_MS_HEADER]);
  if (plain !== undefined) {
    const ms = Number(plain);
    if (plain.trim() === '' || !Number.isFinite(ms) || ms < 0)
      throw new HavocError(`malformed ${TIMEOUT_MS_HEADER} ${JSON.stringify(plain)}: expected milliseconds >= 0`);
    return deadlineSignal(ms, options);
  }
  return new AbortController().signal;
}

/** Milliseconds left before `signal`'s deadline (`Infinity` for a signal without one). */
export function remainingMs(signal: AbortSignal): number {
  const at = deadlines.get(signal);
  return at === undefined ? Infinity : Math.max(0, at - performance.now());
}

/**
 * Writes the time left (of a signal from `deadlineSignal`/`deadlineFromHeaders`, or a number of
 * milliseconds) into `headers` as `name` (default `grpc-timeout`; any other name gets integer
 * milliseconds). Throws `DeadlineExceededError` when `earlyAbortMs` or less is left: the call is
 * not worth making. Returns `headers`.
 */
export function injectDeadline<H extends Headers>(
  headers: H,
  deadline: AbortSignal | number,
  name = 'grpc-timeout',
  options: DeadlineOptions = {},
): H {
  const early = options.earlyAbortMs ?? DEFAULT_EARLY_ABORT_MS;
  if (typeof deadline !== 'number') deadline.throwIfAborted();
  const left = typeof deadline === 'number' ? deadline : remainingMs(deadline);
  if (left === Infinity) return headers;
  if (!(left > early)) throw new DeadlineExceededError(`only ${left.toFixed(1)} ms left (early abort below ${early} ms)`);
  (headers as Headers)[name] = name === 'grpc-timeout' ? formatGrpcTimeout(left) : String(Math.floor(left));
  return headers;
}

function first(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
