// The CLI against a real control plane in another process: apply, diff, status, halt, resume,
// rollback, renew, remove, attack (ended by SIGTERM, and killed with SIGKILL: its lease runs
// out in the service), the token (a 401 says what to set; the token is never printed), and an
// unreachable control plane.
import { join } from 'node:path';
import test from 'ava';
import { apiLayer, eventually, files, havoc, start, startService, stateOf, type Service } from './fixtures/cli.js';

const dir = files({
  'one.yaml':
    'version: 1\npolicies:\n  - name: slow\n    type: http\n    target: /api/*\n    latency_chance: 0.5\n    latency_duration: 10ms\n',
  'two.yaml':
    'version: 1\npolicies:\n  - name: slow\n    type: http\n    target: /api/*\n    latency_chance: 0.9\n    latency_duration: 10ms\n  - name: flaky\n    type: sql\n    target: orders\n    error_chance: 0.1\n',
  'bad.yaml': 'version: 1\npolicies:\n  - name: x\n    type: http\n    error_chance: 7\n',
});
const at = (name: string) => join(dir, name);

const services: Service[] = [];
async function service(token?: string): Promise<Service> {
  const started = await startService(token);
  services.push(started);
  return started;
}
test.after.always(async () => {
  await Promise.all(services.map((s) => s.stop()));
});

test('apply, diff, status, halt, resume, rollback and remove', async (t) => {
  const { plane } = await service();
  const url = ['--url', plane];
  const applied = await havoc(['apply', at('one.yaml'), ...url]);
  t.is(applied.code, 0, applied.stderr);
  t.regex(applied.stdout, /applied 1 policy from .*one\.yaml as layer api/);
  t.deepEqual(apiLayer(await stateOf(plane))?.policies, ['slow']);

  const diff = await havoc(['diff', at('two.yaml'), '--json', ...url]);
  t.is(diff.code, 0, diff.stderr);
  t.deepEqual(JSON.parse(diff.stdout), { added: ['flaky'], removed: [], changed: ['slow'], unchanged: [], unknown: [] });
  const same = await havoc(['diff', at('one.yaml'), ...url]);
  t.regex(same.stdout, /no changes \(1 unchanged\)/);
  const text = await havoc(['diff', at('two.yaml'), ...url]);
  t.regex(text.stdout, /\+ flaky/);
  t.regex(text.stdout, /~ slow/);

  // --url before the command, as kubectl takes its flags, and HAVOC_URL work as --url does.
  t.regex((await havoc(['--url', plane, 'status'])).stdout, /api\s+1\s+slow/);
  t.is((await havoc(['apply', at('two.yaml')], { HAVOC_URL: plane })).code, 0);
  const removedDiff = await havoc(['diff', at('one.yaml'), '--json', ...url]);
  t.deepEqual(JSON.parse(removedDiff.stdout), { added: [], removed: ['flaky'], changed: ['slow'], unchanged: [], unknown: [] });

  const status = await havoc(['status', ...url]);
  t.is(status.code, 0);
  t.regex(status.stdout, /active/);
  t.regex(status.stdout, /api\s+2\s+slow, flaky/);
  const json = await havoc(['status', '--json', ...url]);
  const parsed = JSON.parse(json.stdout) as { state: { halted: boolean; layers: unknown[] }; faults: unknown[] };
  t.false(parsed.state.halted);
  t.true(Array.isArray(parsed.faults));

  t.is((await havoc(['halt', ...url])).code, 0);
  t.true((await stateOf(plane)).halted);
  t.regex((await havoc(['status', ...url])).stdout, /HALTED/);
  // Halted, the control plane shows the layer's names only: policies in both are not compared.
  const halted = await havoc(['diff', at('two.yaml'), '--json', ...url]);
  t.deepEqual(JSON.parse(halted.stdout), { added: [], removed: [], changed: [], unchanged: [], unknown: ['slow', 'flaky'] });
  t.is((await havoc(['resume', ...url])).code, 0);
  t.false((await stateOf(plane)).halted);

  const rollback = await havoc(['rollback', '--json', ...url]);
  t.is(rollback.code, 0, rollback.stderr);
  t.deepEqual(apiLayer(JSON.parse(rollback.stdout))?.policies, ['slow']);
  t.deepEqual(apiLayer(await stateOf(plane))?.policies, ['slow']);

  const removed = await havoc(['remove', ...url]);
  t.is(removed.code, 0);
  t.regex(removed.stdout, /removed layer api/);
  t.is(apiLayer(await stateOf(plane)), undefined);
  t.regex((await havoc(['remove', ...url])).stdout, /no api layer/);
});

test('apply --ttl takes a lease; renew renews it; renew without a lease is refused (exit 1)', async (t) => {
  const { plane } = await service();
  t.is((await havoc(['apply', at('one.yaml'), '--ttl', '10m', '--url', plane])).code, 0);
  t.is(apiLayer(await stateOf(plane))?.lease?.ttlMs, 600_000);
  const status = await havoc(['status', '--url', plane]);
  t.regex(status.stdout, /of 10m/);
  const renewed = await havoc(['renew', '--ttl', '20m', '--json', '--url', plane]);
  t.is(renewed.code, 0, renewed.stderr);
  t.is((JSON.parse(renewed.stdout) as { layer: string }).layer, 'api');
  t.is(apiLayer(await stateOf(plane))?.lease?.ttlMs, 1_200_000);
  t.is((await havoc(['apply', at('one.yaml'), '--url', plane])).code, 0);
  const refused = await havoc(['renew', '--url', plane]);
  t.is(refused.code, 1);
  t.regex(refused.stderr, /409/);
});

test('status --watch redraws until stopped; --json gives one document per redraw', async (t) => {
  const { plane } = await service();
  const { child, done } = start(['status', '--watch', '--interval', '50ms', '--json', '--url', plane]);
  let seen = '';
  child.stdout!.on('data', (chunk: Buffer) => (seen += chunk.toString()));
  t.true(await eventually(async () => (seen.match(/^\{$/gm) ?? []).length >= 3));
  child.kill('SIGINT');
  await done;
  const documents = seen.split(/\n(?=\{)/).filter((text) => text.trim().endsWith('}'));
  for (const text of documents) t.is(typeof (JSON.parse(text) as { state: { version: number } }).state.version, 'number');
});

test('an invalid file is refused before anything is sent', async (t) => {
  const { plane } = await service();
  const before = await stateOf(plane);
  const { code, stderr } = await havoc(['apply', at('bad.yaml'), '--url', plane]);
  t.is(code, 1);
  t.regex(stderr, /bad\.yaml:5:19: policies\[0\]\.error_chance/);
  t.is((await stateOf(plane)).version, before.version);
});

test('attack ended by SIGTERM removes its layer before exiting', async (t) => {
  const { plane } = await service();
  const { child, done } = start(['attack', at('one.yaml'), '--ttl', '30s', '--url', plane]);
  t.true(await eventually(async () => apiLayer(await stateOf(plane))?.lease?.ttlMs === 30_000));
  child.kill('SIGTERM');
  const result = await done;
  t.is(result.code, 0, result.stderr);
  t.regex(result.stdout, /attack ended \(SIGTERM\): layer api removed/);
  t.is(apiLayer(await stateOf(plane)), undefined);
});

test('attack --duration ends by itself and removes its layer', async (t) => {
  const { plane } = await service();
  const result = await havoc(['attack', at('one.yaml'), '--ttl', '30s', '--duration', '300ms', '--url', plane]);
  t.is(result.code, 0, result.stderr);
  t.regex(result.stdout, /attack ended \(done\)/);
  t.is(apiLayer(await stateOf(plane)), undefined);
});

test('attack killed with SIGKILL: the lease runs out in the service', async (t) => {
  const { plane } = await service();
  const { child, done } = start(['attack', at('one.yaml'), '--ttl', '1s', '--url', plane]);
  t.true(await eventually(async () => apiLayer(await stateOf(plane)) !== undefined));
  child.kill('SIGKILL');
  t.is((await done).signal, 'SIGKILL');
  t.true(await eventually(async () => apiLayer(await stateOf(plane)) === undefined));
});

test('a token is sent as a header, never printed; a 401 says what to set', async (t) => {
  const token = 'cli-secret-token-42';
  const { plane } = await service(token);
  const missing = await havoc(['status', '--url', plane]);
  t.is(missing.code, 1);
  t.regex(missing.stderr, /needs a token \(401\): set HAVOC_TOKEN/);
  const wrong = await havoc(['status', '--url', plane], { HAVOC_TOKEN: 'not-it' });
  t.is(wrong.code, 1);
  t.regex(wrong.stderr, /refused the token \(401\)/);
  t.false(wrong.stderr.includes('not-it'));
  const good = await havoc(['status', '--url', plane], { HAVOC_TOKEN: token });
  t.is(good.code, 0, good.stderr);
  const flag = await havoc(['apply', at('one.yaml'), '--url', plane, '--token', token]);
  t.is(flag.code, 0, flag.stderr);
  for (const out of [good, flag]) t.false(`${out.stdout}${out.stderr}`.includes(token));
});

test('an unreachable control plane exits 1 and says where it looked', async (t) => {
  const { plane, stop } = await startService();
  await stop();
  const { code, stderr } = await havoc(['status', '--url', plane]);
  t.is(code, 1);
  t.true(stderr.includes(`cannot reach the havoc control plane at ${plane}`), stderr);
  const bad = await havoc(['status', '--url', 'http://user:pw@127.0.0.1:1']);
  t.is(bad.code, 1);
  t.regex(bad.stderr, /no credentials/);
});
