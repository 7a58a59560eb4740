// RateLimiter.tryAcquire (Rust core, one N-API call) against what Node services use today:
// rate-limiter-flexible's RateLimiterMemory, bottleneck, a p-limit gate and a plain-JS token
// bucket, all on the same generous limit so that almost every call is admitted.
// Run: npm run bench:ratelimit
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import Bottleneck from 'bottleneck';
import { RateLimiterMemory } from 'rate-limiter-flexible';
import { Bench } from 'tinybench';
import { RateLimiter } from 'havoc';

const RATE = 50_000_000; // per second: high enough that no contender runs dry during the run
const BURST = 10_000_000;
/** Calls per measured iteration, so that the harness's own timing cost (~70 ns) is amortized. */
const BATCH = 1000;

/** What a JS developer would write: refill on read, floating point, one process only. */
class PlainJsBucket {
  #tokens = BURST;
  #last = performance.now();
  tryAcquire(cost = 1): boolean {
    const now = performance.now();
    this.#tokens = Math.min(BURST, this.#tokens + ((now - this.#last) * RATE) / 1000);
    this.#last = now;
    if (this.#tokens < cost) return false;
    this.#tokens -= cost;
    return true;
  }
}

async function main() {
  // p-limit is an ES module only; import() keeps it one from this CommonJS build.
  const { default: pLimit } = await import('p-limit');
  const havoc = new RateLimiter({ rate: RATE, per: '1s', burst: BURST });
  const flexible = new RateLimiterMemory({ points: BURST, duration: 1 });
  const bottleneck = new Bottleneck({ reservoir: BURST, reservoirRefreshAmount: BURST, reservoirRefreshInterval: 1000 });
  const gate = pLimit(1000);
  const plain = new PlainJsBucket();
  const noop = async () => undefined;

  const bench = new Bench({ time: 1000, warmup: true, warmupTime: 300 });
  bench
    .add('havoc RateLimiter.tryAcquire', () => {
      for (let i = 0; i < BATCH; i++) havoc.tryAcquire();
    })
    .add('plain-JS token bucket', () => {
      for (let i = 0; i < BATCH; i++) plain.tryAcquire();
    })
    .add('rate-limiter-flexible RateLimiterMemory.consume', async () => {
      for (let i = 0; i < BATCH; i++) await flexible.consume('key', 1);
    })
    .add('bottleneck schedule (reservoir)', async () => {
      // Bottleneck is three orders of magnitude slower: a smaller batch keeps the run short.
      for (let i = 0; i < BATCH / 100; i++) await bottleneck.schedule(noop);
    })
    .add('p-limit gate', async () => {
      for (let i = 0; i < BATCH; i++) await gate(noop);
    });
  await bench.run();
  await bottleneck.stop({ dropWaitingJobs: true });

  const perOp = (task: (typeof bench.tasks)[number]) =>
    task.result!.latency.mean / (task.name.startsWith('bottleneck') ? BATCH / 100 : BATCH);
  const mean = (name: string) => perOp(bench.tasks.find((t) => t.name.startsWith(name))!);
  const flexibleMean = mean('rate-limiter-flexible');
  const plainMean = mean('plain-JS');
  const rows = bench.tasks.map((task) => {
    const m = perOp(task); // milliseconds per call
    return {
      task: task.name,
      'ns/op': Math.round(m * 1e6),
      'ops/s': Math.round(1000 / m),
      'x rate-limiter-flexible': Number((flexibleMean / m).toFixed(1)),
      'x plain JS': Number((plainMean / m).toFixed(2)),
    };
  });
  console.table(rows);
  const out = path.join(__dirname, '..', '..', 'bench-results');
  mkdirSync(out, { recursive: true });
  writeFileSync(path.join(out, 'ratelimit.json'), JSON.stringify({ node: process.version, rows }, null, 2));
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
