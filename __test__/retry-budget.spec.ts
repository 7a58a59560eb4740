import { Worker } from 'node:worker_threads';
import test from 'ava';
import * as fc from 'fast-check';
import { Registry } from 'prom-client';
import { Engine, ManualClock, Retry, RetryBudget, RetryExhaustedError, sharedRetryBudgets, startControlPlane } from 'havoc';
import { onClock, resetError } from './fixtures/clock.js';
import { setName } from './fixtures/http.js';

test('retries stay within ratio × requests + minPerSec × window seconds, and the window ages on the clock', (t) => {
  const budget = RetryBudget.withManualClock({ ratio: 0.2, minPerSec: 1, windowMs: 10_000 });
  for (let i = 0; i < 100; i++) budget.recordRequest();
  const taken = Array.from({ length: 100 }, () => budget.trySpend()).filter(Boolean).length;
  t.is(taken, 0.2 * 100 + 1 * 10);
  t.like(budget.status(), { requests: 100, retries: 30, exhausted: 70, ratio: 0.2, minPerSec: 1, windowMs: 10_000 });
  budget.setClockMs(25_000);
  t.like(budget.status(), { requests: 0, retries: 0 }, 'an idle gap empties the window');
  t.true(budget.trySpend());
});

test('property: a retry is granted exactly while the window holds fewer than ratio × requests + minPerSec × seconds', (t) => {
  const op = fc.oneof(
    fc.constant({ kind: 'request' as const }),
    fc.constant({ kind: 'spend' as const }),
    fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 1, max: 3000 }) }),
  );
  fc.assert(
    fc.property(
      fc.double({ min: 0, max: 2, noNaN: true }),
      fc.integer({ min: 0, max: 3 }),
      fc.array(op, { maxLength: 300 }),
      (ratio, minPerSec, ops) => {
        const budget = RetryBudget.withManualClock({ ratio, minPerSec, windowMs: 5000 });
        let now = 0;
        for (const o of ops) {
          if (o.kind === 'request') budget.recordRequest();
          else if (o.kind === 'advance') budget.setClockMs((now += o.ms));
          else {
            const before = budget.status();
            const allowed = Math.floor(ratio * before.requests + minPerSec * 5);
            const granted = budget.trySpend();
            if (granted !== before.retries < allowed) return false;
            if (budget.status().retries !== before.retries + (granted ? 1 : 0)) return false;
          }
        }
        return true;
      },
    ),
    { numRuns: 200 },
  );
  t.pass();
});

test('bad budget options are RangeErrors naming the option', (t) => {
  t.throws(() => new RetryBudget({ ratio: -1 }), { instanceOf: RangeError, message: /ratio must be a number in \[0, 1000\]/ });
  t.throws(() => new RetryBudget({ minPerSec: Number.NaN }), { instanceOf: RangeError, message: /minPerSec/ });
  t.throws(() => new RetryBudget({ windowMs: 5 }), { instanceOf: RangeError, message: /windowMs must be a duration of at least 10 ms/ });
  t.throws(() => RetryBudget.shared(''), { instanceOf: TypeError, message: /non-empty string/ });
});

test("a Retry with a spent budget gives up with reason 'budget'; havoc_retry_budget_exhausted_total counts it", async (t) => {
  const registry = new Registry();
  const budget = RetryBudget.withManualClock({ ratio: 0, minPerSec: 0.1, windowMs: 10_000, name: 'spent', registry });
  const clock = new ManualClock();
  const retry = new Retry({ budget, clock, maxAttempts: 5 });
  let calls = 0;
  const error = await t.throwsAsync(
    onClock(
      clock,
      retry.execute(() => {
        calls += 1;
        throw resetError();
      }),
    ),
    { instanceOf: RetryExhaustedError },
  );
  t.is(error.reason, 'budget');
  t.is(calls, 2, 'one retry allowed (0.1/s × 10 s), then the budget is spent');
  t.like(budget.status(), { requests: 1, retries: 1, exhausted: 1 });
  const metric = await registry.getSingleMetric('havoc_retry_budget_exhausted_total')!.get();
  t.is(metric.values.find((v) => v.labels.name === 'spent')?.value, 1);
});

test('RetryBudget.shared: the first creation wins, other options throw', (t) => {
  const name = `shared-budget-${process.pid}`;
  const a = RetryBudget.shared(name, { ratio: 0.5 });
  const b = RetryBudget.shared(name, { ratio: 0.5 });
  a.recordRequest();
  t.is(b.status().requests, 1);
  t.throws(() => RetryBudget.shared(name, { ratio: 0.1 }), {
    message: new RegExp(`retry budget "${name}" already exists with other options`),
  });
  t.like(
    sharedRetryBudgets().find((s) => s.name === name),
    { name, ratio: 0.5, minPerSec: 10, windowMs: 10_000, requests: 1 },
  );
});

/** Runs `body` in a worker thread with `budget` = `RetryBudget.shared('cross-thread', …)`, resolving with what it posts. */
function inWorker<T>(body: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const worker = new Worker(
      `const { RetryBudget } = require('havoc');
       const { parentPort } = require('node:worker_threads');
       const budget = RetryBudget.shared('cross-thread', { ratio: 0, minPerSec: 5, windowMs: 60000 });
       (async () => { ${body} })().then((v) => parentPort.postMessage(v), (e) => parentPort.postMessage({ error: String(e) }));`,
      { eval: true },
    );
    worker.once('message', resolve);
    worker.once('error', reject);
  });
}

test('a shared budget is one budget across worker threads: 4 threads racing take exactly its 300 retries', async (t) => {
  const main = RetryBudget.shared('cross-thread', { ratio: 0, minPerSec: 5, windowMs: 60_000 });
  const taken = await Promise.all(
    [1, 2, 3, 4].map(() => inWorker<number>('let n = 0; for (let i = 0; i < 1000; i++) if (budget.trySpend()) n++; return n;')),
  );
  t.is(
    taken.reduce((a, b) => a + b, 0),
    300,
  );
  t.false(main.trySpend(), 'spent for the main thread too');
  t.like(main.status(), { retries: 300, exhausted: 4 * 1000 - 300 + 1 });
});

test('GET /havoc/resilience lists the shared retry budgets', async (t) => {
  const registry = new Registry();
  const plane = await startControlPlane(new Engine({ name: setName('budgets'), registry }), { registry, token: 'budget-token' });
  t.teardown(() => plane.close());
  const name = `listed-${process.pid}`;
  const budget = RetryBudget.shared(name, { ratio: 0.1, minPerSec: 0, windowMs: 1000 });
  budget.recordRequest();
  budget.trySpend();
  const res = await fetch(`${plane.url}/havoc/resilience`, { headers: { authorization: 'Bearer budget-token' } });
  t.is(res.status, 200);
  const body = (await res.json()) as { budgets: { name: string }[]; breakers: unknown[] };
  t.true(Array.isArray(body.breakers));
  t.deepEqual(
    body.budgets.find((b) => b.name === name),
    { name, ratio: 0.1, minPerSec: 0, windowMs: 1000, requests: 1, retries: 0, exhausted: 1 },
  );
});
