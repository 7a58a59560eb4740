// Simulated time for libraries that read `Date.now()` and schedule with the global timers
// (cockatiel, opossum): while installed, `Date.now()` is `now` and the timer functions queue
// callbacks that `advanceTo` runs in time order. Real `setImmediate` is left alone, so a
// simulation can still drain promise chains between its ticks.

interface FakeTimer {
  id: number;
  at: number;
  every: number | undefined;
  run: () => void;
}

/** What Node's timer functions return: only the parts the libraries call. */
class TimerHandle {
  constructor(readonly id: number) {}
  unref(): this {
    return this;
  }
  ref(): this {
    return this;
  }
  hasRef(): boolean {
    return false;
  }
}

type TimerFn = (callback: (...args: unknown[]) => void, ms?: number, ...args: unknown[]) => TimerHandle;

export class FakeTime {
  now = 0;
  readonly #timers = new Map<number, FakeTimer>();
  #nextId = 1;

  /** Replaces `Date.now` and the global timers; the returned function puts the real ones back. */
  install(): () => void {
    const saved = {
      now: Date.now,
      setTimeout: globalThis.setTimeout,
      setInterval: globalThis.setInterval,
      clearTimeout: globalThis.clearTimeout,
      clearInterval: globalThis.clearInterval,
    };
    const schedule =
      (repeat: boolean): TimerFn =>
      (callback, ms = 0, ...args) => {
        const id = this.#nextId++;
        const delay = Math.max(1, ms);
        this.#timers.set(id, { id, at: this.now + delay, every: repeat ? delay : undefined, run: () => callback(...args) });
        return new TimerHandle(id);
      };
    const clear = (handle: unknown) => {
      if (handle instanceof TimerHandle) this.#timers.delete(handle.id);
    };
    Date.now = () => this.now;
    Object.assign(globalThis, {
      setTimeout: schedule(false),
      setInterval: schedule(true),
      clearTimeout: clear,
      clearInterval: clear,
    });
    return () => {
      Date.now = saved.now;
      Object.assign(globalThis, {
        setTimeout: saved.setTimeout,
        setInterval: saved.setInterval,
        clearTimeout: saved.clearTimeout,
        clearInterval: saved.clearInterval,
      });
      this.#timers.clear();
    };
  }

  /** Moves the clock to `ms`, running every timer due by then in the order they fall due. */
  advanceTo(ms: number): void {
    for (;;) {
      let due: FakeTimer | undefined;
      for (const timer of this.#timers.values()) if (timer.at <= ms && (due === undefined || timer.at < due.at)) due = timer;
      if (due === undefined) break;
      this.now = due.at;
      if (due.every === undefined) this.#timers.delete(due.id);
      else due.at += due.every;
      due.run();
    }
    this.now = ms;
  }
}
