// Fleet control through a Redis Cluster and through Sentinel, each started by this suite on
// free loopback ports: members join with an ioredis `Cluster` client or a Sentinel-configured
// `Redis` client (havoc duplicates it for its own connections), a publish through the same
// kind of client reaches every member, acks are listed, and on the Cluster (the channel's keys
// on different nodes) a late joiner gets the set and a lease runs out.
import test from 'ava';
import { Cluster, Redis } from 'ioredis';
import { Engine, FLEET_LAYER, fleetMembers, joinFleet, publishFleet, renewFleet, type FleetMember } from 'havoc';
import { uniqueChannel, until } from './fixtures/fleet.js';
import { redisInstalled, startRedisCluster, startSentinel, stopAll } from './fixtures/redis-topologies.js';

const SET = 'version: 1\npolicies:\n  - name: fleet-errors\n    type: http\n    target: /fleet/*\n    error_chance: 1\n';
const OTHER = SET.replace('fleet-errors', 'other-errors');

const installed = redisInstalled();
const serial = installed || process.env.CI ? test.serial : test.skip;
if (!installed) console.warn('\n*** SKIPPING fleet topology tests: redis-server or redis-cli is not installed ***\n');

const cleanup: (() => Promise<void> | void)[] = [];
test.after.always(async () => {
  for (const step of cleanup.reverse()) await Promise.resolve(step()).catch(() => {});
  await stopAll();
});

let engines = 0;
function member(redis: Redis | Cluster, channel: string): { fleet: FleetMember; fleetPolicies(): string[] } {
  const engine = new Engine({ name: `fleet-topologies-${process.pid}-${++engines}` });
  const fleet = joinFleet(engine, { redis, channel, member: `m${engines}`, ackIntervalMs: 200 });
  cleanup.push(() => fleet.close());
  return {
    fleet,
    fleetPolicies: () =>
      engine
        .state()
        .layers.find((l) => l.name === FLEET_LAYER)
        ?.config.policies.map((p) => p.name) ?? [],
  };
}

/** The ports of the masters serving `keys`. */
async function nodesOf(cluster: Cluster, keys: string[]): Promise<Set<number>> {
  const ranges = await cluster.cluster('SLOTS');
  const ports = new Set<number>();
  for (const key of keys) {
    const slot = await cluster.cluster('KEYSLOT', key);
    const range = ranges.find(([from, to]) => slot >= from && slot <= to);
    if (range === undefined) throw new Error(`no node serves slot ${slot}`);
    ports.add(range[2]![1]);
  }
  return ports;
}

serial('through a Redis Cluster: a publish reaches every member, acks are listed, a lease runs out', async (t) => {
  const ports = await startRedisCluster();
  const cluster = (): Cluster => {
    const client = new Cluster([{ host: '127.0.0.1', port: ports[0]! }]);
    cleanup.push(() => void client.disconnect());
    return client;
  };
  const publisher = cluster();
  // A channel whose keys are not all on one node, so that nothing may rely on them being together.
  let channel = uniqueChannel('cluster');
  while ((await nodesOf(publisher, [`${channel}:set`, `${channel}:version`, `${channel}:members`])).size < 2)
    channel = uniqueChannel('cluster');
  const members = [member(cluster(), channel), member(cluster(), channel)];
  await Promise.all(members.map((m) => m.fleet.ready));
  t.true(members.every((m) => m.fleet.status().connected));

  t.is((await publishFleet(publisher, SET, { channel })).version, 1);
  await until(() => members.every((m) => m.fleetPolicies().includes('fleet-errors')), 'the set is in force on both members');

  await until(async () => {
    const acks = await fleetMembers(publisher, { channel });
    return acks.length === 2 && acks.every((a) => a.version === 1);
  }, 'both acks say version 1');
  const acks = await fleetMembers(publisher, { channel });
  t.deepEqual(
    acks.map((a) => [a.member, a.version, a.error]),
    members.map((m) => [m.fleet.status().member, 1, null]),
  );

  // A member that joins later reads the key, wherever its slot lives.
  const late = member(cluster(), channel);
  await late.fleet.ready;
  t.deepEqual(late.fleetPolicies(), ['fleet-errors']);
  members.push(late);

  await publishFleet(publisher, OTHER, { channel, ttlMs: 600_000 });
  await until(() => members.every((m) => m.fleetPolicies().includes('other-errors')), 'the leased set is in force');
  // Renewed (a script on the Cluster too) to a short lease, then left to run out.
  await renewFleet(publisher, { channel, ttlMs: 300 });
  await until(() => members.every((m) => m.fleetPolicies().length === 0), 'the lease ran out on every member');
  for (const { fleet } of members) t.is(fleet.status().version, 0, 'no fleet set in force');

  await publishFleet(publisher, SET, { channel });
  await until(() => members.every((m) => m.fleetPolicies().includes('fleet-errors')), 'a set after the lease is in force');
  await publishFleet(publisher, null, { channel });
  await until(() => members.every((m) => m.fleetPolicies().length === 0), 'the clear is in force');
});

serial('through Sentinel: members and the publisher find the master by name', async (t) => {
  const { sentinel } = await startSentinel('mymaster');
  const client = (): Redis => {
    const redis = new Redis({ sentinels: [{ host: '127.0.0.1', port: sentinel }], name: 'mymaster' });
    cleanup.push(() => void redis.disconnect());
    return redis;
  };
  const channel = uniqueChannel('sentinel');
  const members = [member(client(), channel), member(client(), channel)];
  await Promise.all(members.map((m) => m.fleet.ready));

  const publisher = client();
  t.is((await publishFleet(publisher, SET, { channel })).version, 1);
  await until(() => members.every((m) => m.fleetPolicies().includes('fleet-errors')), 'the set is in force on both members');
  await until(async () => {
    const acks = await fleetMembers(publisher, { channel });
    return acks.length === 2 && acks.every((a) => a.version === 1);
  }, 'both acks say version 1');
  await publishFleet(publisher, null, { channel });
  await until(() => members.every((m) => m.fleetPolicies().length === 0), 'the clear is in force');
  t.true(members.every((m) => m.fleet.status().connected && m.fleet.status().version === 2));
});
