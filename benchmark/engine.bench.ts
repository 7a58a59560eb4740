// engine.decide with 100 http policies against the floor (an N-API call that does nothing
// with the same arguments) and against a plain-JS matcher written for the comparison.
// Run: npm run bench:engine
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Bench } from 'tinybench';
import { Engine, type Config, type Policy } from 'havoc';
import { config, policy } from '../__test__/fixtures/policies.js';

// The raw addon (compiled to build/benchmark/, so the package root is two levels up).
const native = require(path.join(__dirname, '..', '..', 'index.js')) as typeof import('../index.js');

const POLICIES = 100;

function httpPolicy(i: number): Policy {
  // A mix of exact paths and segment wildcards, as a real service would have.
  const target = i % 4 === 0 ? `/api/v1/service-${i}/*` : `/api/v1/resource-${i}`;
  return policy({ name: `p${i}`, type: 'http', target });
}

const policies = Array.from({ length: POLICIES }, (_, i) => httpPolicy(i));
// p1 matches and fires (an error every time); p2 matches but its chances are 0.
policies[1] = { ...policies[1]!, errorChance: 1, errorCode: 503 };
const havocConfig: Config = config(...policies);

/** What a JS developer would write: a linear scan with per-request string work. */
class PlainJsMatcher {
  private readonly compiled: { policy: Policy; exact?: string; prefix?: string }[];
  constructor(list: Policy[]) {
    this.compiled = list.map((policy) => {
      const target = policy.target.toLowerCase();
      return target.endsWith('*') ? { policy, prefix: target.slice(0, -1).replace(/\/$/, '') } : { policy, exact: target };
    });
  }
  decide(target: string) {
    const path = target.split('?')[0]!.toLowerCase();
    for (const { policy, exact, prefix } of this.compiled) {
      const hit = exact !== undefined ? path === exact : path === prefix || path.startsWith(`${prefix}/`);
      if (!hit) continue;
      const latency = policy.latencyChance > 0 && Math.random() < policy.latencyChance ? policy.latencyDuration : 0;
      const error = policy.errorChance > 0 && Math.random() < policy.errorChance;
      if (latency || error) return { policy: policy.name, latencyMs: latency, error: error ? { code: policy.errorCode || 500 } : null, drop: false };
    }
    return null;
  }
}

async function main() {
  const engine = new Engine({ name: 'bench', config: havocConfig, seed: 1 });
  const js = new PlainJsMatcher(policies);
  const miss = '/api/v2/orders/42?expand=items';
  const hitFiring = '/api/v1/resource-1';
  const hitQuiet = '/api/v1/resource-2';
  const wildcard = '/api/v1/service-8/deep/path';
  const headers = { host: 'localhost', 'user-agent': 'bench' };

  const bench = new Bench({ time: 1000, warmup: true, warmupTime: 300 });
  bench
    .add('floor: empty N-API call', () => native.noop(0, miss, headers))
    .add('havoc decide: no match', () => engine.decide('http', miss, headers))
    .add('havoc decide: match, chances 0', () => engine.decide('http', hitQuiet, headers))
    .add('havoc decide: wildcard match, chances 0', () => engine.decide('http', wildcard, headers))
    .add('havoc decide: match, error fires', () => engine.decide('http', hitFiring, headers))
    .add('plain JS: no match', () => js.decide(miss))
    .add('plain JS: match, chances 0', () => js.decide(hitQuiet))
    .add('plain JS: match, error fires', () => js.decide(hitFiring));
  await bench.run();

  const floor = bench.tasks[0]!.result!.latency.mean;
  const rows = bench.tasks.map((task) => {
    const mean = task.result!.latency.mean; // milliseconds
    return { task: task.name, 'ns/op': Math.round(mean * 1e6), 'ops/s': Math.round(1000 / mean), 'x floor': Number((mean / floor).toFixed(2)) };
  });
  console.table(rows);
  const out = path.join(__dirname, '..', '..', 'bench-results');
  mkdirSync(out, { recursive: true });
  writeFileSync(path.join(out, 'engine.json'), JSON.stringify({ node: process.version, policies: POLICIES, rows }, null, 2));
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
