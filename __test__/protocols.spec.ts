// The protocol list is written in the core (`Protocol::ALL`) and, for the type and the hot
// path's index switch, again in src/types.ts: these tests hold the two equal.
import test from 'ava';
import { ConfigError, Engine, PROTOCOLS, validateConfig, type Protocol } from 'havoc';
import { config, policy } from './fixtures/policies.js';

test('PROTOCOLS lists the core protocols in the core order', (t) => {
  const error = t.throws(() => validateConfig({ version: 1, policies: [{ name: 'p', type: 'nope' }] }), { instanceOf: ConfigError });
  const listed = /expected one of ([a-z, ]+);?/.exec(error.issues[0]!.message)?.[1];
  t.deepEqual(listed?.split(', '), [...PROTOCOLS]);
});

test('each protocol decides against the policies of its own type and no other', (t) => {
  const engine = new Engine({ name: `protocols-${process.pid}`, warmupMs: 0 });
  try {
    for (const type of PROTOCOLS.filter((p): p is Exclude<Protocol, 'resource'> => p !== 'resource')) {
      engine.update(config(policy({ name: `only-${type}`, type, target: 'all', errorChance: 1, errorCode: type === 'grpc' ? 14 : 503 })));
      for (const asked of PROTOCOLS.filter((p) => p !== 'resource')) {
        const decision = engine.decide(asked, '/x');
        if (asked === type) t.is(decision?.policy, `only-${type}`, `${asked} under a ${type} policy`);
        else t.is(decision, null, `${asked} under a ${type} policy`);
      }
    }
  } finally {
    engine.close();
  }
});
