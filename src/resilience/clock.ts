// Time for the JS-side primitives (retry sleeps, timeouts, hedge delays), real or moved by
// hand. Tests use `ManualClock` instead of waiting.

/** A timer handle, opaque to the caller. */
export type TimerHandle = unknown;

/** Where a primitive reads time and sets timers. */
export interface Clock {
  /** Milliseconds on a monotonic clock. */
  now(): number;
  /** Calls `fn` after `ms`; `unref`: the timer alone does not keep the process alive (real clock). */
  setTimeout(fn: () => void, ms: number, options?: { unref?: boolean }): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

/** `performance.now()` and Node's timers. */
export const realClock: Clock = {
  now: () => performance.now(),
  setTimeout: (fn, ms, options) => {
    const timer = setTimeout(fn, ms);
    return options?.unref ? timer.unref() : timer;
  },
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

interface ManualTimer {
  at: number;
  seq: number;
  fn: () => void;
}

/**
 * A clock that moves only by `advance`/`set`, for tests: `now()` starts at 0, timers fire in
 * order of their time as the clock passes it. `nextTimer()` waits until a timer is set.
 */
export class ManualClock implements Clock {
  #now = 0;
  #seq = 0;
  readonly #timers = new Set<ManualTimer>();
  #waiters: ((delayMs: number) => void)[] = [];

  now(): number {
    return this.#now;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const timer: ManualTimer = { at: this.#now + Math.max(0, ms), seq: this.#seq++, fn };
    this.#timers.add(timer);
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake(Math.max(0, ms));
    return timer;
  }

  clearTimeout(handle: TimerHandle): void {
    this.#timers.delete(handle as ManualTimer);
  }

  /** Timers set and not yet fired or cleared. */
  get pending(): number {
    return this.#timers.size;
  }

  /** Resolves with the delay of the next timer set (at once, with the earliest's delay left, when one is pending). */
  nextTimer(): Promise<number> {
    const earliest = this.#earliest();
    if (earliest !== undefined) return Promise.resolve(earliest.at - this.#now);
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** Moves the clock `ms` forward, firing every timer due on the way, in order. */
  advance(ms: number): void {
    if (!(ms >= 0)) throw new RangeError(`a clock only moves forward (got ${ms} ms)`);
    const target = this.#now + ms;
    for (let timer = this.#earliest(); timer !== undefined && timer.at <= target; timer = this.#earliest()) {
      this.#timers.delete(timer);
      this.#now = timer.at;
      timer.fn();
    }
    this.#now = target;
  }

  #earliest(): ManualTimer | undefined {
    let earliest: ManualTimer | undefined;
    for (const t of this.#timers)
      if (earliest === undefined || t.at < earliest.at || (t.at === earliest.at && t.seq < earliest.seq)) earliest = t;
    return earliest;
  }
}

/** Resolves after `ms` on `clock` (a timer that keeps the process alive: a retry's sleep is work still to do), or rejects with `signal`'s reason as soon as it aborts (the timer cleared). */
export function sleep(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clock.clearTimeout(handle);
      reject(signal!.reason);
    };
    const handle = clock.setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
