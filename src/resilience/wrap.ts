import { toContext, type CallContext, type CallOptions, type Executor, type LayerArgument } from './contract.js';

/** Policies run one inside another: `wrap(fallback, retry, breaker, timeout)`, outermost first. */
export class Wrapped implements Executor {
  readonly policies: readonly Executor[];

  constructor(policies: readonly Executor[]) {
    this.policies = policies;
  }

  /**
   * Runs `fn` through every policy; `fn` gets the innermost signal and the nearest retry's
   * attempt. Typed as `fn`'s result: a `Fallback` inside should answer with the same type.
   */
  execute<T>(fn: (context: CallContext) => T | Promise<T>, options: CallOptions = {}): Promise<T> {
    const policies = this.policies;
    const run = (index: number, context: CallContext): Promise<T> => {
      const policy = policies[index];
      if (policy === undefined) {
        // A rejection, never a synchronous throw, whatever fn does (with no policy around it too).
        try {
          return Promise.resolve(fn(context));
        } catch (error) {
          return Promise.reject(error);
        }
      }
      return policy.execute((argument: LayerArgument) => run(index + 1, toContext(argument, context.attempt)), {
        signal: context.signal,
        attempt: context.attempt,
      }) as Promise<T>;
    };
    return run(0, { signal: options.signal, attempt: options.attempt ?? 1 });
  }
}

/**
 * Composes policies, outermost first. Anything with `execute(fn, { signal })` joins: `Retry`,
 * `CircuitBreaker`, `Timeout`, `Fallback`, `Hedge`, `RateLimiter`, `Bulkhead`,
 * `AdaptiveLimiter`, another `wrap`. The caller's abort reason comes out of every layer unchanged.
 */
export function wrap(...policies: Executor[]): Wrapped {
  for (const [i, policy] of policies.entries()) {
    if (typeof (policy as { execute?: unknown } | null)?.execute !== 'function')
      throw new TypeError(`wrap: argument ${i} has no execute(fn, { signal }) method`);
  }
  return new Wrapped(policies);
}
