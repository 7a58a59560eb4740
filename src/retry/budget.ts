import type { Registry } from 'prom-client';
import native = require('../native.js');
import { parseDuration } from '../duration.js';
import { metricsFor } from '../metrics.js';
import { checkName } from '../resilience/contract.js';

type NativeBudget = InstanceType<typeof native.NativeRetryBudget>;
const nativeHandle = Symbol('nativeHandle');

export interface RetryBudgetOptions {
  /** Retries allowed per first attempt in the window. Default 0.2. */
  ratio?: number;
  /** Retries allowed per second of window whatever the traffic. Default 10. */
  minPerSec?: number;
  /** The window (milliseconds or a duration). Default 10 s. */
  windowMs?: number | string;
  /** Label of the metrics; the key of `RetryBudget.shared`. Default `'default'`. */
  name?: string;
  /** Registry for havoc's metrics; default prom-client's global registry. */
  registry?: Registry;
}

/** A budget's figures: its options, and the window's first attempts and retries. */
export interface BudgetStatus {
  name: string;
  ratio: number;
  minPerSec: number;
  windowMs: number;
  requests: number;
  retries: number;
  /** Retries refused since the budget was created (every thread, for a shared one). */
  exhausted: number;
}

type InternalOptions = RetryBudgetOptions & { [nativeHandle]?: NativeBudget };

function nativeArgs(o: RetryBudgetOptions): [number, number, number] {
  const ratio = o.ratio ?? 0.2;
  const minPerSec = o.minPerSec ?? 10;
  const windowMs = o.windowMs === undefined ? 10_000 : parseDuration(o.windowMs);
  if (typeof ratio !== 'number' || !(ratio >= 0 && ratio <= 1000))
    throw new RangeError(`ratio must be a number in [0, 1000] (got ${String(ratio)})`);
  if (typeof minPerSec !== 'number' || !(minPerSec >= 0 && Number.isFinite(minPerSec)))
    throw new RangeError(`minPerSec must be a finite number >= 0 (got ${String(minPerSec)})`);
  if (!(windowMs >= 10 && Number.isFinite(windowMs)))
    throw new RangeError(`windowMs must be a duration of at least 10 ms (got ${String(o.windowMs)})`);
  return [ratio, minPerSec, windowMs];
}

/**
 * A retry budget in the Rust core: over the last `windowMs`, retries stay at most
 * `ratio × first attempts + minPerSec × window seconds`, so that retrying cannot multiply
 * the load on a dependency that is down. `RetryBudget.shared(name, opts)` is one budget for
 * every worker thread. Give it to `Retry` (and `Hedge`) as `budget`.
 */
export class RetryBudget {
  readonly name: string;
  readonly #native: NativeBudget;
  readonly #slot: number;
  readonly #exhausted: { exhausted: number };

  constructor(options: RetryBudgetOptions = {}) {
    this.name = checkName(options.name ?? 'default', 'retry budget');
    this.#native = (options as InternalOptions)[nativeHandle] ?? new native.NativeRetryBudget(...nativeArgs(options));
    this.#slot = this.#native.slot;
    this.#exhausted = metricsFor(options.registry).budgetCounts(this.name);
  }

  /** The process-wide budget `name`. The first creation wins; other options later throw. */
  static shared(name: string, options: Omit<RetryBudgetOptions, 'name'> = {}): RetryBudget {
    const handle = native.NativeRetryBudget.shared(checkName(name, 'retry budget'), ...nativeArgs(options));
    return new RetryBudget({ ...options, name, [nativeHandle]: handle } as InternalOptions);
  }

  /** A budget on a clock that moves only by `setClockMs` (it starts at 0), for tests. */
  static withManualClock(options: RetryBudgetOptions = {}): RetryBudget & { setClockMs(ms: number): void } {
    const handle = native.NativeRetryBudget.withManualClock(...nativeArgs(options));
    const budget = new RetryBudget({ ...options, [nativeHandle]: handle } as InternalOptions);
    return Object.assign(budget, { setClockMs: (ms: number) => handle.setClockMs(ms) });
  }

  /** Counts a first attempt (`Retry` does this for each `execute`). */
  recordRequest(): void {
    native.retryBudgetRequest(this.#slot);
  }

  /** Takes one retry; `false` when the budget is spent (counted in `havoc_retry_budget_exhausted_total`). */
  trySpend(): boolean {
    if (native.retryBudgetSpend(this.#slot)) return true;
    this.#exhausted.exhausted += 1;
    return false;
  }

  /** The window's figures now. */
  status(): BudgetStatus {
    return { ...this.#native.status(), name: this.name };
  }
}

/** Every shared retry budget of the process (`RetryBudget.shared`), by name. */
export function sharedRetryBudgets(): BudgetStatus[] {
  return native.sharedRetryBudgetList();
}
