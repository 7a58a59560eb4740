import type { Redis, Cluster } from 'ioredis';
import { RateLimitStoreError } from '../errors.js';
import type { RateLimitSpec, RateLimitStore } from './rate-limiter.js';

export interface RedisStoreOptions {
  /** The Redis key of the bucket; every process using it shares one limit. */
  key: string;
  /**
   * When Redis fails or is too slow: `true` admits the call (availability first), `false`
   * rejects it with `RateLimitStoreError` (the limit first). Required: there is no safe default.
   */
  failOpen: boolean;
  /** How long to wait for Redis before treating the call as failed. Default 1000 ms. */
  timeoutMs?: number;
}

/**
 * GCRA in one atomic script, on Redis's own clock (so the processes' clocks need not agree).
 * State: the theoretical arrival time, in integer microseconds, expiring once the bucket is full again.
 * Returns 0 when admitted, otherwise the microseconds to wait, or -1 when the cost exceeds the burst.
 */
const GCRA_SCRIPT = `
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
if cost > burst then return -1 end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local new_tat = tat + cost * interval
local ahead = new_tat - now
local tolerance = burst * interval
if ahead > tolerance then return ahead - tolerance end
if cost > 0 then redis.call('SET', KEYS[1], new_tat, 'PX', math.ceil(ahead / 1000) + 1) end
return 0
`;

const COMMAND = 'havocGcraTake';

type ScriptClient = (Redis | Cluster) & {
  [COMMAND]?: (key: string, interval: number, burst: number, cost: number) => Promise<number>;
};

/**
 * A cluster-wide bucket on Redis (ioredis client, yours: havoc never connects or quits it).
 * One script call per acquire; every process with the same `key` and limit shares it.
 */
export function redisStore(client: Redis | Cluster, options: RedisStoreOptions): RateLimitStore {
  if (typeof options?.key !== 'string' || options.key === '') throw new TypeError('redisStore: key must be a non-empty string');
  if (typeof options.failOpen !== 'boolean')
    throw new TypeError('redisStore: failOpen must be set to true (admit when Redis fails) or false (reject)');
  const timeoutMs = options.timeoutMs ?? 1000;
  if (!(timeoutMs > 0)) throw new RangeError(`redisStore: timeoutMs must be > 0 (got ${String(options.timeoutMs)})`);
  const scripted = client as ScriptClient;
  if (typeof scripted[COMMAND] !== 'function') client.defineCommand(COMMAND, { numberOfKeys: 1, lua: GCRA_SCRIPT });
  const { key, failOpen } = options;
  return {
    async take(spec: RateLimitSpec, cost: number): Promise<number> {
      // Integer microseconds, rounded up like the local bucket: never more than the rate.
      const interval = Math.ceil((spec.perMs * 1000) / spec.rate);
      let timer: NodeJS.Timeout | undefined;
      try {
        const call = (scripted[COMMAND] as NonNullable<ScriptClient[typeof COMMAND]>).call(client, key, interval, spec.burst, cost);
        const timeout = new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
        });
        const waitUs = Number(await Promise.race([call, timeout]));
        return waitUs < 0 ? Infinity : waitUs / 1000;
      } catch (error) {
        if (failOpen) return 0;
        throw new RateLimitStoreError(
          `rate limit store (Redis key "${key}") failed and failOpen is false: ${(error as Error)?.message ?? String(error)}`,
          { cause: error },
        );
      } finally {
        clearTimeout(timer);
      }
    },
  };
}
