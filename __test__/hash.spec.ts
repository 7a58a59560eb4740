import test from 'ava';
import { fnv1a64, policyHash, type Policy } from 'havoc';

test('fnv1a64 follows the standard test vectors', (t) => {
  t.is(fnv1a64(''), 0xcbf29ce484222325n);
  t.is(fnv1a64('a'), 0xaf63dc4c8601ec8cn);
  t.is(fnv1a64('foobar'), 0x85944171f73967e8n);
});

test('fnv1a64 hashes UTF-8 bytes: a string and its bytes agree', (t) => {
  const text = 'héllo, 世界';
  t.is(fnv1a64(text), fnv1a64(new TextEncoder().encode(text)));
  t.is(fnv1a64(Buffer.from('foobar')), 0x85944171f73967e8n);
});

test('fnv1a64 refuses other types', (t) => {
  t.throws(() => fnv1a64(42 as never), { instanceOf: TypeError });
});

const base = { name: 'checkout', type: 'http', target: '/checkout', error_chance: 0.5, error_code: 503 } as const;
const hash = (fields: Record<string, unknown>) => policyHash(fields as unknown as Policy);

test('policyHash is a stable 64-bit identity', (t) => {
  const h = hash(base);
  t.is(typeof h, 'bigint');
  t.true(h > 0n && h < 2n ** 64n);
  t.is(hash({ ...base }), h);
  // Pinned: the identity must not change between releases or machines, or every running
  // sabotage would restart on upgrade.
  t.snapshot(h.toString(16), 'identity of the reference policy');
});

test('policyHash ignores spelling and default values, not content', (t) => {
  const h = hash(base);
  t.is(hash({ name: 'checkout', type: 'http', target: '/checkout', errorChance: 0.5, errorCode: 503 }), h);
  t.is(hash({ ...base, latency_chance: 0, drop_connection: false }), h);
  t.not(hash({ ...base, error_code: 504 }), h);
  t.not(hash({ ...base, error_chance: 0.25 }), h);
  t.not(hash({ ...base, name: 'checkout2' }), h);
});

test('policyHash separates fields: ab|c is not a|bc', (t) => {
  t.not(hash({ ...base, name: 'ab', target: 'c' }), hash({ ...base, name: 'a', target: 'bc' }));
});

test('policyHash sorts header keys and treats -0 as 0', (t) => {
  t.is(hash({ ...base, match_headers: { 'x-a': '1', 'x-b': '2' } }), hash({ ...base, match_headers: { 'x-b': '2', 'x-a': '1' } }));
  t.is(hash({ ...base, latency_chance: -0 }), hash({ ...base, latency_chance: 0 }));
});
