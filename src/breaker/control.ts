import native = require('../native.js');
import type { BreakerState } from './options.js';

/** A shared breaker as the control plane reports it. */
export interface BreakerStatus {
  name: string;
  state: BreakerState;
  generation: number;
  openRemainingMs: number;
  halfOpenFailures: number;
  calls: { success: number; failure: number; ignored: number; rejected: number };
}

/** Every shared breaker of the process (`CircuitBreaker.shared`), by name. Per-thread breakers (`new`) are not listed. */
export function sharedBreakers(): BreakerStatus[] {
  return native.sharedBreakerList().map(({ name, snapshot, calls }) => ({
    name,
    state: snapshot.state as BreakerState,
    generation: snapshot.generation,
    openRemainingMs: snapshot.openRemainingMs,
    halfOpenFailures: snapshot.halfOpenFailures,
    calls,
  }));
}

/** Shared breakers this thread's control plane isolated (at most one isolation each). */
const isolatedByOperator = new Set<string>();

/**
 * Isolates (once: asking again changes nothing) or resets the shared breaker `name` for an
 * operator. A reset first releases the operator's isolation, then closes the breaker; isolations
 * held by code stay until their holders release them. Undefined when there is no such breaker.
 */
export function controlSharedBreaker(name: string, action: 'isolate' | 'reset'): BreakerStatus | undefined {
  if (!sharedBreakers().some((b) => b.name === name)) return undefined;
  if (action === 'isolate') {
    if (!isolatedByOperator.has(name)) native.sharedBreakerControl(name, 'isolate');
    isolatedByOperator.add(name);
  } else {
    if (isolatedByOperator.delete(name)) native.sharedBreakerControl(name, 'release');
    native.sharedBreakerControl(name, 'reset');
  }
  return sharedBreakers().find((b) => b.name === name);
}
