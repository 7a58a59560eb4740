// A fleet member: keeps an engine's `fleet` layer equal to the set under `<channel>:set`.
// Pub/sub only announces that there is something to read; the key is the truth, read on
// every announcement and whenever a connection becomes ready (start, reconnect, a Redis
// restarted), so a member that missed messages catches up instead of drifting. With a secret,
// signatures prove who wrote a record, and its signed `issuedAt` how new it is: a member keeps
// the newest it applied and refuses an older one (a replay written into the key), even then.
import { hostname } from 'node:os';

import { parseConfig } from '../config.js';
import { FLEET_LAYER, type Engine } from '../engine.js';
import { ConfigError, FleetError, FleetRejectionError, HavocError } from '../errors.js';
import type { Config } from '../types.js';
import { openConnection, type FleetConnection, type FleetRedis } from './connections.js';
import { decodeRecord, fleetKeys, signatureMatches, type FleetAck, type FleetRecord } from './record.js';

/** Options of {@link joinFleet}. */
export interface JoinFleetOptions {
  /** The application's ioredis client (duplicated, never used itself) or a Redis URL. */
  redis: FleetRedis;
  /** Default `'havoc:fleet'`. */
  channel?: string;
  /** Accept only sets signed with this secret (HMAC-SHA256). */
  secret?: string;
  /** This member's name in the acks; default `<hostname>:<pid>`. */
  member?: string;
  /** How long an ack outlives its member, in ms. Default 30 000. */
  ackTtlMs?: number;
  /**
   * How often the ack is refreshed (and a set refused for its configuration is tried again if the
   * member's other layers changed), in ms; less than `ackTtlMs`. Default a third of it.
   */
  ackIntervalMs?: number;
  /** Called after a set was applied (version 0 for "no fleet set"). */
  onApply?: (version: number) => void;
  /** Called when a set or a message is refused; the last good set keeps running. */
  onReject?: (error: FleetRejectionError) => void;
  /** Called when Redis cannot be reached or read; the member keeps its set and retries. */
  onError?: (error: Error) => void;
}

/** What a member knows of itself. */
export interface FleetMemberStatus {
  member: string;
  channel: string;
  /** Both of havoc's connections are up. */
  connected: boolean;
  /** The version of the set in force from the fleet; 0 before any, or after "no fleet set". */
  version: number;
  /** The version last refused, while the last set seen was refused; else `null` (also for a refused message or unreadable record). */
  rejectedVersion: number | null;
  /** Why the last set or message seen was refused (a `ConfigError`'s text, a signature problem, a malformed message), else `null`; the ack's `error`. */
  lastError: string | null;
  /** Sets and messages refused since joining. */
  rejections: number;
  /** Ms the fleet layer's lease has left; `null` when it has none or there is no fleet layer. */
  leaseRemainingMs: number | null;
}

export interface FleetMember {
  /**
   * Resolves once the member is subscribed and has read the published set and applied (or
   * refused) it. A read that fails (reported to `onError`) does not count: while Redis cannot be
   * reached it stays pending, as the member keeps trying. Rejects only when the member is closed
   * first, or its subscription fails.
   */
  ready: Promise<void>;
  status(): FleetMemberStatus;
  /** Leaves the fleet: removes this member's ack and closes havoc's connections. The fleet layer stays. */
  close(): Promise<void>;
}

const DEFAULT_ACK_TTL_MS = 30_000;
const VERSION_MESSAGE = /^[1-9]\d{0,15}$/;

/** Which published set something is: the version, and the id that tells apart two sets of one version. */
interface SetId {
  version: number;
  id: string | null;
}

function checkPositive(name: string, value: number | undefined): void {
  if (value !== undefined && !(Number.isSafeInteger(value) && value >= 1))
    throw new FleetError(`${name} must be a positive whole number of ms (got ${String(value)})`);
}

/** Joins `engine` to the fleet on `options.channel`: its `fleet` layer follows what is published there. */
export function joinFleet(engine: Engine, options: JoinFleetOptions): FleetMember {
  const keys = fleetKeys(options.channel);
  const { secret } = options;
  if (secret !== undefined && (typeof secret !== 'string' || secret === '')) throw new FleetError('secret must be a non-empty string');
  const member = options.member ?? `${hostname()}:${process.pid}`;
  if (typeof member !== 'string' || member === '') throw new FleetError('member must be a non-empty string');
  checkPositive('ackTtlMs', options.ackTtlMs);
  checkPositive('ackIntervalMs', options.ackIntervalMs);
  const ackTtlMs = options.ackTtlMs ?? DEFAULT_ACK_TTL_MS;
  const ackIntervalMs = options.ackIntervalMs ?? Math.max(1, Math.floor(ackTtlMs / 3));
  if (ackIntervalMs >= ackTtlMs) throw new FleetError(`ackIntervalMs (${ackIntervalMs}) must be less than ackTtlMs (${ackTtlMs})`);
  const metrics = engine.metrics;

  // Commands wait for a reconnect instead of failing after a few retries: reads are coalesced
  // and acks are skipped while disconnected, so nothing piles up.
  const subscriber = openConnection(options.redis, { maxRetriesPerRequest: null });
  const reader = openConnection(options.redis, { maxRetriesPerRequest: null });
  let applied: SetId = { version: 0, id: null };
  /** Whether the set in force holds a lease (and so may run out in the engine by itself). */
  let appliedLeased = false;
  let rejected: SetId | null = null;
  let lastRejectedRaw: string | null = null;
  /** The member's other layers when a set was refused for its configuration, which they may be the cause of. */
  let refusedAgainst: string | null = null;
  let lastError: string | null = null;
  let rejections = 0;
  let closed = false;
  /**
   * With a secret: the newest signed record applied or renewed here. It outlives a missing key
   * (a Redis restarted empty, a lease run out, a deleted key), so a replay cannot follow one.
   */
  let newest: { issuedAt: number; version: number; id: string } | null = null;
  const markNewest = (record: FleetRecord): void => {
    if (secret !== undefined && record.issuedAt !== undefined)
      newest = { issuedAt: record.issuedAt, version: record.version, id: record.id };
  };

  let settleReady: (() => void) | undefined;
  let failReady: ((error: Error) => void) | undefined;
  const ready = new Promise<void>((resolve, reject) => {
    settleReady = resolve;
    failReady = reject;
  });
  // Nobody has to await `ready`: a close before it settles must not be an unhandled rejection.
  ready.catch(() => {});

  const connected = (): boolean => subscriber.status === 'ready' && reader.status === 'ready';
  const showConnected = (): void => {
    metrics.fleetConnected.labels(keys.channel, member).set(connected() ? 1 : 0);
  };

  const ack = (): FleetAck => ({
    member,
    version: applied.version,
    rejectedVersion: rejected?.version ?? null,
    error: lastError,
    host: hostname(),
    pid: process.pid,
    lastSeen: Date.now(),
  });

  /** A leased set that ran out here (the engine removed the layer) is no longer in force: say so. */
  const noticeExpiredLease = (): void => {
    if (!appliedLeased || engine.state().layers.some((l) => l.name === FLEET_LAYER)) return;
    appliedLeased = false;
    applied = { version: 0, id: null };
    metrics.fleetVersionApplied.labels(keys.channel, member).set(0);
  };

  const writeAck = async (): Promise<void> => {
    if (closed || reader.status !== 'ready') return;
    noticeExpiredLease();
    const value = ack();
    await reader.set(keys.member(member), JSON.stringify(value), 'PX', ackTtlMs);
    // A close meanwhile sent its DEL and ZREM after this SET (one connection, in order): no ZADD after them.
    if (closed) return;
    await reader.zadd(keys.members, value.lastSeen, member);
  };

  const reportError = (error: unknown): void => {
    if (closed) return;
    options.onError?.(error instanceof Error ? error : new HavocError(String(error)));
  };

  // Names and configurations only: a lease's time left changes by itself.
  const otherLayers = (): string =>
    JSON.stringify(engine.state().layers.flatMap((l) => (l.name === FLEET_LAYER ? [] : [[l.name, l.config]])));

  const reject = (error: FleetRejectionError, which: SetId | null, raw: string | null): void => {
    rejections += 1;
    refusedAgainst = error.reason === 'config' && which !== null ? otherLayers() : null;
    lastError = error.message;
    if (which !== null) rejected = which;
    if (raw !== null) lastRejectedRaw = raw;
    metrics.fleetRejections.labels(keys.channel, error.reason).inc();
    options.onReject?.(error);
  };

  /** Applies a leased set so that, when its lease runs out, the fleet layer is gone (as the key is), not an older set. */
  const applyLeased = (config: Config, ttlMs: number): void => {
    const layer = engine.state().layers.find((l) => l.name === FLEET_LAYER);
    if (layer === undefined || (layer.lease !== null && layer.lease.revertsTo === null)) {
      engine.applyLayer(FLEET_LAYER, config, { ttlMs });
      return;
    }
    // Checked against the other layers first: a refusal leaves the old set as it was.
    engine.applyLayer(FLEET_LAYER, config);
    engine.removeLayer(FLEET_LAYER);
    engine.applyLayer(FLEET_LAYER, config, { ttlMs });
  };

  const leaseOf = (record: FleetRecord, pttl: number): number | undefined =>
    record.ttlMs === undefined ? undefined : pttl > 0 ? Math.min(pttl, record.ttlMs) : record.ttlMs;

  const apply = (record: FleetRecord, pttl: number): void => {
    if (record.config === null) {
      engine.removeLayer(FLEET_LAYER);
    } else {
      const source = `fleet set ${record.version}`;
      const config = parseConfig(record.config, { format: record.format, source });
      const ttlMs = leaseOf(record, pttl);
      try {
        if (ttlMs === undefined) engine.applyLayer(FLEET_LAYER, config);
        else applyLeased(config, ttlMs);
      } catch (error) {
        // Refused against this member's other layers: say which set.
        if (error instanceof ConfigError && error.source === undefined) throw new ConfigError(error.issues, source);
        throw error;
      }
    }
    applied = { version: record.version, id: record.id };
    appliedLeased = record.config !== null && record.ttlMs !== undefined;
    markNewest(record);
    rejected = null;
    lastRejectedRaw = null;
    lastError = null;
    metrics.fleetVersionApplied.labels(keys.channel, member).set(record.version);
    options.onApply?.(record.version);
  };

  /** No set published: no fleet layer (even one this member did not write, as after a restart of the service's member). */
  const clear = (): void => {
    const changed = engine.removeLayer(FLEET_LAYER) || applied.id !== null || rejected !== null;
    applied = { version: 0, id: null };
    appliedLeased = false;
    rejected = null;
    lastRejectedRaw = null;
    lastError = null;
    metrics.fleetVersionApplied.labels(keys.channel, member).set(0);
    if (changed) options.onApply?.(0);
  };

  /** The set in force again: a lease renewed, or re-applied when it ran out here first. */
  const renew = (record: FleetRecord, pttl: number): void => {
    const ttlMs = leaseOf(record, pttl);
    if (ttlMs === undefined) return;
    const layer = engine.state().layers.find((l) => l.name === FLEET_LAYER);
    if (layer?.lease) {
      engine.renewLease(FLEET_LAYER, ttlMs);
      markNewest(record);
    } else apply(record, pttl);
    forgiveRenewal(record);
  };

  /** A forged renewal of this set was refused before: the genuine record supersedes it. */
  const forgiveRenewal = (record: FleetRecord): void => {
    if (rejected?.id !== record.id) return;
    rejected = null;
    lastRejectedRaw = null;
    lastError = null;
  };

  /**
   * Refuses a record a member with a secret must not take: unsigned, wrongly signed, or older
   * than the newest applied. Returns the record's `issuedAt`.
   */
  const checkSigned = (record: FleetRecord, secret: string): number => {
    const which = `fleet set ${record.version} on ${keys.channel}`;
    if (record.sig === undefined) throw new FleetRejectionError('unsigned', `${which} is not signed`, record.version);
    if (!signatureMatches(keys.channel, record, secret))
      throw new FleetRejectionError('signature', `${which} has a wrong signature`, record.version);
    const { issuedAt } = record;
    if (issuedAt === undefined) throw new FleetRejectionError('malformed', `${which} is signed but carries no issuedAt`, record.version);
    if (
      newest !== null &&
      (issuedAt < newest.issuedAt || (issuedAt === newest.issuedAt && record.id !== newest.id && record.version <= newest.version))
    )
      throw new FleetRejectionError(
        'stale',
        `${which} is stale: issued at ${new Date(issuedAt).toISOString()}, before set ${newest.version} ` +
          `(issued at ${new Date(newest.issuedAt).toISOString()}) applied here; a replay, or a publisher whose clock is behind`,
        record.version,
      );
    return issuedAt;
  };

  /** What a member with a secret does with a signed record that is not older than the newest applied. */
  const takeSigned = (record: FleetRecord, issuedAt: number, pttl: number): void => {
    // The newest record read again (an announcement repeated, a reconnect, the key written back):
    // it neither extends a lease nor brings back a set whose lease ran out here or a missing key cleared.
    if (newest !== null && record.id === newest.id && issuedAt === newest.issuedAt) {
      if (record.id === applied.id) forgiveRenewal(record);
    } else if (record.id === applied.id) renew(record, pttl);
    else if (record.id !== rejected?.id) apply(record, pttl);
  };

  /** Acts on the value of the key (`null`: none) and its PTTL. Returns whether to write the ack (not for a refusal already reported). */
  const take = (raw: string | null, pttl: number, resync: boolean): boolean => {
    if (raw === null || pttl === -2) {
      clear();
      return true;
    }
    let record: FleetRecord | null = null;
    try {
      record = decodeRecord(keys.set, raw);
      // Signed: ordered by issuedAt, not by version (a Redis restarted empty counts from 1 again).
      if (secret !== undefined) takeSigned(record, checkSigned(record, secret), pttl);
      else if (record.id === applied.id) renew(record, pttl);
      else if ((resync || record.version >= applied.version) && record.id !== rejected?.id) apply(record, pttl);
    } catch (error) {
      if (raw === lastRejectedRaw) return false;
      const which = record === null ? null : { version: record.version, id: record.id };
      if (error instanceof FleetRejectionError) reject(error, which, raw);
      else if (error instanceof ConfigError)
        reject(new FleetRejectionError('config', error.message, record?.version, { cause: error }), which, raw);
      else throw error;
    }
    return true;
  };

  /** Set once the subscription is in place: from then on no announcement is missed, and a read counts for `ready`. */
  let subscribed = false;

  /** Reads the key and acts on it. `resync`: the key is the truth even if its version is lower (Redis lost its data). */
  const sync = async (resync: boolean): Promise<void> => {
    if (closed) return;
    const counts = subscribed;
    const replies = await reader.multi().get(keys.set).pttl(keys.set).exec();
    if (closed || replies === null) return;
    const [[getError, raw], [pttlError, pttl]] = replies as [[Error | null, string | null], [Error | null, number]];
    if (getError ?? pttlError) throw getError ?? pttlError;
    const writesAck = take(raw, pttl, resync);
    if (counts) settleReady?.();
    if (writesAck) await writeAck();
  };

  // One read at a time; requests made while one waits to start are served by it.
  let queue: Promise<void> = Promise.resolve();
  let waiting: { resync: boolean } | null = null;
  const request = (resync: boolean): Promise<void> => {
    if (waiting !== null) {
      waiting.resync ||= resync;
      return queue;
    }
    const next = { resync };
    waiting = next;
    queue = queue.then(async () => {
      waiting = null;
      await sync(next.resync).catch(reportError);
    });
    return queue;
  };

  subscriber.on('message', (channel: string, message: string) => {
    if (closed || channel !== keys.channel) return;
    if (!VERSION_MESSAGE.test(message)) {
      const shown = JSON.stringify(message.length > 80 ? `${message.slice(0, 80)}...` : message);
      reject(new FleetRejectionError('malformed', `a message on ${keys.channel} is not a set version: ${shown}`), null, null);
      void writeAck().catch(reportError);
      return;
    }
    // An announcement older than the set in force says nothing new.
    if (Number(message) >= applied.version) void request(false);
  });
  for (const connection of [subscriber, reader] as FleetConnection[]) {
    connection.on('ready', () => {
      showConnected();
      if (!closed) void request(true);
    });
    connection.on('close', showConnected);
    connection.on('error', reportError);
  }
  showConnected();

  /** A set refused for its configuration is tried again once the member's other layers changed (it may fit now). */
  const retryRefused = (): void => {
    if (refusedAgainst === null || rejected === null || otherLayers() === refusedAgainst) return;
    refusedAgainst = null;
    rejected = null;
    lastRejectedRaw = null;
    void request(true);
  };

  const timer = setInterval(() => {
    retryRefused();
    void writeAck().catch(reportError);
  }, ackIntervalMs);
  timer.unref();

  subscriber.subscribe(keys.channel).then(
    () => {
      subscribed = true;
      void request(true);
    },
    (error: unknown) => {
      reportError(error);
      failReady?.(error instanceof Error ? error : new HavocError(String(error)));
    },
  );

  return {
    ready,
    status: (): FleetMemberStatus => {
      noticeExpiredLease();
      const layer = engine.state().layers.find((l) => l.name === FLEET_LAYER);
      return {
        member,
        channel: keys.channel,
        connected: connected(),
        version: applied.version,
        rejectedVersion: rejected?.version ?? null,
        lastError,
        rejections,
        leaseRemainingMs: layer?.lease?.remainingMs ?? null,
      };
    },
    async close(): Promise<void> {
      if (closed) return;
      // First: no sync or ack after this point can write the ack back.
      closed = true;
      clearInterval(timer);
      failReady?.(new FleetError(`left the fleet on ${keys.channel} before it was ready`));
      if (reader.status === 'ready') {
        await Promise.all([reader.del(keys.member(member)), reader.zrem(keys.members, member)]).catch(() => {});
      }
      metrics.fleetConnected.labels(keys.channel, member).set(0);
      // Disconnected, a quit would wait for Redis: just drop the connection (pending reads fail, unobserved).
      await Promise.all(
        [subscriber, reader].map((c) =>
          c.status === 'ready'
            ? c.quit().then(
                () => {},
                () => c.disconnect(),
              )
            : c.disconnect(),
        ),
      );
    },
  };
}
