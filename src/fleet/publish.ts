// The publisher's side: publish a set (or none), renew its lease, read the set and the acks.
// A publish takes a version from `<channel>:version` (INCR), then one script writes the set
// unless a newer one is already there and announces the version; the script touches only
// `<channel>:set`, so it runs on a Cluster too.
import { parseConfig, validateConfig } from '../config.js';
import { ConfigError, FleetError, FleetRejectionError } from '../errors.js';
import native = require('../native.js');
import type { Config } from '../types.js';
import { commandConnection, type FleetConnection, type FleetRedis } from './connections.js';
import {
  decodeAck,
  decodeRecord,
  fleetKeys,
  newRecordId,
  sign,
  signatureMatches,
  type FleetAck,
  type FleetKeys,
  type FleetRecord,
} from './record.js';

/** Options of {@link publishFleet}. */
export interface PublishFleetOptions {
  /** Default `'havoc:fleet'`. */
  channel?: string;
  /** Lease: every member drops the set unless {@link renewFleet} is called within this many ms. */
  ttlMs?: number;
  /** Signs the set (HMAC-SHA256); members given the same secret refuse anything else. */
  secret?: string;
  /** How configuration text is parsed: `'yaml'` (default; JSON is YAML too) or `'json'`. */
  format?: 'yaml' | 'json';
  /** A label for the configuration in error messages (e.g. its file name). */
  source?: string;
}

/** Options of {@link renewFleet}. */
export interface RenewFleetOptions {
  channel?: string;
  /** The new lease from now. */
  ttlMs: number;
  secret?: string;
}

// Writes ARGV[1] under KEYS[1] (PX ARGV[3] when given) unless a set with a higher version is
// there, and publishes the version ARGV[2] on ARGV[4]. 1: written; 0: a newer set won.
const PUBLISH_SCRIPT = `
local current = redis.call('GET', KEYS[1])
if current then
  local ok, decoded = pcall(cjson.decode, current)
  if ok and type(decoded) == 'table' and type(decoded.version) == 'number' and decoded.version > tonumber(ARGV[2]) then
    return 0
  end
end
if ARGV[3] == '' then redis.call('SET', KEYS[1], ARGV[1]) else redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3]) end
redis.call('PUBLISH', ARGV[4], ARGV[2])
return 1`;

// Replaces KEYS[1] by ARGV[2] (PX ARGV[3]) only if it still holds ARGV[1]; publishes ARGV[5] on ARGV[4].
const RENEW_SCRIPT = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
redis.call('PUBLISH', ARGV[4], ARGV[5])
return 1`;

function checkTtl(ttlMs: number | undefined): void {
  if (ttlMs !== undefined && !(Number.isSafeInteger(ttlMs) && ttlMs >= 1 && ttlMs <= native.MAX_LEASE_MS))
    throw new FleetError(`ttlMs must be a whole number of ms from 1 to ${native.MAX_LEASE_MS} (24h) (got ${String(ttlMs)})`);
}

function checkSecret(secret: string | undefined): void {
  if (secret !== undefined && (typeof secret !== 'string' || secret === '')) throw new FleetError('secret must be a non-empty string');
}

/** The configuration as stored: text kept as written (so members' errors point at its lines), an object as JSON. */
function configText(config: Config | string | null, options: PublishFleetOptions): Pick<FleetRecord, 'config' | 'format'> {
  if (config === null) return { config: null, format: 'json' };
  if (typeof config === 'string') {
    const format = options.format ?? 'yaml';
    parseConfig(config, { format, source: options.source });
    return { config: config.replace(/^\uFEFF/, ''), format };
  }
  validateConfig(config, options.source);
  return { config: JSON.stringify(config), format: 'json' };
}

/** Where a command went, for errors: the URL without its password, or the client's. */
function describe(redis: FleetRedis): string {
  if (typeof redis !== 'string') return 'through the given client';
  try {
    const parsed = new URL(redis);
    if (parsed.password !== '') parsed.password = '***';
    return `at ${parsed.toString()}`;
  } catch {
    return `at ${redis}`;
  }
}

/**
 * The `issuedAt` of a new signed record: now, or just after the record in the key when that one
 * is signed with the same secret and this clock is behind its publisher's, so that members,
 * which refuse a signed record older than the newest they applied, take the new one.
 */
async function issueTime(connection: FleetConnection, keys: FleetKeys, secret: string | undefined): Promise<number> {
  const now = Date.now();
  if (secret === undefined) return now;
  const raw = await connection.get(keys.set);
  if (raw === null) return now;
  let current: FleetRecord;
  try {
    current = decodeRecord(keys.set, raw);
  } catch {
    return now;
  }
  if (current.issuedAt === undefined || !signatureMatches(keys.channel, current, secret)) return now;
  return Math.max(now, current.issuedAt + 1);
}

async function withConnection<T>(redis: FleetRedis, work: (connection: FleetConnection) => Promise<T>): Promise<T> {
  const { connection, connectError, release } = commandConnection(redis);
  try {
    return await work(connection);
  } catch (error) {
    // Already precise (bad input, nothing to renew, a key that holds no fleet record): as they are.
    if (error instanceof FleetError || error instanceof FleetRejectionError || error instanceof ConfigError) throw error;
    const unreachable = connectError();
    if (unreachable !== undefined) throw new FleetError(`cannot reach Redis ${describe(redis)}: ${unreachable.message}`, { cause: error });
    throw new FleetError(`fleet command failed on Redis ${describe(redis)}: ${(error as Error).message}`, { cause: error });
  } finally {
    await release();
  }
}

/**
 * Publishes `config` (a `Config`, or YAML/JSON text) to every member of the fleet; `null`
 * clears the fleet layer everywhere. The configuration is validated here first (a
 * `ConfigError`, nothing published); members validate it again against their own layers.
 */
export async function publishFleet(
  redis: FleetRedis,
  config: Config | string | null,
  options: PublishFleetOptions = {},
): Promise<{ version: number }> {
  const keys = fleetKeys(options.channel);
  checkTtl(options.ttlMs);
  checkSecret(options.secret);
  const content = configText(config, options);
  return withConnection(redis, async (connection) => {
    const issuedAt = await issueTime(connection, keys, options.secret);
    const version = await connection.incr(keys.version);
    const record: FleetRecord = { version, id: newRecordId(), ...content };
    if (options.ttlMs !== undefined) {
      record.ttlMs = options.ttlMs;
      record.expiresAt = Date.now() + options.ttlMs;
    }
    record.issuedAt = issuedAt;
    if (options.secret !== undefined) record.sig = sign(keys.channel, record, options.secret);
    const px = options.ttlMs === undefined ? '' : String(options.ttlMs);
    const written = await connection.eval(PUBLISH_SCRIPT, 1, keys.set, JSON.stringify(record), String(version), px, keys.channel);
    if (written !== 1) throw new FleetError(`a newer fleet set than version ${version} was published meanwhile on ${keys.channel}`);
    return { version };
  });
}

/** Extends the lease of the set in force by `ttlMs` from now, on every member. */
export async function renewFleet(redis: FleetRedis, options: RenewFleetOptions): Promise<{ version: number }> {
  const keys = fleetKeys(options.channel);
  checkTtl(options.ttlMs);
  if (options.ttlMs === undefined) throw new FleetError('renewFleet needs ttlMs');
  checkSecret(options.secret);
  return withConnection(redis, async (connection) => {
    const raw = await connection.get(keys.set);
    if (raw === null) throw new FleetError(`no fleet set to renew on ${keys.channel} (its lease ran out, or none was published)`);
    const record = decodeRecord(keys.set, raw);
    if (record.ttlMs === undefined) throw new FleetError(`fleet set version ${record.version} on ${keys.channel} has no lease to renew`);
    // Renewing re-signs the record: never sign one this secret did not (someone wrote the key).
    if (options.secret !== undefined && !signatureMatches(keys.channel, record, options.secret))
      throw new FleetError(
        `fleet set version ${record.version} on ${keys.channel} is not signed with this secret: refusing to renew (and so sign) it`,
      );
    const now = Date.now();
    // A renewal is newer than the record it renews, whatever the clocks say.
    const issuedAt = Math.max(now, (record.issuedAt ?? 0) + 1);
    const renewed: FleetRecord = { ...record, ttlMs: options.ttlMs, expiresAt: now + options.ttlMs, issuedAt };
    delete renewed.sig;
    if (options.secret !== undefined) renewed.sig = sign(keys.channel, renewed, options.secret);
    const args = [raw, JSON.stringify(renewed), String(options.ttlMs), keys.channel, String(record.version)];
    const written = await connection.eval(RENEW_SCRIPT, 1, keys.set, ...args);
    if (written !== 1) throw new FleetError(`the fleet set on ${keys.channel} changed while renewing version ${record.version}`);
    return { version: record.version };
  });
}

/** The set published on a channel: its record and the ms its lease has left (`null`: no lease), or `null` for none. */
export async function fleetSet(
  redis: FleetRedis,
  options: { channel?: string } = {},
): Promise<{ record: FleetRecord; remainingMs: number | null } | null> {
  const keys = fleetKeys(options.channel);
  return withConnection(redis, async (connection) => {
    const [raw, pttl] = await Promise.all([connection.get(keys.set), connection.pttl(keys.set)]);
    if (raw === null) return null;
    return { record: decodeRecord(keys.set, raw), remainingMs: pttl >= 0 ? pttl : null };
  });
}

/** The acks of the members of a channel whose ack has not expired, by member name. */
export async function fleetMembers(redis: FleetRedis, options: { channel?: string } = {}): Promise<FleetAck[]> {
  const keys = fleetKeys(options.channel);
  return withConnection(redis, async (connection) => {
    const names = await connection.zrange(keys.members, '0', '-1');
    const values = await Promise.all(names.map((name) => connection.get(keys.member(name))));
    const acks: FleetAck[] = [];
    const gone: string[] = [];
    names.forEach((name, i) => {
      const ack = values[i] === null || values[i] === undefined ? null : decodeAck(values[i]);
      if (ack === null) gone.push(name);
      else acks.push(ack);
    });
    // Members whose ack expired left the fleet (or died): drop them from the index.
    if (gone.length > 0) await connection.zrem(keys.members, ...gone);
    return acks.sort((a, b) => a.member.localeCompare(b.member));
  });
}
