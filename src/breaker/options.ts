import type { Registry } from 'prom-client';
import type native = require('../native.js');
import { parseDuration } from '../duration.js';
import type { FailureVerdict } from './classify.js';

/** Opens after `consecutive` failures in a row. */
export interface ConsecutiveRule {
  consecutive: number;
  window?: never;
}

/** Opens when the failure rate over the last `size` calls (default 100) reaches `rate` (default 0.5), once `minCalls` (default 20) are in. */
export interface CountRule {
  window: 'count';
  rate?: number;
  size?: number;
  minCalls?: number;
  consecutive?: never;
}

/**
 * The default: opens when the failure rate over the last `windowMs` (default 30 s, in `buckets`
 * slices, default 10) reaches `rate` (default 0.5), once `minCalls` (default 20) are in.
 * Slices are stamped with absolute time, so an idle gap ages them.
 */
export interface TimeRule {
  window?: 'time';
  rate?: number;
  windowMs?: number | string;
  buckets?: number;
  minCalls?: number;
  consecutive?: never;
}

/** A breaker's state, as `toJSON()` reports it and the `initialState` option restores it. */
export interface BreakerSnapshot {
  state: BreakerState;
  generation: number;
  openRemainingMs: number;
  halfOpenFailures: number;
}

export type BreakerState = 'closed' | 'open' | 'half-open' | 'isolated';

export interface CommonBreakerOptions {
  /** Calls of at least `thresholdMs` are slow; a slow-call rate of `rate` (default 1) opens the breaker. Rate rules only. */
  slowCalls?: { thresholdMs: number | string; rate?: number };
  /** First open period. Default 10 s. */
  openMs?: number | string;
  /** The open period doubles after each failed half-open round, up to this. Default 5 min. */
  maxOpenMs?: number | string;
  /** Each open period is scaled by a random factor in [1 − jitter, 1 + jitter]. Default 0.2. */
  jitter?: number;
  /** Calls admitted at once while half-open; all must succeed to close. Default 3. */
  probes?: number;
  /** What an error of `execute` says: `true` failure, `false` success, `'ignore'` nothing. Default: see `defaultIsFailure`. */
  isFailure?: (error: unknown) => FailureVerdict;
  /** Where to start (a `toJSON()` from earlier). Default closed. For `shared`, only the creation that wins uses it. */
  initialState?: BreakerSnapshot;
  /** Label of the metrics; the key of `CircuitBreaker.shared`. Default `'default'`. */
  name?: string;
  /** Registry for havoc's metrics; default prom-client's global registry. */
  registry?: Registry;
}

export type CircuitBreakerOptions = CommonBreakerOptions & (ConsecutiveRule | CountRule | TimeRule);

interface RuleFields {
  consecutive?: unknown;
  window?: unknown;
  rate?: unknown;
  size?: unknown;
  windowMs?: number | string;
  buckets?: unknown;
  minCalls?: unknown;
}

type NativeOptions = Parameters<typeof native.NativeBreaker.shared>[1];

function integer(value: unknown, key: string, min: number): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > 0xffff_ffff)
    throw new RangeError(`${key} must be an integer >= ${min} (got ${String(value)})`);
  return value;
}

function duration(value: number | string | undefined, key: string): number | undefined {
  if (value === undefined) return undefined;
  const ms = parseDuration(value);
  if (!(ms > 0 && Number.isFinite(ms))) throw new RangeError(`${key} must be a positive duration (got ${String(value)})`);
  return ms;
}

function fraction(value: unknown, key: string, low: 'open' | 'closed'): number | undefined {
  if (value === undefined) return undefined;
  const ok = typeof value === 'number' && (low === 'open' ? value > 0 && value <= 1 : value >= 0 && value < 1);
  if (!ok) throw new RangeError(`${key} must be a number in ${low === 'open' ? '(0, 1]' : '[0, 1)'} (got ${String(value)})`);
  return value;
}

/** Checks the options (a `RangeError` naming the first bad one) and shapes them for the core. */
export function nativeBreakerOptions(o: CircuitBreakerOptions): NativeOptions {
  // Read as one bag of optional fields: which rule it is gets checked below, at run time.
  const rule = o as RuleFields;
  if (rule.consecutive !== undefined && rule.window !== undefined)
    throw new RangeError('consecutive and window are two different rules: give one');
  if (rule.window !== undefined && rule.window !== 'count' && rule.window !== 'time')
    throw new RangeError(`window must be 'count' or 'time' (got ${JSON.stringify(rule.window)})`);
  const size = integer(rule.size, 'size', 1);
  const minCalls = integer(rule.minCalls, 'minCalls', 0);
  if (rule.window === 'count' && (minCalls ?? 20) > (size ?? 100))
    throw new RangeError(`minCalls (${minCalls ?? 20}) must be <= size (${size ?? 100}): such a window could never trip`);
  const openMs = duration(o.openMs, 'openMs');
  const maxOpenMs = duration(o.maxOpenMs, 'maxOpenMs');
  if (maxOpenMs !== undefined && maxOpenMs < (openMs ?? 10_000))
    throw new RangeError(`maxOpenMs (${maxOpenMs}) must be >= openMs (${openMs ?? 10_000})`);
  if (o.slowCalls !== undefined && rule.consecutive !== undefined)
    throw new RangeError("slowCalls needs a rate rule (window 'count' or 'time'), not consecutive");
  return {
    consecutive: integer(rule.consecutive, 'consecutive', 1),
    window: rule.consecutive === undefined ? ((rule.window as 'count' | 'time' | undefined) ?? 'time') : undefined,
    rate: fraction(rule.rate, 'rate', 'open'),
    size,
    windowMs: duration(rule.windowMs, 'windowMs'),
    buckets: integer(rule.buckets, 'buckets', 1),
    minCalls,
    slowCallMs: o.slowCalls === undefined ? undefined : duration(o.slowCalls.thresholdMs, 'slowCalls.thresholdMs'),
    slowCallRate: fraction(o.slowCalls?.rate, 'slowCalls.rate', 'open'),
    openMs,
    maxOpenMs,
    jitter: fraction(o.jitter, 'jitter', 'closed'),
    probes: integer(o.probes, 'probes', 1),
  };
}
