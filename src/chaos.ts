// resile-style chaos for any async function: an injected error and/or latency, each with its
// own chance, reproducible with a seed.
import { setTimeout as delay } from 'node:timers/promises';
import { HavocError } from './errors.js';
import { mulberry32 } from './random.js';

export interface ChaosOptions {
  /** Chance in [0, 1] that a call fails with `error` instead of running. Default 0. */
  errorChance?: number;
  /** The error to throw (or a function making one). Default a `HavocError`. */
  error?: Error | (() => Error);
  /** Chance in [0, 1] that a call is delayed by `latencyMs` first. Default 0. */
  latencyChance?: number;
  latencyMs?: number;
  /** Makes every roll reproducible. */
  seed?: number;
}

/**
 * Wraps `fn`: each call rolls for latency (served first, on a timer) and then for an error.
 * The delay ends early with the signal's reason when an argument is an `AbortSignal` or an
 * object with a `signal` that aborts.
 */
export function withChaos<A extends unknown[], R>(fn: (...args: A) => R | Promise<R>, options: ChaosOptions): (...args: A) => Promise<R> {
  const errorChance = chance(options.errorChance, 'errorChance');
  const latencyChance = chance(options.latencyChance, 'latencyChance');
  const latencyMs = options.latencyMs ?? 0;
  if (!(typeof latencyMs === 'number' && latencyMs >= 0 && Number.isFinite(latencyMs)))
    throw new RangeError(`latencyMs must be a number >= 0 (got ${String(options.latencyMs)})`);
  if (options.seed !== undefined && !Number.isSafeInteger(options.seed))
    throw new RangeError(`seed must be an integer (got ${String(options.seed)})`);
  const random = options.seed === undefined ? Math.random : mulberry32(options.seed);
  const makeError = () =>
    typeof options.error === 'function' ? options.error() : (options.error ?? new HavocError('chaos: injected error'));
  return async (...args: A): Promise<R> => {
    const slow = latencyChance > 0 && random() < latencyChance;
    const fail = errorChance > 0 && random() < errorChance;
    if (slow && latencyMs > 0) {
      const signal = findSignal(args);
      await delay(latencyMs, undefined, signal ? { signal } : undefined).catch((error: unknown) => {
        throw signal?.aborted ? signal.reason : error;
      });
    }
    if (fail) throw makeError();
    return fn(...args);
  };
}

function chance(value: number | undefined, name: string): number {
  const c = value ?? 0;
  if (typeof c !== 'number' || !(c >= 0 && c <= 1)) throw new RangeError(`${name} must be a number in [0, 1] (got ${String(value)})`);
  return c;
}

function findSignal(args: unknown[]): AbortSignal | undefined {
  for (const arg of args) {
    if (arg instanceof AbortSignal) return arg;
    const signal = (arg as { signal?: unknown } | null)?.signal;
    if (signal instanceof AbortSignal) return signal;
  }
  return undefined;
}
