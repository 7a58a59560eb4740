// Smoke test of an installed havoc (ES module): named and default imports share one instance.
import assert from 'node:assert/strict';
import havoc, { Engine, parseConfig } from 'havoc';

assert.equal(havoc.Engine, Engine, 'the ESM facade and the CommonJS build are one module');
const engine = new Engine({
  name: 'smoke-esm',
  config: parseConfig('version: 1\npolicies:\n  - { name: slow, type: sql, target: SELECT, latency_chance: 1, latency_duration: 5ms }\n'),
});
assert.equal(engine.decide('sql', 'select 1')?.latencyMs, 5);
engine.close();
console.log(`smoke (ESM) ok on Node ${process.version}`);
