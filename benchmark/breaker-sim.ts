// Discrete-event simulation of a dependency outage and recovery: 1,000 calls/s (Poisson, in
// 4 workers of 250/s each), a healthy call takes 20 ms; the dependency is healthy for 20 s, fails
// every call for 60 s, then recovers for 60 s. Two kinds of outage: failures that take as long
// as a call (20 ms: an overloaded server answering 503), and failures that come back at once
// (1 ms: connection refused). havoc runs one breaker (the real Rust core on a
// manual clock) that the 4 workers share, as `CircuitBreaker.shared` does across threads;
// cockatiel and opossum cannot share a breaker across threads (cockatiel #89, opossum #675),
// so each worker has its own. cockatiel and opossum read `Date.now()` and the global timers,
// which `FakeTime` replaces with simulated time. Simulated time in 1 ms ticks, fixed seed.
// Run: npm run bench:breaker
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import {
  circuitBreaker,
  CircuitState,
  ConsecutiveBreaker,
  CountBreaker,
  ExponentialBackoff,
  handleAll,
  noJitterGenerator,
  SamplingBreaker,
  type IBreaker,
} from 'cockatiel';
import Opossum from 'opossum';
import { CircuitBreaker, type CircuitBreakerOptions } from 'havoc';
import { mulberry32 } from '../src/random.js';
import { FakeTime } from './fake-time.js';

const WORKERS = 4;
const RPS = 1000;
const LATENCY_MS = 20;
/** How long a failing call takes, per outage kind. */
const FAILURE_MS = [20, 1];
const OUTAGE_AT_MS = 20_000;
const RECOVER_AT_MS = 80_000;
const END_MS = 140_000;
const OPEN_MS = 5000;
const MAX_OPEN_MS = 60_000;
const SEED = 7;

type Call = () => Promise<void>;

/** One worker's view of its breaker. */
interface Guard {
  execute(call: Call): Promise<void>;
  closed(): boolean;
}

interface Contender {
  name: string;
  /** One guard per worker (havoc: the same breaker behind all four). */
  guards: Guard[];
  tick(nowMs: number): void;
  stop(): void;
}

/** A trip rule as each library spells it; `undefined` where a library has no such rule. */
interface Rule {
  name: string;
  havoc: CircuitBreakerOptions;
  cockatiel: () => IBreaker;
  opossum?: Opossum.Options;
}

const RULES: Rule[] = [
  { name: 'consecutive 5', havoc: { consecutive: 5 }, cockatiel: () => new ConsecutiveBreaker(5) },
  {
    name: 'count window 100, rate 0.5, min 20',
    havoc: { window: 'count', size: 100, rate: 0.5, minCalls: 20 },
    cockatiel: () => new CountBreaker({ threshold: 0.5, size: 100, minimumNumberOfCalls: 20 }),
  },
  {
    name: 'time window 10 s in 10 buckets, rate 0.5, min 20',
    havoc: { window: 'time', windowMs: 10_000, buckets: 10, rate: 0.5, minCalls: 20 },
    // cockatiel's minimum is a rate: 20 calls in 10 s.
    cockatiel: () => new SamplingBreaker({ threshold: 0.5, duration: 10_000, minimumRps: 2 }),
    opossum: { errorThresholdPercentage: 50, rollingCountTimeout: 10_000, rollingCountBuckets: 10, volumeThreshold: 20 },
  },
];

function havoc(rule: Rule): Contender {
  // No jitter, as for cockatiel: the run is deterministic and both back off alike.
  const breaker = CircuitBreaker.withManualClock({ ...rule.havoc, openMs: OPEN_MS, maxOpenMs: MAX_OPEN_MS, jitter: 0 });
  const guard: Guard = { execute: (call) => breaker.execute(call), closed: () => breaker.state === 'closed' };
  return {
    name: 'havoc, 1 shared breaker',
    guards: Array.from({ length: WORKERS }, () => guard),
    tick: (now) => breaker.setClockMs(now),
    stop: () => undefined,
  };
}

/** cockatiel with the same doubling open period (no jitter: cockatiel's jitters differ in kind). */
function cockatiel(rule: Rule, time: FakeTime): Contender {
  const halfOpenAfter = new ExponentialBackoff({ initialDelay: OPEN_MS, maxDelay: MAX_OPEN_MS, generator: noJitterGenerator });
  const guards = Array.from({ length: WORKERS }, (): Guard => {
    const policy = circuitBreaker(handleAll, { halfOpenAfter, breaker: rule.cockatiel() });
    return { execute: (call) => policy.execute(call), closed: () => policy.state === CircuitState.Closed };
  });
  return { name: `cockatiel, ${WORKERS} per-worker breakers`, guards, tick: (now) => time.advanceTo(now), stop: () => undefined };
}

/** opossum: a fixed `resetTimeout` (it has no backoff), per-call timeout off (the dependency answers in 20 ms). */
function opossum(options: Opossum.Options, time: FakeTime): Contender {
  const breakers = Array.from(
    { length: WORKERS },
    () => new Opossum((call: Call) => call(), { ...options, resetTimeout: OPEN_MS, timeout: false, rollingPercentilesEnabled: false }),
  );
  return {
    name: `opossum, ${WORKERS} per-worker breakers`,
    guards: breakers.map((b) => ({ execute: (call) => b.fire(call), closed: () => b.closed })),
    tick: (now) => time.advanceTo(now),
    stop: () => breakers.forEach((b) => b.shutdown()),
  };
}

interface Result {
  'failures take': string;
  rule: string;
  contender: string;
  'open ms': number | 'never';
  'failing calls let through': number;
  /** Of those, the ones started after the first failure came back: what a breaker could have spared. */
  'after the first failure': number;
  'close ms': number | 'never';
  'refused after recovery': number;
}

const drain = () => new Promise<void>((resolve) => setImmediate(resolve));

async function simulate(rule: Rule, contender: Contender, failureMs: number): Promise<Result> {
  const random = mulberry32(SEED);
  const gap = () => (-Math.log(1 - random()) * 1000 * WORKERS) / RPS;
  const nextArrival = Array.from({ length: WORKERS }, gap);
  // Settlements by the simulated millisecond they are due (latencies differ, so no one queue).
  const due: (() => void)[][] = Array.from({ length: END_MS + LATENCY_MS + 1 }, () => []);
  let failedThrough = 0;
  let avoidable = 0;
  let refusedAfterRecovery = 0;
  let openAt: number | undefined;
  let closeAt: number | undefined;
  for (let now = 0; now < END_MS; now++) {
    contender.tick(now);
    for (const settle of due[now]!) settle();
    const down = now >= OUTAGE_AT_MS && now < RECOVER_AT_MS;
    for (let w = 0; w < WORKERS; w++) {
      while (nextArrival[w]! < now + 1) {
        nextArrival[w]! += gap();
        const call: Call = () =>
          new Promise<void>((resolve, reject) => {
            if (down) failedThrough++;
            if (down && now >= OUTAGE_AT_MS + failureMs) avoidable++;
            due[now + (down ? failureMs : LATENCY_MS)]!.push(down ? () => reject(new Error('dependency down')) : resolve);
          });
        contender.guards[w]!.execute(call).catch((error: unknown) => {
          if (now >= RECOVER_AT_MS && (error as Error).message !== 'dependency down') refusedAfterRecovery++;
        });
      }
    }
    await drain();
    if (openAt === undefined && now >= OUTAGE_AT_MS && contender.guards.every((g) => !g.closed())) openAt = now;
    if (closeAt === undefined && now >= RECOVER_AT_MS && contender.guards.every((g) => g.closed())) closeAt = now;
  }
  contender.stop();
  return {
    'failures take': `${failureMs} ms`,
    rule: rule.name,
    contender: contender.name,
    'open ms': openAt === undefined ? 'never' : openAt - OUTAGE_AT_MS,
    'failing calls let through': failedThrough,
    'after the first failure': avoidable,
    'close ms': closeAt === undefined ? 'never' : closeAt - RECOVER_AT_MS,
    'refused after recovery': refusedAfterRecovery,
  };
}

async function main() {
  const results: Result[] = [];
  const summary: string[] = [];
  for (const failureMs of FAILURE_MS) {
    for (const rule of RULES) {
      const time = new FakeTime();
      const makers: (() => Contender)[] = [() => havoc(rule), () => cockatiel(rule, time)];
      if (rule.opossum) makers.push(() => opossum(rule.opossum!, time));
      const rows: Result[] = [];
      for (const make of makers) {
        time.now = 0;
        const restore = time.install();
        try {
          const contender = make();
          console.error(`failures in ${failureMs} ms, ${rule.name}: ${contender.name} …`);
          rows.push(await simulate(rule, contender, failureMs));
        } finally {
          restore();
        }
      }
      const [own, ...others] = rows;
      for (const row of others) {
        const all = own!['failing calls let through'] / row['failing calls let through'];
        const after = own!['after the first failure'] / row['after the first failure'];
        summary.push(
          `failures in ${failureMs} ms, ${rule.name}: havoc lets through ${all.toFixed(2)}× the failing calls of ${row.contender} (${after.toFixed(2)}× after the first failure)`,
        );
      }
      results.push(...rows);
    }
  }
  console.table(results);
  for (const line of summary) console.log(line);
  const out = path.join(__dirname, '..', '..', 'bench-results');
  mkdirSync(out, { recursive: true });
  writeFileSync(path.join(out, 'breaker-sim.json'), JSON.stringify({ node: process.version, results, summary }, null, 2));
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
