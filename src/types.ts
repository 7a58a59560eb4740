/** Protocols a policy can target. `resource` sabotages the process itself (CPU, RAM). */
export type Protocol = 'http' | 'grpc' | 'sql' | 'redis' | 'rabbitmq' | 'kafka' | 'mongo' | 'resource';

export const PROTOCOLS: readonly Protocol[] = ['http', 'grpc', 'sql', 'redis', 'rabbitmq', 'kafka', 'mongo', 'resource'];

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
  throttleThreshold: number;
  ramChunkMb: number;
  /** Milliseconds. */
  ramInterval: number;
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
