import { Worker } from 'node:worker_threads';
import test from 'ava';
import { Registry } from 'prom-client';
import { ConfigError, Engine, HavocError, validateConfig, type Config } from 'havoc';
import { metricValue, setName } from './fixtures/http.js';

function layer(...names: string[]): Config {
  return validateConfig({ version: 1, policies: names.map((name) => ({ name, type: 'http', target: 'all', error_chance: 1 })) });
}

function engine(): Engine {
  return new Engine({ name: setName('layers'), registry: new Registry() });
}

test('layers unite; a name in two layers is refused with both layers named', (t) => {
  const e = engine();
  e.update(layer('a'));
  e.applyLayer('api', layer('b'));
  t.deepEqual(
    e.policies().map((p) => p.name),
    ['b', 'a'],
  );
  const error = t.throws(() => e.applyLayer('api', layer('c', 'a')), { instanceOf: ConfigError });
  t.deepEqual(error?.issues, [
    {
      path: 'policies[1].name',
      message: 'policy "a" of layer "api" is already defined in layer "file"; a policy name may be defined in one layer only',
    },
  ]);
  t.deepEqual(
    e.policies().map((p) => p.name),
    ['b', 'a'],
  );
  t.deepEqual(
    e.state().layers.map((l) => l.name),
    ['api', 'file'],
  );
});

test('a halt made in one thread stops faults in every thread, and the gauges follow', async (t) => {
  const e = engine();
  e.update(layer('boom'));
  const inWorker = async (): Promise<boolean> => {
    const worker = new Worker(
      `const { Engine } = require('havoc');
       const { parentPort } = require('node:worker_threads');
       parentPort.postMessage(new Engine({ name: ${JSON.stringify(e.name)} }).decide('http', '/') !== null);`,
      { eval: true },
    );
    const fired = await new Promise<boolean>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    await worker.terminate();
    return fired;
  };
  t.true(await inWorker());
  e.halt();
  t.true(e.halted);
  t.false(await inWorker());
  t.is(await metricValue(e.metrics.halted), 1);
  t.is(await metricValue(e.metrics.activePolicies, { protocol: 'http' }), 0);
  e.resume();
  t.true(await inWorker());
  t.is(await metricValue(e.metrics.halted), 0);
  t.is(await metricValue(e.metrics.activePolicies, { protocol: 'http' }), 1);
});

test('rollback walks back through history; errors are HavocErrors', (t) => {
  const e = engine();
  t.throws(() => e.rollback(), { instanceOf: HavocError, message: /no earlier policy set/ });
  e.update(layer('one'));
  e.update(layer('two'));
  e.applyLayer('api', layer('three'));
  t.deepEqual(
    e.state().history.map((h) => h.cause),
    ['apply layer "file"', 'apply layer "file"', 'apply layer "api"'],
  );
  e.rollback();
  t.deepEqual(
    e.policies().map((p) => p.name),
    ['two'],
  );
  e.rollback();
  t.deepEqual(
    e.policies().map((p) => p.name),
    ['one'],
  );
});

test('leases: bad TTLs are TypeErrors, renewing without a lease is a HavocError, the state shows the lease', (t) => {
  const e = engine();
  t.throws(() => e.applyLayer('api', layer('x'), { ttlMs: 0 }), { instanceOf: TypeError });
  t.throws(() => e.applyLayer('api', layer('x'), { ttlMs: Number.NaN }), { instanceOf: TypeError });
  t.throws(() => e.applyLayer('', layer('x')), { instanceOf: TypeError });
  t.throws(() => e.renewLease('api'), { instanceOf: HavocError, message: /does not exist/ });
  e.applyLayer('api', layer('x'), { ttlMs: 3_600_000 });
  const lease = e.state().layers[0]?.lease;
  t.is(lease?.ttlMs, 3_600_000);
  t.is(lease?.revertsTo, null);
  t.true(e.renewLease('api', 1_800_000) <= 1_800_000);
  t.is(e.state().layers[0]?.lease?.ttlMs, 1_800_000);
  t.true(e.removeLayer('api'));
  t.false(e.removeLayer('api'));
});

test('a lease runs out on the engine side even while the event loop is blocked', (t) => {
  const e = engine();
  e.update(layer('steady'));
  const leasedAt = performance.now();
  e.applyLayer('api', layer('leased'), { ttlMs: 500 });
  t.deepEqual(
    e
      .policies()
      .map((p) => p.name)
      .sort(),
    ['leased', 'steady'],
  );
  // Block this thread past the TTL until the lease is gone: no JS timer can run, nothing here
  // decides, and reading the policies does not expire anything itself — the native lease
  // thread does. The spin ends at the expiry, however late a busy machine schedules that thread.
  while (e.policies().length > 1 && performance.now() - leasedAt < 60_000) {
    // busy
  }
  t.true(performance.now() - leasedAt >= 499, 'not before the TTL');
  t.deepEqual(
    e.policies().map((p) => p.name),
    ['steady'],
  );
  t.regex(e.state().history.at(-1)?.cause ?? '', /lease expired on layer\(s\) api/);
});
