import type { Registry } from 'prom-client';
import native = require('../native.js');
import { BulkheadFullError, LoadShedError } from '../errors.js';
import { metricsFor } from '../metrics.js';

export type Priority = 'low' | 'standard' | 'critical';

const PRIORITY_INDEX: Readonly<Record<Priority, number>> = { low: 0, standard: 1, critical: 2 };
const ADMITTED = 0;
const FULL = 1;

export interface BulkheadOptions {
  /** Calls allowed in flight at once. */
  capacity: number;
  /** Calls allowed to wait for a place (first come, first served). Default 0: refuse at once. */
  queue?: number;
  /** Label of the metrics. Default `'default'`. */
  name?: string;
  registry?: Registry;
}

export interface PriorityBulkheadOptions {
  capacity: number;
  /** Utilisation up to which each priority is admitted. Default low 0.5, standard 0.8, critical 1. */
  thresholds?: Partial<Record<Priority, number>>;
  name?: string;
  registry?: Registry;
}

export interface BulkheadExecuteOptions {
  signal?: AbortSignal;
}

type NativeBulkhead = InstanceType<typeof native.NativeBulkhead>;
const nativeHandle = Symbol('nativeHandle');

/** The process-wide native bulkhead called `name`; a name already taken with other options throws (from the core). */
function sharedHandle(name: string, capacity: number, thresholds?: number[]): NativeBulkhead {
  if (typeof name !== 'string' || name === '') throw new TypeError('a bulkhead name must be a non-empty string');
  return native.NativeBulkhead.shared(name, capacity, thresholds);
}

interface Waiter {
  resolve(): void;
  reject(reason: unknown): void;
}

/**
 * At most `capacity` calls in flight; the check and the acquire are one atomic step in the
 * Rust core. Up to `queue` more wait their turn.
 */
export class Bulkhead {
  readonly name: string;
  readonly capacity: number;
  readonly queueSize: number;
  readonly #native: NativeBulkhead;
  readonly #slot: number;
  readonly #waiting: Waiter[] = [];
  readonly #rejected: { inc(): void };

  constructor(options: BulkheadOptions) {
    this.capacity = checkCapacity(options?.capacity);
    this.queueSize = options.queue ?? 0;
    if (!Number.isSafeInteger(this.queueSize) || this.queueSize < 0)
      throw new RangeError(`queue must be an integer >= 0 (got ${String(options.queue)})`);
    this.name = options.name ?? 'default';
    this.#native = (options as { [nativeHandle]?: NativeBulkhead })[nativeHandle] ?? new native.NativeBulkhead(this.capacity);
    this.#slot = this.#native.slot;
    this.#rejected = metricsFor(options.registry).bulkheadRejected.labels(this.name);
  }

  /**
   * The process-wide bulkhead `name`: `capacity` places for every worker thread together.
   * The first creation wins; other options later throw. It cannot queue (`queue` must be 0):
   * a waiter in one thread would not learn of a place freed in another.
   */
  static shared(name: string, options: Omit<BulkheadOptions, 'name'>): Bulkhead {
    if ((options.queue ?? 0) !== 0)
      throw new RangeError('a shared bulkhead cannot queue (queue must be 0): a waiter would not see places freed in other threads');
    const handle = sharedHandle(name, checkCapacity(options?.capacity));
    return new Bulkhead({ ...options, name, [nativeHandle]: handle } as BulkheadOptions);
  }

  /** Calls in flight now. */
  get inflight(): number {
    return this.#native.inflight;
  }

  /** Calls waiting for a place. */
  get queued(): number {
    return this.#waiting.length;
  }

  /** Runs `fn` when a place is free; throws `BulkheadFullError` when every place and the queue are taken. */
  async execute<T>(fn: (signal?: AbortSignal) => T | Promise<T>, options: BulkheadExecuteOptions = {}): Promise<T> {
    const { signal } = options;
    signal?.throwIfAborted();
    if (native.bulkheadTryAcquire(this.#slot, PRIORITY_INDEX.standard) !== ADMITTED) await this.#wait(signal);
    try {
      return await fn(signal);
    } finally {
      this.#release();
    }
  }

  #wait(signal?: AbortSignal): Promise<void> {
    if (this.#waiting.length >= this.queueSize) {
      this.#rejected.inc();
      return Promise.reject(
        new BulkheadFullError(`bulkhead "${this.name}" is full (${this.capacity} in flight, ${this.#waiting.length} queued)`),
      );
    }
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        const index = this.#waiting.indexOf(waiter);
        if (index >= 0) this.#waiting.splice(index, 1);
        reject(signal?.reason);
      };
      const waiter: Waiter = {
        resolve: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
        reject,
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#waiting.push(waiter);
    });
  }

  #release(): void {
    // Hand the place straight to the next waiter, so a newcomer cannot take it first.
    const next = this.#waiting.shift();
    if (next) next.resolve();
    else native.bulkheadRelease(this.#slot);
  }
}

/**
 * A bulkhead that sheds low-priority work first: a call of priority `p` is admitted only while
 * utilisation is below `thresholds[p]`. Check and acquire are one atomic step.
 */
export class PriorityBulkhead {
  readonly name: string;
  readonly capacity: number;
  readonly thresholds: Readonly<Record<Priority, number>>;
  readonly #native: NativeBulkhead;
  readonly #slot: number;
  readonly #rejected: { inc(): void };
  readonly #shed: { inc(): void };

  constructor(options: PriorityBulkheadOptions) {
    this.capacity = checkCapacity(options?.capacity);
    this.name = options.name ?? 'default';
    this.thresholds = { low: 0.5, standard: 0.8, critical: 1, ...options.thresholds };
    for (const key of Object.keys(this.thresholds)) {
      if (!(key in PRIORITY_INDEX)) throw new RangeError(`thresholds.${key}: unknown priority (use low, standard, critical)`);
    }
    const { low, standard, critical } = this.thresholds;
    this.#native =
      (options as { [nativeHandle]?: (thresholds: number[]) => NativeBulkhead })[nativeHandle]?.([low, standard, critical]) ??
      new native.NativeBulkhead(this.capacity, [low, standard, critical]);
    this.#slot = this.#native.slot;
    const metrics = metricsFor(options.registry);
    this.#rejected = metrics.bulkheadRejected.labels(this.name);
    this.#shed = metrics.limiterShed.labels(this.name);
  }

  /**
   * The process-wide priority bulkhead `name`, one for every worker thread. The first
   * creation wins; other options (capacity or thresholds) later throw.
   */
  static shared(name: string, options: Omit<PriorityBulkheadOptions, 'name'>): PriorityBulkhead {
    const capacity = checkCapacity(options?.capacity);
    const make = (thresholds: number[]) => sharedHandle(name, capacity, thresholds);
    return new PriorityBulkhead({ ...options, name, [nativeHandle]: make } as PriorityBulkheadOptions);
  }

  /** Calls in flight now (in every thread, for a shared bulkhead). */
  get inflight(): number {
    return this.#native.inflight;
  }

  /**
   * Runs `fn` if its priority (default `'standard'`) may still take a place: `LoadShedError`
   * when the place is kept for higher priorities, `BulkheadFullError` when none is left.
   */
  async execute<T>(
    fn: (signal?: AbortSignal) => T | Promise<T>,
    options: BulkheadExecuteOptions & { priority?: Priority } = {},
  ): Promise<T> {
    const priority = options.priority ?? 'standard';
    const index = PRIORITY_INDEX[priority];
    if (index === undefined) throw new RangeError(`priority must be 'low', 'standard' or 'critical' (got ${JSON.stringify(priority)})`);
    options.signal?.throwIfAborted();
    const result = native.bulkheadTryAcquire(this.#slot, index);
    if (result !== ADMITTED) {
      this.#rejected.inc();
      if (result === FULL) throw new BulkheadFullError(`bulkhead "${this.name}" is full (${this.capacity} in flight)`);
      this.#shed.inc();
      throw new LoadShedError(
        `bulkhead "${this.name}": ${priority} priority shed at ${this.inflight}/${this.capacity} in flight (threshold ${this.thresholds[priority]})`,
      );
    }
    try {
      return await fn(options.signal);
    } finally {
      native.bulkheadRelease(this.#slot);
    }
  }
}

function checkCapacity(capacity: unknown): number {
  if (typeof capacity !== 'number' || !Number.isSafeInteger(capacity) || capacity < 1 || capacity > 0xffff_ffff) {
    throw new RangeError(`capacity must be an integer >= 1 (got ${String(capacity)})`);
  }
  return capacity;
}
