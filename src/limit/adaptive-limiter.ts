import type { Registry } from 'prom-client';
import native = require('../native.js');
import { parseDuration } from '../duration.js';
import { LoadShedError } from '../errors.js';
import { metricsFor } from '../metrics.js';

export interface AdaptiveLimiterOptions {
  /** Default 20. */
  initialLimit?: number;
  /** Default 1. */
  minLimit?: number;
  /** Default 1000 (at most 1,000,000). */
  maxLimit?: number;
  /** How often the no-load RTT is measured again (milliseconds or a duration). Default 30 s. */
  probeInterval?: number | string;
  /** The limit is multiplied by this after an RTT window with drops. Default 0.9. */
  backoff?: number;
  /** Which errors of `execute` are drops (overload: they shrink the limit). Default: timeouts. */
  isDrop?: (error: unknown) => boolean;
  /** Label of the metrics; the key of `AdaptiveLimiter.shared`. Default `'default'`. */
  name?: string;
  /** Registry for havoc's metrics; default prom-client's global registry. */
  registry?: Registry;
}

type NativeLimiter = InstanceType<typeof native.NativeAdaptiveLimiter>;
const nativeHandle = Symbol('nativeHandle');
interface InternalOptions extends AdaptiveLimiterOptions {
  [nativeHandle]?: NativeLimiter;
}

const SUCCESS = 0;
const DROPPED = 1;
const IGNORE = 2;

/** A call admitted by {@link AdaptiveLimiter.tryAcquire}. Report how it ended exactly once; later reports are ignored. */
export class Token {
  readonly #limiter: AdaptiveLimiter;
  readonly #start: number;
  #done = false;

  /** @internal */
  constructor(limiter: AdaptiveLimiter, start: number) {
    this.#limiter = limiter;
    this.#start = start;
  }

  /** The call succeeded: its round-trip time is a sample. */
  success(): void {
    this.#end(SUCCESS);
  }

  /** The call timed out or was refused downstream: a sign of overload, the limit shrinks. */
  dropped(): void {
    this.#end(DROPPED);
  }

  /** No sample (a plain error, a cancelled call): only give the place back. */
  ignore(): void {
    this.#end(IGNORE);
  }

  #end(outcome: number): void {
    if (this.#done) return;
    this.#done = true;
    this.#limiter[release](this.#start, outcome);
  }
}

const release = Symbol('release');

/** Timeouts are drops; other errors are the caller's business and give no RTT sample. */
export function isTimeout(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const { name, code } = error as { name?: unknown; code?: unknown };
  return name === 'TimeoutError' || code === 'ETIMEDOUT' || code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'UND_ERR_HEADERS_TIMEOUT';
}

/**
 * A concurrency limit that adapts to the downstream's queueing (TCP-Vegas family), in the
 * Rust core. `AdaptiveLimiter.shared(name, opts)` is one limiter for every worker thread.
 */
export class AdaptiveLimiter {
  readonly name: string;
  readonly #native: NativeLimiter;
  readonly #slot: number;
  readonly #isDrop: (error: unknown) => boolean;
  readonly #shed: { inc(): void };

  constructor(options: AdaptiveLimiterOptions = {}) {
    this.name = options.name ?? 'default';
    if (typeof this.name !== 'string' || this.name === '') throw new TypeError('a limiter name must be a non-empty string');
    this.#native = (options as InternalOptions)[nativeHandle] ?? new native.NativeAdaptiveLimiter(nativeOptions(options));
    this.#slot = this.#native.slot;
    this.#isDrop = options.isDrop ?? isTimeout;
    const metrics = metricsFor(options.registry);
    this.#shed = metrics.limiterShed.labels(this.name);
    // The gauges read the limiter when scraped; a weak reference lets it be collected.
    const self = new WeakRef(this);
    metrics.watchLimiter(this.name, () => {
      const limiter = self.deref();
      return limiter && { limit: limiter.limit, inflight: limiter.inflight };
    });
  }

  /** The process-wide limiter `name`. The first creation wins; other options later throw. */
  static shared(name: string, options: Omit<AdaptiveLimiterOptions, 'name'> = {}): AdaptiveLimiter {
    const handle = native.NativeAdaptiveLimiter.shared(name, nativeOptions(options));
    const internal: InternalOptions = { ...options, name, [nativeHandle]: handle };
    return new AdaptiveLimiter(internal);
  }

  /**
   * A limiter on a clock that moves only by {@link setClockMs}, for simulations that drive
   * the real algorithm in simulated time.
   */
  static withManualClock(options: AdaptiveLimiterOptions = {}): AdaptiveLimiter & { setClockMs(ms: number): void } {
    const handle = native.NativeAdaptiveLimiter.withManualClock(nativeOptions(options));
    const limiter = new AdaptiveLimiter({ ...options, [nativeHandle]: handle } as InternalOptions);
    return Object.assign(limiter, { setClockMs: (ms: number) => handle.setClockMs(ms) });
  }

  /** The current concurrency limit. */
  get limit(): number {
    return this.#native.limit;
  }

  /** Calls in flight now (in every thread, for a shared limiter). */
  get inflight(): number {
    return this.#native.inflight;
  }

  /** The no-load round-trip time the limiter currently believes in (0 before any sample). */
  get rttNoLoadMs(): number {
    return this.#native.rttNoloadMs;
  }

  /** A place for one call, or `null` when the limit is reached. Report the call's end on the token. */
  tryAcquire(): Token | null {
    const start = native.adaptiveTryAcquire(this.#slot);
    if (start < 0) {
      this.#shed.inc();
      return null;
    }
    return new Token(this, start);
  }

  /**
   * Runs `fn` within the limit, or throws `LoadShedError` at once. A success is an RTT sample;
   * an error that `isDrop` accepts shrinks the limit; any other error (or an abort) gives no sample.
   */
  async execute<T>(fn: (signal?: AbortSignal) => T | Promise<T>, options: { signal?: AbortSignal } = {}): Promise<T> {
    const { signal } = options;
    signal?.throwIfAborted();
    const token = this.tryAcquire();
    if (token === null) throw new LoadShedError(`adaptive limiter "${this.name}" is at its limit (${this.limit}): call shed`);
    try {
      const result = await fn(signal);
      token.success();
      return result;
    } catch (error) {
      if (this.#isDrop(error)) token.dropped();
      else token.ignore();
      throw error;
    }
  }

  /** @internal */
  [release](start: number, outcome: number): void {
    native.adaptiveRelease(this.#slot, start, outcome);
  }
}

function nativeOptions(options: AdaptiveLimiterOptions): Parameters<typeof native.NativeAdaptiveLimiter.shared>[1] {
  const integer = (key: 'initialLimit' | 'minLimit' | 'maxLimit'): number | undefined => {
    const value = options[key];
    if (value === undefined) return undefined;
    if (!Number.isSafeInteger(value) || value < 1 || value > 1_000_000)
      throw new RangeError(`${key} must be an integer in [1, 1000000] (got ${String(value)})`);
    return value;
  };
  const probe = options.probeInterval === undefined ? undefined : parseDuration(options.probeInterval);
  if (probe !== undefined && !(probe > 0))
    throw new RangeError(`probeInterval must be a positive duration (got ${String(options.probeInterval)})`);
  if (options.backoff !== undefined && !(typeof options.backoff === 'number' && options.backoff > 0 && options.backoff < 1)) {
    throw new RangeError(`backoff must be a number in (0, 1) (got ${String(options.backoff)})`);
  }
  return {
    initialLimit: integer('initialLimit'),
    minLimit: integer('minLimit'),
    maxLimit: integer('maxLimit'),
    probeIntervalMs: probe,
    backoff: options.backoff,
  };
}
