// Per-call overhead of a closed circuit breaker around a succeeding async fn: havoc's
// `CircuitBreaker.execute` (Rust core, two N-API calls: the permit and the outcome) against
// cockatiel's `circuitBreaker(...).execute` and opossum's `fire`, time-window rules of the same
// shape (50% over 30 s), and a bare `await fn()` for what any wrapper costs.
// Run: npm run bench:breaker-overhead
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { circuitBreaker, ConsecutiveBreaker, handleAll, SamplingBreaker } from 'cockatiel';
import Opossum from 'opossum';
import { Bench } from 'tinybench';
import { CircuitBreaker } from 'havoc';

/** Calls per measured iteration, so that the harness's own timing cost is amortized. */
const BATCH = 1000;

async function main() {
  const fn = async () => 1;
  const havocTime = new CircuitBreaker({ name: 'bench-time' });
  const havocConsecutive = new CircuitBreaker({ name: 'bench-consecutive', consecutive: 5 });
  const cockatielTime = circuitBreaker(handleAll, {
    halfOpenAfter: 10_000,
    breaker: new SamplingBreaker({ threshold: 0.5, duration: 30_000, minimumRps: 1 }),
  });
  const cockatielConsecutive = circuitBreaker(handleAll, { halfOpenAfter: 10_000, breaker: new ConsecutiveBreaker(5) });
  const shape = {
    errorThresholdPercentage: 50,
    rollingCountTimeout: 30_000,
    rollingCountBuckets: 10,
    volumeThreshold: 20,
    resetTimeout: 10_000,
  };
  // opossum times every call out by default (a timer per call); havoc's breaker has no timeout.
  const opossumNoTimeout = new Opossum(fn, { ...shape, timeout: false });
  const opossumDefault = new Opossum(fn, shape);

  const bench = new Bench({ time: 1000, warmup: true, warmupTime: 300 });
  bench
    .add('bare await fn()', async () => {
      for (let i = 0; i < BATCH; i++) await fn();
    })
    .add('havoc CircuitBreaker.execute (time window)', async () => {
      for (let i = 0; i < BATCH; i++) await havocTime.execute(fn);
    })
    .add('havoc CircuitBreaker.execute (consecutive)', async () => {
      for (let i = 0; i < BATCH; i++) await havocConsecutive.execute(fn);
    })
    .add('cockatiel execute (SamplingBreaker)', async () => {
      for (let i = 0; i < BATCH; i++) await cockatielTime.execute(fn);
    })
    .add('cockatiel execute (ConsecutiveBreaker)', async () => {
      for (let i = 0; i < BATCH; i++) await cockatielConsecutive.execute(fn);
    })
    .add('opossum fire (timeout: false)', async () => {
      for (let i = 0; i < BATCH; i++) await opossumNoTimeout.fire();
    })
    .add('opossum fire (default 10 s timeout)', async () => {
      for (let i = 0; i < BATCH; i++) await opossumDefault.fire();
    });
  bench.addEventListener('cycle', (event) => console.error(`measured ${event.task?.name ?? ''}`));
  await bench.run();
  opossumNoTimeout.shutdown();
  opossumDefault.shutdown();

  const perCall = (name: string) => bench.tasks.find((t) => t.name.startsWith(name))!.result!.latency.mean / BATCH;
  const bare = perCall('bare');
  const cockatiel = perCall('cockatiel execute (SamplingBreaker)');
  const opossum = perCall('opossum fire (timeout: false)');
  const rows = bench.tasks.map((task) => {
    const m = task.result!.latency.mean / BATCH; // milliseconds per call
    return {
      task: task.name,
      'ns/call': Math.round(m * 1e6),
      'overhead ns': Math.round((m - bare) * 1e6),
      'x cockatiel (sampling)': Number((cockatiel / m).toFixed(2)),
      'x opossum (no timeout)': Number((opossum / m).toFixed(2)),
    };
  });
  console.table(rows);
  const out = path.join(__dirname, '..', '..', 'bench-results');
  mkdirSync(out, { recursive: true });
  writeFileSync(path.join(out, 'breaker-overhead.json'), JSON.stringify({ node: process.version, rows }, null, 2));
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
