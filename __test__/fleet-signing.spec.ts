// Signed fleet sets in one process against the real Redis: a record with any field changed or
// copied to another channel is refused, a replayed older signed record is refused as stale (on
// a reconnect too) while an emptied Redis, a lease and a clear still work, and a publisher
// whose clock is behind issues just after the set in the key.
import { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { Engine, FLEET_LAYER, FleetError, fleetMembers, fleetSet, joinFleet, publishFleet, renewFleet, type FleetMember } from 'havoc';
import { localFleet, uniqueChannel, until } from './fixtures/fleet.js';
import { URLS, serverTest } from './fixtures/servers.js';

const test = serverTest('redis');
const url = URLS.redis;
const SET = 'version: 1\npolicies:\n  - name: fleet-errors\n    type: http\n    target: /fleet/*\n    error_chance: 1\n';
const OTHER = SET.replace('fleet-errors', 'other-errors');

const { member, witness, cleanup, closeAll } = localFleet(url, 'fleet-signing');
test.after.always(closeAll);

const rejections = (fleet: FleetMember) => fleet.status().rejections;

test('a signed record with any field changed, or copied to another channel, is refused', async (t) => {
  const channel = uniqueChannel('tamper');
  const { fleet, fleetPolicies } = member(channel, { secret: 'k' });
  await fleet.ready;
  await publishFleet(url, SET, { channel, secret: 'k', ttlMs: 600_000 });
  await until(() => fleetPolicies().includes('fleet-errors'), 'the signed set is in force');
  const redis = witness();
  const signed = JSON.parse((await redis.get(`${channel}:set`))!) as Record<string, unknown>;
  const tampered: Record<string, unknown>[] = [
    { ...signed, version: 2, config: OTHER },
    { ...signed, version: 3, id: '0123456789abcdef' },
    { ...signed, version: 4 },
    { ...signed, version: 5, config: OTHER, sig: 'f'.repeat(64) },
    { ...signed, version: 6, config: OTHER, sig: 'not hex' },
  ];
  for (const [i, record] of tampered.entries()) {
    await redis.set(`${channel}:set`, JSON.stringify(record));
    await redis.publish(channel, String(record.version));
    await until(() => rejections(fleet) === i + 1, `tampered record ${i} is refused`);
    t.regex(fleet.status().lastError ?? '', /has a wrong signature$/);
  }
  // Renewed with the lease doubled but the old signature: refused too.
  await redis.set(`${channel}:set`, JSON.stringify({ ...signed, ttlMs: 1_200_000 }));
  await redis.publish(channel, '1');
  await until(() => rejections(fleet) === tampered.length + 1, 'the changed lease is refused');
  t.deepEqual(fleetPolicies(), ['fleet-errors']);
  // The genuine record back, renewed with the secret: in force, the refusal no longer reported.
  await redis.set(`${channel}:set`, JSON.stringify(signed), 'PX', 600_000);
  await renewFleet(url, { channel, ttlMs: 300_000, secret: 'k' });
  await until(() => fleet.status().lastError === null, 'the genuine renewal clears the refusal');
  t.true((fleet.status().leaseRemainingMs ?? Infinity) <= 300_000);
  t.is(fleet.status().version, 1);

  // The untouched record under another channel's key: the channel is signed.
  const other = uniqueChannel('tamper-other');
  const replayed = member(other, { secret: 'k' });
  await replayed.fleet.ready;
  await redis.set(`${other}:set`, JSON.stringify(signed));
  await redis.publish(other, '1');
  await until(() => rejections(replayed.fleet) === 1, 'the replay is refused');
  t.deepEqual(replayed.fleetPolicies(), []);
});

test('a replayed older signed record is refused as stale, on a reconnect too; an emptied Redis, a lease and a clear still work', async (t) => {
  const channel = uniqueChannel('replay');
  const name = `havoc-replay-${process.pid}-${Date.now()}`;
  // Named connections (a duplicate keeps the name), so the test can cut exactly this member's.
  const app = new Redis(url, { connectionName: name });
  cleanup.push(() => void app.disconnect());
  const registry = new Registry();
  const engine = new Engine({ name: `fleet-signing-replay-${process.pid}`, registry });
  // Acks only after a read (the interval is out of reach): a new ack says the member read the key.
  const appliedVersions: number[] = [];
  const fleet = joinFleet(engine, {
    redis: app,
    channel,
    member: 'replay',
    secret: 'k',
    ackTtlMs: 600_000,
    ackIntervalMs: 300_000,
    onApply: (version) => appliedVersions.push(version),
  });
  cleanup.push(() => fleet.close());
  const fleetPolicies = () =>
    engine
      .state()
      .layers.find((l) => l.name === FLEET_LAYER)
      ?.config.policies.map((p) => p.name) ?? [];
  const redis = witness();
  const lastSeen = async () => (await fleetMembers(url, { channel })).find((a) => a.member === 'replay')?.lastSeen ?? 0;
  const cutConnections = async () => {
    const ids = ((await redis.client('LIST')) as string)
      .split('\n')
      .filter((line) => line.includes(` name=${name} `))
      .map((line) => /\bid=(\d+)/.exec(line)![1]!);
    t.true(ids.length >= 2, 'the member has its own named connections');
    for (const id of ids) await redis.client('KILL', 'ID', id);
  };
  await fleet.ready;

  await publishFleet(url, SET, { channel, secret: 'k' });
  await until(() => fleetPolicies().includes('fleet-errors'), 'set 1 is in force');
  const first = (await redis.get(`${channel}:set`))!;
  await publishFleet(url, OTHER, { channel, secret: 'k' });
  await until(() => fleetPolicies().includes('other-errors'), 'set 2 is in force');

  // Set 1, genuinely signed, written back: a reconnect reads the key as the truth, and refuses it.
  await redis.set(`${channel}:set`, first);
  await cutConnections();
  await until(() => rejections(fleet) === 1, 'the replay is refused on the reconnect');
  t.regex(
    fleet.status().lastError ?? '',
    new RegExp(`^fleet set 1 on ${channel} is stale: issued at .*, before set 2 \\(issued at .*\\) applied here`),
  );
  t.is(fleet.status().rejectedVersion, 1);
  t.deepEqual(fleetPolicies(), ['other-errors'], 'the newest set stays');
  // An announcement of it makes no difference (and the same replay is counted once).
  await redis.publish(channel, '2');
  await until(async () => (await fleetMembers(url, { channel }))[0]?.rejectedVersion === 1, 'the ack shows it');
  t.regex((await fleetMembers(url, { channel }))[0]?.error ?? '', /is stale/);
  const rejected = (await registry.getMetricsAsJSON()).find((m) => m.name === 'havoc_fleet_rejections_total')?.values ?? [];
  t.deepEqual(
    rejected.map((v) => [v.labels.reason, v.value]),
    [['stale', 1]],
  );

  // The newest leased record, written back with a fresh expiry after its lease ran out, does not bring it back.
  // The lease only has to outlive reading the key back here; the member may apply it later.
  await publishFleet(url, SET, { channel, secret: 'k', ttlMs: 5000 });
  const leased = (await redis.get(`${channel}:set`))!;
  t.not(leased, null);
  await until(() => appliedVersions.includes(3), 'the leased set 3 was applied');
  t.is(fleet.status().lastError, null, 'a newer set supersedes the refusal');
  await until(() => fleetPolicies().length === 0, 'the lease ran out');
  await until(async () => (await redis.exists(`${channel}:set`)) === 0, 'the key expired');
  const before = await lastSeen();
  await redis.set(`${channel}:set`, leased, 'PX', 600_000);
  await redis.publish(channel, '3');
  await until(async () => (await lastSeen()) > before, 'the member read the key');
  t.deepEqual(fleetPolicies(), [], 'the run-out lease stays run out');
  t.is(fleet.status().version, 0);
  t.is(rejections(fleet), 1);
  // Renewing signs the record again: not one this secret did not sign.
  await redis.set(`${channel}:set`, JSON.stringify({ ...JSON.parse(leased), sig: undefined }), 'PX', 600_000);
  await t.throwsAsync(renewFleet(url, { channel, ttlMs: 1000, secret: 'k' }), {
    instanceOf: FleetError,
    message: `fleet set version 3 on ${channel} is not signed with this secret: refusing to renew (and so sign) it`,
  });

  // A Redis that lost everything (restarted empty): no set, then versions from 1 again, newer by issuedAt.
  await redis.del(`${channel}:set`, `${channel}:version`);
  const beforeCut = await lastSeen();
  await cutConnections();
  await until(async () => fleet.status().connected && (await lastSeen()) > beforeCut, 'resynced');
  t.is(fleet.status().version, 0);
  t.is((await publishFleet(url, OTHER, { channel, secret: 'k' })).version, 1);
  await until(() => fleetPolicies().includes('other-errors'), 'the new set 1 is in force');
  t.is(fleet.status().version, 1);
  await publishFleet(url, null, { channel, secret: 'k' });
  await until(() => fleetPolicies().length === 0 && fleet.status().version === 2, 'the signed clear is in force');
  t.is(rejections(fleet), 1);
});

test('a publisher whose clock is behind issues just after the signed set in the key; with no set there it is refused as stale', async (t) => {
  const channel = uniqueChannel('skew');
  const { fleet, fleetPolicies } = member(channel, { secret: 'k' });
  await fleet.ready;
  await publishFleet(url, SET, { channel, secret: 'k', ttlMs: 600_000 });
  await until(() => fleetPolicies().includes('fleet-errors'), 'set 1 is in force');
  const issued = async () => (await fleetSet(url, { channel }))!.record.issuedAt!;
  const first = await issued();

  // This process's clock an hour behind the first publisher's (the member's clock plays no part).
  const realNow = Date.now;
  Date.now = () => realNow() - 3_600_000;
  try {
    await renewFleet(url, { channel, ttlMs: 300_000, secret: 'k' });
    t.is(await issued(), first + 1, 'a renewal is newer than what it renews');
    await until(() => (fleet.status().leaseRemainingMs ?? Infinity) <= 300_000, 'the renewal is taken');
    await publishFleet(url, OTHER, { channel, secret: 'k' });
    t.is(await issued(), first + 2, 'a publish is newer than the signed set in the key');
    await until(() => fleetPolicies().includes('other-errors'), 'set 2 is in force');

    // Nothing in the key to go past (a lease ran out, Redis restarted empty): the hour shows.
    await witness().del(`${channel}:set`);
    await publishFleet(url, SET, { channel, secret: 'k' });
    await until(() => rejections(fleet) === 1, 'the set issued an hour back is refused');
    t.regex(fleet.status().lastError ?? '', /is stale: .* a replay, or a publisher whose clock is behind$/);
    t.deepEqual(fleetPolicies(), ['other-errors']);
  } finally {
    Date.now = realNow;
  }
  await publishFleet(url, SET, { channel, secret: 'k' });
  await until(() => fleetPolicies().includes('fleet-errors'), 'a publisher with the right clock is in force');
  t.is(fleet.status().lastError, null);
});
