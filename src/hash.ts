import native = require('./native.js');
import { validateConfig } from './config.js';
import type { Policy } from './types.js';

/** Standard FNV-1a 64 of a string's UTF-8 bytes, or of raw bytes. */
export function fnv1a64(input: string | Uint8Array): bigint {
  if (typeof input !== 'string' && !(input instanceof Uint8Array)) {
    throw new TypeError('fnv1a64 takes a string or a Uint8Array');
  }
  return native.fnv1a64(input);
}

/**
 * The stable identity of a policy: FNV-1a 64 over all its fields (length-prefixed, header
 * keys sorted, `-0` as `0`). The same on every run and machine; it drives reconciliation.
 */
export function policyHash(policy: Policy): bigint {
  const [validated] = validateConfig({ version: 1, policies: [policy] }).policies;
  return native.policyHash(JSON.stringify(validated));
}
