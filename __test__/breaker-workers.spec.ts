import { Worker } from 'node:worker_threads';
import test from 'ava';
import { CircuitBreaker, CircuitOpenError } from 'havoc';

/** Runs `body` in a worker thread (CommonJS, with `breaker` = `CircuitBreaker.shared('db', …)`), resolving with what it posts. */
function inWorker<T>(body: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const worker = new Worker(
      `const { CircuitBreaker } = require('havoc');
       const { parentPort, workerData } = require('node:worker_threads');
       const breaker = CircuitBreaker.shared('db', { consecutive: 5, openMs: 60000 });
       (async () => { ${body} })().then((v) => parentPort.postMessage(v), (e) => parentPort.postMessage({ error: String(e) }));`,
      { eval: true },
    );
    worker.once('message', resolve);
    worker.once('error', reject);
  });
}

test("shared('db') in 4 worker threads: failures in one make the others reject with 0 calls", async (t) => {
  const main = CircuitBreaker.shared('db', { consecutive: 5, openMs: 60000 });
  const failer = await inWorker<string>(`
    for (let i = 0; i < 5; i++) await breaker.execute(() => Promise.reject(new Error('db down'))).catch(() => {});
    return breaker.state;`);
  t.is(failer, 'open');
  const others = await Promise.all(
    [1, 2, 3].map(() =>
      inWorker<{ calls: number; rejected: number; name: string }>(`
        let calls = 0, rejected = 0, name = '';
        for (let i = 0; i < 100; i++) {
          await breaker.execute(() => { calls++; }).catch((e) => { rejected++; name = e.name; });
        }
        return { calls, rejected, name };`),
    ),
  );
  t.deepEqual(
    others,
    [1, 2, 3].map(() => ({ calls: 0, rejected: 100, name: 'CircuitOpenError' })),
  );
  t.is(main.state, 'open', 'the main thread sees the same breaker');
  await t.throwsAsync(
    main.execute(() => 'x'),
    { instanceOf: CircuitOpenError },
  );
});
