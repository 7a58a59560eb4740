import { spawn } from 'node:child_process';
import test from 'ava';
import { Registry } from 'prom-client';
import { Engine, HavocError, MAX_BODY_BYTES, startControlPlane, validateConfig, type ControlPlane } from 'havoc';
import { eventually, setName } from './fixtures/http.js';

const YAML = 'application/yaml';

function policyYaml(name: string, extra = ''): string {
  return `version: 1\npolicies:\n  - name: ${name}\n    type: http\n    target: /x\n    error_chance: 1\n${extra}`;
}

async function start(
  t: { teardown(fn: () => Promise<void>): void },
  options: { token?: string } = {},
): Promise<{ engine: Engine; plane: ControlPlane; registry: Registry }> {
  const registry = new Registry();
  const engine = new Engine({ name: setName('control'), registry });
  const plane = await startControlPlane(engine, { registry, token: options.token ?? '' });
  t.teardown(() => plane.close());
  return { engine, plane, registry };
}

async function call(
  plane: ControlPlane,
  path: string,
  init: RequestInit = {},
): Promise<{ status: number; body: Record<string, unknown>; headers: Headers }> {
  const res = await fetch(`${plane.url}${path}`, init);
  const text = await res.text();
  assertJson(res, text);
  return { status: res.status, body: JSON.parse(text) as Record<string, unknown>, headers: res.headers };
}

function assertJson(res: Response, text: string): void {
  if (res.headers.get('content-type') !== 'application/json')
    throw new Error(`expected JSON, got ${res.headers.get('content-type')}: ${text}`);
}

function put(plane: ControlPlane, body: string, query = '', type = YAML) {
  return call(plane, `/havoc/policies${query}`, { method: 'PUT', body, headers: { 'content-type': type } });
}

test('GET /havoc/state shows effective policies, layers, version, leases and warmup', async (t) => {
  const { engine, plane } = await start(t);
  engine.update(validateConfig({ version: 1, policies: [{ name: 'from-file', type: 'http', target: '/f', error_chance: 1 }] }));
  const { status, body } = await call(plane, '/havoc/state');
  t.is(status, 200);
  t.like(body, { version: 1, halted: false, warmupRemainingMs: 0, leases: [] });
  t.deepEqual(
    (body.policies as { name: string }[]).map((p) => p.name),
    ['from-file'],
  );
  t.deepEqual(body.layers, [{ name: 'file', policies: ['from-file'], lease: null }]);
});

test('PUT /havoc/policies replaces the api layer (YAML or JSON); the union is in force', async (t) => {
  const { engine, plane } = await start(t);
  engine.update(validateConfig({ version: 1, policies: [{ name: 'from-file', type: 'http', target: '/f', error_chance: 1 }] }));
  const res = await put(plane, policyYaml('from-api'));
  t.is(res.status, 200);
  t.is(res.body.applied, 'api');
  t.deepEqual(
    engine.policies().map((p) => p.name),
    ['from-api', 'from-file'],
  );
  t.is(engine.decide('http', '/x')?.policy, 'from-api');
  const json = JSON.stringify({ version: 1, policies: [{ name: 'json-api', type: 'http', target: '/x', errorChance: 1 }] });
  t.is((await put(plane, json, '', 'application/json; charset=utf-8')).status, 200);
  t.deepEqual(
    engine.policies().map((p) => p.name),
    ['json-api', 'from-file'],
  );
});

test('PUT with an invalid config: 422 with the issues, nothing applied', async (t) => {
  const { engine, plane } = await start(t);
  await put(plane, policyYaml('good'));
  const res = await put(plane, policyYaml('bad', '    latency_duraton: 1s\n'));
  t.is(res.status, 422);
  t.deepEqual(res.body.issues, [
    { path: 'policies[0].latency_duraton', line: 7, column: 5, message: 'unknown key `latency_duraton`; did you mean `latency_duration`?' },
  ]);
  t.deepEqual(
    engine.policies().map((p) => p.name),
    ['good'],
  );
});

test('PUT that redefines a policy of another layer: 422 naming both layers', async (t) => {
  const { engine, plane } = await start(t);
  engine.update(validateConfig({ version: 1, policies: [{ name: 'shared', type: 'http', target: '/f' }] }));
  const res = await put(plane, policyYaml('shared'));
  t.is(res.status, 422);
  t.regex(String(res.body.error), /policy "shared" of layer "api" is already defined in layer "file"/);
  t.deepEqual(
    engine.state().layers.map((l) => l.name),
    ['file'],
  );
});

test('DELETE /havoc/policies removes the api layer only', async (t) => {
  const { engine, plane } = await start(t);
  engine.update(validateConfig({ version: 1, policies: [{ name: 'from-file', type: 'http', target: '/f' }] }));
  await put(plane, policyYaml('from-api'));
  const removed = await call(plane, '/havoc/policies', { method: 'DELETE' });
  t.like(removed, { status: 200, body: { removed: true } });
  t.deepEqual(
    engine.policies().map((p) => p.name),
    ['from-file'],
  );
  t.like(await call(plane, '/havoc/policies', { method: 'DELETE' }), { status: 200, body: { removed: false } });
});

test('halt, resume and rollback', async (t) => {
  const { engine, plane } = await start(t);
  await put(plane, policyYaml('one'));
  await put(plane, policyYaml('two'));
  t.truthy(engine.decide('http', '/x'));
  t.like((await call(plane, '/havoc/halt', { method: 'POST' })).body, { halted: true });
  t.is(engine.decide('http', '/x'), null);
  t.like((await call(plane, '/havoc/resume', { method: 'POST' })).body, { halted: false });
  t.is(engine.decide('http', '/x')?.policy, 'two');
  t.is((await call(plane, '/havoc/rollback', { method: 'POST' })).status, 200);
  t.deepEqual(
    engine.policies().map((p) => p.name),
    ['one'],
  );
  const none = await call(plane, '/havoc/rollback', { method: 'POST' });
  t.is(none.status, 409);
  t.regex(String(none.body.error), /no earlier policy set/);
  // A halt lasts until the next apply.
  await call(plane, '/havoc/halt', { method: 'POST' });
  await put(plane, policyYaml('three'));
  t.is(engine.decide('http', '/x')?.policy, 'three');
});

test('POST /havoc/plan analyzes without applying', async (t) => {
  const { engine, plane } = await start(t);
  const res = await call(plane, '/havoc/plan', {
    method: 'POST',
    body: 'version: 1\npolicies:\n  - name: everything\n    type: http\n    target: all\n    drop_connection: true\n',
    headers: { 'content-type': YAML },
  });
  t.is(res.status, 200);
  t.like(res.body, { score: 95, status: 'CRITICAL' });
  t.is(engine.version, 0);
});

test('GET /metrics is Prometheus text with havoc metrics', async (t) => {
  const { plane } = await start(t);
  await put(plane, policyYaml('counted'));
  const res = await fetch(`${plane.url}/metrics`);
  t.is(res.status, 200);
  t.regex(res.headers.get('content-type') ?? '', /^text\/plain/);
  const text = await res.text();
  t.regex(text, /havoc_config_reloads_total\{source="api",result="success"\} 1/);
  t.regex(text, /havoc_active_policies\{protocol="http"\} 1/);
  t.regex(text, /havoc_halted 0/);
});

test('token: required as Bearer or X-Havoc-Token, compared whatever its length', async (t) => {
  const { plane } = await start(t, { token: 's3cret-token' });
  const missing = await call(plane, '/havoc/state');
  t.is(missing.status, 401);
  t.is(missing.headers.get('www-authenticate'), 'Bearer realm="havoc"');
  t.is((await call(plane, '/havoc/state', { headers: { authorization: 'Bearer wrong' } })).status, 401);
  t.is((await call(plane, '/havoc/state', { headers: { authorization: 'Bearer s3cret-token-but-longer' } })).status, 401);
  t.is((await call(plane, '/havoc/state', { headers: { authorization: 's3cret-token' } })).status, 401);
  t.is((await call(plane, '/havoc/state', { headers: { authorization: 'Bearer s3cret-token' } })).status, 200);
  t.is((await call(plane, '/havoc/state', { headers: { 'x-havoc-token': 's3cret-token' } })).status, 200);
  // Unauthenticated requests learn nothing, not even which routes exist; writes do nothing.
  t.is((await call(plane, '/nope')).status, 401);
  t.is((await put(plane, policyYaml('x'))).status, 401);
  t.is((await fetch(`${plane.url}/metrics`)).status, 401);
});

test('a non-loopback bind without a token refuses to start', async (t) => {
  const engine = new Engine({ name: setName('control'), registry: new Registry() });
  await t.throwsAsync(startControlPlane(engine, { host: '0.0.0.0', token: '' }), { instanceOf: HavocError, message: /without a token/ });
  const saved = process.env.HAVOC_TOKEN;
  process.env.HAVOC_TOKEN = 'from-env';
  t.teardown(() => {
    if (saved === undefined) delete process.env.HAVOC_TOKEN;
    else process.env.HAVOC_TOKEN = saved;
  });
  const plane = await startControlPlane(engine, { host: '0.0.0.0' });
  t.teardown(() => plane.close());
  const port = new URL(plane.url).port;
  t.is((await fetch(`http://127.0.0.1:${port}/havoc/state`)).status, 401);
  t.is((await fetch(`http://127.0.0.1:${port}/havoc/state`, { headers: { 'x-havoc-token': 'from-env' } })).status, 200);
});

test('bodies over 1 MiB get 413 and are never parsed, declared or chunked', async (t) => {
  const { engine, plane } = await start(t);
  // Valid YAML all along: a truncating server would apply it.
  const big = policyYaml('big') + `# ${'x'.repeat(MAX_BODY_BYTES)}\n`;
  const declared = await put(plane, big);
  t.is(declared.status, 413);
  t.regex(String(declared.body.error), /body too large/);
  const chunks = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(new TextEncoder().encode(policyYaml('chunked') + '# '));
      for (let i = 0; i < 20; i += 1) controller.enqueue(new Uint8Array(64 * 1024).fill(0x78));
      controller.close();
    },
  });
  const chunked = await call(plane, '/havoc/policies', {
    method: 'PUT',
    body: chunks,
    headers: { 'content-type': YAML },
    duplex: 'half',
  } as RequestInit);
  t.is(chunked.status, 413);
  t.is(engine.version, 0);
});

test('wrong content type 415, unknown route 404, wrong method 405, bad ttl 400: all JSON', async (t) => {
  const { plane } = await start(t);
  const unsupported = await put(plane, policyYaml('p'), '', 'text/plain');
  t.is(unsupported.status, 415);
  t.regex(String(unsupported.body.error), /application\/json or application\/yaml/);
  t.like(await call(plane, '/havoc/nothing'), { status: 404 });
  const wrongMethod = await call(plane, '/havoc/halt');
  t.is(wrongMethod.status, 405);
  t.is(wrongMethod.headers.get('allow'), 'POST');
  t.like(await put(plane, policyYaml('p'), '?ttl=soon'), { status: 400 });
  t.like(await put(plane, policyYaml('p'), '?ttl=48h'), { status: 400 });
});

test('a TTL reverts the api layer on the engine side after the client was killed, with no traffic', async (t) => {
  const { engine, plane } = await start(t);
  await put(plane, policyYaml('calm'));
  // A separate process applies chaos with a 1 s lease, then dies without renewing.
  const script = `
    fetch(${JSON.stringify(`${plane.url}/havoc/policies?ttl=1s`)}, { method: 'PUT', headers: { 'content-type': 'application/yaml' }, body: ${JSON.stringify(policyYaml('chaos'))} })
      .then((res) => { console.log(res.status); setInterval(() => {}, 1000); });`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const status = await new Promise<string>((resolve) => child.stdout.once('data', (data: Buffer) => resolve(data.toString().trim())));
  t.is(status, '200');
  child.kill('SIGKILL');
  t.deepEqual(
    engine.policies().map((p) => p.name),
    ['chaos'],
  );
  const lease = (await call(plane, '/havoc/state')).body.leases as { layer: string; ttlMs: number }[];
  t.like(lease[0], { layer: 'api', ttlMs: 1000 });
  // No decide() is called: the engine's own timer must revert the layer.
  t.true(
    await eventually(
      () =>
        engine
          .policies()
          .map((p) => p.name)
          .join() === 'calm',
      5000,
    ),
  );
  t.deepEqual((await call(plane, '/havoc/state')).body.leases, []);
});

test('POST /havoc/renew keeps a lease alive; without a lease it is a 409', async (t) => {
  const { engine, plane } = await start(t);
  t.is((await call(plane, '/havoc/renew', { method: 'POST' })).status, 409);
  await put(plane, policyYaml('chaos'), '?ttl=1h');
  const renewed = await call(plane, '/havoc/renew?ttl=200ms', { method: 'POST' });
  t.is(renewed.status, 200);
  t.true((renewed.body.remainingMs as number) <= 200);
  t.true(await eventually(() => engine.policies().length === 0, 5000));
  t.deepEqual(engine.state().layers, []);
});
