import test from 'ava';
import {
  DeadlineExceededError,
  deadlineFromHeaders,
  deadlineSignal,
  formatGrpcTimeout,
  injectDeadline,
  parseGrpcTimeout,
  remainingMs,
  withChaos,
} from 'havoc';

test('grpc-timeout uses the finest unit that fits 8 digits, rounding up', (t) => {
  t.is(formatGrpcTimeout(1900), '1900000u', '1.9 s is not rounded to 1S');
  t.is(formatGrpcTimeout(50), '50000000n');
  t.is(formatGrpcTimeout(100_000), '100000m', 'microseconds no longer fit: milliseconds');
  t.is(formatGrpcTimeout(0.0015), '1500n');
  t.is(formatGrpcTimeout(3 * 86_400_000), '259200S');
  t.is(formatGrpcTimeout(0), '0n');
  t.throws(() => formatGrpcTimeout(-1), { instanceOf: RangeError });
});

test('grpc-timeout parses back to milliseconds and malformed values are refused', (t) => {
  for (const ms of [1900, 0.25, 59_999, 86_400_000]) t.is(parseGrpcTimeout(formatGrpcTimeout(ms)), ms);
  t.is(parseGrpcTimeout('2M'), 120_000);
  t.is(parseGrpcTimeout('1H'), 3_600_000);
  t.throws(() => parseGrpcTimeout('123456789m'), { message: /1 to 8 digits/ });
  t.throws(() => parseGrpcTimeout('10s'), { message: /malformed grpc-timeout "10s"/ });
});

test('a deadline from headers aborts with DeadlineExceededError, early by the threshold', async (t) => {
  const signal = deadlineFromHeaders({ 'grpc-timeout': '30m' }, { earlyAbortMs: 10 });
  t.false(signal.aborted);
  const left = remainingMs(signal);
  t.true(left > 0 && left <= 30);
  await new Promise((resolve) => signal.addEventListener('abort', resolve));
  t.true(signal.reason instanceof DeadlineExceededError);
  t.true(deadlineFromHeaders({ 'x-timeout-ms': '3' }).aborted, 'below the 5 ms default: aborted at once');
  t.false(deadlineFromHeaders({}).aborted);
  t.throws(() => deadlineFromHeaders({ 'x-timeout-ms': 'soon' }), { message: /malformed x-timeout-ms/ });
});

test('injectDeadline forwards what is left and refuses to start with too little', (t) => {
  const signal = deadlineSignal(2000);
  const headers = injectDeadline({} as Record<string, string>, signal);
  const forwarded = parseGrpcTimeout(headers['grpc-timeout']!);
  t.true(forwarded > 0 && forwarded <= 2000);
  t.deepEqual(injectDeadline({}, 1234.7, 'x-timeout-ms'), { 'x-timeout-ms': '1234' });
  t.throws(() => injectDeadline({}, 4), { instanceOf: DeadlineExceededError });
  t.throws(() => injectDeadline({}, deadlineSignal(1)), { instanceOf: DeadlineExceededError });
});

test('withChaos is reproducible with a seed and serves latency before the error', async (t) => {
  const rolls = async (seed: number) => {
    const flaky = withChaos(async (x: number) => x * 2, { errorChance: 0.5, seed });
    const out: string[] = [];
    for (let i = 0; i < 40; i++) out.push(await flaky(i).then(String, () => 'E'));
    return out;
  };
  const first = await rolls(7);
  t.deepEqual(await rolls(7), first);
  t.notDeepEqual(await rolls(8), first);
  const failures = first.filter((r) => r === 'E').length;
  t.true(failures > 5 && failures < 35, `${failures} of 40 failed at 50%`);
  const always = withChaos(async (_?: AbortSignal) => 'ok', {
    errorChance: 1,
    error: () => new RangeError('boom'),
    latencyChance: 1,
    latencyMs: 1,
  });
  await t.throwsAsync(always(), { instanceOf: RangeError, message: 'boom' });
  const controller = new AbortController();
  controller.abort(new Error('aborted during the latency'));
  await t.throwsAsync(
    withChaos(async (_: AbortSignal) => 'ok', { errorChance: 1, latencyChance: 1, latencyMs: 60_000 })(controller.signal),
    {
      message: 'aborted during the latency',
    },
    'the latency is served before the error',
  );
  const slow = withChaos(async (_: { signal: AbortSignal }) => 'ok', { latencyChance: 1, latencyMs: 60_000 });
  const reason = await slow({ signal: AbortSignal.timeout(20) }).then(
    () => null,
    (error: unknown) => error,
  );
  t.is((reason as { name?: string } | null)?.name, 'TimeoutError', 'the delay ended with the signal');
  t.throws(() => withChaos(async () => 1, { errorChance: 2 }), { message: 'errorChance must be a number in [0, 1] (got 2)' });
});
