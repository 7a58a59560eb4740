// Fleet control across separate Node processes on the real Redis: three members get a publish,
// a fourth joining later gets the set, a bad set is refused by all (old set still deciding,
// errors in the acks), and a leased set whose publisher is SIGKILLed is gone from every member.
import { fleetMembers, publishFleet } from 'havoc';
import { forkMember, forkPublisher, uniqueChannel, untilAcks, type MemberProcess } from './fixtures/fleet.js';
import { URLS, serverTest } from './fixtures/servers.js';

const test = serverTest('redis');
const url = URLS.redis;

const FLEET_SET = 'version: 1\npolicies:\n  - name: fleet-errors\n    type: http\n    target: /fleet/*\n    error_chance: 1\n';
const OTHER_SET = FLEET_SET.replace('fleet-errors', 'fleet-errors-2');
// Valid on its own, refused by every member: `local` is its file layer's policy.
const CONFLICTING_SET = 'version: 1\npolicies:\n  - name: local\n    type: http\n    target: /fleet/*\n    error_chance: 1\n';

const running: MemberProcess[] = [];
function join(channel: string, member: string): MemberProcess {
  const process = forkMember({ url, channel, member });
  running.push(process);
  return process;
}
test.after.always(async () => {
  await Promise.all(running.map((member) => member.close()));
});

const has = (names: string[]) => (report: { fleetPolicies: string[] }) => JSON.stringify(report.fleetPolicies) === JSON.stringify(names);

test('a publish reaches three member processes; a fourth that joins later gets the set; a bad set is refused by all', async (t) => {
  const channel = uniqueChannel('three');
  const members = ['a', 'b', 'c'].map((name) => join(channel, name));
  await Promise.all(members.map((m) => m.until((r) => r.ready, 'ready')));

  const { version } = await publishFleet(url, FLEET_SET, { channel });
  t.is(version, 1);
  for (const report of await Promise.all(members.map((m) => m.until(has(['fleet-errors']), 'the set is in force')))) {
    t.is(report.version, 1);
    t.true(report.firing, 'the fleet policy decides');
    t.true(report.localFiring, 'the file layer stays');
  }

  const late = join(channel, 'd');
  const lateReport = await late.until((r) => r.ready && r.version === 1, 'the late joiner read the set');
  t.deepEqual(lateReport.fleetPolicies, ['fleet-errors']);
  t.true(lateReport.firing);

  const all = [...members, late];
  const acks = await untilAcks(url, channel, (acks) => acks.length === 4 && acks.every((a) => a.version === 1), 'four acks of version 1');
  t.deepEqual(
    acks.map((a) => a.member),
    ['a', 'b', 'c', 'd'],
  );
  t.true(acks.every((a) => a.error === null && a.host !== '' && a.pid > 0 && a.pid !== process.pid));

  const bad = await publishFleet(url, CONFLICTING_SET, { channel });
  t.is(bad.version, 2);
  for (const report of await Promise.all(all.map((m) => m.until((r) => r.rejections > 0, 'the bad set was refused')))) {
    t.regex(report.lastError ?? '', /policy "local" of layer "fleet" is already defined in layer "file"/);
    t.is(report.version, 1, 'the last good set stays');
    t.deepEqual(report.fleetPolicies, ['fleet-errors']);
    t.true(report.firing, 'the old set still decides');
  }
  const refused = await untilAcks(url, channel, (acks) => acks.every((a) => a.rejectedVersion === 2), 'every ack shows the refusal');
  t.is(refused.length, 4);
  for (const ack of refused) {
    t.is(ack.version, 1);
    t.is(ack.rejectedVersion, 2);
    t.regex(ack.error ?? '', /^fleet set 2 policies\[0\]\.name: policy "local" of layer "fleet"/);
  }

  // A good set after the bad one is applied again everywhere.
  await publishFleet(url, OTHER_SET, { channel });
  for (const report of await Promise.all(all.map((m) => m.until(has(['fleet-errors-2']), 'the next good set is in force')))) {
    t.is(report.version, 3);
    t.is(report.lastError, null);
  }

  // `null` clears the fleet layer everywhere; the file layers stay.
  await publishFleet(url, null, { channel });
  for (const report of await Promise.all(all.map((m) => m.until((r) => r.version === 4, 'the clear is in force')))) {
    t.deepEqual(report.fleetPolicies, []);
    t.false(report.firing);
    t.true(report.localFiring);
  }

  await Promise.all(all.map((m) => m.close()));
  t.deepEqual(await fleetMembers(url, { channel }), [], 'members that leave remove their acks');
});

test('a leased set whose publisher is SIGKILLed is gone from every member', async (t) => {
  const channel = uniqueChannel('lease');
  const members = ['a', 'b', 'c'].map((name) => join(channel, name));
  await Promise.all(members.map((m) => m.until((r) => r.ready, 'ready')));
  // A set of its own in force first: when the lease runs out, the fleet layer is gone, not back to it.
  await publishFleet(url, OTHER_SET, { channel });
  await Promise.all(members.map((m) => m.until(has(['fleet-errors-2']), 'the unleased set is in force')));

  const publisher = forkPublisher({ url, channel, ttlMs: 2000, renewMs: 300, config: FLEET_SET });
  t.is(await publisher.version, 2);
  await Promise.all(members.map((m) => m.until(has(['fleet-errors']), 'the leased set is in force')));
  // Ten renewals take longer than the 2 s lease: it is the renewals that keep the set.
  await publisher.renewed(10);
  for (const member of members) {
    t.deepEqual(member.latest?.fleetPolicies, ['fleet-errors'], `${member.name} still holds the renewed set`);
    // The state that makes it run out within the lease, whatever the machine's speed: each member
    // holds it under a local lease of at most the published 2 s (how fast is bench:fleet's part).
    const lease = member.latest?.leaseRemainingMs ?? null;
    t.true(lease !== null && lease > 0 && lease <= 2000, `${member.name} holds a lease of at most 2 s (${String(lease)} ms left)`);
  }

  publisher.child.kill('SIGKILL');
  const expired = (r: { fleetPolicies: string[]; version: number }) => r.fleetPolicies.length === 0 && r.version === 0;
  for (const report of await Promise.all(members.map((m) => m.until(expired, 'the lease ran out')))) {
    t.false(report.firing, 'no fleet fault after the lease');
    t.true(report.localFiring, 'the file layer stays');
  }
  // The acks say it too: no fleet set in force anywhere.
  const acks = await untilAcks(url, channel, (acks) => acks.length === 3 && acks.every((a) => a.version === 0), 'three acks of version 0');
  t.deepEqual(
    acks.map((a) => [a.member, a.version]),
    [
      ['a', 0],
      ['b', 0],
      ['c', 0],
    ],
  );
});
