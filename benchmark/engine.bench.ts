// engine.decide with 100 http policies against the floor (an N-API call that does nothing
// with the same arguments) and against a plain-JS matcher written for the comparison.
// Run: npm run bench:engine
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Bench } from 'tinybench';
import { Engine, type Config, type Policy } from 'havoc';
import { config, policy } from '../__test__/fixtures/policies.js';
// What every interceptor calls per request: the engine's decision plus its pass count.
import { decide as interceptorDecide } from '../src/interceptors/contract.js';
import { median } from './stats.js';
type ContractEngine = Parameters<typeof interceptorDecide>[0];

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
      if (latency || error)
        return { policy: policy.name, latencyMs: latency, error: error ? { code: policy.errorCode || 500 } : null, drop: false };
    }
    return null;
  }
}

async function main() {
  const engine = new Engine({ name: 'bench', config: havocConfig, seed: 1 });
  // The package's Engine, compiled once more under build/src for the contract's import.
  const contractEngine = engine as unknown as ContractEngine;
  const js = new PlainJsMatcher(policies);
  const miss = '/api/v2/orders/42?expand=items';
  const hitFiring = '/api/v1/resource-1';
  const hitQuiet = '/api/v1/resource-2';
  const wildcard = '/api/v1/service-8/deep/path';
  const headers = { host: 'localhost', 'user-agent': 'bench' };

  // Each measured iteration makes BATCH calls, so that neither the harness's own timing cost
  // nor the garbage of millions of per-call samples lands in the per-call figure.
  const BATCH = 1000;
  // Each task gets its own loop function: closures of one function literal share their
  // feedback, so one shared loop would see every task at its call site, call each one
  // megamorphically, and add that call (several ns) to every figure.
  const batch = (fn: () => unknown) =>
    new Function('fn', 'batch', 'return () => { for (let i = 0; i < batch; i++) fn(); };')(fn, BATCH) as () => void;
  const tasks: [string, () => unknown][] = [
    ['floor: napi-rs call with the same arguments, doing nothing', () => native.noop(0, miss, headers)],
    ['havoc decide: protocol with nothing that can fire (sql)', () => engine.decide('sql', 'SELECT 1', headers)],
    ["an interceptor's decision (contract.ts): nothing can fire (sql)", () => interceptorDecide(contractEngine, 'sql', 'SELECT 1')],
    ['havoc decide: path whose first segment no policy names', () => engine.decide('http', '/bench/hello', headers)],
    ['havoc decide: no match', () => engine.decide('http', miss, headers)],
    ['havoc decide: match, chances 0', () => engine.decide('http', hitQuiet, headers)],
    ['havoc decide: wildcard match, chances 0', () => engine.decide('http', wildcard, headers)],
    ['havoc decide: match, error fires', () => engine.decide('http', hitFiring, headers)],
    ['plain JS: no match', () => js.decide(miss)],
    ['plain JS: match, chances 0', () => js.decide(hitQuiet)],
    ['plain JS: match, error fires', () => js.decide(hitFiring)],
  ];
  // The machine is shared and noisy: ROUNDS rounds, each task's ratio taken against the floor
  // of the same round, and the median of those ratios reported.
  const ROUNDS = 5;
  const perCall: number[][] = tasks.map(() => []);
  for (let round = 0; round < ROUNDS; round++) {
    const bench = new Bench({ time: 400, warmup: true, warmupTime: 100 });
    for (const [name, fn] of tasks) bench.add(name, batch(fn));
    await bench.run();
    bench.tasks.forEach((task, i) => perCall[i]!.push((task.result!.latency.p50! / BATCH) * 1e6)); // ns, the median batch
  }
  const floorByRound = perCall[0]!;
  const rows = tasks.map(([name], i) => {
    const ratios = perCall[i]!.map((ns, round) => ns / floorByRound[round]!);
    return {
      task: name,
      'ns/op (median)': Math.round(median(perCall[i]!)),
      'x floor (median)': Number(median(ratios).toFixed(2)),
      'x floor min..max': `${Math.min(...ratios).toFixed(2)}..${Math.max(...ratios).toFixed(2)}`,
    };
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
