// The one contract every interceptor shares with the engine: ask for a decision, count it,
// mark the active span, serve the latency with an abortable timer. Interceptors differ only
// in how they act out an error or a drop on their protocol.
import { setTimeout as delay } from 'node:timers/promises';
import type { Decision, Engine, HeaderBag } from '../engine.js';
import type { Protocol } from '../types.js';
import { activeSpanEvent } from '../tracing.js';

export type FaultKind = 'latency' | 'error' | 'drop';

/** Decides one request or message and records what it got. */
export function decide(engine: Engine, protocol: Protocol, target: string, headers?: HeaderBag): Decision | null {
  const decision = engine.decide(protocol, target, headers);
  const metrics = engine.metrics;
  if (decision === null) {
    metrics.countPass(protocol);
    return null;
  }
  const outcome: FaultKind = decision.drop ? 'drop' : decision.error ? 'error' : 'latency';
  metrics.decisions.labels(protocol, outcome).inc();
  if (decision.latencyMs > 0) recordFault(engine, decision, protocol, 'latency', target);
  if (outcome !== 'latency') recordFault(engine, decision, protocol, outcome, target);
  return decision;
}

/**
 * Like {@link decide} for a request that may only be slowed down (a statement inside a SQL
 * transaction): an error or drop the engine rolled is discarded, not counted.
 */
export function decideLatencyOnly(engine: Engine, protocol: Protocol, target: string): Decision | null {
  const decision = engine.decide(protocol, target);
  if (decision === null || decision.latencyMs <= 0) {
    engine.metrics.countPass(protocol);
    return null;
  }
  engine.metrics.decisions.labels(protocol, 'latency').inc();
  recordFault(engine, decision, protocol, 'latency', target);
  return { ...decision, error: null, drop: false };
}

/** Counts one injected fault and adds a `havoc.<protocol>.<fault>` event to the active span. */
export function recordFault(engine: Engine, decision: Decision, protocol: Protocol, fault: FaultKind, target: string): void {
  engine.metrics.faultsInjected.labels(decision.policy, protocol, fault).inc();
  activeSpanEvent(`havoc.${protocol}.${fault}`, {
    'havoc.policy': decision.policy,
    'havoc.target': target,
    ...(fault === 'latency' ? { 'havoc.latency_ms': decision.latencyMs } : {}),
    ...(fault === 'error' && decision.error ? { 'havoc.error_code': decision.error.code } : {}),
  });
}

/** Counts a request whose client went away during the injected latency (nginx's 499). */
export function clientClosed(engine: Engine, decision: Decision, protocol: Protocol): void {
  engine.metrics.clientClosed.labels(decision.policy, protocol).inc();
}

/**
 * Waits `ms` on a timer, never blocking the event loop. Resolves `false` instead of waiting
 * out the delay when `signal` aborts (the caller went away), `true` otherwise.
 */
export async function serveLatency(ms: number, signal?: AbortSignal): Promise<boolean> {
  if (ms <= 0) return !signal?.aborted;
  try {
    await delay(ms, undefined, signal ? { signal } : undefined);
    return true;
  } catch (error) {
    if (signal?.aborted) return false;
    throw error;
  }
}
