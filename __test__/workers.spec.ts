import path from 'node:path';
import { Worker } from 'node:worker_threads';
import test from 'ava';
import { Piscina } from 'piscina';
import { Engine, type Config } from 'havoc';
import { config, policy } from './fixtures/policies.js';

const workerFile = path.join(__dirname, 'fixtures', 'decide-worker.js');

function errorConfig(code: number): Config {
  return config(policy({ name: `fail-${code}`, type: 'http', target: '/checkout', errorChance: 1, errorCode: code }));
}

test('worker threads see an update made on the main thread at once, with no messages', async (t) => {
  const name = `workers-${process.pid}`;
  const main = new Engine({ name, config: errorConfig(503) });
  const pool = new Piscina({ filename: workerFile, minThreads: 2, maxThreads: 2 });
  try {
    type Result = { threadId: number; decision: { error: { code: number } | null } | null };
    const round = () => Promise.all(Array.from({ length: 16 }, () => pool.run({ name, target: '/checkout' }) as Promise<Result>));
    const first = await round();
    t.true(first.every((r) => r.decision?.error?.code === 503));
    main.update(errorConfig(429));
    const second = await round();
    t.true(second.every((r) => r.decision?.error?.code === 429));
    const threads = new Set([...first, ...second].map((r) => r.threadId));
    t.is(threads.size, 2, 'both workers decided');
    t.false(threads.has(0), 'decisions were made off the main thread');
  } finally {
    await pool.destroy();
  }
});

test('loading the addon in workers and terminating them repeatedly neither crashes nor leaks', async (t) => {
  const name = `churn-${process.pid}`;
  new Engine({ name, config: errorConfig(500) });
  const cycle = async () => {
    const worker = new Worker(
      `const { Engine } = require('havoc');
       const { parentPort } = require('node:worker_threads');
       const e = new Engine({ name: ${JSON.stringify(name)} });
       let n = 0;
       for (let i = 0; i < 10000; i++) if (e.decide('http', '/checkout')) n++;
       parentPort.postMessage(n);`,
      { eval: true },
    );
    const count = await new Promise<number>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    await worker.terminate();
    return count;
  };
  for (let i = 0; i < 5; i++) t.is(await cycle(), 10000);
  global.gc?.();
  const before = process.memoryUsage().rss;
  for (let i = 0; i < 40; i++) t.is(await cycle(), 10000);
  const growthMb = (process.memoryUsage().rss - before) / 2 ** 20;
  t.true(growthMb < 64, `RSS grew ${growthMb.toFixed(1)} MB over 40 worker lifetimes`);
});

test('halts, resumes and slot-moving updates from another thread never break or misattribute a decision', async (t) => {
  // The worker decides against a set whose names swap slots on every update, while this
  // thread halts and resumes it: each fault must name the policy of the requested target, with
  // that policy's code, and no decision may throw.
  const name = `halt-race-${process.pid}`;
  const forward = Array.from({ length: 20 }, (_, i) =>
    policy({ name: `p${i}`, type: 'http', target: `/a/${i}`, errorChance: 1, errorCode: 500 + i }),
  );
  const reversed = [...forward].reverse();
  const main = new Engine({ name, config: config(...forward) });
  const worker = new Worker(
    `const { Engine } = require('havoc');
     const { parentPort } = require('node:worker_threads');
     const engine = new Engine({ name: ${JSON.stringify(name)} });
     let fired = 0, wrong = 0, first = null;
     for (let n = 0; n < 400000; n++) {
       const i = n % 20;
       const d = engine.decide('http', '/a/' + i);
       if (d === null) continue;
       fired++;
       if (d.policy !== 'p' + i || d.error === null || d.error.code !== 500 + i) {
         wrong++;
         first ??= { target: '/a/' + i, decision: d };
       }
     }
     parentPort.postMessage({ fired, wrong, first });`,
    { eval: true },
  );
  let done = false;
  const result = new Promise<{ fired: number; wrong: number; first: unknown }>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  }).finally(() => (done = true));
  let rounds = 0;
  while (!done) {
    for (let i = 0; i < 20; i++, rounds++) {
      main.update(config(...(rounds % 2 === 0 ? reversed : forward)));
      main.halt();
      main.resume();
    }
    await new Promise((resolve) => setImmediate(resolve));
  }
  const { fired, wrong, first } = await result;
  await worker.terminate();
  t.log(`${fired} faults decided in the worker across ${rounds} update/halt/resume rounds`);
  t.is(wrong, 0, `first misattributed decision: ${JSON.stringify(first)}`);
  t.true(fired > 0);
  t.true(rounds > 0);
});
