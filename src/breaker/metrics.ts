import { Counter, Gauge, type Registry } from 'prom-client';

import type { BreakerFigures } from '../metrics.js';

type Read = () => BreakerFigures | undefined;

/**
 * The three `havoc_breaker_*` series, read from the core when scraped. Counters carry the
 * core's cumulative counts over as deltas, so calls and transitions made in any thread on a
 * shared breaker are counted once per registry.
 */
export function breakerMetrics(
  registers: Registry[],
  breakers: Map<string, Read>,
): { breakerState: Gauge<'name'>; breakerCalls: Counter<'name' | 'outcome'>; breakerTransitions: Counter<'name' | 'from' | 'to'> } {
  const registry = registers[0]!;
  const existing = (name: string) => registry.getSingleMetric(name);
  /** Every live breaker's figures (each series reads them when it collects). */
  const read = (): Map<string, BreakerFigures> => {
    const figures = new Map<string, BreakerFigures>();
    for (const [name, figuresOf] of breakers) {
      const current = figuresOf();
      if (current === undefined) breakers.delete(name);
      else figures.set(name, current);
    }
    return figures;
  };
  /** What each counter already holds, by series key, to add only the difference. */
  const counted = new Map<string, number>();
  const carry = (counter: Counter<string>, labels: Record<string, string>, total: number) => {
    const key = JSON.stringify(labels);
    const delta = total - (counted.get(key) ?? 0);
    // A new breaker under an old name starts from 0: count from there.
    if (delta > 0) counter.inc(labels, delta);
    counted.set(key, total);
  };
  const breakerState =
    (existing('havoc_breaker_state') as Gauge<'name'> | undefined) ??
    new Gauge<'name'>({
      name: 'havoc_breaker_state',
      help: 'State of a circuit breaker: 0 closed, 1 open, 2 half-open, 3 isolated',
      labelNames: ['name'],
      registers,
      collect() {
        for (const [name, { state }] of read()) this.labels(name).set(state);
      },
    });
  const breakerCalls =
    (existing('havoc_breaker_calls_total') as Counter<'name' | 'outcome'> | undefined) ??
    new Counter<'name' | 'outcome'>({
      name: 'havoc_breaker_calls_total',
      help: 'Calls through a circuit breaker, by outcome (success, failure, ignored, rejected)',
      labelNames: ['name', 'outcome'],
      registers,
      collect() {
        for (const [name, { calls }] of read()) {
          for (const [outcome, total] of Object.entries(calls)) carry(this, { name, outcome }, total);
        }
      },
    });
  const breakerTransitions =
    (existing('havoc_breaker_transitions_total') as Counter<'name' | 'from' | 'to'> | undefined) ??
    new Counter<'name' | 'from' | 'to'>({
      name: 'havoc_breaker_transitions_total',
      help: 'State changes of a circuit breaker',
      labelNames: ['name', 'from', 'to'],
      registers,
      collect() {
        for (const [name, { transitions }] of read()) {
          for (const { from, to, count } of transitions) carry(this, { name, from, to }, count);
        }
      },
    });
  return { breakerState, breakerCalls, breakerTransitions };
}
