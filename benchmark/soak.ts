// Soak: 4 worker threads decide without pause while this thread makes 10,000 changes to the
// set — updates that move names between slots, leased layers that run out, halts, resumes and
// rollbacks. Every fault a worker sees must name a policy of a generation that was published,
// for the target it asked about, with that policy's code; no decision may throw. Then 1,000
// worker create/terminate cycles while the others keep deciding. Reports RSS along the way.
// Run: npm run bench:soak   (SOAK_CHANGES, SOAK_WARMUP, SOAK_CYCLES to scale)
import { writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { Engine, type Config } from 'havoc';
import { config, policy } from '../__test__/fixtures/policies.js';

const CHANGES = Number(process.env.SOAK_CHANGES ?? 10_000);
const CYCLES = Number(process.env.SOAK_CYCLES ?? 1_000);
const WARMUP = Number(process.env.SOAK_WARMUP ?? 15_000);
const DECIDERS = 4;
const TARGETS = 20;
const SET = `soak-${process.pid}`;
const MB = 2 ** 20;

/** Generation `g`: policy `g<g>-p<i>` faults `/a/<i>` with code 500 + i; odd generations reverse the slots. */
function generation(g: number): Config {
  const list = Array.from({ length: TARGETS }, (_, i) =>
    policy({ name: `g${g}-p${i}`, type: 'http', target: `/a/${i}`, errorChance: 1, errorCode: 500 + i }),
  );
  return config(...(g % 2 === 0 ? list : list.reverse()));
}

// Shared with the workers: [0] highest generation published, [1] stop flag.
const shared = new Int32Array(new SharedArrayBuffer(8));

const deciderSource = `
const { Engine } = require('havoc');
const { parentPort, workerData } = require('node:worker_threads');
const shared = workerData.shared;
const engine = new Engine({ name: workerData.set });
const heapAtStartMb = require('node:v8').getHeapStatistics().total_heap_size / 2 ** 20;
parentPort.postMessage('up');
let decisions = 0, faults = 0, bad = 0, thrown = 0, first = null;
const record = (what) => { bad++; first ??= what; };
while (Atomics.load(shared, 1) === 0 && (workerData.limit === 0 || decisions < workerData.limit)) {
  for (let n = 0; n < 1000; n++, decisions++) {
    const i = n % ${TARGETS};
    let d;
    try { d = engine.decide('http', '/a/' + i); } catch (error) { thrown++; record(String(error)); continue; }
    if (d === null) continue;
    faults++;
    const m = /^g(\\d+)-p(\\d+)$/.exec(d.policy);
    if (!m || Number(m[2]) !== i || Number(m[1]) > Atomics.load(shared, 0) || d.error?.code !== 500 + i) {
      record({ target: '/a/' + i, decision: d });
    }
  }
}
const heapMb = require('node:v8').getHeapStatistics().total_heap_size / 2 ** 20;
parentPort.postMessage({ decisions, faults, bad, thrown, first, heapMb, heapAtStartMb });
`;

interface Report {
  decisions: number;
  faults: number;
  bad: number;
  thrown: number;
  first: unknown;
  /** The worker's own V8 heap when it started deciding, and at the end. */
  heapAtStartMb: number;
  heapMb: number;
}

function startDecider(limit = 0): { worker: Worker; up: Promise<void>; done: Promise<Report> } {
  const worker = new Worker(deciderSource, { eval: true, workerData: { set: SET, shared, limit } });
  // One listener for both messages ('up', then the report): nothing is missed however close they come.
  let signalUp!: () => void;
  const up = new Promise<void>((resolve) => (signalUp = resolve));
  const done = new Promise<Report>((resolve, reject) => {
    worker.on('message', (message: 'up' | Report) => (message === 'up' ? signalUp() : resolve(message)));
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`a decider exited with code ${code} before reporting`)));
  });
  done.catch(() => signalUp());
  return { worker, up, done };
}

const rssMb = () => process.memoryUsage().rss / MB;
const yieldNow = () => new Promise((resolve) => setImmediate(resolve));

async function main() {
  const engine = new Engine({ name: SET, config: generation(0) });
  let published = 0;
  const publish = () => {
    published++;
    Atomics.store(shared, 0, published); // before the set exists, so workers never see a newer one
    return generation(published);
  };
  const deciders = Array.from({ length: DECIDERS }, () => startDecider());
  await Promise.all(deciders.map((d) => d.up));
  const samples: { change: number; rssMb: number; heapMb: number; externalMb: number }[] = [];
  const sample = (change: number) => {
    const { rss, heapUsed, external } = process.memoryUsage();
    samples.push({ change, rssMb: rss / MB, heapMb: heapUsed / MB, externalMb: external / MB });
  };
  const counts = { update: 0, lease: 0, halt: 0, resume: 0, rollback: 0 };
  let started = performance.now();
  // The first WARMUP changes are not measured: they grow the deciders' V8 heaps (young
  // generations sized to the allocation rate of Decision objects) to their steady size. The
  // baseline is taken after them; native growth alone is `cargo run --example soak`.
  for (let change = 1 - WARMUP; change <= CHANGES; change++) {
    if (change === 0) {
      sample(0);
      started = performance.now();
      for (const key of Object.keys(counts) as (keyof typeof counts)[]) counts[key] = 0;
    }
    switch ((change + 8 * WARMUP) % 8) {
      case 0:
      case 1:
      case 2:
        engine.update(publish());
        counts.update++;
        break;
      case 3:
        // A 1 ms lease on the api layer: it runs out on the core's watcher thread.
        engine.applyLayer('api', config(), { ttlMs: 1 });
        counts.lease++;
        break;
      case 4:
        engine.halt();
        counts.halt++;
        break;
      case 5:
        engine.resume();
        counts.resume++;
        break;
      default:
        engine.rollback();
        counts.rollback++;
    }
    if (change % 50 === 0) await yieldNow();
    if (change > 0 && change % 250 === 0) sample(change);
    if (change !== 0 && change % 1000 === 0) {
      process.stdout.write(`\r${change < 0 ? 'warm-up' : 'changes'} ${change}/${CHANGES}  RSS ${rssMb().toFixed(1)} MB`);
    }
  }
  const changeSeconds = (performance.now() - started) / 1000;
  process.stdout.write('\n');

  Atomics.store(shared, 1, 1);
  const reports = await Promise.all(deciders.map((d) => d.done));
  await Promise.all(deciders.map((d) => d.worker.terminate()));
  Atomics.store(shared, 1, 0);

  // Worker churn: short-lived workers attach, decide and are terminated while this thread
  // keeps updating the set.
  const churnStarted = performance.now();
  const churnStartRss = rssMb();
  let churnFaults = 0;
  let churnBad = 0;
  for (let cycle = 1; cycle <= CYCLES; cycle++) {
    const { worker, done } = startDecider(2000);
    const report = await done;
    await worker.terminate();
    churnFaults += report.faults;
    churnBad += report.bad + report.thrown;
    if (cycle % 50 === 0) engine.update(publish());
    if (cycle % 100 === 0) process.stdout.write(`\rworker cycles ${cycle}/${CYCLES}  RSS ${rssMb().toFixed(1)} MB`);
  }
  process.stdout.write('\n');
  const churnSeconds = (performance.now() - churnStarted) / 1000;
  sample(CHANGES + CYCLES);

  const total = reports.reduce(
    (sum, r) => ({ decisions: sum.decisions + r.decisions, faults: sum.faults + r.faults, bad: sum.bad + r.bad + r.thrown }),
    { decisions: 0, faults: 0, bad: 0 },
  );
  const afterChanges = samples.find((s) => s.change === CHANGES)!;
  const growth = afterChanges.rssMb - samples[0]!.rssMb;
  const result = {
    changes: CHANGES,
    counts,
    changeSeconds,
    deciders: total,
    firstBad: reports.find((r) => r.first !== null)?.first ?? null,
    rssGrowthOverChangesMb: growth,
    workerCycles: CYCLES,
    churnSeconds,
    churnFaults,
    churnBad,
    rssGrowthOverChurnMb: samples.at(-1)!.rssMb - churnStartRss,
    samples,
  };
  const out = path.join(__dirname, '..', '..', 'bench-results');
  mkdirSync(out, { recursive: true });
  writeFileSync(path.join(out, 'soak.json'), JSON.stringify(result, null, 2));
  console.log(
    `${CHANGES} changes (${counts.update} updates, ${counts.lease} leases, ${counts.halt} halts, ${counts.resume} resumes, ${counts.rollback} rollbacks) in ${changeSeconds.toFixed(1)} s`,
  );
  console.log(`deciders: ${total.decisions} decisions, ${total.faults} faults, ${total.bad} wrong or thrown`);
  console.log(`decider V8 heaps: ${reports.map((r) => `${r.heapAtStartMb.toFixed(1)} → ${r.heapMb.toFixed(1)}`).join(', ')} MB`);
  console.log(`worker churn: ${CYCLES} cycles in ${churnSeconds.toFixed(1)} s, ${churnFaults} faults, ${churnBad} wrong or thrown`);
  console.log(
    `RSS growth: ${growth.toFixed(1)} MB over the changes (limit 20), ${result.rssGrowthOverChurnMb.toFixed(1)} MB over the worker churn`,
  );
  const ok = total.bad === 0 && churnBad === 0 && growth <= 20 && total.faults > 0;
  console.log(ok ? 'soak: ok' : 'soak: FAILED');
  process.exitCode = ok ? 0 : 1;
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
