// `havoc fleet apply | renew | halt | status` (the real bin, in its own process) against the
// real Redis, with members of this process following the channel: what they apply, what they
// refuse (a wrong secret), what status shows, and the errors for bad input and no Redis.
import { join } from 'node:path';
import { Engine, FLEET_LAYER, joinFleet, type FleetMember } from 'havoc';
import { files, havoc } from './fixtures/cli.js';
import { uniqueChannel, until } from './fixtures/fleet.js';
import { URLS, serverTest } from './fixtures/servers.js';

const test = serverTest('redis');
const url = URLS.redis;
const dir = files({
  'chaos.yaml': 'version: 1\npolicies:\n  - name: fleet-errors\n    type: http\n    target: /fleet/*\n    error_chance: 1\n',
  'bad.yaml': 'version: 1\npolicies:\n  - name: x\n    type: http\n    error_chance: 7\n',
});
const at = (name: string) => join(dir, name);

const members: FleetMember[] = [];
test.after.always(async () => {
  await Promise.all(members.map((m) => m.close()));
});

let engines = 0;
async function member(channel: string, name: string, secret?: string) {
  const engine = new Engine({ name: `cli-fleet-${process.pid}-${++engines}` });
  const fleet = joinFleet(engine, { redis: url, channel, member: name, secret, ackIntervalMs: 200 });
  members.push(fleet);
  await fleet.ready;
  const policies = () =>
    engine
      .state()
      .layers.find((l) => l.name === FLEET_LAYER)
      ?.config.policies.map((p) => p.name) ?? [];
  return { fleet, policies };
}

test('fleet apply, status, renew and halt', async (t) => {
  const channel = uniqueChannel('cli');
  const a = await member(channel, 'alpha', 's3cret');
  const b = await member(channel, 'beta', 'other');
  const common = ['--redis', url, '--channel', channel];

  const applied = await havoc(['fleet', 'apply', at('chaos.yaml'), ...common, '--ttl', '1m'], { HAVOC_FLEET_SECRET: 's3cret' });
  t.is(applied.code, 0, applied.stderr);
  t.regex(applied.stdout, new RegExp(`published 1 policy from .*chaos\\.yaml to ${channel} as version 1, lease 1m`));
  await until(() => a.policies().includes('fleet-errors'), 'alpha applied the set');
  await until(() => b.fleet.status().rejections === 1, 'beta refused it');
  t.deepEqual(b.policies(), []);
  t.true((a.fleet.status().leaseRemainingMs ?? Infinity) <= 60_000);

  let status = await havoc(['fleet', 'status', ...common]);
  for (let i = 0; i < 100 && !/beta\s+0\s+refused 1/.test(status.stdout); i++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    status = await havoc(['fleet', 'status', ...common]);
  }
  t.is(status.code, 0, status.stderr);
  t.regex(status.stdout, new RegExp(`${channel}: version 1, a set, signed, lease \\d+(\\.\\d)?s left`));
  t.regex(status.stdout, /alpha\s+1\s+ok\s+\S+:\d+\s+\S+ ago/);
  t.regex(status.stdout, /beta\s+0\s+refused 1: fleet set 1 on \S+ has a wrong signature/);
  t.regex(status.stdout, /1 of 2 not on version 1/);
  const json = JSON.parse((await havoc(['fleet', 'status', '--json', ...common])).stdout) as {
    published: { version: number; signed: boolean; sig?: string; remainingMs: number };
    members: { member: string; version: number }[];
  };
  t.is(json.published.version, 1);
  t.true(json.published.signed);
  t.is(json.published.sig, undefined, 'the signature is not printed');
  t.deepEqual(
    json.members.map((m) => [m.member, m.version]),
    [
      ['alpha', 1],
      ['beta', 0],
    ],
  );

  const renewed = await havoc(['fleet', 'renew', '--ttl', '2h', ...common], { HAVOC_FLEET_SECRET: 's3cret' });
  t.is(renewed.code, 0, renewed.stderr);
  t.regex(renewed.stdout, /renewed version 1 on .*: 2h from now/);
  await until(() => (a.fleet.status().leaseRemainingMs ?? 0) > 60_000, 'alpha holds the renewed lease');

  const halted = await havoc(['fleet', 'halt', ...common, '--secret', 's3cret']);
  t.is(halted.code, 0, halted.stderr);
  t.regex(halted.stdout, /halted the fleet on .*: version 2 clears every member's fleet layer/);
  await until(() => a.policies().length === 0, 'alpha dropped its fleet layer');
  t.regex((await havoc(['fleet', 'status', ...common])).stdout, /version 2, halt \(no fleet set\), signed/);
});

test('bad input and an unreachable Redis are one clear error each, exit code 1', async (t) => {
  const channel = uniqueChannel('cli-bad');
  const bad = await havoc(['fleet', 'apply', at('bad.yaml'), '--redis', url, '--channel', channel]);
  t.is(bad.code, 1);
  t.regex(bad.stderr, /bad\.yaml:5:19: policies\[0\]\.error_chance: must be a number in \[0, 1\] \(got 7\)/);
  const noRedis = await havoc(['fleet', 'status']);
  t.is(noRedis.code, 1);
  t.regex(noRedis.stderr, /no Redis given: pass --redis redis:\/\/host:6379 or set HAVOC_FLEET_REDIS/);
  const unreachable = await havoc(['fleet', 'halt', '--redis', 'redis://127.0.0.1:1']);
  t.is(unreachable.code, 1);
  t.regex(unreachable.stderr, /^havoc: cannot reach Redis at redis:\/\/127\.0\.0\.1:1: connect ECONNREFUSED/);
  const ttl = await havoc(['fleet', 'apply', at('chaos.yaml'), '--redis', url, '--ttl', '48h']);
  t.is(ttl.code, 1);
  t.regex(ttl.stderr, /--ttl <duration>' argument '48h' is invalid. between 1ms and 24h/);
  const nothing = await havoc(['fleet', 'renew', '--ttl', '1m', '--redis', url, '--channel', channel]);
  t.is(nothing.code, 1);
  t.regex(nothing.stderr, /no fleet set to renew on/);
});

test('every fleet command has --help with its flags and an example', async (t) => {
  for (const command of ['', 'apply', 'renew', 'halt', 'status']) {
    const args = command === '' ? ['fleet', '--help'] : ['fleet', command, '--help'];
    const { code, stdout } = await havoc(args);
    t.is(code, 0, command);
    t.regex(stdout, new RegExp(`Usage: havoc fleet ${command}`), command);
    t.regex(stdout, /Examples?:\n {2}\$ havoc fleet /, command);
    if (command !== '') t.regex(stdout, /--redis <url>.*HAVOC_FLEET_REDIS/s, command);
  }
});
