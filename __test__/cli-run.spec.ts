// `havoc run` and `havoc demo` against real services: a passing scenario (exit 0, report
// files), a breaching one (exit 2, the chaos gone from the control plane when it exits, the step
// and objective named), an unhealthy probe before any chaos (exit 1, nothing applied), scenario
// files refused with positions, and the demo with --once.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import test from 'ava';
import { apiLayer, eventually, files, havoc, start, startService, stateOf, type Service } from './fixtures/cli.js';

const services: Service[] = [];
async function service(): Promise<Service> {
  const started = await startService();
  services.push(started);
  return started;
}
test.after.always(async () => {
  await Promise.all(services.map((s) => s.stop()));
});

const scenario = (probeUrl: string, slo: string, steps: string) =>
  `version: 1\nprobe: { url: ${probeUrl}, interval: 20ms, timeout: 1s }\nslo: ${slo}\nsteps:\n${steps}`;

test('a scenario that holds its SLO exits 0, removes its chaos and writes the report', async (t) => {
  const { plane, service: app } = await service();
  const dir = files({
    'mild.yaml':
      'version: 1\npolicies:\n  - name: mild\n    type: http\n    target: /health\n    latency_chance: 1\n    latency_duration: 1ms\n',
    'pass.yaml': scenario(
      `${app}/health`,
      '{ window: 1s, max_error_rate: 0.5, max_p99: 5s, min_apdex: 0.1, apdex_t: 1s }',
      '  - { name: baseline, duration: 200ms }\n  - { name: mild-latency, duration: 300ms, config: ./mild.yaml }\n  - name: inline\n    duration: 200ms\n    policies:\n      - { name: other, type: http, target: /nothing, error_chance: 1 }\n',
    ),
  });
  const md = join(dir, 'out.md');
  const result = await havoc(['run', join(dir, 'pass.yaml'), '--url', plane, '--report', md]);
  t.is(result.code, 0, result.stderr);
  t.regex(result.stdout, /STEP\s+POLICIES\s+PROBES\s+ERRORS\s+P50\s+P95\s+P99\s+APDEX/);
  t.regex(result.stdout, /baseline\s+-\s+\d+/);
  t.regex(result.stdout, /mild-latency\s+mild\s+\d+/);
  t.regex(result.stdout, /passed/);
  t.regex(result.stderr, /step 2\/3 mild-latency: mild/);
  const report = readFileSync(md, 'utf8');
  t.regex(report, /^# havoc run: /);
  t.regex(report, /\| mild-latency \| mild \| \d+ \|/);
  t.is(apiLayer(await stateOf(plane)), undefined);

  const json = await havoc(['run', join(dir, 'pass.yaml'), '--url', plane, '--json', '--report', join(dir, 'out.json')]);
  t.is(json.code, 0, json.stderr);
  const parsed = JSON.parse(json.stdout) as { result: string; steps: { name: string; probes: number; completed: boolean }[] };
  t.is(parsed.result, 'passed');
  t.deepEqual(
    parsed.steps.map((s) => [s.name, s.completed]),
    [
      ['baseline', true],
      ['mild-latency', true],
      ['inline', true],
    ],
  );
  t.true(parsed.steps.every((s) => s.probes > 0));
  t.deepEqual(JSON.parse(readFileSync(join(dir, 'out.json'), 'utf8')), parsed);
});

test('a breach removes the chaos at once, names the step and the objective, and exits 2', async (t) => {
  const { plane, service: app } = await service();
  const dir = files({
    'breach.yaml': scenario(
      `${app}/health`,
      '{ window: 2s, max_error_rate: 0.1 }',
      '  - { name: baseline, duration: 200ms }\n  - name: outage\n    duration: 10m\n    policies:\n      - { name: down, type: http, target: /health, error_chance: 1, error_code: 503 }\n  - { name: never, duration: 1s }\n',
    ),
  });
  const result = await havoc(['run', join(dir, 'breach.yaml'), '--url', plane]);
  t.is(result.code, 2, result.stderr);
  t.regex(result.stdout, /BREACHED: step "outage" broke max_error_rate/);
  t.regex(result.stdout, /outage\s+down\s+\d+\s+[\d.]+%.*BREACH/);
  t.regex(result.stdout, /never\s+-\s+0\s.*skipped/);
  // The CLI exits after removing the chaos: the layer is gone as soon as it has exited.
  const state = await stateOf(plane);
  t.is(apiLayer(state), undefined);
  t.false(state.policies.some((p) => p.name === 'down'));
});

const longStep = (app: string) =>
  files({
    'long.yaml': scenario(
      `${app}/health`,
      '{ window: 1s, max_error_rate: 0.5 }',
      '  - name: long\n    duration: 10m\n    policies:\n      - { name: long-chaos, type: http, target: /other, error_chance: 1 }\n',
    ),
  });

test('a run ended by SIGTERM removes its chaos and exits 1', async (t) => {
  const { plane, service: app } = await service();
  const { child, done } = start(['run', join(longStep(app), 'long.yaml'), '--url', plane]);
  t.true(await eventually(async () => apiLayer(await stateOf(plane)) !== undefined));
  child.kill('SIGTERM');
  const result = await done;
  t.is(result.code, 1);
  t.regex(result.stderr, /interrupted: the chaos was removed/);
  t.is(apiLayer(await stateOf(plane)), undefined);
});

test("a run killed with SIGKILL: its step's lease runs out in the service", async (t) => {
  const { plane, service: app } = await service();
  const { child, done } = start(['run', join(longStep(app), 'long.yaml'), '--url', plane]);
  t.true(await eventually(async () => apiLayer(await stateOf(plane))?.lease !== undefined));
  t.is(apiLayer(await stateOf(plane))?.lease?.ttlMs, 5000);
  child.kill('SIGKILL');
  t.is((await done).signal, 'SIGKILL');
  t.true(await eventually(async () => apiLayer(await stateOf(plane)) === undefined, 30_000));
});

test('an unhealthy probe before any chaos exits 1 and applies nothing', async (t) => {
  const { plane } = await service();
  const closed = createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const port = (closed.address() as AddressInfo).port;
  await new Promise<void>((resolve) => closed.close(() => resolve()));
  const dir = files({
    'down.yaml': scenario(
      `http://127.0.0.1:${port}/health`,
      '{ window: 1s, max_error_rate: 0.1 }',
      '  - name: chaos\n    duration: 1s\n    policies:\n      - { name: never-applied, type: http, target: all, error_chance: 1 }\n',
    ),
  });
  const before = await stateOf(plane);
  const result = await havoc(['run', join(dir, 'down.yaml'), '--url', plane]);
  t.is(result.code, 1);
  t.regex(result.stderr, /pre-flight: the probe .* is not healthy \(network error/);
  t.regex(result.stderr, /nothing was applied/);
  const after = await stateOf(plane);
  t.is(after.version, before.version);
  t.deepEqual(after.history, before.history);
});

test('a scenario with an unreachable control plane exits 1 before probing', async (t) => {
  const { plane, service: app, stop } = await startService();
  await stop();
  const dir = files({ 's.yaml': scenario(`${app}/health`, '{ window: 1s, max_error_rate: 0.1 }', '  - { name: a, duration: 100ms }\n') });
  const result = await havoc(['run', join(dir, 's.yaml'), '--url', plane]);
  t.is(result.code, 1);
  t.regex(result.stderr, /cannot reach the havoc control plane/);
});

test('a bad scenario is refused with every problem at its position (unknown keys too)', async (t) => {
  const dir = files({
    'bad.yaml': [
      'version: 2',
      'probe: { url: "ftp://x", interval: fast, retries: 3 }',
      'slo: { window: 5s, max_error_rate: 5 }',
      'steps:',
      '  - { name: a, duration: 1s, config: ./missing.yaml }',
      '  - name: b',
      '    duration: 1s',
      '    policies:',
      '      - { name: p, type: http, error_chance: 3 }',
      '  - { name: a, colour: red }',
      'extra: true',
      '',
    ].join('\n'),
  });
  const file = join(dir, 'bad.yaml');
  const result = await havoc(['run', file, '--url', 'http://127.0.0.1:1']);
  t.is(result.code, 1);
  const lines = result.stderr.trim().split('\n');
  const expect = (prefix: string) =>
    t.true(
      lines.some((l) => l.startsWith(prefix)),
      `${prefix}\n${result.stderr}`,
    );
  expect(`${file}:1:10: version: must be 1`);
  expect(`${file}:2:15: probe.url: must be an http or https URL`);
  expect(`${file}:2:36: probe.interval: invalid duration`);
  expect(`${file}:2:42: probe.retries: unknown key "retries"`);
  expect(`${file}:3:36: slo.max_error_rate: must be a number from 0 to 1`);
  expect(`${file}:5:38: steps[0].config: ./missing.yaml: cannot open config file`);
  expect(`${file}:9:46: steps[1].policies[0].error_chance:`);
  expect(`${file}:10:5: steps[2]: duration is required`);
  expect(`${file}:10:13: steps[2].name: step "a" is named twice`);
  expect(`${file}:10:16: steps[2].colour: unknown key "colour"`);
  expect(`${file}:11:1: extra: unknown key "extra"`);
  t.is(lines.length, 11, 'one line per problem; a bad objective is not also reported as a missing one');
  const rows = lines.map((l) => Number(l.slice(file.length + 1).split(':')[0]));
  t.deepEqual(
    rows,
    [...rows].sort((a, b) => a - b),
    'in document order',
  );
});

test('demo --once: a service, its control plane and the built-in scenario, with a report, exit 0', async (t) => {
  const dir = files({});
  const report = join(dir, 'demo.md');
  const result = await havoc(['demo', '--once', '--report', report]);
  t.is(result.code, 0, result.stderr);
  t.regex(result.stdout, /demo service {3}http:\/\/127\.0\.0\.1:\d+/);
  t.regex(result.stdout, /control plane {2}http:\/\/127\.0\.0\.1:\d+/);
  t.regex(result.stdout, /baseline\s+-\s+\d+/);
  t.regex(result.stdout, /slow-reads\s+slow-items\s+\d+/);
  t.regex(result.stdout, /flaky-reads\s+flaky-items\s+\d+/);
  t.regex(result.stdout, /passed: every objective held/);
  t.regex(readFileSync(report, 'utf8'), /\| slow-reads \| slow-items \|/);
});
