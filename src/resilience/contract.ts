// The contract every resilience primitive keeps: `execute(fn, { signal })`, where `fn` gets
// `{ signal, attempt }`. The limiters and bulkheads (older) pass `fn` the signal itself;
// `wrap` accepts both.

/** What `fn` gets from `execute`. */
export interface CallContext {
  /** The caller's signal, combined with whatever the layers outside added (a timeout, a lost hedge). */
  signal?: AbortSignal;
  /** 1 for the first call, 2 for the first retry, … (from the nearest enclosing retry). */
  attempt: number;
}

/** The options of `execute`. */
export interface CallOptions {
  signal?: AbortSignal;
  /** Passed through from an enclosing retry. */
  attempt?: number;
}

/** What a layer hands the function it runs: a context, or (limiters, bulkheads) the signal alone. */
export type LayerArgument = CallContext | AbortSignal | undefined;

/**
 * Anything with `execute(fn, { signal })`: `Retry`, `CircuitBreaker`, `Timeout`, `Fallback`,
 * `Hedge`, `RateLimiter`, `Bulkhead`, `AdaptiveLimiter`, another `wrap`.
 */
export interface Executor {
  // Each layer passes its own kind of argument; `wrap` reads it with `toContext`.
  // `Promise<unknown>`: a `Fallback` may answer with a value of another type than `fn`'s.
  execute<T>(fn: (argument: LayerArgument) => T | Promise<T>, options?: { signal?: AbortSignal; attempt?: number }): Promise<unknown>;
}

/** A layer's argument as a context; `attempt` from outside when the layer passed only a signal. */
export function toContext(argument: LayerArgument, attempt: number): CallContext {
  if (argument === undefined) return { signal: undefined, attempt };
  if (argument instanceof AbortSignal) return { signal: argument, attempt };
  return argument;
}

/** A signal that aborts when `signal` does, with its reason, until `dispose`. */
export function linkedController(signal: AbortSignal | undefined): { controller: AbortController; dispose(): void } {
  const controller = new AbortController();
  if (signal === undefined) return { controller, dispose: () => undefined };
  if (signal.aborted) {
    controller.abort(signal.reason);
    return { controller, dispose: () => undefined };
  }
  const onAbort = () => controller.abort(signal.reason);
  signal.addEventListener('abort', onAbort, { once: true });
  return { controller, dispose: () => signal.removeEventListener('abort', onAbort) };
}

/** Checks a name option: a non-empty string. */
export function checkName(name: unknown, what: string): string {
  if (typeof name !== 'string' || name === '') throw new TypeError(`a ${what} name must be a non-empty string (got ${String(name)})`);
  return name;
}
