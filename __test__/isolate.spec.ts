import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { Registry } from 'prom-client';
import { ConfigError, Engine, startControlPlane, watchConfig, type Config } from 'havoc';
import { eventually, setName } from './fixtures/http.js';

function yaml(name: string): string {
  return `version: 1\npolicies:\n  - name: ${name}\n    type: http\n    target: /x\n    error_chance: 1\n`;
}

test('isolated control plane: changes reach the application thread while its event loop is blocked', async (t) => {
  const registry = new Registry();
  const engine = new Engine({ name: setName('isolate'), registry });
  const plane = await startControlPlane(engine, { isolate: true, registry, token: 'tok' });
  t.teardown(() => plane.close());
  // The client is another process; this thread blocks synchronously until the policy shows up.
  const client = `fetch(${JSON.stringify(`${plane.url}/havoc/policies`)}, { method: 'PUT', headers: { 'content-type': 'application/yaml', authorization: 'Bearer tok' }, body: ${JSON.stringify(yaml('from-worker'))} }).then((r) => console.log(r.status))`;
  const result = spawnSync(process.execPath, ['-e', client], { encoding: 'utf8', timeout: 10_000 });
  t.is(result.stdout.trim(), '200');
  t.is(engine.decide('http', '/x')?.policy, 'from-worker');
  // Metrics are the application thread's, counted there.
  const text = await (await fetch(`${plane.url}/metrics`, { headers: { authorization: 'Bearer tok' } })).text();
  t.regex(text, /havoc_config_reloads_total\{source="api",result="success"\} 1/);
  t.regex(text, /havoc_active_policies\{protocol="http"\} 1/);
  t.is((await fetch(`${plane.url}/havoc/state`)).status, 401);
});

test('isolated control plane: a lease taken there runs out after the worker is gone, with no traffic', async (t) => {
  const engine = new Engine({ name: setName('isolate'), registry: new Registry() });
  const plane = await startControlPlane(engine, { isolate: true, token: '' });
  const res = await fetch(`${plane.url}/havoc/policies?ttl=3s`, {
    method: 'PUT',
    headers: { 'content-type': 'application/yaml' },
    body: yaml('leased'),
  });
  t.is(res.status, 200);
  await plane.close();
  // The worker (and its timer) is gone well before the lease runs out.
  t.deepEqual(
    engine.policies().map((p) => p.name),
    ['leased'],
  );
  t.true(await eventually(() => engine.policies().length === 0, 10_000));
});

test('isolated control plane: a refused start rejects in the caller', async (t) => {
  const engine = new Engine({ name: setName('isolate'), registry: new Registry() });
  await t.throwsAsync(startControlPlane(engine, { isolate: true, host: '0.0.0.0', token: '' }), { message: /without a token/ });
});

test('isolated watcher: loads, reloads and reports errors to the application thread', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'havoc-isolate-'));
  const file = join(dir, 'havoc.yaml');
  writeFileSync(file, yaml('first'));
  const engine = new Engine({ name: setName('isolate'), registry: new Registry() });
  const events: (Config | Error)[] = [];
  let wake: () => void = () => undefined;
  const watcher = watchConfig(engine, file, {
    isolate: true,
    debounceMs: 50,
    onReload: (config) => {
      events.push(config);
      wake();
    },
    onError: (error) => {
      events.push(error);
      wake();
    },
  });
  t.teardown(() => {
    watcher.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const next = () => new Promise<void>((resolve) => (wake = resolve));
  let event = next();
  await watcher.ready;
  await event;
  t.deepEqual(
    engine.policies().map((p) => p.name),
    ['first'],
  );
  event = next();
  writeFileSync(file, yaml('second'));
  await event;
  t.deepEqual(
    engine.policies().map((p) => p.name),
    ['second'],
  );
  event = next();
  writeFileSync(file, 'version: 2\n');
  await event;
  const error = events.at(-1);
  t.true(error instanceof ConfigError);
  t.regex((error as ConfigError).message, /version/);
  t.deepEqual(
    engine.policies().map((p) => p.name),
    ['second'],
  );
  t.is((await engine.metrics.configReloads.get()).values.find((v) => v.labels.result === 'error')?.value, 1);
});

test('isolated control plane: updates made in the worker keep the engine warmupMs override', async (t) => {
  const engine = new Engine({ name: setName('isolate'), warmupMs: 3_600_000, registry: new Registry() });
  const plane = await startControlPlane(engine, { isolate: true, token: '' });
  t.teardown(() => plane.close());
  const res = await fetch(`${plane.url}/havoc/policies`, {
    method: 'PUT',
    headers: { 'content-type': 'application/yaml' },
    body: yaml('held-back'),
  });
  t.is(res.status, 200);
  t.deepEqual(
    engine.policies().map((p) => p.name),
    ['held-back'],
  );
  t.is(engine.decide('http', '/x'), null, 'still warming up, as the application engine says');
  t.true(engine.warmupRemainingMs > 3_000_000);
});
