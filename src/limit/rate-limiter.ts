import { setTimeout as delay } from 'node:timers/promises';
import type { Registry } from 'prom-client';
import native = require('../native.js');
import { parseDuration } from '../duration.js';
import { HavocError, RateLimitExceededError } from '../errors.js';
import { metricsFor } from '../metrics.js';

/** The limit a store enforces, in the units the Redis script takes. */
export interface RateLimitSpec {
  rate: number;
  perMs: number;
  burst: number;
}

/**
 * Where a cluster-wide limit lives (see `redisStore`). `take` returns 0 when `cost` tokens
 * were taken, otherwise the milliseconds until they are there (`Infinity`: never).
 */
export interface RateLimitStore {
  take(spec: RateLimitSpec, cost: number): Promise<number>;
}

export interface RateLimiterOptions {
  /** Tokens per `per`; fractional rates work (0.5 per second admits one call every 2 s). */
  rate: number;
  /** The period of `rate`: milliseconds or a duration such as `'1s'`. Default 1 s. */
  per?: number | string;
  /** Tokens available at once. Default: `rate` rounded up (at least 1). */
  burst?: number;
  /** Label of the metrics; the key of `RateLimiter.shared`. Default `'default'`. */
  name?: string;
  /** Registry for havoc's metrics; default prom-client's global registry. */
  registry?: Registry;
  /** Keep the bucket in a shared store (Redis) for a cluster-wide limit. */
  store?: RateLimitStore;
}

export interface AcquireOptions {
  signal?: AbortSignal;
}

export interface ExecuteOptions {
  signal?: AbortSignal;
  cost?: number;
}

type NativeLimiter = InstanceType<typeof native.NativeRateLimiter>;

/** How `shared` hands its process-wide bucket to the constructor (not part of the public options). */
const nativeHandle = Symbol('nativeHandle');
interface InternalOptions extends RateLimiterOptions {
  [nativeHandle]?: NativeLimiter;
}

/**
 * A token bucket (GCRA) in the Rust core: lock-free, integer arithmetic on a monotonic clock.
 * `RateLimiter.shared(name, opts)` is one bucket for every worker thread of the process.
 */
export class RateLimiter {
  readonly name: string;
  readonly spec: Readonly<RateLimitSpec>;
  readonly #native: NativeLimiter | null;
  readonly #slot: number;
  readonly #store: RateLimitStore | undefined;
  readonly #rejected: { inc(): void };

  constructor(options: RateLimiterOptions) {
    this.name = checkName(options?.name ?? 'default');
    this.spec = resolveSpec(options);
    this.#store = options.store;
    this.#native = this.#store
      ? null
      : ((options as InternalOptions)[nativeHandle] ?? new native.NativeRateLimiter(this.spec.rate, this.spec.perMs, this.spec.burst));
    this.#slot = this.#native?.slot ?? -1;
    this.#rejected = metricsFor(options.registry).rateLimitRejectedFor(this.name);
  }

  /**
   * The process-wide bucket `name`, the same from every worker thread. The first creation
   * wins; asking again with other `rate`/`per`/`burst` throws.
   */
  static shared(name: string, options: Omit<RateLimiterOptions, 'name' | 'store'>): RateLimiter {
    checkName(name);
    const spec = resolveSpec(options);
    const handle = native.NativeRateLimiter.shared(name, spec.rate, spec.perMs, spec.burst);
    const internal: InternalOptions = { ...options, name, [nativeHandle]: handle };
    return new RateLimiter(internal);
  }

  /**
   * A local bucket on a clock that moves only by `setClockMs`, for tests that must not depend
   * on how fast the machine runs. `acquire` still waits on real timers for the time it computes.
   */
  static withManualClock(options: Omit<RateLimiterOptions, 'store'>): RateLimiter & { setClockMs(ms: number): void } {
    const spec = resolveSpec(options);
    const handle = native.NativeRateLimiter.withManualClock(spec.rate, spec.perMs, spec.burst);
    const limiter = new RateLimiter({ ...options, [nativeHandle]: handle } as InternalOptions);
    return Object.assign(limiter, { setClockMs: (ms: number) => handle.setClockMs(ms) });
  }

  /** Takes `cost` tokens if they are there; never waits. */
  tryAcquire(cost = 1): boolean {
    checkCost(cost);
    if (this.#store) throw new HavocError(`rate limiter "${this.name}" uses a store: call tryAcquireAsync, acquire or execute`);
    if (native.rateLimiterTry(this.#slot, cost) === 0) return true;
    this.#rejected.inc();
    return false;
  }

  /** `tryAcquire` that also works with a store. */
  async tryAcquireAsync(cost = 1): Promise<boolean> {
    checkCost(cost);
    if ((await this.#take(cost)) === 0) return true;
    this.#rejected.inc();
    return false;
  }

  /**
   * Waits until `cost` tokens are there and takes them. The wait is a timer for exactly the
   * time the bucket computes; `signal` aborts it (rejecting with the signal's reason).
   * A cost above the burst can never be served and rejects with `RateLimitExceededError` at once.
   */
  async acquire(cost = 1, options: AcquireOptions = {}): Promise<void> {
    checkCost(cost);
    const { signal } = options;
    for (;;) {
      signal?.throwIfAborted();
      const wait = await this.#take(cost);
      if (wait === 0) return;
      if (!Number.isFinite(wait)) throw new RateLimitExceededError(this.name, Infinity);
      // Whole milliseconds, rounded up: a timer that fires early would only make us wait again.
      await delay(Math.ceil(wait), undefined, signal ? { signal } : undefined).catch((error: unknown) => {
        throw signal?.aborted ? signal.reason : error;
      });
    }
  }

  /** Runs `fn` if `cost` tokens are there, else throws `RateLimitExceededError` at once (use `acquire` to wait). */
  async execute<T>(fn: (signal?: AbortSignal) => T | Promise<T>, options: ExecuteOptions = {}): Promise<T> {
    const cost = options.cost ?? 1;
    checkCost(cost);
    options.signal?.throwIfAborted();
    const wait = await this.#take(cost);
    if (wait !== 0) {
      this.#rejected.inc();
      throw new RateLimitExceededError(this.name, wait);
    }
    return fn(options.signal);
  }

  /** Milliseconds until `cost` tokens are there, without taking them (0: now; `Infinity`: never). Local buckets only. */
  retryAfterMs(cost = 1): number {
    checkCost(cost);
    if (!this.#native) throw new HavocError(`rate limiter "${this.name}" uses a store: retryAfterMs is known only from a refusal`);
    const ms = this.#native.retryAfterMs(cost);
    return ms < 0 ? Infinity : ms;
  }

  #take(cost: number): number | Promise<number> {
    if (this.#store) return this.#store.take(this.spec, cost);
    const result = native.rateLimiterTry(this.#slot, cost);
    return result < 0 ? Infinity : result;
  }
}

function resolveSpec(options: RateLimiterOptions): RateLimitSpec {
  if (typeof options !== 'object' || options === null) throw new TypeError('RateLimiter options must be an object');
  const { rate } = options;
  if (typeof rate !== 'number' || !Number.isFinite(rate) || rate <= 0) {
    throw new RangeError(`rate must be a finite number > 0 (got ${String(rate)})`);
  }
  const perMs = options.per === undefined ? 1000 : parseDuration(options.per);
  if (!(perMs > 0)) throw new RangeError(`per must be a positive duration (got ${String(options.per)})`);
  const burst = options.burst ?? Math.max(1, Math.ceil(rate));
  if (!Number.isSafeInteger(burst) || burst < 1) throw new RangeError(`burst must be an integer >= 1 (got ${String(burst)})`);
  return { rate, perMs, burst };
}

function checkName(name: string): string {
  if (typeof name !== 'string' || name === '') throw new TypeError('a limiter name must be a non-empty string');
  return name;
}

function checkCost(cost: number): void {
  if (!Number.isInteger(cost) || cost < 0 || cost > 0xffff_ffff) {
    throw new RangeError(`cost must be an integer in [0, 4294967295] (got ${String(cost)})`);
  }
}
