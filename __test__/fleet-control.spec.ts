// Fleet control in one process against the real Redis: signatures (wrong, missing), forged and
// garbage messages and key values (a clear rejection, the last good set stays), a bad config
// written by another publisher (the member's ConfigError in the ack), the application's client
// instrumented with a `redis` policy that fails every command (havoc's own connections do not
// care), a client's keyPrefix, `ready`, leases, metrics and bad options. Tampered, replayed and
// clock-skewed signed records: fleet-signing.spec.
import { Redis } from 'ioredis';
import {
  Engine,
  FLEET_LAYER,
  FleetError,
  FleetRejectionError,
  fleetMembers,
  fleetSet,
  instrumentIoredis,
  joinFleet,
  parseConfig,
  publishFleet,
  renewFleet,
  type FleetMember,
} from 'havoc';
import { localFleet, uniqueChannel, until } from './fixtures/fleet.js';
import { URLS, serverTest } from './fixtures/servers.js';

const test = serverTest('redis');
const url = URLS.redis;
const SET = 'version: 1\npolicies:\n  - name: fleet-errors\n    type: http\n    target: /fleet/*\n    error_chance: 1\n';
const OTHER = SET.replace('fleet-errors', 'other-errors');

const { member, witness, cleanup, closeAll } = localFleet(url, 'fleet-control');
test.after.always(closeAll);

const rejections = (fleet: FleetMember) => fleet.status().rejections;

test('with a secret, unsigned and wrongly signed sets are refused and reported; the signed set stays', async (t) => {
  const channel = uniqueChannel('secret');
  const { fleet, fleetPolicies, registry } = member(channel, { secret: 'right' });
  // In one process, on one registry: each member's gauges are its own.
  const open = member(channel, { registry });
  await Promise.all([fleet.ready, open.fleet.ready]);

  await publishFleet(url, SET, { channel, secret: 'right' });
  await until(() => fleetPolicies().includes('fleet-errors'), 'the signed set is in force');

  await publishFleet(url, OTHER, { channel, secret: 'wrong' });
  await until(() => rejections(fleet) === 1, 'the wrong signature is refused');
  t.is(fleet.status().lastError, `fleet set 2 on ${channel} has a wrong signature`);
  t.is(fleet.status().rejectedVersion, 2);
  t.deepEqual(fleetPolicies(), ['fleet-errors']);
  // A member without a secret does not check signatures.
  await until(() => open.fleetPolicies().includes('other-errors'), 'the member without a secret applies it');

  await publishFleet(url, OTHER, { channel });
  await until(() => rejections(fleet) === 2, 'the unsigned set is refused');
  t.is(fleet.status().lastError, `fleet set 3 on ${channel} is not signed`);
  t.deepEqual(fleetPolicies(), ['fleet-errors']);
  await until(async () => (await fleetMembers(url, { channel })).some((a) => a.rejectedVersion === 3), 'the ack shows it');
  const ack = (await fleetMembers(url, { channel })).find((a) => a.member === fleet.status().member);
  t.is(ack?.version, 1);
  t.is(ack?.error, `fleet set 3 on ${channel} is not signed`);

  await until(() => open.fleet.status().version === 3, 'the member without a secret applied the unsigned set');
  const metrics = await registry.getMetricsAsJSON();
  const rejected = metrics.find((m) => m.name === 'havoc_fleet_rejections_total')?.values ?? [];
  t.deepEqual(rejected.map((v) => [v.labels.reason, v.value]).sort(), [
    ['signature', 1],
    ['unsigned', 1],
  ]);
  const byMember = (name: string) =>
    ((metrics.find((m) => m.name === name)?.values ?? []) as { labels: Record<string, unknown>; value: number }[])
      .map((v) => [v.labels.member, v.value])
      .sort();
  t.deepEqual(byMember('havoc_fleet_version_applied'), [
    [fleet.status().member, 1],
    [open.fleet.status().member, 3],
  ]);
  t.deepEqual(byMember('havoc_fleet_connected'), [
    [fleet.status().member, 1],
    [open.fleet.status().member, 1],
  ]);
});

test('forged messages and a garbage key value are refused with a clear reason; the last good set stays', async (t) => {
  const channel = uniqueChannel('forged');
  const { fleet, fleetPolicies, engine } = member(channel);
  await fleet.ready;
  await publishFleet(url, SET, { channel });
  await until(() => fleetPolicies().includes('fleet-errors'), 'the set is in force');
  const redis = witness();

  await redis.publish(channel, 'DROP EVERYTHING');
  await until(() => rejections(fleet) === 1, 'the message is refused');
  t.is(fleet.status().lastError, `a message on ${channel} is not a set version: "DROP EVERYTHING"`);
  await until(async () => (await fleetMembers(url, { channel }))[0]?.error === fleet.status().lastError, 'the ack shows the same error');
  t.is((await fleetMembers(url, { channel }))[0]?.rejectedVersion, null, 'a message names no set');

  // A forged announcement of a version that is not there: the key says what is in force.
  await redis.publish(channel, '99');
  await redis.set(`${channel}:set`, '{"version": 7, "config": ');
  await redis.publish(channel, '7');
  await until(() => rejections(fleet) === 2, 'the garbage value is refused');
  t.regex(fleet.status().lastError ?? '', new RegExp(`^the value of ${channel}:set is not a havoc fleet record: not JSON`));
  t.deepEqual(fleetPolicies(), ['fleet-errors']);
  t.not(engine.decide('http', '/fleet/x'), null, 'the last good set still decides');

  await redis.set(`${channel}:set`, JSON.stringify({ version: 8, id: '00000000000000aa', config: 42, format: 'yaml' }));
  await redis.publish(channel, '8');
  await until(() => rejections(fleet) === 3, 'the record with a number for config is refused');
  t.is(fleet.status().lastError, `the value of ${channel}:set is not a havoc fleet record: config must be the configuration text or null`);

  // Another publisher's set that this member's validation refuses: the ConfigError, with its line.
  const bad = 'version: 1\npolicies:\n  - name: x\n    type: http\n    error_chance: 7\n';
  await redis.set(`${channel}:set`, JSON.stringify({ version: 9, id: '00000000000000bb', config: bad, format: 'yaml' }));
  await redis.publish(channel, '9');
  await until(() => rejections(fleet) === 4, 'the bad config is refused');
  t.regex(fleet.status().lastError ?? '', /^fleet set 9:5:19 policies\[0\]\.error_chance: /);
  t.deepEqual(fleetPolicies(), ['fleet-errors']);
  await until(async () => (await fleetMembers(url, { channel }))[0]?.rejectedVersion === 9, 'the ack shows it');
  t.regex((await fleetMembers(url, { channel }))[0]?.error ?? '', /^fleet set 9:5:19 policies\[0\]\.error_chance/);

  // An id that is not what publishers make (a line break would blur the fields of the signed text).
  await redis.set(`${channel}:set`, JSON.stringify({ version: 9, id: '00000000000000bb\nyaml', config: SET, format: 'yaml' }));
  await redis.publish(channel, '9');
  await until(() => rejections(fleet) === 5, 'the forged id is refused');
  t.is(
    fleet.status().lastError,
    `the value of ${channel}:set is not a havoc fleet record: id must be 16 lowercase hex digits (got "00000000000000bb\\nyaml")`,
  );
  t.deepEqual(fleetPolicies(), ['fleet-errors']);

  // The counter is past the forged versions' reach no more: a real publish wins again.
  await redis.set(`${channel}:version`, '9');
  await publishFleet(url, OTHER, { channel });
  await until(() => fleetPolicies().includes('other-errors'), 'a good set is applied again');
  t.is(fleet.status().lastError, null);
  t.is(fleet.status().version, 10);
});

test("the application's client, instrumented with a redis policy failing every command, does not stop fleet control", async (t) => {
  const channel = uniqueChannel('instrumented');
  const chaos = new Engine({
    name: `fleet-control-chaos-${process.pid}`,
    config: parseConfig('version: 1\npolicies:\n  - name: cut-redis\n    type: redis\n    target: all\n    error_chance: 1\n'),
  });
  const app = instrumentIoredis(new Redis(url), chaos);
  cleanup.push(() => void app.disconnect());
  await t.throwsAsync(app.get('anything'), { message: /LOADING/ }, 'the application client is cut');
  const { fleet, fleetPolicies } = member(channel, { redis: app });
  await fleet.ready;
  // publishFleet refuses nothing either: it sends through a duplicate of its own.
  await publishFleet(app, SET, { channel });
  await until(() => fleetPolicies().includes('fleet-errors'), 'the set is in force');
  await publishFleet(app, null, { channel });
  await until(() => fleetPolicies().length === 0, 'the clear is in force');
  t.true(fleet.status().connected);
});

test('a leased set runs out on the member (back to no fleet layer, not to the set before it); renewals extend it', async (t) => {
  const channel = uniqueChannel('lease');
  const { fleet, fleetPolicies } = member(channel);
  await fleet.ready;
  await publishFleet(url, OTHER, { channel });
  await until(() => fleetPolicies().includes('other-errors'), 'the unleased set is in force');
  await publishFleet(url, SET, { channel, ttlMs: 60_000 });
  await until(() => fleetPolicies().includes('fleet-errors'), 'the leased set is in force');
  const lease = fleet.status().leaseRemainingMs;
  t.true(lease !== null && lease <= 60_000);

  const published = await fleetSet(url, { channel });
  t.is(published?.record.version, 2);
  t.true(published !== null && published.remainingMs !== null && published.remainingMs <= 60_000);

  await renewFleet(url, { channel, ttlMs: 300 });
  await until(() => (fleet.status().leaseRemainingMs ?? Infinity) <= 300, 'the renewal reached the member');
  await until(() => fleetPolicies().length === 0, 'the lease ran out');
  t.deepEqual(fleetPolicies(), [], 'no fleet layer, not the unleased set before');
  await t.throwsAsync(renewFleet(url, { channel, ttlMs: 1000 }), { instanceOf: FleetError, message: /no fleet set to renew/ });
  await publishFleet(url, SET, { channel });
  await t.throwsAsync(renewFleet(url, { channel, ttlMs: 1000 }), { instanceOf: FleetError, message: /has no lease to renew/ });
});

test("a set refused against the member's other layers is tried again once they change", async (t) => {
  const channel = uniqueChannel('retry');
  const { engine, fleet, fleetPolicies } = member(channel);
  const local = (name: string) => parseConfig(SET.replace('fleet-errors', name).replace('/fleet/*', '/local/*'));
  engine.applyLayer('file', local('local'));
  await fleet.ready;
  await publishFleet(url, SET.replace('fleet-errors', 'local'), { channel });
  await until(() => rejections(fleet) === 1, "the set is refused: its policy name is the file layer's");
  t.regex(fleet.status().lastError ?? '', /policy "local" of layer "fleet" is already defined in layer "file"/);

  // The file layer no longer defines `local` (a watched file changed): the same set fits now.
  engine.applyLayer('file', local('renamed'));
  await until(() => fleetPolicies().includes('local'), 'the refused set is applied');
  t.like(fleet.status(), { version: 1, rejectedVersion: null, lastError: null, rejections: 1 });
});

test('bad arguments are refused with precise errors', async (t) => {
  const channel = uniqueChannel('bad');
  await t.throwsAsync(publishFleet(url, SET, { channel, ttlMs: 0 }), {
    instanceOf: FleetError,
    message: /ttlMs must be a whole number of ms from 1 to 86400000/,
  });
  await t.throwsAsync(publishFleet(url, 'version: 1\npolicies: 7\n', { channel, source: 'chaos.yaml' }), {
    name: 'ConfigError',
    message: /^chaos\.yaml:2:11 policies/,
  });
  await t.throwsAsync(publishFleet('http://localhost', SET, { channel }), { instanceOf: FleetError, message: /not a Redis URL/ });
  await t.throwsAsync(publishFleet(url, SET, { channel: '' }), { instanceOf: FleetError, message: 'channel must be a non-empty string' });
  await t.throwsAsync(publishFleet(url, SET, { channel: 'a\nb' }), {
    instanceOf: FleetError,
    message: 'channel must not contain a line break (got "a\\nb")',
  });
  const engine = new Engine({ name: `fleet-control-bad-${process.pid}` });
  t.throws(() => joinFleet(engine, { redis: url, channel, ackTtlMs: 100, ackIntervalMs: 100 }), {
    instanceOf: FleetError,
    message: 'ackIntervalMs (100) must be less than ackTtlMs (100)',
  });
  t.throws(() => joinFleet(engine, { redis: {} as Redis, channel }), {
    instanceOf: FleetError,
    message: /redis must be an ioredis client/,
  });
  t.deepEqual(await fleetMembers(url, { channel }), []);
  t.is(await fleetSet(url, { channel }), null);

  // A set of a higher version already there (another publisher won the race): nothing is overwritten.
  const redis = witness();
  const newer = JSON.stringify({ version: 100, id: '00000000000000cc', config: null, format: 'json' });
  await redis.set(`${channel}:set`, newer);
  await t.throwsAsync(publishFleet(url, SET, { channel }), {
    instanceOf: FleetError,
    message: `a newer fleet set than version 1 was published meanwhile on ${channel}`,
  });
  t.is(await redis.get(`${channel}:set`), newer);

  // A key that holds no fleet record: the decoding error as it is, not "fleet command failed".
  await redis.set(`${channel}:set`, 'garbage');
  const malformed = {
    instanceOf: FleetRejectionError,
    message: new RegExp(`^the value of ${channel}:set is not a havoc fleet record: not JSON`),
  };
  await t.throwsAsync(renewFleet(url, { channel, ttlMs: 1000 }), malformed);
  await t.throwsAsync(fleetSet(url, { channel }), malformed);
});

test('a Config object is published as JSON and applied as the same policies', async (t) => {
  const channel = uniqueChannel('object');
  const { fleet, engine } = member(channel);
  await fleet.ready;
  const config = parseConfig(SET.replace('error_chance: 1', 'latency_chance: 1\n    latency_duration: 25ms'));
  await publishFleet(url, config, { channel });
  await until(() => fleet.status().version === 1, 'the set is in force');
  t.deepEqual(engine.state().layers.find((l) => l.name === FLEET_LAYER)?.config.policies, config.policies);
  t.is(engine.decide('http', '/fleet/x')?.latencyMs, 25);
  t.is((await fleetSet(url, { channel }))?.record.format, 'json');
});

test("a client's keyPrefix is not used for fleet keys: members and publishers with and without one share a fleet", async (t) => {
  const channel = uniqueChannel('prefix');
  const prefixed = new Redis(url, { keyPrefix: 'app:' });
  cleanup.push(() => void prefixed.disconnect());
  const { fleet, fleetPolicies } = member(channel, { redis: prefixed });
  const plain = member(channel);
  await Promise.all([fleet.ready, plain.fleet.ready]);

  // Published from a URL, as `havoc fleet apply --redis` does.
  await publishFleet(url, SET, { channel });
  await until(() => fleetPolicies().includes('fleet-errors'), 'the prefixed member applies the set');
  // Published through the prefixed client.
  await publishFleet(prefixed, OTHER, { channel });
  await until(() => plain.fleetPolicies().includes('other-errors'), 'the plain member applies it');
  await until(() => fleetPolicies().includes('other-errors'), 'and so does the prefixed one');
  t.is(fleet.status().version, 2);
  t.is(fleet.status().lastError, null);
  t.is((await fleetSet(prefixed, { channel }))?.record.version, 2);
  await until(async () => (await fleetMembers(prefixed, { channel })).length === 2, 'both acks are listed through the prefixed client');
  t.is(await witness().exists(`app:${channel}:set`), 0, 'nothing written under the prefix');
});

test('a member follows the key even over a fleet layer it did not write: no key, no fleet layer', async (t) => {
  const channel = uniqueChannel('stale-layer');
  const engine = new Engine({ name: `fleet-control-stale-${process.pid}` });
  engine.applyLayer(FLEET_LAYER, parseConfig(SET));
  const fleet = joinFleet(engine, { redis: url, channel });
  cleanup.push(() => fleet.close());
  await fleet.ready;
  t.false(engine.state().layers.some((l) => l.name === FLEET_LAYER));
});

test('ready waits for a read that succeeds: a failed first read does not settle it', async (t) => {
  const channel = uniqueChannel('ready');
  const redis = witness();
  // GET fails on a hash (WRONGTYPE): the member reports it and keeps its state.
  await redis.hset(`${channel}:set`, 'not', 'a string');
  const errors: Error[] = [];
  const engine = new Engine({ name: `fleet-control-ready-${process.pid}` });
  const fleet = joinFleet(engine, { redis: url, channel, onError: (e) => errors.push(e) });
  cleanup.push(() => fleet.close());
  let settled = false;
  void fleet.ready.then(() => (settled = true));
  await until(() => errors.length > 0, 'the failed read is reported');
  t.regex(errors[0]!.message, /WRONGTYPE/);
  t.false(settled, 'not ready after a failed read');

  await redis.del(`${channel}:set`);
  await publishFleet(url, SET, { channel });
  await fleet.ready;
  t.is(fleet.status().version, 1, 'ready once the set was read and applied');
});

test('a member that cannot reach Redis keeps trying; closing it rejects ready and returns at once', async (t) => {
  const engine = new Engine({ name: `fleet-control-unreachable-${process.pid}` });
  const errors: Error[] = [];
  const fleet = joinFleet(engine, { redis: 'redis://127.0.0.1:1', channel: uniqueChannel('unreachable'), onError: (e) => errors.push(e) });
  await until(() => errors.length > 0, 'the connection error is reported');
  t.regex(errors[0]!.message, /ECONNREFUSED/);
  t.false(fleet.status().connected);
  await fleet.close();
  await t.throwsAsync(fleet.ready, { instanceOf: FleetError, message: /left the fleet on .* before it was ready/ });
});
