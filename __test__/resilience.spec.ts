import test from 'ava';
import {
  AdaptiveLimiter,
  Bulkhead,
  CircuitBreaker,
  Fallback,
  ManualClock,
  RateLimiter,
  Retry,
  RetryExhaustedError,
  Timeout,
  TimeoutError,
  fatal,
  isTimeout,
  wrap,
} from 'havoc';
import { onClock, resetError } from './fixtures/clock.js';

/** Resolves when `signal` aborts, rejecting with its reason (a call that respects its signal). */
function untilAborted(signal: AbortSignal | undefined): Promise<never> {
  return new Promise((_, reject) => signal?.addEventListener('abort', () => reject(signal.reason), { once: true }));
}

test('Timeout: the signal aborts at the limit and the call rejects with TimeoutError', async (t) => {
  const clock = new ManualClock();
  const timeout = new Timeout(100, { clock });
  let inner: AbortSignal | undefined;
  const run = timeout.execute(({ signal }) => {
    inner = signal;
    return untilAborted(signal);
  });
  clock.advance(99);
  t.false(inner!.aborted);
  clock.advance(1);
  const error = await t.throwsAsync(run, { instanceOf: TimeoutError });
  t.is(error.timeoutMs, 100);
  t.true(isTimeout(error), 'adaptive limiters count it as a drop');
  t.is(inner!.reason, error);
  t.is(clock.pending, 0);
});

test('Timeout: a success clears its timer; bad limits are RangeErrors', async (t) => {
  const clock = new ManualClock();
  t.is(await new Timeout(50, { clock }).execute(({ attempt }) => attempt), 1);
  t.is(clock.pending, 0);
  for (const ms of [0, -1, Number.NaN, Infinity])
    t.throws(() => new Timeout(ms), { instanceOf: RangeError, message: /timeout must be a finite number/ });
});

test('Timeout: without race it waits for fn (which may still answer); with race it rejects even when fn ignores the signal', async (t) => {
  const clock = new ManualClock();
  let finish!: (v: string) => void;
  const ignoring = () => new Promise<string>((resolve) => (finish = resolve));
  const patient = new Timeout(10, { clock }).execute(ignoring);
  clock.advance(10);
  finish('late but here');
  t.is(await patient, 'late but here');
  const racing = new Timeout(10, { clock, race: true }).execute(() => new Promise<string>(() => undefined));
  clock.advance(10);
  await t.throwsAsync(racing, { instanceOf: TimeoutError });
});

test("Timeout: the caller's abort keeps its reason", async (t) => {
  const clock = new ManualClock();
  for (const race of [false, true]) {
    const controller = new AbortController();
    const run = new Timeout(100, { clock, race }).execute(({ signal }) => untilAborted(signal), { signal: controller.signal });
    const reason = new Error('user left');
    controller.abort(reason);
    t.is(await t.throwsAsync(run), reason);
  }
  t.is(clock.pending, 0);
});

test('a timeout inside a breaker counts as a failure (the breaker opens)', async (t) => {
  const clock = new ManualClock();
  const breaker = CircuitBreaker.withManualClock({ consecutive: 2 });
  const policy = wrap(breaker, new Timeout(20, { clock }));
  for (let i = 0; i < 2; i++) {
    const run = policy.execute(({ signal }) => untilAborted(signal));
    clock.advance(20);
    await t.throwsAsync(run, { instanceOf: TimeoutError });
  }
  t.is(breaker.state, 'open');
});

test("Fallback: answers failures with a value or a function of the error, but not the caller's abort", async (t) => {
  const value = new Fallback('cached');
  const events: unknown[] = [];
  value.onFallback(({ error }) => events.push(error));
  const boom = new Error('down');
  t.is(await value.execute(() => Promise.reject(boom)), 'cached');
  t.deepEqual(events, [boom]);
  t.is(await value.execute(() => 'fresh'), 'fresh');
  t.is(await new Fallback((e: unknown) => `from ${(e as Error).message}`).execute(() => Promise.reject(boom)), 'from down');
  const controller = new AbortController();
  const reason = new Error('cancelled');
  const run = value.execute(({ signal }) => untilAborted(signal), { signal: controller.signal });
  controller.abort(reason);
  t.is(await t.throwsAsync(run), reason);
  t.is(events.length, 1);
});

test('Fallback: when filters failures; a fallback that throws surfaces its own error with cause the original', async (t) => {
  const only503 = new Fallback('stale', { when: (e) => (e as { status?: number }).status === 503 });
  const e404 = Object.assign(new Error('nf'), { status: 404 });
  t.is(await t.throwsAsync(only503.execute(() => Promise.reject(e404))), e404);
  t.is(await only503.execute(() => Promise.reject(Object.assign(new Error('u'), { status: 503 }))), 'stale');
  const original = new Error('db down');
  const own = new Error('cache down too');
  const error = await t.throwsAsync(
    new Fallback(() => {
      throw own;
    }).execute(() => Promise.reject(original)),
  );
  t.is(error, own);
  t.is(error.cause, original);
  t.throws(() => new Fallback(1, { when: 'x' as unknown as () => boolean }), { instanceOf: TypeError });
});

test('wrap(fallback, retry, timeout): outermost first, each attempt timed out separately, the fallback last', async (t) => {
  const clock = new ManualClock();
  const retry = new Retry({ clock, maxAttempts: 3, baseMs: 10, jitter: 'none' });
  const policy = wrap(new Fallback('fallback'), retry, new Timeout(100, { clock }));
  const attempts: number[] = [];
  const run = policy.execute(({ signal, attempt }) => {
    attempts.push(attempt);
    return attempt < 3 ? untilAborted(signal) : 'third time';
  });
  t.is(await onClock(clock, run), 'third time');
  t.deepEqual(attempts, [1, 2, 3]);
  t.is(clock.now(), 100 + 10 + 100 + 20);
  const gaveUp = wrap(new Fallback((e: unknown) => (e instanceof RetryExhaustedError ? e.reason : 'other')), retry);
  t.is(
    await onClock(
      clock,
      gaveUp.execute<string>(() => Promise.reject(resetError())),
    ),
    'attempts',
  );
});

test("wrap: the caller's abort reason survives every layer (breaker, retry, timeout, bulkhead, limiters)", async (t) => {
  const clock = new ManualClock();
  const policy = wrap(
    new Fallback('never'),
    new Retry({ clock }),
    CircuitBreaker.withManualClock({ consecutive: 1 }),
    new Timeout(1000, { clock }),
    new Bulkhead({ capacity: 4 }),
    new AdaptiveLimiter(),
    new RateLimiter({ rate: 1000, burst: 100 }),
  );
  const controller = new AbortController();
  const attempts: number[] = [];
  const run = policy.execute(
    ({ signal, attempt }) => {
      attempts.push(attempt);
      return untilAborted(signal);
    },
    { signal: controller.signal },
  );
  await new Promise((resolve) => setImmediate(resolve));
  const reason = new Error('the user closed the tab');
  controller.abort(reason);
  t.is(await t.throwsAsync(run), reason);
  t.deepEqual(attempts, [1], 'a layer passing only the signal keeps the attempt from outside');
  t.throws(() => wrap({} as never), { instanceOf: TypeError, message: /argument 0 has no execute/ });
  const sync = new Error('thrown synchronously');
  const empty = wrap().execute(() => {
    throw sync;
  });
  t.is(await t.throwsAsync(empty), sync, 'a rejection, not a throw');
});

test('10,000 wrapped calls leave no active timers', async (t) => {
  const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
  const before = timers();
  const policy = wrap(new Fallback('fallback'), new Retry({ baseMs: 1, capMs: 2 }), new Timeout(60_000));
  let answered = 0;
  for (let i = 0; i < 10_000; i++) {
    const result = await policy.execute(({ attempt }) => {
      if (i % 10 === 0 && attempt === 1) throw resetError();
      if (i % 100 === 1) throw fatal(new Error('fatal'));
      return 'ok';
    });
    if (result === 'ok' || result === 'fallback') answered += 1;
  }
  t.is(answered, 10_000);
  t.is(timers(), before);
});
