import { isRetryable } from '../breaker/classify.js';
import { Listeners, type Disposable } from '../breaker/events.js';
import { remainingMs } from '../deadline.js';
import { RetryExhaustedError, type RetryGiveUpReason } from '../errors.js';
import { metricsFor, type RetryCounts } from '../metrics.js';
import { mulberry32 } from '../random.js';
import { realClock, sleep, type Clock } from '../resilience/clock.js';
import type { CallContext, CallOptions } from '../resilience/contract.js';
import { backoffMs } from './backoff.js';
import type { RetryBudget } from './budget.js';
import { resolveRetryOptions, type ResolvedRetryOptions, type RetryOptions } from './options.js';
import { requestedDelayMs, STOP } from './retry-after.js';

/** A retry about to sleep. */
export interface RetryEvent {
  /** The attempt that failed (1 for the first call). */
  attempt: number;
  /** The sleep before the next attempt. */
  delayMs: number;
  error: unknown;
}

/** A retry giving up on retryable errors (it then throws `RetryExhaustedError`). */
export interface GiveUpEvent {
  attempts: number;
  elapsedMs: number;
  reason: RetryGiveUpReason;
  error: unknown;
}

/**
 * Calls `fn` again after a failure worth retrying, up to `maxAttempts` calls in all, sleeping
 * a jittered exponential backoff (or what the server asked for) in between. Every sleep is
 * abortable, and a sleep that would end past the caller's deadline is not started.
 */
export class Retry {
  readonly name: string;
  readonly #o: ResolvedRetryOptions;
  readonly #retryOn: (error: unknown, signal?: AbortSignal) => boolean;
  readonly #budget: RetryBudget | undefined;
  readonly #random: () => number;
  readonly #clock: Clock;
  readonly #counts: RetryCounts;
  readonly #retries = new Listeners<RetryEvent>();
  readonly #giveUps = new Listeners<GiveUpEvent>();

  constructor(options: RetryOptions = {}) {
    this.#o = resolveRetryOptions(options);
    this.name = this.#o.name;
    const custom = options.retryOn;
    // The caller's abort is never retried, whatever retryOn says.
    this.#retryOn = custom ? (error, signal) => !signal?.aborted && custom(error) : isRetryable;
    this.#budget = options.budget;
    this.#random = options.seed === undefined ? Math.random : mulberry32(options.seed);
    this.#clock = options.clock ?? realClock;
    this.#counts = metricsFor(options.registry).retryCounts(this.name);
  }

  /** Called before each sleep. */
  onRetry(listener: (event: RetryEvent) => void): Disposable {
    return this.#retries.add(listener);
  }

  /** Called when the retry gives up on retryable errors. */
  onGiveUp(listener: (event: GiveUpEvent) => void): Disposable {
    return this.#giveUps.add(listener);
  }

  /**
   * Runs `fn` until it succeeds, fails with an error `retryOn` refuses (rethrown unchanged), or
   * the retry gives up (`RetryExhaustedError`). An abort of `signal` ends a sleep at once with
   * its reason.
   */
  async execute<T>(fn: (context: CallContext) => T | Promise<T>, options: CallOptions = {}): Promise<T> {
    const { signal } = options;
    signal?.throwIfAborted();
    this.#budget?.recordRequest();
    const counts = this.#counts;
    const clock = this.#clock;
    // Read at the first failure, not before the first call: a clock read costs a succeeding
    // call more than the rest of the loop does.
    let start = -1;
    let errors: unknown[] | undefined;
    let previousMs = this.#o.baseMs;
    for (let attempt = 1; ; attempt++) {
      try {
        const value = await fn({ signal, attempt });
        counts.success += 1;
        return value;
      } catch (error) {
        if (!this.#retryOn(error, signal)) {
          counts.fatal += 1;
          throw error;
        }
        (errors ??= []).push(error);
        if (start < 0) start = clock.now();
        const delayMs = this.#delayBefore(attempt, error, previousMs, signal, start);
        if (typeof delayMs === 'string') {
          counts.exhausted += 1;
          const elapsedMs = clock.now() - start;
          this.#giveUps.emit({ attempts: attempt, elapsedMs, reason: delayMs, error });
          throw new RetryExhaustedError(this.name, errors, delayMs, attempt, elapsedMs);
        }
        counts.retried += 1;
        previousMs = delayMs;
        this.#retries.emit({ attempt, delayMs, error });
        await sleep(clock, delayMs, signal);
      }
    }
  }

  /** The sleep before the next attempt, or why there is none. */
  #delayBefore(
    attempt: number,
    error: unknown,
    previousMs: number,
    signal: AbortSignal | undefined,
    start: number,
  ): number | RetryGiveUpReason {
    const o = this.#o;
    if (attempt >= o.maxAttempts) return 'attempts';
    const requested = requestedDelayMs(error);
    if (requested === STOP) return 'retry-after';
    const delayMs =
      requested ?? backoffMs(o.jitter, { retry: attempt, baseMs: o.baseMs, capMs: o.capMs, previousMs, random: this.#random });
    // The deadline first: a wait past it is pointless however long the server allows.
    if (this.#clock.now() - start + delayMs > o.maxElapsedMs) return 'deadline';
    if (signal !== undefined && delayMs >= remainingMs(signal)) return 'deadline';
    if (requested !== undefined && requested > o.maxRetryAfterMs) return 'retry-after';
    if (this.#budget !== undefined && !this.#budget.trySpend()) return 'budget';
    return delayMs;
  }
}
