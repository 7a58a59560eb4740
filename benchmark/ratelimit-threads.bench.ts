// One rate limit for 4 worker threads: havoc's `RateLimiter.shared` (one lock-free bucket in
// the Rust core, the same in every thread) against rate-limiter-flexible's cross-thread option,
// `RateLimiterRedis` on the local Redis (its `RateLimiterCluster` is for `cluster` processes over
// IPC, not worker threads). Each contender gets twice its limit in attempts, all 4 threads
// starting together; the limit does not refill during the run, so exactly `limit` must be
// admitted. Throughput is attempts per second of wall time, from the start to the last thread's end.
// Run: npm run bench:ratelimit-threads   (needs HAVOC_REDIS_URL, default redis://127.0.0.1:6379)
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { Redis } from 'ioredis';
import { RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import { RateLimiter } from 'havoc';

const THREADS = 4;
const HAVOC_LIMIT = 1_000_000;
const REDIS_LIMIT = 20_000;
/** Attempts per unit of limit: half of them are refused. */
const OVERSUBSCRIPTION = 2;
/** Calls each Redis thread keeps in flight (one at a time would measure the round trip only). */
const REDIS_CONCURRENCY = 32;
const REDIS_URL = process.env.HAVOC_REDIS_URL ?? 'redis://127.0.0.1:6379';

type Contender = 'havoc' | 'redis';

interface Job {
  contender: Contender;
  attempts: number;
  limit: number;
  key: string;
  /** Int32Array over it: [0] the start flag. */
  barrier: SharedArrayBuffer;
}

interface Tally {
  admitted: number;
  refused: number;
  errors: number;
}

async function runHavoc(job: Job): Promise<Tally> {
  // 1 token a minute (the longest the core allows for this burst): nothing refills during the
  // run, the burst is the whole limit.
  const limiter = RateLimiter.shared(job.key, { rate: 1, per: '1m', burst: job.limit });
  await start(job.barrier);
  let admitted = 0;
  for (let i = 0; i < job.attempts; i++) if (limiter.tryAcquire()) admitted++;
  return { admitted, refused: job.attempts - admitted, errors: 0 };
}

async function runRedis(job: Job): Promise<Tally> {
  const client = new Redis(REDIS_URL, { enableOfflineQueue: true });
  const limiter = new RateLimiterRedis({ storeClient: client, points: job.limit, duration: 3600, keyPrefix: job.key });
  await client.ping();
  await start(job.barrier);
  const tally: Tally = { admitted: 0, refused: 0, errors: 0 };
  let next = 0;
  const lane = async () => {
    while (next < job.attempts) {
      next++;
      try {
        await limiter.consume('all', 1);
        tally.admitted++;
      } catch (rejection) {
        // A refusal rejects with a RateLimiterRes; anything else is a store error.
        if (rejection instanceof RateLimiterRes) tally.refused++;
        else tally.errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: REDIS_CONCURRENCY }, lane));
  await client.quit();
  return tally;
}

/** Announces this thread ready, then blocks until the main thread raises the start flag. */
async function start(barrier: SharedArrayBuffer): Promise<void> {
  parentPort!.postMessage('ready');
  Atomics.wait(new Int32Array(barrier), 0, 0);
}

async function measure(contender: Contender, limit: number, key: string) {
  const barrier = new SharedArrayBuffer(4);
  const flags = new Int32Array(barrier);
  const attempts = Math.ceil((OVERSUBSCRIPTION * limit) / THREADS);
  const job: Job = { contender, attempts, limit, key, barrier };
  const workers = Array.from({ length: THREADS }, () => new Worker(__filename, { workerData: job }));
  const ready: Promise<void>[] = [];
  const tallies = workers.map((worker) => {
    ready.push(new Promise((resolve) => worker.once('message', () => resolve())));
    return new Promise<Tally>((resolve, reject) => {
      worker.on('message', (message: Tally | 'ready') => message !== 'ready' && resolve(message));
      worker.once('error', reject);
    });
  });
  await Promise.all(ready);
  const t0 = performance.now();
  Atomics.store(flags, 0, 1);
  Atomics.notify(flags, 0);
  const results = await Promise.all(tallies);
  const seconds = (performance.now() - t0) / 1000;
  const sum = (k: keyof Tally) => results.reduce((total, r) => total + r[k], 0);
  return {
    contender,
    limit,
    attempts: attempts * THREADS,
    admitted: sum('admitted'),
    refused: sum('refused'),
    errors: sum('errors'),
    seconds,
  };
}

/** Fails at once, naming the URL, when Redis is not there (ioredis would otherwise retry for good). */
async function checkRedis(): Promise<void> {
  const probe = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  probe.on('error', () => undefined); // reported below, with the URL
  try {
    await probe.connect();
    await probe.ping();
  } catch (error) {
    throw new Error(`no Redis at ${REDIS_URL} (set HAVOC_REDIS_URL): ${(error as Error).message}`);
  } finally {
    probe.disconnect();
  }
}

async function main() {
  await checkRedis();
  const key = `havoc-bench-threads-${process.pid}-${Date.now()}`;
  console.error(`havoc RateLimiter.shared: ${THREADS} threads, ${OVERSUBSCRIPTION * HAVOC_LIMIT} attempts on a limit of ${HAVOC_LIMIT} …`);
  const havoc = await measure('havoc', HAVOC_LIMIT, key);
  console.error(
    `rate-limiter-flexible RateLimiterRedis (${REDIS_URL}): ${THREADS} threads, ${OVERSUBSCRIPTION * REDIS_LIMIT} attempts on a limit of ${REDIS_LIMIT} …`,
  );
  const redis = await measure('redis', REDIS_LIMIT, key);
  const cleanup = new Redis(REDIS_URL);
  await cleanup.del(`${key}:all`);
  await cleanup.quit();

  const rows = [havoc, redis].map((r) => ({
    contender: r.contender === 'havoc' ? 'havoc RateLimiter.shared' : 'rate-limiter-flexible RateLimiterRedis',
    limit: r.limit,
    attempts: r.attempts,
    admitted: r.admitted,
    'admitted == limit': r.admitted === r.limit && r.errors === 0,
    errors: r.errors,
    'ops/s': Math.round(r.attempts / r.seconds),
  }));
  console.table(rows);
  const ratio = rows[0]!['ops/s'] / rows[1]!['ops/s'];
  console.log(`havoc / rate-limiter-flexible (Redis) ops/s: ${ratio.toFixed(0)}× (goal >= 100×)`);
  const out = path.join(__dirname, '..', '..', 'bench-results');
  mkdirSync(out, { recursive: true });
  writeFileSync(path.join(out, 'ratelimit-threads.json'), JSON.stringify({ node: process.version, rows, ratio }, null, 2));
  const wrong = rows.filter((r) => !r['admitted == limit']);
  if (wrong.length > 0) throw new Error(`admitted != limit for ${wrong.map((r) => r.contender).join(', ')}`);
}

if (isMainThread) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
} else {
  const job = workerData as Job;
  (job.contender === 'havoc' ? runHavoc(job) : runRedis(job)).then(
    (tally) => parentPort!.postMessage(tally),
    (error: unknown) => {
      throw error;
    },
  );
}
