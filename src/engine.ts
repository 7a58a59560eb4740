import native = require('./native.js');
import { loadConfig, validateConfig } from './config.js';
import { ConfigError, HavocError } from './errors.js';
import { metricsFor, type HavocMetrics } from './metrics.js';
import { sabotageStatus, stopSabotage, type SabotageStatus } from './sabotage.js';
import { PROTOCOLS, protocolIndex, type Config, type Policy, type Protocol, type StreamRollMode } from './types.js';
import type { Registry } from 'prom-client';

/** Options of {@link Engine}. */
export interface EngineOptions {
  /** Which process-wide policy set this handle works on. Default `'default'`. */
  name?: string;
  /** A configuration (or the path of a YAML/JSON file) to apply now. */
  config?: Config | string;
  /** Seed of this handle's random decisions; defaults to the config's `seed`, else random. */
  seed?: number;
  /** Overrides the configuration's `warmup_duration` for updates made through this handle. */
  warmupMs?: number;
  /** Registry for havoc's Prometheus metrics; default prom-client's global registry. */
  registry?: Registry;
}

/** What to do to one request. `null` from {@link Engine.decide} means: nothing. */
export interface Decision {
  /** The policy that ended the request, or else the first whose latency fired. */
  policy: string;
  /** Delay to serve first (latencies of several matching policies add up). */
  latencyMs: number;
  /** Respond with this error after the delay. */
  error: { code: number; body?: string } | null;
  /** Destroy the connection after the delay; wins over an error. */
  drop: boolean;
}

/** Request headers, as node:http gives them. */
export type HeaderBag = Record<string, string | string[] | undefined>;

const HTTP_INDEX = protocolIndex('http')!;

// Unpacking of the number `NativeEngine.decide` returns (see crates/havoc-node/src/lib.rs).
const FLAG_ERROR = 1;
const FLAG_DROP = 2;
const FLAG_STALE = 4;
const POLICY_UNIT = 8;
const LATENCY_UNIT = 16384;
const MAX_POLICY_SLOTS = 2048;

/** The snapshot this handle decides against, as `#unpack` needs it. */
interface Table {
  /** By slot, as the packed decision names them. */
  policies: Policy[];
  errorCodes: number[];
  /** By name, for what a `Decision` does not carry (the stream roll mode). */
  byName: Map<string, Policy>;
}

interface SnapshotJson {
  version: number;
  errorCodes: number[];
  config: Config;
}

const NO_HEADERS: HeaderBag = Object.freeze({});
// The layout of the core's `FireFlags` (crates/havoc-core/src/engine/flags.rs): a word of
// protocol bits, then a 256-bit filter on the first segment of http paths
// (crates/havoc-core/src/segments.rs), all set when an active http policy may match any path.
const PROTOCOL_WORD = 0;
const SEGMENT_WORDS = 1;
/** Where the runtime refuses external buffers: every protocol may fire on any path, so every call crosses. */
const EVERY_PROTOCOL = new Uint32Array(9).fill(0xffff_ffff);
const SLASH = 0x2f;

const QUESTION = 0x3f;
const HASH = 0x23;

/** `c` lowercased if an ASCII capital; 0 where a first segment has ended (`/`, `?`, `#`, NUL, NaN past the end). */
function segmentChar(c: number): number {
  if (!(c > 0) || c === SLASH || c === QUESTION || c === HASH) return 0;
  return c >= 0x41 && c <= 0x5a ? c | 0x20 : c;
}

/**
 * The filter bit of an http path, as `segment_bit` in the core computes it: from the first two
 * characters of its first segment; -1 when one of them is not ASCII.
 */
function segmentBit(path: string): number {
  const first = segmentChar(path.charCodeAt(1));
  if (first === 0) return 0;
  const second = segmentChar(path.charCodeAt(2));
  if (first > 0x7f || second > 0x7f) return -1;
  return (first * 31 + second) & 255;
}

/** The layer `new Engine({ config })`, `engine.update()` and `watchConfig()` write. */
export const FILE_LAYER = 'file';
/** The layer the control plane's `PUT /havoc/policies` writes. */
export const API_LAYER = 'api';
/** The layer a fleet member (`joinFleet`) writes from the set published on its Redis channel. */
export const FLEET_LAYER = 'fleet';

/** A time limit on a layer, after which it reverts by itself. */
export interface LeaseState {
  ttlMs: number;
  remainingMs: number;
  /** What the layer reverts to; `null` removes it. */
  revertsTo: Config | null;
}

/** One source of policies of a set. */
export interface LayerState {
  name: string;
  config: Config;
  lease: LeaseState | null;
}

/** One published effective set, most recent last. */
export interface HistoryEntry {
  version: number;
  cause: string;
  policies: number;
  layers: string[];
}

/** Layers, leases, halt flag and history of a policy set. */
export interface SetState {
  version: number;
  halted: boolean;
  layers: LayerState[];
  history: HistoryEntry[];
}

/** Options of {@link Engine.applyLayer}. */
export interface ApplyLayerOptions {
  /** Lease: the layer reverts to what it held before unless renewed within this many ms. */
  ttlMs?: number;
}

function checkTtl(ttlMs: number | undefined): void {
  if (ttlMs !== undefined && !(Number.isFinite(ttlMs) && ttlMs > 0 && ttlMs <= native.MAX_LEASE_MS)) {
    throw new TypeError(`ttlMs must be more than 0 and at most 24h (got ${String(ttlMs)})`);
  }
}

/** The warmup used when neither the engine nor the configuration sets one. */
export function defaultWarmupMs(): number {
  return process.env.NODE_ENV === 'production' ? 10_000 : 0;
}

/**
 * A handle on a process-wide policy set. Every `Engine` with the same `name`, in any
 * worker thread, sees the same policies; each has its own random number generator.
 */
export class Engine {
  readonly name: string;
  /** havoc's Prometheus metrics, in the registry given at construction. */
  readonly metrics: HavocMetrics;
  readonly #native: InstanceType<typeof native.NativeEngine>;
  /** `slot · 8`: plus a protocol index, the first argument of `native.decide`. */
  readonly #key: number;
  /** Which protocols of the set can fire, in memory the core updates (see `decide`). */
  readonly #fireFlags: Uint32Array;
  readonly #warmupMs: number | undefined;
  readonly #seeded: boolean;
  #table: Table | null = null;
  #closed = false;

  constructor(options: EngineOptions = {}) {
    this.name = options.name ?? 'default';
    if (typeof this.name !== 'string' || this.name === '') {
      throw new TypeError('Engine name must be a non-empty string');
    }
    if (options.warmupMs !== undefined && !(Number.isFinite(options.warmupMs) && options.warmupMs >= 0)) {
      throw new TypeError(`warmupMs must be a non-negative number (got ${String(options.warmupMs)})`);
    }
    this.#warmupMs = options.warmupMs;
    this.metrics = metricsFor(options.registry);
    const config = typeof options.config === 'string' ? loadConfig(options.config) : options.config;
    const seed = options.seed ?? config?.seed;
    if (seed !== undefined && !(Number.isSafeInteger(seed) && seed >= 0)) {
      throw new TypeError(`seed must be a non-negative safe integer (got ${String(seed)})`);
    }
    this.#seeded = options.seed !== undefined;
    this.#native = new native.NativeEngine(this.name, seed);
    this.#key = this.#native.key;
    const flags = this.#native.fireFlags();
    this.#fireFlags = flags === null ? EVERY_PROTOCOL : new Uint32Array(flags);
    if (config !== undefined) this.update(config);
  }

  /**
   * Validates `config` and publishes it to every thread at once, as the set's `file` layer
   * (the one `new Engine({ config })` and `watchConfig` write; other layers stay). A bad
   * configuration throws a {@link ConfigError} and the running set stays as it was.
   */
  update(config: Config): void {
    this.applyLayer(FILE_LAYER, config);
  }

  /**
   * Replaces one layer of the set (`'file'`, `'api'`, ...) and publishes the union of all
   * layers; lifts a halt. A policy name defined in another layer, like any bad configuration,
   * throws a {@link ConfigError} and changes nothing. With `ttlMs` the layer reverts by itself
   * unless {@link Engine.renewLease} is called in time.
   */
  applyLayer(layer: string, config: Config, options: ApplyLayerOptions = {}): void {
    this.#assertOpen();
    if (typeof layer !== 'string' || layer === '') throw new TypeError('layer must be a non-empty string');
    checkTtl(options.ttlMs);
    const validated = validateConfig(config);
    const warmupDuration = this.#warmupMs ?? validated.warmupDuration ?? defaultWarmupMs();
    const issues = native.applyLayer(this.name, layer, JSON.stringify({ ...validated, warmupDuration }), options.ttlMs);
    if (issues.length > 0) throw new ConfigError(issues);
    if (!this.#seeded && validated.seed !== undefined) this.#native.reseed(validated.seed);
    this.refreshMetrics();
  }

  /** Removes a layer; returns whether it existed. */
  removeLayer(layer: string): boolean {
    this.#assertOpen();
    const removed = native.removeLayer(this.name, layer);
    this.refreshMetrics();
    return removed;
  }

  /** Extends a layer's lease by `ttlMs` from now (default: its TTL); returns the ms left. */
  renewLease(layer: string, ttlMs?: number): number {
    this.#assertOpen();
    checkTtl(ttlMs);
    try {
      return native.renewLease(this.name, layer, ttlMs);
    } catch (error) {
      throw new HavocError((error as Error).message);
    }
  }

  /** Every fault of every layer off, in every thread, until the next update, rollback or resume. */
  halt(): void {
    this.#assertOpen();
    native.haltSet(this.name);
    this.refreshMetrics();
  }

  /** Ends a halt: the layers are in force again. */
  resume(): void {
    this.#assertOpen();
    native.resumeSet(this.name);
    this.refreshMetrics();
  }

  /** Back to the previous effective set (its layers and leases). Throws when there is none. */
  rollback(): void {
    this.#assertOpen();
    try {
      native.rollbackSet(this.name);
    } catch (error) {
      throw new HavocError((error as Error).message);
    }
    this.refreshMetrics();
  }

  /** Layers, leases, halt flag and the history of effective sets (last 20). */
  state(): SetState {
    this.#assertOpen();
    return JSON.parse(native.setState(this.name)) as SetState;
  }

  /** Whether the set is halted. */
  get halted(): boolean {
    return this.state().halted;
  }

  /**
   * Decides what happens to one request: `null` when nothing fires. Crosses into Rust once
   * and, when no policy matches, allocates nothing.
   */
  decide(protocol: Protocol, target: string, headers?: HeaderBag): Decision | null {
    if (this.#closed) this.#assertOpen();
    const index = protocolIndex(protocol);
    if (index === undefined) throw new TypeError(`unknown protocol ${JSON.stringify(protocol)}`);
    if (typeof target !== 'string') throw new TypeError('target must be a string');
    // Nothing of this protocol can fire: skip the crossing. The core stores these words on every
    // publish, from any thread, after the new set; each answer comes from one word. Plain reads,
    // not Atomics.load (a V8 builtin call, dearer than this whole path): V8 moves no load across
    // a native call or an Atomics operation, so a publish made before this call is seen and only
    // a racing one can be missed (README, "What a decision costs").
    const flags = this.#fireFlags;
    if ((flags[PROTOCOL_WORD]! & (1 << index)) === 0) return null;
    // An http path whose first segment no active policy names cannot match: skip it too.
    if (index === HTTP_INDEX && target.charCodeAt(0) === SLASH) {
      const bit = segmentBit(target);
      if (bit >= 0 && (flags[SEGMENT_WORDS + (bit >>> 5)]! & (1 << (bit & 31))) === 0) return null;
    }
    const packed = native.decide(this.#key + index, target, headers ?? NO_HEADERS);
    return packed < 0 ? null : this.#unpack(packed);
  }

  /**
   * The `stream_roll_mode` of the policy `decision` (made by this handle) names, from the same
   * table the decision was read against; `''` (per-call) when unknown.
   */
  streamRollMode(decision: Decision): StreamRollMode {
    return this.#table?.byName.get(decision.policy)?.streamRollMode ?? '';
  }

  /** The policies in force, optionally of one protocol. */
  policies(protocol?: Protocol): Policy[] {
    const { policies } = this.config();
    return protocol === undefined ? policies : policies.filter((p) => p.type === protocol);
  }

  /** The configuration in force for this engine's set (as last applied, from any thread). */
  config(): Config {
    return this.#current().config;
  }

  /** Increases with every update of the set; 0 before the first. */
  get version(): number {
    return this.#current().version;
  }

  /** This handle's `warmupMs` override, if it was given one. */
  get warmupMs(): number | undefined {
    return this.#warmupMs;
  }

  /** Milliseconds until faults may fire (0 once warm). */
  get warmupRemainingMs(): number {
    return this.#native.warmupRemainingMs();
  }

  /**
   * The CPU and RAM sabotage of this engine's set (from its `resource` policies), running on
   * native threads: `{ cpu: { threads, percent }, ram: { bytesResident, bytesTarget, ... }, loads }`.
   */
  sabotage(): SabotageStatus {
    this.#assertOpen();
    return sabotageStatus(this.name);
  }

  /**
   * Releases this handle and stops its set's sabotage: every CPU and RAM load of the set, for
   * every thread (threads leave within 10 ms; memory goes back to the OS). The policies stay
   * for other handles; the next `update` of the set starts its resource policies again.
   */
  close(): void {
    if (!this.#closed) stopSabotage(this.name);
    this.#closed = true;
    this.#table = null;
  }

  /**
   * Sets `havoc_active_policies` and `havoc_halted` in this engine's registry from the set's
   * current state. Changes made through this engine do it themselves; call it after changes
   * made from another thread (the control plane does before each scrape).
   */
  refreshMetrics(): void {
    const { policies } = this.config();
    for (const protocol of PROTOCOLS) {
      this.metrics.activePolicies.labels(protocol).set(policies.filter((p) => p.type === protocol).length);
    }
    this.metrics.halted.set(this.state().halted ? 1 : 0);
  }

  #current(): SnapshotJson {
    this.#assertOpen();
    return JSON.parse(this.#native.current()) as SnapshotJson;
  }

  #unpack(packed: number): Decision {
    const flags = packed % POLICY_UNIT;
    if (flags & FLAG_STALE || this.#table === null) {
      const snapshot = JSON.parse(this.#native.table()) as SnapshotJson;
      const { policies } = snapshot.config;
      this.#table = { policies, errorCodes: snapshot.errorCodes, byName: new Map(policies.map((p) => [p.name, p])) };
    }
    const slot = Math.floor(packed / POLICY_UNIT) % MAX_POLICY_SLOTS;
    const policy = this.#table.policies[slot];
    if (policy === undefined) throw new HavocError(`decision refers to unknown policy slot ${slot}`);
    const error =
      flags & FLAG_ERROR ? { code: this.#table.errorCodes[slot] ?? 500, ...(policy.errorBody ? { body: policy.errorBody } : {}) } : null;
    return { policy: policy.name, latencyMs: Math.floor(packed / LATENCY_UNIT), error, drop: (flags & FLAG_DROP) !== 0 };
  }

  #assertOpen(): void {
    if (this.#closed) throw new HavocError(`engine "${this.name}" is closed`);
  }
}
