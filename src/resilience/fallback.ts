import { Listeners, type Disposable } from '../breaker/events.js';
import type { CallContext, CallOptions } from './contract.js';

export interface FallbackOptions {
  /** Which failures get the fallback. Default all but the caller's abort (which never does). */
  when?: (error: unknown) => boolean;
}

/** A failure answered by the fallback. */
export interface FallbackEvent {
  error: unknown;
}

/**
 * Answers a failed call with a value (or what a function of the error returns) instead. A
 * fallback function that throws surfaces its own error, with `cause` the original failure.
 */
export class Fallback<V> {
  readonly #fallback: V | ((error: unknown) => V | Promise<V>);
  readonly #when: ((error: unknown) => boolean) | undefined;
  readonly #events = new Listeners<FallbackEvent>();

  constructor(fn: (error: unknown) => V | Promise<V>, options?: FallbackOptions);
  constructor(value: V, options?: FallbackOptions);
  constructor(valueOrFn: V | ((error: unknown) => V | Promise<V>), options: FallbackOptions = {}) {
    if (options.when !== undefined && typeof options.when !== 'function') throw new TypeError('when must be a function');
    this.#fallback = valueOrFn;
    this.#when = options.when;
  }

  /** Called each time the fallback answers. */
  onFallback(listener: (event: FallbackEvent) => void): Disposable {
    return this.#events.add(listener);
  }

  async execute<T>(fn: (context: CallContext) => T | Promise<T>, options: CallOptions = {}): Promise<T | V> {
    const { signal } = options;
    try {
      return await fn({ signal, attempt: options.attempt ?? 1 });
    } catch (error) {
      if (signal?.aborted || (this.#when !== undefined && !this.#when(error))) throw error;
      this.#events.emit({ error });
      const fallback = this.#fallback;
      if (typeof fallback !== 'function') return fallback;
      try {
        return await (fallback as (error: unknown) => V | Promise<V>)(error);
      } catch (fallbackError) {
        if (typeof fallbackError === 'object' && fallbackError !== null)
          Object.defineProperty(fallbackError, 'cause', { value: error, writable: true, configurable: true, enumerable: false });
        throw fallbackError;
      }
    }
  }
}
