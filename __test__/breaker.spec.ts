import test from 'ava';
import { Registry } from 'prom-client';
import { Bulkhead, chaosFetch, CircuitBreaker, CircuitOpenError, HavocError, type StateChange } from 'havoc';
import { engineWith } from './fixtures/http.js';

const fail = (status = 503) => Object.assign(new Error(`status ${status}`), { status });
const failing = () => Promise.reject(fail());
const ok = () => 'ok';

/** Runs `fn` through the breaker, swallowing its error: returns whether `fn` ran. */
async function attempt(breaker: CircuitBreaker, fn: () => unknown): Promise<boolean> {
  let ran = false;
  await breaker
    .execute(() => {
      ran = true;
      return fn();
    })
    .catch(() => undefined);
  return ran;
}

async function times(n: number, breaker: CircuitBreaker, fn: () => unknown): Promise<void> {
  for (let i = 0; i < n; i++) await attempt(breaker, fn);
}

/** A function that runs until `release()`, to hold calls in flight. */
function hold<T>(value: T) {
  let release!: () => void;
  const done = new Promise<void>((resolve) => (release = resolve));
  return { release, fn: () => done.then(() => value) };
}

test('consecutive 5: 4 failures, 1 success, 4 failures stays closed; the 5th in a row opens it', async (t) => {
  const breaker = new CircuitBreaker({ consecutive: 5 });
  await times(4, breaker, failing);
  await times(1, breaker, ok);
  await times(4, breaker, failing);
  t.is(breaker.state, 'closed');
  await times(1, breaker, failing);
  t.is(breaker.state, 'open');
  let ran = false;
  const error = await t.throwsAsync(
    breaker.execute(() => (ran = true)),
    { instanceOf: CircuitOpenError },
  );
  t.false(ran, 'an open breaker never calls fn');
  t.true(error instanceof HavocError);
  t.is(error!.state, 'open');
  t.true(error!.retryAfterMs > 7_000 && error!.retryAfterMs <= 12_000, `${error!.retryAfterMs} ms: 10 s ± 20%`);
});

test('time window: 4 failures, 60 s idle, 1 failure stays closed', async (t) => {
  const breaker = CircuitBreaker.withManualClock({ rate: 0.5, windowMs: '30s', buckets: 10, minCalls: 5 });
  await times(4, breaker, failing);
  breaker.setClockMs(60_000);
  await times(1, breaker, failing);
  t.is(breaker.state, 'closed', 'the failures before the idle gap aged out');
  await times(4, breaker, failing);
  t.is(breaker.state, 'open', 'five failures within one window do open it');
});

test('a call admitted before the trip that succeeds while half-open does not close it', async (t) => {
  const breaker = CircuitBreaker.withManualClock({ consecutive: 1, probes: 1, openMs: 1000, jitter: 0 });
  const early = hold('early');
  const running = breaker.execute(early.fn);
  await times(1, breaker, failing);
  t.is(breaker.state, 'open');
  breaker.setClockMs(1000);
  const probe = hold('probe');
  const probing = breaker.execute(probe.fn);
  t.is(breaker.state, 'half-open');
  early.release();
  t.is(await running, 'early');
  t.is(breaker.state, 'half-open', 'a permit from an earlier generation never moves the breaker');
  probe.release();
  t.is(await probing, 'probe');
  t.is(breaker.state, 'closed');
});

test('a classifier that throws ends the probe as a failure: the breaker reopens instead of waiting for good', async (t) => {
  const breaker = CircuitBreaker.withManualClock({
    consecutive: 1,
    probes: 1,
    openMs: 1000,
    jitter: 0,
    isFailure: (e) => {
      if (e === 'classifier-breaks') throw new Error('classifier bug');
      return true;
    },
  });
  await times(1, breaker, failing);
  breaker.setClockMs(1000);
  await t.throwsAsync(
    breaker.execute(() => Promise.reject('classifier-breaks')),
    { message: /classifier bug|classifier-breaks/ },
  );
  t.is(breaker.state, 'open', 'the probe counted as a failure');
  breaker.setClockMs(3000);
  t.true(await attempt(breaker, ok), 'a later probe is admitted');
  t.is(breaker.state, 'closed');
});

test('1,000 concurrent callers while half-open: exactly 3 reach fn, the rest are refused at once', async (t) => {
  const breaker = CircuitBreaker.withManualClock({ consecutive: 1, openMs: 1000 });
  await times(1, breaker, failing);
  breaker.setClockMs(1200);
  const probe = hold('probe');
  let reached = 0;
  const calls = Array.from({ length: 1000 }, () =>
    breaker.execute(() => {
      reached++;
      return probe.fn();
    }),
  );
  const settled = await Promise.allSettled(calls.slice(3));
  t.is(reached, 3);
  t.true(settled.every((s) => s.status === 'rejected' && s.reason instanceof CircuitOpenError && s.reason.state === 'half-open'));
  probe.release();
  t.deepEqual(await Promise.all(calls.slice(0, 3)), ['probe', 'probe', 'probe']);
  t.is(breaker.state, 'closed', 'all three probes succeeded');
});

test('a failed probe reopens it for a doubled period', async (t) => {
  const breaker = CircuitBreaker.withManualClock({ consecutive: 1, openMs: 1000, jitter: 0 });
  await times(1, breaker, failing);
  breaker.setClockMs(1000);
  await times(1, breaker, failing);
  const error = await t.throwsAsync(breaker.execute(ok), { instanceOf: CircuitOpenError });
  t.is(error!.retryAfterMs, 2000);
});

test("5 caller aborts leave it closed; the caller's abort reason comes back unchanged", async (t) => {
  const breaker = new CircuitBreaker({ consecutive: 5 });
  for (let i = 0; i < 5; i++) {
    const controller = new AbortController();
    const reason = new Error(`caller left ${i}`);
    const call = breaker.execute(
      ({ signal }) => new Promise((_, reject) => signal!.addEventListener('abort', () => reject(signal!.reason), { once: true })),
      { signal: controller.signal },
    );
    controller.abort(reason);
    t.is(await t.throwsAsync(call), reason);
  }
  t.is(breaker.state, 'closed');
  await times(4, breaker, failing);
  t.is(breaker.state, 'closed', 'the aborts did not count as failures');
});

test('default classifier: client errors are ignored, timeouts and injected faults are failures', async (t) => {
  const breaker = new CircuitBreaker({ consecutive: 2 });
  for (const status of [400, 404, 422]) await times(3, breaker, () => Promise.reject(fail(status)));
  await times(3, breaker, () => Promise.reject(Object.assign(new Error('bad'), { code: '23505' })));
  t.is(breaker.state, 'closed');
  await times(1, breaker, () => Promise.reject(fail(429)));
  await times(1, breaker, () => Promise.reject(new DOMException('slow', 'TimeoutError')));
  t.is(breaker.state, 'open');
  const custom = new CircuitBreaker({
    consecutive: 1,
    isFailure: (e) => (e instanceof RangeError ? 'ignore' : e === 'fine' ? false : true),
  });
  await times(1, custom, () => Promise.reject(new RangeError('x')));
  await times(1, custom, () => Promise.reject('fine'));
  t.is(custom.state, 'closed');
});

test('tryAcquire gives permits for interceptors; each reports once', (t) => {
  const breaker = new CircuitBreaker({ consecutive: 2 });
  const permit = breaker.tryAcquire()!;
  permit.failure();
  permit.failure();
  t.is(breaker.state, 'closed', 'a second report on one permit is ignored');
  breaker.tryAcquire()!.failure();
  t.is(breaker.state, 'open');
  t.is(breaker.tryAcquire(), null);
});

test('isolate is refcounted; reset closes; toJSON restores as initialState', async (t) => {
  const breaker = new CircuitBreaker({ consecutive: 1 });
  const a = breaker.isolate();
  const b = breaker.isolate();
  const error = await t.throwsAsync(breaker.execute(ok), { instanceOf: CircuitOpenError });
  t.is(error!.retryAfterMs, Infinity);
  t.is(error!.state, 'isolated');
  a.dispose();
  a.dispose();
  t.is(breaker.state, 'isolated', 'one isolation still held');
  b.dispose();
  t.is(breaker.state, 'closed');
  await times(1, breaker, failing);
  const saved = breaker.toJSON();
  t.is(saved.state, 'open');
  t.true(saved.openRemainingMs > 0);
  breaker.reset();
  t.is(breaker.state, 'closed');
  const restored = new CircuitBreaker({ consecutive: 1, initialState: JSON.parse(JSON.stringify(saved)) });
  t.is(restored.state, 'open');
  await t.throwsAsync(restored.execute(ok), { instanceOf: CircuitOpenError });
});

test('events: every state change with its reason, and every rejection', async (t) => {
  const breaker = CircuitBreaker.withManualClock({ consecutive: 1, openMs: 100, probes: 1 });
  const changes: Omit<StateChange, 'generation'>[] = [];
  const rejections: string[] = [];
  breaker.onStateChange(({ from, to, reason }) => changes.push({ from, to, reason }));
  const sub = breaker.onReject(({ state }) => rejections.push(state));
  await times(1, breaker, failing);
  await times(2, breaker, ok);
  sub.dispose();
  await times(1, breaker, ok);
  breaker.setClockMs(200);
  await times(1, breaker, ok);
  breaker.isolate().dispose();
  t.deepEqual(rejections, ['open', 'open']);
  t.deepEqual(changes, [
    { from: 'closed', to: 'open', reason: 'failures' },
    { from: 'open', to: 'half-open', reason: 'open-elapsed' },
    { from: 'half-open', to: 'closed', reason: 'probes-succeeded' },
    { from: 'closed', to: 'isolated', reason: 'isolated' },
    { from: 'isolated', to: 'closed', reason: 'isolation-released' },
  ]);
});

test('metrics: state, calls by outcome and transitions, read from the core when scraped', async (t) => {
  const registry = new Registry();
  const breaker = new CircuitBreaker({ consecutive: 2, name: 'metered', registry });
  await times(1, breaker, ok);
  await times(1, breaker, () => Promise.reject(fail(404)));
  await times(2, breaker, failing);
  await times(3, breaker, ok);
  const values = async (name: string) => (await registry.getSingleMetric(name)!.get()).values.map((v) => [v.labels, v.value] as const);
  t.deepEqual(await values('havoc_breaker_state'), [[{ name: 'metered' }, 1]]);
  t.deepEqual(await values('havoc_breaker_calls_total'), [
    [{ name: 'metered', outcome: 'success' }, 1],
    [{ name: 'metered', outcome: 'failure' }, 2],
    [{ name: 'metered', outcome: 'ignored' }, 1],
    [{ name: 'metered', outcome: 'rejected' }, 3],
  ]);
  t.deepEqual(await values('havoc_breaker_transitions_total'), [[{ name: 'metered', from: 'closed', to: 'open' }, 1]]);
  await times(1, breaker, ok);
  t.deepEqual((await values('havoc_breaker_calls_total'))[3], [{ name: 'metered', outcome: 'rejected' }, 4], 'counted once, not again');
});

test('bad options are refused: minCalls > size is a RangeError; a shared name with other options throws', (t) => {
  t.throws(() => new CircuitBreaker({ window: 'count', size: 10, minCalls: 20 }), {
    instanceOf: RangeError,
    message: 'minCalls (20) must be <= size (10): such a window could never trip',
  });
  t.throws(() => new CircuitBreaker({ consecutive: 0 }), { instanceOf: RangeError, message: /consecutive must be an integer >= 1/ });
  t.throws(() => new CircuitBreaker({ rate: 1.5 }), { instanceOf: RangeError, message: /rate must be a number in \(0, 1\]/ });
  t.throws(() => new CircuitBreaker({ openMs: 1000, maxOpenMs: 10 }), { instanceOf: RangeError, message: /maxOpenMs/ });
  t.throws(() => new CircuitBreaker({ windowMs: '5ms', buckets: 10 }), { instanceOf: RangeError, message: /windowMs/ });
  const name = `shared-${process.pid}`;
  const a = CircuitBreaker.shared(name, { consecutive: 3 });
  const b = CircuitBreaker.shared(name, { consecutive: 3 });
  a.isolate();
  t.is(b.state, 'isolated', 'one breaker behind both handles');
  const error = t.throws(() => CircuitBreaker.shared(name, { consecutive: 4 }));
  t.false(error instanceof RangeError);
  t.regex(error!.message, new RegExp(`circuit breaker "${name}" already exists with other options`));
});

test('chaos-driven: error_chance 1 opens the breaker within minCalls calls; after halt it closes after openMs + probes', async (t) => {
  const engine = engineWith([{ name: 'payments-down', type: 'http', target: '/pay', error_chance: 1, error_code: 503 }]);
  let upstream = 0;
  const fetch = chaosFetch(engine, async () => {
    upstream++;
    return new Response('paid');
  });
  const minCalls = 10;
  const breaker = CircuitBreaker.withManualClock({ rate: 0.5, minCalls, openMs: 5000 });
  const pay = () =>
    breaker.execute(async ({ signal }) => {
      const res = await fetch('http://payments.test/pay', { signal });
      if (!res.ok) throw Object.assign(new Error(`payments answered ${res.status}`), { status: res.status });
      return res.text();
    });
  let calls = 0;
  while (breaker.state === 'closed' && calls < 100) {
    calls++;
    await pay().catch(() => undefined);
  }
  t.is(calls, minCalls, 'opened on the minCalls-th failing call');
  t.is(upstream, 0);
  engine.halt();
  await t.throwsAsync(pay(), { instanceOf: CircuitOpenError });
  breaker.setClockMs(5000 * 1.2);
  t.deepEqual(await Promise.all([pay(), pay(), pay()]), ['paid', 'paid', 'paid']);
  t.is(breaker.state, 'closed');
  t.is(upstream, 3, 'only the probes reached the upstream');
});

test('10,000 wrapped calls (bulkhead around breaker) leave no active timers', async (t) => {
  const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
  const before = timers();
  const breaker = CircuitBreaker.withManualClock({ consecutive: 3, openMs: 10 });
  const bulkhead = new Bulkhead({ capacity: 100 });
  let clock = 0;
  for (let round = 0; round < 100; round++) {
    breaker.setClockMs((clock += 20));
    // 100 at once, every tenth caller aborting, a third of the calls failing.
    await Promise.allSettled(
      Array.from({ length: 100 }, (_, i) => {
        const signal = i % 10 === 9 ? AbortSignal.abort(new Error('gone')) : undefined;
        return bulkhead.execute((s) => breaker.execute(i % 3 === 0 ? failing : ok, { signal: s }), { signal });
      }),
    );
  }
  t.is(bulkhead.inflight, 0);
  t.is(timers(), before);
});

test('slow calls open a rate breaker: their duration is read on the breaker clock', async (t) => {
  const breaker = CircuitBreaker.withManualClock({ window: 'count', size: 4, minCalls: 4, slowCalls: { thresholdMs: 100, rate: 0.5 } });
  const reasons: string[] = [];
  breaker.onStateChange(({ reason }) => reasons.push(reason));
  let clock = 0;
  const slow = () => breaker.execute(() => breaker.setClockMs((clock += 150)));
  await slow();
  await times(2, breaker, ok);
  t.is(breaker.state, 'closed', 'one slow call of three');
  await slow();
  t.is(breaker.state, 'open');
  t.deepEqual(reasons, ['slow-calls']);
  t.throws(() => new CircuitBreaker({ consecutive: 3, slowCalls: { thresholdMs: 100 } }), {
    instanceOf: RangeError,
    message: /slowCalls needs a rate rule/,
  });
});
