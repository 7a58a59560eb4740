// A live control plane for API fuzzing (.ci/schemathesis.sh): the built package on 127.0.0.1,
// with the token of HAVOC_TOKEN. Prints `listening <url>` once it answers, then serves until
// SIGTERM or SIGINT. `node scripts/serve-control-plane.mjs [port]` (default: a free port).
//
// The engine warms up for 24 h: a fuzzer's PUT may carry `resource` policies (CPU burners,
// gigabytes of RAM) and they must stay on paper, not load the machine running the tests. The
// API, validation and state are the same as with no warmup.
import { Registry } from 'prom-client';
import { CircuitBreaker, Engine, startControlPlane } from 'havoc';

const token = process.env.HAVOC_TOKEN ?? '';
if (token === '') {
  console.error('serve-control-plane: set HAVOC_TOKEN');
  process.exit(1);
}
const registry = new Registry();
const engine = new Engine({ name: `fuzz-${process.pid}`, registry, warmupMs: 24 * 3_600_000 });
// A shared breaker for the breaker routes to act on (the document's example name).
CircuitBreaker.shared('payments', { consecutive: 5, registry });
const plane = await startControlPlane(engine, { host: '127.0.0.1', port: Number(process.argv[2] ?? 0), token, registry });
console.log(`listening ${plane.url}`);

const stop = () => {
  plane.close().finally(() => {
    engine.close();
    process.exit(0);
  });
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
