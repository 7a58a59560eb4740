import { Worker } from 'node:worker_threads';
import test from 'ava';
import { Bulkhead, BulkheadFullError, LoadShedError, PriorityBulkhead } from 'havoc';

test('Bulkhead.shared is one bulkhead: first creation wins, other options throw, no queue', async (t) => {
  const name = `bulkhead-${process.pid}`;
  const a = Bulkhead.shared(name, { capacity: 2 });
  const b = Bulkhead.shared(name, { capacity: 2 });
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  const running = [a.execute(() => held), b.execute(() => held)];
  t.is(a.inflight, 2);
  await t.throwsAsync(
    b.execute(() => 'x'),
    { instanceOf: BulkheadFullError },
  );
  release();
  await Promise.all(running);
  t.is(b.inflight, 0);
  t.throws(() => Bulkhead.shared(name, { capacity: 3 }), { message: /bulkhead ".*" already exists with other options/ });
  t.throws(() => Bulkhead.shared(`${name}-q`, { capacity: 3, queue: 1 }), { instanceOf: RangeError, message: /cannot queue/ });
  const p = PriorityBulkhead.shared(`${name}-p`, { capacity: 10 });
  t.is(p.inflight, 0);
  t.throws(() => PriorityBulkhead.shared(`${name}-p`, { capacity: 10, thresholds: { low: 0.3 } }), { message: /already exists/ });
  t.throws(() => Bulkhead.shared(`${name}-p`, { capacity: 10 }), { message: /already exists/ }, 'a plain bulkhead is not the priority one');
});

test('Bulkhead.shared across 4 worker threads: never more than capacity in flight in all', async (t) => {
  const name = `threads-${process.pid}`;
  const capacity = 3;
  // [in flight now, peak]: counted inside fn by every thread, so the peak is the true concurrency.
  const shared = new Int32Array(new SharedArrayBuffer(8));
  const run = () =>
    new Promise<{ admitted: number; refused: number }>((resolve, reject) => {
      const worker = new Worker(
        `const { Bulkhead } = require('havoc');
         const { parentPort, workerData } = require('node:worker_threads');
         const bulkhead = Bulkhead.shared(${JSON.stringify(name)}, { capacity: ${capacity} });
         const counts = workerData;
         let admitted = 0, refused = 0;
         const end = Date.now() + 500;
         // Four loops per thread: sixteen callers in all for three places.
         const loop = async () => {
           while (Date.now() < end) {
             await bulkhead.execute(async () => {
               const now = Atomics.add(counts, 0, 1) + 1;
               let peak = Atomics.load(counts, 1);
               while (now > peak && Atomics.compareExchange(counts, 1, peak, now) !== peak) peak = Atomics.load(counts, 1);
               admitted++;
               await new Promise((r) => setImmediate(r));
               Atomics.sub(counts, 0, 1);
             }).catch(async (e) => { if (e.name !== 'BulkheadFullError') throw e; refused++; await new Promise((r) => setTimeout(r, 1)); });
           }
         };
         Promise.all([loop(), loop(), loop(), loop()]).then(() => {
           parentPort.postMessage({ admitted, refused });
         });`,
        { eval: true, workerData: shared },
      );
      worker.once('message', resolve);
      worker.once('error', reject);
    });
  const results = await Promise.all([run(), run(), run(), run()]);
  t.log(results);
  t.true(Atomics.load(shared, 1) <= capacity, `peak ${Atomics.load(shared, 1)} in flight`);
  t.is(Atomics.load(shared, 1), capacity, 'the limit was reached');
  t.true(results.filter((r) => r.admitted > 0).length >= 2, 'places went to more than one thread');
  t.true(
    results.some((r) => r.refused > 0),
    'and enforced across threads',
  );
  t.is(Bulkhead.shared(name, { capacity }).inflight, 0);
});

test('PriorityBulkhead.shared sheds by priority across handles', async (t) => {
  const name = `prio-${process.pid}`;
  const a = PriorityBulkhead.shared(name, { capacity: 4, thresholds: { low: 0.5 } });
  const b = PriorityBulkhead.shared(name, { capacity: 4, thresholds: { low: 0.5 } });
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  const running = [a.execute(() => held, { priority: 'low' }), b.execute(() => held, { priority: 'low' })];
  await t.throwsAsync(
    b.execute(() => 'x', { priority: 'low' }),
    { instanceOf: LoadShedError },
  );
  release();
  await Promise.all(running);
});
