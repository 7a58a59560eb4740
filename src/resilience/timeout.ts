import { TimeoutError } from '../errors.js';
import { realClock, type Clock } from './clock.js';
import { linkedController, type CallContext, type CallOptions } from './contract.js';

/** A timeout alone never keeps the process alive: the work it limits does, or nothing is left to limit. */
const UNREF = { unref: true };

export interface TimeoutOptions {
  /** Reject at the limit even if `fn` ignores its signal (`fn` keeps running, unobserved). Default false: wait for `fn` to stop. */
  race?: boolean;
  /** Where the limit is timed; a `ManualClock` in tests. Default the real clock (its timer unref'd). */
  clock?: Clock;
}

/**
 * Gives `fn` at most `ms`: its signal is the caller's combined with a timer, and a call that
 * fails after the timer fired rejects with `TimeoutError` (`isTimeout` true: an adaptive
 * limiter counts a drop, a breaker a failure). The caller's own abort keeps its reason.
 */
export class Timeout {
  readonly ms: number;
  readonly #race: boolean;
  readonly #clock: Clock;

  constructor(ms: number, options: TimeoutOptions = {}) {
    if (typeof ms !== 'number' || !(ms > 0) || !Number.isFinite(ms))
      throw new RangeError(`a timeout must be a finite number of milliseconds > 0 (got ${String(ms)})`);
    this.ms = ms;
    this.#race = options.race ?? false;
    this.#clock = options.clock ?? realClock;
  }

  async execute<T>(fn: (context: CallContext) => T | Promise<T>, options: CallOptions = {}): Promise<T> {
    const { signal } = options;
    signal?.throwIfAborted();
    const { controller, dispose } = linkedController(signal);
    let timedOut: TimeoutError | undefined;
    const timer = this.#clock.setTimeout(
      () => {
        timedOut = new TimeoutError(this.ms);
        controller.abort(timedOut);
      },
      this.ms,
      UNREF,
    );
    try {
      const call = (async () => fn({ signal: controller.signal, attempt: options.attempt ?? 1 }))();
      if (!this.#race) return await call;
      // The combined signal aborts on the timer and on the caller's abort; it dies with this call.
      const inner = controller.signal;
      const aborted = new Promise<never>((_, reject) => {
        if (inner.aborted) reject(inner.reason);
        else inner.addEventListener('abort', () => reject(inner.reason), { once: true });
      });
      // fn may still reject later, unobserved: keep that from being an unhandled rejection.
      call.catch(() => undefined);
      return await Promise.race([call, aborted]);
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      if (timedOut !== undefined) throw timedOut;
      throw error;
    } finally {
      this.#clock.clearTimeout(timer);
      dispose();
    }
  }
}
