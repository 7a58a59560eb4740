// The CLI's local commands, spawned as the real bin: validate (every issue at its position),
// plan (exit codes around --max-risk), help, usage errors, colour and JSON output.
import { join } from 'node:path';
import test from 'ava';
import { files, havoc } from './fixtures/cli.js';

const dir = files({
  'good.yaml':
    'version: 1\npolicies:\n  - name: slow\n    type: http\n    target: /api/*\n    latency_chance: 0.1\n    latency_duration: 100ms\n',
  'bad.yaml':
    'version: 1\npolicies:\n  - name: broken\n    type: http\n    target: all\n    error_chance: 2\n    bogus: 1\n  - name: also\n    type: nope\n',
  'bad.json': '{\n  "version": 1,\n  "policies": [\n    { "name": "x", "type": "http", "latency_duration": "forever" }\n  ]\n}\n',
  'risky.yaml': 'version: 1\npolicies:\n  - name: everything-fails\n    type: http\n    target: all\n    error_chance: 0.9\n',
});
const at = (name: string) => join(dir, name);

test('validate lists every issue of every file as file:line:col: path: message, and exits 1', async (t) => {
  const { code, stdout, stderr } = await havoc(['validate', at('good.yaml'), at('bad.yaml'), at('bad.json')]);
  t.is(code, 1);
  t.regex(stdout, /good\.yaml: ok/);
  const lines = stderr.trim().split('\n');
  t.true(lines.includes(`${at('bad.yaml')}:6:19: policies[0].error_chance: must be a number in [0, 1] (got 2)`), stderr);
  t.true(
    lines.some((l) => l.startsWith(`${at('bad.yaml')}:7:5: policies[0].bogus: unknown key`)),
    stderr,
  );
  t.true(
    lines.some((l) => l.startsWith(`${at('bad.yaml')}:9:11: policies[1].type:`)),
    stderr,
  );
  t.true(
    lines.some((l) => l.startsWith(`${at('bad.json')}:4:`) && l.includes('policies[0].latency_duration')),
    stderr,
  );
});

test('validate exits 0 on good files and --json parses', async (t) => {
  const ok = await havoc(['validate', at('good.yaml')]);
  t.is(ok.code, 0);
  const { code, stdout } = await havoc(['validate', '--json', at('good.yaml'), at('bad.yaml')]);
  t.is(code, 1);
  const results = JSON.parse(stdout) as { file: string; valid: boolean; issues: { path: string; line: number; column: number }[] }[];
  t.deepEqual(
    results.map((r) => r.valid),
    [true, false],
  );
  t.like(results[1]!.issues[0], { path: 'policies[0].error_chance', line: 6, column: 19 });
});

test('a missing file is invalid input (exit 1)', async (t) => {
  const { code, stderr } = await havoc(['validate', at('missing.yaml')]);
  t.is(code, 1);
  t.regex(stderr, /missing\.yaml: cannot open config file/);
});

test('plan prints the guard report and exits 2 above --max-risk, 0 at or below it', async (t) => {
  const report = await havoc(['plan', at('risky.yaml')]);
  t.is(report.code, 0);
  t.regex(report.stdout, /score 90\/100 CRITICAL/);
  t.regex(report.stdout, /everything-fails\s+1\.00\s+0\.90\s+0\.90/);
  t.regex(report.stdout, /findings:/);
  const over = await havoc(['plan', at('risky.yaml'), '--max-risk', '50']);
  t.is(over.code, 2);
  t.regex(over.stdout, /over the limit: 90 > 50/);
  t.is((await havoc(['plan', at('risky.yaml'), '--max-risk', '90'])).code, 0);
  t.is((await havoc(['plan', at('good.yaml'), '--max-risk', '0'])).code, 2);
  const json = await havoc(['plan', '--json', at('risky.yaml'), '--max-risk', '95']);
  t.is(json.code, 0);
  t.like(JSON.parse(json.stdout), { score: 90, status: 'CRITICAL', overLimit: false, maxRisk: 95 });
});

test('plan of an invalid file or a bad --max-risk exits 1', async (t) => {
  const invalid = await havoc(['plan', at('bad.yaml')]);
  t.is(invalid.code, 1);
  t.regex(invalid.stderr, /bad\.yaml:6:19: policies\[0\]\.error_chance/);
  const usage = await havoc(['plan', at('risky.yaml'), '--max-risk', 'lots']);
  t.is(usage.code, 1);
  t.regex(usage.stderr, /--max-risk/);
});

test('every command has --help with its flags and an example', async (t) => {
  const commands = [
    'validate',
    'plan',
    'apply',
    'diff',
    'remove',
    'halt',
    'resume',
    'rollback',
    'renew',
    'status',
    'attack',
    'run',
    'demo',
  ];
  for (const command of commands) {
    const { code, stdout } = await havoc([command, '--help']);
    t.is(code, 0, command);
    t.regex(stdout, new RegExp(`Usage: havoc ${command}`), command);
    t.regex(stdout, /Examples?:\n {2}\$ havoc /, command);
  }
  const apply = await havoc(['apply', '--help']);
  t.regex(apply.stdout, /--ttl <duration>/);
  t.regex(apply.stdout, /--url <url>/);
  t.regex(apply.stdout, /--token <token>/);
});

test('usage errors exit 1', async (t) => {
  t.is((await havoc(['frobnicate'])).code, 1);
  t.is((await havoc(['plan'])).code, 1);
  t.is((await havoc(['apply', at('good.yaml'), '--ttl', 'soon'])).code, 1);
  t.is((await havoc(['attack', at('good.yaml')])).code, 1, 'attack needs --ttl');
});

test('colour only when asked for, never with NO_COLOR', async (t) => {
  // Spawned with pipes: no TTY, so no colour by default; FORCE_COLOR turns it on, NO_COLOR wins.
  const plain = await havoc(['plan', at('risky.yaml')]);
  t.false(plain.stdout.includes('\u001b['));
  const forced = await havoc(['plan', at('risky.yaml')], { FORCE_COLOR: '1' });
  t.true(forced.stdout.includes('\u001b['));
  const none = await havoc(['plan', at('risky.yaml')], { FORCE_COLOR: '1', NO_COLOR: '1' });
  t.false(none.stdout.includes('\u001b['));
  t.regex(none.stdout, /CRITICAL/);
});
