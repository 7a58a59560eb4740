import { Counter, Gauge, register as defaultRegistry, type Registry } from 'prom-client';
import { breakerMetrics } from './breaker/metrics.js';
import { sabotageTotals } from './sabotage.js';
import { PROTOCOLS, protocolIndex, type Protocol } from './types.js';

/**
 * Every Prometheus metric havoc exports, created once per registry. Pass the application's
 * registry (Engine option `registry`, limiter option `registry`) to have them there; the
 * default is prom-client's global registry.
 */
export interface HavocMetrics {
  faultsInjected: Counter<'policy' | 'protocol' | 'fault'>;
  decisions: Counter<'protocol' | 'outcome'>;
  configReloads: Counter<'source' | 'result'>;
  activePolicies: Gauge<'protocol'>;
  halted: Gauge;
  clientClosed: Counter<'policy' | 'protocol'>;
  rateLimitRejected: Counter<'name'>;
  limiterLimit: Gauge<'name'>;
  limiterInflight: Gauge<'name'>;
  limiterShed: Counter<'name'>;
  bulkheadRejected: Counter<'name'>;
  breakerState: Gauge<'name'>;
  breakerCalls: Counter<'name' | 'outcome'>;
  breakerTransitions: Counter<'name' | 'from' | 'to'>;
  retryAttempts: Counter<'name' | 'outcome'>;
  retryBudgetExhausted: Counter<'name'>;
  sabotageCpuThreads: Gauge;
  sabotageRamBytes: Gauge;
  sabotageTransitions: Counter<'kind' | 'event'>;
  fleetVersionApplied: Gauge<'channel' | 'member'>;
  fleetConnected: Gauge<'channel' | 'member'>;
  fleetRejections: Counter<'channel' | 'reason'>;
  /**
   * Counts one `havoc_decisions_total{outcome="pass"}`: a plain addition, folded into the
   * counter when it is collected, because a labelled `inc()` costs as much as the decision.
   */
  countPass(protocol: Protocol): void;
  /**
   * Counts `havoc_ratelimit_rejected_total{name}` by plain addition, folded into the counter
   * when it is collected: a labelled `inc()` cost more than the limiter's own decision.
   */
  rateLimitRejectedFor(name: string): { inc(): void };
  /**
   * Makes `havoc_limiter_limit{name}` and `havoc_limiter_inflight{name}` read `read()` when
   * scraped, so they are live rather than as of the last release. `read` returns undefined
   * once its limiter is gone, which unregisters it.
   */
  watchLimiter(name: string, read: () => { limit: number; inflight: number } | undefined): void;
  /**
   * Makes the `havoc_breaker_*` series of breaker `name` read `read()` when scraped: the
   * core's cumulative, process-wide figures. `read` returns undefined once its breaker is gone.
   */
  watchBreaker(name: string, read: () => BreakerFigures | undefined): void;
  /**
   * The attempt counts of retry `name` not yet folded into `havoc_retry_attempts_total`: a
   * retry adds to the fields (plain additions, no labelled `inc()` per call); a scrape folds them.
   */
  retryCounts(name: string): RetryCounts;
  /** Refusals of budget `name` not yet folded into `havoc_retry_budget_exhausted_total`. */
  budgetCounts(name: string): { exhausted: number };
}

/**
 * Attempts of a retry by outcome: `success`; `retried` (failed, tried again); `exhausted`
 * (failed, and the retry gave up); `fatal` (failed with an error not worth retrying).
 */
export interface RetryCounts {
  success: number;
  retried: number;
  exhausted: number;
  fatal: number;
}

/** What a breaker's metrics are read from (cumulative since the breaker was created). */
export interface BreakerFigures {
  /** 0 closed, 1 open, 2 half-open, 3 isolated. */
  state: number;
  calls: Readonly<Record<'success' | 'failure' | 'ignored' | 'rejected', number>>;
  transitions: readonly { from: string; to: string; count: number }[];
}

const byRegistry = new WeakMap<Registry, HavocMetrics>();

/** havoc's metrics in `registry`, created on first use (idempotent per registry). */
export function metricsFor(registry: Registry = defaultRegistry): HavocMetrics {
  const existing = byRegistry.get(registry);
  if (existing) return existing;
  const registers = [registry];
  const counter = <L extends string>(name: string, help: string, labelNames: readonly L[]) =>
    (registry.getSingleMetric(name) as Counter<L> | undefined) ?? new Counter<L>({ name, help, labelNames, registers });
  const gauge = <L extends string>(name: string, help: string, labelNames: readonly L[], collect?: (this: Gauge<L>) => void) =>
    (registry.getSingleMetric(name) as Gauge<L> | undefined) ??
    new Gauge<L>({ name, help, labelNames, registers, ...(collect ? { collect } : {}) });
  /** Passes not yet folded into the counter, by protocol index (a typed array: no overflow check on the add). */
  const pendingPasses = new Float64Array(PROTOCOLS.length);
  const limiters = new Map<string, () => { limit: number; inflight: number } | undefined>();
  const breakers = new Map<string, () => BreakerFigures | undefined>();
  const retries = new Map<string, RetryCounts>();
  const budgets = new Map<string, { exhausted: number }>();
  /** Each watched limiter's figures, read once per scrape by whichever gauge collects first. */
  const readLimiters = (): Map<string, { limit: number; inflight: number }> => {
    const figures = new Map<string, { limit: number; inflight: number }>();
    for (const [name, read] of limiters) {
      const state = read();
      if (state === undefined) limiters.delete(name);
      else figures.set(name, state);
    }
    return figures;
  };
  /** Rejections not yet folded into the counter, by limiter name (limiters of one name share an entry). */
  const pendingRejections = new Map<string, { count: number; inc(): void }>();
  const rateLimitRejected =
    (registry.getSingleMetric('havoc_ratelimit_rejected_total') as Counter<'name'> | undefined) ??
    new Counter<'name'>({
      name: 'havoc_ratelimit_rejected_total',
      help: 'Calls refused by a rate limiter',
      labelNames: ['name'],
      registers,
      collect() {
        for (const [name, pending] of pendingRejections) {
          if (pending.count > 0) this.labels(name).inc(pending.count);
          pending.count = 0;
        }
      },
    });
  const decisions =
    (registry.getSingleMetric('havoc_decisions_total') as Counter<'protocol' | 'outcome'> | undefined) ??
    new Counter<'protocol' | 'outcome'>({
      name: 'havoc_decisions_total',
      help: 'Decisions made by interceptors, by outcome',
      labelNames: ['protocol', 'outcome'],
      registers,
      collect() {
        PROTOCOLS.forEach((protocol, i) => {
          if (pendingPasses[i]! > 0) this.labels(protocol, 'pass').inc(pendingPasses[i]);
          pendingPasses[i] = 0;
        });
      },
    });
  const metrics: HavocMetrics = {
    faultsInjected: counter('havoc_faults_injected_total', 'Faults havoc injected', ['policy', 'protocol', 'fault']),
    decisions,
    configReloads: counter('havoc_config_reloads_total', 'Configuration loads by source and result', ['source', 'result']),
    activePolicies: gauge('havoc_active_policies', 'Policies in force, by protocol', ['protocol']),
    halted: gauge('havoc_halted', '1 while every fault is halted', []),
    clientClosed: counter('havoc_client_closed_total', 'Requests whose client went away during injected latency (status 499)', [
      'policy',
      'protocol',
    ]),
    rateLimitRejected,
    limiterLimit: gauge('havoc_limiter_limit', 'Current concurrency limit of an adaptive limiter', ['name'], function () {
      for (const [name, { limit }] of readLimiters()) this.labels(name).set(limit);
    }),
    limiterInflight: gauge('havoc_limiter_inflight', 'Calls in flight through an adaptive limiter', ['name'], function () {
      for (const [name, { inflight }] of readLimiters()) this.labels(name).set(inflight);
    }),
    limiterShed: counter('havoc_limiter_shed_total', 'Calls shed by an adaptive limiter', ['name']),
    bulkheadRejected: counter('havoc_bulkhead_rejected_total', 'Calls refused by a bulkhead', ['name']),
    // Sabotage runs on native threads and changes on its own (warmup end, duration): these
    // read the process-wide figures from the core when scraped.
    sabotageCpuThreads: gauge('havoc_sabotage_cpu_threads', 'Native threads burning CPU', [], function () {
      this.set(sabotageTotals().cpuThreads);
    }),
    sabotageRamBytes: gauge('havoc_sabotage_ram_bytes', 'Bytes held resident by RAM sabotage', [], function () {
      this.set(sabotageTotals().ramBytes);
    }),
    retryAttempts:
      (registry.getSingleMetric('havoc_retry_attempts_total') as Counter<'name' | 'outcome'> | undefined) ??
      new Counter<'name' | 'outcome'>({
        name: 'havoc_retry_attempts_total',
        help: 'Calls made by a retry, by outcome (success, retried, exhausted, fatal)',
        labelNames: ['name', 'outcome'],
        registers,
        collect() {
          for (const [name, counts] of retries) {
            for (const outcome of ['success', 'retried', 'exhausted', 'fatal'] as const) {
              if (counts[outcome] > 0) this.inc({ name, outcome }, counts[outcome]);
              counts[outcome] = 0;
            }
          }
        },
      }),
    retryBudgetExhausted:
      (registry.getSingleMetric('havoc_retry_budget_exhausted_total') as Counter<'name'> | undefined) ??
      new Counter<'name'>({
        name: 'havoc_retry_budget_exhausted_total',
        help: 'Retries (and hedges) a retry budget refused',
        labelNames: ['name'],
        registers,
        collect() {
          for (const [name, counts] of budgets) {
            if (counts.exhausted > 0) this.inc({ name }, counts.exhausted);
            counts.exhausted = 0;
          }
        },
      }),
    sabotageTransitions: sabotageCounter(registry),
    // By member too: two members of one channel in one process must not overwrite each other's value.
    fleetVersionApplied: gauge('havoc_fleet_version_applied', 'Version of the fleet set in force (0: none yet)', ['channel', 'member']),
    fleetConnected: gauge('havoc_fleet_connected', '1 while the fleet member is connected to Redis', ['channel', 'member']),
    fleetRejections: counter('havoc_fleet_rejections_total', 'Fleet sets or messages a member refused, by reason', ['channel', 'reason']),
    ...breakerMetrics(registers, breakers),
    watchLimiter(name, read) {
      limiters.set(name, read);
    },
    watchBreaker(name, read) {
      breakers.set(name, read);
    },
    rateLimitRejectedFor(name) {
      let pending = pendingRejections.get(name);
      if (pending === undefined) {
        pending = {
          count: 0,
          inc() {
            this.count += 1;
          },
        };
        pendingRejections.set(name, pending);
      }
      return pending;
    },
    retryCounts(name) {
      let counts = retries.get(name);
      if (counts === undefined) retries.set(name, (counts = { success: 0, retried: 0, exhausted: 0, fatal: 0 }));
      return counts;
    },
    budgetCounts(name) {
      let counts = budgets.get(name);
      if (counts === undefined) budgets.set(name, (counts = { exhausted: 0 }));
      return counts;
    },
    countPass(protocol) {
      const index = protocolIndex(protocol);
      if (index !== undefined) pendingPasses[index]! += 1;
    },
  };
  byRegistry.set(registry, metrics);
  return metrics;
}

/** Starts and stops by kind (`cpu`, `ram`), carried over from the core's cumulative counts. */
function sabotageCounter(registry: Registry): Counter<'kind' | 'event'> {
  const name = 'havoc_sabotage_transitions_total';
  const existing = registry.getSingleMetric(name) as Counter<'kind' | 'event'> | undefined;
  if (existing) return existing;
  const counted = { cpuStarts: 0, cpuStops: 0, ramStarts: 0, ramStops: 0 };
  const series = [
    ['cpuStarts', 'cpu', 'start'],
    ['cpuStops', 'cpu', 'stop'],
    ['ramStarts', 'ram', 'start'],
    ['ramStops', 'ram', 'stop'],
  ] as const;
  return new Counter({
    name,
    help: 'Sabotage starts and stops',
    labelNames: ['kind', 'event'] as const,
    registers: [registry],
    collect() {
      const totals = sabotageTotals();
      for (const [field, kind, event] of series) {
        const delta = totals[field] - counted[field];
        if (delta > 0) this.inc({ kind, event }, delta);
        counted[field] = totals[field];
      }
    },
  });
}
