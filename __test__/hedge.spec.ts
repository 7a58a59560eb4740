import { Worker } from 'node:worker_threads';
import test from 'ava';
import { Hedge, HedgeLostError, ManualClock, RetryBudget, type HedgeEvent } from 'havoc';

/** A call that answers when told, recording its signal. */
function pending<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Makes `n` calls that each answer 5 ms in (when a 5 ms hedge has started); the attempts started. */
async function slowCalls(hedge: Hedge, clock: ManualClock, n: number): Promise<number> {
  let started = 0;
  for (let i = 0; i < n; i++) {
    const answer = pending<string>();
    const run = hedge.execute(() => {
      started += 1;
      return answer.promise;
    });
    clock.advance(5);
    answer.resolve('ok');
    await run;
  }
  return started;
}

test('delayMs 0 (which would start every attempt at once) and other bad options are RangeErrors', (t) => {
  t.throws(() => new Hedge({ delayMs: 0 }), {
    instanceOf: RangeError,
    message: /delayMs must be a finite number of milliseconds > 0 .*0 would start every attempt at once/,
  });
  for (const delayMs of [-1, Number.NaN, Infinity]) t.throws(() => new Hedge({ delayMs }), { instanceOf: RangeError, message: /delayMs/ });
  for (const percentile of [0, 1, 1.5])
    t.throws(() => new Hedge({ percentile }), { instanceOf: RangeError, message: /percentile must be a number in \(0, 1\)/ });
  for (const maxHedges of [0, 1.5, 17]) t.throws(() => new Hedge({ maxHedges }), { instanceOf: RangeError, message: /maxHedges/ });
});

test('a slow call gets a hedge after delayMs; the first answer wins and the loser is aborted', async (t) => {
  const clock = new ManualClock();
  const hedge = new Hedge({ delayMs: 50, clock, name: 'hedge-fixed' });
  const events: HedgeEvent[] = [];
  hedge.onHedge((e) => events.push(e));
  const calls: { attempt: number; signal: AbortSignal | undefined; answer: ReturnType<typeof pending<string>> }[] = [];
  const run = hedge.execute(({ attempt, signal }) => {
    const answer = pending<string>();
    calls.push({ attempt, signal, answer });
    return answer.promise;
  });
  clock.advance(49);
  t.is(calls.length, 1);
  clock.advance(1);
  t.is(calls.length, 2);
  t.deepEqual(events, [{ attempt: 2, delayMs: 50 }]);
  calls[1]!.answer.resolve('from the hedge');
  t.is(await run, 'from the hedge');
  t.true(calls[0]!.signal!.aborted, 'the loser is aborted');
  t.true(calls[0]!.signal!.reason instanceof HedgeLostError);
  t.false(calls[1]!.signal!.aborted);
  t.deepEqual(
    calls.map((c) => c.attempt),
    [1, 1],
    "every attempt is the same try of the caller's (hedges are counted in onHedge)",
  );
  t.is(clock.pending, 0);
});

test("the enclosing retry's attempt reaches every attempt; a winning hedge records the latency the caller saw", async (t) => {
  const clock = new ManualClock();
  const name = `hedge-latency-${process.pid}`;
  const hedge = new Hedge({ delayMs: 50, clock, name });
  for (let i = 0; i < 20; i++) {
    const attempts: number[] = [];
    const answers: ReturnType<typeof pending<string>>[] = [];
    const run = hedge.execute(
      ({ attempt }) => {
        attempts.push(attempt);
        const answer = pending<string>();
        answers.push(answer);
        return answer.promise;
      },
      { attempt: 3 },
    );
    clock.advance(50);
    clock.advance(1);
    answers[1]!.resolve('hedge');
    t.is(await run, 'hedge');
    t.deepEqual(attempts, [3, 3]);
  }
  // 51 ms from the call's start each time, not the hedge's own 1 ms.
  t.is(new Hedge({ clock, name }).currentDelayMs, 51);
});

test('a call answering before the delay gets no hedge; maxHedges caps the attempts', async (t) => {
  const clock = new ManualClock();
  const quick = new Hedge({ delayMs: 50, clock, name: 'hedge-quick' });
  t.is(await quick.execute(() => 'fast'), 'fast');
  t.is(clock.pending, 0);
  const many = new Hedge({ delayMs: 10, maxHedges: 2, clock, name: 'hedge-many' });
  let started = 0;
  const never = many.execute(() => {
    started += 1;
    return new Promise<string>(() => undefined);
  });
  clock.advance(100);
  t.is(started, 3, 'the first call and 2 hedges');
  t.is(clock.pending, 0);
  void never;
});

test('the default delay is the p95 of the last latencies of the name, shared by every Hedge of it; none before 20 samples', async (t) => {
  const clock = new ManualClock();
  const name = `hedge-p95-${process.pid}`;
  const hedge = new Hedge({ clock, name });
  for (let ms = 1; ms <= 20; ms++) {
    t.is(hedge.currentDelayMs, undefined, `no hedging with ${ms - 1} samples`);
    const answer = pending<number>();
    const run = hedge.execute(() => answer.promise);
    clock.advance(ms);
    answer.resolve(ms);
    t.is(await run, ms);
  }
  t.is(hedge.currentDelayMs, 19, 'nearest-rank p95 of 1..20 ms');
  t.is(new Hedge({ clock, name }).currentDelayMs, 19, 'shared by name');
  t.is(new Hedge({ clock, name, percentile: 0.5 }).currentDelayMs, 10);
});

test('the retry budget caps the hedges', async (t) => {
  const clock = new ManualClock();
  const budget = RetryBudget.withManualClock({ ratio: 0, minPerSec: 0.1, windowMs: 10_000 });
  const hedge = new Hedge({ delayMs: 5, clock, budget, name: 'hedge-budget' });
  const started = await slowCalls(hedge, clock, 3);
  t.is(started, 4, 'one hedge (the budget allows 1 retry), then none');
  t.like(budget.status(), { retries: 1, exhausted: 2 });
});

test('each call counts as a request of the budget: its ratio lets hedges grow with the traffic', async (t) => {
  const clock = new ManualClock();
  const budget = RetryBudget.withManualClock({ ratio: 0.5, minPerSec: 0.1, windowMs: 10_000 });
  const hedge = new Hedge({ delayMs: 5, clock, budget, name: 'hedge-budget-ratio' });
  const started = await slowCalls(hedge, clock, 10);
  const { requests, retries } = budget.status();
  t.is(requests, 10);
  t.is(started - 10, retries, 'each hedge took a retry');
  t.true(retries > 1, `more than the floor's 1 retry: ${retries}`);
  t.true(retries <= 0.5 * requests + 1, `within ratio x requests + floor: ${retries}`);
});

test("a failure is the answer once every attempt has failed; the caller's abort stops them all", async (t) => {
  const clock = new ManualClock();
  const hedge = new Hedge({ delayMs: 5, clock, name: 'hedge-fail' });
  const answers: ReturnType<typeof pending<string>>[] = [];
  const run = hedge.execute(() => {
    const answer = pending<string>();
    answers.push(answer);
    return answer.promise;
  });
  clock.advance(5);
  answers[0]!.reject(new Error('first'));
  await tick();
  answers[1]!.reject(new Error('second'));
  await t.throwsAsync(run, { message: 'second' });

  const controller = new AbortController();
  const signals: AbortSignal[] = [];
  const aborted = hedge.execute(
    ({ signal }) => {
      signals.push(signal!);
      return new Promise<string>(() => undefined);
    },
    { signal: controller.signal },
  );
  clock.advance(5);
  const reason = new Error('caller left');
  controller.abort(reason);
  t.is(await t.throwsAsync(aborted), reason);
  t.is(signals.length, 2);
  t.true(signals.every((s) => s.aborted));
  t.is(clock.pending, 0);
});

test('the latency reservoir of a name is shared across worker threads', async (t) => {
  const name = `hedge-threads-${process.pid}`;
  const posted = await new Promise<unknown>((resolve, reject) => {
    const worker = new Worker(
      `const { Hedge, ManualClock } = require('havoc');
       const { parentPort, workerData } = require('node:worker_threads');
       const clock = new ManualClock();
       const hedge = new Hedge({ name: workerData, clock });
       (async () => {
         for (let ms = 1; ms <= 20; ms++) {
           let answer;
           const run = hedge.execute(() => new Promise((r) => (answer = r)));
           clock.advance(ms);
           answer(ms);
           await run;
         }
         return hedge.currentDelayMs;
       })().then((v) => parentPort.postMessage(v), (e) => parentPort.postMessage(String(e)));`,
      { eval: true, workerData: name },
    );
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  t.is(posted, 19);
  t.is(new Hedge({ name }).currentDelayMs, 19, "the main thread sees the worker's latencies");
});
