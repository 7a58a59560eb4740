// What the kafkajs producer and consumer sides share: the injected error, built from kafkajs's
// own table of protocol errors, and headers as `match_headers` reads them.
import type { IHeaders } from 'kafkajs';
import type { Decision, HeaderBag } from '../engine.js';
import { KafkaInjectedError } from '../errors.js';
import { optionalPeer } from '../peer.js';

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

/**
 * Kafka message headers as `match_headers` reads them: lowercase names, UTF-8 text values
 * (kafkajs gives a consumer Buffers, a repeated header as an array). `undefined` for none.
 */
export function headersOf(headers: IHeaders | undefined): HeaderBag | undefined {
  if (headers === undefined || headers === null) return undefined;
  let bag: HeaderBag | undefined;
  for (const key in headers) {
    const value = headers[key];
    if (value === undefined) continue;
    bag ??= {};
    bag[key.toLowerCase()] = Array.isArray(value) ? value.map(String) : String(value);
  }
  return bag;
}
