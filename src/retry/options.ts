import type { Registry } from 'prom-client';
import { parseDuration } from '../duration.js';
import type { Clock } from '../resilience/clock.js';
import { checkName } from '../resilience/contract.js';
import { JITTERS, type Jitter } from './backoff.js';
import type { RetryBudget } from './budget.js';

export interface RetryOptions {
  /** Calls in all, the first included (an integer >= 1). Default 3. */
  maxAttempts?: number;
  /** The first retry's backoff scale. Default 100 ms. */
  baseMs?: number | string;
  /** No backoff is longer. Default 10 s. */
  capMs?: number | string;
  /** Default `'full'`. */
  jitter?: Jitter;
  /** Give up rather than start a sleep that would end later than this after the first failure. Default Infinity. */
  maxElapsedMs?: number | string;
  /** A server asking for a longer wait than this is not retried (reason `'retry-after'`). Default 30 s. */
  maxRetryAfterMs?: number | string;
  /** Which errors are worth another try. Default: `isRetryable`. */
  retryOn?: (error: unknown) => boolean;
  /** Each retry takes one from this budget; none left, the retry gives up (reason `'budget'`). */
  budget?: RetryBudget;
  /** Seeds the jitter's random source: the same seed gives the same delays. Default: `Math.random`. */
  seed?: number;
  /** Label of the metrics. Default `'default'`. */
  name?: string;
  /** Registry for havoc's metrics; default prom-client's global registry. */
  registry?: Registry;
  /** Where sleeps are timed; a `ManualClock` in tests. Default the real clock. */
  clock?: Clock;
}

/** The options checked, defaults filled in. */
export interface ResolvedRetryOptions {
  maxAttempts: number;
  baseMs: number;
  capMs: number;
  jitter: Jitter;
  maxElapsedMs: number;
  maxRetryAfterMs: number;
  name: string;
}

function ms(value: number | string | undefined, key: string, fallback: number, allowInfinity: boolean): number {
  if (value === undefined) return fallback;
  const parsed = typeof value === 'number' ? value : parseDuration(value);
  if (typeof parsed !== 'number' || Number.isNaN(parsed) || parsed < 0 || (!allowInfinity && !Number.isFinite(parsed)))
    throw new RangeError(`${key} must be a ${allowInfinity ? '' : 'finite '}duration >= 0 (got ${String(value)})`);
  return parsed;
}

/** Checks every option (a `RangeError` naming the bad one) and fills in the defaults. */
export function resolveRetryOptions(o: RetryOptions): ResolvedRetryOptions {
  const maxAttempts = o.maxAttempts ?? 3;
  if (typeof maxAttempts !== 'number' || !Number.isSafeInteger(maxAttempts) || maxAttempts < 1)
    throw new RangeError(`maxAttempts must be an integer >= 1, the calls in all (got ${String(maxAttempts)})`);
  const baseMs = ms(o.baseMs, 'baseMs', 100, false);
  const capMs = ms(o.capMs, 'capMs', 10_000, false);
  if (capMs < baseMs) throw new RangeError(`capMs (${capMs}) must be >= baseMs (${baseMs})`);
  const jitter = o.jitter ?? 'full';
  if (typeof jitter !== 'function' && !(JITTERS as readonly string[]).includes(jitter))
    throw new RangeError(`jitter must be ${JITTERS.map((j) => `'${j}'`).join(', ')} or a function (got ${JSON.stringify(jitter)})`);
  if (o.seed !== undefined && !(typeof o.seed === 'number' && Number.isInteger(o.seed)))
    throw new RangeError(`seed must be an integer (got ${String(o.seed)})`);
  if (o.retryOn !== undefined && typeof o.retryOn !== 'function') throw new TypeError('retryOn must be a function');
  return {
    maxAttempts,
    baseMs,
    capMs,
    jitter,
    maxElapsedMs: ms(o.maxElapsedMs, 'maxElapsedMs', Infinity, true),
    maxRetryAfterMs: ms(o.maxRetryAfterMs, 'maxRetryAfterMs', 30_000, true),
    name: checkName(o.name ?? 'default', 'retry'),
  };
}
