import test from 'ava';
import { Registry } from 'prom-client';
import {
  CircuitBreaker,
  CircuitOpenError,
  DeadlineExceededError,
  HavocError,
  ManualClock,
  Retry,
  RetryExhaustedError,
  deadlineSignal,
  fatal,
  wrap,
  type RetryEvent,
} from 'havoc';
import { onClock, resetError } from './fixtures/clock.js';

function failing(calls: { n: number }, error: () => unknown = () => resetError()) {
  return async () => {
    calls.n += 1;
    throw error();
  };
}

test('maxAttempts: 3 makes exactly 3 calls, then RetryExhaustedError with every error', async (t) => {
  const clock = new ManualClock();
  const retry = new Retry({ maxAttempts: 3, clock, seed: 1 });
  const calls = { n: 0 };
  const errors: Error[] = [];
  const error = await t.throwsAsync(
    onClock(
      clock,
      retry.execute(async ({ attempt }) => {
        calls.n += 1;
        const e = resetError(`attempt ${attempt}`);
        errors.push(e);
        throw e;
      }),
    ),
    { instanceOf: RetryExhaustedError },
  );
  t.is(calls.n, 3);
  t.is(error.attempts, 3);
  t.is(error.reason, 'attempts');
  t.deepEqual(error.errors, errors);
  t.is(error.cause, errors[2]);
  t.true(error instanceof AggregateError);
  t.true(error instanceof HavocError, 'a HavocError too');
  t.is(error.name, 'RetryExhaustedError');
  t.is(error.elapsedMs, clock.now());
  t.false(new Error('x') instanceof HavocError);
  t.false(error instanceof CircuitOpenError, 'subclasses keep the plain prototype check');
});

test('maxAttempts 0, 1.5, NaN (and other bad options) are RangeErrors naming the option', (t) => {
  for (const maxAttempts of [0, 1.5, Number.NaN, -1, Infinity]) {
    t.throws(() => new Retry({ maxAttempts }), { instanceOf: RangeError, message: /maxAttempts must be an integer >= 1/ });
  }
  t.throws(() => new Retry({ baseMs: -1 }), { instanceOf: RangeError, message: /baseMs/ });
  t.throws(() => new Retry({ baseMs: 200, capMs: 100 }), { instanceOf: RangeError, message: /capMs \(100\) must be >= baseMs \(200\)/ });
  t.throws(() => new Retry({ jitter: 'wild' as 'full' }), { instanceOf: RangeError, message: /jitter must be 'full', 'equal'/ });
  t.throws(() => new Retry({ seed: 0.5 }), { instanceOf: RangeError, message: /seed must be an integer/ });
  t.throws(() => new Retry({ name: '' }), { instanceOf: TypeError, message: /non-empty string/ });
  t.throws(() => new Retry({ maxRetryAfterMs: Number.NaN }), { instanceOf: RangeError, message: /maxRetryAfterMs/ });
});

test('maxAttempts: 1 calls once; a success returns at once without sleeping', async (t) => {
  const clock = new ManualClock();
  const calls = { n: 0 };
  await t.throwsAsync(new Retry({ maxAttempts: 1, clock }).execute(failing(calls)), { instanceOf: RetryExhaustedError });
  t.is(calls.n, 1);
  t.is(await new Retry({ clock }).execute(({ attempt }) => `ok ${attempt}`), 'ok 1');
  t.is(clock.now(), 0);
});

async function delays(seed: number, jitter: 'full' | 'equal' | 'decorrelated' | 'none'): Promise<number[]> {
  const clock = new ManualClock();
  const retry = new Retry({ maxAttempts: 8, baseMs: 100, capMs: 1000, jitter, seed, clock });
  const seen: number[] = [];
  retry.onRetry(({ delayMs }) => seen.push(delayMs));
  await onClock(clock, retry.execute(failing({ n: 0 }))).catch(() => undefined);
  return seen;
}

test('full jitter: the delay before retry n lies in [0, min(cap, base·2^(n−1))); the same seed gives the same sequence', async (t) => {
  for (let seed = 0; seed < 200; seed++) {
    const seen = await delays(seed, 'full');
    t.is(seen.length, 7);
    seen.forEach((ms, i) => {
      const bound = Math.min(1000, 100 * 2 ** i);
      if (!(ms >= 0 && ms < bound)) t.fail(`seed ${seed}: retry ${i + 1} slept ${ms} ms, outside [0, ${bound})`);
    });
  }
  t.deepEqual(await delays(42, 'full'), await delays(42, 'full'));
  t.notDeepEqual(await delays(42, 'full'), await delays(43, 'full'));
});

test('equal, decorrelated and none jitter stay within their bounds', async (t) => {
  t.deepEqual(await delays(1, 'none'), [100, 200, 400, 800, 1000, 1000, 1000]);
  for (let seed = 0; seed < 50; seed++) {
    (await delays(seed, 'equal')).forEach((ms, i) => {
      const exp = Math.min(1000, 100 * 2 ** i);
      t.true(ms >= exp / 2 && ms < exp, `equal: ${ms} in [${exp / 2}, ${exp})`);
    });
    let previous = 100;
    for (const ms of await delays(seed, 'decorrelated')) {
      t.true(ms >= 100 && ms <= Math.min(1000, previous * 3), `decorrelated: ${ms} in [100, min(1000, 3 × ${previous})]`);
      previous = ms;
    }
  }
});

test('a jitter function chooses the delay (capped), and a bad result is a RangeError', async (t) => {
  const clock = new ManualClock();
  const retry = new Retry({ maxAttempts: 3, capMs: 250, clock, jitter: ({ retry: n }) => n * 200 });
  const seen: number[] = [];
  retry.onRetry(({ delayMs }) => seen.push(delayMs));
  await onClock(clock, retry.execute(failing({ n: 0 }))).catch(() => undefined);
  t.deepEqual(seen, [200, 250]);
  const bad = new Retry({ clock, jitter: () => -5 });
  await t.throwsAsync(bad.execute(failing({ n: 0 })), { instanceOf: RangeError, message: /jitter function returned -5/ });
});

test('an abort 20 ms into a 500 ms backoff rejects at once with its reason and clears the timer', async (t) => {
  const clock = new ManualClock();
  const retry = new Retry({ clock, baseMs: 500, jitter: 'none' });
  const controller = new AbortController();
  const calls = { n: 0 };
  const run = retry.execute(failing(calls), { signal: controller.signal });
  t.is(await clock.nextTimer(), 500);
  clock.advance(20);
  const reason = new Error('caller gave up');
  controller.abort(reason);
  const error = await t.throwsAsync(run);
  t.is(error, reason, "the caller's reason, unchanged");
  t.is(clock.now(), 20, 'rejected without the clock moving past the abort');
  t.is(clock.pending, 0, 'the sleep timer is cleared');
  t.is(calls.n, 1);
});

test("Retry-After 1 h under a 100 ms deadline gives up at once with reason 'deadline'", async (t) => {
  const clock = new ManualClock();
  const calls = { n: 0 };
  const retry = new Retry({ clock });
  const error = await t.throwsAsync(
    retry.execute(
      failing(calls, () => Object.assign(new Error('503'), { status: 503, headers: { 'retry-after': '3600' } })),
      { signal: deadlineSignal(100) },
    ),
    { instanceOf: RetryExhaustedError },
  );
  t.is(error.reason, 'deadline');
  t.is(calls.n, 1);
  t.is(clock.pending, 0, 'no sleep started');
});

test('the delay comes from retryAfterMs, retry-after (seconds, HTTP date, Response), then grpc-retry-pushback-ms', async (t) => {
  const cases: [string, () => unknown, number | 'retry-after'][] = [
    ['retryAfterMs', () => Object.assign(resetError(), { retryAfterMs: 1234 }), 1234],
    ['headers seconds', () => Object.assign(new Error('429'), { status: 429, headers: { 'retry-after': '2' } }), 2000],
    [
      'a Response',
      () => Object.assign(new Error('503'), { response: new Response(null, { status: 503, headers: { 'Retry-After': '3' } }) }),
      3000,
    ],
    ['Headers', () => Object.assign(new Error('503'), { status: 503, headers: new Headers({ 'retry-after': '1' }) }), 1000],
    ['gRPC pushback', () => ({ code: 14, metadata: { get: (k: string) => (k === 'grpc-retry-pushback-ms' ? ['75'] : []) } }), 75],
    ['gRPC stop', () => ({ code: 14, metadata: { get: (k: string) => (k === 'grpc-retry-pushback-ms' ? ['-1'] : []) } }), 'retry-after'],
    ['longer than maxRetryAfterMs', () => Object.assign(resetError(), { retryAfterMs: 40_000 }), 'retry-after'],
  ];
  for (const [label, make, expected] of cases) {
    const clock = new ManualClock();
    const retry = new Retry({ clock, maxAttempts: 2 });
    const seen: RetryEvent[] = [];
    retry.onRetry((e) => seen.push(e));
    const error = await t.throwsAsync(onClock(clock, retry.execute(failing({ n: 0 }, make))), { instanceOf: RetryExhaustedError });
    if (expected === 'retry-after') {
      t.is(error.reason, 'retry-after', label);
      t.is(seen.length, 0, label);
    } else {
      t.deepEqual(
        seen.map((e) => [e.attempt, e.delayMs]),
        [[1, expected]],
        label,
      );
    }
  }
  const dated = new Date(Date.now() + 60_000).toUTCString();
  const clock = new ManualClock();
  const seen: number[] = [];
  const retry = new Retry({ clock, maxAttempts: 2, maxRetryAfterMs: 120_000 });
  retry.onRetry((e) => seen.push(e.delayMs));
  await onClock(clock, retry.execute(failing({ n: 0 }, () => ({ status: 503, headers: { 'retry-after': dated } })))).catch(() => undefined);
  t.true(seen[0]! > 55_000 && seen[0]! <= 60_000, `an HTTP date a minute away: ${seen[0]} ms`);
});

test('maxElapsedMs: a sleep that would end past it is not started', async (t) => {
  const clock = new ManualClock();
  const calls = { n: 0 };
  const retry = new Retry({ clock, maxAttempts: 10, baseMs: 100, jitter: 'none', maxElapsedMs: 350 });
  const error = await t.throwsAsync(onClock(clock, retry.execute(failing(calls))), { instanceOf: RetryExhaustedError });
  t.is(error.reason, 'deadline');
  t.is(calls.n, 3, 'slept 100 and 200; 400 more would pass 350');
  t.is(clock.now(), 300);
});

test('retry around an open breaker makes 0 calls and sleeps 0', async (t) => {
  const clock = new ManualClock();
  const breaker = CircuitBreaker.withManualClock({ consecutive: 1, openMs: 60_000 });
  await breaker.execute(() => Promise.reject(new Error('down'))).catch(() => undefined);
  t.is(breaker.state, 'open');
  const retry = new Retry({ clock, maxAttempts: 5 });
  const slept: RetryEvent[] = [];
  retry.onRetry((e) => slept.push(e));
  let calls = 0;
  const fn = () => {
    calls += 1;
    return 'never';
  };
  await t.throwsAsync(
    retry.execute(() => breaker.execute(fn)),
    { instanceOf: CircuitOpenError },
  );
  await t.throwsAsync(wrap(retry, breaker).execute(fn), { instanceOf: CircuitOpenError });
  t.is(calls, 0);
  t.is(slept.length, 0);
  t.is(clock.now(), 0);
  t.is(clock.pending, 0);
});

test("non-retryable errors are rethrown unchanged after one call: fatal, DeadlineExceededError, TypeError, 404, the caller's abort", async (t) => {
  const controller = new AbortController();
  const cases: [string, () => unknown, AbortSignal?][] = [
    ['fatal', () => fatal(resetError())],
    ['deadline', () => new DeadlineExceededError('late')],
    ['TypeError', () => new TypeError('undefined is not a function')],
    ['RangeError', () => new RangeError('bad')],
    ['404', () => Object.assign(new Error('not found'), { status: 404 })],
    ['pg 23505', () => Object.assign(new Error('duplicate key'), { code: '23505' })],
    [
      'caller abort',
      () => {
        controller.abort(new Error('stop'));
        return controller.signal.reason;
      },
      controller.signal,
    ],
  ];
  for (const [label, make, signal] of cases) {
    const calls = { n: 0 };
    let thrown: unknown;
    const error = await t.throwsAsync(
      new Retry({ clock: new ManualClock() }).execute(
        failing(calls, () => (thrown = make())),
        { signal },
      ),
    );
    t.is(error as unknown, thrown, label);
    t.is(calls.n, 1, label);
  }
});

test('nested retries do not multiply: an inner RetryExhaustedError is not retried', async (t) => {
  const clock = new ManualClock();
  const inner = new Retry({ clock, maxAttempts: 3 });
  const outer = new Retry({ clock, maxAttempts: 3 });
  const calls = { n: 0 };
  const error = await t.throwsAsync(onClock(clock, wrap(outer, inner).execute(failing(calls))), { instanceOf: RetryExhaustedError });
  t.is(calls.n, 3);
  t.is(error.attempts, 3);
});

test("retryOn replaces the classifier but never retries the caller's abort", async (t) => {
  const clock = new ManualClock();
  const calls = { n: 0 };
  const retry = new Retry({ clock, retryOn: (e) => e instanceof TypeError });
  await t.throwsAsync(onClock(clock, retry.execute(failing(calls, () => new TypeError('x')))), { instanceOf: RetryExhaustedError });
  t.is(calls.n, 3);
  calls.n = 0;
  await t.throwsAsync(retry.execute(failing(calls, () => resetError())), { message: 'read ECONNRESET' });
  t.is(calls.n, 1);
});

test('onRetry and onGiveUp see every event; havoc_retry_attempts_total counts by outcome', async (t) => {
  const registry = new Registry();
  const clock = new ManualClock();
  const retry = new Retry({ name: 'payments', clock, registry, seed: 3 });
  const retries: RetryEvent[] = [];
  const giveUps: { attempts: number; reason: string }[] = [];
  retry.onRetry((e) => retries.push(e));
  retry.onGiveUp((e) => giveUps.push(e));
  await onClock(clock, retry.execute(failing({ n: 0 }))).catch(() => undefined);
  let n = 0;
  await onClock(
    clock,
    retry.execute(() => {
      n += 1;
      if (n < 2) throw resetError();
      return 'ok';
    }),
  );
  await retry.execute(() => Promise.reject(fatal(new Error('no')))).catch(() => undefined);
  t.deepEqual(
    retries.map((e) => e.attempt),
    [1, 2, 1],
  );
  t.like(giveUps, [{ attempts: 3, reason: 'attempts' }]);
  const metric = await registry.getSingleMetric('havoc_retry_attempts_total')!.get();
  const value = (outcome: string) => metric.values.find((v) => v.labels.name === 'payments' && v.labels.outcome === outcome)?.value;
  t.is(value('success'), 1);
  t.is(value('retried'), 3);
  t.is(value('exhausted'), 1);
  t.is(value('fatal'), 1);
});

test('fn gets the signal and the attempt number', async (t) => {
  const clock = new ManualClock();
  const controller = new AbortController();
  const seen: [AbortSignal | undefined, number][] = [];
  await onClock(
    clock,
    new Retry({ clock }).execute(
      ({ signal, attempt }) => {
        seen.push([signal, attempt]);
        if (attempt < 3) throw resetError();
      },
      { signal: controller.signal },
    ),
  );
  t.deepEqual(seen, [
    [controller.signal, 1],
    [controller.signal, 2],
    [controller.signal, 3],
  ]);
});
