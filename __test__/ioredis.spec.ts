import { Redis, ReplyError } from 'ioredis';
import { DEFAULT_REDIS_ERROR, instrumentIoredis, type Engine } from 'havoc';
import { chaosEngine, faults } from './fixtures/chaos.js';
import { URLS, serverTest } from './fixtures/servers.js';

const test = serverTest('redis');
const prefix = `havoc-spec-${process.pid}`;

function client(engine: Engine): Redis {
  return instrumentIoredis(new Redis(URLS.redis, { lazyConnect: false }), engine);
}

/** A second, uninstrumented connection: sees what really reached the server. */
function witness(): Redis {
  return new Redis(URLS.redis);
}

test('no matching policy: commands pass untouched', async (t) => {
  const engine = chaosEngine([{ name: 'other', type: 'redis', target: 'hgetall', error_chance: 1 }]);
  const redis = client(engine);
  await redis.set(`${prefix}:a`, '1');
  t.is(await redis.get(`${prefix}:a`), '1');
  t.is(await faults(engine, 'error'), 0);
  redis.disconnect();
});

test('error: a ReplyError per command (error_body is the reply), the command never reaches the server', async (t) => {
  const engine = chaosEngine([
    {
      name: 'readonly',
      type: 'redis',
      target: 'set',
      error_chance: 1,
      error_body: "READONLY You can't write against a read only replica.",
    },
    { name: 'loading', type: 'redis', target: 'incr', error_chance: 1 },
  ]);
  const redis = client(engine);
  const key = `${prefix}:err`;
  await redis.del(key);
  const readonly = await t.throwsAsync(redis.set(key, 'x'), { instanceOf: ReplyError });
  t.is(readonly.message, "READONLY You can't write against a read only replica.");
  const viaCallback = await new Promise<Error | null | undefined>((resolve) => void redis.incr(key, (error) => resolve(error)));
  t.is(viaCallback?.message, DEFAULT_REDIS_ERROR);
  const w = witness();
  t.is(await w.exists(key), 0, 'nothing was written');
  t.is(await faults(engine, 'error'), 2);
  w.disconnect();
  redis.disconnect();
});

test('latency: served before the command, and commands issued meanwhile keep their order', async (t) => {
  const engine = chaosEngine([{ name: 'slow', type: 'redis', target: 'set', latency_chance: 1, latency_duration: '30ms' }]);
  const redis = client(engine);
  const key = `${prefix}:order`;
  const [, value] = await Promise.all([redis.set(key, 'written'), redis.get(key)]);
  t.is(value, 'written', 'the GET issued after the delayed SET was sent after it');
  t.is(await faults(engine, 'latency', 'slow'), 1);
  redis.disconnect();
});

test('protections: PING, INFO and CONFIG are never faulted', async (t) => {
  const engine = chaosEngine([{ name: 'everything', type: 'redis', target: 'all', error_chance: 1 }]);
  const redis = client(engine);
  t.is(await redis.ping(), 'PONG');
  t.regex(await redis.info('server'), /redis_version/);
  t.true(Array.isArray(await redis.config('GET', 'maxmemory')));
  await t.throwsAsync(redis.get(`${prefix}:x`), { instanceOf: ReplyError });
  redis.disconnect();
});

test('pipeline: decided once, aborted as a unit before anything is sent', async (t) => {
  const engine = chaosEngine([{ name: 'sets', type: 'redis', target: 'set', error_chance: 1 }]);
  const redis = client(engine);
  const w = witness();
  const keys = [1, 2, 3].map((i) => `${prefix}:pipe:${i}`);
  await w.del(...keys);
  const results = await redis.pipeline().set(keys[0]!, 'a').set(keys[1]!, 'b').incr(keys[2]!).exec();
  t.is(results?.length, 3);
  for (const [error] of results ?? []) t.true(error instanceof ReplyError, 'every command in it gets the error');
  t.is(await w.exists(...keys), 0, 'nothing was sent');
  t.is(await faults(engine, 'error'), 1, 'one decision for the unit');
  // A pipeline led by a command no policy matches goes through whole.
  const ok = await redis.pipeline().get(keys[0]!).set(keys[1]!, 'b').exec();
  t.deepEqual(ok, [
    [null, null],
    [null, 'OK'],
  ]);
  w.disconnect();
  redis.disconnect();
});

test('MULTI: decided once by its first command, every command aborted, nothing sent', async (t) => {
  const engine = chaosEngine([{ name: 'incr', type: 'redis', target: 'incr', error_chance: 1, latency_chance: 1, latency_duration: 5 }]);
  const redis = client(engine);
  const w = witness();
  const key = `${prefix}:multi`;
  await w.del(key);
  await t.throwsAsync(redis.multi().incr(key).incr(key).exec(), { instanceOf: ReplyError });
  t.is(await w.exists(key), 0);
  t.is(await faults(engine, 'error'), 1);
  t.is(await faults(engine, 'latency'), 1, 'the unit served its latency once');
  // Latency only: the transaction runs whole after the delay.
  engine.update({ ...engine.config(), policies: engine.policies().map((p) => ({ ...p, errorChance: 0 })) });
  t.deepEqual(await redis.multi().incr(key).incr(key).exec(), [
    [null, 1],
    [null, 2],
  ]);
  w.disconnect();
  redis.disconnect();
});

test('drop: the connection is destroyed, ioredis reconnects and resends the command', async (t) => {
  const engine = chaosEngine([{ name: 'cut', type: 'redis', target: 'set', drop_connection: true }]);
  const redis = client(engine);
  await redis.ping();
  let reconnects = 0;
  redis.on('reconnecting', () => (reconnects += 1));
  const key = `${prefix}:drop`;
  t.is(await redis.set(key, 'after-reconnect'), 'OK');
  t.true(reconnects >= 1, 'ioredis saw the connection die and reconnected');
  const w = witness();
  t.is(await w.get(key), 'after-reconnect');
  w.disconnect();
  t.is(await faults(engine, 'drop', 'cut'), 1);
  redis.disconnect();
});
