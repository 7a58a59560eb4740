import test from 'ava';
import { Registry } from 'prom-client';
import { CircuitBreaker, CircuitOpenError, Engine, startControlPlane } from 'havoc';
import { setName } from './fixtures/http.js';

const TOKEN = 'breaker-token';

async function start(t: { teardown(fn: () => Promise<void>): void }) {
  const registry = new Registry();
  const plane = await startControlPlane(new Engine({ name: setName('breakers'), registry }), { registry, token: TOKEN });
  t.teardown(() => plane.close());
  const call = async (method: string, path: string, token = TOKEN) => {
    const res = await fetch(`${plane.url}${path}`, { method, headers: { authorization: `Bearer ${token}` } });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  return { call };
}

test('GET /havoc/resilience lists the shared breakers; POST isolate and reset act on them behind the token', async (t) => {
  const { call } = await start(t);
  const name = `payments-${process.pid}`;
  const breaker = CircuitBreaker.shared(name, { consecutive: 2 });
  await breaker.execute(() => 'ok');
  const listed = await call('GET', '/havoc/resilience');
  t.is(listed.status, 200);
  const entry = (listed.body.breakers as { name: string }[]).find((b) => b.name === name);
  t.deepEqual(entry, {
    name,
    state: 'closed',
    generation: 0,
    openRemainingMs: 0,
    halfOpenFailures: 0,
    calls: { success: 1, failure: 0, ignored: 0, rejected: 0 },
  });

  t.is((await call('POST', `/havoc/breakers/${name}/isolate`, 'wrong')).status, 401);
  t.is(breaker.state, 'closed');
  const isolated = await call('POST', `/havoc/breakers/${encodeURIComponent(name)}/isolate`);
  t.is(isolated.status, 200);
  t.like(isolated.body, { name, state: 'isolated' });
  await call('POST', `/havoc/breakers/${name}/isolate`);
  await t.throwsAsync(
    breaker.execute(() => 'x'),
    { instanceOf: CircuitOpenError },
  );

  const held = breaker.isolate();
  const reset = await call('POST', `/havoc/breakers/${name}/reset`);
  t.like(reset.body, { name, state: 'isolated' }, "the application's own isolation still holds");
  held.dispose();
  t.is(breaker.state, 'closed', 'the operator isolated once, however often asked');

  const missing = await call('POST', '/havoc/breakers/nope/reset');
  t.is(missing.status, 404);
  t.regex(String(missing.body.error), /no shared circuit breaker named "nope"/);
  t.is((await call('GET', `/havoc/breakers/${name}/reset`)).status, 405);
  t.is((await call('POST', `/havoc/breakers/${name}/other`)).status, 404);
  t.is((await call('POST', '/havoc/breakers/%E0%A4%A/reset')).status, 400);
});
