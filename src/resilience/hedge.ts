import native = require('../native.js');
import { Listeners, type Disposable } from '../breaker/events.js';
import { HavocError } from '../errors.js';
import type { RetryBudget } from '../retry/budget.js';
import { realClock, type Clock } from './clock.js';
import { checkName, type CallContext, type CallOptions } from './contract.js';

/** The latencies a hedge's percentile is taken over. */
const RESERVOIR_SIZE = 1000;
/** Below this many latencies there is no percentile worth trusting: no hedging. */
const MIN_SAMPLES = 20;

/** The hedge timer alone never keeps the process alive: the attempt in flight does. */
const UNREF = { unref: true };

export interface HedgeOptions {
  /** Start a hedge after this long without an answer. Default: the `percentile` of the last 1,000 latencies of `name`. */
  delayMs?: number;
  /** The latency percentile the delay defaults to, in (0, 1). Default 0.95. */
  percentile?: number;
  /** Extra attempts at most. Default 1. */
  maxHedges?: number;
  /**
   * Each call counts as a request of this budget and each hedge takes a retry from it; none left,
   * no hedge.
   */
  budget?: RetryBudget;
  /** The key of the shared latency reservoir (every thread and every `Hedge` of that name). Default `'default'`. */
  name?: string;
  /** Where delays are timed and latencies measured; a `ManualClock` in tests. */
  clock?: Clock;
}

/** A hedge started. */
export interface HedgeEvent {
  /** The attempt started (2 for the first hedge). */
  attempt: number;
  delayMs: number;
}

/** The abort reason a hedge's losers get. */
export class HedgeLostError extends HavocError {
  static {
    this.prototype.name = 'HedgeLostError';
  }
}

/**
 * Starts another attempt of a slow call after `delayMs` (by default the p95 of recent
 * latencies) and takes whichever answers first; the others are aborted. A failure is the
 * answer only once every attempt started has failed.
 */
export class Hedge {
  readonly name: string;
  readonly #delayMs: number | undefined;
  readonly #percentile: number;
  readonly #maxHedges: number;
  readonly #budget: RetryBudget | undefined;
  readonly #clock: Clock;
  readonly #latency: InstanceType<typeof native.NativeLatencyReservoir>;
  readonly #latencySlot: number;
  readonly #hedges = new Listeners<HedgeEvent>();

  constructor(options: HedgeOptions = {}) {
    const { delayMs, percentile = 0.95, maxHedges = 1 } = options;
    if (delayMs !== undefined && !(typeof delayMs === 'number' && delayMs > 0 && Number.isFinite(delayMs)))
      throw new RangeError(
        `delayMs must be a finite number of milliseconds > 0 (got ${String(delayMs)}): 0 would start every attempt at once`,
      );
    if (!(typeof percentile === 'number' && percentile > 0 && percentile < 1))
      throw new RangeError(`percentile must be a number in (0, 1) (got ${String(percentile)})`);
    if (!(Number.isSafeInteger(maxHedges) && maxHedges >= 1 && maxHedges <= 16))
      throw new RangeError(`maxHedges must be an integer in [1, 16] (got ${String(maxHedges)})`);
    this.name = checkName(options.name ?? 'default', 'hedge');
    this.#delayMs = delayMs;
    this.#percentile = percentile;
    this.#maxHedges = maxHedges;
    this.#budget = options.budget;
    this.#clock = options.clock ?? realClock;
    this.#latency = native.NativeLatencyReservoir.shared(this.name, RESERVOIR_SIZE);
    this.#latencySlot = this.#latency.slot;
  }

  /** Called for each hedge started. */
  onHedge(listener: (event: HedgeEvent) => void): Disposable {
    return this.#hedges.add(listener);
  }

  /** The delay the next call would hedge after, or undefined (too few latencies yet). */
  get currentDelayMs(): number | undefined {
    if (this.#delayMs !== undefined) return this.#delayMs;
    return this.#latency.count >= MIN_SAMPLES ? this.#latency.percentile(this.#percentile) : undefined;
  }

  execute<T>(fn: (context: CallContext) => T | Promise<T>, options: CallOptions = {}): Promise<T> {
    const { signal } = options;
    if (signal?.aborted) return Promise.reject(signal.reason);
    const delayMs = this.currentDelayMs;
    const clock = this.#clock;
    // Every attempt is the same try of an enclosing retry: `attempt` passes through.
    const attempt = options.attempt ?? 1;
    // Latency from the call's start, as the caller sees it: a winning hedge records at least the
    // delay, so the tail the percentile is taken over does not shrink as hedges win.
    const begin = clock.now();
    this.#budget?.recordRequest();
    return new Promise<T>((resolve, reject) => {
      const running = new Set<AbortController>();
      let started = 0;
      let settled = false;
      let timer: unknown;
      const finish = () => {
        settled = true;
        if (timer !== undefined) clock.clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        for (const controller of running) controller.abort(new HedgeLostError('another attempt of the hedged call answered first'));
        running.clear();
      };
      const onAbort = () => {
        if (settled) return;
        finish();
        reject(signal!.reason);
      };
      const start = () => {
        started += 1;
        const controller = new AbortController();
        running.add(controller);
        (async () =>
          fn({ signal: signal === undefined ? controller.signal : AbortSignal.any([signal, controller.signal]), attempt }))().then(
          (value) => {
            if (settled) return;
            native.latencyRecord(this.#latencySlot, clock.now() - begin);
            running.delete(controller);
            finish();
            resolve(value);
          },
          (error: unknown) => {
            if (settled) return;
            running.delete(controller);
            if (running.size > 0) return;
            finish();
            reject(error);
          },
        );
      };
      const schedule = () => {
        if (delayMs === undefined || started > this.#maxHedges) return;
        timer = clock.setTimeout(
          () => {
            timer = undefined;
            if (settled || (this.#budget !== undefined && !this.#budget.trySpend())) return;
            this.#hedges.emit({ attempt: started + 1, delayMs });
            start();
            schedule();
          },
          delayMs,
          UNREF,
        );
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      start();
      schedule();
    });
  }
}
