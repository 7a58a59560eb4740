// What the kafkajs producer and consumer sides share: the injected error, built from kafkajs's
// own table of protocol errors, and headers as `match_headers` reads them.
import type { IHeaders } from 'kafkajs';
import type { Decision, Engine, HeaderBag } from '../engine.js';
import { KafkaInjectedError } from '../errors.js';
import { optionalPeer } from '../peer.js';
import { decide } from './contract.js';

/** The error code an injected error carries when the policy's `error_code` is 0: 7, REQUEST_TIMED_OUT (retriable). */
export const DEFAULT_KAFKA_ERROR_CODE = 7;

interface ProtocolErrorEntry {
  type: string;
  code: number;
  retriable: boolean;
  message: string;
}

let protocolErrors: ReadonlyMap<number, ProtocolErrorEntry> | undefined;

/** kafkajs's table of Kafka protocol errors (src/protocol/error.js), by code. */
function protocolError(code: number): ProtocolErrorEntry | undefined {
  if (protocolErrors === undefined) {
    const table = optionalPeer<{ errorCodes?: ProtocolErrorEntry[] }>('kafkajs/src/protocol/error')?.errorCodes ?? [];
    protocolErrors = new Map(table.map((entry) => [entry.code, entry]));
  }
  return protocolErrors.get(code);
}

/** The error a policy's decision injects on `topic`: the protocol error of its `error_code`, its `error_body` as message when set. */
export function kafkaError(decision: Decision, topic: string): KafkaInjectedError {
  const code = decision.error?.code || DEFAULT_KAFKA_ERROR_CODE;
  const known = protocolError(code);
  // As kafkajs treats a code it does not know: not retriable.
  const type = known?.type ?? 'KAFKAJS_UNKNOWN_ERROR_CODE';
  const message = decision.error?.body || known?.message || `Unknown error code ${code}`;
  return new KafkaInjectedError(message, { code, type, retriable: known?.retriable ?? false, topic, policy: decision.policy });
}

// Most messages are never matched on headers (only policies with `match_headers` read them,
// and only once the engine has crossed into the core): the engine gets this stand-in, which
// converts the one header asked for, from the message being decided (`decide` is synchronous,
// so one per thread suffices), as http.ts does for requests.
let deciding: IHeaders | null = null;
const lazyHeaders: HeaderBag = new Proxy(
  {},
  {
    get: (_target, name) => (typeof name === 'string' && deciding !== null ? headerValue(deciding, name) : undefined),
  },
);

/** Decides one message by its topic and its headers. */
export function decideMessage(engine: Engine, topic: string, headers: IHeaders | undefined): Decision | null {
  if (headers === undefined || headers === null) return decide(engine, 'kafka', topic);
  deciding = headers;
  try {
    return decide(engine, 'kafka', topic, lazyHeaders);
  } finally {
    deciding = null;
  }
}

/**
 * A Kafka message header as `match_headers` reads it: `name` is lowercase, names compare
 * without case, values as UTF-8 text (kafkajs gives a consumer Buffers, a repeated header as an
 * array).
 */
function headerValue(headers: IHeaders, name: string): string | string[] | undefined {
  for (const key in headers) {
    if (key.toLowerCase() !== name) continue;
    const value = headers[key];
    if (value === undefined) continue;
    return Array.isArray(value) ? value.map(String) : String(value);
  }
  return undefined;
}
