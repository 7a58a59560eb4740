import path from 'node:path';
import { Worker } from 'node:worker_threads';
import test, { type ExecutionContext } from 'ava';
import { Engine } from 'havoc';
import { config, policy } from './fixtures/policies.js';

// The addon's exports object, the one the engine calls through: wrapping `decide` counts crossings.
const addon = require(path.resolve(__dirname, '..', '..', 'index.js')) as { decide: (...args: unknown[]) => number };

function countingCrossings(): { count: () => number; restore: () => void } {
  const original = addon.decide;
  let crossings = 0;
  addon.decide = (...args: unknown[]) => {
    crossings += 1;
    return original(...args);
  };
  return { count: () => crossings, restore: () => void (addon.decide = original) };
}

const failing = (name: string, type: 'http' | 'sql', errorChance = 1) =>
  policy({ name, type, target: 'all', errorChance, errorCode: type === 'http' ? 503 : 1 });

test.serial('a protocol with nothing that can fire answers null without crossing into the addon', (t) => {
  const engine = new Engine({ name: `flags-idle-${process.pid}`, config: config(failing('web', 'http')) });
  const crossings = countingCrossings();
  try {
    for (let i = 0; i < 1000; i++) t.is(engine.decide('sql', 'SELECT 1'), null);
    t.is(crossings.count(), 0, 'no sql policy: no crossing');
    t.is(engine.decide('http', '/x')?.error?.code, 503);
    t.is(crossings.count(), 1, 'http can fire: one crossing');

    // A policy whose chances are all 0 cannot fire either.
    engine.update(config(failing('web', 'http'), failing('quiet', 'sql', 0)));
    t.is(engine.decide('sql', 'SELECT 1'), null);
    t.is(crossings.count(), 1);

    // Another handle on the set (as another thread would be) turns sql on, halts, resumes.
    const other = new Engine({ name: engine.name });
    other.update(config(failing('db', 'sql')));
    t.is(engine.decide('sql', 'SELECT 1')?.error?.code, 1);
    other.halt();
    const before = crossings.count();
    t.is(engine.decide('sql', 'SELECT 1'), null);
    t.is(engine.decide('http', '/x'), null);
    t.is(crossings.count(), before, 'halted: nothing crosses');
    other.resume();
    t.is(engine.decide('sql', 'SELECT 1')?.error?.code, 1);
    other.close();
  } finally {
    crossings.restore();
    engine.close();
  }
});

test.serial('an http path whose first segment no active policy names skips the crossing', (t) => {
  const onPath = (name: string, target: string) => policy({ name, type: 'http', target, errorChance: 1, errorCode: 503 });
  const engine = new Engine({
    name: `flags-paths-${process.pid}`,
    config: config(onPath('users', '/api/users/*'), onPath('login', '/login')),
  });
  const crossings = countingCrossings();
  try {
    // The filter reads the first two characters of the first segment: `ap` and `lo` are named.
    for (const path of ['/health', '/bench/hello?x=1', '/', '/users/1', '/l', '/a', '/?x']) t.is(engine.decide('http', path), null, path);
    t.is(crossings.count(), 0, 'no policy names these first segments');
    t.is(engine.decide('http', '/API/Users/7')?.error?.code, 503);
    t.is(engine.decide('http', '/LOGIN?next=/')?.error?.code, 503);
    t.is(engine.decide('http', '/api/orders'), null, 'same first segment: decided by the core, no match');
    t.is(engine.decide('http', '/é'), null, 'non-ASCII: decided by the core');
    t.is(engine.decide('http', 'http://example.test/login')?.error?.code, 503, 'absolute URL: the core matches its path');
    t.is(crossings.count(), 5);

    // Another handle names /health: from then on it crosses and fires; an `all` policy lets every path through.
    const other = new Engine({ name: engine.name });
    other.update(config(onPath('health', '/health')));
    t.is(engine.decide('http', '/health')?.error?.code, 503);
    other.update(config(policy({ name: 'every', type: 'http', target: 'all', errorChance: 1, errorCode: 500 })));
    t.is(engine.decide('http', '/bench/hello')?.error?.code, 500);
    other.close();
  } finally {
    crossings.restore();
    engine.close();
  }
});

/**
 * Runs `changes` (the body of a worker script, over `engine` and the helpers below) in a worker
 * while this thread decides with `decide`, and checks every decision no change overlapped
 * against what the worker announced. The worker announces around each change, seqlock-style:
 * `change(announced, fn)` bumps a sequence to odd, runs `fn`, stores `announced` (1: fires,
 * 0: does not, 2: do not check), and bumps the sequence to even again.
 */
async function raceAgainstChanges(t: ExecutionContext, name: string, decide: (engine: Engine) => boolean, changes: string): Promise<void> {
  const engine = new Engine({ name });
  const shared = new Int32Array(new SharedArrayBuffer(12)); // [seq, announced, done]
  const worker = new Worker(
    `const { Engine } = require('havoc');
     const { workerData } = require('node:worker_threads');
     const shared = workerData;
     const engine = new Engine({ name: ${JSON.stringify(name)} });
     const pause = new Int32Array(new SharedArrayBuffer(4));
     const change = (announced, fn) => {
       Atomics.add(shared, 0, 1);
       fn();
       Atomics.store(shared, 1, announced);
       Atomics.add(shared, 0, 1);
       Atomics.wait(pause, 0, 0, 0.2);
     };
     ${changes}
     Atomics.store(shared, 2, 1);`,
    { eval: true, workerData: shared },
  );
  const exited = new Promise<number>((resolve, reject) => {
    worker.once('exit', resolve);
    worker.once('error', reject);
  });
  let checked = 0;
  let fired = 0;
  let announcedActive = 0;
  const mismatches: string[] = [];
  while (Atomics.load(shared, 2) === 0) {
    const before = Atomics.load(shared, 0);
    if (before % 2 === 1) continue;
    const announced = Atomics.load(shared, 1);
    const hit = decide(engine);
    if (Atomics.load(shared, 0) !== before || announced === 2) continue;
    checked += 1;
    if (hit) fired += 1;
    if (announced === 1) announcedActive += 1;
    if (hit !== (announced === 1) && mismatches.length < 5) mismatches.push(`change ${before}: announced ${announced}, fired ${hit}`);
  }
  t.is(await exited, 0);
  t.deepEqual(mismatches, []);
  t.true(
    fired > 0 && fired === announcedActive && checked > fired,
    `${fired} fired, ${announcedActive} announced active, ${checked} checked`,
  );
  engine.close();
}

test.serial('no decision is missed or made against a stale "nothing can fire" while another thread changes the set', async (t) => {
  // Update, halt, resume, warmup, a lease that runs out by itself, and an empty set.
  await raceAgainstChanges(
    t,
    `flags-race-${process.pid}`,
    (engine) => engine.decide('sql', 'SELECT 1') !== null,
    `const sql = (extra) => ({ version: 1, ...extra, policies: [{ name: 'db', type: 'sql', target: 'all', error_chance: 1, error_code: 1 }] });
     for (let round = 0; round < 150; round++) {
       change(1, () => engine.update(sql()));
       change(0, () => engine.halt());
       change(1, () => engine.resume());
       change(0, () => engine.update(sql({ warmup_duration: '1h' })));
       change(0, () => engine.update({ version: 1 }));
       if (round % 10 === 0) {
         change(2, () => engine.applyLayer('leased', sql(), { ttlMs: 2 }));
         while (engine.state().layers.some((layer) => layer.name === 'leased')) Atomics.wait(pause, 0, 0, 0.5);
         change(0, () => {});
       }
     }`,
  );
});

test.serial('no http decision is skipped on a stale segment word while another thread moves the policies between paths', async (t) => {
  // The protocol word stays set through most changes; only the segment words say whether
  // /orders can fire, and they change with it.
  await raceAgainstChanges(
    t,
    `flags-race-http-${process.pid}`,
    (engine) => engine.decide('http', '/orders/7') !== null,
    `const on = (...targets) => ({ version: 1, policies: targets.map((target, i) => ({ name: 'p' + i, type: 'http', target, error_chance: 1, error_code: 503 })) });
     for (let round = 0; round < 150; round++) {
       change(1, () => engine.update(on('/orders/*')));
       change(0, () => engine.update(on('/health')));
       change(1, () => engine.update(on('/health', '/orders/*')));
       change(0, () => engine.halt());
       change(1, () => engine.resume());
       change(0, () => engine.update(on('/ordinal')));
       change(0, () => engine.update({ version: 1 }));
     }`,
  );
});

test.serial('the JavaScript segment filter agrees with the core for every pair of ASCII characters', (t) => {
  // Every printable pair but the segment's terminators (and `*`, which would make a prefix):
  // a policy on `/XY*` must fire for `/XY`, `/xy` and `/XY/z` — a pair the JS side maps to
  // another bit than the core's would be skipped without a call.
  const chars = Array.from({ length: 0x7f - 0x21 }, (_, i) => String.fromCharCode(0x21 + i)).filter((c) => !'/?#*'.includes(c));
  const pairs = chars.flatMap((a) => chars.map((b) => a + b));
  const engine = new Engine({ name: `flags-pairs-${process.pid}` });
  let checked = 0;
  // Few policies at a time, so that most of the filter's 256 bits stay clear and a wrong bit shows.
  const BATCH = 16;
  for (let start = 0; start < pairs.length; start += BATCH) {
    const batch = pairs.slice(start, start + BATCH);
    engine.update(config(...batch.map((pair, i) => policy({ name: `p${start + i}`, type: 'http', target: `/${pair}*`, errorChance: 1 }))));
    for (const pair of batch) {
      for (const path of [`/${pair}`, `/${pair.toLowerCase()}`, `/${pair.toUpperCase()}/z`]) {
        if (engine.decide('http', path) === null) t.fail(`${path} skipped or missed under a policy on /${pair}*`);
        checked += 1;
      }
    }
  }
  t.is(checked, pairs.length * 3);
  engine.close();
});
