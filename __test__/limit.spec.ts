import { spawn } from 'node:child_process';
import { once } from 'node:events';
import readline from 'node:readline';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import test from 'ava';
import { Registry } from 'prom-client';
import {
  AdaptiveLimiter,
  Bulkhead,
  BulkheadFullError,
  LoadShedError,
  PriorityBulkhead,
  RateLimitExceededError,
  RateLimiter,
  type Priority,
} from 'havoc';

test('a rate limiter admits its burst, then refuses with the exact wait', (t) => {
  const limiter = new RateLimiter({ rate: 2, per: '1s', burst: 3 });
  t.true(limiter.tryAcquire());
  t.true(limiter.tryAcquire(2));
  t.false(limiter.tryAcquire());
  const wait = limiter.retryAfterMs();
  t.true(wait > 450 && wait <= 500, `${wait} ms: half a second for one token at 2/s`);
  t.is(limiter.retryAfterMs(4), Infinity, 'a cost above the burst is never admitted');
  t.throws(() => limiter.tryAcquire(1.5), { instanceOf: RangeError, message: /cost must be an integer/ });
});

test('execute fails fast with RateLimitExceededError and counts the rejection', async (t) => {
  const registry = new Registry();
  const limiter = new RateLimiter({ rate: 1, per: 10_000, burst: 1, name: 'exec', registry });
  t.is(await limiter.execute(() => 'ran'), 'ran');
  const error = await t.throwsAsync(
    limiter.execute(() => 'ran again'),
    { instanceOf: RateLimitExceededError },
  );
  t.true(error!.retryAfterMs > 9_000 && error!.retryAfterMs <= 10_000);
  const metric = await registry.getSingleMetric('havoc_ratelimit_rejected_total')!.get();
  t.deepEqual(
    metric.values.map((v) => [v.labels.name, v.value]),
    [['exec', 1]],
  );
});

test('bad rate limiter options are refused precisely', (t) => {
  t.throws(() => new RateLimiter({ rate: 0 }), { message: 'rate must be a finite number > 0 (got 0)' });
  t.throws(() => new RateLimiter({ rate: 1, burst: 0.5 }), { message: 'burst must be an integer >= 1 (got 0.5)' });
  t.throws(() => new RateLimiter({ rate: 1, per: '1 sec' }), { message: /invalid duration "1 sec"/ });
  t.throws(() => new RateLimiter({ rate: 1e12, per: 1e-6 }), { message: /too high/ });
});

test('acquire waits for its token and is abortable while it waits', async (t) => {
  // The bucket's clock moves only when told, so a busy machine cannot refill it behind the test.
  const limiter = RateLimiter.withManualClock({ rate: 4, per: '1s', burst: 1 });
  await limiter.acquire();
  t.false(limiter.tryAcquire(), 'the bucket is empty until 250 ms have passed on its clock');
  t.is(limiter.retryAfterMs(), 250);
  let admitted = false;
  const refilled = limiter.acquire().then(() => (admitted = true));
  await new Promise((resolve) => setTimeout(resolve, 300));
  t.false(admitted, 'a timer that ran out does not admit while the bucket is still empty');
  limiter.setClockMs(250);
  await refilled;
  t.false(limiter.tryAcquire(), 'the token the wait ended for was taken');
  const slow = new RateLimiter({ rate: 1, per: '1m', burst: 1 });
  await slow.acquire();
  const controller = new AbortController();
  const waiting = slow.acquire(1, { signal: controller.signal });
  setTimeout(() => controller.abort(new Error('caller left')), 20);
  await t.throwsAsync(waiting, { message: 'caller left' });
  await t.throwsAsync(slow.acquire(2), { instanceOf: RateLimitExceededError, message: /can never be admitted/ });
});

test('RateLimiter.shared is one bucket: first creation wins, other options throw', (t) => {
  const name = `shared-${process.pid}`;
  const a = RateLimiter.shared(name, { rate: 1, per: '1m', burst: 2 });
  const b = RateLimiter.shared(name, { rate: 1, per: '1m', burst: 2 });
  t.true(a.tryAcquire());
  t.true(b.tryAcquire());
  t.false(a.tryAcquire(), 'both handles drained the same bucket');
  t.throws(() => RateLimiter.shared(name, { rate: 2, per: '1m', burst: 2 }), { message: /already exists with other options/ });
});

test('4 worker threads hammering one shared bucket for 2 s admit at most burst + rate × elapsed + 1', async (t) => {
  const name = `hammer-${process.pid}`;
  const rate = 5000;
  const burst = 200;
  const started = performance.now();
  RateLimiter.shared(name, { rate, per: '1s', burst });
  const run = () =>
    new Promise<number>((resolve, reject) => {
      const worker = new Worker(
        `const { RateLimiter } = require('havoc');
         const { parentPort } = require('node:worker_threads');
         const limiter = RateLimiter.shared(${JSON.stringify(name)}, { rate: ${rate}, per: '1s', burst: ${burst} });
         const end = Date.now() + 2000;
         let admitted = 0;
         while (Date.now() < end) for (let i = 0; i < 1000; i++) if (limiter.tryAcquire()) admitted++;
         parentPort.postMessage(admitted);`,
        { eval: true },
      );
      worker.once('message', resolve);
      worker.once('error', reject);
    });
  const counts = await Promise.all([run(), run(), run(), run()]);
  const elapsedS = (performance.now() - started) / 1000;
  const admitted = counts.reduce((a, b) => a + b, 0);
  const bound = burst + rate * elapsedS + 1;
  t.log(`admitted ${admitted} in ${elapsedS.toFixed(3)} s (bound ${bound.toFixed(0)}), per thread ${counts.join(', ')}`);
  t.true(admitted <= bound);
  t.true(
    counts.every((n) => n > 0),
    'every thread got tokens',
  );
  t.true(admitted >= rate, 'and the rate was served, not starved');
});

/** Starts `fn` in a bulkhead and keeps it running until `release()`. */
function hold() {
  let release!: () => void;
  const done = new Promise<void>((resolve) => (release = resolve));
  return { release, fn: () => done };
}

test('a priority bulkhead sheds low priority first, then standard, and is full only for critical', async (t) => {
  const registry = new Registry();
  const bulkhead = new PriorityBulkhead({ capacity: 10, name: 'prio', registry });
  const held = hold();
  const running: Promise<unknown>[] = [];
  const admit = (priority: Priority) => running.push(bulkhead.execute(held.fn, { priority }));
  for (let i = 0; i < 5; i++) admit('low');
  await t.throwsAsync(bulkhead.execute(held.fn, { priority: 'low' }), { instanceOf: LoadShedError, message: /low priority shed at 5\/10/ });
  for (let i = 0; i < 3; i++) admit('standard');
  await t.throwsAsync(bulkhead.execute(held.fn), { instanceOf: LoadShedError, message: /standard priority shed at 8\/10/ });
  admit('critical');
  admit('critical');
  t.is(bulkhead.inflight, 10);
  await t.throwsAsync(bulkhead.execute(held.fn, { priority: 'critical' }), { instanceOf: BulkheadFullError });
  held.release();
  await Promise.all(running);
  t.is(bulkhead.inflight, 0);
  await t.notThrowsAsync(bulkhead.execute(async () => undefined, { priority: 'low' }));
  const rejected = await registry.getSingleMetric('havoc_bulkhead_rejected_total')!.get();
  t.is(rejected.values[0]?.value, 3);
  t.throws(() => new PriorityBulkhead({ capacity: 4, thresholds: { low: 0.9, standard: 0.5 } }), { message: /must not decrease/ });
});

test('a bulkhead queues up to its queue size, first come first served, and a waiter can abort', async (t) => {
  const bulkhead = new Bulkhead({ capacity: 1, queue: 2 });
  const held = hold();
  const order: string[] = [];
  const first = bulkhead.execute(held.fn);
  const controller = new AbortController();
  const second = bulkhead.execute(async () => order.push('second'), { signal: controller.signal });
  const third = bulkhead.execute(async () => order.push('third'));
  t.is(bulkhead.queued, 2);
  await t.throwsAsync(bulkhead.execute(held.fn), { instanceOf: BulkheadFullError, message: /1 in flight, 2 queued/ });
  controller.abort(new Error('gave up waiting'));
  await t.throwsAsync(second, { message: 'gave up waiting' });
  held.release();
  await Promise.all([first, third]);
  t.deepEqual(order, ['third']);
  t.is(bulkhead.inflight, 0);
});

test('an adaptive limiter sheds beyond its limit and releases through tokens', async (t) => {
  const registry = new Registry();
  const limiter = new AdaptiveLimiter({ initialLimit: 2, name: 'adaptive', registry });
  const a = limiter.tryAcquire();
  const b = limiter.tryAcquire();
  t.truthy(a && b);
  t.is(limiter.tryAcquire(), null);
  await t.throwsAsync(
    limiter.execute(async () => 1),
    { instanceOf: LoadShedError },
  );
  a!.ignore();
  a!.success(); // a second report is ignored
  t.is(limiter.inflight, 1);
  t.is(await limiter.execute(async () => 42), 42);
  await t.throwsAsync(
    limiter.execute(async () => {
      throw new Error('plain');
    }),
    { message: 'plain' },
  );
  b!.success();
  t.is(limiter.inflight, 0);
  const shed = await registry.getSingleMetric('havoc_limiter_shed_total')!.get();
  t.is(shed.values[0]?.value, 2);
  const gauge = await registry.getSingleMetric('havoc_limiter_limit')!.get();
  t.is(gauge.values[0]?.value, limiter.limit);
  // The gauges are read when scraped: a call in flight shows before it is released.
  const inflightNow = async () =>
    (await registry.getSingleMetric('havoc_limiter_inflight')!.get()).values.find((v) => v.labels.name === 'adaptive')?.value;
  const held = limiter.tryAcquire();
  t.truthy(held);
  t.is(await inflightNow(), 1);
  held!.success();
  t.is(await inflightNow(), 0);
  t.throws(() => new AdaptiveLimiter({ minLimit: 5, initialLimit: 2 }), {
    message: /initialLimit \(2\) must lie in \[minLimit, maxLimit\]/,
  });
});

test('timeouts are drops and shrink the limit; plain errors do not', async (t) => {
  const limiter = AdaptiveLimiter.withManualClock({ initialLimit: 50 });
  let now = 0;
  const call = async (ms: number, error?: Error) => {
    const token = limiter.tryAcquire()!;
    now += ms;
    limiter.setClockMs(now);
    if (!error) token.success();
    else if (error.name === 'TimeoutError') token.dropped();
    else token.ignore();
  };
  await call(10);
  now += 10;
  await call(1, new Error('fast failure'));
  t.is(limiter.rttNoLoadMs, 10, 'a fast failure did not become the baseline');
  t.is(limiter.limit, 50);
  const timeout = new Error('slow');
  timeout.name = 'TimeoutError';
  await call(10, timeout);
  t.is(limiter.limit, 45);
});

test('AdaptiveLimiter.shared is one limiter across handles', (t) => {
  const name = `adaptive-shared-${process.pid}`;
  const a = AdaptiveLimiter.shared(name, { initialLimit: 1 });
  const b = AdaptiveLimiter.shared(name, { initialLimit: 1 });
  const token = a.tryAcquire();
  t.truthy(token);
  t.is(b.tryAcquire(), null);
  token!.ignore();
  t.throws(() => AdaptiveLimiter.shared(name, { initialLimit: 2 }), { message: /already exists with other options/ });
});

const redisUrl = process.env.HAVOC_REDIS_URL ?? 'redis://127.0.0.1:6379';

async function redisOrSkip(t: import('ava').ExecutionContext): Promise<import('ioredis').Redis | null> {
  const { Redis } = await import('ioredis');
  const client = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });
  try {
    await client.connect();
    return client;
  } catch (error) {
    client.disconnect();
    if (process.env.CI) throw new Error(`Redis at ${redisUrl} is unreachable: ${String(error)}`);
    t.log(`!!! SKIPPED: Redis at ${redisUrl} is unreachable (${String(error)})`);
    return null;
  }
}

test('a Redis-backed limit is shared by two Node processes', async (t) => {
  const client = await redisOrSkip(t);
  if (!client) return t.pass();
  const key = `havoc:test:limit:${process.pid}`;
  await client.del(key);
  client.disconnect();
  const childFile = path.join(__dirname, 'fixtures', 'redis-limit-child.js');
  const children = [0, 1].map(() => {
    const child = spawn(process.execPath, [childFile, redisUrl, key, '3000'], { stdio: ['pipe', 'pipe', 'inherit'] });
    const lines = readline.createInterface({ input: child.stdout });
    const next = () => once(lines, 'line').then(([line]) => String(line));
    const exited = once(child, 'exit');
    return { child, next, exited };
  });
  // Barrier: the window starts when both are connected, not on a wall-clock deadline.
  t.deepEqual(await Promise.all(children.map((c) => c.next())), ['ready', 'ready']);
  const started = Date.now();
  for (const c of children) c.child.stdin.end('go\n');
  const [a, b] = (await Promise.all(children.map((c) => c.next()))).map(Number) as [number, number];
  const elapsedS = (Date.now() - started) / 1000;
  const codes = await Promise.all(children.map((c) => c.exited.then(([code]) => code)));
  t.deepEqual(codes, [0, 0]);
  // The parent's elapsed time contains both children's windows: an upper bound on the refill.
  const bound = 10 + 50 * elapsedS + 1;
  t.log(`process A ${a}, process B ${b}, total ${a + b} in ${elapsedS.toFixed(2)} s (bound ${bound.toFixed(0)})`);
  t.true(a + b <= bound);
  t.true(a > 0 && b > 0, 'both processes were admitted');
  t.true(a + b >= 10 + 50 * 0.5, 'the limit was served');
});

test('a Redis-backed limit whose Redis is down admits with failOpen and rejects without', async (t) => {
  const { Redis } = await import('ioredis');
  const { redisStore, RateLimitStoreError } = await import('havoc');
  const down = new Redis('redis://127.0.0.1:1', { lazyConnect: true, enableOfflineQueue: false, retryStrategy: () => null });
  const open = new RateLimiter({ rate: 1, store: redisStore(down, { key: 'k', failOpen: true }) });
  const closed = new RateLimiter({ rate: 1, store: redisStore(down, { key: 'k', failOpen: false }) });
  t.true(await open.tryAcquireAsync());
  await t.throwsAsync(
    closed.execute(() => 1),
    { instanceOf: RateLimitStoreError, message: /failOpen is false/ },
  );
  t.throws(() => closed.tryAcquire(), { message: /uses a store/ });
  // @ts-expect-error failOpen is required
  t.throws(() => redisStore(down, { key: 'k' }), { message: /failOpen must be set/ });
  down.disconnect();
});

test('a Redis-backed limit enforces burst and rate', async (t) => {
  const client = await redisOrSkip(t);
  if (!client) return t.pass();
  const { redisStore } = await import('havoc');
  const key = `havoc:test:burst:${process.pid}`;
  await client.del(key);
  const limiter = new RateLimiter({ rate: 1, per: '1m', burst: 3, store: redisStore(client, { key, failOpen: false }) });
  t.true(await limiter.tryAcquireAsync(2));
  t.true(await limiter.tryAcquireAsync());
  const error = await t.throwsAsync(
    limiter.execute(() => 1),
    { instanceOf: RateLimitExceededError },
  );
  t.true(error!.retryAfterMs > 59_000 && error!.retryAfterMs <= 60_000);
  await t.throwsAsync(
    limiter.execute(() => 1, { cost: 4 }),
    { message: /can never be admitted/ },
  );
  client.disconnect();
});
