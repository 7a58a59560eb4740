/** Protocols a policy can target. `resource` sabotages the process itself (CPU, RAM). */
export type Protocol = 'http' | 'grpc' | 'sql' | 'redis' | 'rabbitmq' | 'kafka' | 'mongo' | 'resource';

export const PROTOCOLS: readonly Protocol[] = ['http', 'grpc', 'sql', 'redis', 'rabbitmq', 'kafka', 'mongo', 'resource'];

/**
 * A protocol's index in the core (`Protocol::index`, the order of `Protocol::ALL`), as comparisons: protocol names are
 * interned constants, so each is a pointer compare, where a lookup in an object by a variable
 * string goes through a polymorphic inline cache on every call (about a hundred instructions,
 * more than the rest of an idle `decide`).
 */
export function protocolIndex(protocol: Protocol): number | undefined {
  switch (protocol) {
    case 'http':
      return 0;
    case 'grpc':
      return 1;
    case 'sql':
      return 2;
    case 'redis':
      return 3;
    case 'rabbitmq':
      return 4;
    case 'kafka':
      return 5;
    case 'mongo':
      return 6;
    case 'resource':
      return 7;
    default:
      return undefined;
  }
}

export type StreamRollMode = '' | 'per-call' | 'per-frame' | 'stream';

/**
 * One validated policy. Field names are the camelCase of pastaay's snake_case keys;
 * every duration is a number of milliseconds.
 */
export interface Policy {
  name: string;
  type: Protocol;
  /** `all`, an exact path/name, `prefix*`, or (sql) a regex over the normalized statement. */
  target: string;
  latencyChance: number;
  /** Milliseconds. */
  latencyDuration: number;
  errorChance: number;
  /** 0 means the protocol's default (HTTP 500, gRPC 14 UNAVAILABLE). */
  errorCode: number;
  errorBody: string;
  /** Header name (lowercase) → exact value required for the policy to match. */
  matchHeaders: Record<string, string>;
  dropConnection: boolean;
  streamRollMode: StreamRollMode;
  /** Resource: CPU intensity (pastaay); without `cpuPercent`, 1,000 per percent point of duty cycle. */
  throttleThreshold: number;
  /** Resource: MB added per `ramInterval`; 0 with `ramMaxMb` set means all of it at once. */
  ramChunkMb: number;
  /** Milliseconds. */
  ramInterval: number;
  // The sabotage fields below are absent from a validated policy when they hold their default (0).
  /** Resource: threads burning CPU; absent or 0 means one per core. */
  cpuCores?: number;
  /** Resource: duty cycle of each burning thread, 1–100; absent or 0 means the default (100, or the `throttleThreshold` mapping). */
  cpuPercent?: number;
  /** Resource: this policy's RAM cap in MB; absent or 0 means it grows until the process ceiling. */
  ramMaxMb?: number;
  /** Resource: milliseconds the sabotage lasts; absent or 0 means until the policy is removed. */
  duration?: number;
}

/** A validated configuration, as returned by `parseConfig` and accepted by `Engine.update`. */
export interface Config {
  version: 1;
  /** Milliseconds; absent means the engine's default (10 s when NODE_ENV=production, else 0). */
  warmupDuration?: number;
  enableDefaultIgnored: boolean;
  /** Protocol → command/path prefixes that are never faulted. */
  ignoredCommands: Partial<Record<Protocol, string[]>>;
  seed?: number;
  policies: Policy[];
}
