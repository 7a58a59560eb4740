// What a fleet keeps in Redis, and how a record is signed and checked. Every key is named
// after the channel: `<channel>:set` holds the last published set (expiring with its lease),
// `<channel>:version` the counter versions come from, `<channel>:members:<member>` each
// member's ack and `<channel>:members` the index of members (a sorted set by last seen).
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

import { FleetError, FleetRejectionError } from '../errors.js';

/** The channel fleets use when none is given. */
export const DEFAULT_CHANNEL = 'havoc:fleet';

/** The keys of one fleet channel. */
export interface FleetKeys {
  channel: string;
  set: string;
  version: string;
  members: string;
  member(name: string): string;
}

export function fleetKeys(channel: string = DEFAULT_CHANNEL): FleetKeys {
  if (typeof channel !== 'string' || channel === '') throw new FleetError('channel must be a non-empty string');
  // The channel is a line of the signed text: a line break in it would blur where fields end.
  if (/[\r\n]/.test(channel)) throw new FleetError(`channel must not contain a line break (got ${JSON.stringify(channel)})`);
  return {
    channel,
    set: `${channel}:set`,
    version: `${channel}:version`,
    members: `${channel}:members`,
    member: (name) => `${channel}:members:${name}`,
  };
}

/** The value of `<channel>:set`: one published set. */
export interface FleetRecord {
  version: number;
  /** Random per publish: a Redis restarted without persistence counts versions from 1 again. */
  id: string;
  /** The configuration text (YAML or JSON), `null` for "no fleet set". */
  config: string | null;
  format: 'yaml' | 'json';
  /** The lease, when the set was published with one. */
  ttlMs?: number;
  /** When the lease runs out by the publisher's clock (ms since the epoch; members use the key's PTTL). */
  expiresAt?: number;
  /**
   * When this record was written (published or renewed), by the publisher's clock (ms since the
   * epoch), raised above the signed record it replaces. Signed: members with a secret refuse a
   * record older than the newest they applied (a replay). Always written; optional when read.
   */
  issuedAt?: number;
  /** HMAC-SHA256 (hex) of {@link canonical}, when published with a secret. */
  sig?: string;
}

/** What {@link newRecordId} makes; anything else is refused, so that the id is one line of the signed text. */
const RECORD_ID = /^[0-9a-f]{16}$/;

export function newRecordId(): string {
  return randomBytes(8).toString('hex');
}

/**
 * What a signature covers: every field but the signature, the channel included (no replay on
 * another channel), one per line. No field but the last (the text) can hold a line break: the
 * id is checked by {@link decodeRecord}, the channel by {@link fleetKeys}, the rest are numbers
 * or a format name.
 */
export function canonical(channel: string, record: FleetRecord): string {
  return [
    'havoc-fleet/2',
    channel,
    String(record.version),
    record.id,
    record.format,
    record.ttlMs === undefined ? '' : String(record.ttlMs),
    record.expiresAt === undefined ? '' : String(record.expiresAt),
    record.issuedAt === undefined ? '' : String(record.issuedAt),
    record.config === null ? 'null' : `text:${record.config}`,
  ].join('\n');
}

export function sign(channel: string, record: FleetRecord, secret: string): string {
  return createHmac('sha256', secret).update(canonical(channel, record)).digest('hex');
}

/** Whether `record.sig` is the signature of `record` under `secret` (compared in constant time). */
export function signatureMatches(channel: string, record: FleetRecord, secret: string): boolean {
  if (typeof record.sig !== 'string' || !/^[0-9a-f]{64}$/.test(record.sig)) return false;
  return timingSafeEqual(Buffer.from(record.sig, 'hex'), Buffer.from(sign(channel, record, secret), 'hex'));
}

const isCount = (value: unknown): value is number => typeof value === 'number' && Number.isSafeInteger(value) && value >= 1;

/** Parses the value of `<channel>:set`; a value that is not a fleet record is a `malformed` rejection saying why. */
export function decodeRecord(key: string, raw: string): FleetRecord {
  const malformed = (why: string, version?: number): FleetRejectionError =>
    new FleetRejectionError('malformed', `the value of ${key} is not a havoc fleet record: ${why}`, version);
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch (error) {
    throw malformed(`not JSON (${(error as Error).message})`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw malformed('not a JSON object');
  const record = value as Record<string, unknown>;
  if (!isCount(record.version)) throw malformed(`version must be a positive integer (got ${JSON.stringify(record.version)})`);
  const version = record.version;
  if (typeof record.id !== 'string' || !RECORD_ID.test(record.id))
    throw malformed(`id must be 16 lowercase hex digits (got ${JSON.stringify(record.id)})`, version);
  if (record.config !== null && typeof record.config !== 'string')
    throw malformed('config must be the configuration text or null', version);
  if (record.format !== 'yaml' && record.format !== 'json') throw malformed('format must be "yaml" or "json"', version);
  if (record.ttlMs !== undefined && !isCount(record.ttlMs)) throw malformed('ttlMs must be a positive integer', version);
  if (record.expiresAt !== undefined && !isCount(record.expiresAt)) throw malformed('expiresAt must be a positive integer', version);
  if (record.issuedAt !== undefined && !isCount(record.issuedAt)) throw malformed('issuedAt must be a positive integer', version);
  if (record.sig !== undefined && typeof record.sig !== 'string') throw malformed('sig must be a string', version);
  return {
    version,
    id: record.id,
    config: record.config,
    format: record.format,
    ...(record.ttlMs === undefined ? {} : { ttlMs: record.ttlMs }),
    ...(record.expiresAt === undefined ? {} : { expiresAt: record.expiresAt }),
    ...(record.issuedAt === undefined ? {} : { issuedAt: record.issuedAt }),
    ...(record.sig === undefined ? {} : { sig: record.sig }),
  };
}

/** A member's ack, the value of `<channel>:members:<member>`. */
export interface FleetAck {
  member: string;
  /** The version of the set in force from the fleet, 0 before any. */
  version: number;
  /** The version last refused, with `error`; `null` when the last set seen was applied, or what was refused named no version. */
  rejectedVersion: number | null;
  /**
   * Why the last set or message seen was refused (a `ConfigError`'s text, a signature problem, a
   * malformed message or record), else `null`: the member's `status().lastError`.
   */
  error: string | null;
  host: string;
  pid: number;
  /** When the member last wrote its ack (ms since the epoch). */
  lastSeen: number;
}

/** An ack read back; `null` when it is not one (written by something else). */
export function decodeAck(raw: string): FleetAck | null {
  try {
    const value = JSON.parse(raw) as Partial<FleetAck>;
    if (typeof value.member !== 'string' || typeof value.version !== 'number' || typeof value.lastSeen !== 'number') return null;
    return {
      member: value.member,
      version: value.version,
      rejectedVersion: typeof value.rejectedVersion === 'number' ? value.rejectedVersion : null,
      error: typeof value.error === 'string' ? value.error : null,
      host: typeof value.host === 'string' ? value.host : '',
      pid: typeof value.pid === 'number' ? value.pid : 0,
      lastSeen: value.lastSeen,
    };
  } catch {
    return null;
  }
}
