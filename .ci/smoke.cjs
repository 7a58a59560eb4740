// Smoke test of an installed havoc (CommonJS): decide, a worker thread on the same set, the
// control plane answering. Run from a project that installed the release tarballs.
const assert = require('node:assert/strict');
const { Worker } = require('node:worker_threads');
const { Engine, startControlPlane } = require('havoc');

async function main() {
  const engine = new Engine({
    name: 'smoke',
    config: { version: 1, policies: [{ name: 'fail', type: 'http', target: '/checkout', error_chance: 1, error_code: 503 }] },
  });
  assert.deepEqual(engine.decide('http', '/checkout'), { policy: 'fail', latencyMs: 0, error: { code: 503 }, drop: false });
  assert.equal(engine.decide('http', '/other'), null);
  const fromWorker = await new Promise((resolve, reject) => {
    const worker = new Worker(
      "const { Engine } = require('havoc'); require('node:worker_threads').parentPort.postMessage(new Engine({ name: 'smoke' }).decide('http', '/checkout'));",
      { eval: true },
    );
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  assert.equal(fromWorker.error.code, 503, 'the worker sees the same set');
  const plane = await startControlPlane(engine, { token: 'smoke-token' });
  try {
    const res = await fetch(`${plane.url}/havoc/state`, { headers: { authorization: 'Bearer smoke-token' } });
    assert.equal(res.status, 200);
    assert.equal((await res.json()).policies.length, 1);
    assert.equal((await fetch(`${plane.url}/havoc/state`)).status, 401);
    // The console's files ship in the package (dist/console/), served without the token.
    for (const path of ['/havoc/console', '/havoc/console/console.js', '/havoc/console/uPlot.iife.min.js']) {
      const page = await fetch(`${plane.url}${path}`);
      assert.equal(page.status, 200, path);
      assert.match(page.headers.get('content-security-policy'), /^default-src 'self'/);
    }
  } finally {
    await plane.close();
    engine.close();
  }
  console.log(`smoke (CommonJS) ok on Node ${process.version}`);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
