// Redis stopped and restarted under three member processes, on a redis-server of the suite's
// own (the shared one on 6379 serves other suites): while it is down the members keep their
// set and say they are disconnected; once it is back they reconnect by themselves and resync
// to what it holds (a Redis without persistence lost the set, and counts versions from 1 again).
import { spawnSync } from 'node:child_process';
import test from 'ava';
import { publishFleet } from 'havoc';
import { forkMember, freePort, startRedisServer, uniqueChannel, untilAcks, type MemberProcess } from './fixtures/fleet.js';

const SET = 'version: 1\npolicies:\n  - name: fleet-errors\n    type: http\n    target: /fleet/*\n    error_chance: 1\n';
const AFTER = SET.replace('fleet-errors', 'after-restart');

const installed = spawnSync('redis-server', ['--version']).status === 0;
const serial = installed ? test.serial : process.env.CI ? test.serial : test.skip;
if (!installed) console.warn('\n*** SKIPPING fleet restart tests: redis-server is not installed ***\n');

const running: MemberProcess[] = [];
const servers: { stop(): Promise<void> }[] = [];
test.after.always(async () => {
  await Promise.all(running.map((member) => member.close()));
  await Promise.all(servers.map((server) => server.stop()));
});

serial('members keep their set while Redis is down and resync when it is back', async (t) => {
  const port = await freePort();
  const url = `redis://127.0.0.1:${port}`;
  servers.push(await startRedisServer(port));
  const channel = uniqueChannel('restart');
  const members = ['a', 'b', 'c'].map((name) => forkMember({ url, channel, member: name }));
  running.push(...members);
  await Promise.all(members.map((m) => m.until((r) => r.ready, 'ready')));
  await publishFleet(url, SET, { channel });
  await Promise.all(members.map((m) => m.until((r) => r.fleetPolicies.includes('fleet-errors'), 'the set is in force')));

  await servers.pop()!.stop();
  for (const report of await Promise.all(members.map((m) => m.until((r) => !r.connected, 'the member saw Redis go')))) {
    t.deepEqual(report.fleetPolicies, ['fleet-errors'], 'the set stays while Redis is down');
    t.true(report.firing);
  }

  servers.push(await startRedisServer(port));
  // The restarted Redis holds no set: the members follow it.
  for (const report of await Promise.all(members.map((m) => m.until((r) => r.connected && r.version === 0, 'resynced')))) {
    t.deepEqual(report.fleetPolicies, []);
    t.false(report.firing);
    t.true(report.localFiring);
  }
  // Version 1 again, a different set: applied, not mistaken for the one before the restart.
  t.is((await publishFleet(url, AFTER, { channel })).version, 1);
  await Promise.all(members.map((m) => m.until((r) => r.fleetPolicies.includes('after-restart'), 'the new set is in force')));
  const acks = await untilAcks(url, channel, (acks) => acks.length === 3 && acks.every((a) => a.version === 1), 'three acks of version 1');
  t.deepEqual(
    acks.map((a) => [a.member, a.version]),
    [
      ['a', 1],
      ['b', 1],
      ['c', 1],
    ],
  );
});
