// havoc's own Redis connections for fleet control. The application's client may be
// instrumented (a `redis` policy could then cut the very halt that should end it), so it is
// never used for control traffic: a member duplicates it (same options, so a Sentinel or
// Cluster client gives a Sentinel or Cluster connection) or connects to a URL itself.
// Never with the client's `keyPrefix`: pub/sub channels are not prefixed, so a prefixed member
// would hear a publish made without the prefix (the CLI's) and read a key that is not there.
import type { Cluster, Redis, RedisOptions } from 'ioredis';

import { FleetError } from '../errors.js';
import { isIoredisInstrumented } from '../interceptors/ioredis.js';
import { optionalPeer } from '../peer.js';

/** An ioredis client (standalone, Sentinel or Cluster) or a `redis://` / `rediss://` URL. */
export type FleetRedis = Redis | Cluster | string;

/** What havoc sends through its own connections (the commands `Redis` and `Cluster` share). */
export type FleetConnection = Redis | Cluster;

/** Reconnect backoff of connections made from a URL: 100 ms doubling to 5 s, forever. */
export function fleetRetryStrategy(times: number): number {
  return Math.min(100 * 2 ** Math.min(times - 1, 6), 5000);
}

function isClient(value: unknown): value is Redis | Cluster {
  return typeof value === 'object' && value !== null && typeof (value as Redis).duplicate === 'function';
}

/** A new connection of havoc's own, from the application's client or a URL. */
export function openConnection(redis: FleetRedis, options: Partial<RedisOptions> = {}): FleetConnection {
  if (typeof redis === 'string') {
    const ioredis = optionalPeer<typeof import('ioredis')>('ioredis');
    if (ioredis === null) throw new FleetError('fleet control over a Redis URL needs the ioredis package: npm install ioredis');
    if (!/^rediss?:\/\//.test(redis)) throw new FleetError(`not a Redis URL: ${JSON.stringify(redis)} (expected redis://host:port)`);
    return new ioredis.Redis(redis, { retryStrategy: fleetRetryStrategy, ...options });
  }
  if (!isClient(redis)) throw new FleetError('redis must be an ioredis client (Redis, Sentinel or Cluster) or a redis:// URL');
  // `duplicate` builds a new client from the options alone; instrumentation lives on the instance.
  const connection = redis.isCluster
    ? (redis as Cluster).duplicate(undefined, {
        keyPrefix: '',
        redisOptions: { ...(redis as Cluster).options.redisOptions, ...options, keyPrefix: '' },
      })
    : (redis as Redis).duplicate({ ...options, keyPrefix: '' });
  if (isIoredisInstrumented(connection)) throw new FleetError('a duplicated client came out instrumented; fleet control refuses to use it');
  return connection;
}

/** Whether a client prefixes the keys it sends (fleet keys must be the same for every member and publisher). */
function hasKeyPrefix(redis: Redis | Cluster): boolean {
  const options = redis.isCluster ? (redis as Cluster).options : undefined;
  const prefix = options === undefined ? (redis as Redis).options.keyPrefix : (options.keyPrefix ?? options.redisOptions?.keyPrefix);
  return prefix !== undefined && prefix !== '';
}

/**
 * The connection a one-off command (publish, renew, status) uses, and how to let it go: the
 * application's client when it is neither instrumented nor prefixing keys, else a duplicate,
 * else a URL's own.
 */
export function commandConnection(redis: FleetRedis): {
  connection: FleetConnection;
  /** Why the connection could not be made, when it was not. */
  connectError(): Error | undefined;
  release(): Promise<void>;
} {
  if (isClient(redis) && !isIoredisInstrumented(redis) && !hasKeyPrefix(redis))
    return { connection: redis, connectError: () => undefined, release: async () => {} };
  // A one-off command fails after a few attempts rather than waiting for Redis forever.
  const connection = openConnection(redis, {
    maxRetriesPerRequest: 1,
    connectTimeout: 5000,
    retryStrategy: (times) => (times > 3 ? null : 100 * times),
  });
  // Failures reach the caller through the command's promise; the event only says why it could not connect.
  let lastError: Error | undefined;
  connection.on('error', (error: Error) => (lastError = error));
  connection.on('ready', () => (lastError = undefined));
  return {
    connection,
    connectError: () => (connection.status === 'ready' ? undefined : lastError),
    async release() {
      await connection.quit().catch(() => connection.disconnect());
    },
  };
}
